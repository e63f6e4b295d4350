"""Vectorized host codec: the streams of :func:`sim.huffman.golden.encode_stream` and the output of
:func:`sim.huffman.golden.ref_decode`, bit for bit, at tens of millions of weights per second.

numpy does everything that is data-parallel (symbol split, histogram, code lookup, lane bit
lengths, the raw decision, block layout); three kernels are compiled with numba because they are
bit-serial recurrences that numpy cannot vectorize: packing variable-length codes into words, the
CRC-16 of a lane, and Huffman decoding (each code's position depends on every code before it). The
kernels run over independent (block, lane) jobs with ``numba.prange``, as the hardware's lanes do;
``numba.set_num_threads`` bounds them (the bench measures one thread).

A data stream is held as a :class:`Stream`: ``words`` (beats x N, uint16) and ``first`` (beats,
bool); :func:`to_beats` / :func:`from_beats` convert to and from the golden model's
:class:`~sim.huffman.golden.Beat` lists.
"""

from typing import NamedTuple

import numba
import numpy as np

from hw.huffman import spec
from sim.huffman import golden as g

__all__ = ["Stream", "to_beats", "from_beats", "split_symbols", "code_arrays", "build_table",
           "table_of_counts", "histogram", "encode_fast", "decode_luts", "decode_fast", "blocks_as_ref",
           "crc16_lanes"]

_U64 = np.uint64


class Stream(NamedTuple):
    """A data stream: ``words[i, k]`` is word ``k`` of beat ``i``; ``first[i]`` its block mark."""

    words: np.ndarray
    first: np.ndarray


def to_beats(stream):
    """The golden model's :class:`~sim.huffman.golden.Beat` list of a :class:`Stream`."""
    return [g.Beat(tuple(int(w) for w in row), bool(f)) for row, f in zip(stream.words, stream.first,
                                                                          strict=True)]


def from_beats(beats, n_lanes):
    """A :class:`Stream` of a Beat list (or ``(words, first)`` pairs) of ``n_lanes`` words each."""
    words = np.array([b[0] for b in beats], dtype=np.uint16).reshape(len(beats), n_lanes)
    return Stream(words, np.array([bool(b[1]) for b in beats], dtype=bool))


def _crc_table():
    table = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ spec.CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
        table[byte] = crc
    return table


_CRC_TABLE = _crc_table()


@numba.njit(cache=True, inline="always")
def _crc_word(crc, word, table):
    crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ (word >> 8)) & 0xFF]
    return ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ word) & 0xFF]


@numba.njit(cache=True, parallel=True)
def _crc_lanes(words, rows, counts, table):
    """CRC-16 of ``words[rows[j] : rows[j] + counts[j], k]`` for every job ``j`` and lane ``k``."""
    n_lanes = words.shape[1]
    out = np.empty((rows.shape[0], n_lanes), dtype=np.uint16)
    for jk in numba.prange(rows.shape[0] * n_lanes):
        j, k = jk // n_lanes, jk % n_lanes
        crc = 0xFFFF
        for i in range(rows[j], rows[j] + counts[j]):
            crc = _crc_word(crc, np.int64(words[i, k]), table)
        out[j, k] = crc
    return out


def crc16_lanes(words, rows, counts):
    """Per-lane CRC-16 (:func:`hw.huffman.spec.crc16`) of row ranges of a words array."""
    return _crc_lanes(words, np.asarray(rows, dtype=np.int64), np.asarray(counts, dtype=np.int64), _CRC_TABLE)


@numba.njit(cache=True, inline="always")
def _split(v, mode, r, ebits):
    """``(symbol, raw)`` of one value (:func:`sim.huffman.golden.split_value`, coded modes)."""
    if mode == spec.MODE_INT:
        return v >> r, v & ((1 << r) - 1)
    sign = (v >> (ebits + r - 1)) & 1
    return (v >> (r - 1)) & ((1 << ebits) - 1), sign << (r - 1) | (v & ((1 << (r - 1)) - 1))


