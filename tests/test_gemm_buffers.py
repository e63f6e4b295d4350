"""The GEMM engine's activation buffer (:class:`hw.gemm.buffers.ActivationBuffer`) alone, against a
model of its contract, and the weight buffer (:class:`hw.gemm.buffers.WeightTileBuffer`) with
its write side in a clock domain of its own. The activation buffer: a load takes the next
``row_tiles * groups`` words to addresses 0, 1, ...; ``o_loading`` and ``i_act.ready`` are high
exactly until the last of them is written (or a clear); every word reads back from its address."""

import random

import pytest
from amaranth.sim import Simulator

from hw.gemm.buffers import ActivationBuffer, WeightTileBuffer
from sim.formal.harness import mutated
from sim.streams import simulate, stream_put

MAX_TILES, MAX_GROUPS = 3, 4


@pytest.mark.parametrize("rows, addr_reg", [(1, False), (2, True)])
def test_activation_buffer_loads_against_a_model(rows, addr_reg):
    """With ``addr_reg`` (one RAM per row, each behind its own address register) the word read
    comes two cycles after its address, else one."""
    dut = ActivationBuffer(rows=rows, max_row_tiles=MAX_TILES, max_groups=MAX_GROUPS, addr_reg=addr_reg)
    width = 32 * rows
    rng = random.Random(11)
    checked = {"cycles": 0, "words": 0}

    async def tb(ctx):
        left, addr, mem = 0, 0, {}
        for cycle in range(3000):
            load = left == 0 and rng.random() < 0.2 or rng.random() < 0.01     # also mid-load
            clear = not load and rng.random() < 0.005
            tiles, groups = rng.randint(0, MAX_TILES), rng.randint(1, MAX_GROUPS)
            valid, word = rng.random() < 0.6, rng.getrandbits(width)
            ctx.set(dut.i_load, load)
            ctx.set(dut.i_row_tiles, tiles)
            ctx.set(dut.i_groups, groups)
            ctx.set(dut.i_clear, clear)
            ctx.set(dut.i_act.valid, valid)
            ctx.set(dut.i_act.payload, word)
            assert ctx.get(dut.o_loading) == ctx.get(dut.i_act.ready) == (left != 0), cycle
            if load:
                left, addr = tiles * groups, 0
            elif valid and left:
                mem[addr] = word
                addr, left = addr + 1, left - 1
                checked["words"] += 1
            if clear:
                left = 0
            await ctx.tick()
            checked["cycles"] += 1
        ctx.set(dut.i_load, 0)
        ctx.set(dut.i_act.valid, 0)
        ctx.set(dut.rd_en, 1)
        addrs = list(mem)
        latency = 2 if addr_reg else 1
        for k in range(len(addrs) + latency - 1):
            # a new address every cycle: each word read back `latency` cycles after its address
            ctx.set(dut.rd_addr, addrs[k] if k < len(addrs) else 0)
            await ctx.tick()
            if k + 1 >= latency:
                a = addrs[k + 1 - latency]
                assert ctx.get(dut.rd_data) == mem[a], a

    simulate(dut, tb)
    assert checked["words"] > 500


def _read_right_after_a_load(cls):
    """``addr_reg``: load word A at address 0, then word B; name address 0 in the first cycle
    with ``o_loading`` low; returns the word read (B if the write landed before the read)."""
    dut = cls(rows=2, max_row_tiles=MAX_TILES, max_groups=MAX_GROUPS, addr_reg=True)
    got = []

    async def tb(ctx):
        for word in (0xAAAA_AAAA_AAAA_AAAA, 0xBBBB_BBBB_BBBB_BBBB):
            ctx.set(dut.i_load, 1)
            ctx.set(dut.i_row_tiles, 1)
            ctx.set(dut.i_groups, 1)
            await ctx.tick()
            ctx.set(dut.i_load, 0)
            await stream_put(ctx, dut.i_act, word)
            assert not ctx.get(dut.o_loading)
            ctx.set(dut.rd_addr, 0)
            await ctx.tick().repeat(2)
            got.append(ctx.get(dut.rd_data))
            await ctx.tick().repeat(3)

    simulate(dut, tb)
    return got


