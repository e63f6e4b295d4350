"""The GEMM sequencer's prefetch queue (:class:`hw.gemm.sequencer.GemmSequencer`), alone: reads
stop when the queue is full, a beat taken frees its place for the read one cycle later (the
decision is made from registers, not from the array's ready), and the beats leave in order."""

import pytest

from hw.gemm.sequencer import PREFETCH, READ_LATENCY, GemmSequencer
from hw.mac import spec as mac_spec
from sim.formal.harness import mutated
from sim.streams import simulate

ROWS, COLS, GROUPS = 2, 4, 4
BEATS = GROUPS * 4          # int8: four beats per activation word


def _wgt(addr):
    """The weight RAM's word at ``addr`` (a beat number the test can read back)."""
    return addr * 0x01010101 + 0x100


def _act_bytes(addr):
    """The activation RAM's word at ``addr``, per row its four bytes (all distinct)."""
    return [[(addr * 4 * ROWS + r * 4 + k) & 0xFF for k in range(4)] for r in range(ROWS)]


def _act(addr):
    return sum(b << (8 * (4 * r + k)) for r, row in enumerate(_act_bytes(addr)) for k, b in enumerate(row))


def _expected_act(beat):
    """An int8 beat's activations: each row's bytes of word ``beat // 4`` from byte ``beat % 4`` on."""
    rows = _act_bytes(beat // 4)
    off = beat % 4
    return sum(b << (8 * (4 * r + k)) for r, row in enumerate(rows) for k, b in enumerate(row[off:]))


def _expected():
    return [(_wgt(b), _expected_act(b)) for b in range(BEATS)]


def test_prefetch_stops_when_full_and_uses_a_freed_place_one_cycle_later():
    # the array takes a beat in cycles 30, 31 and 40 only, then in every cycle
    reads, got = _run(_sequencer(), ready_at={30, 31, 40} | set(range(50, 80)))
    issued = [c - 1 for c, _ in reads[1:]]       # the address register steps after a read's cycle
    # Nothing taken before cycle 30: reading stopped with the queue full, after PREFETCH beats.
    assert [a for c, a in reads if c <= 30][-1] == PREFETCH
    # Taken in cycles 30 and 31: reads in cycles 31 and 32, from the registered count (the array's
    # ready in the read decision would read in cycles 30 and 31).
    assert [c for c in issued if 29 <= c < 34] == [31, 32]
    # Every beat leaves once, in order, with its RAM words (the activations shifted to its lanes).
    assert [(w, a) for _, w, a in got] == _expected()


def _run(dut, ready_at=None, cycles=80):
    """The sequencer with a full bank of BEATS int8 beats; ``o_act.ready`` in the cycles of
    ``ready_at`` (every cycle if None). Returns ``(reads, got)``: the cycles in which the weight
    read address changed with the address, and the beats taken with their cycle, weight word and
    activation word."""
    reads, got = [], []

    async def tb(ctx):
        ctx.set(dut.i_full, 1)
        ctx.set(dut.i_beats, BEATS)
        ctx.set(dut.o_acmd.ready, 1)
        ctx.set(dut.i_cmd.payload.mode, mac_spec.MODE_INT8)
        ctx.set(dut.i_cmd.payload.groups_m1, GROUPS - 1)
        ctx.set(dut.i_cmd.payload.load_acts, 1)
        ctx.set(dut.i_cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.i_cmd.valid, 0)
        previous = None
        presented = [(0, 0)] * READ_LATENCY     # the read addresses of the last cycles, latest last
        for cycle in range(cycles):
            ctx.set(dut.o_act.ready, ready_at is None or cycle in ready_at)
            if ctx.get(dut.o_act.valid) and ctx.get(dut.o_act.ready):
                got.append((cycle, ctx.get(dut.o_wgt.payload), ctx.get(dut.o_act.payload)))
            addr, act_addr = ctx.get(dut.wgt_rd_addr), ctx.get(dut.act_rd_addr)
            if addr != previous:
                reads.append((cycle, addr))
                previous = addr
            await ctx.tick()
            # the buffers' address registers and block RAMs: data READ_LATENCY cycles after the address
            presented = presented[1:] + [(addr, act_addr)]
            ctx.set(dut.i_wgt_data, _wgt(presented[0][0]))
            ctx.set(dut.i_act_data, _act(presented[0][1]))

    simulate(dut, tb)
    return reads, got


def _sequencer(cls=GemmSequencer):
    return cls(ROWS, COLS, max_row_tiles=2, max_groups=GROUPS, count_bits=12, prefetch=True)


def test_prefetch_offers_a_beat_four_cycles_after_its_read_then_one_per_cycle():
    """With the array always ready: the first beat is offered four cycles after the cycle that
    read it (the buffers' address registers, the RAM's read, the register of its word, the
    queue's LUT RAM), then one beat per cycle to the tile's end, each with its RAM word."""
    reads, got = _run(_sequencer())
    first_read = reads[1][0] - 1            # the address register steps after the read's cycle
    cycles = [c for c, _, _ in got]
    assert cycles[0] == first_read + READ_LATENCY + 2
    assert cycles == list(range(cycles[0], cycles[0] + BEATS))
    assert [(w, a) for _, w, a in got] == _expected()


@pytest.mark.parametrize("old, new", [
    ("w_slot.eq(Mux(w_en, ", "w_slot.eq(Mux(self.i_write, "),
    ("sl.i_take.eq(take)", "sl.i_take.eq(nonempty)"),
    ("r_port.addr.eq(head)", "r_port.addr.eq(r_slot)"),
    ("nonempty.eq(queued_next != 0)", "nonempty.eq(queued != 0)"),
    ("room.eq(queued_next + issue + ", "room.eq(queued_next + "),
    ("*(o.eq(offs[-1]) for o in off_q)", "*(o.eq(offs[0]) for o in off_q)"),
], ids=["write-slot-early", "head-slot-without-take", "head-read-without-took", "valid-late",
        "room-without-the-read-now", "offset-early"])
def test_prefetch_mutants_fail(old, new):
    """The queue's write slot stepping a cycle early, its head slot without the array's take
    (the array stalls in the first run) or read a cycle behind it (without ``took``), its valid
    register from the count before this cycle's take, its room without the beat read in this
    cycle (one beat too many in the queue), or the byte offset not delayed with its beat's
    words: the beats taken are not the tile's, in order."""
    Mutant = mutated("hw.gemm.sequencer", "GemmSequencer", old, new)
    _, got = _run(_sequencer(Mutant), ready_at={30, 31, 40} | set(range(50, 80)))
    _, got_always = _run(_sequencer(Mutant))
    expected = _expected()
    assert [(w, a) for _, w, a in got] != expected or [(w, a) for _, w, a in got_always] != expected
