"""hw/lib/async_queue.py ``AsyncQueue``: a clock-crossing stream queue whose block-RAM read address
is a register, in Amaranth's simulator with two unrelated clocks.

Every word once and in order at several clock ratios (reader faster, slower, equal) with random
stalls on both sides, the same sequence as ``amaranth.lib.fifo.AsyncFIFO`` given the same stimulus;
one to four memory banks; full and empty; the writer's level never below the words not yet taken;
one word per cycle; the fetch decided from registers only; the write side's reset; bad parameters.
The queues here have memory banks of 4 entries unless a test says otherwise, so that every run
crosses from bank to bank. Mutants that fail them are at the end.
"""

import random

import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.lib.async_queue import AsyncQueue
from sim.formal.harness import mutated

RATIOS = [(10e-9, 10e-9), (10e-9, 37e-9), (37e-9, 10e-9), (7e-9, 41e-9), (41e-9, 7e-9), (13e-9, 17e-9)]


class LibraryFIFO(wiring.Component):
    """``amaranth.lib.fifo.AsyncFIFO`` behind the queue's stream interface (the reference)."""

    def __init__(self, shape, depth, *, w_domain, r_domain, bank_depth=None):
        self._args = dict(width=shape, depth=depth, w_domain=w_domain, r_domain=r_domain)
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "w_level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = f = AsyncFIFO(**self._args)
        m.d.comb += [f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid), self.i.ready.eq(f.w_rdy),
                     self.o.payload.eq(f.r_data), self.o.valid.eq(f.r_rdy), f.r_en.eq(self.o.ready),
                     self.w_level.eq(f.w_level)]
        return m


def make(cls=AsyncQueue, depth=16, bank_depth=4):
    return cls(16, depth, w_domain="wr", r_domain="rd", bank_depth=bank_depth)


def SkidQueue(shape, depth, **kwargs):
    """``AsyncQueue`` with its output skid buffer (``out_skid=True``)."""
    return AsyncQueue(shape, depth, out_skid=True, **kwargs)


QUEUES = pytest.mark.parametrize("cls", [AsyncQueue, SkidQueue], ids=["plain", "out_skid"])


def simulate(dut, periods, *testbenches, wr=None):
    """``dut`` with the writer's clock domain ``wr`` (a new one if None) and the reader's, of
    ``periods`` (seconds), and the testbenches, until each has returned."""
    m = Module()
    m.domains.wr, m.domains.rd = wr or ClockDomain("wr"), ClockDomain("rd")
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(periods[0], domain="wr")
    sim.add_clock(periods[1], domain="rd", phase=periods[1] / 3)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()
    return m


async def put(ctx, dut, word, rng, stall):
    while rng.random() < stall:
        await ctx.tick("wr")
    ctx.set(dut.i.payload, word)
    ctx.set(dut.i.valid, 1)
    await ctx.tick("wr").until(dut.i.ready)
    ctx.set(dut.i.valid, 0)


async def get(ctx, dut, rng, stall):
    while rng.random() < stall:
        await ctx.tick("rd")
    ctx.set(dut.o.ready, 1)
    word, = await ctx.tick("rd").sample(dut.o.payload).until(dut.o.valid)
    ctx.set(dut.o.ready, 0)
    return word


def transfer(dut, words, periods, *, seed, stall, limit=None):
    """``words`` through ``dut`` with random stalls on both sides; what came out, in order. Each
    side gives up after ``limit`` cycles of its clock (a lost word shows as a short result)."""
    got, state = [], {"written": 0, "low": []}
    limit = limit or 40 * len(words) + 200

    async def writer(ctx):
        rng = random.Random(seed)
        for word in words:
            await put(ctx, dut, word, rng, stall)
            state["written"] += 1

    async def level_check(ctx):
        # The writer's level is never below the words written and not yet taken. A word taken on
        # ``i`` at an edge is in ``w_level`` (a register) from the next edge on: the level sampled
        # at an edge is held to the words written two edges before.
        before = 0
        for _ in range(limit):
            written = state["written"]
            _, _, level = await ctx.tick("wr").sample(dut.w_level)
            if level < before - len(got):
                state["low"].append((level, before, len(got)))
            before = written

    async def reader(ctx):
        rng = random.Random(seed + 1)
        for _ in range(limit):
            while rng.random() < stall:
                await ctx.tick("rd")
            ctx.set(dut.o.ready, 1)
            _, _, word, valid = await ctx.tick("rd").sample(dut.o.payload, dut.o.valid)
            ctx.set(dut.o.ready, 0)
            if valid:
                got.append(word)
                if len(got) == len(words):
                    # a duplicate or a word from nowhere would come out here
                    for _ in range(30):
                        _, _, valid = await ctx.tick("rd").sample(dut.o.valid)
                        assert not valid, "a word after the last one"
                    return

    simulate(dut, periods, writer, reader, level_check)
    assert not state["low"], state["low"][:3]
    return got


