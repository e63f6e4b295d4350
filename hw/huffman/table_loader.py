"""Run-time loading of canonical code tables into two banks (double buffering)."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_int
from . import spec
from .crc import crc16_next

__all__ = ["TableLoader", "table_word_layout"]

table_word_layout = data.StructLayout({"data": spec.WORD, "first": 1})


class TableLoader(wiring.Component):
    """Loads serialized tables (:func:`hw.huffman.spec.serialize_table`) from a stream.

    Table number ``t`` (counted from reset) goes to bank ``t % 2``. The loader only starts table ``t``
    when ``i_permit`` is high (the decoder raises it when no lane still uses table ``t - 2``), so the
    next layer's table loads while the current one decodes. While loading, it derives the decode
    registers ``limit`` and ``offset`` (:func:`hw.huffman.spec.decode_tables`) one length per cycle
    and writes the symbols through ``o_sym_*`` (to every lane's symbol memory, at
    ``bank << 8 | index``). A table takes ``1 + L + nsyms + 4`` cycles at full input rate: after a
    table (or a failed one) is counted (a cycle after its last word) the loader waits a cycle before
    it looks at ``i_permit`` again, so the decoder can give ``i_permit`` as a plain register
    computed from ``o_count`` / ``o_two`` (no compare with the count on the input handshake).

    Checks are the ones of :func:`hw.huffman.spec.check_table_words`; a table failing any of them, or
    cut short by a ``first`` word, still counts as loaded (so no lane waits for it forever) but its
    bank is marked bad (``o_ok``) and ``o_err`` pulses. Words before a ``first`` word are dropped.

    Parameters
    ----------
    max_len : int
        L, 8 to 16.

    Members
    -------
    i_table : In(stream.Signature(table_word_layout))
    i_permit : In(1)
        May start the next table (``o_count``); read in ``IDLE`` only, at least two cycles after
        ``o_count`` / ``o_two`` last changed.
    o_count : Out(8)
        Tables completed since reset, modulo 256 (the number of the next table).
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
    o_err : Out(1)
        One-cycle pulse: a table failed its checks.

    Raises
    ------
    ValueError
        If ``max_len`` is outside 8..16.
    """

    def __init__(self, max_len=16):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        L = self._L
        super().__init__({
            "i_table": In(stream.Signature(table_word_layout)),
            "i_permit": In(1),
            "o_count": Out(8),
            "o_two": Out(1),
            "o_ok": Out(2),
            "o_limit": Out(data.ArrayLayout(data.ArrayLayout(L + 1, L + 1), 2)),
            "o_offset": Out(data.ArrayLayout(data.ArrayLayout(9, L + 1), 2)),
            "o_sym_en": Out(1),
            "o_sym_addr": Out(9),
            "o_sym_data": Out(8),
            "o_err": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
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

        def finish(ok):
            m.d.sync += [fin.eq(1), fin_ok.eq(ok)]

        m.d.sync += [self.o_err.eq(0), chk.eq(0)]
        # A finished table is counted a cycle later, from registers (``fin``, ``fin_ok``): the count,
        # ``o_ok``, ``o_two`` and ``o_err`` are not behind the input handshake's conditions.
        fin = Signal()
        fin_ok = Signal()
        m.d.sync += fin.eq(0)
        with m.If(fin):
            m.d.sync += [
                self.o_count.eq(self.o_count + 1),
                self.o_ok.bit_select(bank, 1).eq(fin_ok),
                self.o_err.eq(~fin_ok),
            ]
            with m.If(self.o_count[0]):
                m.d.sync += self.o_two.eq(1)

        # A length's limit and offset are written a cycle after the step that computes them (from
        # registers: the write enables are not behind the input handshake)
        wr = Signal()
        wr_len = Signal(range(L + 2))
        wr_end = Signal(L + 2)
        wr_off = Signal(9)
        m.d.sync += [wr.eq(0), wr_len.eq(length), wr_end.eq(code + Mux(need, word, 0)),
                     wr_off.eq(base - code)]
        for b in range(2):
            for ln in range(1, L + 1):
                with m.If(wr & (wr_len == ln) & (bank == b)):
                    m.d.sync += [self.o_limit[b][ln].eq(wr_end[:ln + 1]), self.o_offset[b][ln].eq(wr_off)]
        with m.If(chk & (end_q > space_q)):
            m.d.sync += bad.eq(1)
        m.d.comb += [
            self.o_sym_addr.eq(Const(0, 9) | (bank << 8) | index[:8]),
            self.o_sym_data.eq(word[:8]),
        ]

        with m.FSM():
            with m.State("IDLE"):
                # A table starts with a ``first`` word; anything else is dropped. The first word is
                # only taken once the bank it will overwrite is free.
                m.d.comb += self.i_table.ready.eq(~first | self.i_permit)
                with m.If(valid & first & self.i_permit):
                    m.d.sync += [
                        maxlen.eq(word[8:13]), nsyms.eq(word[:8] + 1), left.eq(word[:8] + 1),
                        length.eq(1), code.eq(0), base.eq(0), index.eq(0), bad.eq(0),
                        need.eq(word[8:13] >= 1), space.eq(2),
                        crc.eq(crc16_next(Const(spec.CRC_INIT, 16), [word])),
                        self.o_ok.bit_select(bank, 1).eq(0),
                    ]
                    head_ok = (word[13:16] == spec.TABLE_MARK) & (word[8:13] >= 1) & (word[8:13] <= L)
                    with m.If(head_ok):
                        m.next = "COUNTS"
                    with m.Else():
                        finish(0)
                        m.next = "SETTLE"
            with m.State("COUNTS"):
                # One length per cycle; lengths past the table's maxlen take no word (count 0), so
                # limit[] stays non-decreasing up to L. The Kraft check of a length (``end > space``)
                # runs a cycle later from registers (``chk``), off the input handshake.
                cnt = Signal(17)
                m.d.comb += [
                    self.i_table.ready.eq(need & ~first),
                    cnt.eq(need * word),
                ]
                step = Signal()
                m.d.comb += step.eq(~need | (valid & ~first))
                with m.If(need & self.i_table.valid & first):
                    finish(0)                                     # cut short: the new table waits in IDLE
                    m.next = "SETTLE"
                with m.Elif(step):
                    end = code + cnt
                    with m.If(need):                        # a word was taken
                        m.d.sync += crc.eq(crc_after)
                    m.d.sync += [end_q.eq(end), space_q.eq(space), chk.eq(1), wr.eq(1)]
                    m.d.sync += [
                        base.eq(base + cnt),
                        code.eq(end << 1),
                        length.eq(length + 1),
                        need.eq(length < maxlen),            # length + 1 <= maxlen
                        space.eq(space << 1),
                        last.eq(nsyms == 1),
                    ]
                    with m.If(length == L):
                        m.next = "SYMS"
            with m.State("SYMS"):
                m.d.comb += [
                    self.i_table.ready.eq(~first),
                    self.o_sym_en.eq(valid & ~first),
                ]
                with m.If(self.i_table.valid & first):
                    finish(0)
                    m.next = "SETTLE"
                with m.Elif(valid):
                    m.d.sync += [crc.eq(crc_after), index.eq(index + 1), left.eq(left - 1),
                                 last.eq(left == 2)]
                    with m.If(word[8:].any()):
                        m.d.sync += bad.eq(1)
                    with m.If(last):
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += self.i_table.ready.eq(~first)
                with m.If(self.i_table.valid & first):
                    finish(0)
                    m.next = "SETTLE"
                with m.Elif(valid):
                    m.d.sync += crc.eq(crc_after)
                    m.next = "CHECK"
            with m.State("CHECK"):
                # the CRC register and the symbol count are checked in a cycle of their own
                finish(~bad & (crc == 0) & (base == nsyms))
                m.next = "SETTLE"
            with m.State("SETTLE"):
                m.next = "SETTLE2"          # the count moves at the end of this cycle
            with m.State("SETTLE2"):
                m.next = "IDLE"             # permit computed from the new count: read from the next
        return m
