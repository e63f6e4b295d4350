"""hw/lib/async_fifo.py ``RegisteredWriteAsyncFIFO``: a clock-crossing FIFO whose memory is written
from registers only, in Amaranth's simulator with two unrelated clocks (the harness of
``tests/test_lib_async_queue.py``).

Every word once and in order at several clock ratios with random stalls on both sides, the same
sequence as ``amaranth.lib.fifo.AsyncFIFO`` given the same stimulus; full and empty; the writer's
level never below the words not yet read; one word per cycle; ``i.ready`` and the memory's write
enable independent of both handshakes within a cycle; the write side's reset; bad parameters.
Mutants that fail them are at the end.
"""

import random

import pytest
from amaranth.hdl import ClockDomain

import tests.test_lib_async_queue as queue_tests
from hw.lib.async_fifo import RegisteredWriteAsyncFIFO
from sim.formal.harness import mutated
from tests.test_lib_async_queue import (
    RATIOS,
    LibraryFIFO,
    _offered_after_full,
    _reset_run,
    _stream_through,
    get,
    make,
    put,
    simulate,
    transfer,
)


def fifo_class(cls=RegisteredWriteAsyncFIFO, **kw):
    """``cls`` with the harness's constructor (``bank_depth`` ignored), given ``kw`` too."""
    def build(width, depth, *, w_domain, r_domain, bank_depth=None):
        return cls(width, depth, w_domain=w_domain, r_domain=r_domain, **kw)
    return build


FIFO = fifo_class()
#: The FIFO with its output register (``registered_read``).
FIFO_REG = fifo_class(registered_read=True)
BOTH = pytest.mark.parametrize("fifo", [FIFO, FIFO_REG], ids=["library-read", "registered-read"])


def _words(n=150, seed=13):
    rng = random.Random(seed)
    return [rng.randrange(1 << 16) for _ in range(n)]


@BOTH
@pytest.mark.parametrize("periods", RATIOS, ids=lambda p: f"w{p[0] * 1e9:.0f}-r{p[1] * 1e9:.0f}ns")
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_every_word_once_in_order_as_the_library_fifo(fifo, periods, stall):
    words = _words(120, seed=11)
    got = transfer(make(fifo), words, periods, seed=5, stall=stall)
    assert got == words
    assert transfer(make(LibraryFIFO), words, periods, seed=5, stall=stall) == got


@pytest.mark.parametrize("periods", [(10e-9, 37e-9), (37e-9, 10e-9)], ids=["reader-slow", "reader-fast"])
@BOTH
def test_writer_stalls_the_reader_does_not(fifo, periods):
    """Only one side stalls: the FIFO runs empty (fast reader) and full (fast writer) over and
    over, at the smallest depth."""
    words = _words(200, seed=12)
    for seed in range(3):
        assert transfer(make(fifo, depth=4), words, periods, seed=seed, stall=0.5 * (seed % 2)) == words


@BOTH
def test_full_and_empty(fifo):
    """With the reader stopped the writer gets exactly ``depth`` words in and ``w_level`` says so;
    then the reader takes exactly those words, and ``w_level`` comes back to 0 (the queue's test,
    on this FIFO; with ``registered_read`` the word in the output register keeps its slot)."""
    queue_tests.test_full_and_empty(fifo)


@BOTH
def test_one_word_per_cycle(fifo):
    """A full FIFO of 32 read with ``o.ready`` held: 32 words in 32 consecutive cycles."""
    assert _offered_after_full(fifo) == [1] * 32 + [0] * 8


@BOTH
def test_one_word_per_cycle_while_writing(fifo):
    """Words written one per cycle from empty, ``o.ready`` held: from the first word offered,
    one word per cycle, in order (the depth of 16 is not a limit at equal clocks); the output
    register's word a cycle later."""
    trace = _stream_through(fifo)
    first = next(k for k, w in enumerate(trace) if w is not None)
    assert first <= 5 + (fifo is FIFO_REG), first
    assert trace[first:first + 61] == list(range(60)) + [None]