@pytest.mark.parametrize("periods", RATIOS, ids=lambda p: f"w{p[0] * 1e9:.0f}-r{p[1] * 1e9:.0f}ns")
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@QUEUES
def test_every_word_once_in_order_as_the_library_fifo(periods, stall, cls):
    rng = random.Random(11)
    words = [rng.randrange(1 << 16) for _ in range(120)]
    got = transfer(make(cls), words, periods, seed=5, stall=stall)
    assert got == words
    assert transfer(make(LibraryFIFO), words, periods, seed=5, stall=stall) == got


@pytest.mark.parametrize("periods", [(10e-9, 37e-9), (37e-9, 10e-9)], ids=["reader-slow", "reader-fast"])
@QUEUES
def test_writer_stalls_the_reader_does_not(periods, cls):
    """Only one side stalls (the other never waits): the queue runs empty (fast reader) and full
    (fast writer) over and over."""
    rng = random.Random(12)
    words = [rng.randrange(1 << 16) for _ in range(200)]
    for seed in range(3):
        assert transfer(make(cls, depth=4), words, periods, seed=seed, stall=0.5 * (seed % 2)) == words


@pytest.mark.parametrize("bank_depth", [4, 8, 16, 2048], ids=lambda b: f"banks-of-{b}")
def test_banks(bank_depth):
    """Every word once and in order with the 16-entry memory in four, two or one bank(s) (one if
    ``bank_depth`` is not less than ``depth``), with stalls on both sides and on neither."""
    words = _words(200, seed=bank_depth)
    for stall in (0.0, 0.4):
        assert transfer(make(bank_depth=bank_depth), words, (10e-9, 13e-9), seed=7, stall=stall) == words


@pytest.mark.parametrize("addr_slice", [1, 5, 16], ids=lambda a: f"columns-of-{a}")
@pytest.mark.parametrize("bank_depth", [4, 16])
def test_address_copies_per_column(addr_slice, bank_depth):
    """With ``addr_slice`` each bank is a column of memories, each read at its own copy of the
    address: every word still once and in order (widths dividing the word and not), and the
    copies are there (one per column and bank)."""
    words = _words(200, seed=addr_slice)
    dut = AsyncQueue(16, 16, w_domain="wr", r_domain="rd", bank_depth=bank_depth, addr_slice=addr_slice)
    for stall in (0.0, 0.4):
        assert transfer(dut, words, (10e-9, 13e-9), seed=5, stall=stall) == words
    banks, columns = 16 // bank_depth, -(-16 // addr_slice)
    names = set(_submodule_names(dut))
    assert {f"bank{k}_{c}" for k in range(banks) for c in range(columns)} <= names or columns == 1


def _submodule_names(dut):
    from amaranth.hdl import Fragment
    frag = Fragment.get(dut, None)
    return [name for _, name, _ in frag.subfragments]


@pytest.mark.parametrize("addr_slice, error", [(0, ValueError), ("8", TypeError), (True, TypeError)])
def test_bad_addr_slice(addr_slice, error):
    with pytest.raises(error, match="addr_slice"):
        AsyncQueue(16, 16, addr_slice=addr_slice)


@QUEUES
def test_full_and_empty(cls):
    """With the reader stopped the writer gets exactly ``depth`` words in; ``w_level`` says so and
    the head is offered; then the reader takes exactly ``depth`` words, and ``w_level`` comes back
    to 0."""
    dut = make(cls, depth=8)
    seen = {}

    async def tb(ctx):
        ctx.set(dut.i.valid, 1)
        accepted = 0
        for _ in range(40):
            ctx.set(dut.i.payload, 100 + accepted)
            _, _, ready = await ctx.tick("wr").sample(dut.i.ready)
            accepted += ready
        ctx.set(dut.i.valid, 0)
        for _ in range(10):
            await ctx.tick("rd")
        seen.update(accepted=accepted, level=ctx.get(dut.w_level), head=ctx.get(dut.o.payload),
                    valid=ctx.get(dut.o.valid))
        ctx.set(dut.o.ready, 1)
        out = []
        for _ in range(40):
            _, _, valid, word = await ctx.tick("rd").sample(dut.o.valid, dut.o.payload)
            if valid:
                out.append(word)
        for _ in range(10):
            await ctx.tick("wr")
        seen.update(out=out, level_after=ctx.get(dut.w_level), ready_after=ctx.get(dut.i.ready))

    simulate(dut, (10e-9, 13e-9), tb)
    assert seen["accepted"] == 8 and seen["level"] == 8 and seen["valid"] and seen["head"] == 100
    assert seen["out"] == list(range(100, 108))
    assert seen["level_after"] == 0 and seen["ready_after"]


