"""The compressed-weight format, written once: shared by the RTL (:mod:`hw.huffman`) and the golden
encoder/decoder (:mod:`sim.huffman.golden`). Pure Python (no numpy), so the gateware can import it.

Codes
-----
Length-limited *canonical* Huffman codes: code lengths 1..L with ``L`` (the format's maximum code
length) from :data:`MIN_MAX_LEN` to :data:`MAX_MAX_LEN`. Symbols are 8-bit values (an alphabet of up
to 256 symbols); a table lists only the symbols that occur (1 to 256 of them; a table with one symbol
gives it the 1-bit code ``0``, and ``1`` is an invalid code). Canonical assignment: symbols sorted by
(length, position in the table's symbol list) receive consecutive code values, the first code of
length ``l+1`` being ``(first[l] + count[l]) << 1``. Codes are written MSB first. An incomplete code
(Kraft sum < 1) is allowed; windows that match no codeword are *invalid codes*.

Escape codes (a decoder option, ``escape``): a table may list the pseudo-symbol :data:`ESCAPE`
(word value 256, at most once, sorted after the 8-bit symbols of its length). Its code is followed by
:data:`ESCAPE_BITS` raw bits holding the symbol itself (MSB first), then the symbol's ``r`` raw
bits; so the rare symbols share one codeword and a short length limit still codes a 256-symbol
alphabet. A decoder without the option rejects such a table (:data:`ERR_TABLE`).

Decoding is table driven: with the next ``L`` stream bits left-aligned in a window ``W`` (missing bits
read as 0), the code length is the smallest ``l`` with ``W < limit[l]``, where
``limit[l] = (first[l] + count[l]) << (L - l)``, and the symbol index is
``((W >> (L - l)) + offset[l]) mod 512`` with ``offset[l] = (base[l] - first[l]) mod 512``
(``base[l]``: number of codes shorter than ``l``). ``W >= limit[L]`` is an invalid code.
:func:`decode_tables` computes both lists exactly as the hardware table loader does.

Table serialization (the ``i_table`` stream, 16-bit words, first word marked ``first``)::

    word 0            TABLE_MARK << 13 | maxlen << 8 | (nsyms - 1)
    words 1..maxlen   count[l] for l = 1..maxlen (0..256)
    next nsyms words  the symbols in canonical order (0..255)
    last word         CRC-16 such that the CRC over all words of the table is 0

Block stream (the ``i_data`` stream: beats of ``N`` 16-bit words, word ``k`` of a beat belongs to lane
``k``; the first beat of a block is marked ``first``). A block is a header followed by ``M`` payload
beats. Lane ``k`` of a block holds ``n`` symbols: symbols ``k, k+N, k+2N, ...`` of the block, so the
decoder's output beat ``t`` (one symbol per lane) is block symbols ``t*N .. t*N+N-1`` in order. The
lanes are word-interleaved (lane ``k``'s ``j``-th word is word ``k`` of payload beat ``j``), so a
lane's offset is implicit and each lane's region is exactly ``M`` words; ``M`` is the longest lane's
word count and shorter lanes are zero-padded (the encoder's cost; measured by the bench).

Header words (in this order, then cut into beats of ``N`` words)::

    N words       bitlen[k] & 0xFFFF            lane bit lengths (20 bits) ...
    N words       bitlen[k] >> 16               ... high part (0..15)
    N words       crc[k]                        CRC-16 of lane k's M payload words
    flags, n, M   common fields, then zero words up to a whole beat minus one word, then
    hcrc          CRC-16 such that the CRC over all header words is 0 (hcrc is the last word)

``flags = HEADER_MARK << 12 | ebits << 8 | r << 4 | cont << 3 | parity << 2 | mode``: ``mode`` is one of
:data:`MODE_INT` (value = ``symbol << r | raw``: coded high bits, ``r`` raw low bits),
:data:`MODE_EXP` (coded exponent + raw sign/mantissa: the ``r`` raw bits are ``sign, mantissa[r-2:0]``
and value = ``sign << (ebits + r - 1) | symbol << (r - 1) | mantissa``, e.g. BF16 with ``ebits=8``,
``r=8``; E4M3 with ``ebits=4, r=4``), :data:`MODE_RAW` (bypass: no code, value = the ``r`` raw bits).
Each symbol's ``r`` raw bits follow its code in the lane bit stream. A decoder is built for one raw
width R (its ``raw_bits``): a block's ``r`` must be 0 or R (EXP and RAW blocks: R), so that the raw
field shifts the bit buffer by a constant, not through a barrel shifter in the one-cycle decode loop
(BF16: R = 8; FP8 E4M3: R = 4; E5M2: R = 3; int8 bypass: R = 8). ``parity`` selects the table: a
lane keeps its current table if ``parity`` equals the parity of the table's number (tables are
numbered 0, 1, 2, ... in load order), else it moves on to the next table; a lane without a table
moves to table 0. RAW blocks neither use nor change the table state.

Chained blocks (``cont``, :data:`FLAG_CONT`): a block with ``cont = 1`` is continued by the next
block; together they form one *unit* of values (a consumer such as the GEMM engine's weight tile
buffer sees one unit as it would see one block). A decoder built without chaining (the default)
rejects such a header (:data:`ERR_HEADER`). Chaining exists for lane drift: lane ``k``'s words
arrive round robin with every other lane's, but its values leave in lockstep with theirs, so a
decoder holds the difference between the lanes' word positions in its word FIFOs. For block
symbol ``t`` let ``w_k(t) = ceil(b_k(t) / 16)``, ``b_k(t)`` the bits lane ``k`` uses for its
symbols up to ``t``; the block's *drift* is the largest ``max_k w_k(t) - min_k w_k(t)`` over
``t`` (:func:`lane_drift`; padding counts: a short lane's padding words wait in its FIFO too).
A block whose drift exceeds what the decoder's FIFOs hold stops the decoder for good, so an
encoder for a decoder with ``F``-word FIFOs cuts its units into blocks of drift at most
:func:`max_drift` ``(F)`` words (``sim.huffman.golden.chain_blocks``).

Errors (bit masks of the hardware's sticky ``errors`` register; the golden model reports the same):

* :data:`ERR_INVALID` a lane window matches no codeword;
* :data:`ERR_TRUNC` a code (+ raw bits) runs past the lane's declared bit length, or the input
  framing ends a block early (a ``first`` beat in the middle of a block's payload: the missing payload
  words are replaced by zeros and the block is flagged);
* :data:`ERR_MISMATCH` all ``n`` symbols decoded but the lane's declared bit length is not used up;
* :data:`ERR_OVERRUN` a lane's declared bit length does not fit its region: ``bitlen > 16 M``
  (the lane is skipped). A lane's own words are the first ``ceil(bitlen / 16)`` of its region; the
  rest is padding that the decoder discards (it reads zeros past its own words);
* :data:`ERR_HEADER` header CRC, marker or field check failed, or the header was cut short by a
  ``first`` beat: the block is dropped (no output) and the decoder skips to the next ``first`` beat;
  also raised by beats outside any block (a lost ``first`` mark), which are dropped;
* :data:`ERR_TABLE` a loaded table is not a valid prefix code (Kraft sum > 1, counts not summing to
  nsyms, maxlen outside 1..L, bad CRC or cut short); blocks that use it are skipped;
* :data:`ERR_CRC` a lane's payload CRC does not match (checked for every lane that is not skipped).

A lane that hits an error outputs 0 for the rest of its block (the symbol that failed included) and
discards the rest of its region; skipped lanes output ``n`` zeros. So every block with a valid header
yields exactly ``n`` output beats; its last beat carries ``err`` = any error in this block.
"""

