"""MAC array RTL in Amaranth's simulator, against the spec and the golden model.

Product grid of every backend (behavioural DSP models) on every weight byte; accumulators at the
extremes; the whole array on random GEMMs in every mode with random stalls, mode changes between
tiles, undefined modes, tile saturation and flag stickiness.
"""

import random

import numpy as np
import pytest
from amaranth.hdl import Module

from hw.mac import spec
from hw.mac.accumulate import AccumulatorGrid
from hw.mac.array import MacArray
from hw.mac.products import ProductGrid
from hw.mac.systolic import SystolicArray
from sim.mac.amaranth_run import cycled_tiles, expected_rows, mixed_tiles, run_tiles, short_tiles
from sim.mac.golden import gemm_tiles, random_acts, random_weights
from sim.streams import simulate

MODES = list(spec.MODES)


def expected_beat(acts, byte, mode, unsigned):
    n = spec.lanes(mode)
    ws = spec.unpack_weight_byte(byte, mode)
    return sum(spec.act_value(acts[l], unsigned) * ws[l] for l in range(n))


@pytest.mark.parametrize("backend", ["lut", "ice40", "ecp5", "ice40-lane-dsps"])
def test_product_grid_every_weight_byte(backend):
    """Every packed byte in every mode, against extreme and random activations (int8 and uint8)."""
    R, C = 4, 16
    lane_dsps = backend.endswith("lane-dsps")
    dut = ProductGrid(R, C, backend=backend.removesuffix("-lane-dsps"), primitives=False, lane_dsps=lane_dsps)
    rng = random.Random(backend)
    extremes = [0x80, 0x7F, 0xFF, 0x00, 0x01, 0x81]
    cases = []  # (mode, unsigned, act rows [R][4], bytes [C])
    for mode in MODES:
        for unsigned in (False, True):
            for b0 in range(0, 256, C):
                acts = [[rng.choice(extremes) if rng.random() < .5 else rng.randrange(256) for _ in range(4)]
                        for _ in range(R)]
                cases.append((mode, unsigned, acts, [(b0 + c * 17) % 256 for c in range(C)]))
    got = []

    async def tb(ctx):
        ctx.set(dut.en, 1)
        for i in range(len(cases) + 3):
            if i < len(cases):
                mode, unsigned, acts, wb = cases[i]
                ctx.set(dut.mode, spec.MODES[mode])
                ctx.set(dut.act_unsigned, unsigned)
                ctx.set(dut.act, spec.pack_act_beat(acts))
                ctx.set(dut.wgt, spec.pack_wgt_beat(wb))
            await ctx.tick()
            if i >= 2:
                got.append([[ctx.get(dut.beat[r][c]) + ctx.get(dut.beat2[r][c]) for c in range(C)]
                            for r in range(R)])

    simulate(dut, tb, period=1e-8)
    for (mode, unsigned, acts, wb), beat in zip(cases, got[:len(cases)]):
        exp = [[expected_beat(acts[r], wb[c], mode, unsigned) for c in range(C)] for r in range(R)]
        assert beat == exp, (mode, unsigned)


def test_product_grid_holds_on_enable_low():
    dut = ProductGrid(1, 2, backend="ecp5", primitives=False)
    seen = []

    async def tb(ctx):
        ctx.set(dut.en, 1)
        ctx.set(dut.mode, spec.MODE_INT4)
        ctx.set(dut.act, spec.pack_act_beat([[-128, 127]]))
        wb = [spec.pack_weight_byte([-8, 7], 1), spec.pack_weight_byte([7, -8], 1)]
        ctx.set(dut.wgt, spec.pack_wgt_beat(wb))
        await ctx.tick()
        ctx.set(dut.act, 0)
        await ctx.tick()
        ctx.set(dut.en, 0)         # the first beat sits in S1; S2 holds nothing yet
        for _ in range(3):
            await ctx.tick()
        ctx.set(dut.en, 1)
        await ctx.tick()
        seen.append([ctx.get(dut.beat[0][c]) + ctx.get(dut.beat2[0][c]) for c in range(2)])

    simulate(dut, tb, period=1e-8)
    assert seen == [[-128 * -8 + 127 * 7, -128 * 7 + 127 * -8]]


