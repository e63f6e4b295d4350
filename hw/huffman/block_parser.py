"""Block framing: header check, per-lane descriptors, payload distribution, resynchronisation."""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_bool, check_choice, check_int
from . import spec
from .crc import crc16_next

__all__ = ["BlockParser", "DescriptorSlot", "beat_layout", "descriptor_layout", "HEADER_REGS", "HEADER_CRCS"]

#: ``BlockParser(header_regs=...)``: the header kept as a shift register of its beats or as its fields.
HEADER_REGS = ("shift", "fields")
#: ``BlockParser(header_crc=...)``: the header CRC over a whole beat per cycle or one word per cycle.
HEADER_CRCS = ("beat", "word")


def beat_layout(lanes):
    """Payload of the data stream: one 16-bit word per lane, plus the block-start mark."""
    return data.StructLayout({"data": data.ArrayLayout(spec.WORD, lanes), "first": 1})


descriptor_layout = data.StructLayout({
    "n": 16,          # symbols per lane
    "m": 16,          # words per lane
    "bitlen": 20,     # this lane's bit length
    "crc": 16,        # this lane's payload CRC
    "mode": 2,
    "r": 4,
    "ebits": 4,
    "parity": 1,
    "skip": 1,        # lane overrun: output n zeros, discard the region
})


