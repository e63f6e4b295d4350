"""Systolic MAC array (:class:`hw.mac.systolic.SystolicArray`) in Amaranth's simulator vs the golden model.

Behavioural multiplier model (``primitives=False``): the lane packing, the borrow correction, the
fabric lanes, the skew, the shadow drain and the flow control are the design's own logic and are
checked bit-exactly; every mode, int8 and uint8 activations, every packed weight byte, extremes,
random stalls on all four streams, short tiles against the drain gap, a consumer away for long.
Saturation flags, undefined modes and the tile-saturating option: ``tests/test_mac_rtl.py``, which
runs those tests on both arrays.
"""

import gc

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.sim import Simulator

from hw.lib.async_fifo import RegisteredWriteAsyncFIFO
from hw.mac import spec
from hw.mac.systolic import SystolicArray, SystolicPair
from sim.formal.harness import mutated
from sim.mac.amaranth_run import cycled_tiles, expected_rows, mixed_tiles, payload_int, run_tiles, short_tiles
from sim.mac.golden import gemm_tiles, random_acts, random_weights
from sim.streams import stream_get_n, stream_put_all

MODES = list(spec.MODES)


def make_dut(cls=SystolicArray, **kw):
    params = {"rows": 2, "cols": 4, "acc_width": 20, "tile_k": 0, "primitives": False}
    params.update(kw)
    return cls(**params)


def tiles_of(dut, x, w, mode, **kw):
    return gemm_tiles(x, w, mode, rows=dut.rows, cols=dut.cols, acc_width=dut.acc_width,
                      tile_k=dut.tile_k or 32, tile_bits=dut.tile_bits, count_bits=dut.count_bits, **kw)


