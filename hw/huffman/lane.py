"""One decode lane: a bit buffer fed by 16-bit words and a table-driven canonical decoder giving one
symbol per cycle for every code length up to L."""

from functools import partial
from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.logic import onehot_mux, tree
from ..lib.ram import registered_read_port
from ..lib.sections import elaborate_sections
from . import lane_step, spec
from .block_parser import descriptor_layout
from .lane_step import buffer_bits
from .table_loader import table_bus

__all__ = ["LaneDecoder", "lane_output_layout", "buffer_bits"]

_QDEPTH = 4        # output queue entries (values in the queue and in flight: the credit count)


def lane_output_layout(raw_bits):
    return data.StructLayout({"value": spec.value_width(raw_bits), "first": 1, "last": 1, "err": 1})


def lane_members(max_len, raw_bits, contexts=1, escape=False):
    """The ports of a lane decoder (:class:`LaneDecoder`; with ``contexts=2`` the per-format-lane
    ports of :class:`~hw.huffman.lane_cslow.CSlowLaneDecoder` are pairs)."""
    L = max_len

    def per_lane(member):
        return member.array(2) if contexts == 2 else member

    members = {
        "i_desc": per_lane(In(stream.Signature(descriptor_layout))),
        "i_words": per_lane(In(stream.Signature(spec.WORD + 1))),
        # the loader's table (the two-context lane keeps the offsets in a block RAM of its own,
        # written through ``i_off_*`` at ``bank << 4 | length``)
        **{f"i_{name}": In(shape)
           for name, shape in table_bus(L, offset_port=contexts == 2, escape=escape).items()},
        "o_tab": per_lane(Out(8, init=0xFF)),
        "o_sym": per_lane(Out(stream.Signature(lane_output_layout(raw_bits)))),
        "o_fire": Out(1),
        "o_err_invalid": Out(1),
        "o_err_trunc": Out(1),
        "o_err_mismatch": Out(1),
        "o_err_crc": Out(1),
    }
    return members


def symbol_memory(m, lane, rw_check=True):
    """The lane's symbol memory (512 x 8: two table banks), written through ``lane.i_sym_*``;
    returns its read port (``addr``, ``data``, ``en``; data a cycle after the address).

    ``rw_check=False``: the memory carries ``no_rw_check`` and the port is
    :func:`hw.lib.ram.registered_read_port` (no read-during-write logic: for a lane that never uses
    a read of the bank the loader is writing, which holds because a table's bank is written only
    when no lane decodes with it)."""
    symmem = Memory(shape=8, depth=512, init=[], attrs=None if rw_check else {"no_rw_check": 1})
    m.submodules.symmem = symmem
    wport = symmem.write_port()
    m.d.comb += [wport.en.eq(lane.i_sym_en), wport.addr.eq(lane.i_sym_addr),
                 wport.data.eq(lane.i_sym_data)]
    if not rw_check:
        return registered_read_port(m, symmem, name="symmem_rd")
    rport = symmem.read_port()    # named for the netlist (Amaranth names it after the variable)
    return rport


def compose_parts(m, plain, mode, raw, ebits, raw_bits):
    """The parts of a symbol's output value (see :mod:`hw.huffman.spec`) that do not depend on the
    decoded symbol: ``low``, the raw bits in place (for EXP blocks the sign above the ``ebits``-bit
    exponent and the mantissa below it; nothing when the block has no raw field, ``plain``), and
    ``place``, one-hot, where the symbol goes: alone (``plain``), above ``R - 1`` bits (EXP), above
    ``R`` bits (INT); nowhere for RAW blocks, whose value is the raw field. :func:`place_symbol`
    completes the value; a lane may register the parts a cycle before the symbol is read."""
    R = raw_bits
    low = Signal(spec.value_width(R))
    place = Signal(3)
    if not R:
        m.d.comb += place.eq(Cat(plain, 0, 0))
        return low, place
    is_exp = mode == spec.MODE_EXP
    sign = raw[R - 1]
    man = raw[:R - 1] if R > 1 else Const(0, 1)
    with m.If(~plain):
        m.d.comb += low.eq(Mux(is_exp, (sign << (ebits + (R - 1))[:5]) | man, raw))
    m.d.comb += place.eq(Cat(plain, ~plain & is_exp, ~plain & ~is_exp & (mode != spec.MODE_RAW)))
    return low, place