@numba.njit(cache=True)
def _histogram(values, mode, r, ebits):
    """Symbol counts 0..255 and the number of values whose symbol is out of range."""
    counts = np.zeros(spec.MAX_SYMBOLS, dtype=np.int64)
    bad = 0
    for i in range(values.shape[0]):
        sym = _split(np.int64(values[i]), mode, r, ebits)[0]
        if 0 <= sym < spec.MAX_SYMBOLS:
            counts[sym] += 1
        else:
            bad += 1
    return counts, bad


@numba.njit(cache=True, parallel=True)
def _lane_bits(values, pad, clen, mode, r, ebits, n_lanes, starts, ns):
    """Coded bits of lane ``k`` of block ``b``: values ``(starts[b] + t) * N + k`` for ``t`` below
    ``ns[b]`` (past the end: ``pad``)."""
    n_blocks = starts.shape[0]
    out = np.zeros((n_blocks, n_lanes), dtype=np.int64)
    size = values.shape[0]
    for bk in numba.prange(n_blocks * n_lanes):
        b, k = bk // n_lanes, bk % n_lanes
        total = 0
        for t in range(ns[b]):
            i = (starts[b] + t) * n_lanes + k
            v = np.int64(values[i]) if i < size else pad
            total += clen[_split(v, mode, r, ebits)[0]] + r
        out[b, k] = total
    return out


@numba.njit(cache=True, parallel=True)
def _pack(words, values, pad, cval, clen, mode, r, ebits, is_raw, raw_bits, n_lanes, starts, ns, block_rows):
    """Pack lane ``k`` of block ``b`` (values as in :func:`_lane_bits`; a raw block's values as their
    ``raw_bits`` low bits, a coded block's as code then ``r`` raw bits, MSB first) into
    ``words[block_rows[b] + j, k]``."""
    n_blocks = block_rows.shape[0]
    size = values.shape[0]
    raw_mask = (1 << raw_bits) - 1
    for bk in numba.prange(n_blocks * n_lanes):
        b, k = bk // n_lanes, bk % n_lanes
        row = block_rows[b]
        acc = _U64(0)
        nb = 0
        for t in range(ns[b]):
            i = (starts[b] + t) * n_lanes + k
            v = np.int64(values[i]) if i < size else pad
            if is_raw[b]:
                val = v & raw_mask
                ln = raw_bits
            else:
                sym, raw = _split(v, mode, r, ebits)
                val = np.int64(cval[sym]) << r | raw
                ln = np.int64(clen[sym]) + r
            acc = (acc << _U64(ln)) | _U64(val)
            nb += ln
            while nb >= 16:
                nb -= 16
                words[row, k] = np.uint16((acc >> _U64(nb)) & _U64(0xFFFF))
                row += 1
        if nb:
            words[row, k] = np.uint16((acc << _U64(16 - nb)) & _U64(0xFFFF))


@numba.njit(cache=True, parallel=True)
def _drift_cuts(values, pad, clen, mode, r, ebits, n_lanes, per_lane, coded, max_drift, cut):
    """:func:`sim.huffman.golden.drift_cuts` of every coded block ``b`` (values as in
    :func:`_lane_bits`, blocks of ``per_lane``): ``cut[b * per_lane + t]`` set where a block starts
    at symbol ``t`` of block ``b``, ``t > 0``."""
    size = values.shape[0]
    for b in numba.prange(coded.shape[0]):
        if not coded[b]:
            continue
        totals = np.zeros(n_lanes, dtype=np.int64)
        step = np.zeros(n_lanes, dtype=np.int64)
        start = 0
        for t in range(per_lane):
            lo, hi = np.int64(1) << 62, np.int64(0)
            for k in range(n_lanes):
                i = (b * per_lane + t) * n_lanes + k
                v = np.int64(values[i]) if i < size else pad
                step[k] = clen[_split(v, mode, r, ebits)[0]] + r
                w = (totals[k] + step[k] + 15) // 16
                lo, hi = min(lo, w), max(hi, w)
            if hi - lo > max_drift and t > start:
                cut[b * per_lane + t] = True
                start = t
                totals[:] = step
            else:
                totals += step


def histogram(values, mode, r, ebits):
    """Symbol counts 0..255 of a value array (``ValueError`` if a symbol is out of range)."""
    _check_coded_mode(mode)
    counts, bad = _histogram(np.asarray(values).ravel(), mode, r, ebits)
    if bad:
        raise ValueError("symbols must be integers from 0 to 255")
    return counts