@pytest.mark.parametrize("product_stages", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_every_weight_byte_against_extreme_activations(mode, product_stages):
    """One-beat tiles: each result is one beat sum; every byte 0..255 in every column position
    (also with a second product register stage in the pairs)."""
    dut = make_dut(rows=2, cols=4, product_stages=product_stages)
    rng = np.random.default_rng(MODES.index(mode))
    n = spec.lanes(mode)
    extremes = [-128, 127, -1, 0, 1]
    tiles = []
    for b0 in range(0, 256, 4):
        for unsigned in (False, True):
            ext = [0, 255, 128, 127, 1] if unsigned else extremes
            x = np.array([[ext[int(rng.integers(len(ext)))] if rng.random() < .6 else
                           int(rng.integers(0, 256) if unsigned else rng.integers(-128, 128))
                           for _ in range(n)] for _ in range(2)])
            w = np.array([spec.unpack_weight_byte((b0 + 1 + 67 * c) % 256 if unsigned else b0 + c, mode)
                          for c in range(4)])
            tiles += tiles_of(dut, x, w, mode, act_unsigned=unsigned)
    res = run_tiles(dut, tiles, max_cycles=20000)
    assert res["rows"] == expected_rows(tiles, 2)


@pytest.mark.parametrize("product_stages", [1, 2])
def test_mixed_modes_with_stalls(product_stages):
    dut = make_dut(rows=3, cols=4, product_stages=product_stages)
    rng = np.random.default_rng(1)
    tiles = mixed_tiles(rng, dut, 24)
    res = run_tiles(dut, tiles, stall=0.4, seed=1, max_cycles=20000)
    assert res["rows"] == expected_rows(tiles, 3)
    assert res["status"]["idle"] == 1 and res["status"]["mode_error"] == 0


def extreme_operands_match(array=SystolicArray, **kw):
    """Largest products and their signs (uint8 255 and int8 -128 against each mode's extremes)
    through a 2 x 4 ``array`` (constructed with ``kw`` too): its results equal the golden model's."""
    dut = array(rows=2, cols=4, acc_width=24, tile_k=0, primitives=False, **kw)
    tiles = []
    for mode in MODES:
        lo, hi = spec.WEIGHT_RANGE[spec.MODES[mode]]
        w = np.array([[lo] * 40, [hi] * 40, [lo, hi] * 20, [hi, lo] * 20])
        for unsigned, (a, b) in ((True, (255, 0)), (False, (-128, 127))):
            x = np.array([[a] * 40, [a, b] * 20])
            tiles += tiles_of(dut, x, w, mode, act_unsigned=unsigned)
    res = run_tiles(dut, tiles, stall=0.2, seed=3, max_cycles=20000)
    return res["rows"] == expected_rows(tiles, 2)


@pytest.mark.parametrize("product_stages", [1, 2])
def test_extreme_operands_every_mode(product_stages):
    assert extreme_operands_match(product_stages=product_stages)


def first_row_latency(array=SystolicArray, **kw):
    """Cycles from the cycle a 2 x 4 ``array``'s only tile's last beat is taken to the cycle its
    first result row is offered on ``o_res``."""
    dut = array(rows=2, cols=4, acc_width=24, tile_k=0, primitives=False, **kw)
    tiles = tiles_of(dut, np.ones((2, 8), dtype=int), np.ones((4, 8), dtype=int), "int8")
    seen = {}

    def probe(dut):
        async def watch(ctx):
            cycle = 0
            while "res" not in seen:
                _, _, valid, ready, res = await ctx.tick().sample(dut.i_act.valid, dut.i_act.ready,
                                                                 dut.o_res.valid)
                if valid and ready:
                    seen["last"] = cycle
                if res:
                    seen["res"] = cycle
                cycle += 1
        return watch

    res = run_tiles(dut, tiles, max_cycles=2000, probe=probe)
    assert res["rows"] == expected_rows(tiles, 2)
    return seen["res"] - seen["last"]


@pytest.mark.parametrize("out_reg", [True, False])
def test_second_product_stage_keeps_the_latency(out_reg):
    """The first result row is offered the same number of cycles after the cycle of the last
    beat's take with one product stage or two (the result deskew a cycle shorter): 14 at 2 x 4
    (13 without ``out_reg``); a mutant that keeps the deskew with two stages is a cycle late."""
    expected = 14 if out_reg else 13
    for stages in (1, 2):
        assert first_row_latency(out_reg=out_reg, product_stages=stages) == expected
    mutant = mutated("hw.mac.systolic", "SystolicArray", "range(P - p - (self._product_stages - 1))",
                     "range(P - p)")
    assert first_row_latency(mutant, out_reg=out_reg, product_stages=2) == expected + 1


def test_full_rate_without_stalls():
    """Long tiles in changing modes: one beat per cycle (plus the fill and drain latency once)."""
    dut = make_dut(rows=4, cols=8)
    rng = np.random.default_rng(7)
    tiles = []
    for mode in MODES:
        x = random_acts(rng, (8, 48), unsigned=True)
        w = random_weights(rng, (8, 48), mode)
        tiles += tiles_of(dut, x, w, mode, act_unsigned=True)
    res = run_tiles(dut, tiles, max_cycles=5000)
    assert res["rows"] == expected_rows(tiles, 4)
    beats = sum(len(t["act"]) for t in tiles)
    assert res["cycles"] <= beats + 40, (res["cycles"], beats)


@pytest.mark.parametrize("rows", [1, 2, 4])
def test_short_tiles_with_consumer_stalls(rows):
    """Tiles shorter than the drain gap while the consumer stalls: the last-beat hold and the
    FIFO credits keep results from being overwritten; nothing lost, duplicated or reordered."""
    dut = make_dut(rows=rows, cols=2)
    rng = np.random.default_rng(20 + rows)
    tiles = short_tiles(rng, dut)
    for seed, stall in ((0, 0.0), (1, 0.3), (2, 0.8)):
        res = run_tiles(dut, tiles, stall=stall, seed=seed, max_cycles=20000)
        assert res["rows"] == expected_rows(tiles, rows)
        assert res["status"]["idle"] == 1
    # Without stalls the short tiles run at one per drain gap (2 * rows - 1 cycles; 2 is the
    # command handshake's limit), not slower: the output FIFO's credits do not hold them back.
    res = run_tiles(dut, tiles, max_cycles=20000)
    beats = [len(t["act"]) for t in tiles]
    assert res["cycles"] <= sum(max(b, 2 * rows - 1, 2) for b in beats) + 2 * rows + 14


class CreditReader(Elaboratable):
    """``array`` (with ``res_credit``) whose rows go into a 4-deep ``RegisteredWriteAsyncFIFO``
    (``room_ahead`` into ``i_res_room``), read out on ``o_res``: the ULX3S engine's result path.
    ``refused`` (sticky): a row was offered with the FIFO's ``i.ready`` low. The reader reaches
    the FIFO in one cycle of three only, so that the rows back up and the FIFO fills."""

    def __init__(self, array):
        self.array = array
        width = len(array.o_res.payload.as_value())
        self.fifo = RegisteredWriteAsyncFIFO(width, 4, room_ahead=True)
        self.refused = Signal()
        for name in ("i_cmd", "i_act", "i_wgt", "o_overflow", "o_mode_error", "o_idle",
                     "rows", "cols", "acc_width", "count_bits"):
            setattr(self, name, getattr(array, name))
        self.o_res = stream.Signature(width).create()

    def elaborate(self, platform):
        m = Module()
        m.submodules.array, m.submodules.fifo = a, f = self.array, self.fifo
        m.d.comb += [f.i.payload.eq(a.o_res.payload), f.i.valid.eq(a.o_res.valid),
                     a.o_res.ready.eq(f.i.ready), a.i_res_room.eq(f.w_room_ahead)]
        phase = Signal(range(3))
        m.d.sync += phase.eq(Mux(phase == 2, 0, phase + 1))
        m.d.comb += [self.o_res.payload.eq(f.o.payload), self.o_res.valid.eq(f.o.valid & (phase == 0)),
                     f.o.ready.eq(self.o_res.ready & (phase == 0))]
        m.d.sync += self.refused.eq(self.refused | (a.o_res.valid & ~f.i.ready))
        return m


def _credit_run(cls=SystolicArray, seed=3):
    """Short tiles through a ``res_credit`` array and :class:`CreditReader` with stalls; whether
    every row came out exact and none was refused."""
    dut = make_dut(cls=cls, rows=2, cols=4, res_credit=True)
    tiles = short_tiles(np.random.default_rng(40 + seed), dut)
    top = CreditReader(dut)
    refused = []

    def probe(_):
        async def watch(ctx):
            while not refused:
                await ctx.tick()
                if ctx.get(top.refused):
                    refused.append(1)
        return watch

    try:
        res = run_tiles(top, tiles, stall=0.5, seed=seed, max_cycles=20000, top=top, probe=probe)
        exact = res["rows"] == expected_rows(tiles, 2)
    except (TimeoutError, AssertionError):
        exact = False
    gc.collect()     # a cut-short run's coroutines, here (where their warning is ignored)
    return exact and not refused


def test_result_rows_on_the_room_ahead():
    """``res_credit``: the rows go out on the reader's room a cycle ahead, each result slice and
    the collector with a register copy of it: exact and never refused under consumer stalls that
    fill the 4-deep FIFO."""
    assert _credit_run()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # a run cut short
@pytest.mark.parametrize("old, new", [
    ("m.d.sync += copy.eq(self.i_room)", "m.d.sync += copy.eq(1)"),
    ("slices[0].i_offer_ok.eq(~self.i_flush_next & self.i_room)",
     "slices[0].i_offer_ok.eq(~self.i_flush_next)"),
], ids=["copies-ignore-the-room", "valid-ignores-the-room"])
def test_result_rows_on_the_room_ahead_mutants_fail(old, new):
    """Copies that ignore the room (rows taken while the FIFO is full), or a valid that does not
    wait for it (a row offered and not taken, the slices stepping alone): rows lost or refused."""
    assert not _credit_run(mutated("hw.mac.systolic", "SystolicArray", old, new))


def test_bad_res_credit():
    with pytest.raises(TypeError, match="res_credit"):
        make_dut(res_credit=1)


def test_consumer_away_for_long_holds_the_inputs():
    """The consumer takes nothing for 600 cycles while 40 tiles wait: the array fills its output
    FIFO's credits, then stops taking last beats; afterwards every row comes out in order."""
    dut = make_dut(rows=2, cols=2)
    tiles = cycled_tiles(np.random.default_rng(5), dut, 40, beats=3)
    got = []
    taken_while_away = []

    def producer(name, key):
        if key == "cmd":
            words = [data.Const(dut.i_cmd.payload.shape(), t["cmd"]) for t in tiles]
        else:
            words = [w for t in tiles for w in t[key]]

        async def put(ctx):
            await stream_put_all(ctx, getattr(dut, name), words)
        return put

    async def consumer(ctx):
        for _ in range(600):
            await ctx.tick()
        taken_while_away.append(ctx.get(dut.o_res.valid))
        got.extend(await stream_get_n(ctx, dut.o_res, 2 * len(tiles)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for name, key in (("i_cmd", "cmd"), ("i_act", "act"), ("i_wgt", "wgt")):
        sim.add_testbench(producer(name, key))
    sim.add_testbench(consumer)

    async def watchdog(ctx):
        # Lost rows would leave the consumer waiting forever.
        n = 0
        async for _ in ctx.tick():
            n += 1
            if n > 5000:
                raise TimeoutError(f"{len(got)} of {2 * len(tiles)} result rows after {n} cycles")
    sim.add_testbench(watchdog, background=True)
    sim.run()
    rows = [spec.unpack_res(payload_int(p), rows=2, cols=2, acc_width=dut.acc_width) for p in got]
    assert taken_while_away == [1]
    assert rows == expected_rows(tiles, 2)


def run_flush(dut, before, after):
    """Feed the ``before`` tiles and take none of their rows; once they are in, pulse
    ``i_flush`` and record ``o_idle``, ``o_res.valid`` and ``i_cmd.ready`` in each of the next
    ``flush_cycles + 1`` cycles; then run the ``after`` tiles and collect their rows (for 600
    cycles at most). With ``res_credit`` the reader's room is low until the flush (the rows back
    up) and high from then on."""
    credit = hasattr(dut, "i_res_room")
    phase = {"in": 0, "flushed": False}
    seen, got = [], []

    def producer(name, key):
        async def put(ctx):
            for tiles in (before, after):
                if key == "cmd":
                    words = [data.Const(dut.i_cmd.payload.shape(), t["cmd"]) for t in tiles]
                else:
                    words = [w for t in tiles for w in t[key]]
                await stream_put_all(ctx, getattr(dut, name), words)
                phase["in"] += 1
                while not phase["flushed"]:
                    await ctx.tick()
        return put

    async def control(ctx):
        while phase["in"] < 3:
            await ctx.tick()
        for _ in range(60 if credit else 4):     # with the credit, until rows wait in the slices
            await ctx.tick()
        ctx.set(dut.i_flush, 1)
        if credit:
            # The reader's room from the flush on: rows still offered would be taken.
            ctx.set(dut.i_res_room, 1)
        await ctx.tick()
        ctx.set(dut.i_flush, 0)
        for _ in range(dut.flush_cycles + 1):
            seen.append((ctx.get(dut.o_idle), ctx.get(dut.o_res.valid), ctx.get(dut.i_cmd.ready)))
            await ctx.tick()
        phase["flushed"] = True
        ctx.set(dut.o_res.ready, 1)
        for _ in range(600):        # bounded: a mutant may never deliver them
            if len(got) == dut.rows * len(after):
                break
            if ctx.get(dut.o_res.valid):
                got.append(ctx.get(dut.o_res.payload))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for name, key in (("i_cmd", "cmd"), ("i_act", "act"), ("i_wgt", "wgt")):
        sim.add_testbench(producer(name, key))
    sim.add_testbench(control)
    sim.run_until(2e-5)
    gc.collect()     # a mutant's producers left waiting, here (where their warning is ignored)
    rows = [spec.unpack_res(payload_int(p), rows=dut.rows, cols=dut.cols, acc_width=dut.acc_width)
            for p in got]
    return seen, rows


@pytest.mark.parametrize("flushing", ["flush_left > 1", "flush_left > 2", "flush_left > 0"])
@pytest.mark.parametrize("flush_root", [False, True])
def test_flush_holds_for_flush_cycles(flushing, flush_root):
    """A flush with result rows backed up: from the next cycle, for ``flush_cycles`` cycles, no
    row offered, no command taken, not idle; then idle, the rows before it gone, and the next
    tiles exact; also with the result slices' clear from a root register (``flush_root``, a cycle
    later). The count's look-ahead off by one either way (mutants) fails it."""
    array = mutated("hw.mac.systolic", "SystolicArray", "flush_left > 1", flushing)
    dut = array(rows=2, cols=4, acc_width=20, tile_k=0, primitives=False, flush_root=flush_root)
    rng = np.random.default_rng(31)
    before, after = cycled_tiles(rng, dut, 2, beats=3), cycled_tiles(rng, dut, 3, beats=4)
    seen, rows = run_flush(dut, before, after)
    good = (seen == [(0, 0, 0)] * dut.flush_cycles + [(1, 0, 1)] and rows == expected_rows(after, 2))
    assert good == (flushing == "flush_left > 1"), seen


@pytest.mark.parametrize("offer_ok", ["~self.i_flush_next & self.i_room", "self.i_room"],
                         ids=["as-built", "offer-ignores-the-flush"])
def test_flush_holds_with_res_credit(offer_ok):
    """``res_credit`` with the slices' clear from a root register (the ULX3S engine): rows backed
    up, the reader's room high from the flush on; no row offered while flushing, then the next
    tiles exact. The offer register without the flush term offers a row in the flush (mutant)."""
    array = mutated("hw.mac.systolic", "SystolicArray", "~self.i_flush_next & self.i_room", offer_ok)
    dut = array(rows=2, cols=4, acc_width=20, tile_k=0, primitives=False, flush_root=True,
                res_credit=True)
    rng = np.random.default_rng(32)
    before, after = cycled_tiles(rng, dut, 2, beats=3), cycled_tiles(rng, dut, 3, beats=4)
    seen, rows = run_flush(dut, before, after)
    good = (seen == [(0, 0, 0)] * dut.flush_cycles + [(1, 0, 1)] and rows == expected_rows(after, 2))
    assert good == (offer_ok == "~self.i_flush_next & self.i_room"), seen


@pytest.mark.parametrize("cols", [3, 18, 0, True])
def test_bad_cols(cols):
    """Column pairs: cols even, 2..16 (the other parameters: test_mac_rtl.test_bad_parameters)."""
    message = f"cols must be an even integer from 2 to 16 .column pairs., not {cols!r}"
    with pytest.raises(ValueError, match=message):
        SystolicArray(cols=cols)


def test_primitives_elaborate():
    """With primitives, two MULT18X18D per PE pair with all their registers; without, none."""
    text = rtlil.convert(SystolicArray(rows=2, cols=4), name="m")
    assert text.count("cell \\MULT18X18D") == 2 * 2 * 2
    assert 'parameter \\REG_PIPELINE_CLK "CLK0"' in text
    # Only the clock, enable and reset selectors the registers use are connected: nextpnr routes
    # a constant on any other one through the fabric.
    for port in ("CLK", "CE", "RST"):
        assert f"connect \\{port}0 " in text
        assert not any(f"connect \\{port}{i} " in text for i in (1, 2, 3))
    assert "MULT18X18D" not in rtlil.convert(make_dut(), name="m")


def test_pair_flag_copies_are_kept():
    """The int8 flag reaches the beat-sum selects as four flip-flops (per column, per half of the
    beat-sum bits) and the valid/first tags reach each column's accumulator as flip-flops of its
    own; all carry ``keep``, so Yosys does not merge the equal registers back into one."""
    text = rtlil.convert(SystolicPair(acc_width=24, tile_k=0, primitives=False), name="m")
    names = [f"is8_4_{col}{half}" for col in (0, 1) for half in "lh"]
    names += [f"{tag}_{col}" for tag in ("valid", "first") for col in (0, 1)]
    for name in names:
        assert f"attribute \\keep 1\n  wire width 1 \\{name}\n" in text, name
    # One accumulator grid per column.
    assert [ln.split()[-1] for ln in text.splitlines() if ln.startswith("  cell \\m.accs")] == ["\\accs0",
                                                                                              "\\accs1"]


# Mutants: each breaks one of the pair's per-column copies and fails the extreme-operands check.
PAIR_MUTANTS = {
    "int8 flag, column 1's high copy never loaded (stays 0)":
        ("m.d.sync += [reg.eq(is8_3) for col in is8 for reg in col]",
         "m.d.sync += [reg.eq(is8_3) for col in is8 for reg in col if reg is not is8[1][1]]"),
    "int8 flag, column 0's low copy stuck at 1":
        ("m.d.sync += [reg.eq(is8_3) for col in is8 for reg in col]",
         "m.d.sync += [reg.eq(is8_3 | (reg is is8[0][0])) for col in is8 for reg in col]"),
    "column 1's first tag copy never set (its accumulator is not cleared)":
        ("first.eq(self.t_in.first)", "first.eq(self.t_in.first & (col == 0))"),
    "column 1's half of the shadow captured on the cycle before its done":
        ("with m.If(accs[1].done):", "with m.If(accs[1].done_next):"),
}


@pytest.mark.parametrize("mutation", list(PAIR_MUTANTS))
def test_pair_copy_mutants_fail(mutation):
    old, new = PAIR_MUTANTS[mutation]
    assert not extreme_operands_match(mutated("hw.mac.systolic", "SystolicArray", old, new)), mutation


# Mutants of the second product stage (the beat sums' compressor registered): each leaves one of
# the values the beat sums' carry chains take a cycle off the others.
STAGE_MUTANTS = {
    "tags not a cycle later": ("p + PAIR_LATENCY + self._product_stages", "p + PAIR_LATENCY + 1"),
    "the chain's carry-in not delayed": ("half, carry, cin1 = half_q, carry_q, cin1_q",
                                         "half, carry = half_q, carry_q"),
    "the compressor's words not registered": ("half, carry, cin1 = half_q, carry_q, cin1_q", "pass"),
}


@pytest.mark.parametrize("mutation", list(STAGE_MUTANTS))
def test_product_stage_mutants_fail(mutation):
    old, new = STAGE_MUTANTS[mutation]
    mutant = mutated("hw.mac.systolic", "SystolicArray", old, new)
    assert not extreme_operands_match(mutant, product_stages=2), mutation


# Mutants of the last-beat hold (``last_ok``'s next value picked among candidates from registers):
# each lets a last beat in too early and loses or overwrites result rows.
LAST_OK_MUTANTS = {
    "the drain gap ignored": ("(wait <= 1)", "1"),
    "a last beat's own reservation ignored": ("last_ok.eq(Mux(reserve,", "last_ok.eq(Mux(0,"),
    "the free count's reservation ignored": ("free + pop - (R if res else 0)", "free + pop"),
}


@pytest.mark.parametrize("mutation", list(LAST_OK_MUTANTS))
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # a run cut short
def test_last_ok_mutants_fail(mutation):
    old, new = LAST_OK_MUTANTS[mutation]
    Mutant = mutated("hw.mac.systolic", "SystolicArray", old, new)
    dut = Mutant(rows=2, cols=2, acc_width=20, tile_k=0, primitives=False)
    tiles = short_tiles(np.random.default_rng(22), dut)
    failed = False
    for seed, stall in ((0, 0.0), (1, 0.3), (2, 0.8)):
        try:
            res = run_tiles(dut, tiles, stall=stall, seed=seed, max_cycles=20000)
        except (TimeoutError, AssertionError):
            failed = True
            break
        failed |= res["rows"] != expected_rows(tiles, 2)
    gc.collect()     # the cut-short run's coroutines, here (where their warning is ignored)
    assert failed, mutation


def test_flush_root_mutant_fails():
    """With ``flush_root``, a root register that ignores the flush keeps the rows from before it
    (the flush test fails)."""
    array = mutated("hw.mac.systolic", "SystolicArray", 'reset_root(m, self.i_flush_next, name="flush_root")',
                    'reset_root(m, 0, name="flush_root")')
    dut = array(rows=2, cols=4, acc_width=20, tile_k=0, primitives=False, flush_root=True)
    rng = np.random.default_rng(31)
    before, after = cycled_tiles(rng, dut, 2, beats=3), cycled_tiles(rng, dut, 3, beats=4)
    seen, rows = run_flush(dut, before, after)
    assert not (seen == [(0, 0, 0)] * dut.flush_cycles + [(1, 0, 1)] and rows == expected_rows(after, 2))
