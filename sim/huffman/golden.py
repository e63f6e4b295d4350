"""Golden model of the Huffman weight decoder: code construction, encoder, and a reference decoder that
defines the hardware's output bit-exactly, including what it does with corrupt input.

The format itself (tables, headers, modes, errors) is :mod:`hw.huffman.spec`; this module builds on it:

* :func:`package_merge_lengths` - optimal length-limited code lengths (package-merge);
* :func:`build_table` - the canonical table of a data set;
* :func:`encode_stream` - values -> table word lists + data beats (blocks of ``n`` symbols per lane,
  per-block raw/bypass fallback when coding does not pay off);
* :func:`ref_decode` - data beats + table word lists -> output beats, per-block error bits and the
  sticky error mask, exactly as the RTL produces them (:mod:`hw.huffman.decoder`).

Decisions where the issue is silent: a stream is cut into equal blocks of at most ``block_n`` symbols
per lane; the last block is padded up to ``N * n`` symbols (fewer than ``N * blocks``) with the
table's shortest-code symbol (the caller knows its true length and drops the padding); a
block goes raw (R bits per value) when its coded payload words would not be fewer (only possible
when the value width fits the decoder's R), and the whole stream goes raw, without a table, when
the coded blocks with their table would not be smaller than all raw.
"""

import math
from collections import Counter

from hw.huffman import spec

__all__ = ["package_merge_lengths", "package_merge_cost", "escape_lengths", "build_table", "entropy_bits",
           "encode_lane", "encode_block",
           "encode_stream", "ref_decode", "Beat", "table_stream", "split_blocks", "chain_blocks",
           "block_drift", "drift_cuts", "check_max_drift"]


def package_merge_lengths(freqs, max_len):
    """Optimal code lengths under the limit ``max_len`` (package-merge, Larmore & Hirschberg).

    Parameters
    ----------
    freqs : dict
        symbol -> positive count. Symbols with count 0 are ignored.
    max_len : int
        Length limit; needs ``2**max_len >= number of symbols``.

    Returns
    -------
    dict
        symbol -> code length. A single symbol gets length 1.
    """
    items = sorted((w, s) for s, w in freqs.items() if w > 0)
    if not items:
        raise ValueError("cannot build a code for an empty data set")
    if len(items) > 1 << max_len:
        raise ValueError(f"{len(items)} symbols do not fit codes of at most {max_len} bits")
    if len(items) == 1:
        return {items[0][1]: 1}
    # Each item is (weight, tiebreak, leaves) where leaves is a tuple-tree; counting how often each
    # symbol appears among the 2n-2 cheapest items of the last level gives its code length.
    leaves = [(w, i, ("leaf", s)) for i, (w, s) in enumerate(items)]
    current = list(leaves)
    tick = len(leaves)
    for _ in range(max_len - 1):
        packages = []
        for a, b in zip(current[0::2], current[1::2], strict=False):  # an odd last item is dropped
            packages.append((a[0] + b[0], tick, ("pkg", a[2], b[2])))
            tick += 1
        current = sorted(leaves + packages, key=lambda t: (t[0], t[1]))
    lengths = Counter()
    stack = [t[2] for t in current[:2 * len(items) - 2]]
    while stack:
        node = stack.pop()
        if node[0] == "leaf":
            lengths[node[1]] += 1
        else:
            stack.extend(node[1:])
    return dict(lengths)


def package_merge_cost(weights, max_len):
    """Total bits (sum of weight x length) of the optimal code of ``weights`` under ``max_len``: the
    weight of the ``2n - 2`` cheapest items of package-merge's last level (no code lengths)."""
    leaves = sorted(weights)
    if len(leaves) == 1:
        return leaves[0]
    current = leaves
    for _ in range(max_len - 1):
        packages = [a + b for a, b in zip(current[0::2], current[1::2], strict=False)]
        current = sorted(leaves + packages)
    return sum(current[:2 * len(leaves) - 2])