def run_accumulator(beats, tags, **params):
    """Drive an AccumulatorGrid(1, 1) with one beat per cycle; return the (acc, ovf) of each tile."""
    dut = AccumulatorGrid(1, 1, **params)
    loads = []

    async def tb(ctx):
        ctx.set(dut.en, 1)
        for i in range(len(beats) + 4):
            if i < len(beats):
                ctx.set(dut.beat[0][0], beats[i])
                for name, v in tags[i].items():
                    ctx.set(getattr(dut, "in_" + name), v)
            else:
                ctx.set(dut.in_valid, 0)
            await ctx.tick()
            if ctx.get(dut.done):
                loads.append((ctx.get(dut.acc[0][0]), ctx.get(dut.ovf[0])))

    simulate(dut, tb, period=1e-8)
    return loads


def plain_tags(n):
    return [{"valid": 1, "first": i == 0, "last": i == n - 1, "tsat": 0, "gstart": 1, "gend": 1}
            for i in range(n)]


@pytest.mark.parametrize("clear", ["sum", "view"])
@pytest.mark.parametrize("acc_width", [17, 20])
def test_accumulator_long_runs_of_extreme_products(acc_width, clear):
    lo, hi = spec.sat_range(acc_width)
    n = 300
    for product in (-128 * -128, 255 * -128, 255 * 127):
        loads = run_accumulator([product] * n, plain_tags(n), acc_width=acc_width, tile_k=0, clear=clear)
        assert loads == [(hi if product > 0 else lo, 1)]
    # Saturate, come back from the rail: the value leaves the rail, the tile's flag stays set.
    beats = [16384] * 10 + [-32640] * 3
    exp, ovf = 0, False
    for b in beats:
        ovf |= spec.overflows(exp + b, acc_width)
        exp = spec.sat(exp + b, acc_width)
    got = run_accumulator(beats, plain_tags(13), acc_width=acc_width, tile_k=0, clear=clear)
    assert got == [(exp, int(ovf))]
    # Back-to-back tiles: the second starts from 0 with a clear flag.
    tags = plain_tags(40) + plain_tags(2)
    assert run_accumulator([16384] * 40 + [5, -7], tags, acc_width=acc_width, tile_k=0,
                           clear=clear) == [(hi, 1), (-2, 0)]


@pytest.mark.parametrize("clear", ["sum", "view"])
def test_accumulator_without_saturation(clear):
    """saturate=False: plain accumulators, exact while every partial sum is in range (the same as
    the saturating ones, no flag); they wrap beyond it (the caller's bound is what makes them equal)."""
    lo, hi = spec.sat_range(20)
    beats = [16384] * 31 + [-32640] * 3 + [127]          # 16384 * 31 <= hi: in range
    assert 0 < sum(beats[:31]) <= hi
    tags = plain_tags(len(beats)) + plain_tags(2)
    got = run_accumulator(beats + [5, -7], tags, acc_width=20, tile_k=0, clear=clear, saturate=False)
    assert got == [(sum(beats), 0), (-2, 0)]
    assert got == run_accumulator(beats + [5, -7], tags, acc_width=20, tile_k=0, clear=clear)
    # -128 * -128 * 33 > hi: the saturating accumulator clamps and flags, the plain one wraps.
    wrapped = 16384 * 33 - 2 ** 20
    assert run_accumulator([16384] * 33, plain_tags(33), acc_width=20, tile_k=0, clear=clear,
                           saturate=False) == [(wrapped, 0)]
    assert run_accumulator([16384] * 33, plain_tags(33), acc_width=20, tile_k=0, clear=clear) == [(hi, 1)]
    with pytest.raises(TypeError, match="saturate"):
        AccumulatorGrid(1, 1, saturate=1)