def _follows_handshakes(cls):
    """Toggle ``i.valid`` and ``o.ready`` within each cycle of a FIFO being filled and read: the
    cycles where ``i.ready`` or the memory's write enable followed them."""
    dut = make(cls, depth=8)
    changed = []

    async def tb(ctx):
        rng = random.Random(3)
        for cycle in range(80):
            for sig in (dut.i.valid, dut.o.ready):
                seen = set()
                for v in (0, 1, 0, 1):
                    ctx.set(sig, v)
                    seen.add((ctx.get(dut.i.ready), ctx.get(dut.writing)))
                if len(seen) > 1:
                    changed.append((cycle, sig.name, seen))
            ctx.set(dut.i.payload, cycle)
            ctx.set(dut.i.valid, rng.random() < 0.8)
            ctx.set(dut.o.ready, rng.random() < 0.3)
            await ctx.tick("wr")

    simulate(dut, (10e-9, 10e-9), tb)
    return changed


@BOTH
def test_ready_and_write_enable_are_registers(fifo):
    """Neither ``i.ready`` nor the memory's write enable follows ``i.valid`` or ``o.ready`` within
    a cycle (the point of the design: no compare or handshake in front of the memory's cells)."""
    changed = _follows_handshakes(fifo)
    assert not changed, changed[:3]


def _reset_after_reads(cls):
    """Ten words written, three of them read; the write domain's reset (ending at a random phase
    of the reader's clock); twenty words written and read with random stalls. Returns what came
    out after the reset, per run."""
    runs = []
    for seed in range(6):
        dut = make(cls, depth=16)
        wr = ClockDomain("wr")
        out = {"got": []}

        async def writer(ctx, dut=dut, wr=wr, out=out, seed=seed):
            rng = random.Random(seed)
            for k in range(10):
                await put(ctx, dut, 500 + k, rng, 0.2)
            await ctx.tick("wr").repeat(30)
            ctx.set(wr.rst, 1)
            await ctx.delay(rng.uniform(12e-9, 40e-9))
            ctx.set(wr.rst, 0)
            out["level"] = ctx.get(dut.w_level)
            await ctx.tick("wr").repeat(20)
            for k in range(20):
                await put(ctx, dut, k, rng, 0.2)

        async def reader(ctx, dut=dut, out=out, seed=seed):
            rng = random.Random(seed + 100)
            for _ in range(3):
                await get(ctx, dut, rng, 0.2)
            await ctx.tick("rd").until(~dut.o.valid)        # the reset empties the FIFO
            for _ in range(400):
                ctx.set(dut.o.ready, rng.random() >= 0.3)
                _, _, ready, valid, word = await ctx.tick("rd").sample(dut.o.ready, dut.o.valid,
                                                                        dut.o.payload)
                if ready and valid:
                    out["got"].append(word)

        simulate(dut, (10e-9, 23e-9), writer, reader, wr=wr)
        runs.append(out)
    return runs


@BOTH
def test_write_side_reset_empties_both_sides(fifo):
    """Words written and not read (the harness's run), or partly read, then the write domain's
    reset: the reader never sees them (nor the one in the output register); ``w_level`` is 0 and
    words written afterwards come through, in order."""
    out = _reset_run(fifo)
    assert out["before"] == 500
    assert out["level"] == 0
    assert out["got"] == list(range(20))
    for run in _reset_after_reads(fifo):
        assert run["level"] == 0 and run["got"] == list(range(20)), run


@pytest.mark.parametrize("kw, error", [
    ({"depth": 2}, ValueError), ({"depth": 12}, ValueError), ({"depth": 1 << 17}, ValueError),
    ({"depth": "16"}, TypeError), ({"width": 0}, ValueError), ({"width": 8.0}, TypeError),
    ({"width": True}, TypeError), ({"room_ahead": 1}, TypeError),
])
def test_bad_parameters(kw, error):
    params = {"width": 8, "depth": 16, **kw}
    name = next(iter(kw))
    with pytest.raises(error, match=name):
        RegisteredWriteAsyncFIFO(**params)


# Mutants: each breaks one part of the write side's design and fails a test above.