def escape_lengths(freqs, max_len):
    """Code lengths with escapes: ``{symbol or ESCAPE: length}`` minimizing the total bits (codes,
    the escaped symbols' :data:`~hw.huffman.spec.ESCAPE_BITS` and the table's words).

    The escaped set can always be some number ``k`` of the rarest symbols: in an optimal code no
    coded symbol is longer than the escape code plus ``ESCAPE_BITS`` (it would be cheaper escaped),
    so swapping an escaped symbol with a rarer coded one never costs more. Every ``k`` (0: no
    escape) is tried and the cheapest kept (ties: fewer escapes). Symbols of equal count are escaped
    in decreasing symbol order.
    """
    items = sorted(((w, s) for s, w in freqs.items() if w > 0), key=lambda t: (-t[0], t[1]))
    n = len(items)
    weights = [w for w, _ in items]

    def lengths(k):                    # k rarest symbols escaped
        kept = {s: w for w, s in items[:n - k]}
        if k:
            kept[spec.ESCAPE] = sum(weights[n - k:])
        return package_merge_lengths(kept, max_len), kept

    def bits(k):                       # exact: codes, escaped symbols, table words
        ln, kept = lengths(k)
        table = 2 + max(ln.values()) + len(ln)
        return sum(kept[s] * v for s, v in ln.items()) + spec.ESCAPE_BITS * (k and kept[spec.ESCAPE]) \
            + spec.WORD * table

    def estimate(k):                   # the same with the table's count words at their most (max_len)
        kept = weights[:n - k] + ([sum(weights[n - k:])] if k else [])
        if len(kept) > 1 << max_len:
            return None
        return (package_merge_cost(kept, max_len) + spec.ESCAPE_BITS * (k and kept[-1])
                + spec.WORD * (2 + max_len + len(kept)))
    # The estimate is exact but for the table's maxlen (1..max_len words), so only the k within
    # that margin of the best estimate need the exact count.
    est = [(e, k) for k in range(n) if (e := estimate(k)) is not None]
    best = min(est)[0]
    k = min((bits(k), k) for e, k in est if e - best < spec.WORD * max_len)[1]
    return lengths(k)[0]


def build_table(values, max_len, escape=False):
    """Canonical table ``(counts, symbols)`` of the 8-bit symbols in ``values`` (with ``escape``, the
    cheapest table with or without an escape code: :func:`escape_lengths`)."""
    freqs = Counter(int(v) for v in values)
    if any(not 0 <= s < spec.MAX_SYMBOLS for s in freqs):
        raise ValueError("symbols must be integers from 0 to 255")
    if escape:
        return spec.table_from_lengths(escape_lengths(freqs, max_len), max_len, escape=True)
    return spec.table_from_lengths(package_merge_lengths(freqs, max_len), max_len)


def entropy_bits(values):
    """Shannon entropy of the empirical distribution of ``values``, in bits per symbol."""
    counts = Counter(int(v) for v in values)
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values())


class Beat(tuple):
    """One data-stream beat: ``(words, first)`` with ``words`` a tuple of N 16-bit lane words."""

    def __new__(cls, words, first):
        return super().__new__(cls, (tuple(words), bool(first)))

    @property
    def words(self):
        return self[0]

    @property
    def first(self):
        return self[1]


def _pack(bits):
    """MSB-first 16-bit words of a bit string (list of 0/1), zero-padded."""
    words = []
    for i in range(0, len(bits), spec.WORD):
        chunk = bits[i:i + spec.WORD]
        chunk = chunk + [0] * (spec.WORD - len(chunk))
        w = 0
        for b in chunk:
            w = w << 1 | b
        words.append(w)
    return words


def _bits(value, width):
    return [(value >> i) & 1 for i in range(width - 1, -1, -1)]