from ..lib import crc as crc_spec

__all__ = [
    "MIN_MAX_LEN", "MAX_MAX_LEN", "MAX_SYMBOLS", "ESCAPE", "ESCAPE_BITS", "WORD", "TABLE_MARK", "HEADER_MARK",
    "MODE_INT", "MODE_EXP", "MODE_RAW", "MODES", "FLAG_CONT", "max_drift", "lane_drift",
    "ERR_INVALID", "ERR_TRUNC", "ERR_MISMATCH", "ERR_OVERRUN", "ERR_HEADER", "ERR_TABLE", "ERR_CRC",
    "ERROR_NAMES", "crc16", "crc16_update",
    "check_max_len", "canonical_codes", "table_from_lengths", "validate_table", "decode_tables",
    "serialize_table", "parse_table", "check_table_words", "header_words", "parse_header", "header_beats",
    "compose_value", "value_width",
]

MIN_MAX_LEN = 8
MAX_MAX_LEN = 16
MAX_SYMBOLS = 256
ESCAPE = 256                  # table word of the escape pseudo-symbol
ESCAPE_BITS = 8               # raw bits after an escape code: the symbol
WORD = 16                     # stream word width (bits)
TABLE_MARK = 0b101            # top 3 bits of a table's first word
HEADER_MARK = 0xA             # top 4 bits of a block's flags word
CRC_POLY = crc_spec.CRC16_POLY   # CRC-16/CCITT, MSB first, init 0xFFFF, no final XOR (hw.lib.crc)
CRC_INIT = crc_spec.CRC16_INIT

