"""Byte transports behind one interface: a serial port (pyserial) and the simulated board.

A transport has ``write(data)``, ``read(n, timeout) -> bytes`` (fewer than ``n`` bytes on timeout),
``close()``, a ``name`` and ``quiet``: seconds of line silence after which the board has ended any
frame it was in (twice its frame timeout), which the driver waits before it resends a frame. The
driver (:mod:`firmware.driver`) only talks to this interface, so a job runs unchanged on a board
and in simulation.
"""

import collections
import time

import serial

from boards.config import check_board

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
        self.name = f"serial {port} @ {baud} baud"
        try:
            self._port = serial.Serial(port, baudrate=baud, timeout=0.1)
        except serial.SerialException as e:
            raise ConnectionError(f"cannot open {port}: {e}") from None
        self._port.reset_input_buffer()
        # FTDI bridges hold a short reply up to their latency timer (16 ms by default): the
        # low-latency flag makes Linux's ftdi_sio set it to 1 ms, which the window then covers.
        try:
            self._port.set_low_latency_mode(True)
        except (AttributeError, NotImplementedError, OSError, ValueError):
            pass                     # not Linux, or the driver refuses: the link is slower, not wrong

    def write(self, data):
        self._port.write(bytes(data))

    def read(self, n, timeout=1.0):
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
        (:func:`sim.board.shared_board` of ``board``, Verilator). The shared board stays up when
        the transport is closed.
    latency : float
        Seconds (board time) between a byte leaving the board and the host reading it: a USB
        bridge's latency (an FTDI chip holds a short reply up to its latency timer, 1-16 ms). 0:
        the host sees each byte as it arrives (to within a few byte times).
    board : str, optional
        Without ``sim_board``: the shared simulation of this board's own core (a key of
        :data:`boards.config.BOARD_CONFIGS`); default: the small all-groups board
        (:data:`boards.config.SIM_CONFIG`).
    config : BoardConfig, optional
        With ``board``: the core's configuration instead of the board's own (e.g. a ``--groups``
        selection, :func:`boards.groups.config_for_groups`).
    """

    def __init__(self, sim_board=None, *, latency=0.0, board=None, config=None):
        self._own = sim_board is not None
        if sim_board is None:
            # a job on a serial port never needs the simulated board
            from sim.board import shared_board  # deferred: loads the simulators and all gateware (3 s)
            sim_board = shared_board(board=board, config=config)
        self.board = sim_board
        kind = "Verilator" if type(sim_board).__name__ == "VerilatorBoard" else "Amaranth simulator"
        self.name = f"simulated board ({kind}, {self.board.divisor} cycles/bit)"
        if not latency >= 0:
            raise ValueError(f"latency must be a number of seconds >= 0, not {latency!r}")
        self._latency = int(latency * sim_board.clk_hz)
        self._held = collections.deque()     # (cycle the host sees it, bytes) under latency
        self.quiet = 2 * sim_board.core.frame_timeout / sim_board.clk_hz + latency

    def write(self, data):
        self.board.write(data)

    def read(self, n, timeout=1.0):
        timeout_cycles = max(1, int(timeout * self.board.clk_hz))
        if not self._latency:
            return self.board.read(n, timeout_cycles=timeout_cycles)
        board, out = self.board, bytearray()
        deadline = board.cycles + timeout_cycles
        # Bytes are stamped to within a byte time or 1/16 of the latency, whichever is longer.
        step = max(10 * board.divisor, self._latency // 16)
        while True:
            got = board.read(1 << 16, timeout_cycles=1)
            if got:
                self._held.append([board.cycles + self._latency, bytearray(got)])
            while self._held and self._held[0][0] <= board.cycles and len(out) < n:
                ripe = self._held[0][1]
                take = min(len(ripe), n - len(out))
                out += ripe[:take]
                del ripe[:take]
                if not ripe:
                    self._held.popleft()
            if len(out) >= n or board.cycles >= deadline:
                return bytes(out)
            board.run_cycles(min(step, deadline - board.cycles))

    def close(self):
        if self._own:
            self.board.close()


def open_transport(board=None, port=None):
    """The simulated board without ``port``, else ``board``'s serial port at its UART rate."""
    config = check_board(board or "icebreaker")
    if port is None:
        return SimTransport()
    return SerialTransport(port, config.baud)