def _check_coded_mode(mode):
    if mode not in (spec.MODE_INT, spec.MODE_EXP):
        raise ValueError(f"mode must be MODE_INT or MODE_EXP for a coded stream, not {mode!r}")


def split_symbols(values, mode, r, ebits):
    """``(symbols, raw)`` arrays of unsigned values: :func:`sim.huffman.golden.split_value` vectorized."""
    _check_coded_mode(mode)
    v = np.asarray(values).astype(np.int64, copy=False)
    if mode == spec.MODE_INT:
        return v >> r, v & ((1 << r) - 1)
    sym = (v >> (r - 1)) & ((1 << ebits) - 1)
    return sym, ((v >> (ebits + r - 1)) & 1) << (r - 1) | (v & ((1 << (r - 1)) - 1))


def code_arrays(table):
    """``(code_value, code_length)`` arrays indexed by symbol 0..255 of a table (length 0: no code).
    With an escape code, the symbols without a code of their own get the escape code and themselves
    (:data:`~hw.huffman.spec.ESCAPE_BITS` more bits)."""
    val = np.zeros(spec.MAX_SYMBOLS, dtype=np.uint32)
    length = np.zeros(spec.MAX_SYMBOLS, dtype=np.uint8)
    codes = spec.canonical_codes(*table)
    if spec.ESCAPE in codes:
        esc, esc_len = codes[spec.ESCAPE]
        val[:] = esc << spec.ESCAPE_BITS | np.arange(spec.MAX_SYMBOLS)
        length[:] = esc_len + spec.ESCAPE_BITS
    for sym, (code, ln) in codes.items():
        if sym != spec.ESCAPE:
            val[sym], length[sym] = code, ln
    return val, length


def build_table(symbols, max_len, escape=False):
    """:func:`sim.huffman.golden.build_table` of a symbol array."""
    counts = np.bincount(np.asarray(symbols).ravel(), minlength=spec.MAX_SYMBOLS)
    return table_of_counts(counts, max_len, escape)


def table_of_counts(counts, max_len, escape=False):
    """:func:`sim.huffman.golden.build_table` of a symbol histogram (counts of symbols 0..255)."""
    if len(counts) > spec.MAX_SYMBOLS:
        raise ValueError("symbols must be integers from 0 to 255")
    nz = np.flatnonzero(counts)
    freqs = dict(zip(nz.tolist(), np.asarray(counts)[nz].tolist(), strict=True))
    lengths = g.escape_lengths(freqs, max_len) if escape else g.package_merge_lengths(freqs, max_len)
    return spec.table_from_lengths(lengths, max_len, escape)


