"""Byte transports behind one interface: a serial port (pyserial) and the simulated board.

A transport has ``write(data)``, ``read(n, timeout) -> bytes`` (fewer than ``n`` bytes on timeout),
``close()``, a ``name`` and ``quiet``: seconds of line silence after which the board has ended any
frame it was in (twice its frame timeout), which the driver waits before it resends a frame. The
driver (:mod:`firmware.driver`) only talks to this interface, so a job runs unchanged on a board
and in simulation.
"""

__all__ = ["SerialTransport", "SimTransport", "open_transport"]


class SerialTransport:
    """A board's FTDI UART through pyserial.

    Parameters
    ----------
    port : str
        Device, e.g. ``/dev/ttyUSB1`` (the iCEBreaker's second FTDI channel) or ``/dev/ttyUSB0``.
    baud : int
        Must equal the board design's UART rate (see :mod:`boards.config`).
    """

    #: Board frame timeout is 10 ms (:class:`hw.control.core.EdgeLearnCore`); USB latency on top.
    quiet = 0.05

    def __init__(self, port, baud):
        import serial
        self.name = f"serial {port} @ {baud} baud"
        try:
            self._port = serial.Serial(port, baudrate=baud, timeout=0.1)
        except serial.SerialException as e:
            raise ConnectionError(f"cannot open {port}: {e}") from None
        self._port.reset_input_buffer()

    def write(self, data):
        self._port.write(bytes(data))

    def read(self, n, timeout=1.0):
        import time
        out = bytearray()
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            out += self._port.read(n - len(out))
        return bytes(out)

    def close(self):
        self._port.close()


class SimTransport:
    """The simulated board as a transport.

    ``timeout`` in :meth:`read` is in seconds of *board* time (simulated), not host time.

    Parameters
    ----------
    sim_board : SimBoard or VerilatorBoard, optional
        Talk to this simulated board; default: the process's shared simulated board
        (:func:`sim.board.shared_board`, every command group, Verilator). The shared board stays
        up when the transport is closed.
    """

    def __init__(self, sim_board=None):
        self._own = sim_board is not None
        if sim_board is None:
            from sim.board import shared_board
            sim_board = shared_board()
        self.board = sim_board
        kind = "Verilator" if type(sim_board).__name__ == "VerilatorBoard" else "Amaranth simulator"
        self.name = f"simulated board ({kind}, {self.board.divisor} cycles/bit)"
        self.quiet = 2 * sim_board.core.frame_timeout / sim_board.clk_hz

    def write(self, data):
        self.board.write(data)

    def read(self, n, timeout=1.0):
        return self.board.read(n, timeout_cycles=max(1, int(timeout * self.board.clk_hz)))

    def close(self):
        if self._own:
            self.board.close()


def open_transport(board=None, port=None):
    """The simulated board without ``port``, else ``board``'s serial port at its UART rate."""
    from boards.config import BOARD_CONFIGS
    if board is not None and board not in BOARD_CONFIGS:
        raise ValueError(f"board must be one of {', '.join(BOARD_CONFIGS)}, not {board!r}")
    if port is None:
        return SimTransport()
    return SerialTransport(port, BOARD_CONFIGS[board or "icebreaker"].baud)
