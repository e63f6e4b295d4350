"""cocotb testbench of :class:`hw.gemm.GemmEngine` against :mod:`sim.gemm.golden`.

Every weight tile's precision (int8/int4/int2/ternary), a batch of more than ``rows`` rows, a GEMV
followed by a second GEMM under the next table, and bad data (an undefined precision, a corrupt
block: the sticky flags, no hang, recovery through ``i_clear``). All four input streams and
``o_res`` stall at random (:mod:`sim.cocotb_streams`); the result rows are compared bit-exactly
with the golden model's. The engine's parameters come from :func:`sim.runner.tb_params`; the
engine's decoder must run in the ``sync`` domain (one clock, ``dut.clk``).
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.gemm import GemmEngine
from hw.gemm.engine import ERR_DECODE, ERR_MODE, ERR_TILE
from hw.huffman import spec as huff_spec
from hw.mac import spec as mac_spec
from sim.cocotb_streams import BlockTestbench, StreamSink, StreamSource
from sim.gemm.golden import concat_jobs, gemm_job
from sim.gemm.harness import CLEAR_LIMIT_FACTOR
from sim.huffman.golden import Beat
from sim.mac.golden import random_acts, random_weights

MODES = list(mac_spec.MODES)
# Budget of one test in simulated time: far above these jobs' few thousand cycles even with the
# stalls, so an engine that hangs fails instead of blocking the run.
TEST_TIMEOUT_US = 1000
IDLE_CYCLES = 64        # after the last row: nothing more may come out


def documented_clear_cycles(rows, cols):
    """``docs/gemm.md`` "Clear": with the decoder in the array's domain ``o_idle`` rises this many
    cycles after the ``i_clear`` pulse. Written here from the documentation, not read from the
    engine, so that the test checks the engine against it."""
    return cols // 2 + 2 * rows + 18


class TB(BlockTestbench):
    BLOCK = "gemm_engine"
    IDLE_INPUTS = ("i_data__valid", "i_table__valid", "i_cmd__valid", "i_act__valid", "o_res__ready",
                   "i_clear")

    def __init__(self, dut):
        super().__init__(dut)
        if self.decode_domain != "sync":
            raise ValueError(f"this testbench drives one clock: decode_domain must be 'sync', "
                             f"not {self.decode_domain!r}")
        # The engine object (not elaborated) gives the widths the command word and results use.
        self.engine = GemmEngine(**self.params)

    def job(self, x, w, modes, **kw):
        """The golden model's streams and result rows of one GEMM (:func:`sim.gemm.golden.gemm_job`)."""
        e = self.engine
        return gemm_job(x, w, modes, rows=e.rows, cols=e.cols, format_lanes=e.lanes * e.contexts,
                        max_len=self.max_len, row_tile_bits=e.row_tile_bits, group_bits=e.group_bits,
                        max_drift=e.max_drift, acc_width=e.acc_width, **kw)

    def random_job(self, rng, m, k, modes, unsigned=False, **kw):
        x = random_acts(rng, (m, k), unsigned=unsigned)
        w = np.concatenate([random_weights(rng, (self.cols, k), mode) for mode in modes])
        return self.job(x, w, modes, act_unsigned=unsigned, **kw)

    def data_word(self, beat):
        """An ``i_data`` payload: lane word ``k`` at bits ``16k``, then the block-start mark."""
        words, first = beat
        value = sum(int(v) << (huff_spec.WORD * k) for k, v in enumerate(words))
        return value | int(first) << (huff_spec.WORD * len(words))

    def unpack(self, word):
        r = mac_spec.unpack_res(word, rows=self.rows, cols=self.cols, acc_width=self.engine.acc_width)
        return r["values"], r["overflow"]

    async def run(self, job, *, stall, seed):
        """Send ``job``'s four streams (each with its own stall pattern) and take as many result rows
        as the golden model expects; returns them as ``(values, overflow)``."""
        streams = {"i_table": [w | int(f) << huff_spec.WORD for w, f in job["table"]],
                   "i_data": [self.data_word(b) for blk in job["blocks"] for b in blk],
                   "i_cmd": job["cmds"], "i_act": job["acts"]}
        producers = [cocotb.start_soon(StreamSource(self.dut, name, seed=seed + i, stall=stall).send(ws))
                     for i, (name, ws) in enumerate(streams.items())]
        sink = StreamSink(self.dut, "o_res", seed=seed + len(streams), stall=stall)
        self.sink = sink
        rows = await sink.recv(len(job["rows"]), decode=self.unpack)
        for p in producers:
            await p
        return rows

    async def settle(self):
        """After a job: ``o_res`` stays empty for :data:`IDLE_CYCLES` and the engine is idle; returns
        ``o_errors``."""
        assert await self.sink.expect_idle(IDLE_CYCLES) == 0, "rows after the expected ones"
        await ReadOnly()
        assert int(self.dut.o_idle.value) == 1
        errors = int(self.dut.o_errors.value)
        await RisingEdge(self.dut.clk)
        return errors

    async def clear(self):
        """Pulse ``i_clear`` for one cycle and wait for ``o_idle``: it must rise exactly
        :func:`documented_clear_cycles` cycles after the pulse (the pulse's cycle is cycle 0).
        Returns after a rising edge in the first idle cycle, so the caller may drive inputs."""
        limit = CLEAR_LIMIT_FACTOR * self.engine.clear_cycles
        self.dut.i_clear.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.i_clear.value = 0
        cycle, idle = 0, 0
        while not idle and cycle < limit:
            cycle += 1
            await ReadOnly()
            idle = int(self.dut.o_idle.value)
            await RisingEdge(self.dut.clk)
        if not idle:
            raise AssertionError(f"o_idle did not rise within {limit} cycles of an i_clear pulse "
                                 f"({CLEAR_LIMIT_FACTOR} x the engine's clear_cycles = "
                                 f"{self.engine.clear_cycles})")
        expected = documented_clear_cycles(self.rows, self.cols)
        assert cycle == expected, (f"o_idle rose {cycle} cycles after the i_clear pulse, not "
                                   f"cols/2 + 2*rows + 18 = {expected} (docs/gemm.md, Clear)")