@pytest.mark.parametrize("old, new", [
    # the room without the word in the write register, or without the word taken now
    ("self.w_level + w_valid + take < self.depth", "self.w_level + take < self.depth"),
    ("room.eq(Mux(taking, room_if[1], room_if[0]))", "room.eq(room_if[0])"),
    # no room flag at all
    ("self.i.ready.eq(room), taking.eq(self.i.valid & room)", "self.i.ready.eq(1), taking.eq(self.i.valid)"),
], ids=["room-ignores-write-register", "room-ignores-word-taken", "no-room-flag"])
def test_mutant_room_overwrites_words(old, new):
    """A room count one word short lets a word overwrite one not yet read while the reader stalls."""
    mutant = fifo_class(mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO", old, new))
    words = _words()
    try:
        got = transfer(make(mutant, depth=4), words, (10e-9, 37e-9), seed=5, stall=0.5, limit=4000)
    except AssertionError:          # words after the last one, or the writer's level too low
        return
    assert got != words


def test_mutant_write_at_the_handshake_is_caught():
    """Writing the memory in the cycle a word is taken (no write register) keeps the data right
    but puts ``i.valid`` on the memory's write enable: the register test fails."""
    mutant = fifo_class(mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO",
                                "w_port.data.eq(w_data[lo:hi]), w_port.addr.eq(w_addr), w_port.en.eq(w_en)]",
                                "w_port.data.eq(self.i.payload[lo:hi]), w_port.addr.eq(produce[:-1]), "
                                "w_port.en.eq(taking), writing.eq(taking)]"))
    words = _words()
    assert transfer(make(mutant), words, (10e-9, 13e-9), seed=5, stall=0.3) == words
    assert _follows_handshakes(mutant)


def test_mutant_without_the_write_side_reset_keeps_old_words():
    """A read side that ignores the write side's reset goes on from its old pointers."""
    mutant = fifo_class(mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO", "with m.If(r_rst):",
                                "with m.If(0):"))
    assert any(run["got"] != list(range(20)) for run in _reset_after_reads(mutant))