MODE_INT = 0
MODE_EXP = 1
MODE_RAW = 2
MODES = (MODE_INT, MODE_EXP, MODE_RAW)

FLAG_CONT = 1 << 3            # flags bit: the next block continues this one's unit
FIFO_DEPTH = 64               # a decoder's lane FIFO words by default (HuffmanDecoder(fifo_depth=))

ERR_INVALID = 1 << 0
ERR_TRUNC = 1 << 1
ERR_MISMATCH = 1 << 2
ERR_OVERRUN = 1 << 3
ERR_HEADER = 1 << 4
ERR_TABLE = 1 << 5
ERR_CRC = 1 << 6
ERROR_NAMES = {ERR_INVALID: "invalid_code", ERR_TRUNC: "truncated", ERR_MISMATCH: "count_mismatch",
               ERR_OVERRUN: "lane_overrun", ERR_HEADER: "bad_header", ERR_TABLE: "bad_table",
               ERR_CRC: "crc"}


def crc16_update(crc, word):
    """CRC-16/CCITT register after shifting in one 16-bit ``word``, MSB first."""
    return crc_spec.crc16_update(crc, word, WORD)


def crc16(words, crc=CRC_INIT):
    """CRC-16 of a word sequence. ``crc16(words + [crc16(words)]) == 0`` (no final XOR)."""
    for w in words:
        crc = crc16_update(crc, w)
    return crc


def check_max_len(max_len):
    """Return ``max_len`` if it is a supported maximum code length, else raise ``ValueError``."""
    if (not isinstance(max_len, int) or isinstance(max_len, bool)
            or not MIN_MAX_LEN <= max_len <= MAX_MAX_LEN):
        raise ValueError(f"max_len must be an integer from {MIN_MAX_LEN} to {MAX_MAX_LEN}, not {max_len!r}")
    return max_len


def validate_table(counts, symbols, max_len, escape=False):
    """Check a serialized table ``(counts, symbols)``; raise ``ValueError`` if it is not a valid code.

    ``counts[l-1]`` is the number of codes of length ``l`` (``len(counts)`` is the table's maxlen,
    1..``max_len``); ``symbols`` are distinct 8-bit values in canonical order (with ``escape``, one of
    them may be :data:`ESCAPE`).
    """
    check_max_len(max_len)
    if not 1 <= len(counts) <= max_len:
        raise ValueError(f"table maxlen must be from 1 to {max_len}, not {len(counts)}")
    if any(not isinstance(c, int) or c < 0 for c in counts):
        raise ValueError(f"table counts must be non-negative integers, not {counts!r}")
    if not 1 <= len(symbols) <= MAX_SYMBOLS:
        raise ValueError(f"a table must have 1 to {MAX_SYMBOLS} symbols, not {len(symbols)}")
    if sum(counts) != len(symbols):
        raise ValueError(f"table counts sum to {sum(counts)} but the table lists {len(symbols)} symbols")
    top = ESCAPE if escape else MAX_SYMBOLS - 1
    if any(not isinstance(s, int) or not 0 <= s <= top for s in symbols):
        raise ValueError(f"table symbols must be integers from 0 to {top}")
    if len(set(symbols)) != len(symbols):
        raise ValueError("table symbols must be distinct")
    if escape and not _escape_placed(counts, symbols):
        raise ValueError("the escape must be the last symbol of its length")
    code = 0
    for length, c in enumerate(counts, 1):
        if code + c > 1 << length:
            raise ValueError(f"table is not a prefix code: Kraft sum exceeds 1 at length {length}")
        code = (code + c) << 1


def canonical_codes(counts, symbols):
    """``{symbol: (code, length)}`` of a valid table (see :func:`validate_table`)."""
    codes = {}
    code = 0
    i = 0
    for length, c in enumerate(counts, 1):
        for _ in range(c):
            codes[symbols[i]] = (code, length)
            code += 1
            i += 1
        code <<= 1
    return codes


def table_from_lengths(lengths, max_len, escape=False):
    """Table ``(counts, symbols)`` of the canonical code with these lengths.

    ``lengths`` maps symbol -> code length (only symbols that get a code). Symbols of equal length are
    put in increasing symbol order; trailing zero counts are dropped (maxlen = longest code).
    """
    check_max_len(max_len)
    if not lengths:
        raise ValueError("a table needs at least one symbol")
    if any(not 1 <= v <= max_len for v in lengths.values()):
        raise ValueError(f"code lengths must be from 1 to {max_len}")
    maxlen = max(lengths.values())
    counts = [0] * maxlen
    for v in lengths.values():
        counts[v - 1] += 1
    symbols = sorted(lengths, key=lambda s: (lengths[s], s))
    validate_table(counts, symbols, max_len, escape)
    return counts, symbols