def test_accumulator_tile_groups():
    # Groups of 4 beats (int8, tile_k = 4), clamped to ±127; a short last group; both rails.
    beats = [100, 100, -10, 1] + [-200, 0, 0, 0] + [50, 60, 17, 0] + [-300, 172]
    tags = []
    for i in range(len(beats)):
        tags.append({"valid": 1, "first": i == 0, "last": i == len(beats) - 1, "tsat": 1,
                     "gstart": i % 4 == 0, "gend": i % 4 == 3 or i == len(beats) - 1})
    got = run_accumulator(beats, tags, acc_width=24, tile_k=4)
    assert got == [(127 - 127 + 127 - 127 + 0, 0)]   # 191->127, -200->-127, 127, -128->-127
    beats[-1] = 173                                  # last group exactly -127: not clamped
    got = run_accumulator(beats, tags, acc_width=24, tile_k=4)
    assert got == [(127 - 127 + 127 - 127, 0)]
    beats[-1] = 400                                  # last group +100, inside the range
    assert run_accumulator(beats, tags, acc_width=24, tile_k=4) == [(127 - 127 + 127 + 100, 0)]


# --- the whole array -----------------------------------------------------------------------------

def make_dut(array="mac", **kw):
    """A MacArray (``array="mac"``) or SystolicArray (``"systolic"``; no ``backend``) for simulation."""
    params = {"rows": 2, "cols": 4, "acc_width": 20, "tile_k": 8, "backend": "lut", "primitives": False}
    params.update(kw)
    if array == "systolic":
        del params["backend"]
        return SystolicArray(**params)
    return MacArray(**params)


@pytest.mark.parametrize("backend,spill,lane_dsps", [("lut", True, False), ("ice40", True, False),
                                                     ("ecp5", True, False), ("ice40", False, False),
                                                     ("ice40", False, True)])
def test_array_mixed_modes_with_stalls(backend, spill, lane_dsps):
    dut = make_dut(backend=backend, spill=spill, lane_dsps=lane_dsps)
    rng = np.random.default_rng(len(backend))
    tiles = mixed_tiles(rng, dut, 24)
    res = run_tiles(dut, tiles, stall=0.4, seed=1, max_cycles=20000)
    assert res["rows"] == expected_rows(tiles, dut.rows)
    assert res["status"]["idle"] == 1


@pytest.mark.parametrize("lane_dsps", [False, True])
def test_array_without_saturation_in_range(lane_dsps):
    """MacArray(saturate=False) on tiles whose sums stay in range (signed activations, k <= 31,
    |sum| <= 31 * 2**14 < 2**19 at acc_width 20): the saturating array's results, flag clear."""
    dut = make_dut(backend="ice40", spill=False, lane_dsps=lane_dsps, tile_k=0, saturate=False)
    rng = np.random.default_rng(5)
    tiles = []
    for i in range(16):
        mode = MODES[i % len(MODES)]
        k = int(rng.integers(1, 32))
        x = random_acts(rng, (dut.rows, k))
        w = random_weights(rng, (dut.cols, k), mode)
        if i == 0:                                   # the extreme: 31 products -128 * -128
            x = np.full((dut.rows, 31), -128)
            w = np.full((dut.cols, 31), -128)
        tiles += gemm_tiles(x, w, mode, rows=dut.rows, cols=dut.cols, acc_width=20, tile_k=0)
    res = run_tiles(dut, tiles, stall=0.3, seed=2, max_cycles=20000)
    assert res["rows"] == expected_rows(tiles, dut.rows)
    assert res["status"]["overflow"] == 0


def test_array_gemm_every_mode_no_stalls_full_rate():
    """A GEMM per mode; without stalls a tile takes one cycle per beat (mode changes included)."""
    dut = make_dut(rows=2, cols=2)
    rng = np.random.default_rng(7)
    tiles = []
    for mode in MODES:
        x = random_acts(rng, (4, 24))
        w = random_weights(rng, (4, 24), mode)
        tiles += gemm_tiles(x, w, mode, rows=2, cols=2, acc_width=20, tile_k=8)
    res = run_tiles(dut, tiles, max_cycles=5000)
    assert res["rows"] == expected_rows(tiles, 2)
    beats = sum(len(t["act"]) for t in tiles)
    assert res["cycles"] <= beats + 10, (res["cycles"], beats)  # + fill and drain latency


def test_array_tiles_of_rows_beats_run_back_to_back():
    """Tiles exactly `rows` beats long: the result buffer hands over without a bubble."""
    dut = make_dut(rows=2, cols=2)
    tiles = cycled_tiles(np.random.default_rng(8), dut, 12, beats=2)
    res = run_tiles(dut, tiles, max_cycles=500)
    assert res["rows"] == expected_rows(tiles, 2)
    assert res["cycles"] <= 2 * len(tiles) + 10, res["cycles"]  # one bubble per tile would be + 12