async def _write_words(ctx, dut, count):
    """Write words 0 .. ``count - 1`` back to back (``i.valid`` stays high afterwards)."""
    ctx.set(dut.i.valid, 1)
    for k in range(count):
        ctx.set(dut.i.payload, k)
        await ctx.tick("wr").until(dut.i.ready)


def _offered_after_full(cls, bank_depth=4):
    """A full queue of 32 (in banks of ``bank_depth``), the reader ready from its first word on:
    per reader cycle, whether a word was taken."""
    dut = make(cls, depth=32, bank_depth=bank_depth)
    taken = []

    async def tb(ctx):
        await _write_words(ctx, dut, 32)
        ctx.set(dut.i.valid, 0)
        await ctx.tick("rd").until(dut.o.valid)
        ctx.set(dut.o.ready, 1)
        for _ in range(40):
            _, _, valid = await ctx.tick("rd").sample(dut.o.valid)
            taken.append(valid)

    simulate(dut, (10e-9, 10e-9), tb)
    return taken


@pytest.mark.parametrize("bank_depth", [4, 32])
@QUEUES
def test_one_word_per_cycle(bank_depth, cls):
    """``depth`` words in ``depth`` consecutive reader cycles once the first is offered, in eight
    banks or one (the buffer covers the fetch's round trip)."""
    assert _offered_after_full(cls, bank_depth) == [1] * 32 + [0] * 8


def _stream_through(cls):
    """Equal clocks, the writer writing a word per cycle from empty (60 words), the reader's
    ``o.ready`` held: per reader cycle, the word offered (None if none)."""
    dut = make(cls, depth=16)
    seen = {}

    async def writer(ctx):
        await _write_words(ctx, dut, 60)
        ctx.set(dut.i.valid, 0)

    async def reader(ctx):
        ctx.set(dut.o.ready, 1)
        trace = []
        for _ in range(90):
            _, _, valid, word = await ctx.tick("rd").sample(dut.o.valid, dut.o.payload)
            trace.append(word if valid else None)
        seen["trace"] = trace

    simulate(dut, (10e-9, 10e-9), writer, reader)
    return seen["trace"]


@QUEUES
def test_one_word_per_cycle_while_writing(cls):
    """Words written one per cycle and ``o.ready`` held: from the first word offered (about seven
    reader cycles after the first write, eight with the skid buffer), one word per cycle, in order."""
    trace = _stream_through(cls)
    first = next(k for k, w in enumerate(trace) if w is not None)
    assert 6 + (cls is SkidQueue) <= first <= 8 + (cls is SkidQueue), first
    assert trace[first:first + 61] == list(range(60)) + [None]


def _fetch_changes_within_a_cycle(cls):
    """Toggle ``o.ready`` and ``i.valid`` within each cycle: the cycles where the fetch decision
    or the read address followed them."""
    dut = make(cls, depth=16)
    changed = []

    async def tb(ctx):
        await _write_words(ctx, dut, 16)
        for cycle in range(30):
            for sig, values in ((dut.o.ready, (0, 1, 0)), (dut.i.valid, (1, 0, 1))):
                seen = set()
                for v in values:
                    ctx.set(sig, v)
                    seen.add((ctx.get(dut.fetching), ctx.get(dut.fetch)))
                if len(seen) > 1:
                    changed.append((cycle, sig.name, seen))
            ctx.set(dut.o.ready, cycle % 3 == 0)
            await ctx.tick("rd")

    simulate(dut, (10e-9, 10e-9), tb)
    return changed


@QUEUES
def test_the_fetch_is_decided_from_registers(cls):
    """Within a cycle, with words waiting in the memory and the reader taking some, the fetch
    decision and the read address do not follow ``o.ready`` or ``i.valid`` (no combinational path
    from either side's handshake)."""
    changed = _fetch_changes_within_a_cycle(cls)
    assert not changed, changed[:3]


