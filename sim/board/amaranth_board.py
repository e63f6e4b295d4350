"""The simulated board: a board's core in Amaranth's simulator, driven at the UART pins.

:class:`SimBoard` runs :class:`hw.control.core.EdgeLearnCore` (the same core the board top
wraps) and exposes a byte-level ``write`` / ``read`` interface: written bytes are bit-banged onto
``i_rx`` as 8N1 frames at the core's divisor, and ``o_tx`` is sampled mid-bit and decoded. The
simulator only advances while :meth:`read` waits for bytes (or :meth:`run_cycles` is called), so
simulated time stands still while the host computes — like a real board, whose UART is idle then.

Defaults differ from the hardware in two ways, both for simulation speed and both parameters of
the same core: the UART runs at ``clk/4`` (4 cycles per bit instead of 12 or 25) and the truncated
frame timeout is 2 000 cycles (instead of 10 ms).
"""

import collections

from amaranth.sim import Simulator

from hw.control.boards import check_board, make_core

__all__ = ["SimBoard", "make_sim_core"]

SIM_DIVISOR = 4
SIM_TIMEOUT = 2000
SIM_WATCHDOG = 1 << 20


def make_sim_core(board="icebreaker", *, divisor=SIM_DIVISOR, timeout=SIM_TIMEOUT, watchdog=SIM_WATCHDOG,
                  **overrides):
    """The core of ``board`` with simulation-friendly UART rate and timeouts."""
    clk_hz = check_board(board).clk_hz
    return make_core(board, baud=clk_hz // divisor, timeout=timeout, watchdog=watchdog, primitives=False,
                     **overrides)


class SimBoard:
    """A core in the Amaranth simulator with a byte-level UART interface.

    Parameters
    ----------
    core : EdgeLearnCore, optional
        Default: :func:`make_sim_core` of the iCEBreaker.
    vcd : path, optional
        Write a VCD of the whole run there (slow; for debugging).

    Attributes
    ----------
    cycles : int
        Clock cycles simulated so far.
    """

    def __init__(self, core=None, *, vcd=None, clocks=None):
        self.core = core if core is not None else make_sim_core()
        self.divisor = self.core.divisor
        self.clk_hz = self.core.clk_hz
        self._period = 1 / self.clk_hz
        self._to_board = collections.deque()
        self._from_board = collections.deque()
        self._line_bytes = 0            # bytes put on the line towards the board
        self.tx_busy_cycles = 0         # cycles the host-to-board line was busy
        self.cycles = 0
        self._sim = Simulator(self.core)
        self._sim.add_clock(self._period)
        for domain, period in (clocks or {}).items():      # the core's other domains (seconds)
            self._sim.add_clock(period, domain=domain)
        self._sim.add_testbench(self._drive, background=True)
        self._sim.add_testbench(self._monitor, background=True)
        self._vcd = None
        if vcd is not None:
            self._vcd = self._sim.write_vcd(str(vcd))
            self._vcd.__enter__()
        self._time = 0.0

    # Testbenches ---------------------------------------------------------------------------

    async def _drive(self, ctx):
        core, div = self.core, self.divisor
        ctx.set(core.i_rx, 1)
        while True:
            if not self._to_board:
                await ctx.tick()
                continue
            byte = self._to_board.popleft()
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                ctx.set(core.i_rx, bit)
                await ctx.tick().repeat(div)
            self._line_bytes += 1
            self.tx_busy_cycles += 10 * div

    async def _monitor(self, ctx):
        core, div = self.core, self.divisor
        while True:
            # Poll rather than ``tick().until()``: an async generator left suspended in a
            # background testbench warns when the simulator is garbage-collected.
            await ctx.tick()
            if ctx.get(core.o_tx):
                continue
            # Now one cycle into the start bit: sample each bit in its middle.
            await ctx.tick().repeat(div // 2 - 1)
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(div)
                byte |= ctx.get(core.o_tx) << i
            await ctx.tick().repeat(div)
            if ctx.get(core.o_tx):
                self._from_board.append(byte)
            else:
                self._from_board.append(None)  # framing error on the board's output: a test fails
            # Stay inside the stop bit so its second half is not taken for a start bit.

    # Host side -----------------------------------------------------------------------------

    def write(self, data):
        """Queue ``data`` for the board's receive pin (sent when the simulation runs)."""
        self._to_board.extend(bytes(data))

    def run_cycles(self, n):
        """Advance the simulation ``n`` clock cycles."""
        self._time += n * self._period
        self._sim.run_until(self._time)
        self.cycles += n

    def read(self, n, *, timeout_cycles=None):
        """Run until ``n`` bytes came from the board (or ``timeout_cycles`` passed); return them.

        Returns fewer than ``n`` bytes on timeout. Default timeout: enough line time for all
        queued output plus ``n`` bytes, plus 100 000 cycles of processing.
        """
        if timeout_cycles is None:
            timeout_cycles = (len(self._to_board) + n + 8) * 10 * self.divisor + 100_000
        chunk = 10 * self.divisor * 4
        waited = 0
        while len(self._from_board) < n and waited < timeout_cycles:
            step = min(chunk, timeout_cycles - waited)
            self.run_cycles(step)
            waited += step
        out = []
        while self._from_board and len(out) < n:
            b = self._from_board.popleft()
            if b is None:
                raise RuntimeError("framing error on the simulated board's transmit line")
            out.append(b)
        return bytes(out)

    def pending(self):
        """Bytes received from the board and not read yet."""
        return len(self._from_board)

    def close(self):
        if self._vcd is not None:
            self._vcd.__exit__(None, None, None)
            self._vcd = None
