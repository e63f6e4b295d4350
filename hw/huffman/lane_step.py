"""The decode step of a Huffman lane, written once for the one-cycle lane
(:class:`~hw.huffman.lane.LaneDecoder`) and the two-context lane
(:class:`~hw.huffman.lane_cslow.CSlowLaneDecoder`).

The functions build one part of the algorithm each: the code match against the code ends, the
symbol's bit count, the code's and raw field's bits, the word and symbol accounting, the error
flags, the descriptor load, the table choice and the one-cycle lanes' block control. Those that add
statements to a module read a lane's block registers from a namespace ``cur`` and write them through
``nxt``: the same registers in the one-cycle lane; in the C-slow lane ``cur`` holds the current
context's registers and ``nxt`` the other halves of their rotating pairs. Each function adds its
statements in one fixed order (the netlist keeps it).
"""

from amaranth.hdl import Const, Mux, Signal

from ..params import check_bool, check_int
from . import spec
from .block_parser import descriptor_layout
from .crc import crc16_next

__all__ = [
    "buffer_bits", "lane_parameters", "block_registers", "tree", "at_least", "onehot_mux", "match_code",
    "holds_symbol", "all_bits_in", "decode_turn",
    "bit_counts", "code_bits", "raw_field", "escaped_symbol", "word_room", "account_word",
    "count_symbol", "flag_errors", "load_stage1", "hold_last", "load_descriptor", "reject_table",
    "take_table", "start_block", "block_control", "clear_error_pulses",
]


def buffer_bits(max_len, raw_bits, escape=False):
    """Bit-buffer width ``L + R + 40`` (``L + 8 + R + 40`` with escape codes: an escaped symbol needs
    :data:`~hw.huffman.spec.ESCAPE_BITS` more bits). A symbol needs ``L + r`` bits in the buffer; a
    word is taken when it (and a word still staged) fits even if the symbol decoded in the same cycle consumes
    nothing, and a taken word reaches the buffer a cycle later. That costs slack: with 40 bits a
    lane whose codes plus raw bits average at most 16 bits (the input rate) does not run dry
    (checked at the length limit by the tests, measured by the bench); ``L + R + 32`` already
    leaves bubbles with 8- and 12-bit codes at L = 12 (1273 cycles for 1200 symbols)."""
    return max_len + raw_bits + (spec.ESCAPE_BITS if escape else 0) + 40


def lane_parameters(max_len, raw_bits, escape):
    """A lane's checked parameters ``(L, R, escape, E, B)``: ``E`` the bits an escape code adds to a
    symbol (0 without escape codes), ``B`` the bit buffer's width (:func:`buffer_bits`).

    Raises ``ValueError`` if ``max_len`` is outside 8..16 or ``raw_bits`` outside 0..8, ``TypeError``
    if ``escape`` is not a bool."""
    L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
    R = check_int("raw_bits", raw_bits, 0, 8)
    escape = check_bool("escape", escape)
    return L, R, escape, spec.ESCAPE_BITS if escape else 0, buffer_bits(L, R, escape)


def block_registers(buffer_bits):
    """A lane's per-block registers, ``{name: shape}``: the descriptor, the symbol / word / own-word
    counts (and registered "count != 0" flags, kept off the decode loop), the bits left, the CRC,
    the block's error and mode flags, its table, the bit buffer with its fill count and the staged
    word."""
    return {
        "d": descriptor_layout,
        "n_left": 16,
        "words_left": 16,              # words of the region still to take
        "own_left": 16,                # of which hold this lane's bits (the rest is padding)
        "nleft_nz": 1,
        "words_nz": 1,
        "own_nz": 1,
        "bits_left": 21,
        "crc": 16,
        "check_crc": 1,
        "blk_err": 1,
        "zeroing": 1,                  # error / skipped lane: emit zeros, discard words
        "is_first": 1,
        "bank": 1,
        "has_tab": 1,
        "rsel": 1,                     # this block has R raw bits per symbol (r is 0 or R)
        "raw_mode": 1,
        "late": 1,                     # a symbol of this block ran past the lane's bit length
        "buf": buffer_bits,            # left-aligned: MSB = next stream bit
        "fill": range(buffer_bits + 1),
        "stage": spec.WORD,            # a taken word, placed behind the valid bits a cycle later
        "staged": 1,
    }


