"""The compact ("table") decode lane with two contexts (C-slow): the first-level table lookup of
:class:`~hw.huffman.lane_table.TableLaneDecoder` in a decode loop cut in two at the table's block
RAM, serving two format lanes alternately (``HuffmanDecoder(impl="table", contexts=2)``)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib.wiring import In

from ..lib.logic import or_tree
from ..lib.sections import elaborate_sections
from . import lane_step, spec
from .lane_cslow import _QDEPTH, CSlowLaneDecoder
from .lane_table import TableFiller


def wide_table_bits(max_len):
    """Bits ``k`` that index this lane's first-level table: ``min(9, L - 1)``. Its entries are 4
    bits (the length alone), so both banks of ``2**9`` entries are one 1024 x 4 block RAM: one
    long length fewer to compare than :func:`~hw.huffman.lane_table.table_bits` (8), in the same
    block RAM."""
    return min(9, max_len - 1)

__all__ = ["TableCSlowLaneDecoder"]


class TableCSlowLaneDecoder(CSlowLaneDecoder):
    """Decodes two format lanes (contexts 0 and 1) of each block, one symbol per cycle in total, with
    the first-level lookup table of :class:`~hw.huffman.lane_table.TableLaneDecoder`.

    The per-context registers, the word intake, stage 1 (bit-length checks, errors), the symbol
    lookup (code + the length's offset from a block RAM of the lane's own), the output queues and
    the block control are :class:`~hw.huffman.lane_cslow.CSlowLaneDecoder`'s: every per-context
    register is a rotating pair, context ``ph`` is current in a cycle, and a context decodes every
    second cycle. What differs is the decode loop, cut at the table's block RAM:

    * stage A (reads ``x_n``: the context current in the next cycle): the window, the ``L`` bits
      below the fill level of the buffer and the ``E + R`` bits above it (one shifter by
      ``fill``), goes to the window register ``win_q`` and, in the same cycle, the top ``k`` bits
      of its code part with the bank to the table's read address; "may decode" (``step_q``) and
      the fill after the staged word less the block's raw bits (and less the escaped symbol's
      bits: ``fr_q``, ``fre_q``) are registered;
    * stage B (reads ``x``): the table entry (the read data) or the first long length whose code
      end is above the window (``L - k`` compares against registered code ends), the escape's
      masked compare; the fill after the step is one of candidates computed beside them (per
      length and escape choice, clamped at 0: the lane's last bits), picked by one AND-OR; the
      staged word enters the buffer at the bottom (a 2:1 multiplexer per bit).

    The bits above the fill level are the previous symbol's escaped symbol and raw field: stage 1
    of a symbol runs in the stage B of the context's next window, cut at the fill after that
    symbol, so they are read there at fixed places (``_raw_field``, ``_escaped_symbol``).

    The block RAM's read latency is the cycle between a context's stage A and stage B, which the
    other context's stage B fills. A step's outcome (length, invalid code, escape) is known in
    stage B, where the base class has its stage-A registers (``oh_q``, ``esc_q``, ``invalid_q``,
    ``emit``, ``out_q``): here they are combinational and registered in stage 1's registers.
    An invalid code is "no code end above the window" (``~lt[L]``): a window with a code of at most
    ``k`` bits is below every code end of length L.

    Tables: the filler (:class:`~hw.huffman.lane_table.TableFiller`) builds each table's
    first-level table after the loader (:class:`~hw.huffman.lane_table.CompactTableLoader`)
    counted it; a context takes a table when it is built (``o_filled``).

    Parameters and members: as :class:`~hw.huffman.lane_cslow.CSlowLaneDecoder` (the table bus of
    :class:`~hw.huffman.lane_table.CompactTableLoader`, with its offset write port).
    """

    # a table's bank (symbols, offsets, first-level entries) is written only while no context
    # decodes with it: a read of it then is never used, so no read/write collision logic
    _rw_check = False
    _early_credit = True

    def __init__(self, max_len=12, raw_bits=8, escape=False):
        super().__init__(max_len=max_len, raw_bits=raw_bits, escape=escape)
        self._K = wide_table_bits(self._L)
        # the window shifter selects among fill = 0 .. B: a buffer of 2**n - 1 bits (if that still
        # leaves 32 bits of slack beside a symbol) takes a select bit, a multiplexer level, less
        top = (1 << self._B.bit_length() - 1) - 1
        if top >= self._S + 32:
            self._B = top

    def elaborate(self, platform):
        return elaborate_sections(Module(), self._registers, self._filler, self._output, self._limits,
                                  self._stage_a, self._stage_b, self._intake, self._stage1, self._lookup,
                                  self._block_control)

    def _filler(self, m, ns):
        """The first-level table builder, fed by the loader's bus."""
        m.submodules.filler = filler = TableFiller(self._L, self._escape, index=False, rw_check=False,
                                                     bits=self._K)
        for name, port in filler.signature.members.items():
            if port.flow is In and name != "i_raddr":
                m.d.comb += getattr(filler, name).eq(getattr(self, name))
        ns.filler = filler

    def _limits(self, m, ns):
        """The code ends of the long lengths ``k+1 .. L`` and the escape code, for stage B: from the
        next context's bank (``bank_n``), registered, so the compares start at flip-flops. A turn
        late only after a table switch, and that turn is LIMITS, which decodes nothing."""
        L, K, bank = self._L, self._K, ns.nxt.bank
        lim = {ln: Signal(ln + 1, name=f"lim{ln}") for ln in range(K + 1, L + 1)}
        for ln in lim:
            m.d.sync += lim[ln].eq(Mux(bank, self.i_limit[1][ln][:ln + 1], self.i_limit[0][ln][:ln + 1]))
        ns.esc = None
        if self._E:
            esc_on, esc_mask, esc_code = Signal(), Signal(L), Signal(L)
            m.d.sync += [esc_on.eq(self.i_esc_on.bit_select(bank, 1)),
                         esc_mask.eq(Mux(bank, ns.filler.o_esc_mask[1], ns.filler.o_esc_mask[0])),
                         esc_code.eq(Mux(bank, ns.filler.o_esc_code[1], ns.filler.o_esc_code[0]))]
            ns.esc = (esc_on, esc_mask, esc_code)
        ns.lim = lim

    def _stage_a(self, m, ns):
        """Stage A, from the next context's registers: the window into ``win_q`` and the table's
        read address; the step decision and the fill's operands, registered. ``run_q`` and
        ``space_q`` as in the base class."""
        L, R, E, K, W, nxt = self._L, self._R, self._E, self._K, spec.WORD, ns.nxt
        WX = L + E + R
        run_q = Signal()
        run_next = Signal()
        space_q = Signal()
        m.d.sync += [run_q.eq(run_next),
                     space_q.eq(Mux(ns.ph, ns.inflight_next[1], ns.inflight_next[0]) < _QDEPTH)]
        # the window: the L bits below the fill level (missing bits, once all are in, read 0) and
        # the E + R bits above it, the previous symbol's escaped symbol and raw field (stage 1 of
        # that symbol is in this window's stage B: see ``_raw_field``)
        nwin = Signal(WX)
        m.d.comb += nwin.eq((Cat(Const(0, L), nxt.buf, Const(0, E + R)) >> nxt.fill)[:WX])
        win_q = Signal(WX)
        m.d.sync += win_q.eq(nwin)
        m.d.comb += ns.filler.i_raddr.eq(Cat(nwin[L - K:L], nxt.bank))
        ready_a = lane_step.holds_symbol(nxt.fill, nxt.rsel, L + E, R) | lane_step.all_bits_in(nxt)
        can_a, emit_zero_a = lane_step.decode_turn(nxt, run_q, space_q)
        step_q = Signal()
        emit_zero_q = Signal()
        fill_p = nxt.fill + Mux(nxt.staged, W, 0)
        fill_p_q = Signal(range(self._B + W + 1))
        # the fill less the block's raw bits (fr_q) and less the escaped symbol's too (fre_q): stage
        # B subtracts only the code length
        fr_q = Signal(signed(len(fill_p_q) + 1))
        fre_q = Signal(signed(len(fill_p_q) + 1))
        fr_a = fill_p - Mux(nxt.rsel, R, 0)
        m.d.sync += [step_q.eq(can_a & ready_a), emit_zero_q.eq(emit_zero_a), fill_p_q.eq(fill_p),
                     fr_q.eq(fr_a), fre_q.eq(fr_a - E)]
        ns.keep(locals(), "run_q run_next win_q step_q emit_zero_q fill_p_q fr_q fre_q")

    def _stage_b(self, m, ns):
        """Stage B (the current context): the code length from the table entry or the long
        compares, the fill after the step, the staged word into the buffer."""
        L, E, K, B, W, cur, nxt = self._L, self._E, self._K, self._B, spec.WORD, ns.cur, ns.nxt
        win, entry = ns.win_q[:L], ns.filler.o_rdata
        lt = {K: Const(0, 1)}
        for ln in range(K + 1, L + 1):
            lt[ln] = Signal(name=f"lt{ln}")
            m.d.comb += lt[ln].eq(win[L - ln:] < ns.lim[ln])
        long_len = Signal(5)           # the first long length whose code end is above the window
        m.d.comb += long_len.eq(or_tree([Mux(lt[ln] & ~lt[ln - 1], ln, 0) for ln in range(K + 1, L + 1)]))
        length = Signal(5)
        m.d.comb += length.eq(Mux(cur.raw_mode, 0, Mux(entry.length != 0, entry.length, long_len)))
        invalid = Signal()
        m.d.comb += invalid.eq(~cur.raw_mode & ~lt[L])
        esc_hit = Signal()
        if E:
            esc_on, mask, code = ns.esc
            m.d.comb += esc_hit.eq(~cur.raw_mode & esc_on & ((win & mask) == code))
        emit = ns.step_q & ~invalid
        m.d.comb += [ns.emit.eq(emit), ns.out_q.eq(emit | ns.emit_zero_q)]
        # the queue credit: taken by every turn that may emit (registers only), the turn of an
        # invalid code's gives it back a cycle later (so the long compare does not reach the
        # credit count and "space" of the next turn)
        m.d.comb += ns.reserve.eq(ns.step_q | ns.emit_zero_q)
        for k in range(2):
            m.d.sync += ns.unreserve[k].eq(ns.step_q & invalid & ~ns.emit_zero_q & (ns.ph == k))
        # the fill after the step per candidate length and escape, each from registers or the
        # table's read data, beside the compares: the table's length (short codes), each long length
        # and length 0 (raw mode); one AND-OR picks it (an invalid code picks none: the block is
        # zeroed, its words are dropped, the fill is not read again)
        def after(v):                  # clamped at 0: the missing bits of the lane's last symbol
            return Mux(v < 0, 0, v)[:len(nxt.fill)]
        short = Signal()
        m.d.comb += short.eq(~cur.raw_mode & (entry.length != 0))
        picks = [(cur.raw_mode, after(ns.fr_q))]
        for hit, base in ((~esc_hit, ns.fr_q), (esc_hit, ns.fre_q)) if E else ((Const(1, 1), ns.fr_q),):
            picks.append((short & hit, after(base - entry.length)))
            picks += [(~cur.raw_mode & (entry.length == 0) & lt[ln] & ~lt[ln - 1] & hit, after(base - ln))
                      for ln in range(K + 1, L + 1)]
        fill_step = or_tree([Mux(sel, v, 0) for sel, v in picks])
        m.d.sync += [nxt.fill.eq(Mux(ns.step_q, fill_step, ns.fill_p_q)),
                     nxt.buf.eq(Mux(cur.staged, Cat(cur.stage, cur.buf[:B - W]), cur.buf))]
        # what stage 1 and the lookup take from the step (the base class's stage-A registers)
        oh = Signal(L + 1)
        m.d.comb += oh.eq(Mux(emit, Cat(*(length == ln for ln in range(L + 1))), 0))
        ns.oh_q, ns.esc_q, ns.invalid_q, ns.length = oh, ns.step_q & esc_hit, invalid, length

    def _stage1_window(self, ns):
        # the code at the top (the escaped symbol and raw field come from the next window)
        return Cat(Const(0, self._E + self._R), ns.win_q[:self._L])

    def _raw_field(self, m, ns):
        # stage 1 of a symbol is the stage B of the context's next window, which was cut at the
        # fill after the symbol: its raw field is the R bits above that fill
        L = self._L
        return ns.win_q[L:L + self._R]

    def _escaped_symbol(self, m, ns):
        # the E bits above the raw field, if the block has one
        L, R, E = self._L, self._R, self._E
        return Mux(ns.cur.s1.rsel, ns.win_q[L + R:L + R + E], ns.win_q[L:L + E])

    def _offset_length(self, ns):
        return ns.length[:4]

    def _tables_in(self, ns):
        return ns.filler.o_filled
