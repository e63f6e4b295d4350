"""The simulated board in Verilator: a board's core as Verilog, driven at its UART pins through cocotb.

:class:`VerilatorBoard` has the interface of :class:`sim.board.amaranth_board.SimBoard` (``write``,
``read``, ``run_cycles``, ``cycles``, ``divisor``, ``clk_hz``, ``close``) and runs the same
:class:`hw.control.core.EdgeLearnCore`, converted to Verilog and built with Verilator by
:func:`sim.runner.run_cocotb` (cached by the Verilog's hash, so an unchanged design is built once).
The cocotb test :mod:`sim.board.tb_bridge` runs in a background thread's simulator process and
serves this object over a Unix socket; the host's end of the UART line is gateware in
:class:`SimTop`, next to the core.

Why (measured, see ``python -m sim.board.verilator_board``): Amaranth's simulator runs a board core
at 1-4 k cycles/s, so a training step or a GEMM of a few hundred bytes takes minutes; Verilator runs
the design at full speed, and the bridge costs a few Python callbacks per :data:`CHUNK` bytes
(driving the UART pins from Python, with ``cocotbext-uart``, cost about 20 per byte: at 4 cycles per
bit the simulated ULX3S then ran 8 k cycles/s on the line against 21 k idle).
Decisions: the simulated time per cycle is nominal (10 ns), so ``clk_hz`` reports the board's clock
and cycle counts are exact. The core's UART divisor is the core's own (:func:`sim.board.make_board`
chooses it). The simulator is built for speed, not for probing (measured on the ULX3S core with the
GEMM engine, ``docs/boards.md``): the core sits in :class:`SimTop`, which makes its reset inside
(a power-on reset, as the board's platform does), so that the only inputs are the clock and the
receive pin, and Verilator builds it with no signal public but those ports (the bridge touches
nothing else). Verilator evaluates the combinational logic that reads a top-level input or a
signal VPI may write (its "input-combinational" region) at every clock edge, twice a cycle: with a
``rst`` port and cocotb's default of every signal public, that was most of the design's logic and
65 % of the simulator's time (``perf``; still 53 % with the wrapper's own signals public); with the
ports alone it is the UART's pins.
"""

import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.uart import UARTRx, UARTTx
from sim.runner import run_cocotb, simulator

__all__ = ["VerilatorBoard", "SimTop", "BUILD_ARGS", "CHUNK", "port_config"]

#: Verilator arguments of the board builds: no signal public but the top's ports
#: (:func:`port_config`), since the bridge drives and reads those only.
BUILD_ARGS = ("--no-public-flat-rw",)

#: Bytes the bridge hands to :class:`SimTop`'s host UART at once, and bytes of its receive ring.
CHUNK = 64