def split_value(mode, value, r, ebits):
    """``(symbol, raw)`` of one input value: inverse of :func:`hw.huffman.spec.compose_value`."""
    if mode == spec.MODE_RAW:
        return 0, value & ((1 << r) - 1)
    if mode == spec.MODE_INT:
        return value >> r, value & ((1 << r) - 1)
    sign = (value >> (ebits + r - 1)) & 1
    return (value >> (r - 1)) & ((1 << ebits) - 1), sign << (r - 1) | (value & ((1 << (r - 1)) - 1))


def encode_lane(values, codes, *, mode, r, ebits):
    """Bit list of one lane's symbols (code, the symbol after an escape code, ``r`` raw bits)."""
    bits = []
    for v in values:
        sym, raw = split_value(mode, int(v), r, ebits)
        if mode != spec.MODE_RAW:
            if sym in codes:
                bits += _bits(*codes[sym])
            else:
                bits += _bits(*codes[spec.ESCAPE]) + _bits(sym, spec.ESCAPE_BITS)
        bits += _bits(raw, r)
    return bits


def encode_block(values, *, n_lanes, mode, r=0, ebits=0, parity=0, table=None, cont=False):
    """Header + payload beats of one block of exactly ``N * n`` values.

    ``table`` is ``(counts, symbols)`` (not needed for :data:`~hw.huffman.spec.MODE_RAW`).
    ``cont``: the next block continues this one's unit (:data:`~hw.huffman.spec.FLAG_CONT`).
    Returns ``(beats, info)`` with info = dict(bitlens, words_per_lane, header_words).
    """
    if len(values) % n_lanes or not values:
        raise ValueError(f"a block needs a positive multiple of {n_lanes} values, not {len(values)}")
    n = len(values) // n_lanes
    codes = spec.canonical_codes(*table) if table is not None else {}
    lanes = []
    for k in range(n_lanes):
        bits = encode_lane(values[k::n_lanes], codes, mode=mode, r=r, ebits=ebits)
        lanes.append((len(bits), _pack(bits)))
    m = max(len(w) for _, w in lanes)
    payload = [w + [0] * (m - len(w)) for _, w in lanes]
    bitlens = [b for b, _ in lanes]
    hdr = spec.header_words(mode=mode, r=r, ebits=ebits, parity=parity, n=n, words_per_lane=m,
                            bitlens=bitlens, crcs=[spec.crc16(p) for p in payload], cont=cont)
    beats = [Beat(hdr[i:i + n_lanes], i == 0) for i in range(0, len(hdr), n_lanes)]
    beats += [Beat([payload[k][j] for k in range(n_lanes)], False) for j in range(m)]
    return beats, {"bitlens": bitlens, "words_per_lane": m, "header_words": len(hdr)}


def _lane_bits(values, *, n_lanes, table, mode, r, ebits):
    """Per lane of a block of ``values``, the bits of each of its values in the lane's stream (its
    code, an escaped symbol's 8 bits, ``r`` raw)."""
    if mode == spec.MODE_RAW:
        return [[r] * len(values[k::n_lanes]) for k in range(n_lanes)]
    codes = spec.canonical_codes(*table)

    def bits(v):
        sym = split_value(mode, int(v), r, ebits)[0]
        return (codes[sym][1] if sym in codes else codes[spec.ESCAPE][1] + spec.ESCAPE_BITS) + r
    return [[bits(v) for v in values[k::n_lanes]] for k in range(n_lanes)]


def block_drift(values, *, n_lanes, table, mode=spec.MODE_INT, r=0, ebits=0):
    """The lane drift in words (:func:`hw.huffman.spec.lane_drift`) of ``values`` as one block."""
    return spec.lane_drift(_lane_bits(values, n_lanes=n_lanes, table=table, mode=mode, r=r, ebits=ebits))


def check_max_drift(max_drift):
    """``max_drift`` (words, an int of at least 2: one beat adds at most 2 words of drift)."""
    if not isinstance(max_drift, int) or isinstance(max_drift, bool):
        raise TypeError(f"max_drift must be an int, not {type(max_drift).__name__}")
    if max_drift < 2:
        raise ValueError(f"max_drift must be at least 2 words, not {max_drift}")
    return max_drift