def encode_fast(values, *, n_lanes=1, block_n=1024, max_len=16, mode=spec.MODE_INT, r=0, ebits=0,
                raw_bits=8, allow_raw=True, escape=False, table=None, max_drift=None):
    """:func:`sim.huffman.golden.encode_stream` (same parameters, same table words, same beats).

    ``values``: a 1-D integer array. ``table``: a ``(counts, symbols)`` to use instead of the data's
    own (it must code every symbol). Returns ``(tables, Stream, stats)``.
    """
    spec.check_max_len(max_len)
    _check_coded_mode(mode)
    if max_drift is not None:
        g.check_max_drift(max_drift)
    values = np.asarray(values).ravel()
    if values.dtype.kind not in "iu":
        values = values.astype(np.int64)
    if values.size == 0:
        raise ValueError("cannot build a code for an empty data set")
    counts = histogram(values, mode, r, ebits)
    if table is None:
        table = table_of_counts(counts, max_len, escape)
    cval, clen = code_arrays(table)
    if not clen[counts > 0].all():
        raise ValueError("the table does not code every symbol of the data")
    vbits = 8 + r if mode == spec.MODE_INT else ebits + r
    n_blocks = max(1, -(-values.size // (n_lanes * block_n)))
    per_lane = max(1, -(-values.size // (n_lanes * n_blocks)))
    pad = spec.compose_value(mode, next(s for s in table[1] if s != spec.ESCAPE), 0, r, ebits)
    starts = np.arange(n_blocks, dtype=np.int64) * per_lane
    ns = np.full(n_blocks, per_lane, dtype=np.int64)
    lane_bits = _lane_bits(values, pad, clen, mode, r, ebits, n_lanes, starts, ns)   # (blocks, N)
    coded_words = ((lane_bits + 15) // 16).max(axis=1)
    table_words = spec.serialize_table(*table, max_len, escape)
    raw_words = -(-per_lane * raw_bits // spec.WORD)
    can_raw = allow_raw and vbits <= raw_bits
    is_raw = (coded_words >= raw_words) if can_raw else np.zeros(n_blocks, dtype=bool)
    if can_raw and (is_raw.all() or (np.minimum(coded_words, raw_words).sum() * n_lanes + len(table_words))
                    >= raw_words * n_blocks * n_lanes):
        is_raw[:] = True
    hb = spec.header_beats(n_lanes)
    if max_drift is not None and n_lanes > 1 and not is_raw.all():
        # The equal blocks' raw decisions stand; coded blocks are cut further where their drift
        # would pass max_drift (encode_stream's rule).
        cut = np.zeros(n_blocks * per_lane, dtype=np.bool_)
        _drift_cuts(values, pad, clen, mode, r, ebits, n_lanes, per_lane, ~is_raw, max_drift, cut)
        if cut.any():
            cut[starts] = True
            new_starts = np.flatnonzero(cut).astype(np.int64)
            new_ns = np.diff(np.append(new_starts, n_blocks * per_lane)).astype(np.int64)
            new_raw = is_raw[new_starts // per_lane]
            new_bits = _lane_bits(values, pad, clen, mode, r, ebits, n_lanes, new_starts, new_ns)
            new_words = ((new_bits + 15) // 16).max(axis=1)
            # The cuts' headers count against coding: all raw if coding no longer pays.
            extra = (len(new_starts) - n_blocks) * hb
            coded_total = (np.where(new_raw, raw_words, new_words).sum() + extra) * n_lanes + len(table_words)
            if can_raw and coded_total >= raw_words * n_blocks * n_lanes:
                is_raw[:] = True
            else:
                starts, ns, is_raw, n_blocks = new_starts, new_ns, new_raw, len(new_starts)
                lane_bits, coded_words = new_bits, new_words
    lane_bits[is_raw] = per_lane * raw_bits
    m = np.where(is_raw, raw_words, coded_words).astype(np.int64)
    block_rows = np.concatenate([[0], np.cumsum(hb + m)[:-1]]).astype(np.int64)
    n_beats = int(hb * n_blocks + m.sum())
    words = np.zeros((n_beats, n_lanes), dtype=np.uint16)
    first = np.zeros(n_beats, dtype=bool)
    first[block_rows] = True
    _pack(words, values, pad, cval, clen, mode, r, ebits, is_raw, raw_bits, n_lanes, starts, ns,
          block_rows + hb)
    crcs = crc16_lanes(words, block_rows + hb, m)
    for b in range(n_blocks):
        braw = bool(is_raw[b])
        hdr = spec.header_words(mode=spec.MODE_RAW if braw else mode, r=raw_bits if braw else r,
                                ebits=0 if braw else ebits, parity=0, n=int(ns[b]), words_per_lane=int(m[b]),
                                bitlens=lane_bits[b].tolist(), crcs=crcs[b].tolist())
        words[block_rows[b]:block_rows[b] + hb] = np.array(hdr, dtype=np.uint16).reshape(hb, n_lanes)
    code_bits = int(lane_bits.sum())
    stats = {"code_bits": code_bits, "header_bits": hb * n_lanes * spec.WORD * n_blocks,
             "pad_bits": int(m.sum()) * spec.WORD * n_lanes - code_bits, "raw_blocks": int(is_raw.sum()),
             "blocks": n_blocks, "table_bits": 0}
    if is_raw.all():
        return [], Stream(words, first), stats
    stats["table_bits"] = len(table_words) * spec.WORD
    return [table_words], Stream(words, first), stats


def decode_luts(table, max_len):
    """``(length, symbol)`` lookup tables over every ``max_len``-bit window of a loaded table
    (length 0: invalid code), from :func:`hw.huffman.spec.decode_tables` as the RTL loads it."""
    counts, symbols = table
    limit, offset = spec.decode_tables(counts, max_len)
    w = np.arange(1 << max_len, dtype=np.int64)
    length = np.searchsorted(np.array(limit[1:], dtype=np.int64), w, side="right") + 1
    valid = length <= max_len
    length = np.where(valid, length, max_len)
    symmem = np.zeros(512, dtype=np.uint16)
    symmem[:len(symbols)] = symbols
    sym = symmem[((w >> (max_len - length)) + np.array(offset, dtype=np.int64)[length]) % 512]
    return np.where(valid, length, 0).astype(np.uint8), np.where(valid, sym, 0).astype(np.uint16)


# Job fields (one row of the int64 job matrix per decoded (block, lane)).
_J_ROW, _J_AVAIL, _J_M, _J_LANE, _J_BITLEN, _J_N, _J_TAB, _J_MODE, _J_R, _J_EBITS, _J_OUT, _J_CRC = range(12)


@numba.njit(cache=True, parallel=True)
def _decode_jobs(words, jobs, len_lut, sym_lut, max_len, crc_table, out):
    """Decode every job (one lane of one block) into ``out``; return each job's error mask."""
    n_lanes = words.shape[1]
    errs = np.zeros(jobs.shape[0], dtype=np.uint8)
    for j in numba.prange(jobs.shape[0]):
        row, avail, m, k = jobs[j, _J_ROW], jobs[j, _J_AVAIL], jobs[j, _J_M], jobs[j, _J_LANE]
        bitlen, n, tab, mode = jobs[j, _J_BITLEN], jobs[j, _J_N], jobs[j, _J_TAB], jobs[j, _J_MODE]
        r, ebits, o0 = jobs[j, _J_R], jobs[j, _J_EBITS], jobs[j, _J_OUT]
        own = min((bitlen + 15) // 16, avail)
        buf = _U64(0)
        nb = 0
        widx = 0
        pos = 0
        err = 0
        rmask = (1 << r) - 1
        for t in range(n):
            o = o0 + t * n_lanes + k
            if err:
                out[o] = 0
                continue
            while nb <= 48:
                wd = words[row + widx, k] if widx < own else 0
                buf |= _U64(wd) << _U64(48 - nb)
                widx += 1
                nb += 16
            if mode == spec.MODE_RAW:
                length = 0
                sym = 0
            else:
                win = np.int64(buf >> _U64(64 - max_len))
                length = np.int64(len_lut[tab, win])
                if length == 0:
                    err |= spec.ERR_INVALID
                    out[o] = 0
                    continue
                sym = np.int64(sym_lut[tab, win])
                if sym == spec.ESCAPE:           # the symbol follows the escape code
                    sym = np.int64((buf << _U64(length)) >> _U64(64 - spec.ESCAPE_BITS))
                    length += spec.ESCAPE_BITS
            if length + r > bitlen - pos:
                err |= spec.ERR_TRUNC
                out[o] = 0
                continue
            rest = buf << _U64(length)
            raw = np.int64(rest >> _U64(64 - r)) & rmask if r else 0
            if mode == spec.MODE_RAW:
                out[o] = raw
            elif mode == spec.MODE_INT:
                out[o] = sym << r | raw
            else:
                out[o] = (raw >> (r - 1)) << (ebits + r - 1) | sym << (r - 1) | (raw & ((1 << (r - 1)) - 1))
            step = length + r
            buf = buf << _U64(step)
            nb -= step
            pos += step
        if not err and pos != bitlen:
            err |= spec.ERR_MISMATCH
        crc = 0xFFFF
        for i in range(m):
            crc = _crc_word(crc, np.int64(words[row + i, k]) if i < avail else 0, crc_table)
        if crc != jobs[j, _J_CRC]:
            err |= spec.ERR_CRC
        errs[j] = err
    return errs


def decode_fast(stream, tables, *, n_lanes, max_len, raw_bits, escape=False):
    """:func:`sim.huffman.golden.ref_decode` on a :class:`Stream`, with the same outputs and errors.

    Returns ``(values, blocks, errors)``: ``values`` all output values in order (uint32; block after
    block, each block ``n`` beats of N values), ``blocks`` a list of ``(n, err)`` per output block,
    ``errors`` the sticky error mask. :func:`blocks_as_ref` gives ``ref_decode``'s block list.
    """
    if tables and isinstance(tables[0], tuple):
        frames = g._split_frames(tables)
    else:
        frames = [list(t) for t in tables]
    errors = 0
    loaded = []
    for f in frames:
        t = spec.check_table_words(f, max_len, escape)
        errors |= spec.ERR_TABLE if t is None else 0
        loaded.append(t)
    good = [i for i, t in enumerate(loaded) if t is not None]
    luts = [decode_luts(loaded[i], max_len) for i in good]
    lut_index = {t: i for i, t in enumerate(good)}
    len_lut = np.stack([a for a, _ in luts]) if luts else np.zeros((1, 1 << max_len), dtype=np.uint8)
    sym_lut = np.stack([b for _, b in luts]) if luts else np.zeros((1, 1 << max_len), dtype=np.uint16)

    words, first = stream
    n_beats = len(first)
    firsts = np.flatnonzero(first)
    hb = spec.header_beats(n_lanes)
    lane_tab = [-1] * n_lanes
    jobs, blocks, out_len = [], [], 0

    def next_first(i):                       # index of the first ``first`` beat after i (or n_beats)
        p = np.searchsorted(firsts, i, side="right")
        return int(firsts[p]) if p < len(firsts) else n_beats

    i = 0
    while i < n_beats:
        if not first[i]:
            errors |= spec.ERR_HEADER          # beats outside any block
            i = next_first(i)
            continue
        nf = next_first(i)
        if nf - i < hb:
            if nf < n_beats:
                errors |= spec.ERR_HEADER      # header cut by a ``first`` beat
            i = nf
            continue
        j = i + hb
        hdr = spec.parse_header(words[i:j].ravel().tolist(), n_lanes, raw_bits)
        if hdr is None:
            errors |= spec.ERR_HEADER
            i = j
            continue
        m = hdr["words_per_lane"]
        avail = min(m, nf - j)
        if avail < m and nf >= n_beats:
            break                              # stream ends mid-block: the RTL waits
        cut_short = avail < m
        if cut_short:
            errors |= spec.ERR_TRUNC
        n = hdr["n"]
        block_err = cut_short
        block_jobs = []
        for k in range(n_lanes):
            bitlen = hdr["bitlens"][k]
            if bitlen > spec.WORD * m:
                errors |= spec.ERR_OVERRUN
                block_err = True
                continue
            tab = -1
            if hdr["mode"] != spec.MODE_RAW:
                if lane_tab[k] < 0 or hdr["parity"] != lane_tab[k] & 1:
                    lane_tab[k] += 1
                if lane_tab[k] >= len(loaded):
                    raise ValueError("the data stream uses more tables than were loaded (the RTL would wait)")
                if loaded[lane_tab[k]] is None:
                    block_err = True
                    continue
                tab = lut_index[lane_tab[k]]
            block_jobs.append(len(jobs))
            jobs.append((j, avail, m, k, bitlen, n, tab, hdr["mode"], hdr["r"], hdr["ebits"], out_len,
                         hdr["crcs"][k]))
        blocks.append([n, block_err, block_jobs])
        out_len += n * n_lanes
        i = j + avail
    out = np.zeros(out_len, dtype=np.uint32)
    if jobs:
        errs = _decode_jobs(words, np.array(jobs, dtype=np.int64), len_lut, sym_lut, max_len, _CRC_TABLE, out)
        for e in np.unique(errs):
            errors |= int(e)
    else:
        errs = np.zeros(0, dtype=np.uint8)
    return out, [(n, bool(err or errs[bj].any())) for n, err, bj in blocks], errors


def blocks_as_ref(values, blocks, n_lanes):
    """``ref_decode``'s block list (dicts of values as N-tuples per beat, err) of :func:`decode_fast`'s."""
    res, pos = [], 0
    for n, err in blocks:
        vals = values[pos:pos + n * n_lanes].reshape(n, n_lanes).tolist()
        res.append({"values": [tuple(v) for v in vals], "err": err})
        pos += n * n_lanes
    return res
