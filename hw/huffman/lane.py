"""One decode lane: a bit buffer fed by 16-bit words and a table-driven canonical decoder giving one
symbol per cycle for every code length up to L."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import check_int
from . import spec
from .block_parser import descriptor_layout
from .crc import crc16_next

__all__ = ["LaneDecoder", "lane_output_layout", "buffer_bits"]


def lane_output_layout(raw_bits):
    return data.StructLayout({"value": spec.value_width(raw_bits), "first": 1, "last": 1, "err": 1})


def buffer_bits(max_len, raw_bits):
    """Bit-buffer width: one word of room above the longest code + raw field, plus 8 bits of slack,
    so a refill (taken whenever a whole word fits) nearly always lands before the window runs dry
    (measured by the bench; a full second word of slack costs 8 more buffer bits for no gain there)."""
    return max_len + raw_bits + spec.WORD + 8


class LaneDecoder(wiring.Component):
    """Decodes one lane of each block (see :mod:`hw.huffman.spec`) at up to one symbol per cycle.

    Per block it takes one descriptor from ``i_desc`` and exactly ``M`` words from ``i_words`` and
    emits exactly ``n`` values on ``o_sym`` (the first with ``first``, the last with ``last`` and
    ``err`` = any error in this lane's block).

    Decode loop (one cycle, the only feedback path): the top L bits of the bit buffer ``buf``
    (left-aligned, MSB = next stream bit) are compared with the L per-length limits in parallel; the
    thermometer of results gives the code length ``l`` one-hot; the buffer shifts left by ``l + r``
    through a one-hot AND-OR multiplexer. The refill word is placed behind the valid bits using the
    registered fill level, so it is off the loop. Symbol lookup (index arithmetic, the symbol memory
    read) and value composition run in the following pipeline stages. A word is taken whenever it fits
    (``fill <= B - 16``); a symbol fires when its code and raw bits are in the buffer (``l + r <=
    fill``: a window with missing bits read as zero still gives the right length whenever that length
    fits).

    Table selection follows the spec: the lane keeps its table or moves to the next one (waiting until
    the loader has completed it, ``i_count``); ``o_tab`` tells the loader which table the lane uses.

    Errors (``o_err_*`` pulses; the block's last value carries ``err``): invalid code, code past the
    lane's bit length (truncated), bit length not used up (mismatch), payload CRC. After an invalid or
    truncated code the lane outputs zeros for the rest of the block at one per cycle and discards the
    rest of its words, so it never waits on anything but its own ``M`` words and the consumer.

    Latency: 3 cycles from a fire to ``o_sym``. Block switch: about 6 idle cycles (the last value is
    held until the lane's words are all in and its CRC is checked).

    Parameters
    ----------
    max_len : int
        L, 8 to 16.
    raw_bits : int
        R, the largest raw field per symbol, 0 to 8 (output values are ``8 + R`` bits wide).

    Members
    -------
    i_desc : In(stream.Signature(descriptor_layout))
    i_words : In(stream.Signature(17))
        Region words; bit 16 set marks a stand-in for a word lost to a cut-short block (flags the block).
    i_limit, i_offset : In, both banks (see :class:`~hw.huffman.table_loader.TableLoader`)
    i_count : In(8)
        Tables completed by the loader.
    i_ok : In(2)
        Per bank: the table is valid.
    i_sym_en, i_sym_addr, i_sym_data : In
        Write port of this lane's symbol memory (512 x 8: two banks).
    o_tab : Out(8)
        Number of the table this lane uses (255 before the first).
    o_sym : Out(stream.Signature(lane_output_layout(raw_bits)))
    o_fire : Out(1)
        A symbol was decoded this cycle (for throughput counters).
    o_err_invalid, o_err_trunc, o_err_mismatch, o_err_crc : Out(1)
        One-cycle error pulses.

    Raises
    ------
    ValueError
        If ``max_len`` or ``raw_bits`` is out of range.
    """

    def __init__(self, max_len=16, raw_bits=8):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        self._R = check_int("raw_bits", raw_bits, 0, 8)
        L = self._L
        super().__init__({
            "i_desc": In(stream.Signature(descriptor_layout)),
            "i_words": In(stream.Signature(spec.WORD + 1)),
            "i_limit": In(data.ArrayLayout(data.ArrayLayout(L + 1, L + 1), 2)),
            "i_offset": In(data.ArrayLayout(data.ArrayLayout(9, L + 1), 2)),
            "i_count": In(8),
            "i_ok": In(2),
            "i_sym_en": In(1),
            "i_sym_addr": In(9),
            "i_sym_data": In(8),
            "o_tab": Out(8, init=0xFF),
            "o_sym": Out(stream.Signature(lane_output_layout(raw_bits))),
            "o_fire": Out(1),
            "o_err_invalid": Out(1),
            "o_err_trunc": Out(1),
            "o_err_mismatch": Out(1),
            "o_err_crc": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, R, W = self._L, self._R, spec.WORD
        B = buffer_bits(L, R)
        VW = spec.value_width(R)

        symmem = Memory(shape=8, depth=512, init=[])
        m.submodules.symmem = symmem
        wport = symmem.write_port()
        rport = symmem.read_port()
        m.d.comb += [wport.en.eq(self.i_sym_en), wport.addr.eq(self.i_sym_addr),
                     wport.data.eq(self.i_sym_data)]

        # ---- block state
        d = Signal(descriptor_layout)
        n_left = Signal(16)
        words_left = Signal(16)        # words of the region still to take
        own_left = Signal(16)          # of which hold this lane's bits (the rest is padding)
        bits_left = Signal(21)
        crc = Signal(16)
        check_crc = Signal()
        blk_err = Signal()
        zeroing = Signal()             # error / skipped lane: emit zeros, discard words
        is_first = Signal()
        bank = Signal()
        has_tab = Signal()
        final_err = Signal()
        released = Signal()

        buf = Signal(B)
        fill = Signal(range(B + 1))

        # ---- pipeline registers (advance together)
        s1_valid = Signal()
        s1 = Signal(data.StructLayout({
            "win": L + R, "onehot": L + 1, "mode": 2, "r": 4, "ebits": 4, "bank": 1, "zero": 1,
            "first": 1, "last": 1}))
        s2_valid = Signal()
        s2 = Signal(data.StructLayout({
            "raw": 8 if R == 0 else R, "mode": 2, "r": 4, "ebits": 4, "zero": 1, "first": 1, "last": 1}))
        o_valid = Signal()
        o_item = Signal(lane_output_layout(R))

        out_hold = o_item.last & ~released
        m.d.comb += [
            self.o_sym.valid.eq(o_valid & ~out_hold),
            self.o_sym.payload.eq(o_item),
            self.o_sym.payload.err.eq(o_item.last & final_err),
        ]
        out_take = self.o_sym.valid & self.o_sym.ready
        adv = Signal()
        m.d.comb += adv.eq(~o_valid | out_take)

        # ---- word intake
        running = Signal()
        room = fill <= B - W
        pop = Signal()
        pop_buf = Signal()
        m.d.comb += [
            pop.eq(running & self.i_words.valid & (words_left != 0)
                   & (zeroing | (own_left == 0) | room)),
            pop_buf.eq(pop & ~zeroing & (own_left != 0)),
            self.i_words.ready.eq(pop),
        ]
        placed = Signal(B)
        m.d.comb += placed.eq(Mux(pop_buf, (self.i_words.payload[:W] << (B - W)) >> fill, 0))
        buf_m = buf | placed

        # ---- decode (the loop)
        win = buf[B - L:]
        lim = [None] + [Mux(bank, self.i_limit[1][ln], self.i_limit[0][ln]) for ln in range(1, L + 1)]
        lt = [Const(0, 1)] + [Signal(name=f"lt{ln}") for ln in range(1, L + 1)]
        for ln in range(1, L + 1):
            m.d.comb += lt[ln].eq(win < lim[ln])
        raw_mode = d.mode == spec.MODE_RAW
        onehot = Signal(L + 1)
        m.d.comb += onehot[0].eq(raw_mode)
        for ln in range(1, L + 1):
            m.d.comb += onehot[ln].eq(~raw_mode & lt[ln] & ~lt[ln - 1])
        invalid = ~raw_mode & ~lt[L]

        length = Signal(range(L + 1))
        for ln in range(L + 1):
            with m.If(onehot[ln]):
                m.d.comb += length.eq(ln)
        r = d.r
        fill_r = Signal(range(-16, B + 1))          # fill - r: room for the code part
        bits_r = Signal(range(-16, 1 << 21))        # bits_left - r
        m.d.comb += [fill_r.eq(fill - r), bits_r.eq(bits_left - r)]
        fits = Signal()        # code + raw bits are in the buffer
        within = Signal()      # ... and inside the lane's declared bit length
        exact = Signal()       # ... and end exactly at it
        m.d.comb += [
            fits.eq(Cat(*(onehot[ln] & (fill_r >= ln) for ln in range(L + 1))).any()),
        ]
        # One subtraction instead of per-length comparators: these only feed the error checks and
        # the counters, not the buffer update (after an error the buffer's content is don't-care).
        bits_after = Signal(range(-(1 << 21), 1 << 21))
        m.d.comb += [
            bits_after.eq(bits_r - length),
            within.eq(bits_after >= 0),
            exact.eq(bits_after == 0),
        ]

        can = running & ~zeroing & (n_left != 0) & adv
        ev_invalid = can & invalid
        ev_trunc = can & ~invalid & ((fits & ~within) | (~fits & (own_left == 0)))
        fire = Signal()
        m.d.comb += [fire.eq(can & ~invalid & fits & within), self.o_fire.eq(fire)]
        emit_zero = running & zeroing & (n_left != 0) & adv

        # shift by r (off the loop: r is a block constant), then by l (one-hot)
        buf_r = Signal(B)
        m.d.comb += buf_r.eq(buf_m << r)
        shifted = Signal(B)
        terms = [Mux(onehot[ln], (buf_r << ln)[:B], 0) for ln in range(L + 1)]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc | t
        m.d.comb += shifted.eq(acc)

        m.d.sync += [self.o_err_invalid.eq(0), self.o_err_trunc.eq(0), self.o_err_mismatch.eq(0),
                     self.o_err_crc.eq(0)]

        step = can & fits              # the buffer shifts (fire, or an error that ends decoding anyway)
        with m.If(step):
            m.d.sync += [buf.eq(shifted), fill.eq(fill + Mux(pop_buf, W, 0) - r - length)]
        with m.Else():
            m.d.sync += [buf.eq(buf_m), fill.eq(fill + Mux(pop_buf, W, 0))]
        with m.If(fire):
            m.d.sync += bits_left.eq(bits_after)
        with m.If(pop):
            m.d.sync += [crc.eq(crc16_next(crc, [self.i_words.payload[:W]])), words_left.eq(words_left - 1)]
            with m.If(self.i_words.payload[W]):
                m.d.sync += blk_err.eq(1)
            with m.If(own_left != 0):
                m.d.sync += own_left.eq(own_left - 1)
        with m.If(ev_invalid | ev_trunc):
            m.d.sync += [zeroing.eq(1), blk_err.eq(1),
                         self.o_err_invalid.eq(ev_invalid), self.o_err_trunc.eq(ev_trunc)]
        with m.If(fire & (n_left == 1) & ~exact):
            m.d.sync += [blk_err.eq(1), self.o_err_mismatch.eq(1)]
        with m.If(fire | emit_zero):
            m.d.sync += [n_left.eq(n_left - 1), is_first.eq(0)]

        # ---- stage 1: registered window and length
        with m.If(adv):
            m.d.sync += [
                s1_valid.eq(fire | emit_zero),
                s1.win.eq(buf[B - L - R:]),
                s1.onehot.eq(onehot),
                s1.mode.eq(d.mode), s1.r.eq(d.r), s1.ebits.eq(d.ebits), s1.bank.eq(bank),
                s1.zero.eq(emit_zero), s1.first.eq(is_first), s1.last.eq(n_left == 1),
            ]
        # symbol index and raw field
        index = Signal(9)
        code = Signal(L)
        offset = Signal(9)
        rawtop = Signal(max(R, 1))
        for ln in range(L + 1):
            with m.If(s1.onehot[ln]):
                if ln:
                    m.d.comb += [
                        code.eq(s1.win[R:][L - ln:]),
                        offset.eq(Mux(s1.bank, self.i_offset[1][ln], self.i_offset[0][ln])),
                    ]
                if R:
                    m.d.comb += rawtop.eq((s1.win << ln)[L:L + R])
        m.d.comb += index.eq(code + offset)
        m.d.comb += [rport.addr.eq(Cat(index[:8], s1.bank)), rport.en.eq(adv)]
        with m.If(adv):
            m.d.sync += [
                s2_valid.eq(s1_valid),
                s2.raw.eq(rawtop >> (R - s1.r)[:4] if R else 0),
                s2.mode.eq(s1.mode), s2.r.eq(s1.r), s2.ebits.eq(s1.ebits), s2.zero.eq(s1.zero),
                s2.first.eq(s1.first), s2.last.eq(s1.last),
            ]
        # ---- stage 2 -> output register: compose the value
        sym = Mux(s2.mode == spec.MODE_RAW, 0, rport.data)
        value = Signal(VW)
        with m.Switch(s2.mode):
            with m.Case(spec.MODE_EXP):
                rm1 = (s2.r - 1)[:4]
                sign = (s2.raw >> rm1)[0]
                man = s2.raw & ((Const(1, 9) << rm1) - 1)[:9]
                m.d.comb += value.eq((sign << (s2.ebits + rm1)[:5]) | (sym << rm1) | man)
            with m.Default():
                m.d.comb += value.eq((sym << s2.r) | s2.raw)
        with m.If(adv):
            m.d.sync += [
                o_valid.eq(s2_valid),
                o_item.value.eq(Mux(s2.zero, 0, value)),
                o_item.first.eq(s2.first), o_item.last.eq(s2.last),
            ]

        # ---- block control
        next_tab = self.o_tab + 1
        loaded = Signal()
        diff = Signal(8)
        m.d.comb += [diff.eq(self.i_count - next_tab), loaded.eq((diff != 0) & ~diff[7])]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i_desc.ready.eq(1)
                with m.If(self.i_desc.valid):
                    desc = self.i_desc.payload
                    m.d.sync += [
                        d.eq(desc), n_left.eq(desc.n), words_left.eq(desc.m),
                        own_left.eq((desc.bitlen + W - 1) >> 4), bits_left.eq(desc.bitlen),
                        crc.eq(spec.CRC_INIT), blk_err.eq(desc.skip), zeroing.eq(desc.skip),
                        check_crc.eq(~desc.skip), is_first.eq(1), buf.eq(0), fill.eq(0), released.eq(0),
                    ]
                    with m.If(desc.skip | (desc.mode == spec.MODE_RAW)):
                        m.next = "RUN"
                    with m.Elif(has_tab & (desc.parity == self.o_tab[0])):
                        m.next = "RUN"
                    with m.Else():
                        m.next = "TABLE"
            with m.State("TABLE"):
                with m.If(loaded):
                    m.d.sync += [self.o_tab.eq(next_tab), has_tab.eq(1), bank.eq(next_tab[0])]
                    with m.If(~self.i_ok.bit_select(next_tab[0], 1)):
                        m.d.sync += [zeroing.eq(1), blk_err.eq(1), check_crc.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If((n_left == 0) & (words_left == 0)):
                    bad_crc = check_crc & (crc != d.crc)
                    m.d.sync += [final_err.eq(blk_err | bad_crc), released.eq(1), self.o_err_crc.eq(bad_crc)]
                    m.next = "FINISH"
            with m.State("FINISH"):
                with m.If(out_take & o_item.last):
                    m.next = "IDLE"
        return m