class BlockParser(wiring.Component):
    """Splits the block stream (:mod:`hw.huffman.spec`) into per-lane descriptors and payload words.

    Header beats are checked (CRC, marker, field ranges); a good header yields one descriptor per
    lane on ``o_desc`` (all lanes in one transfer) and then the block's ``M`` payload beats are
    forwarded on ``o_words``. A bad header pulses ``o_err_header`` and the parser drops beats until the
    next ``first`` beat; beats outside a block (not ``first``, while hunting) also pulse
    ``o_err_header``, since a well-formed stream has none (a lost ``first`` mark is thus flagged). A
    ``first`` beat inside a payload ends the block early: the missing beats are sent as zero words
    marked ``pad`` (``o_err_trunc`` pulses, and the lanes flag the block), so every lane still gets
    exactly ``M`` words and nothing waits for data that will never come. Lanes whose bit length
    exceeds ``16 M`` get ``skip`` set (``o_err_overrun``). One beat per cycle in every state.

    With ``hold=True`` the parser has an input ``i_hold``: while it is high the parser takes no beat
    in HUNT (``i_data.ready`` low there, nothing else changes), so it starts no header and
    ``o_desc.payload`` — wires from its header registers, which only HUNT / HEADER write — stays
    as it was when the descriptor was taken. A :class:`DescriptorSlot` per lane then replaces a
    descriptor FIFO: the slot stores only "full", the parser holds the data (``i_hold`` = some slot
    full). The parser still forwards the block's payload meanwhile; only the next header waits.

    Parameters
    ----------
    lanes : int
        N, 1 to 8.
    raw_bits : int
        The decoder's raw bits per symbol R (headers with ``r`` other than 0 or R are rejected).
    hold : bool
        Default False (no ``i_hold``).
    chain : bool
        Take chained blocks (:data:`hw.huffman.spec.FLAG_CONT`): ``o_cont``, valid with
        ``o_desc``, is the block's ``cont`` flag. Default False: such a header is bad.
    header_regs : str
        How the header beats are kept. ``"shift"`` (default): a shift register of all the header's
        beats (every beat in HUNT / HEADER shifts it; the enable is two state bits and ``valid``).
        ``"fields"``: each header beat is written into its fields by its index (``beat``), only the
        bits the checks and descriptors read: no register for the header CRC word or the padding,
        and of each lane's high bit-length word its 4 bits and "the 12 above are not all 0" (area:
        the UP5K's GEMM group). Same descriptors, checks and cycles.
    header_crc : str
        ``"beat"`` (default): the header CRC takes a whole beat (N words) per cycle. ``"word"``: one
        word per cycle (area: a CRC step of 16 data bits, not ``16 N``; the UP5K's GEMM group): a
        header beat (a ``first`` one in HUNT, every one in HEADER) is taken only in the N-th cycle
        it is offered (``i_data.ready`` low before), its words entering the CRC one per cycle, so a
        header takes ``N`` cycles per beat instead of one. Same descriptors and checks; beats
        outside a block are dropped (and flagged) in one cycle as before. Needs a source that
        holds a beat while it is not taken (a stream's rule).

    Members
    -------
    i_data : In(stream.Signature(beat_layout(lanes)))
    o_words : Out(stream.Signature(ArrayLayout(17, lanes)))
        Payload words; bit 16 marks a zero word standing in for one cut off by a ``first`` beat.
    o_desc : Out(stream.Signature(ArrayLayout(descriptor_layout, lanes)))
    o_err_header, o_err_trunc, o_err_overrun : Out(1)
        One-cycle error pulses.
    o_cont : Out(1)
        With ``chain=True`` only.
    """

    def __init__(self, lanes=1, raw_bits=8, hold=False, chain=False, header_regs="shift", header_crc="beat"):
        self._N = check_int("lanes", lanes, 1, 8)
        self._R = check_int("raw_bits", raw_bits, 0, 8)
        self._hold = check_bool("hold", hold)
        self._chain = check_bool("chain", chain)
        self._fields = check_choice("header_regs", header_regs, HEADER_REGS) == "fields"
        # (one lane: a beat is one word, the same CRC step either way)
        self._crc_word = check_choice("header_crc", header_crc, HEADER_CRCS) == "word" and self._N > 1
        super().__init__({
            "i_data": In(stream.Signature(beat_layout(lanes))),
            "o_words": Out(stream.Signature(data.ArrayLayout(spec.WORD + 1, lanes))),
            "o_desc": Out(stream.Signature(data.ArrayLayout(descriptor_layout, lanes))),
            "o_err_header": Out(1),
            "o_err_trunc": Out(1),
            "o_err_overrun": Out(1),
            **({"i_hold": In(1)} if self._hold else {}),
            **({"o_cont": Out(1)} if self._chain else {}),
        })

    def elaborate(self, platform):
        m = Module()
        N, R = self._N, self._R
        hbeats = spec.header_beats(N)
        words = self.i_data.payload.data
        first = self.i_data.payload.first

        beat = Signal(range(hbeats + 1))
        beat_last = Signal()            # beat == hbeats - 1, a register of its own
        crc = Signal(16)
        # the header beats go through a shift register (beat b ends at position b): every beat in
        # HUNT / HEADER shifts it, so its enable is two state bits and ``valid`` (beats that are not
        # a header's are overwritten before CHECK reads it: a header is ``hbeats`` beats from a
        # ``first`` one)
        if self._fields:
            # the fields a header word goes to, by its word index ``j * N + k`` (beat j, lane k)
            # (reset-less: read only from CHECK on, after a whole header wrote them)
            lo = [Signal(16, name=f"hdr_lo{k}", reset_less=True) for k in range(N)]
            hi4 = [Signal(4, name=f"hdr_hi{k}", reset_less=True) for k in range(N)]
            hi_big = [Signal(name=f"hdr_hi_big{k}", reset_less=True) for k in range(N)]   # hi[k][4:] != 0
            crcs = [Signal(16, name=f"hdr_crc{k}", reset_less=True) for k in range(N)]
            common = [Signal(16, name=f"hdr_{f}", reset_less=True) for f in ("flags", "n", "m")]
            hi_zero = [~b for b in hi_big]
        else:
            hdr = Signal(data.ArrayLayout(data.ArrayLayout(16, N), hbeats))
            lo, hi, crcs = hdr[0], hdr[1], hdr[2]
            common = [hdr[3 + i // N][i % N] for i in range(3)]          # flags, n, M
            hi4 = [hi[k][:4] for k in range(N)]
            hi_zero = [hi[k][4:] == 0 for k in range(N)]
        count = Signal(16)
        count_is_1 = Signal()          # count == 1, kept as a register (off the input handshake)
        count_is_0 = Signal()
        desc = Signal(data.ArrayLayout(descriptor_layout, N))     # wires from the header registers
        skip = Signal(N)
        overrun = Signal()
        ok_q = Signal(4)                # the header checks in four groups
        over_gt = Signal(N)
        over_eq = Signal(N)
        over_lo = Signal(N)

        m.d.sync += [self.o_err_header.eq(0), self.o_err_trunc.eq(0), self.o_err_overrun.eq(0)]
        m.d.comb += self.o_desc.payload.eq(desc)

        hdr_shift = Signal()            # a beat in HUNT / HEADER (set in those states)
        if not self._fields:
            with m.If(hdr_shift):
                m.d.sync += [*(hdr[j].eq(hdr[j + 1]) for j in range(hbeats - 1)), hdr[hbeats - 1].eq(words)]

        def header_beat(index_is_zero):
            """Absorb one header beat (the current one): the CRC and the beat index."""
            crc_in = Const(spec.CRC_INIT, 16) if index_is_zero else crc
            idx = Const(0) if index_is_zero else beat
            # (``header_crc="word"``: the CRC takes the words one per cycle, apart)
            crc_step = [] if self._crc_word else [crc.eq(crc16_next(crc_in, [words[k] for k in range(N)]))]
            m.d.sync += [*crc_step, beat.eq(idx + 1), beat_last.eq(idx + 1 == hbeats - 1)]

        # The descriptors are wires from the header registers (no copy: they hold still from CHECK
        # until the descriptor is taken, since only HUNT / HEADER write them); only ``skip`` is a
        # register of its own.
        flags, n, mw = common[0], common[1], common[2]
        mode, r, ebits = flags[0:2], flags[4:8], flags[8:12]
        bitlens = [lo[k] | (hi4[k] << 16) for k in range(N)]        # 20-bit lane lengths
        for k in range(N):
            m.d.comb += [
                desc[k].n.eq(n), desc[k].m.eq(mw), desc[k].bitlen.eq(bitlens[k]),
                desc[k].crc.eq(crcs[k]), desc[k].mode.eq(mode), desc[k].r.eq(r), desc[k].ebits.eq(ebits),
                desc[k].parity.eq(flags[2]), desc[k].skip.eq(skip[k]),
            ]
        if self._chain:
            m.d.comb += self.o_cont.eq(flags[3])

        def check():
            """The header is all in registers: check it (a cycle of its own, so the CRC tree and the
            field checks do not share one with the input handshake)."""
            # four groups, each registered (DECIDE ANDs them: the AND of every field check is not
            # one path)
            cont_ok = 1 if self._chain else ~flags[3]
            fields_ok = ((flags[12:16] == spec.HEADER_MARK) & cont_ok & (mode != 3)
                         & ((r == 0) | (r == R))
                         & ((mode != spec.MODE_RAW) | (r != 0))
                         & ((mode != spec.MODE_EXP) | ((r != 0) & (ebits != 0) & (ebits <= 8))))
            ok = Cat(crc == 0, fields_ok, n != 0, Cat(*hi_zero).all())
            for k, bitlen in enumerate(bitlens):
                # bitlen > 16 M, in two halves (the verdict in DECIDE, from registers)
                m.d.sync += [
                    over_gt[k].eq(bitlen[4:] > mw), over_eq[k].eq(bitlen[4:] == mw),
                    over_lo[k].eq(bitlen[:4] != 0),
                ]
            m.d.sync += [count.eq(mw), count_is_1.eq(mw == 1), count_is_0.eq(mw == 0), ok_q.eq(ok)]

        # One-hot states (a flip-flop each): every next-state equation is a small AND-OR of a few
        # registers and the input handshake, not a decode of a binary state behind the handshake.
        names = ("HUNT", "HEADER", "CHECK", "DECIDE", "DESC", "PAYLOAD", "PAD")
        st = {name: Signal(name=f"st_{name.lower()}", init=(name == "HUNT")) for name in names}
        valid = self.i_data.valid
        hunt_ready = st["HUNT"]
        if self._hold:
            # no beat in HUNT while held: the header registers (the descriptors) keep still
            valid = valid & ~(self.i_hold & st["HUNT"])
            hunt_ready = st["HUNT"] & ~self.i_hold
        words_ready = self.o_words.ready
        desc_ready = self.o_desc.ready
        ok = ok_q.all()
        # HUNT / HEADER: every beat is taken; a ``first`` one starts a header (in HEADER: a header cut
        # short, restarted on this beat), a beat outside a header while hunting is an error
        head_start = valid & first
        head_next = valid & ~first
        hunt_junk = head_next           # HUNT: a beat outside a block (dropped in one cycle)
        if self._crc_word:
            # word ``sub`` of the offered header beat enters the CRC in this cycle; the beat is
            # taken with its last word (the beat holds meanwhile: it is not taken)
            sub = Signal(range(N))
            sub_last = Signal()         # sub == N - 1, a register of its own
            hdr_word = (st["HUNT"] & valid & first) | (st["HEADER"] & valid)
            with m.If(hdr_word):
                m.d.sync += [sub.eq(Mux(sub_last, 0, sub + 1)), sub_last.eq(sub == N - 2),
                             crc.eq(crc16_next(Mux((sub == 0) & first, Const(spec.CRC_INIT, 16), crc),
                                               [words.as_value().word_select(sub, spec.WORD)]))]
            head_start = head_start & sub_last
            head_next = head_next & sub_last
        # PAYLOAD: a ``first`` beat cuts the block short (it is left for HUNT; the rest of the block
        # is padded); PAD sends zero words
        cut = valid & first
        pay_take = valid & ~first & words_ready
        pad_take = words_ready
        if self._crc_word:
            shift_v = (st["HUNT"] & (hunt_junk | head_start)) | (st["HEADER"] & valid & sub_last)
            ready_v = ((hunt_ready & (~first | sub_last)) | (st["HEADER"] & sub_last)
                       | (st["PAYLOAD"] & ~first & words_ready))
        else:
            shift_v = (st["HUNT"] | st["HEADER"]) & valid
            ready_v = hunt_ready | st["HEADER"] | (st["PAYLOAD"] & ~first & words_ready)
        m.d.comb += [
            hdr_shift.eq(shift_v),
            self.o_desc.valid.eq(st["DESC"]),
            self.o_words.valid.eq((st["PAYLOAD"] & valid & ~first) | st["PAD"]),
            self.i_data.ready.eq(ready_v),
        ]
        with m.If(st["PAD"]):
            m.d.comb += [self.o_words.payload[k].eq(1 << spec.WORD) for k in range(N)]
        with m.Else():
            m.d.comb += [self.o_words.payload[k].eq(words[k]) for k in range(N)]
        m.d.sync += [
            st["HUNT"].eq((st["HUNT"] & ~head_start) | (st["DECIDE"] & ~ok)
                          | (st["DESC"] & desc_ready & count_is_0)
                          | (st["PAYLOAD"] & pay_take & count_is_1) | (st["PAD"] & pad_take & count_is_1)),
            st["HEADER"].eq((st["HUNT"] & head_start) | (st["HEADER"] & ~(head_next & beat_last))),
            st["CHECK"].eq(st["HEADER"] & head_next & beat_last),
            st["DECIDE"].eq(st["CHECK"]),
            st["DESC"].eq((st["DECIDE"] & ok) | (st["DESC"] & ~desc_ready)),
            st["PAYLOAD"].eq((st["DESC"] & desc_ready & ~count_is_0)
                             | (st["PAYLOAD"] & ~cut & ~(pay_take & count_is_1))),
            st["PAD"].eq((st["PAYLOAD"] & cut) | (st["PAD"] & ~(pad_take & count_is_1))),
        ]
        if self._fields:
            # header beat j (0: the ``first`` one, then ``beat``) into its fields
            for j in range(hbeats):
                at_j = ((st["HUNT"] | st["HEADER"]) & head_start if j == 0
                        else st["HEADER"] & head_next & (beat == j))
                with m.If(at_j):
                    for k in range(N):
                        w, word = j * N + k, words[k]
                        if w < N:
                            m.d.sync += lo[w].eq(word)
                        elif w < 2 * N:
                            m.d.sync += [hi4[w - N].eq(word[:4]), hi_big[w - N].eq(word[4:].any())]
                        elif w < 3 * N:
                            m.d.sync += crcs[w - 2 * N].eq(word)
                        elif w < 3 * N + 3:
                            m.d.sync += common[w - 3 * N].eq(word)
        with m.If((st["HUNT"] | st["HEADER"]) & head_start):
            header_beat(True)
        with m.If(st["HEADER"] & head_next):
            header_beat(False)
        with m.If((st["HUNT"] & hunt_junk) | (st["HEADER"] & head_start) | (st["DECIDE"] & ~ok)):
            m.d.sync += self.o_err_header.eq(1)
        with m.If(st["CHECK"]):
            check()
        with m.If(st["DECIDE"]):
            skips = [over_gt[k] | (over_eq[k] & over_lo[k]) for k in range(N)]
            # (the checks' result ``ok`` is from registers: the AND of all field checks does not
            # share a cycle with the state update)
            m.d.sync += [skip.eq(Cat(*skips)), overrun.eq(Cat(*skips).any())]
        with m.If(st["DESC"] & desc_ready):
            m.d.sync += self.o_err_overrun.eq(overrun)
        with m.If(st["PAYLOAD"] & cut):
            m.d.sync += self.o_err_trunc.eq(1)
        # (a payload word is counted on ``valid & ready`` of the input, not the muxed ``o_words.valid``)
        with m.If((st["PAYLOAD"] & pay_take) | (st["PAD"] & pad_take)):
            m.d.sync += [count.eq(count - 1), count_is_1.eq(count == 2)]
        return m


class DescriptorSlot(Elaboratable):
    """A one-entry descriptor "FIFO" that stores no data: for a writer that holds ``w_data`` from
    the write until the entry is read (:class:`BlockParser` with ``hold=True``, ``i_hold`` = some
    slot's ``r_rdy``). Only "full" is a register; ``r_data`` is ``w_data``.

    Cycle behaviour, as ``SyncFIFOBuffered(depth=1)`` (a single register) for such a writer:
    ``w_rdy`` = empty, ``r_rdy`` = full (both from the one register); a write (``w_en & w_rdy``)
    makes it full in the next cycle, a read (``r_en & r_rdy``) empty in the next cycle.

    Members
    -------
    w_en, w_data, w_rdy, r_en, r_data, r_rdy
        As :class:`~amaranth.lib.fifo.FIFOInterface` (``width`` bits of data).
    """

    def __init__(self, width):
        self.width = width
        self.depth = 1
        self.w_en = Signal()
        self.w_data = Signal(width)
        self.w_rdy = Signal()
        self.r_en = Signal()
        self.r_data = Signal(width)
        self.r_rdy = Signal()

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        m.d.comb += [self.w_rdy.eq(~full), self.r_rdy.eq(full), self.r_data.eq(self.w_data)]
        with m.If(self.w_en & ~full):
            m.d.sync += full.eq(1)
        with m.If(self.r_en & full):
            m.d.sync += full.eq(0)
        return m