class SimTop(wiring.Component):
    """A core (:class:`hw.control.core.EdgeLearnCore`'s ports) with its reset made inside and the
    host's end of the UART line in gateware, for the Verilator bridge (:mod:`sim.board.tb_bridge`).

    The line is simulated at the bit level at the core's divisor: a :class:`UARTTx`
    drives the core's ``i_rx``, a :class:`UARTRx` reads its ``o_tx``. What is not simulated bit by
    bit in Python is the host's side of it: the bridge hands over up to :data:`CHUNK` bytes at a
    time and reads received bytes from a ring, so that it runs a few Python callbacks per
    :data:`CHUNK` bytes instead of about 20 per byte.

    Ports (no reset port: the ``sync`` domain's reset is high for the first
    :attr:`RESET_CYCLES` cycles, then low for good, a power-on reset):

    * ``clk``: the ``sync`` clock.
    * ``i_send`` (``8 * CHUNK`` bits, first byte in bits 0-7), ``i_send_len`` (1..CHUNK): the bytes
      to send, taken when ``i_send_go`` changes (a toggle); ``o_send_busy`` is high from the cycle
      after the toggle until the transmitter has taken the last of them (the next chunk may be
      given then: it follows on the line without a gap).
    * ``o_recv_ring`` (``8 * CHUNK`` bits): byte ``i`` of the line from the core is in byte
      ``i mod CHUNK``; ``o_recv_total`` (32 bits, wrapping) counts the bytes received;
      ``o_recv_ready`` = ``o_recv_total - i_recv_until`` is not negative (modulo 2**32), for the
      bridge to wait on. The bridge must read a byte before ``CHUNK`` more arrive.
    * ``o_leds``: the core's.
    * ``clk_<domain>`` for each of ``clocks``: the clock of that domain of the core (e.g. the GEMM
      engine's array and decoder, :class:`hw.gemm.crossing.EngineCrossing`), each held in reset
      with ``sync`` (released together, a power-on reset).
    """

    RESET_CYCLES = 2

    #: The ports every SimTop has.
    PORTS = {
        "clk": In(1),
        "i_send": In(8 * CHUNK), "i_send_len": In(range(CHUNK + 1)), "i_send_go": In(1),
        "o_send_busy": Out(1),
        "o_recv_ring": Out(8 * CHUNK), "o_recv_total": Out(32), "i_recv_until": In(32),
        "o_recv_ready": Out(1),
        "o_leds": Out(8),
    }

    def __init__(self, core, clocks=()):
        self._core = core
        self.clocks = tuple(clocks)
        super().__init__({**self.PORTS, **{f"clk_{d}": In(1) for d in self.clocks}})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        # The power-on counter runs on the same clock without a reset of its own.
        m.domains.por = ClockDomain("por", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(self.clk), ClockSignal("por").eq(self.clk)]
        held = Signal(range(self.RESET_CYCLES + 1), init=self.RESET_CYCLES)
        with m.If(held != 0):
            m.d.por += held.eq(held - 1)
        m.d.comb += ResetSignal("sync").eq(held != 0)
        for d in self.clocks:
            m.domains += ClockDomain(d)
            m.d.comb += [ClockSignal(d).eq(getattr(self, f"clk_{d}")), ResetSignal(d).eq(held != 0)]

        m.submodules.core = core = self._core
        m.submodules.host_tx = tx = UARTTx(core.divisor)
        m.submodules.host_rx = rx = UARTRx(core.divisor)
        m.d.comb += [core.i_rx.eq(tx.o_tx), rx.i_rx.eq(core.o_tx), self.o_leds.eq(core.o_leds)]

        buf = Signal(8 * CHUNK)
        left = Signal(range(CHUNK + 1))
        go_seen = Signal()
        m.d.comb += [tx.i_data.payload.eq(buf[:8]), tx.i_data.valid.eq(left != 0),
                     self.o_send_busy.eq(left != 0)]
        with m.If(self.i_send_go != go_seen):
            m.d.sync += [go_seen.eq(self.i_send_go), buf.eq(self.i_send), left.eq(self.i_send_len)]
        with m.Elif(tx.i_data.valid & tx.i_data.ready):
            m.d.sync += [buf.eq(buf >> 8), left.eq(left - 1)]

        m.d.comb += [rx.o_data.ready.eq(1),
                     self.o_recv_ready.eq(~(self.o_recv_total - self.i_recv_until)[31])]
        with m.If(rx.o_data.valid):
            m.d.sync += [self.o_recv_ring.word_select(self.o_recv_total[:CHUNK.bit_length() - 1], 8)
                         .eq(rx.o_data.payload),
                         self.o_recv_total.eq(self.o_recv_total + 1)]
        return m


def port_config(toplevel, clocks=()):
    """Verilator configuration (appended to the Verilog) that makes the ports of :class:`SimTop`
    (with the clocks of ``clocks``) visible to cocotb (VPI), and nothing else."""
    ports = list(SimTop.PORTS) + [f"clk_{d}" for d in clocks]
    return "`verilator_config\n" + "".join(f'public_flat_rw -module "{toplevel}" -var "{port}"\n'
                                           for port in ports)


class VerilatorBoard:
    """A core in Verilator behind a byte-level UART interface (see the module docstring).

    Parameters
    ----------
    core : EdgeLearnCore
    toplevel : str
        Verilog module name (one build per distinct design).
    start_timeout : float
        Seconds to wait for the build and the simulator to come up.
    clocks : dict of str to int, optional
        The core's other clock domains and their simulated periods in ps (``sync``: 10 ns).

    Raises
    ------
    RuntimeError
        If the simulator could not be built or started.
    """

    def __init__(self, core, *, toplevel="edgelearn_board", start_timeout=900.0, clocks=None):
        self.core = core
        self.divisor = core.divisor
        self.clk_hz = core.clk_hz
        self.clocks = dict(clocks or {})
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
                fast = simulator() == "verilator"
                run_cocotb(SimTop(core, self.clocks), toplevel=toplevel, test_module="sim.board.tb_bridge",
                           params={"socket": path, "clocks": self.clocks}, waves=False, build_args=BUILD_ARGS,
                           extra_verilog=port_config(toplevel, self.clocks) if fast else "")
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
                    why = (self._error if not self._thread.is_alive() else
                           f"not up after {start_timeout:.0f} s (the Verilator build or start took longer; "
                           "a loaded machine builds the ULX3S core slower)")
                    raise RuntimeError(f"the Verilator board did not start: {why}") from None
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