def test_mutant_reset_synchronizer_of_two_stages_keeps_old_words():
    """With the library's two-stage reset synchronizer the read side can leave its reset at the
    edge the reset write pointer arrives, keep its old pointer and offer stale words."""
    mutant = fifo_class(mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO", "stages=3", "stages=2"))
    assert any(run["got"] != list(range(20)) for run in _reset_after_reads(mutant))


def _wide_words(n=100, width=150, seed=17):
    rng = random.Random(seed)
    return [rng.getrandbits(width) for _ in range(n)]


@pytest.mark.parametrize("periods", [(10e-9, 37e-9), (37e-9, 10e-9), (10e-9, 13e-9)])
def test_a_wide_word_in_slices_goes_through_whole(periods):
    """A word wider than :data:`hw.lib.async_queue.SLICE` bits is stored in slices, each written
    through its own copies of the write address and enable: every word leaves once, in order,
    every slice of it from the same write."""
    words = _wide_words()
    dut = RegisteredWriteAsyncFIFO(150, 8, w_domain="wr", r_domain="rd")
    assert transfer(dut, words, periods, seed=3, stall=0.4) == words


@pytest.mark.parametrize("old, new", [
    ("m.d[W] += [w_addr.eq(produce_next[:-1]), w_en.eq(taking)]",
     "m.d[W] += [w_addr.eq(produce[:-1]), w_en.eq(taking)]"),
    ("m.d[W] += [w_addr.eq(produce_next[:-1]), w_en.eq(taking)]",
     "m.d[W] += [w_addr.eq(produce_next[:-1]), w_en.eq(w_valid)]"),
], ids=["address-copy-late", "enable-copy-late"])
def test_mutant_slice_copies_fail(old, new):
    """A slice's write address or enable copy a cycle late: words come out torn or lost."""
    mutant = mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO", old, new)
    words = _wide_words()
    try:
        got = transfer(mutant(150, 8, w_domain="wr", r_domain="rd"), words, (10e-9, 13e-9), seed=3,
                       stall=0.4, limit=4000)
    except AssertionError:
        return
    assert got != words


@pytest.mark.parametrize("old, new", [
    # the writer sees a word as gone once it is in the output register (its slot freed early)
    ("released + (out_valid & self.o.ready)", "released + load"),
    # a slice's read address one cycle late (the register holds the pointer before the read)
    ("m.d[R] += r_addr.eq(consume_next[:-1])", "m.d[R] += r_addr.eq(consume[:-1])"),
    # the output register keeps its word when it is taken and no word follows
    ("with m.Elif(self.o.ready):\n                m.d[R] += out_valid.eq(0)",
     "with m.Elif(0):\n                m.d[R] += out_valid.eq(0)"),
], ids=["slot-freed-at-load", "read-address-late", "taken-word-kept"])
def test_mutant_registered_read_fails(old, new):
    """``registered_read`` broken in one place: words are lost, repeated or torn, or the writer's
    level falls below the words not yet taken."""
    mutant = fifo_class(mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO", old, new),
                        registered_read=True)
    words = _words()
    try:
        got = transfer(make(mutant, depth=4), words, (10e-9, 37e-9), seed=5, stall=0.5, limit=4000)
    except AssertionError:
        return
    assert got != words


def _room_ahead_run(cls, words, periods, *, seed, stall, hold=0):
    """``words`` through ``cls(16, 4, room_ahead=True)`` from a writer that offers a word only in
    a cycle after one with ``w_room_ahead`` high (and then with probability ``1 - stall``), the
    reader taking with random stalls after ``hold`` of its cycles. Returns ``(got, refused,
    peak)``: the words out, the cycles a word was offered with ``i.ready`` low, the largest
    ``w_level``."""
    dut = cls(16, 4, w_domain="wr", r_domain="rd", room_ahead=True)
    got, refused, peak = [], [], [0]
    limit = 60 * len(words) + 200 + hold

    async def writer(ctx):
        rng, sent, ahead = random.Random(seed), 0, 0
        for cycle in range(limit):
            offer = sent < len(words) and ahead and rng.random() >= stall
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, words[sent] if offer else 0)
            _, _, ready, ahead, level = await ctx.tick("wr").sample(dut.i.ready, dut.w_room_ahead,
                                                                   dut.w_level)
            peak[0] = max(peak[0], level)
            if offer:
                if not ready:
                    refused.append(cycle)
                sent += 1

    async def reader(ctx):
        rng = random.Random(seed + 1)
        for _ in range(hold):
            await ctx.tick("rd")
        for _ in range(limit):
            ctx.set(dut.o.ready, rng.random() >= stall)
            _, _, valid, ready, word = await ctx.tick("rd").sample(dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and ready:
                got.append(word)
            if len(got) == len(words):
                return

    simulate(dut, periods, writer, reader)
    return got, refused, peak[0]


@pytest.mark.parametrize("periods", RATIOS, ids=lambda p: f"w{p[0] * 1e9:.0f}-r{p[1] * 1e9:.0f}ns")
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_room_ahead_writer_is_never_refused(periods, stall):
    """``room_ahead``: a writer that offers words only in cycles after one with ``w_room_ahead``
    high is never refused (``i.ready`` high whenever it offers); every word arrives once, in
    order, at the smallest depth."""
    words = _words(150, seed=21)
    got, refused, _ = _room_ahead_run(RegisteredWriteAsyncFIFO, words, periods, seed=3, stall=stall)
    assert refused == [] and got == words


def test_room_ahead_fills_the_memory():
    """With the reader away the credit writer still fills all ``depth`` words (the room ahead
    counts the word it may offer next, not a slot kept free), and then every word arrives."""
    words = _words(12, seed=22)
    got, refused, peak = _room_ahead_run(RegisteredWriteAsyncFIFO, words, (10e-9, 13e-9), seed=4, stall=0.0,
                                         hold=120)
    assert peak == 4 and refused == [] and got == words


@pytest.mark.parametrize("old, new", [
    ("Mux(taking, Mux(ahead, fits[2], fits[1]), Mux(ahead, fits[1], fits[0]))",
     "Mux(ahead, fits[1], fits[0])"),
    ("Mux(ahead, fits[2], fits[1]), Mux(ahead, fits[1], fits[0])", "fits[1], fits[0]"),
    ("fits = [*room_if, self.w_level + w_valid + 2 < self.depth]",
     "fits = [self.w_level + w_valid + k + 1 < self.depth for k in range(3)]"),
], ids=["ignores-word-taken", "ignores-next-word", "keeps-a-slot-free"])
def test_mutant_room_ahead_fails(old, new):
    """The room ahead without this cycle's word or the word the writer may offer next lets a
    word be refused; one that keeps a slot free never fills the memory."""
    mutant = mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO", old, new)
    words = _words(150, seed=21)
    refused_any = any(_room_ahead_run(mutant, words, p, seed=3, stall=0.0)[1] for p in RATIOS)
    _, _, peak = _room_ahead_run(mutant, _words(12, seed=22), (10e-9, 13e-9), seed=4, stall=0.0, hold=120)
    assert refused_any or peak != 4
