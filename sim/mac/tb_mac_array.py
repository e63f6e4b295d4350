"""cocotb testbench of :class:`hw.mac.MacArray` against :mod:`sim.mac.golden`.

Random GEMMs in every mode, mode changes between tiles, random stalls on all four streams (nothing
lost, duplicated or reordered), undefined modes, saturation flags. Parameters of the design under
test come from :func:`sim.runner.tb_params` (``rows``, ``cols``, ``acc_width``, ``tile_k``,
``tile_bits``, ``count_bits``).
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.mac import spec
from sim.cocotb_streams import BlockTestbench, StreamSink, StreamSource
from sim.mac.golden import gemm_tiles, random_acts, random_weights

MODES = list(spec.MODES)


class TB(BlockTestbench):
    BLOCK = "mac_array"
    IDLE_INPUTS = ("i_cmd__valid", "i_cmd__payload", "i_act__valid", "i_act__payload", "i_wgt__valid",
                   "i_wgt__payload", "o_res__ready", "i_clear")

    async def run(self, tiles, *, stall=0.0, seed=0):
        """Stream ``tiles`` through the array; return the result rows and the cycles taken."""
        n = self.rows * sum(spec.is_defined_mode(spec.unpack_cmd(t["cmd"], self.count_bits)["mode"])
                            for t in tiles)
        start = cocotb.utils.get_sim_time("ns")
        words = {"i_cmd": [t["cmd"] for t in tiles], "i_act": [w for t in tiles for w in t["act"]],
                 "i_wgt": [w for t in tiles for w in t["wgt"]]}
        producers = [cocotb.start_soon(StreamSource(self.dut, name, seed=seed + 1 + i, stall=stall).send(ws))
                     for i, (name, ws) in enumerate(words.items())]
        sink = StreamSink(self.dut, "o_res", seed=seed + 4, stall=stall)
        rows = await sink.recv(n, decode=lambda p: spec.unpack_res(p, rows=self.rows, cols=self.cols,
                                                                   acc_width=self.acc_width))
        for p in producers:
            await p
        cycles = int((cocotb.utils.get_sim_time("ns") - start) // 10)
        return rows, cycles

    def tiles(self, x, w, mode, **kw):
        return gemm_tiles(x, w, mode, rows=self.rows, cols=self.cols, acc_width=self.acc_width,
                          tile_k=self.tile_k, tile_bits=self.tile_bits, count_bits=self.count_bits, **kw)

    def expected(self, tiles):
        out = []
        for t in tiles:
            if not spec.is_defined_mode(spec.unpack_cmd(t["cmd"], self.count_bits)["mode"]):
                continue
            for r in range(self.rows):
                out.append({"values": [int(v) for v in t["y"][r]], "overflow": bool(t["ovf"][r]), "row": r,
                            "last": r == self.rows - 1})
        return out

    def random_tiles(self, rng, n_tiles, *, k_max=80, tile_sat=None):
        tiles = []
        for _ in range(n_tiles):
            mode = MODES[int(rng.integers(len(MODES)))]
            unsigned = bool(rng.integers(2))
            ts = bool(rng.integers(2)) if tile_sat is None else tile_sat
            k = int(rng.integers(1, k_max))
            x = random_acts(rng, (self.rows, k), unsigned=unsigned)
            w = random_weights(rng, (self.cols, k), mode)
            tiles += self.tiles(x, w, mode, act_unsigned=unsigned, tile_sat=ts)
        return tiles


@cocotb.test()
async def test_random_gemm_every_mode(dut):
    tb, rng = await TB.started(dut, seed=1)
    for i, mode in enumerate(MODES):
        for unsigned in (False, True):
            x = random_acts(rng, (2 * tb.rows + 1, 45), unsigned=unsigned)
            w = random_weights(rng, (2 * tb.cols - 1, 45), mode)
            tiles = tb.tiles(x, w, mode, act_unsigned=unsigned)
            rows, _ = await tb.run(tiles, stall=0.3, seed=10 * i + unsigned)
            assert rows == tb.expected(tiles), f"{mode} unsigned={unsigned}"
    assert int(dut.o_mode_error.value) == 0


@cocotb.test()
async def test_mode_changes_between_tiles_with_stalls(dut):
    tb, rng = await TB.started(dut, seed=2)
    for stall in (0.0, 0.5, 0.8):
        tiles = tb.random_tiles(rng, 20)
        rows, _ = await tb.run(tiles, stall=stall, seed=int(stall * 100))
        assert rows == tb.expected(tiles), f"stall {stall}"


@cocotb.test()
async def test_full_rate_across_mode_changes(dut):
    """Without stalls, consecutive tiles in different modes take one cycle per beat (no bubbles)."""
    tb, rng = await TB.started(dut, seed=3)
    tiles = tb.random_tiles(rng, 16, k_max=120)
    # Tiles at least `rows` beats long so the result drain never limits the rate.
    tiles = [t for t in tiles if len(t["act"]) >= tb.rows + 1]
    rows, cycles = await tb.run(tiles)
    assert rows == tb.expected(tiles)
    beats = sum(len(t["act"]) for t in tiles)
    assert cycles <= beats + 12, f"{cycles} cycles for {beats} beats"


@cocotb.test()
async def test_tile_saturation_corners(dut):
    tb, _ = await TB.started(dut)
    if tb.tile_k == 0:
        return
    rng = np.random.default_rng(4)
    tiles = []
    for k in (tb.tile_k, tb.tile_k + 3, 3 * tb.tile_k - 1, 1):
        x = rng.integers(0, 16, (tb.rows, k))
        w = rng.integers(-7, 8, (tb.cols, k))
        w[0] = 7
        w[-1] = -7
        tiles += tb.tiles(x, w, "int4", act_unsigned=True, tile_sat=True)
        x = rng.integers(-7, 8, (tb.rows, k))
        tiles += tb.tiles(x, w, "int4", tile_sat=True)
    tiles += tb.random_tiles(rng, 10, tile_sat=True)
    rows, _ = await tb.run(tiles, stall=0.4, seed=4)
    assert rows == tb.expected(tiles)
    assert int(dut.o_overflow.value) == 0


@cocotb.test()
async def test_undefined_mode_overflow_flags_and_recovery(dut):
    tb, rng = await TB.started(dut, seed=5)
    good = tb.random_tiles(rng, 4)
    bad = {"cmd": spec.pack_cmd(mode=6, beats=9, count_bits=tb.count_bits),
           "act": [int(v) for v in rng.integers(0, 1 << 30, 9)],
           "wgt": [int(v) for v in rng.integers(0, 255, 9)]}
    seq = good[:2] + [bad] + good[2:]
    rows, _ = await tb.run(seq, stall=0.3, seed=5)
    assert rows == tb.expected(seq)
    assert int(dut.o_mode_error.value) == 1
    assert int(dut.o_overflow.value) == 0
    # Overflow: the longest tile of -128 * -128 products saturates any accumulator of <= 32 bits.
    k = min(1 << tb.count_bits, ((1 << (tb.acc_width - 1)) // 16384) + 2)
    sat = tb.tiles(np.full((tb.rows, k), -128), np.full((tb.cols, k), -128), "int8")
    rows, _ = await tb.run(sat + good[:1])
    assert rows == tb.expected(sat + good[:1])
    assert all(r["overflow"] for r in rows[:tb.rows]) and not any(r["overflow"] for r in rows[tb.rows:])
    assert int(dut.o_overflow.value) == 1
    await RisingEdge(dut.clk)
    dut.i_clear.value = 1
    await RisingEdge(dut.clk)
    dut.i_clear.value = 0
    await ReadOnly()
    assert int(dut.o_overflow.value) == 0 and int(dut.o_mode_error.value) == 0
    await RisingEdge(dut.clk)
    rows, _ = await tb.run(good, stall=0.2, seed=6)
    assert rows == tb.expected(good)