def _take_follows_ready(cls):
    """Words waiting and the reader toggling ``o.ready`` within each cycle: whether the buffer's
    take ever followed it."""
    dut = make(cls, depth=16)
    followed = []

    async def tb(ctx):
        await _write_words(ctx, dut, 16)
        for cycle in range(30):
            seen = set()
            for v in (0, 1, 0):
                ctx.set(dut.o.ready, v)
                seen.add(ctx.get(dut.take))
            followed.append(len(seen) > 1)
            ctx.set(dut.o.ready, cycle % 3 == 0)
            await ctx.tick("rd")

    simulate(dut, (10e-9, 10e-9), tb)
    return any(followed)


def test_with_out_skid_the_reader_ready_reaches_only_the_skid_buffer():
    """With ``out_skid`` the fetch-ahead buffer's take does not follow ``o.ready`` within a cycle;
    without it, it does (the check can fail)."""
    assert not _take_follows_ready(SkidQueue)
    assert _take_follows_ready(AsyncQueue)


def _slot_changes(cls):
    """150 random words through a queue whose reader stalls half of its cycles: how many times a
    buffer slot's register changed, and how many words came out (each in order)."""
    dut = cls(16, 16, w_domain="wr", r_domain="rd", bank_depth=4)
    words = _words()
    state = {"changes": 0}

    async def watch(ctx):
        before = [0] * len(dut.slots)
        while True:
            _, _, *now = await ctx.tick("rd").sample(*dut.slots)
            state["changes"] += sum(a != b for a, b in zip(before, now))
            before = now

    m = Module()
    m.domains.wr, m.domains.rd = ClockDomain("wr"), ClockDomain("rd")
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(10e-9, domain="wr")
    sim.add_clock(10e-9, domain="rd", phase=10e-9 / 3)
    sim.add_process(watch)
    got = {}

    async def run(ctx):
        rng = random.Random(21)
        got["words"] = [await get(ctx, dut, rng, 0.5) for _ in words]

    async def write(ctx):
        rng = random.Random(22)
        for word in words:
            await put(ctx, dut, word, rng, 0.0)

    sim.add_testbench(write)
    sim.add_testbench(run)
    sim.run()
    return state["changes"], got["words"] == words


@QUEUES
def test_a_buffer_slot_changes_only_when_a_word_arrives_in_it(cls):
    """The read side's buffer is a ring: a word stays in its slot until it leaves (the reader's
    take moves a head pointer, loads no slot), so the slots change at most once per word, with
    or without the skid buffer. (A shifting buffer moves every word behind the head on each take.)"""
    changes, in_order = _slot_changes(cls)
    assert in_order
    assert changes <= 150


def _reset_run(cls):
    """Ten words written, none taken; the write domain's reset; twenty words written and taken
    with random stalls. Returns ``before`` (the head offered before the reset), ``level`` (the
    writer's level after it) and ``got`` (everything that came out after it)."""
    dut = make(cls, depth=16)
    wr = ClockDomain("wr")
    out = {}

    async def writer(ctx):
        rng = random.Random(3)
        for k in range(10):
            await put(ctx, dut, 500 + k, rng, 0.2)
        for _ in range(20):
            await ctx.tick("wr")
        ctx.set(wr.rst, 1)
        await ctx.delay(25e-9)          # over two writer clock edges
        ctx.set(wr.rst, 0)
        out["level"] = ctx.get(dut.w_level)
        for _ in range(20):
            await ctx.tick("wr")
        for k in range(20):
            await put(ctx, dut, k, rng, 0.2)

    async def reader(ctx):
        # nothing taken before the reset (the first words stay buffered), then everything
        await ctx.tick("rd").until(dut.o.valid)
        out["before"] = ctx.get(dut.o.payload)
        for _ in range(200):
            _, _, valid = await ctx.tick("rd").sample(dut.o.valid)
            if not valid:
                break
        got = []
        rng = random.Random(4)
        for _ in range(2000):                   # bounded: a broken queue shows as a short result
            ctx.set(dut.o.ready, rng.random() >= 0.3)
            _, _, ready, valid, word = await ctx.tick("rd").sample(dut.o.ready, dut.o.valid, dut.o.payload)
            if ready and valid:
                got.append(word)
        out["got"] = got

    simulate(dut, (10e-9, 23e-9), writer, reader, wr=wr)
    return out


@QUEUES
def test_write_side_reset_empties_both_sides(cls):
    """Words written and not read, then the write domain's reset: the reader never sees them;
    ``w_level`` is 0 and words written afterwards come through, in order."""
    out = _reset_run(cls)
    assert out["before"] == 500
    assert out["level"] == 0
    assert out["got"] == list(range(20))


@pytest.mark.parametrize("params", ["depth=3", "depth=65537", "depth='16'"])
def test_bad_depth(params):
    with pytest.raises((TypeError, ValueError), match="depth"):
        eval(f"AsyncQueue(16, {params})")