@pytest.mark.parametrize("spill", [True, False])
@pytest.mark.parametrize("rows", [1, 2, 3])
def test_array_short_tiles_with_consumer_stalls(rows, spill):
    """Tiles of `rows` beats or fewer while the consumer stalls at random: the spill row keeps the
    previous tile's last row when the next tile loads (without it, the tile waits for the empty
    buffer); nothing lost, duplicated or reordered."""
    dut = make_dut(rows=rows, cols=2, spill=spill)
    rng = np.random.default_rng(20 + rows)
    tiles = short_tiles(rng, dut)
    for seed in range(3):
        res = run_tiles(dut, tiles, stall=0.3, seed=seed, max_cycles=5000)
        assert res["rows"] == expected_rows(tiles, rows)
        assert res["status"]["idle"] == 1


@pytest.mark.parametrize("array", ["mac", "systolic"])
def test_array_saturation_flags_and_clear(array):
    dut = make_dut(array, rows=1, cols=2, acc_width=17)
    x = np.full((1, 12), -128)
    w = np.array([[-128] * 12, [1] * 12])
    tiles = gemm_tiles(x, w, "int8", rows=1, cols=2, acc_width=17)
    tiles += gemm_tiles(x[:, :2], w[:, :2], "int8", rows=1, cols=2, acc_width=17)
    res = run_tiles(dut, tiles, max_cycles=500)
    assert res["rows"] == expected_rows(tiles, 1)
    assert [r["overflow"] for r in res["rows"]] == [True, False]
    assert res["rows"][0]["values"] == [65535, -1536]
    assert res["status"]["overflow"] == 1      # sticky after a clean tile

    def probe(dut):
        async def clear_then_check(ctx):
            await ctx.tick().until(dut.o_overflow)
            for _ in range(30):
                await ctx.tick()
            ctx.set(dut.i_clear, 1)
            await ctx.tick()
            ctx.set(dut.i_clear, 0)
        return clear_then_check

    res = run_tiles(make_dut(array, rows=1, cols=2, acc_width=17), tiles + tiles[1:] * 20, probe=probe,
                    max_cycles=3000)
    assert res["status"]["overflow"] == 0