def drift_cuts(lane_bits, max_drift):
    """Where a greedy cut keeps every block's drift at most ``max_drift`` words: the block starts
    ``[0, ..., T]`` (symbol indices per lane; ``T`` the symbols per lane) of ``lane_bits`` (per lane,
    its bits per symbol). A block ends before the first beat (one symbol per lane) that would take
    its drift (:func:`hw.huffman.spec.lane_drift`) past ``max_drift``."""
    cuts, start, totals = [0], 0, [0] * len(lane_bits)
    for t, step in enumerate(zip(*lane_bits, strict=True)):
        after = [b + s for b, s in zip(totals, step, strict=True)]
        words = [-(-b // spec.WORD) for b in after]
        if max(words) - min(words) > max_drift and t > start:
            cuts.append(t)
            start = t
            after = list(step)
        totals = after
    cuts.append(len(lane_bits[0]))
    return cuts


def chain_blocks(values, *, n_lanes, table, max_drift, mode=spec.MODE_INT, r=0, ebits=0, parity=0):
    """One unit of ``values`` (a multiple of ``n_lanes``) as chained blocks whose drift is at most
    ``max_drift`` words (:func:`hw.huffman.spec.lane_drift`; a decoder with ``F``-word FIFOs takes
    :func:`hw.huffman.spec.max_drift` ``(F)``), every block but the last marked ``cont``.

    Greedy: a block ends before the first beat of symbols (one per lane) that would take it past
    ``max_drift``; one beat adds at most ``ceil((16 + 8 + 8) / 16) = 2`` words of drift, so
    ``max_drift`` must be at least 2. A unit of small drift stays one block (the stream of
    :func:`encode_block`). Returns ``(beats, info)``: info = dict(blocks, drift (the largest
    block's), bitlens (summed per lane), header_words (summed)).
    """
    check_max_drift(max_drift)
    if not values or len(values) % n_lanes:
        raise ValueError(f"a unit needs a positive multiple of {n_lanes} values, not {len(values)}")
    lane_bits = _lane_bits(values, n_lanes=n_lanes, table=table, mode=mode, r=r, ebits=ebits)
    cuts = drift_cuts(lane_bits, max_drift)
    beats, info = [], {"blocks": len(cuts) - 1, "drift": 0, "bitlens": [0] * n_lanes, "header_words": 0}
    for a, b in zip(cuts, cuts[1:], strict=False):
        bb, bi = encode_block(values[a * n_lanes:b * n_lanes], n_lanes=n_lanes, mode=mode, r=r, ebits=ebits,
                              parity=parity, table=table, cont=b != cuts[-1])
        beats += bb
        info["drift"] = max(info["drift"], spec.lane_drift([lb[a:b] for lb in lane_bits]))
        info["bitlens"] = [x + y for x, y in zip(info["bitlens"], bi["bitlens"], strict=True)]
        info["header_words"] += bi["header_words"]
    return beats, info


def split_blocks(values, block_values, pad):
    """``values`` cut into blocks of ``block_values``, the last one padded with ``pad``."""
    blocks = []
    for i in range(0, len(values), block_values):
        b = [int(v) for v in values[i:i + block_values]]
        blocks.append(b + [pad] * (block_values - len(b)))
    return blocks


def encode_stream(values, *, n_lanes=1, block_n=1024, max_len=16, mode=spec.MODE_INT, r=0, ebits=0,
                  raw_bits=8, allow_raw=True, escape=False, max_drift=None):
    """Encode a whole value sequence with one table.

    Parameters
    ----------
    values : sequence of int
        Unsigned values (INT: ``8 + r`` bits at most; EXP: ``1 + ebits + r - 1`` bits).
    n_lanes, block_n : int
        Lanes and the most symbols per lane per block (blocks are made equal, so the last one needs
        little padding).
    max_len : int
        Code length limit L.
    mode, r, ebits :
        Symbol mode (see :mod:`hw.huffman.spec`).
    raw_bits : int
        The decoder's raw width R: a raw block stores R bits per value (so it is only chosen when
        the value width fits in R and coding would not be smaller). Coded blocks with ``r > 0``
        need ``r == R``.
    allow_raw : bool
        Allow the per-block raw fallback.
    escape : bool
        Allow an escape code (:func:`escape_lengths`; for decoders built with escapes).
    max_drift : int or None
        With several lanes, cut every coded block further (:func:`drift_cuts`, independent blocks,
        no :data:`~hw.huffman.spec.FLAG_CONT`) so that no block's lane drift exceeds ``max_drift``
        words: a hardware decoder with ``F``-word lane FIFOs needs
        :func:`hw.huffman.spec.max_drift` ``(F)`` or less, else lanes of very different code
        lengths (a pruned region in some lanes only) can stop it for good. The cuts' headers count
        in the raw decision (the whole tensor goes raw if coding no longer pays). ``None``: blocks
        as ``block_n`` makes them, whatever their drift. Raw blocks have no drift.

    Returns
    -------
    (list of table word lists, list of Beat, dict)
        The table (none when every block is raw); the data beats; stats: coded payload bits, header
        bits, padding bits, raw blocks, table bits.
    """
    spec.check_max_len(max_len)
    if max_drift is not None:
        check_max_drift(max_drift)
    syms = [split_value(mode, int(v), r, ebits)[0] for v in values]
    table = build_table(syms, max_len, escape)
    shortest = next(s for s in table[1] if s != spec.ESCAPE)
    pad = spec.compose_value(mode, shortest, 0, r, ebits)
    vbits = 8 + r if mode == spec.MODE_INT else ebits + r
    stats = {"code_bits": 0, "header_bits": 0, "pad_bits": 0, "raw_blocks": 0, "blocks": 0,
             "table_bits": 0}
    # As many blocks as ``block_n`` requires, each as equal as possible: padding < N * blocks values.
    n_blocks = max(1, -(-len(values) // (n_lanes * block_n)))
    per_lane = max(1, -(-len(values) // (n_lanes * n_blocks)))
    blocks = split_blocks(values, n_lanes * per_lane, pad)
    words = spec.serialize_table(*table, max_len, escape)
    # The raw fallback compares total bits: per block the payload words (the header is the same either
    # way); per tensor the coded total with its table against all raw (then no table is sent).
    can_raw = allow_raw and vbits <= raw_bits
    raw_words = -(-per_lane * raw_bits // spec.WORD)
    # Per block, per lane, each value's bits: the payload words, and (with max_drift) the cuts.
    block_bits = [_lane_bits(block, n_lanes=n_lanes, table=table, mode=mode, r=r, ebits=ebits)
                  for block in blocks]
    coded = [max(-(-sum(lb) // spec.WORD) for lb in bits) for bits in block_bits]
    is_raw = [can_raw and c >= raw_words for c in coded]
    if can_raw and (all(is_raw) or sum(min(c, raw_words) for c in coded) * n_lanes * spec.WORD + len(words)
                    * spec.WORD >= raw_words * len(blocks) * n_lanes * spec.WORD):
        is_raw = [True] * len(blocks)
    # Coded blocks cut further where their lane drift would pass max_drift; the cuts' headers count
    # against coding (all raw if coding no longer pays).
    cuts = [[0, per_lane] for _ in blocks]
    if max_drift is not None and n_lanes > 1:
        lane_words = []
        for i, (bits, raw) in enumerate(zip(block_bits, is_raw, strict=True)):
            if raw:
                lane_words.append(raw_words)
                continue
            cuts[i] = drift_cuts(bits, max_drift)
            lane_words += [max(-(-sum(lb[a:b]) // spec.WORD) for lb in bits)
                           for a, b in zip(cuts[i], cuts[i][1:], strict=False)]
        extra = (len(lane_words) - len(blocks)) * spec.header_beats(n_lanes)
        if can_raw and extra and ((sum(lane_words) + extra) * n_lanes + len(words)
                                  >= raw_words * len(blocks) * n_lanes):
            is_raw = [True] * len(blocks)
    beats = []
    for block, raw, cut in zip(blocks, is_raw, cuts, strict=True):
        if raw:
            parts = [encode_block(block, n_lanes=n_lanes, mode=spec.MODE_RAW, r=raw_bits)]
            stats["raw_blocks"] += 1
        else:
            parts = [encode_block(block[a * n_lanes:b * n_lanes], n_lanes=n_lanes, mode=mode, r=r,
                                  ebits=ebits, parity=0, table=table)
                     for a, b in zip(cut, cut[1:], strict=False)]
        for b, info in parts:
            beats += b
            stats["blocks"] += 1
            stats["code_bits"] += sum(info["bitlens"])
            stats["header_bits"] += info["header_words"] * spec.WORD
            stats["pad_bits"] += info["words_per_lane"] * spec.WORD * n_lanes - sum(info["bitlens"])
    if all(is_raw):
        return [], beats, stats
    stats["table_bits"] = len(words) * spec.WORD
    return [words], beats, stats


def table_stream(tables):
    """``(word, first)`` pairs of a sequence of table word lists."""
    return [(w, i == 0) for t in tables for i, w in enumerate(t)]


def _split_frames(items):
    """Frames of a ``(payload, first)`` sequence: each starts at a ``first`` item (leading junk dropped)."""
    frames = []
    for payload, first in items:
        if first:
            frames.append([])
        if frames:
            frames[-1].append(payload)
    return frames


def _decode_lane(words, bitlen, n, hdr, table, max_len):
    """Values and error mask of one lane of one block (not skipped)."""
    mode, r, ebits = hdr["mode"], hdr["r"], hdr["ebits"]
    own = -(-bitlen // spec.WORD)
    bits = []
    for w in words[:own]:
        bits += _bits(w, spec.WORD)
    if mode != spec.MODE_RAW:
        counts, symbols = table
        limit, offset = spec.decode_tables(counts, max_len)
        symmem = symbols + [0] * (512 - len(symbols))
    pos, out, err = 0, [], 0
    for _ in range(n):
        if err:
            out.append(0)
            continue
        window = bits[pos:pos + max_len + spec.ESCAPE_BITS + r]
        window += [0] * (max_len + spec.ESCAPE_BITS + r - len(window))
        w = int("".join(map(str, window[:max_len])), 2)
        if mode == spec.MODE_RAW:
            length, sym = 0, 0
        else:
            length = next((ln for ln in range(1, max_len + 1) if w < limit[ln]), None)
            if length is None:
                err |= spec.ERR_INVALID
                out.append(0)
                continue
            sym = symmem[((w >> (max_len - length)) + offset[length]) % 512]
            if sym == spec.ESCAPE:                    # the symbol follows the escape code
                sym = int("".join(map(str, window[length:length + spec.ESCAPE_BITS])), 2)
                length += spec.ESCAPE_BITS
        if length + r > bitlen - pos:
            err |= spec.ERR_TRUNC
            out.append(0)
            continue
        raw = 0
        for b in window[length:length + r]:
            raw = raw << 1 | b
        out.append(spec.compose_value(mode, sym, raw, r, ebits))
        pos += length + r
    if not err and pos != bitlen:
        err |= spec.ERR_MISMATCH
    return out, err


def ref_decode(beats, tables, *, n_lanes, max_len, raw_bits, escape=False, chain=False):
    """Reference decode of a data stream, defining the RTL's output.

    Parameters
    ----------
    beats : list of Beat (or ``(words, first)`` pairs)
    tables : list of word lists, or list of ``(word, first)`` pairs
        The ``i_table`` stream, in load order (framed by its ``first`` marks when given as pairs).
    n_lanes, max_len, raw_bits : int
        Decoder parameters N, L, R.
    escape : bool
        The decoder accepts escape codes (else a table with one is a bad table).
    chain : bool
        The decoder takes chained blocks (:data:`hw.huffman.spec.FLAG_CONT`); ``out`` then lists
        units (a block with ``cont`` joins the next block's unit; ``err``: any of its blocks had an
        error). A unit still open when the stream ends is listed too (the RTL has output its values
        and waits for the rest).

    Returns
    -------
    (out, errors)
        ``out``: list of blocks, each a dict(values=list of N-tuples (one per output beat), err=bool);
        ``errors``: the sticky error mask.
    """
    if tables and isinstance(tables[0], tuple):
        frames = _split_frames(tables)
    else:
        frames = [list(t) for t in tables]
    loaded = []
    errors = 0
    for f in frames:
        t = spec.check_table_words(f, max_len, escape)
        if t is None:
            errors |= spec.ERR_TABLE
        loaded.append(t)
    hb = spec.header_beats(n_lanes)
    lane_tab = [-1] * n_lanes
    out = []
    i = 0
    beats = [(tuple(b[0]), bool(b[1])) for b in beats]
    while i < len(beats):
        if not beats[i][1]:
            errors |= spec.ERR_HEADER                 # a beat outside any block
            i += 1
            continue
        hdr_words = []
        j = i
        cut = False
        while j < len(beats) and len(hdr_words) < hb * n_lanes:
            if j > i and beats[j][1]:
                cut = True
                break
            hdr_words += beats[j][0]
            j += 1
        if cut or len(hdr_words) < hb * n_lanes:
            if cut:
                errors |= spec.ERR_HEADER
            i = j
            continue
        hdr = spec.parse_header(hdr_words, n_lanes, raw_bits, chain)
        if hdr is None:
            errors |= spec.ERR_HEADER
            i = j
            continue
        m = hdr["words_per_lane"]
        payload = []
        while j < len(beats) and len(payload) < m and not beats[j][1]:
            payload.append(beats[j][0])
            j += 1
        if len(payload) < m:
            if j >= len(beats):
                break                                 # stream ends mid-block: the RTL waits
            errors |= spec.ERR_TRUNC
            cut_short = True
            payload += [(0,) * n_lanes] * (m - len(payload))
        else:
            cut_short = False
        lanes = []
        block_err = int(cut_short)
        for k in range(n_lanes):
            words = [p[k] for p in payload]
            bitlen = hdr["bitlens"][k]
            if bitlen > spec.WORD * m:
                errors |= spec.ERR_OVERRUN
                block_err = 1
                lanes.append([0] * hdr["n"])
                continue
            table = None
            if hdr["mode"] != spec.MODE_RAW:
                if lane_tab[k] < 0 or hdr["parity"] != lane_tab[k] & 1:
                    lane_tab[k] += 1
                table = loaded[lane_tab[k]] if lane_tab[k] < len(loaded) else "missing"
                if table == "missing":
                    raise ValueError("the data stream uses more tables than were loaded (the RTL would wait)")
                if table is None:
                    block_err = 1
                    lanes.append([0] * hdr["n"])
                    continue
            vals, err = _decode_lane(words, bitlen, hdr["n"], hdr, table, max_len)
            if spec.crc16(words) != hdr["crcs"][k]:
                err |= spec.ERR_CRC
            errors |= err
            block_err |= bool(err)
            lanes.append(vals)
        values = list(zip(*lanes, strict=True))
        if out and out[-1].pop("open", False):        # this block continues the open unit
            out[-1]["values"] += values
            out[-1]["err"] |= bool(block_err)
        else:
            out.append({"values": values, "err": bool(block_err)})
        if hdr["cont"]:
            out[-1]["open"] = True
        i = j
    for unit in out:
        unit.pop("open", None)
    return out, errors