def tree(terms, op):
    """``terms`` combined pairwise into a balanced tree (a chain would be as deep as it is long:
    synthesis does not rebalance it)."""
    terms = list(terms)
    while len(terms) > 1:
        terms = [op(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def at_least(value, k):
    """``value >= k`` for a constant ``k``; for ``k == 0`` the constant 1 (an unsigned compare
    against 0 is always true, which Verilator's lint rightly calls a constant comparison)."""
    return value >= k if k > 0 else Const(1, 1)


def onehot_mux(onehot, values):
    """``values[i]`` for the set bit ``i`` of ``onehot`` (0 if none), as a balanced AND-OR tree."""
    return tree([Mux(onehot[i], v, 0) for i, v in enumerate(values)], lambda a, b: a | b)


def match_code(m, win, lim, raw_mode, max_len, esc=None):
    """The code length of the window ``win`` (the buffer's top L bits, MSB = next stream bit).

    Code end ``lim[l]`` (``l + 1`` bits, unshifted) is compared with the window's top ``l`` bits, all
    lengths in parallel; the thermometer of results gives the length one-hot. In raw mode (no code)
    the one-hot is length 0. Returns ``(onehot, invalid)``: ``invalid``, no code end is above the
    window. ``esc = (hit, on, mask, code)``: also drive ``hit``, "the window starts with the escape
    code" (``win & mask == code``, when the bank has one: ``on``).
    """
    L = max_len
    lt = [Const(0, 1)] + [Signal(name=f"lt{ln}") for ln in range(1, L + 1)]
    for ln in range(1, L + 1):
        m.d.comb += lt[ln].eq(win[L - ln:] < lim[ln])     # == (win < lim << (L - ln))
    onehot = Signal(L + 1, name="onehot")
    m.d.comb += onehot[0].eq(raw_mode)
    for ln in range(1, L + 1):
        m.d.comb += onehot[ln].eq(~raw_mode & lt[ln] & ~lt[ln - 1])
    invalid = ~raw_mode & ~lt[L]
    if esc is not None:
        hit, on, mask, code = esc
        m.d.comb += hit.eq(~raw_mode & on & ((win & mask) == code))
    return onehot, invalid


def holds_symbol(fill, rsel, bits, raw_bits):
    """``fill`` valid bits hold ``bits`` (``+ R`` when the block has raw bits, ``rsel``)."""
    return Mux(rsel, fill >= bits + raw_bits, fill >= bits)


def all_bits_in(cur):
    """The lane's bits are all in the buffer (no own word to come, none staged)."""
    return ~cur.own_nz & ~cur.staged


def decode_turn(cur, running, space):
    """``(can, emit_zero)``: the lane may decode a symbol (running, not zeroing, symbols left, the
    output has room); it emits a zero value instead (zeroing)."""
    can = running & ~cur.zeroing & cur.nleft_nz & space
    emit_zero = running & cur.zeroing & cur.nleft_nz & space
    return can, emit_zero


def bit_counts(f, max_len, raw_bits, esc_bits, rsel, esc):
    """``[f(k) for l in 0..L]``, ``k`` the bit count of a symbol of code length ``l``: ``l``, ``+ R``
    when the block has raw bits (``rsel``), ``+ ESCAPE_BITS`` for the escape (``esc``; only with
    ``esc_bits``)."""
    R, E = raw_bits, esc_bits

    def one(ln):
        v = Mux(rsel, f(ln + R), f(ln))
        return Mux(esc, Mux(rsel, f(ln + E + R), f(ln + E)), v) if E else v
    return [one(ln) for ln in range(max_len + 1)]


def code_bits(onehot, win, max_len, esc_bits, raw_bits):
    """The code (the top ``l`` bits of the ``L + E + R``-bit window ``win``) for the one-hot length."""
    L = max_len
    return onehot_mux(onehot, [Const(0, L)] + [win[esc_bits + raw_bits:][L - ln:] for ln in range(1, L + 1)])


def raw_field(onehot, win, max_len, esc_bits, raw_bits, esc):
    """The R raw bits that follow the code (and, for the escape, ``esc``, the symbol's bits)."""
    L, E, R = max_len, esc_bits, raw_bits
    win_r = Mux(esc, win, win >> E) if E else win
    return onehot_mux(onehot, [(win_r << ln)[L:L + R] for ln in range(L + 1)])


def escaped_symbol(onehot, win, max_len, esc_bits, raw_bits):
    """The ``ESCAPE_BITS`` symbol bits that follow an escape code of the one-hot length."""
    L, E, R = max_len, esc_bits, raw_bits
    return onehot_mux(onehot, [(win << ln)[L + R:L + R + E] for ln in range(L + 1)])


def word_room(staged, fill, buffer_bits):
    """A word taken now fits the buffer even if the symbol of this cycle consumes nothing (the
    staged word, if any, counted)."""
    return Mux(staged, fill <= buffer_bits - 2 * spec.WORD, fill <= buffer_bits - spec.WORD)


def account_word(m, cur, nxt, pop, word):
    """A taken word (``pop``; ``word``: 16 bits and the stand-in flag) goes through the CRC and the
    word counts; a stand-in for a word lost to a cut-short block flags the block."""
    W = spec.WORD
    with m.If(pop):
        m.d.sync += [nxt.crc.eq(crc16_next(cur.crc, [word[:W]])), nxt.words_left.eq(cur.words_left - 1),
                     nxt.words_nz.eq(cur.words_left != 1)]
        with m.If(word[W]):
            m.d.sync += nxt.blk_err.eq(1)
        with m.If(cur.own_nz):
            m.d.sync += [nxt.own_left.eq(cur.own_left - 1), nxt.own_nz.eq(cur.own_left != 1)]


def count_symbol(m, cur, nxt, out):
    """A value goes out (``out``): one symbol fewer to come."""
    with m.If(out):
        m.d.sync += [nxt.n_left.eq(cur.n_left - 1), nxt.nleft_nz.eq(cur.n_left != 1), nxt.is_first.eq(0)]


def flag_errors(m, cur, nxt, lane, *, fire, trunc, mismatch, invalid, cons):
    """The symbol's checks: a fired symbol uses ``cons`` bits; a truncated one (``trunc``) zeroes the
    rest of the block (``late``: later symbols raise nothing); a count mismatch and an invalid code
    flag the block. Pulses ``lane.o_err_*`` (an invalid code only if not also truncated)."""
    with m.If(fire):
        m.d.sync += nxt.bits_left.eq(cur.bits_left - cons)
    with m.If(trunc):
        m.d.sync += [nxt.late.eq(1), nxt.zeroing.eq(1), nxt.blk_err.eq(1), lane.o_err_trunc.eq(1)]
    with m.If(mismatch):
        m.d.sync += [nxt.blk_err.eq(1), lane.o_err_mismatch.eq(1)]
    with m.If(invalid):
        m.d.sync += [nxt.zeroing.eq(1), nxt.blk_err.eq(1), lane.o_err_invalid.eq(~trunc)]


def clear_error_pulses(lane):
    """The error pulses' default: low (a check sets one for a cycle)."""
    return [lane.o_err_invalid.eq(0), lane.o_err_trunc.eq(0), lane.o_err_mismatch.eq(0),
            lane.o_err_crc.eq(0)]


def load_stage1(m, s1, cur, *, valid, win, onehot, raw, zero, dec, esc=None):
    """Stage 1's register loads for a decoded symbol: ``valid`` (the caller's valid-bit load),
    window, one-hot length, the block's mode, ``raw`` (the caller's raw-bits field load), exponent
    bits, bank, zero/decoded, first/last; then ``esc`` (the escape flag's load, with escape codes)."""
    m.d.sync += [
        valid, s1.win.eq(win), s1.onehot.eq(onehot),
        s1.mode.eq(cur.d.mode), raw, s1.ebits.eq(cur.d.ebits), s1.bank.eq(cur.bank),
        s1.zero.eq(zero), s1.dec.eq(dec), s1.first.eq(cur.is_first), s1.last.eq(cur.n_left == 1),
    ]
    if esc is not None:
        m.d.sync += esc


def hold_last(m, queue, o_sym, released, final_err, layout):
    """The output port from the output queue: the block's last value is held until ``released`` (the
    lane's words are all in and its CRC checked) and carries ``err`` = ``final_err``. Returns the
    queue's head."""
    head = layout(queue.r_data)
    out_hold = head.last & ~released
    m.d.comb += [
        o_sym.valid.eq(queue.r_rdy & ~out_hold),
        o_sym.payload.eq(head),
        o_sym.payload.err.eq(head.last & final_err),
        queue.r_en.eq(o_sym.ready & ~out_hold),
    ]
    return head


def load_descriptor(nxt, desc, *, nonzero, own, after_fill=(), after_staged=(), clear_buf=True):
    """The block registers' loads from a new descriptor ``desc``: ``nonzero`` = (n != 0, m != 0,
    own words != 0), ``own`` the lane's own word count; ``after_fill``, ``after_staged``: a lane's
    loads of its own registers, at those places; ``clear_buf``: also zero the bit buffer (the
    comparator lanes do, the table lane does not)."""
    return [
        nxt.d.eq(desc), nxt.n_left.eq(desc.n), nxt.words_left.eq(desc.m),
        nxt.nleft_nz.eq(nonzero[0]), nxt.words_nz.eq(nonzero[1]),
        nxt.own_left.eq(own), nxt.own_nz.eq(nonzero[2]), nxt.bits_left.eq(desc.bitlen),
        nxt.rsel.eq(desc.r != 0), nxt.raw_mode.eq(desc.mode == spec.MODE_RAW),
        nxt.crc.eq(spec.CRC_INIT), nxt.blk_err.eq(desc.skip), nxt.zeroing.eq(desc.skip),
        nxt.late.eq(0), nxt.check_crc.eq(~desc.skip), nxt.is_first.eq(1), nxt.fill.eq(0),
        *after_fill, nxt.staged.eq(0), *after_staged, *([nxt.buf.eq(0)] if clear_buf else []),
    ]


def reject_table(nxt):
    """A block on a rejected table: zeroed, flagged, its CRC not checked."""
    return [nxt.zeroing.eq(1), nxt.blk_err.eq(1), nxt.check_crc.eq(0)]


def take_table(nxt, tab, next_tab):
    """The lane moves to table ``next_tab`` (``tab``: its table-number register)."""
    return [tab.eq(next_tab), nxt.has_tab.eq(1), nxt.bank.eq(next_tab[0])]


def next_table_loaded(m, count, tab):
    """``(next_tab, loaded)``: the number of the table after ``tab`` and whether it is loaded, i.e.
    ``count`` (tables loaded so far, modulo 256) is past it by less than half the range."""
    next_tab = tab + 1
    loaded = Signal()
    diff = Signal(8)
    m.d.comb += [diff.eq(count - next_tab), loaded.eq((diff != 0) & ~diff[7])]
    return next_tab, loaded


def start_block(m, cur, nxt, desc, ok, tab, *, run, table):
    """The table choice for a new block ``desc``: a skipped or RAW block needs none, a block on the
    lane's table (same parity) keeps it (``run()`` adds the move to decoding); otherwise the lane
    waits for the next table (``table()``). ``ok``: per bank, the table passed its checks; ``tab``:
    the lane's table number."""
    with m.If(desc.skip | (desc.mode == spec.MODE_RAW)):
        run()
    with m.Elif(cur.has_tab & (desc.parity == tab[0])):
        # Keeping the table: a rejected one zeroes this block too, not only the first block after
        # its load.
        with m.If(~ok.bit_select(tab[0], 1)):
            m.d.sync += reject_table(nxt)
        run()
    with m.Else():
        table()


def block_control(m, lane, regs, *, load, next_tab, loaded, running, stage1_valid, final_err, released,
                  out_last):
    """The block control FSM of a one-cycle lane (comparator or table): ``IDLE`` takes a descriptor
    from ``lane.i_desc`` (``load(desc, own)`` adds the register loads, ``own`` being the lane's own
    word count) and chooses its table (:func:`start_block`); ``TABLE`` waits until ``loaded`` (the
    lane's next table ``next_tab`` is in) and takes it; ``LIMITS`` gives the new bank's limits and
    table address a cycle to be read; ``RUN`` decodes (``running``) until no symbol or word is left
    and stage 1 is empty, then checks the CRC into ``final_err`` and ``lane.o_err_crc`` and sets
    ``released``; ``FINISH`` waits for the block's last value to leave (``out_last``)."""
    def run():
        m.next = "RUN"

    def table():
        m.next = "TABLE"

    with m.FSM():
        with m.State("IDLE"):
            m.d.comb += lane.i_desc.ready.eq(1)
            with m.If(lane.i_desc.valid):
                desc = lane.i_desc.payload
                load(desc, (desc.bitlen + spec.WORD - 1) >> 4)
                start_block(m, regs, regs, desc, lane.i_ok, lane.o_tab, run=run, table=table)
        with m.State("TABLE"):
            with m.If(loaded):
                m.d.sync += take_table(regs, lane.o_tab, next_tab)
                with m.If(~lane.i_ok.bit_select(next_tab[0], 1)):
                    m.d.sync += reject_table(regs)
                m.next = "LIMITS"
        with m.State("LIMITS"):
            m.next = "RUN"
        with m.State("RUN"):
            m.d.comb += running.eq(1)
            with m.If(~regs.nleft_nz & ~regs.words_nz & ~stage1_valid):
                bad_crc = regs.check_crc & (regs.crc != regs.d.crc)
                m.d.sync += [final_err.eq(regs.blk_err | bad_crc), released.eq(1), lane.o_err_crc.eq(bad_crc)]
                m.next = "FINISH"
        with m.State("FINISH"):
            with m.If(out_last):
                m.next = "IDLE"
