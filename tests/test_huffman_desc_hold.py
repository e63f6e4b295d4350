"""The block parser's descriptor hold (``BlockParser(hold=True)`` with a ``DescriptorSlot`` per lane,
the two-context table decoder's descriptor path) against the parser with one-entry descriptor FIFOs:
the same descriptors and payload words reach each lane, and a held descriptor never changes."""

import random

import pytest
from amaranth.hdl import Cat, Module
from amaranth.lib.fifo import SyncFIFOBuffered

from hw.huffman.block_parser import BlockParser, DescriptorSlot, descriptor_layout
from sim.huffman import golden as g
from sim.streams import simulate

LANES = 2


def _stream(rng):
    """Small blocks (payload shorter than a header), one with a bad header between them."""
    values = [rng.choice([0, 1, 1, 2, 3, 200]) for _ in range(60)]
    _, beats, _ = g.encode_stream(values, n_lanes=LANES, block_n=3, max_len=8, raw_bits=8)
    bad = list(beats[0:3])
    bad[1] = ([w ^ 1 for w in bad[1][0]], bad[1][1])     # a corrupt header: dropped (CRC)
    return bad + list(beats)


def _run(hold, beats, seed):
    """Feed ``beats``; each lane reads its descriptors after random delays and its words at random.
    Returns per lane (descriptors read, words read)."""
    rng = random.Random(seed)
    m = Module()
    m.submodules.parser = parser = BlockParser(lanes=LANES, raw_bits=8, hold=hold)
    slots = []
    for k in range(LANES):
        slot = DescriptorSlot(descriptor_layout.size) if hold else \
            SyncFIFOBuffered(width=descriptor_layout.size, depth=1)
        m.submodules[f"slot{k}"] = slot
        slots.append(slot)
        m.d.comb += [slot.w_en.eq(parser.o_desc.valid & parser.o_desc.ready),
                     slot.w_data.eq(parser.o_desc.payload[k])]
    m.d.comb += parser.o_desc.ready.eq(Cat(*(s.w_rdy for s in slots)).all())
    if hold:
        m.d.comb += parser.i_hold.eq(Cat(*(s.r_rdy for s in slots)).any())
    got = [([], []) for _ in range(LANES)]

    async def tb(ctx):
        i = 0
        held = [None] * LANES
        for _ in range(3000):
            if i < len(beats):
                ctx.set(parser.i_data.valid, 1)
                ctx.set(parser.i_data.payload, {"data": list(beats[i][0]), "first": int(beats[i][1])})
            else:
                ctx.set(parser.i_data.valid, 0)
            ctx.set(parser.o_words.ready, rng.random() < 0.7)
            for s in slots:
                ctx.set(s.r_en, rng.random() < 0.1)
            if ctx.get(parser.i_data.valid) and ctx.get(parser.i_data.ready):
                i += 1
            if ctx.get(parser.o_words.valid) and ctx.get(parser.o_words.ready):
                for k in range(LANES):
                    got[k][1].append(ctx.get(parser.o_words.payload[k]))
            for k, s in enumerate(slots):
                if ctx.get(s.r_rdy):
                    data = ctx.get(s.r_data)
                    if hold:        # a held descriptor stays as it was written
                        assert held[k] is None or held[k] == data
                        held[k] = data
                    if ctx.get(s.r_en):
                        got[k][0].append(data)
                        held[k] = None
            await ctx.tick()
        assert i == len(beats)

    simulate(m, tb)
    return got


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hold_gives_the_fifo_parsers_descriptors_and_words(seed):
    beats = _stream(random.Random(seed))
    ref = _run(False, beats, seed)
    dut = _run(True, beats, seed)
    blocks = sum(1 for b in beats if b[1]) - 1           # the corrupt header's block is dropped
    for k in range(LANES):
        assert len(ref[k][0]) == blocks and len(ref[k][1]) > 0
        assert dut[k] == ref[k]


def test_descriptor_slot():
    """A write makes it full (``r_rdy``) in the next cycle, a read empty; ``r_data`` is ``w_data``."""
    m = Module()
    m.submodules.slot = slot = DescriptorSlot(8)

    async def tb(ctx):
        assert ctx.get(slot.w_rdy) and not ctx.get(slot.r_rdy)
        ctx.set(slot.w_data, 0x5A)
        ctx.set(slot.w_en, 1)
        await ctx.tick()
        ctx.set(slot.w_en, 0)
        assert ctx.get(slot.r_rdy) and not ctx.get(slot.w_rdy) and ctx.get(slot.r_data) == 0x5A
        ctx.set(slot.w_en, 1)              # full: a write is refused
        await ctx.tick()
        ctx.set(slot.w_en, 0)
        assert ctx.get(slot.r_rdy)
        ctx.set(slot.r_en, 1)
        await ctx.tick()
        ctx.set(slot.r_en, 0)
        assert ctx.get(slot.w_rdy) and not ctx.get(slot.r_rdy)

    simulate(m, tb)
