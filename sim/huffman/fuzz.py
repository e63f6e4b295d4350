"""Corrupt and truncated block streams for the decoder's robustness tests.

Each case is a corrupt block followed by a good block (both small), so thousands of cases run
back-to-back in one simulation. Corruptions: 1-3 flipped bits anywhere in the block (data or
``first`` marks), the block cut short at a random beat, or a header field changed with the header CRC
recomputed (so only the decoder's semantic checks can catch it: bit lengths, symbol counts, region
size, raw width).
"""

import random

from hw.huffman import spec
from sim.huffman import golden as g

__all__ = ["fuzz_stream", "KINDS"]

KINDS = ("flip", "cut", "field")


def _good_block(rng, table, n_lanes, modes, with_values=False):
    n = rng.randrange(1, 7)
    counts, symbols = table
    mode = rng.choice(modes)
    if mode == spec.MODE_RAW:
        r = 8
        values = [rng.randrange(1 << r) for _ in range(n * n_lanes)]
        beats = g.encode_block(values, n_lanes=n_lanes, mode=mode, r=r)[0]
        return (beats, values) if with_values else beats
    r = rng.choice((0, 0, 8)) if mode == spec.MODE_INT else 8      # the decoder's R is 8
    values = []
    for _ in range(n * n_lanes):
        sym = rng.choice(symbols)
        raw = rng.randrange(1 << r)
        values.append(spec.compose_value(mode, sym, raw, r, 4))
    beats = g.encode_block(values, n_lanes=n_lanes, mode=mode, r=r, ebits=4, table=table)[0]
    return (beats, values) if with_values else beats


def _mutate_header(rng, beats, n_lanes):
    words = [w for b in beats[:spec.header_beats(n_lanes)] for w in b.words]
    k = n_lanes
    lane = rng.randrange(k)
    field = rng.choice(("bitlen", "n", "m", "r"))
    if field == "bitlen":
        words[lane] = (words[lane] + rng.choice((-3, -1, 1, 2, 17))) & 0xFFFF
    elif field == "n":
        words[3 * k + 1] = max(1, words[3 * k + 1] + rng.choice((-1, 1, 2)))
        if words[3 * k + 1] == [w for b in beats[:spec.header_beats(k)] for w in b.words][3 * k + 1]:
            words[3 * k + 1] += 1
    elif field == "m":
        words[3 * k + 2] = max(0, words[3 * k + 2] + rng.choice((-1, 1)))
    else:
        flags = words[3 * k]
        r = (flags >> 4) & 0xF
        words[3 * k] = flags & ~0xF0 | (8 - r if rng.random() < 0.5 else (r + rng.choice((1, 2))) & 15) << 4
    words[-1] = spec.crc16(words[:-1])
    hb = [g.Beat(words[i:i + k], i == 0) for i in range(0, len(words), k)]
    return hb + beats[len(hb):]


def fuzz_stream(seed, count, *, n_lanes, max_len, table, modes=(spec.MODE_INT, spec.MODE_EXP, spec.MODE_RAW),
                cases=False):
    """``count`` (corrupt block, good block) pairs, back to back.

    Returns ``(beats, kinds, good_values)``: the data beats, the kind of each corruption, and the values
    of each good block (as :func:`sim.huffman.golden.encode_block` was given them); with ``cases``
    also the list of each pair's beats.
    """
    rng = random.Random(seed)
    beats, kinds, goods, pairs = [], [], [], []
    for _ in range(count):
        bad = list(_good_block(rng, table, n_lanes, modes))
        kind = rng.choice(KINDS)
        if kind == "flip":
            width = spec.WORD * n_lanes + 1
            for pos in rng.sample(range(len(bad) * width), rng.randrange(1, 4)):   # distinct bits
                i, bit = divmod(pos, width)
                words, first = list(bad[i].words), bad[i].first
                if bit == spec.WORD * n_lanes:
                    first = not first
                else:
                    words[bit // spec.WORD] ^= 1 << (bit % spec.WORD)
                bad[i] = g.Beat(words, first)
        elif kind == "cut":
            bad = bad[:rng.randrange(1, len(bad))]
        else:
            bad = _mutate_header(rng, bad, n_lanes)
        kinds.append(kind)
        good, values = _good_block(rng, table, n_lanes, modes, with_values=True)
        goods.append(values)
        beats += bad + list(good)
        pairs.append(bad + list(good))
    return (beats, kinds, goods, pairs) if cases else (beats, kinds, goods)