def test_activation_buffer_word_readable_as_the_load_ends():
    """With ``addr_reg`` each RAM writes a cycle after the take: a word named in the first cycle
    with ``o_loading`` low is already the new one."""
    assert _read_right_after_a_load(ActivationBuffer) == [0xAAAA_AAAA_AAAA_AAAA, 0xBBBB_BBBB_BBBB_BBBB]


def test_mutant_activation_buffer_writing_a_cycle_later_is_caught():
    """One register more in front of the RAMs' write ports: the read sees the old word."""
    Mutant = mutated(
        "hw.gemm.buffers", "ActivationBuffer",
        "m.d.sync += [rd_addr.eq(self.rd_addr), wr_addr.eq(addr), wr_data.eq(row), wr_en.eq(take)]",
        "take_q, addr_q, row_q = Signal(name=f'tq{r}'), Signal.like(addr, name=f'aq{r}'), "
        "Signal(row_bits, name=f'rq{r}'); m.d.sync += [take_q.eq(take), addr_q.eq(addr), row_q.eq(row)]; "
        "m.d.sync += [rd_addr.eq(self.rd_addr), wr_addr.eq(addr_q), wr_data.eq(row_q), wr_en.eq(take_q)]")
    assert _read_right_after_a_load(Mutant)[1] != 0xBBBB_BBBB_BBBB_BBBB


# --- The activation buffer with its write side in a clock domain of its own --------------------


async def _read_back(ctx, dut, words, latency, where):
    """Read addresses 0, 1, ... (a new one every cycle, ``rd_en`` high) and check that ``words``
    come back ``latency`` cycles after their addresses."""
    ctx.set(dut.rd_en, 1)
    for k in range(len(words) + latency - 1):
        ctx.set(dut.rd_addr, k if k < len(words) else 0)
        await ctx.tick()
        if k + 1 >= latency:
            j = k + 1 - latency
            assert ctx.get(dut.rd_data) == words[j], (where, j)


def _run_two_clocks(dut, w_period, *testbenches):
    """Simulate ``dut`` with ``sync`` at 10 ns and ``w`` at ``w_period`` ns."""
    sim = Simulator(dut)
    sim.add_clock(10e-9, domain="sync")
    sim.add_clock(w_period * 1e-9, domain="w")
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


def check_activation_buffer_across_clocks(cls, *, addr_reg, w_period, seed=5, n_loads=80):
    """Loads requested in ``sync`` (10 ns) at random shapes, their words written in domain ``w``
    (period ``w_period`` ns) with random stalls, some loads cleared half way (``i_w_clear`` held
    around ``i_clear`` as the crossing's flush holds it): ``i_act.ready`` only while the load
    wants words, ``o_loading`` high until all of them are taken, and then every word reads back
    from its address. Raises ``AssertionError`` otherwise (also when a load never ends)."""
    rows = 2
    dut = cls(rows=rows, max_row_tiles=MAX_TILES, max_groups=MAX_GROUPS, addr_reg=addr_reg, w_domain="w")
    rng = random.Random(seed)
    load = {"want": 0, "taken": []}      # the load in progress, as the reader asked for it
    done = {"loads": 0, "cleared": 0, "words": 0}

    async def writer(ctx):
        wrng = random.Random(seed + 1)
        while done["loads"] + done["cleared"] < n_loads:
            valid = wrng.random() < 0.7
            word = wrng.getrandbits(32 * rows)
            ctx.set(dut.i_act.valid, valid)
            ctx.set(dut.i_act.payload, word)
            ready = ctx.get(dut.i_act.ready)
            if ready:
                assert len(load["taken"]) < load["want"], "ready with no word wanted"
            await ctx.tick("w")
            if ready and valid:
                load["taken"].append(word)

    async def reader(ctx):
        latency = 2 if addr_reg else 1
        for n in range(n_loads):
            tiles, groups = rng.randint(0, MAX_TILES), rng.randint(1, MAX_GROUPS)
            load["want"], load["taken"] = tiles * groups, []
            ctx.set(dut.i_load, 1)
            ctx.set(dut.i_row_tiles, tiles)
            ctx.set(dut.i_groups, groups)
            await ctx.tick()
            ctx.set(dut.i_load, 0)
            clear_at = rng.randint(0, 2 * int(w_period) + 4) if rng.random() < 0.3 else None
            for cycle in range(20_000):
                if cycle == clear_at:
                    break
                if not ctx.get(dut.o_loading):
                    break
                await ctx.tick()
            else:
                raise AssertionError(f"load {n} never ended")
            if cycle == clear_at and ctx.get(dut.o_loading):
                ctx.set(dut.i_w_clear, 1)
                await ctx.tick()
                ctx.set(dut.i_clear, 1)
                await ctx.tick()
                ctx.set(dut.i_clear, 0)
                await ctx.tick().repeat(int(3 * w_period / 10) + 3)
                ctx.set(dut.i_w_clear, 0)
                for _ in range(1000):
                    if not ctx.get(dut.o_loading):
                        break
                    await ctx.tick()
                else:
                    raise AssertionError(f"load {n} still loading after its clear")
                done["cleared"] += 1
                continue
            assert len(load["taken"]) == load["want"], n
            await _read_back(ctx, dut, load["taken"], latency, n)
            done["loads"] += 1
            done["words"] += load["want"]

    _run_two_clocks(dut, w_period, writer, reader)
    return done


