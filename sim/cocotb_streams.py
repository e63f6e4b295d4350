"""Shared cocotb drivers for ``amaranth.lib.stream`` ports (``<name>__valid/__ready/__payload`` in the
Verilog), with seeded random stalls on both sides.

* :class:`StreamSource` offers payloads in order; between transfers it leaves ``valid`` low for a
  random number of cycles (each cycle with probability ``stall``), and while a payload is offered it
  keeps ``valid`` and the payload steady until the transfer (the stream rule).
* :class:`StreamSink` takes payloads; each cycle it raises ``ready`` with probability ``1 - stall``,
  and it checks the port keeps the stream rule: once ``valid`` is high it stays high, with the same
  payload, until a transfer.

Both count their transfers (``count``), so a test can assert it reached its target. Handshakes
are sampled in the read-only phase before the clock edge they complete on.
"""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from sim.runner import tb_params

__all__ = ["StreamSource", "StreamSink", "StreamRuleError", "start_clock", "reset", "BlockTestbench"]

CLOCK_PERIOD_NS = 10


def start_clock(dut):
    """Start ``dut.clk`` (period :data:`CLOCK_PERIOD_NS`)."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())


async def reset(dut, inputs=(), cycles=2):
    """Hold ``dut.rst`` high for ``cycles`` clock edges with each input named in ``inputs`` at 0."""
    dut.rst.value = 1
    for name in inputs:
        getattr(dut, name).value = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class BlockTestbench:
    """Base of a block's cocotb testbench: the clock, the block's parameters and its reset.

    ``BLOCK`` is the block's registry name: ``params`` are the parameters the test passed
    (:func:`sim.runner.tb_params`, the block's defaults for the others), and each is also an
    attribute of the testbench. ``IDLE_INPUTS`` are the inputs held at 0 during :meth:`reset`.
    """

    BLOCK = None
    IDLE_INPUTS = ()

    def __init__(self, dut):
        self.dut = dut
        self.params = tb_params(self.BLOCK)
        for name, value in self.params.items():
            setattr(self, name, value)
        start_clock(dut)

    @classmethod
    async def started(cls, dut, seed=0):
        """A testbench on ``dut`` after reset, and a numpy generator seeded ``seed``."""
        tb = cls(dut)
        await tb.reset()
        return tb, np.random.default_rng(seed)

    async def reset(self):
        await reset(self.dut, self.IDLE_INPUTS)


class StreamRuleError(AssertionError):
    """An output port withdrew ``valid`` or changed its payload before the transfer."""


def _init_port(driver, dut, name, seed, stall, clk):
    """The handles, stall pattern and transfer count a source or sink keeps."""
    driver.clk = clk if clk is not None else dut.clk
    driver.valid, driver.ready, driver.payload = (getattr(dut, f"{name}__{part}")
                                                  for part in ("valid", "ready", "payload"))
    driver.name = name
    driver.rng = random.Random(seed)
    driver.stall = stall
    driver.count = 0


class StreamSource:
    """Drives the input stream ``name`` of ``dut`` (clocked by ``dut.clk``).

    Parameters
    ----------
    dut : cocotb handle
    name : str
        Port name, e.g. ``"i_data"``.
    seed : int
        Seed of the stall pattern.
    stall : float
        Probability of one more idle (``valid`` low) cycle before each payload, 0 to < 1.
    """

    def __init__(self, dut, name, *, seed=0, stall=0.0, clk=None):
        _init_port(self, dut, name, seed, stall, clk)
        self.valid.value = 0

    async def send(self, payloads):
        """Transfer every payload (ints), in order; returns when the last one was taken."""
        for p in payloads:
            while self.stall and self.rng.random() < self.stall:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = p
            while True:
                await ReadOnly()
                taken = int(self.ready.value)
                await RisingEdge(self.clk)
                if taken:
                    break
            self.count += 1
        self.valid.value = 0


class StreamSink:
    """Takes payloads from the output stream ``name`` of ``dut``, withdrawing ``ready`` at random.

    Parameters
    ----------
    dut, name, seed :
        As :class:`StreamSource`.
    stall : float
        Probability that ``ready`` is low in a cycle, 0 to < 1.
    """

    def __init__(self, dut, name, *, seed=0, stall=0.0, clk=None):
        _init_port(self, dut, name, seed, stall, clk)
        self.ready.value = 0
        self._held = None          # payload offered but not taken in the last cycle

    async def _cycle(self, ready):
        """One clock cycle with ``ready``; returns the payload if a transfer happened, else None."""
        self.ready.value = int(ready)
        await ReadOnly()
        valid = int(self.valid.value)
        payload = int(self.payload.value) if valid else None
        if self._held is not None and (not valid or payload != self._held):
            raise StreamRuleError(f"{self.name}: valid withdrawn or payload changed before the transfer "
                                  f"(after {self.count} transfers)")
        self._held = payload if valid and not ready else None
        await RisingEdge(self.clk)
        if valid and ready:
            self.count += 1
            return payload
        return None

    async def recv(self, n, decode=None):
        """Take ``n`` payloads (ints, or ``decode(int)``); returns them in order."""
        out = []
        while len(out) < n:
            p = await self._cycle(not (self.stall and self.rng.random() < self.stall))
            if p is not None:
                out.append(decode(p) if decode else p)
        self.ready.value = 0
        return out

    async def expect_idle(self, cycles):
        """Keep ``ready`` high for ``cycles`` cycles; returns the number of payloads that came (0 if the
        port has nothing more to give, so nothing was duplicated)."""
        extra = 0
        for _ in range(cycles):
            extra += await self._cycle(True) is not None
        self.ready.value = 0
        return extra