def decode_tables(counts, max_len):
    """``(limit, offset)`` lists indexed by length 1..max_len (index 0 unused), as the RTL loads them.

    The loader walks every length up to ``max_len`` (counts past the table's maxlen are 0), so
    ``limit`` is non-decreasing and ``limit[max_len]`` is the end of the code space.
    """
    limit = [0] * (max_len + 1)
    offset = [0] * (max_len + 1)
    code = base = 0
    for length in range(1, max_len + 1):
        c = counts[length - 1] if length <= len(counts) else 0
        limit[length] = (code + c) << (max_len - length)
        offset[length] = (base - code) % 512
        base += c
        code = (code + c) << 1
    return limit, offset


def serialize_table(counts, symbols, max_len=MAX_MAX_LEN, escape=False):
    """The ``i_table`` word list of a valid table (raises ``ValueError`` on an invalid one)."""
    validate_table(counts, symbols, max_len, escape)
    words = [TABLE_MARK << 13 | len(counts) << 8 | (len(symbols) - 1)] + list(counts) + list(symbols)
    return words + [crc16(words)]


def parse_table(words, max_len, escape=False):
    """Inverse of :func:`serialize_table`; raises ``ValueError`` on any defect."""
    check_max_len(max_len)
    if not words or words[0] >> 13 != TABLE_MARK:
        raise ValueError("table does not start with the table marker")
    maxlen = (words[0] >> 8) & 0x1F
    nsyms = (words[0] & 0xFF) + 1
    if len(words) != 2 + maxlen + nsyms:
        raise ValueError(f"table has {len(words)} words, its header says {2 + maxlen + nsyms}")
    if crc16(words) != 0:
        raise ValueError("table CRC mismatch")
    counts = list(words[1:1 + maxlen])
    symbols = list(words[1 + maxlen:1 + maxlen + nsyms])
    validate_table(counts, symbols, max_len, escape)
    return counts, symbols


def check_table_words(words, max_len, escape=False):
    """``(counts, symbols)`` if the hardware table loader accepts ``words``, else ``None``.

    These are exactly the loader's checks: marker, maxlen 1..``max_len``, enough words, symbol words <
    256 (with ``escape``: <= 256, a 256 at most once and last of its length), no Kraft overflow at any
    length, counts summing to nsyms, CRC 0. (Unlike :func:`validate_table` it does not reject repeated
    symbols: the hardware has no room to look for them, and a repeated symbol still decodes
    deterministically.) Words past the table are ignored.
    """
    if not words or words[0] >> 13 != TABLE_MARK:
        return None
    maxlen = (words[0] >> 8) & 0x1F
    nsyms = (words[0] & 0xFF) + 1
    if not 1 <= maxlen <= max_len or len(words) < 2 + maxlen + nsyms:
        return None
    words = words[:2 + maxlen + nsyms]
    counts = words[1:1 + maxlen]
    symbols = words[1 + maxlen:1 + maxlen + nsyms]
    code = 0
    for length, c in enumerate(counts, 1):
        if code + c > 1 << length:
            return None
        code = (code + c) << 1
    if sum(counts) != nsyms or any(s > (ESCAPE if escape else 255) for s in symbols) or crc16(words) != 0:
        return None
    if escape and not _escape_placed(counts, symbols):
        return None
    return list(counts), list(symbols)


def _escape_placed(counts, symbols):
    """The table lists :data:`ESCAPE` at most once, and only as the last symbol of its length (so a
    decoder knows the escape code from the lengths alone: the last code of that length)."""
    where = [i for i, s in enumerate(symbols) if s == ESCAPE]
    if not where:
        return True
    ends = set()
    end = 0
    for c in counts:
        end += c
        if c:
            ends.add(end)
    return len(where) == 1 and where[0] + 1 in ends


def value_width(raw_bits):
    """Output value width of a decoder with ``raw_bits`` raw bits per symbol: 8 + raw_bits."""
    return 8 + raw_bits


def compose_value(mode, symbol, raw, r, ebits):
    """The output value of one symbol: see the module docstring."""
    if mode == MODE_RAW:
        return raw
    if mode == MODE_INT:
        return symbol << r | raw
    sign = raw >> (r - 1)
    man = raw & ((1 << (r - 1)) - 1)
    return sign << (ebits + r - 1) | symbol << (r - 1) | man


