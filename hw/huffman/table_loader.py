"""Run-time loading of canonical code tables into two banks (double buffering)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.logic import onehot_mux
from ..lib.sections import elaborate_sections
from ..params import check_bool, check_int
from . import spec
from .crc import crc16_next

__all__ = ["TableLoader", "table_word_layout"]

table_word_layout = data.StructLayout({"data": spec.WORD, "first": 1})


def table_bus(max_len, *, offset_port, escape=False):
    """The table the loader gives every lane, as ``{name: shape}``: the loader drives ``o_<name>``,
    a lane reads ``i_<name>`` (:func:`hw.huffman.lane.lane_members`) and the decoder connects them by
    name. ``offset_port``: include the offsets' memory write port (``off_*``, for lanes that keep the
    offsets in a block RAM). ``escape``: include the escape code per bank (``esc_on``: the table
    has one; ``esc_mask``/``esc_code``: its length as ones and its code, both left-aligned in L bits,
    so a window ``W`` starts with the escape code iff ``W & mask == code``)."""
    L = max_len
    bus = {
        "limit": data.ArrayLayout(data.ArrayLayout(L + 1, L + 1), 2),
        "offset": data.ArrayLayout(data.ArrayLayout(9, L + 1), 2),
        "count": 8,
        "ok": 2,
        "sym_en": 1,
        "sym_addr": 9,
        "sym_data": 8,
    }
    if offset_port:
        bus.update({"off_en": 1, "off_addr": 5, "off_data": 9})
    if escape:
        bus.update({"esc_on": 2, "esc_mask": data.ArrayLayout(L, 2), "esc_code": data.ArrayLayout(L, 2)})
    return bus


class TableLoader(wiring.Component):
    """Loads serialized tables (:func:`hw.huffman.spec.serialize_table`) from a stream.

    Table number ``t`` (counted from reset) goes to bank ``t % 2``. The loader only starts table ``t``
    when ``i_permit`` is high (the decoder raises it when no lane still uses table ``t - 2``), so the
    next layer's table loads while the current one decodes. While loading, it derives the decode
    registers ``limit`` and ``offset`` (:func:`hw.huffman.spec.decode_tables`) one length per cycle
    and writes the symbols through ``o_sym_*`` (to every lane's symbol memory, at
    ``bank << 8 | index``). A table takes ``1 + L + nsyms + 5`` cycles at full input rate: the CRC
    register is complete a cycle after the last word, the verdict (a register computed every cycle)
    a cycle later; a table (or a failed one) is counted a cycle after that, and the loader waits a
    cycle more before it looks at ``i_permit`` again, so the decoder can give ``i_permit`` as a plain register
    computed from ``o_count`` / ``o_two`` (no compare with the count on the input handshake).

    The control is a one-hot state machine (a flip-flop per state), so every next-state and
    "table finished" condition is a few registers and the input handshake.

    Checks are the ones of :func:`hw.huffman.spec.check_table_words`; a table failing any of them, or
    cut short by a ``first`` word, still counts as loaded (so no lane waits for it forever) but its
    bank is marked bad (``o_ok``) and ``o_err`` pulses. Words before a ``first`` word are dropped.

    With ``escape``, a symbol word may be :data:`~hw.huffman.spec.ESCAPE` (256), at most once and
    only as the last symbol of its length (as :func:`hw.huffman.spec.check_table_words` with
    ``escape``); the loader then gives the escape code per bank (``o_esc_*``, see :func:`table_bus`),
    set in the table's verdict cycle. The symbol memory gets 0 at the escape's index (never read as
    a symbol: the lane takes the symbol from the stream).

    Parameters
    ----------
    max_len : int
        L, 8 to 16.
    escape : bool
        Accept an escape code (default False: a symbol word 256 fails the table).

    Members
    -------
    i_table : In(stream.Signature(table_word_layout))
    i_permit : In(1)
        May start the next table (``o_count``); read in ``IDLE`` only, at least two cycles after
        ``o_count`` / ``o_two`` last changed.
    o_count : Out(8)
        Tables completed since reset, modulo 256 (the number of the next table).
    o_count_m1 : Out(8)
        ``o_count - 1`` modulo 256, a register of its own (moves with ``o_count``).
    o_two : Out(1)
        At least two tables completed (banks 0 and 1 both hold a table).
    o_ok : Out(2)
        Per bank: the table in it passed every check.
    o_limit, o_offset : Out(ArrayLayout) per bank and length
        ``o_limit[b][l]`` and ``o_offset[b][l]`` (9 bits) for ``l = 0..L`` (0 unused). The limit is
        stored unshifted, as the code end ``first[l] + count[l]`` (``l + 1`` bits; the field's upper
        bits are 0): :func:`hw.huffman.spec.decode_tables`' ``limit[l]`` is it shifted left by
        ``L - l``, so the lane compares only the window's top ``l`` bits with it.
    o_sym_en, o_sym_addr, o_sym_data : Out
        Symbol-memory write port (address ``bank << 8 | index``).
    o_off_en, o_off_addr, o_off_data : Out
        The same offsets as ``o_offset`` as a memory write port (address ``bank << 4 | l``), for
        lanes that keep them in a block RAM.
    o_err : Out(1)
        One-cycle pulse: a table failed its checks.

    Raises
    ------
    ValueError
        If ``max_len`` is outside 8..16.
    """

    #: (a subclass's option) COUNTS also writes ``offset[L + 1]`` (``o_off_*`` at ``bank << 4 | L + 1``,
    #: a cycle more per table): ``2 offset[L] - offset[L + 1]`` is then the symbol count
    _end_offset = False

    def __init__(self, max_len=16, escape=False):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        self._escape = check_bool("escape", escape)
        L = self._L
        super().__init__({
            "i_table": In(stream.Signature(table_word_layout)),
            "i_permit": In(1),
            **{f"o_{name}": Out(shape)
               for name, shape in table_bus(L, offset_port=True, escape=self._escape).items()},
            "o_count_m1": Out(8, init=0xFF),
            "o_two": Out(1),
            "o_err": Out(1),
        })

    def elaborate(self, platform):
        return elaborate_sections(Module(), self._registers, self._lengths, self._control, self._loads)

    def _registers(self, m, ns):
        """The loader's registers, the one-hot states, the count of finished tables."""
        L = self._L
        word = self.i_table.payload.data
        first = self.i_table.payload.first
        bank = self.o_count[0]

        maxlen = Signal(5)
        # registered per-length facts, so the input handshake and the Kraft check do not wait for
        # a compare and a variable shift: "this length takes a word", and 2**length
        need = Signal()
        space = Signal(L + 2)
        nsyms = Signal(9)
        left = Signal(9)               # symbol words still to come (nsyms - index): "last" from a register
        length = Signal(range(L + 2))
        code = Signal(L + 2)
        base = Signal(17)
        index = Signal(9)
        bad = Signal()
        crc = Signal(16)
        end_q = Signal(L + 2)          # last length's code end and 2**length, Kraft-checked a cycle later
        space_q = Signal(L + 2)
        chk = Signal()
        last = Signal()                # the next symbol word is the table's last
        crc_after = crc16_next(crc, [word])
        valid = self.i_table.valid     # each state spells out its own take (no mux of the readies)

        # One-hot states (a flip-flop each: every next-state and "finished" condition is a small
        # AND-OR of a few registers and the input handshake, not a decode of a binary state).
        names = ("IDLE", "COUNTS", "SYMS", "CRC", "CHECK", "VERDICT", "SETTLE", "SETTLE2")
        st = {n: Signal(name=f"st_{n.lower()}", init=(n == "IDLE")) for n in names}

        m.d.sync += self.o_err.eq(0)
        # A finished table is counted a cycle later, from registers (``fin``, ``fin_ok``): the count,
        # ``o_ok``, ``o_two`` and ``o_err`` are not behind the input handshake's conditions.
        fin = Signal()
        fin_ok = Signal()
        with m.If(fin):
            m.d.sync += [
                self.o_count.eq(self.o_count + 1),
                self.o_count_m1.eq(self.o_count),
                self.o_ok.bit_select(bank, 1).eq(fin_ok),
                self.o_err.eq(~fin_ok),
            ]
            with m.If(self.o_count[0]):
                m.d.sync += self.o_two.eq(1)
        ns.keep(locals(), "L word first bank maxlen need space nsyms left length code base index bad crc "
                          "end_q space_q chk last crc_after valid names st fin fin_ok")

    def _lengths(self, m, ns):
        """COUNTS' arithmetic: per length the code end and offset, written to the bank; the Kraft
        and count-word checks; the table's verdict register."""
        (L, bad, bank, base, chk, code, crc, end_q, index, nsyms, space_q, word) = ns.get(
            "L bad bank base chk code crc end_q index nsyms space_q word")
        # A length's limit and offset are written a cycle after the step that computes them (from
        # registers: the write enables are not behind the input handshake)
        wr = Signal()
        wr_len = Signal(range(L + 2))
        wr_end = Signal(L + 2)
        wr_off = Signal(9)
        # COUNTS: a step registers the length's count and 2**length (``cnt_q``, ``spc_q``); the code
        # and base arithmetic runs a cycle later from those registers (``stp_q``), not behind the
        # input handshake, and the limit/offset write and the Kraft check a cycle after that
        stp_q = Signal()
        cnt_q = Signal(spec.WORD)
        len_q = Signal(range(L + 2))
        spc_q = Signal(L + 2)
        end = code + cnt_q
        m.d.sync += [wr.eq(stp_q), chk.eq(stp_q), wr_len.eq(len_q), wr_end.eq(end), wr_off.eq(base - code),
                     end_q.eq(end), space_q.eq(spc_q)]
        with m.If(stp_q):
            m.d.sync += [base.eq(base + cnt_q), code.eq(end << 1)]
        m.d.comb += [self.o_off_en.eq(wr), self.o_off_addr.eq(Cat(wr_len[:4], bank)),
                     self.o_off_data.eq(wr_off)]
        limits = self._limit_words(m, wr, wr_end)
        for b in range(2):
            for ln in range(1, L + 1):
                with m.If(wr & (wr_len == ln) & (bank == b)):
                    m.d.sync += [self.o_limit[b][ln].eq(limits[ln]), self.o_offset[b][ln].eq(wr_off)]
        # A count word of 2**(L+1) or more exceeds the code space of every length (the format's
        # check rejects it) and would wrap the L+2-bit code arithmetic into a valid-looking Kraft sum:
        # it is flagged from its own high bits, registered along the step (``big_q``, ``big_chk``).
        # Below that bound ``code + count`` fits L+2 bits as long as every earlier length passed,
        # and the symbol total fits ``base`` (once a length failed, ``bad`` is already set).
        big_q = Signal()
        big_chk = Signal()
        m.d.sync += big_chk.eq(stp_q & big_q)
        # the Kraft verdict of a length is registered before it sets ``bad`` (the compare's carry
        # chain and ``bad``'s other conditions are not one path); the verdict below reads it too, so
        # a failure seen a cycle before CHECK still counts
        kraft_bad = Signal()
        m.d.sync += kraft_bad.eq((chk & (end_q > space_q)) | big_chk)
        with m.If(kraft_bad):
            m.d.sync += bad.eq(1)
        m.d.comb += [
            self.o_sym_addr.eq(Const(0, 9) | (bank << 8) | index[:8]),
            self.o_sym_data.eq(word[:8]),
        ]
        # the table's verdict, a register computed every cycle (read in VERDICT, a cycle after the
        # CRC word reached ``crc``)
        ok_q = Signal()
        m.d.sync += ok_q.eq(~bad & ~kraft_bad & (crc == 0) & (base == nsyms))
        ns.keep(locals(), "stp_q cnt_q len_q spc_q big_q ok_q")

    def _control(self, m, ns):
        """The one-hot state machine, the input's ready and the finished-table pulse."""
        (L, bank, fin, fin_ok, first, index, last, length, maxlen, names, need, ok_q, st, valid,
         word) = ns.get("L bank fin fin_ok first index last length maxlen names need ok_q st valid word")
        # IDLE: a table starts with a ``first`` word; anything else is dropped. The first word is
        # only taken once the bank it will overwrite is free.
        start = valid & first & self.i_permit
        head_ok = (word[13:16] == spec.TABLE_MARK) & (word[8:13] >= 1) & (word[8:13] <= L)
        # COUNTS: one length per cycle; lengths past the table's maxlen take no word (count 0), so
        # limit[] stays non-decreasing up to L. The Kraft check of a length (``end > space``) runs a
        # cycle later from registers (``chk``), off the input handshake.
        step = ~need | (valid & ~first)
        # (``_end_offset``: one step more, length L + 1 with no word: its offset is written too)
        counts_last = length == (L + 1 if self._end_offset else L)
        # SYMS / CRC: a word is taken unless it is a ``first`` one (which cuts the table short)
        take = valid & ~first
        cut = valid & first
        # a table fails early: bad head, or cut short by a ``first`` word (the new table waits in IDLE)
        fail = ((st["IDLE"] & start & ~head_ok) | (st["COUNTS"] & need & cut)
                | ((st["SYMS"] | st["CRC"]) & cut))
        verdict_ok = st["VERDICT"] & ok_q
        if self._escape:
            verdict_ok = verdict_ok & self._escape_check(m, st, word, take, bank, index)
        m.d.sync += [fin.eq(fail | st["VERDICT"]), fin_ok.eq(verdict_ok)]
        # "a word that is not ``first`` is taken" in COUNTS (with ``need``), SYMS or CRC: a register of
        # its own (``acc``, from the next state), so the input's ready and the CRC enable are one
        # AND-OR of registers and the head word's ``first``
        acc = Signal()
        nxt = {name: Signal(name=f"st_{name.lower()}_next") for name in names}
        need_next = Signal()
        m.d.comb += [
            self.i_table.ready.eq((~first & (acc | st["IDLE"])) | (first & st["IDLE"] & self.i_permit)),
            self.o_sym_en.eq(st["SYMS"] & take),
        ]
        m.d.comb += [
            nxt["IDLE"].eq((st["IDLE"] & ~start) | st["SETTLE2"]),
            nxt["COUNTS"].eq((st["IDLE"] & start & head_ok)
                             | (st["COUNTS"] & ~(need & cut) & ~(step & counts_last))),
            nxt["SYMS"].eq((st["COUNTS"] & step & counts_last)
                           | (st["SYMS"] & ~cut & ~(take & last))),
            nxt["CRC"].eq((st["SYMS"] & take & last) | (st["CRC"] & ~valid)),
            nxt["CHECK"].eq(st["CRC"] & take),      # the CRC register is complete in CHECK
            nxt["VERDICT"].eq(st["CHECK"]),         # ``ok_q`` (from it) is complete in VERDICT
            nxt["SETTLE"].eq(fail | st["VERDICT"]),  # the count moves at the end of this cycle
            nxt["SETTLE2"].eq(st["SETTLE"]),        # permit computed from the new count: read from IDLE
            # ``need`` after this cycle (see its assignments below)
            need_next.eq(Mux(st["IDLE"] & start, word[8:13] >= 1,
                             Mux(st["COUNTS"] & step, length < maxlen, need))),
        ]
        m.d.sync += [st[name].eq(nxt[name]) for name in names]
        m.d.sync += acc.eq((nxt["COUNTS"] & need_next) | nxt["SYMS"] | nxt["CRC"])
        ns.keep(locals(), "start step take acc need_next")

    def _loads(self, m, ns):
        """The registers' loads: the CRC, a table's start, a length step, a symbol word."""
        (L, acc, bad, bank, base, big_q, cnt_q, code, crc, crc_after, first, index, last, left, len_q, length,
         maxlen, need, need_next, nsyms, space, spc_q, st, start, step, stp_q, take, valid, word) = ns.get(
            "L acc bad bank base big_q cnt_q code crc crc_after first index last left len_q length maxlen "
            "need need_next nsyms space spc_q st start step stp_q take valid word")
        # the CRC register: one enable, two sources
        with m.If(valid & ((~first & acc) | (first & st["IDLE"] & self.i_permit))):
            m.d.sync += crc.eq(Mux(st["IDLE"], crc16_next(Const(spec.CRC_INIT, 16), [word]), crc_after))
        with m.If(st["IDLE"] & start):
            m.d.sync += [
                maxlen.eq(word[8:13]), nsyms.eq(word[:8] + 1), left.eq(word[:8] + 1),
                length.eq(1), code.eq(0), base.eq(0), index.eq(0), bad.eq(0),
                space.eq(2),
                self.o_ok.bit_select(bank, 1).eq(0),
            ]
        m.d.sync += need.eq(need_next)
        m.d.sync += stp_q.eq(st["COUNTS"] & step)   # (a step is never a cut: need & cut is no step)
        with m.If(st["COUNTS"] & step):
            m.d.sync += [
                cnt_q.eq(Mux(need, word, 0)),
                big_q.eq(need & word[L + 1:].any()),
                len_q.eq(length),
                spc_q.eq(space),
                length.eq(length + 1),              # (need: length + 1 <= maxlen)
                space.eq(space << 1),
                last.eq(nsyms == 1),
            ]
        with m.If(st["SYMS"] & take):
            m.d.sync += [index.eq(index + 1), left.eq(left - 1), last.eq(left == 2)]
            word_bad = word[8:].any()
            if self._escape:
                word_bad = word[9:].any() | (word[8] & word[:8].any())
            with m.If(word_bad):
                m.d.sync += bad.eq(1)

    def _limit_words(self, m, wr, wr_end):
        """What ``o_limit[b][l]`` holds, per length ``l`` (index 0 unused): the code end of the
        length (``wr_end``, written when ``wr``; lengths are written in order). A subclass may give
        its lanes something else."""
        return [wr_end[:ln + 1] for ln in range(self._L + 1)]

    def _escape_check(self, m, st, word, take, bank, index):
        """The escape code of the table being loaded: its index (a second escape fails the table),
        and per length whether the escape is that length's last symbol (a register computed every
        cycle from the bank's limits and offsets, complete in VERDICT: the limits are written while
        the symbols load). Returns "the escape, if any, is the last symbol of a length"; sets the
        bank's ``o_esc_*`` in VERDICT."""
        L = self._L
        esc_seen = Signal()
        esc_end = Signal(9)            # escape's index + 1
        second = Signal()
        with m.If(st["IDLE"]):
            m.d.sync += [esc_seen.eq(0), second.eq(0)]
        with m.If(st["SYMS"] & take & (word == spec.ESCAPE)):
            m.d.sync += [esc_seen.eq(1), esc_end.eq(index + 1), second.eq(esc_seen)]
        lim = [Mux(bank, self.o_limit[1][ln], self.o_limit[0][ln]) for ln in range(L + 1)]
        off = [Mux(bank, self.o_offset[1][ln], self.o_offset[0][ln]) for ln in range(L + 1)]
        match_q = Signal(L + 1)        # the escape is the last symbol of length l (l >= 1)
        for ln in range(1, L + 1):
            prev = (lim[ln - 1][:ln] << 1) if ln > 1 else Const(0, 2)
            nonempty = lim[ln][:ln + 1] != prev
            # base[l] + count[l] == offset[l] + limit[l] (mod 512): the index after length l's last
            m.d.sync += match_q[ln].eq(nonempty & ((off[ln] + lim[ln][:ln + 1])[:9] == esc_end))
        mask = Signal(L)
        code = Signal(L)
        m.d.comb += [
            # Off the critical path: an OR chain (``balanced=False``), the netlist as measured.
            mask.eq(onehot_mux(match_q, [Const(((1 << ln) - 1) << (L - ln), L) for ln in range(L + 1)],
                               balanced=False)),
            code.eq(onehot_mux(match_q, [Const(0, L)] + [((lim[ln][:ln + 1] - 1)[:ln] << (L - ln))[:L]
                                                         for ln in range(1, L + 1)], balanced=False)),
        ]
        with m.If(st["VERDICT"]):
            m.d.sync += [self.o_esc_on.bit_select(bank, 1).eq(esc_seen),
                         self.o_esc_mask[bank].eq(mask), self.o_esc_code[bank].eq(code)]
        return ~second & (~esc_seen | match_q.any())