@cocotb.test(timeout_time=TEST_TIMEOUT_US, timeout_unit="us")
async def test_every_precision_batch_above_rows(dut):
    """One weight tile per precision against a batch of ``2 * rows + 1`` rows (the last row tile
    part empty), K = 20, signed activations loaded once and reused by every tile."""
    tb, rng = await TB.started(dut, seed=1)
    job = tb.random_job(rng, 2 * tb.rows + 1, 20, MODES)
    rows = await tb.run(job, stall=0.3, seed=10)
    assert rows == job["rows"]
    assert await tb.settle() == 0


@cocotb.test(timeout_time=TEST_TIMEOUT_US, timeout_unit="us")
async def test_gemv_then_unsigned_gemm_with_the_next_table(dut):
    """GEMV (M = 1) in int8 and ternary, then an unsigned-activation batch in int2/int4/int8 under
    the decoder's next table (parity 1), back to back with heavy stalls."""
    tb, rng = await TB.started(dut, seed=2)
    job = concat_jobs(tb.random_job(rng, 1, 16, ["int8", "ternary"]),
                      tb.random_job(rng, tb.rows + 1, 12, ["int2", "int4", "int8"], unsigned=True, parity=1))
    rows = await tb.run(job, stall=0.5, seed=20)
    assert rows == job["rows"]
    assert await tb.settle() == 0


def corrupt_payload(blocks, tile):
    """Flip one payload bit of ``tile``'s block (in its last beat, after the header)."""
    beats = list(blocks[tile])
    words = list(beats[-1][0])
    words[0] ^= 0x0100
    beats[-1] = Beat(words, beats[-1][1])
    return blocks[:tile] + [beats] + blocks[tile + 1:]


@cocotb.test(timeout_time=TEST_TIMEOUT_US, timeout_unit="us")
async def test_bad_data_flags_and_clear_recovers(dut):
    """An undefined precision code (5): its tile gives no rows, the others are exact, ERR_MODE is
    set. After ``i_clear``, a corrupt block: every row still comes out (the tile after it exact),
    ERR_DECODE | ERR_TILE. After ``i_clear`` again (the decoder reset: the table is sent anew), a
    good GEMM is exact and no flag is set."""
    tb, rng = await TB.started(dut, seed=3)
    x = random_acts(rng, (tb.rows, 16))
    w = np.concatenate([random_weights(rng, (tb.cols, 16), m) for m in ("int8", "int2", "int4")])
    undefined = tb.job(x, w, ["int8", 5, "int4"])
    assert len(undefined["rows"]) == 2 * tb.rows
    assert await tb.run(undefined, stall=0.3, seed=30) == undefined["rows"]
    assert await tb.settle() == ERR_MODE
    await tb.clear()

    corrupt = tb.random_job(rng, tb.rows, 16, ["int8", "int8"])
    corrupt["blocks"] = corrupt_payload(corrupt["blocks"], 0)
    rows = await tb.run(corrupt, stall=0.3, seed=40)
    assert rows[tb.rows:] == corrupt["rows"][tb.rows:]
    assert await tb.settle() == ERR_DECODE | ERR_TILE
    await tb.clear()
    await ReadOnly()
    assert int(dut.o_errors.value) == 0
    await RisingEdge(dut.clk)

    good = tb.random_job(rng, tb.rows + 1, 12, ["int4", "ternary"])
    assert await tb.run(good, stall=0.3, seed=50) == good["rows"]
    assert await tb.settle() == 0
