"""The simulated board in Verilator: a board's core as Verilog, driven at its UART pins through cocotb.

:class:`VerilatorBoard` has the interface of :class:`sim.board.amaranth_board.SimBoard` (``write``,
``read``, ``run_cycles``, ``cycles``, ``divisor``, ``clk_hz``, ``close``) and runs the same
:class:`hw.control.core.EdgeLearnCore`, converted to Verilog and built with Verilator by
:func:`sim.runner.run_cocotb` (cached by the Verilog's hash, so an unchanged design is built once).
The cocotb test :mod:`sim.board.tb_bridge` runs in a background thread's simulator process and
serves this object over a Unix socket; ``cocotbext-uart`` drives and decodes the UART pins.

Why (measured, see ``python -m sim.board.verilator_board``): Amaranth's simulator runs a board core
at 1-4 k cycles/s, so a training step or a GEMM of a few hundred bytes takes minutes; Verilator runs
the design at full speed and only the UART bits cost Python callbacks, about 20 per byte.
Decision: the Verilator board keeps the UART at the hardware's divisor when the design is the
board's own (the line, not the clock, then bounds the cycle counts as on hardware); the simulated
time per cycle is nominal (10 ns), so ``clk_hz`` reports the board's clock and cycle counts are exact.
"""

import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

from sim.runner import run_cocotb

__all__ = ["VerilatorBoard"]


class VerilatorBoard:
    """A core in Verilator behind a byte-level UART interface (see the module docstring).

    Parameters
    ----------
    core : EdgeLearnCore
    toplevel : str
        Verilog module name (one build per distinct design).
    start_timeout : float
        Seconds to wait for the build and the simulator to come up.

    Raises
    ------
    RuntimeError
        If the simulator could not be built or started.
    """

    def __init__(self, core, *, toplevel="edgelearn_board", start_timeout=900.0):
        self.core = core
        self.divisor = core.divisor
        self.clk_hz = core.clk_hz
        self.cycles = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="edgelearn-board-")
        path = str(Path(self._tmp.name) / "bridge.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        server.settimeout(0.5)
        self._error = None

        def run():
            try:
                run_cocotb(core, toplevel=toplevel, test_module="sim.board.tb_bridge",
                           params={"socket": path, "divisor": self.divisor}, waves=False)
            except BaseException as e:  # reported to the host thread
                self._error = e

        self._thread = threading.Thread(target=run, name="verilator-board", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        self._conn = None
        while self._conn is None:
            try:
                self._conn, _ = server.accept()
            except TimeoutError:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    server.close()
                    # Removed now: left to the garbage collector, the directory's finalizer warns
                    # (an error under pytest) in whatever test happens to run then.
                    self._tmp.cleanup()
                    raise RuntimeError(f"the Verilator board did not start: {self._error}") from None
        server.close()

    def _request(self, data):
        self._conn.sendall(data)
        head = self._recv(13)
        status, self.cycles, n = struct.unpack("<BQI", head)
        data = self._recv(n) if n else b""
        if status:
            raise RuntimeError(f"the Verilator board failed:\n{data.decode(errors='replace')}")
        return data

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self._conn.recv(n - len(buf))
            if not chunk:
                raise RuntimeError(f"the Verilator board stopped: {self._error}")
            buf += chunk
        return bytes(buf)

    def write(self, data):
        """Queue ``data`` for the board's receive pin (sent while the simulation runs)."""
        data = bytes(data)
        self._request(b"W" + struct.pack("<I", len(data)) + data)

    def read(self, n, *, timeout_cycles=None):
        """Run until ``n`` bytes came from the board (or ``timeout_cycles``); return them."""
        if timeout_cycles is None:
            timeout_cycles = (n + 8) * 10 * self.divisor + 1_000_000
        return self._request(b"R" + struct.pack("<IQ", n, timeout_cycles))

    def run_cycles(self, n):
        self._request(b"C" + struct.pack("<Q", n))

    def close(self):
        if self._conn is not None:
            try:
                self._request(b"Q")
            except (OSError, RuntimeError):
                pass
            self._conn.close()
            self._conn = None
            self._thread.join(timeout=60)
            self._tmp.cleanup()