@pytest.mark.parametrize("array", ["mac", "systolic"])
def test_array_saturation_both_rails_and_back(array):
    """Long int8/int4/int2 tiles whose sums swing between both rails of a 17-bit accumulator and
    come back from them (saturation per update), back to back with short clean tiles."""
    dut = make_dut(array, rows=2, cols=4, acc_width=17, tile_k=0)
    rng = np.random.default_rng(17)
    tiles = []
    for mode, run in (("int8", 12), ("int4", 100), ("int2", 320)):
        lanes = spec.lanes(mode)
        top = {"int8": 127, "int4": 7, "int2": 1}[mode]
        k = 5 * run * lanes // 2
        x = rng.integers(100, 128, (2, k))
        # Per column a run of one sign (to a rail), one of the other (back, to the other rail),
        # half a run of the first (back, ending between the rails).
        sign = np.where((np.arange(k) // (run * lanes)) % 2 == 0, 1, -1)
        w = np.array([sign * (top if c % 2 else -top - 1 if mode != "int2" else -2) * (1 if c < 2 else -1)
                      for c in range(4)])
        w = np.clip(w, -top - 1, top)
        tiles += gemm_tiles(x, w, mode, rows=2, cols=4, acc_width=17, tile_k=8)
        tiles += gemm_tiles(x[:, :lanes], w[:, :lanes], mode, rows=2, cols=4, acc_width=17, tile_k=8)
    res = run_tiles(dut, tiles, stall=0.2, seed=3, max_cycles=20000)
    assert res["rows"] == expected_rows(tiles, 2)
    flags = [r["overflow"] for r in res["rows"]]
    assert any(flags) and not all(flags)


@pytest.mark.parametrize("array", ["mac", "systolic"])
def test_array_undefined_mode_drops_tile_and_recovers(array):
    dut = make_dut(array)
    rng = np.random.default_rng(11)
    tiles = mixed_tiles(rng, dut, 6)
    bad = []
    for code in (4, 7):
        b = dict(tiles[0])
        beats = int(rng.integers(1, 9))
        b["cmd"] = spec.pack_cmd(mode=code, beats=beats, count_bits=dut.count_bits)
        b["act"] = [int(v) for v in rng.integers(0, 1 << 30, beats)]
        b["wgt"] = [int(v) for v in rng.integers(0, 1 << 30, beats) & 0xFFFFFFFF]
        bad.append(b)
    seq = tiles[:2] + [bad[0]] + tiles[2:4] + [bad[1]] + tiles[4:]
    res = run_tiles(dut, seq, stall=0.3, seed=5, max_cycles=10000)
    assert res["rows"] == expected_rows(seq, dut.rows)
    assert res["status"]["mode_error"] == 1 and res["status"]["idle"] == 1


@pytest.mark.parametrize("array", ["mac", "systolic"])
def test_array_tile_saturation_option(array):
    """HDQT-style: int4 weights ±7, 4-bit activations, groups of 8 products clamped to ±127."""
    dut = make_dut(array, rows=2, cols=4, tile_k=8, acc_width=20)
    rng = np.random.default_rng(13)
    tiles = []
    for k in (8, 13, 24, 31):
        x = rng.integers(0, 16, (2, k))
        w = rng.integers(-7, 8, (4, k))
        w[0] = 7                      # a column whose groups hit +127
        w[1] = -7                     # and one that hits -127
        tiles += gemm_tiles(x, w, "int4", rows=2, cols=4, act_unsigned=True, tile_sat=True, acc_width=20,
                            tile_k=8)
    # Mode changes inside the same run: tile_sat with int8 (1 lane) and int2 (4 lanes).
    tiles += mixed_tiles(rng, dut, 6, tile_sat=True)
    res = run_tiles(dut, tiles, stall=0.2, seed=2, max_cycles=10000)
    assert res["rows"] == expected_rows(tiles, 2)
    assert any(abs(v) == 127 * 2 for r in res["rows"] for v in r["values"][:2])


def test_array_without_tile_option_runs_tile_sat_commands_plain():
    dut = make_dut(tile_k=0)
    rng = np.random.default_rng(17)
    x = rng.integers(0, 16, (2, 20))
    w = np.full((4, 20), 7)
    tiles = gemm_tiles(x, w, "int4", rows=2, cols=4, act_unsigned=True, tile_sat=False, acc_width=20)
    for t in tiles:   # the same streams with tile_sat set in the command
        t["cmd"] |= 1 << 4
    res = run_tiles(dut, tiles, max_cycles=1000)
    assert res["rows"] == expected_rows(tiles, 2)


def test_primitives_elaborate():
    """The DSP backends with primitives instantiate SB_MAC16 / MULT18X18D (checked in the netlist)."""
    from amaranth.back import rtlil
    assert rtlil.convert(MacArray(rows=1, cols=2, backend="ice40"), name="m").count("SB_MAC16") >= 1
    assert rtlil.convert(MacArray(rows=1, cols=2, backend="ecp5"), name="m").count("MULT18X18D") >= 2
    model = MacArray(rows=1, cols=2, backend="ice40", primitives=False)
    assert "SB_MAC16" not in rtlil.convert(model, name="m")


def test_array_inside_a_parent_module_matches_golden():
    """A MacArray as a submodule of a plain Module (as the boards and the HDQT layer hold it): int8
    and int2 GEMM tiles with stalls come out as the golden model computes them."""
    dut = MacArray(rows=1, cols=1, primitives=False)
    parent = Module()
    parent.submodules.mac = dut
    rng = np.random.default_rng(23)
    tiles = []
    for mode in ("int8", "int2"):
        x, w = random_acts(rng, (1, 37)), random_weights(rng, (1, 37), mode)
        tiles += gemm_tiles(x, w, mode, rows=1, cols=1, acc_width=dut.acc_width)
    res = run_tiles(dut, tiles, stall=0.3, seed=5, top=parent, max_cycles=2000)
    assert res["rows"] == expected_rows(tiles, 1)
    assert any(row["values"][0] != 0 for row in res["rows"])