@pytest.mark.parametrize("addr_reg", [False, True])
@pytest.mark.parametrize("w_period", [3.3, 41])
def test_activation_buffer_loads_across_clocks(addr_reg, w_period):
    """The ULX3S's controller writes at a fifth of the array's clock (41 ns); also a faster writer."""
    done = check_activation_buffer_across_clocks(ActivationBuffer, addr_reg=addr_reg, w_period=w_period)
    assert done["cleared"] >= 3 and done["words"] > 100, done


# --- The weight buffer with its write side in a clock domain of its own -------------------------

COLS, LANES, DEPTH = 4, 2, 6


def _weight_tiles(rng, n):
    """``n`` tiles as the decoder writes them: ``(symbol beats, expected)``, a symbol beat
    ``(bytes, last, err)``; ``expected`` the bank's beat count, bad flag and (for a good tile) its
    beats as ``COLS``-byte words. Some tiles are bad: a flagged beat, too long, or ending inside a
    beat."""
    slots = COLS // LANES
    tiles = []
    for _ in range(n):
        kind = rng.choice(["good"] * 6 + ["err", "long", "partial"])
        beats = DEPTH + 2 if kind == "long" else rng.randint(1, DEPTH)
        syms = [[rng.getrandbits(8) for _ in range(LANES)] for _ in range(beats * slots)]
        if kind == "partial":
            syms = syms[:-1] if len(syms) > 1 else syms + [[0] * LANES] * 3
        beats_written = -(-len(syms) // slots)
        err = [kind == "err" and i == len(syms) // 2 for i in range(len(syms))]
        stream = [(s, i == len(syms) - 1, e) for i, (s, e) in enumerate(zip(syms, err))]
        words = [sum(b << (8 * k) for k, b in enumerate(sum(syms[j * slots:(j + 1) * slots], [])))
                 for j in range(beats_written)]
        tiles.append((stream, {"beats": min(beats_written, DEPTH), "bad": kind != "good",
                               "words": words if kind == "good" else None}))
    return tiles


def _sym_payload(sym):
    data, last, err = sym
    return {"bytes": data, "last": int(last), "err": int(err)}


def check_weight_buffer_across_clocks(cls, *, addr_reg, w_period, seed=3, n_tiles=40):
    """Tiles written in domain ``w`` (period ``w_period`` ns) at random rates, read in ``sync``
    (10 ns) at random times and released after random waits: every bank is seen full once, in
    order, with its count, flag and (good tiles) data. Raises ``AssertionError`` otherwise (also
    when the reader waits 5000 cycles for a bank)."""
    dut = cls(COLS, LANES, DEPTH, addr_reg=addr_reg, w_domain="w")
    rng = random.Random(seed)
    tiles = _weight_tiles(rng, n_tiles)
    seen = []

    async def writer(ctx):
        wrng = random.Random(seed + 1)
        for stream, _ in tiles:
            for sym in stream:
                await stream_put(ctx, dut.i_sym, _sym_payload(sym), rng=wrng, stall=0.3, domain="w")

    async def reader(ctx):
        rrng = random.Random(seed + 2)
        latency = 2 if addr_reg else 1
        for _, want in tiles:
            for _ in range(5000):
                if ctx.get(dut.o_full):
                    break
                await ctx.tick()
            else:
                raise AssertionError(f"bank {len(seen)} never full")
            got = {"beats": ctx.get(dut.o_beats), "bad": bool(ctx.get(dut.o_bad))}
            assert got == {"beats": want["beats"], "bad": want["bad"]}, (len(seen), got, want)
            if want["words"] is not None:
                await _read_back(ctx, dut, want["words"][:want["beats"]], latency, len(seen))
                ctx.set(dut.rd_en, 0)
            for _ in range(rrng.choice([0, 0, 1, 3, 12])):
                await ctx.tick()
            ctx.set(dut.i_release, 1)
            await ctx.tick()
            ctx.set(dut.i_release, 0)
            seen.append(got)

    _run_two_clocks(dut, w_period, writer, reader)
    assert len(seen) == n_tiles


@pytest.mark.parametrize("addr_reg", [False, True])
@pytest.mark.parametrize("w_period", [3.3, 7, 23])
def test_weight_buffer_hands_banks_across_clocks(addr_reg, w_period):
    check_weight_buffer_across_clocks(WeightTileBuffer, addr_reg=addr_reg, w_period=w_period)


def _check_weight_buffer(cls):
    check_weight_buffer_across_clocks(cls, addr_reg=True, w_period=7)


def _check_activation_buffer(cls):
    check_activation_buffer_across_clocks(cls, addr_reg=True, w_period=41)


@pytest.mark.parametrize("name, check, old, new", [
    # the writer's ready without the reader's release: a bank still being read is written over
    ("WeightTileBuffer", _check_weight_buffer,
     "ready.eq(~(fill_n ^ rel_w).bit_select(Mux(close, ~wb, wb), 1))", "ready.eq(1)"),
    # the reader's full without its own release toggle: a bank filled a second time is not seen
    ("WeightTileBuffer", _check_weight_buffer,
     "self.o_full.eq((fill_r ^ rel).bit_select(rb, 1))", "self.o_full.eq(fill_r.bit_select(rb, 1))"),
    # o_loading without the writer's done: it falls before the last words are written
    ("ActivationBuffer", _check_activation_buffer,
     "self.o_loading.eq(req | done_r)", "self.o_loading.eq(req)"),
    # the reader's request not dropped by a clear: the writer goes on with the cleared load
    ("ActivationBuffer", _check_activation_buffer,
     "        with m.If(self.i_clear):\n            m.d.sync += req.eq(0)\n", ""),
    # the writer starting again while its done is still up: each load is taken twice
    ("ActivationBuffer", _check_activation_buffer,
     "start.eq(~stop & ~loading & ~landing & ~done)", "start.eq(~stop & ~loading & ~landing)"),
], ids=["ready-ignores-release", "full-ignores-release", "loading-without-done", "clear-keeps-request",
        "restart-while-done"])
def test_hand_over_mutants_fail(name, check, old, new):
    """Each buffer's crossing of clocks, broken one way at a time, fails its two-clock check."""
    cls = mutated("hw.gemm.buffers", name, old, new)
    with pytest.raises(AssertionError):
        check(cls)


@pytest.mark.parametrize("make", [lambda: WeightTileBuffer(COLS, LANES, DEPTH, w_domain=3),
                                  lambda: ActivationBuffer(2, MAX_TILES, MAX_GROUPS, w_domain=3)],
                         ids=["weights", "activations"])
def test_w_domain_is_checked(make):
    with pytest.raises(TypeError, match="w_domain"):
        make()