def _common_words(n_lanes):
    """Number of header words after the per-lane fields: flags, n, M, padding, hcrc."""
    beats = -(-4 // n_lanes)
    return beats * n_lanes


def header_beats(n_lanes):
    """Number of beats of a block header with ``n_lanes`` lanes."""
    return 3 + _common_words(n_lanes) // n_lanes


def max_drift(fifo_depth):
    """The largest block drift (words, see *Chained blocks*) a decoder with ``fifo_depth``-word lane
    FIFOs takes: half the FIFO. The other half covers what the drift does not count: the long
    lane's decode window (up to ``16 + 8 + 8`` bits ahead of its position), the words in flight
    between the parser and a lane, and the values a lane may run ahead of the others before the
    output join. The bound is conservative: the drift counts a short lane's padding, which a lane
    discards once its own words are in. Measured with 8-word FIFOs and skewed lanes (comparator
    and table lanes, one and two contexts): blocks of drift up to 19 words decoded, blocks of 26
    and more stopped the decoder (``tests/test_huffman_chain.py`` shows the 26)."""
    return fifo_depth // 2


def lane_drift(lane_bits):
    """Drift in words of one block (see *Chained blocks*): ``lane_bits[k]`` lists lane ``k``'s
    bits per symbol (all lanes the same length)."""
    totals = [0] * len(lane_bits)
    worst = 0
    for step in zip(*lane_bits, strict=True):
        totals = [b + s for b, s in zip(totals, step, strict=True)]
        words = [-(-b // WORD) for b in totals]
        worst = max(worst, max(words) - min(words))
    return worst


def header_words(*, mode, r, ebits, parity, n, words_per_lane, bitlens, crcs, cont=False):
    """The header word list of one block (see the module docstring); checks field ranges.
    ``cont``: the next block continues this one's unit (:data:`FLAG_CONT`)."""
    n_lanes = len(bitlens)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not 0 <= r <= 15 or not 0 <= ebits <= 15 or parity not in (0, 1):
        raise ValueError("r and ebits must be 0..15 and parity 0 or 1")
    if not 1 <= n <= 0xFFFF or not 0 <= words_per_lane <= 0xFFFF:
        raise ValueError("n must be 1..65535 and words_per_lane 0..65535")
    if any(not 0 <= b < 1 << 20 for b in bitlens) or len(crcs) != n_lanes:
        raise ValueError("bit lengths must be 0..2**20-1, one CRC per lane")
    flags = HEADER_MARK << 12 | ebits << 8 | r << 4 | (FLAG_CONT if cont else 0) | parity << 2 | mode
    words = [b & 0xFFFF for b in bitlens] + [b >> 16 for b in bitlens] + list(crcs)
    common = [flags, n, words_per_lane]
    common += [0] * (_common_words(n_lanes) - 1 - len(common))
    words += common
    return words + [crc16(words)]


def parse_header(words, n_lanes, raw_bits, chain=False):
    """Fields of a header word list, or ``None`` if the decoder rejects it (``ERR_HEADER``).

    ``raw_bits`` is the decoder's R: a block's ``r`` must be 0 or R. ``chain``: the decoder takes
    chained blocks (else a header with :data:`FLAG_CONT` is rejected). Returns a dict with mode, r,
    ebits, parity, cont, n, words_per_lane, bitlens, crcs.
    """
    if len(words) != header_beats(n_lanes) * n_lanes or crc16(words) != 0:
        return None
    k = n_lanes
    flags, n, m = words[3 * k:3 * k + 3]
    mode, parity = flags & 3, (flags >> 2) & 1
    r, ebits = (flags >> 4) & 0xF, (flags >> 8) & 0xF
    if (flags >> 12 != HEADER_MARK or (flags & FLAG_CONT and not chain) or mode not in MODES
            or r not in (0, raw_bits) or n == 0):
        return None
    if mode == MODE_RAW and r == 0:
        return None
    if mode == MODE_EXP and (r == 0 or ebits == 0 or ebits > 8):
        return None
    if any(w > 15 for w in words[k:2 * k]):
        return None
    bitlens = [words[i] | words[k + i] << 16 for i in range(k)]
    return {"mode": mode, "r": r, "ebits": ebits, "parity": parity, "cont": bool(flags & FLAG_CONT),
            "n": n, "words_per_lane": m,
            "bitlens": bitlens, "crcs": list(words[2 * k:3 * k])}