@pytest.mark.parametrize("bank_depth, error", [(2, ValueError), (6, ValueError), (1 << 17, ValueError),
                                               ("4", TypeError), (4.0, TypeError), (True, TypeError)])
def test_bad_bank_depth(bank_depth, error):
    with pytest.raises(error, match=r"bank_depth must be a power of two from 4 to 65536"):
        AsyncQueue(16, 16, bank_depth=bank_depth)


# Mutants: each breaks one part of the read side's design and fails a test above.

def _words(n=150, seed=13):
    rng = random.Random(seed)
    return [rng.randrange(1 << 16) for _ in range(n)]


def test_mutant_fetch_without_room_check_loses_words():
    """Fetching whenever the memory holds a word (the buffer's room not checked) overruns the
    buffer while the reader stalls."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue",
                     "more & (count + read + arriving < P)", "more")
    words = _words()
    assert transfer(make(Mutant), words, (10e-9, 10e-9), seed=5,
                    stall=0.5, limit=2000) != words


def test_mutant_fetch_following_the_reader_is_caught():
    """Counting the word being taken in the fetch decision (a path from ``o.ready`` to the fetch)
    keeps the data right but fails the register-only test."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue",
                     "(count + read + arriving < P)", "(count + read + arriving - take < P)")
    words = _words()
    assert transfer(make(Mutant), words, (10e-9, 10e-9), seed=5,
                    stall=0.5) == words
    assert _fetch_changes_within_a_cycle(Mutant)


def test_mutant_writer_level_from_the_fetch_pointer_is_too_low():
    """Returning the fetch pointer to the writer (words in the buffer no longer counted) makes
    ``w_level`` too low (0 with words still to be taken: a flush would end early)."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue", "taken_gry.eq(_gray(taken))",
                     "taken_gry.eq(_gray(fetch))")
    with pytest.raises(AssertionError):
        transfer(make(Mutant), _words(), (10e-9, 37e-9), seed=5,
                 stall=0.5)


def test_mutant_three_entry_buffer_is_slower():
    """Three buffer registers (enough without the bank data registers) do not cover the fetch's
    round trip: bubbles, from a full queue and while writing."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue", "PREFETCH = 4", "PREFETCH = 3")
    assert _offered_after_full(Mutant) != [1] * 32 + [0] * 8
    trace = _stream_through(Mutant)
    first = next(k for k, w in enumerate(trace) if w is not None)
    assert trace[first:first + 61] != list(range(60)) + [None]


def test_mutant_without_the_write_side_reset_keeps_old_words():
    """A read side that ignores the write side's reset goes on from its old pointers."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue", "with m.If(r_rst):", "with m.If(0):")
    out = _reset_run(Mutant)
    assert out.get("got") != list(range(20))


def test_mutant_bank_select_one_cycle_early_mixes_banks():
    """Selecting the arriving word by the bank of the word read after it (``read_bank``, not the
    registered ``arriving_bank``) takes a bank's last word from the next bank."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue", "Array(data)[arriving_bank]",
                     "Array(data)[read_bank]")
    words = _words()
    assert transfer(make(Mutant), words, (10e-9, 13e-9), seed=5, stall=0.3) != words


def test_mutant_write_to_every_bank_is_caught():
    """Writing every word into every bank (the write side's bank decode gone) overwrites words
    not yet read."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue", "do_write & (produce[low:-1] == k)",
                     "do_write")
    words = _words()
    assert transfer(make(Mutant), words, (10e-9, 13e-9), seed=5, stall=0.3) != words


def test_mutant_slot_loaded_by_the_take_is_caught():
    """A slot that also loads when a word is taken (the take in the slots' enables again) fails
    the slot test, and the data."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue", "with m.If(load):", "with m.If(load | take):")
    changes, in_order = _slot_changes(Mutant)
    assert changes > 150 or not in_order


@pytest.mark.parametrize("old, new", [
    ("load.eq(read & (wslot_next == k))", "load.eq(read & (wslot == k))"),
    ("head_slot.eq(rslot_next)", "head_slot.eq(rslot)"),
], ids=["arriving-slot-late", "head-slot-late"])
def test_mutant_ring_pointers_a_cycle_late_lose_words(old, new):
    """The arriving word's slot, or the head's, decided from the pointer before this cycle's
    step: words are overwritten or offered twice."""
    Mutant = mutated("hw.lib.async_queue", "AsyncQueue", old, new)
    words = _words()
    assert transfer(make(Mutant), words, (10e-9, 13e-9), seed=5, stall=0.3, limit=3000) != words