def place_symbol(sym, low, place, raw_bits):
    """The output value: symbol ``sym`` placed as ``place`` says, OR'd with ``low`` (see
    :func:`compose_parts`)."""
    R = raw_bits
    terms = [Mux(place[0], sym, 0)]
    if R:
        terms += [Mux(place[1], sym << (R - 1), 0), Mux(place[2], sym << R, 0)]
    return tree([*terms, low], lambda a, b: a | b)[:spec.value_width(R)]


class LaneDecoder(wiring.Component):
    """Decodes one lane of each block (see :mod:`hw.huffman.spec`) at up to one symbol per cycle.

    Per block it takes one descriptor from ``i_desc`` and exactly ``M`` words from ``i_words`` and
    emits exactly ``n`` values on ``o_sym`` (the first with ``first``, the last with ``last`` and
    ``err`` = any error in this lane's block).

    Decode loop (one cycle): the top L bits of the bit buffer ``buf`` (left-aligned, MSB = next
    stream bit) are compared in parallel with the L code ends of the lane's table bank (straight from
    the loader's registers through a 2:1 bank mux; code end ``l`` is compared with the window's top
    ``l`` bits, so no comparator is wider than it must be); the thermometer of results gives the code
    length ``l`` one-hot; the buffer and its fill count move through one balanced one-hot AND-OR
    multiplexer over the lengths (shift by ``l + r``; ``r`` is 0 or R per block, a 2:1 pre-shift).
    Nothing else is in the loop: the symbol's bit-length checks
    (truncated / count mismatch), the bit counter and the fire counter run a cycle later in stage 1
    from the registered one-hot (a symbol decoded in the cycle after a truncated one leaves as 0 and
    raises nothing, as in the golden model); credits for the output queue are a register. A taken
    word waits a cycle in a staging register and is then placed behind the valid bits (at ``fill``),
    so the input handshake is off the loop too; a word is taken only when it fits even if that
    cycle's symbol consumes nothing. A symbol is decoded when the buffer holds ``L + r`` bits, or all
    the lane's bits are in (a window with missing bits read as zero still gives the right length
    whenever that length fits).
    Symbol lookup (index arithmetic, the symbol memory read) and value composition run in two
    following pipeline stages that never stall; a 4-entry output queue with credits (a symbol is
    decoded only if the queue has room for it and everything in flight) keeps the consumer's ``ready``
    out of the loop.

    What bounds the clock: on the iCE40UP5K the loop is still the longest path (place-and-route
    log): the L-bit compare's carry chain, then the one-hot and three LUT levels of multiplexer, in
    parallel with the staged word's placement (a 16:1 selection by ``fill``) feeding the same
    multiplexer. Both sides are about as long; going further needs a loop of two cycles: that is
    :class:`~hw.huffman.lane_cslow.CSlowLaneDecoder` (``HuffmanDecoder(contexts=2)``), one lane
    decoder serving two format lanes alternately.

    The algorithm's parts that the two-context lane shares are functions of
    :mod:`hw.huffman.lane_step`; ``elaborate`` runs in sections (registers, output, intake,
    decode, stage 1, lookup, block control).

    Table selection follows the spec: the lane keeps its table or moves to the next one (waiting until
    the loader has completed it, ``i_count``); ``o_tab`` tells the loader which table the lane uses.

    Errors (``o_err_*`` pulses; the block's last value carries ``err``): invalid code, code past the
    lane's bit length (truncated: that symbol leaves as 0), bit length not used up (mismatch), payload
    CRC. After an invalid or truncated code the lane outputs zeros for the rest of the block at one
    per cycle and discards the rest of its words, so it never waits on anything but its own ``M``
    words and the consumer.

    Latency: 3 cycles from decode to ``o_sym``. Block switch: about 6 idle cycles (the last value is
    held until the lane's words are all in and its CRC is checked, then the next descriptor loads).

    Parameters
    ----------
    max_len : int
        L, 8 to 16.
    raw_bits : int
        R, the raw field width per symbol (a block's ``r`` is 0 or R), 0 to 8; output values are
        ``8 + R`` bits wide.

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
    TypeError
        If ``escape`` is not a bool.
    """

    def __init__(self, max_len=16, raw_bits=8, escape=False):
        params = lane_step.lane_parameters(max_len, raw_bits, escape)
        self._L, self._R, self._escape, self._E, self._B = params
        super().__init__(lane_members(self._L, self._R, escape=self._escape))

    def elaborate(self, platform):
        return elaborate_sections(Module(), self._registers, self._output, self._intake, self._decode,
                                  self._stage1, self._lookup, self._block_control)

    def _registers(self, m, ns):
        """The symbol memory, the block registers (``ns.st``), the bank's code ends (``ns.lim``)."""
        L = self._L
        ns.rport = symbol_memory(m, self)
        ns.st = st = SimpleNamespace(**{n: Signal(s, name=n)
                                        for n, s in lane_step.block_registers(self._B).items()})
        ns.final_err = Signal(name="final_err")
        ns.released = Signal(name="released")
        # The bank's limits (code ends, unshifted: see the table loader), straight from the loader's
        # registers through a 2:1 bank mux (the compare is not the longest path; no per-lane copy)
        ns.lim = lim = [None] + [Signal(ln + 1, name=f"lim{ln}") for ln in range(1, L + 1)]
        for ln in range(1, L + 1):
            m.d.comb += lim[ln].eq(Mux(st.bank, self.i_limit[1][ln][:ln + 1], self.i_limit[0][ln][:ln + 1]))

    def _output(self, m, ns):
        """Output side: two pipeline stages that never stall, then a small queue. A symbol is only
        decoded when the queue has room for it and everything in flight (credits), so the
        consumer's ready never reaches the decode loop."""
        L, R, E = self._L, self._R, self._E
        item_layout = lane_output_layout(R)
        queue = SyncFIFO(width=item_layout.size, depth=_QDEPTH)
        m.submodules.queue = queue
        s1_valid = Signal()
        esc_fields = {"esc": 1} if E else {}
        s1 = Signal(data.StructLayout({
            "win": L + E + R, "onehot": L + 1, "mode": 2, "r": 4, "ebits": 4, "bank": 1, "zero": 1,
            "dec": 1, "first": 1, "last": 1, **esc_fields}))
        s2_valid = Signal()
        s2 = Signal(data.StructLayout({
            "raw": 8 if R == 0 else R, "mode": 2, "r": 4, "ebits": 4, "zero": 1, "first": 1, "last": 1,
            **({"esc": 1, "esym": 8} if E else {})}))
        head = lane_step.hold_last(m, queue, self.o_sym, ns.released, ns.final_err, item_layout)
        out_take = self.o_sym.valid & self.o_sym.ready
        # credits: values in the queue or in flight in the two stages, as a register (so "room for
        # one more" is a flip-flop where the loop reads it)
        inflight = Signal(range(_QDEPTH + 1))
        space = Signal()
        m.d.comb += space.eq(inflight < _QDEPTH)
        ns.keep(locals(), "item_layout queue s1_valid s1 s2_valid s2 head out_take inflight space")

    def _intake(self, m, ns):
        """Word intake. A taken word waits one cycle in a staging register (``stage``) and enters the
        buffer's multiplexer from there: the input handshake (FIFO valid, counters, room) stays off
        the loop, whose data side starts at registers (staged word, fill). The word goes in behind
        the valid bits (``fill``); a word is taken only when it will fit even if the symbol of this
        cycle consumes nothing."""
        B, W, st = self._B, spec.WORD, ns.st
        running = Signal()
        pop = Signal()
        pop_buf = Signal()
        room = Signal()
        m.d.comb += [
            room.eq(lane_step.word_room(st.staged, st.fill, B)),
            # once the block's n symbols are decoded, the rest of the region (a bit length longer
            # than the code: count mismatch) only goes through the CRC, never into the full buffer
            pop.eq(running & self.i_words.valid & st.words_nz
                   & (st.zeroing | ~st.own_nz | ~st.nleft_nz | room)),
            pop_buf.eq(pop & ~st.zeroing & st.own_nz & st.nleft_nz),
            self.i_words.ready.eq(pop),
        ]
        m.d.sync += [st.stage.eq(self.i_words.payload[:W]), st.staged.eq(pop_buf)]
        placed = Signal(B)
        m.d.comb += placed.eq(Mux(st.staged, (st.stage << (B - W)) >> st.fill, 0))
        buf_m = Signal(B)
        m.d.comb += buf_m.eq(st.buf | placed)
        ns.keep(locals(), "running pop buf_m")

    def _decode(self, m, ns):
        """The decode loop: compare, one-hot length, one-hot shift. The only loop-carried path is
        window -> L parallel compares -> the buffer and fill multiplexers. Everything else about the
        symbol (bit-length checks, counts) happens a cycle later in stage 1, from the registered
        one-hot length."""
        L, R, E, B, W, st = self._L, self._R, self._E, self._B, spec.WORD, ns.st
        win = st.buf[B - L:]
        # the escape code (the last code of its length: no decoded length needed) is a masked
        # compare beside the length compares; it adds ESCAPE_BITS to the shift
        esc_hit = Signal()
        esc = None
        if E:
            esc = (esc_hit, self.i_esc_on.bit_select(st.bank, 1),
                   Mux(st.bank, self.i_esc_mask[1], self.i_esc_mask[0]),
                   Mux(st.bank, self.i_esc_code[1], self.i_esc_code[0]))
        onehot, invalid = lane_step.match_code(m, win, ns.lim, st.raw_mode, L, esc)

        # A symbol is decoded only when the window holds L + r valid bits (or the lane's bits are all
        # in): a condition on registers alone, so it runs beside the compare, not after it.
        # (E: room for an escaped symbol, known only from the compare)
        r_bits = Mux(st.rsel, R, 0)
        ready = Signal()
        m.d.comb += ready.eq(lane_step.holds_symbol(st.fill, st.rsel, L + E, R) | lane_step.all_bits_in(st))
        can, emit_zero = lane_step.decode_turn(st, ns.running, ns.space)
        step = Signal()                # the buffer shifts (a fire, or an error that ends decoding)
        m.d.comb += step.eq(can & ready)
        emit = Signal()
        m.d.comb += emit.eq(step & ~invalid)

        def shift_select(hold, cands):
            """``cands[l]`` for the decoded length ``l`` when the buffer steps (``cands[0]`` in raw
            mode, 0 for an invalid code), else ``hold``: a balanced one-hot AND-OR."""
            terms = [Mux(~step, hold, 0)]
            for ln in range(L + 1):
                terms.append(Mux(step & onehot[ln], cands[ln], 0))
            return tree(terms, lambda a, b: a | b)

        # next buffer: the raw field's constant shift first (a 2:1 mux, r being 0 or R), then the
        # decoded length's shift
        buf_m = ns.buf_m
        buf_x = Signal(B)
        m.d.comb += buf_x.eq(Mux(st.rsel, buf_m << R, buf_m) if R else buf_m)
        if E:
            buf_e = Signal(B)
            m.d.comb += buf_e.eq(Mux(esc_hit, buf_x << E, buf_x))
            buf_x = buf_e
        m.d.sync += st.buf.eq(shift_select(buf_m, [(buf_x << ln)[:B] for ln in range(L + 1)]))

        m.d.sync += lane_step.clear_error_pulses(self)
        fill_p = Signal(range(B + W + 1))
        m.d.comb += fill_p.eq(st.fill + Mux(st.staged, W, 0))
        if E:
            fill_e = Signal(range(B + W + 1))
            m.d.comb += fill_e.eq(Mux(esc_hit, fill_p - E, fill_p))
        else:
            fill_e = fill_p
        fill_c = [Signal(range(B + W + 1), name=f"fill_c{ln}") for ln in range(L + 1)]
        for ln in range(L + 1):
            m.d.comb += fill_c[ln].eq(fill_e - Mux(st.rsel, ln + R, ln))
        fill_n = shift_select(fill_p, fill_c)
        m.d.sync += st.fill.eq(fill_n[:len(st.fill)])
        lane_step.account_word(m, st, st, ns.pop, self.i_words.payload)
        lane_step.count_symbol(m, st, st, emit | emit_zero)
        ns.keep(locals(), "esc_hit onehot invalid r_bits step emit emit_zero")

    def _stage1(self, m, ns):
        """Stage 1: the registered window and length; the symbol's bit-length checks. Does the
        symbol end inside the lane's declared bit length (within), exactly at it (exact)? Per
        length from the registered count (its low 6 bits and "64 or more"), then one AND-OR.
        ``late``: a symbol of this block ran past the bit length; the loop may have decoded one more
        symbol meanwhile: it leaves as 0 and raises no error (as in the golden model)."""
        L, R, E, B, st, s1 = self._L, self._R, self._E, self._B, ns.st, ns.s1
        emit, emit_zero = ns.emit, ns.emit_zero
        lane_step.load_stage1(m, s1, st, valid=ns.s1_valid.eq(emit | emit_zero), win=st.buf[B - L - E - R:],
                              onehot=ns.onehot, raw=s1.r.eq(ns.r_bits), zero=emit_zero, dec=emit,
                              esc=s1.esc.eq(ns.esc_hit) if E else None)
        oh = s1.onehot
        hi_nz = st.bits_left[6:].any()
        lo = st.bits_left[:6]
        within = Signal()
        exact = Signal()
        cons = Signal(range(L + E + R + 1))
        by_len = partial(lane_step.bit_counts, max_len=L, raw_bits=R, esc_bits=E, rsel=s1.r != 0,
                         esc=s1.esc if E else None)
        m.d.comb += [
            within.eq(onehot_mux(oh, [hi_nz | v
                                                for v in by_len(lambda k: lane_step.at_least(lo, k))])),
            exact.eq(onehot_mux(oh, [~hi_nz & v for v in by_len(lambda k: lo == k)])),
            cons.eq(onehot_mux(oh, by_len(lambda k: k))),
        ]
        checked = ns.s1_valid & s1.dec & ~st.late
        trunc = Signal()
        fire = Signal()
        m.d.comb += [trunc.eq(checked & ~within), fire.eq(checked & within), self.o_fire.eq(fire)]
        lane_step.flag_errors(m, st, st, self, fire=fire, trunc=trunc, mismatch=fire & s1.last & ~exact,
                    invalid=ns.step & ns.invalid, cons=cons)
        ns.s1_zero = s1.zero | st.late | ~within
        m.d.sync += ns.inflight.eq(ns.inflight + (emit | emit_zero) - ns.out_take)

    def _lookup(self, m, ns):
        """Symbol index (code + the length's offset) and raw field, the symbol memory read; stage 2
        composes the value into the queue (r is 0 or R here: constant shifts)."""
        L, R, E, s1, s2 = self._L, self._R, self._E, ns.s1, ns.s2
        index = Signal(9)
        code = Signal(L)
        offset = Signal(9)
        rawtop = Signal(max(R, 1))
        oh = s1.onehot
        m.d.comb += [
            code.eq(lane_step.code_bits(oh, s1.win, L, E, R)),
            offset.eq(onehot_mux(oh, [Const(0, 9)] + [
                Mux(s1.bank, self.i_offset[1][ln], self.i_offset[0][ln]) for ln in range(1, L + 1)])),
        ]
        if R:
            # the raw field follows the code (and the escaped symbol's bits)
            m.d.comb += rawtop.eq(lane_step.raw_field(oh, s1.win, L, E, R, s1.esc if E else None))
        if E:
            esym = Signal(8)
            m.d.comb += esym.eq(lane_step.escaped_symbol(oh, s1.win, L, E, R))
            m.d.sync += [s2.esc.eq(s1.esc), s2.esym.eq(esym)]
        m.d.comb += index.eq(code + offset)
        m.d.comb += [ns.rport.addr.eq(Cat(index[:8], s1.bank)), ns.rport.en.eq(1)]
        m.d.sync += [
            ns.s2_valid.eq(ns.s1_valid),
            s2.raw.eq(rawtop if R else 0),
            s2.mode.eq(s1.mode), s2.r.eq(s1.r), s2.ebits.eq(s1.ebits), s2.zero.eq(ns.s1_zero),
            s2.first.eq(s1.first), s2.last.eq(s1.last),
        ]
        sym = Mux(s2.esc, s2.esym, ns.rport.data) if E else ns.rport.data
        value = place_symbol(sym, *compose_parts(m, s2.r == 0, s2.mode, s2.raw, s2.ebits, R), R)
        item = Signal(ns.item_layout)
        m.d.comb += [
            item.value.eq(Mux(s2.zero, 0, value)), item.first.eq(s2.first), item.last.eq(s2.last),
            ns.queue.w_data.eq(item), ns.queue.w_en.eq(ns.s2_valid),
        ]

    def _block_control(self, m, ns):
        """Block control (:func:`~hw.huffman.lane_step.block_control`): load a descriptor, wait for
        the block's table, run, check the CRC and release the block's last value."""
        st = ns.st
        next_tab, loaded = lane_step.next_table_loaded(m, self.i_count, self.o_tab)

        def load(desc, own):
            m.d.sync += lane_step.load_descriptor(
                st, desc, nonzero=(desc.n != 0, desc.m != 0, own != 0), own=own,
                after_staged=[ns.released.eq(0)])

        lane_step.block_control(m, self, st, load=load, next_tab=next_tab, loaded=loaded,
                                running=ns.running, stage1_valid=ns.s1_valid, final_err=ns.final_err,
                                released=ns.released, out_last=ns.out_take & ns.head.last)
