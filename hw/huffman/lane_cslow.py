"""A two-context (C-slow) lane decoder: one hardware decode loop serving two format lanes alternately,
with the loop cut into two register stages, so it delivers one symbol per cycle at about twice the
clock of :class:`~hw.huffman.lane.LaneDecoder`."""

from functools import partial
from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from ..lib.fifo import RegisteredFlagFIFO
from ..lib.logic import onehot_mux, tree
from ..lib.ram import registered_read_port
from ..lib.sections import elaborate_sections
from . import lane_step, spec
from .block_parser import descriptor_layout
from .lane import (
    compose_parts,
    lane_members,
    lane_output_layout,
    place_symbol,
    symbol_memory,
)

__all__ = ["CSlowLaneDecoder"]

# block-control states (an explicit register: it rotates with the other per-context registers)
_IDLE, _TABLE, _LIMITS, _RUN, _FINISH = range(5)
_QDEPTH = 4        # output queue entries per context


class CSlowLaneDecoder(wiring.Component):
    """Decodes two format lanes (contexts 0 and 1) of each block, one symbol per cycle in total.

    The decode of one context is the algorithm of :class:`~hw.huffman.lane.LaneDecoder` (same
    checks, errors, outputs and per-block behaviour; read its docstring; the parts that are not
    retimed are the same functions of :mod:`hw.huffman.lane_step`), C-slowed: every
    per-context register exists twice as a rotating pair (``x``, the current context's value, read
    by the logic; ``x_n``, the other context's value, written by the logic and copied into ``x``
    every cycle), so the contexts alternate cycle by cycle (context ``ph`` is current in a cycle)
    and share all the logic. The second register of each pair is then moved into the middle of the
    decode loop (retiming by hand):

    * stage A (reads ``x_n``, i.e. the context that is current in the *next* cycle): the window
      compare against the L code ends, the one-hot length, the "may decode" condition, and the
      staged word's placement behind the valid bits (a shift by ``fill``), all registered
      (``sel_q``: one-hot shift amount ``l + r``; ``bufm_q``: the buffer with the staged word
      already OR'd in behind the valid bits; ``fill_p_q``; ``ge_q``: per amount, whether the fill
      after the step still holds a symbol, from which stage B registers ``ready``);
    * stage B (reads ``x``): the bit buffer and its fill count shift through one balanced one-hot
      multiplexer over the shift amounts 0 .. L + R (the raw field is part of the amount, so there
      is no separate pre-shift) and are written to ``buf_n`` / ``fill_n``.

    A context therefore decodes a symbol every second cycle, and the lane one per cycle. The
    per-length symbol offsets are not registers here: the lane keeps them in a block RAM of its own
    (written by the table loader at ``bank << 4 | l``, read with the registered one-hot length), whose
    read register stands where the offset multiplexer's register stood (area: the UP5K row is nearly
    full). Things
    that are not one context's state stay single: the symbol memory (shared; its address is
    registered, so its read data meets the context's next turn), the 4-entry output queues and
    their credit counters, ``released`` / ``final_err`` (the consumer takes values at any cycle),
    and the phase bit ``ph``. A context's credit check (``space_q``) is registered from its queue
    count after its own turn (its emission and the consumer's take in that cycle counted; a take
    in the cycle it is read counts at the next turn): conservative, never overfills.

    Members: as :class:`~hw.huffman.lane.LaneDecoder`, with ``i_desc``, ``i_words``, ``o_sym`` and
    ``o_tab`` arrays of two (index = context); ``o_fire`` and the error pulses are shared (one
    context is current per cycle).

    Parameters
    ----------
    max_len : int
        L, 8 to 16.
    raw_bits : int
        R, 0 to 8.
    escape : bool
        Decode escape codes (as :class:`~hw.huffman.lane.LaneDecoder`): the escape code's masked
        compare runs in stage A beside the length compares and adds ESCAPE_BITS to the shift amount
        (amounts 0 .. L + 8 + R).

    Raises
    ------
    ValueError, TypeError
        As :class:`~hw.huffman.lane.LaneDecoder` (the same checks:
        :func:`~hw.huffman.lane_step.lane_parameters`).
    """

    #: Block-RAM read ports with Yosys' read/write collision logic (a subclass that never uses a
    #: read of a bank being written drops it: :func:`~hw.huffman.lane.symbol_memory`).
    _rw_check = True
    #: The output queues' memories in block RAM without collision logic
    #: (:class:`~hw.lib.fifo.RegisteredFlagFIFO` ``bram``); else flip-flops.
    _queue_bram = False
    #: Stage 1's bit-length checks ("within", "exact") as two 6-bit compares of the bits left with
    #: the symbol's bit count in stage 1 (else per-amount constant compares in stage A1, registered).
    _checks_in_stage1 = False
    #: Bits of the lane's table number (``tab``, ``o_tab``): 8, the loader's count (modulo 256).
    #: A subclass may keep fewer: the lanes' tables are at most two behind the loader's count
    #: (the loader overwrites table ``t - 2`` only when every lane is past it) and never ahead of
    #: it, so ``count - tab`` is 1 or 2 and two bits tell the cases apart. ``o_tab`` then carries
    #: the low bits (the others stay 1), and the decoder compares only those.
    table_number_bits = 8
    #: Stage 2 (the value into the context's output queue) in the cycle after stage 1, from the
    #: symbol memory's read data and the stage-2 registers as written (``s2_n``), instead of a
    #: cycle later from their registered copies (``sym_d``, ``s2``).
    _early_stage2 = False

    def __init__(self, max_len=16, raw_bits=8, escape=False):
        params = lane_step.lane_parameters(max_len, raw_bits, escape)
        self._L, self._R, self._escape, self._E, self._B = params
        self._S = self._L + self._E + self._R                  # largest shift amount
        super().__init__(lane_members(self._L, self._R, contexts=2, escape=self._escape))

    def elaborate(self, platform):
        return elaborate_sections(Module(), self._registers, self._output, self._limits, self._stage_a,
                                  self._stage_b, self._intake, self._stage1, self._lookup,
                                  self._block_control)

    def _registers(self, m, ns):
        """The phase ``ph``, the symbol memory and the per-context registers: each a rotating pair
        (``ns.cur.x`` read by the logic; ``ns.nxt.x``, written by the logic, default hold,
        ``nxt.x <= cur.x``; ``cur.x <= nxt.x`` every cycle)."""
        L, R, E, B = self._L, self._R, self._E, self._B
        ph = Signal()                  # the current context
        m.d.sync += ph.eq(~ph)
        rport = symbol_memory(m, self, rw_check=self._rw_check)
        s1_layout = data.StructLayout({
            "valid": 1, "win": L + E + R, "onehot": L + 1, "mode": 2, "rsel": 1, "ebits": 4, "bank": 1,
            "zero": 1, "dec": 1, "first": 1, "last": 1, **({"esc": 1} if E else {})})
        # stage 2 holds the value's parts that do not depend on the symbol (``low``, ``place``: see
        # ``compose_parts``; zero for a value that goes out as 0), so the symbol's read data reaches
        # the queue through one level of AND-OR
        s2_layout = data.StructLayout({
            "valid": 1, "low": spec.value_width(R), "place": 3, "first": 1, "last": 1})
        regs = {"state": (range(5), _IDLE)}
        for name, shape in lane_step.block_registers(B).items():
            regs[name] = (shape, None)
            if name == "has_tab":
                regs["tab"] = (self.table_number_bits, (1 << self.table_number_bits) - 1)
            if name == "fill":
                regs["ready"] = (1, None)          # fill >= L + r (r = R if rsel, else 0)
        regs.update(s1=(s1_layout, None), s2=(s2_layout, None))
        cur, nxt = SimpleNamespace(), SimpleNamespace()
        for name, (shape, init) in regs.items():
            x = Signal(shape, init=init, name=name)
            x_n = Signal(shape, init=init, name=f"{name}_n")
            m.d.sync += [x.eq(x_n), x_n.eq(x)]
            setattr(cur, name, x)
            setattr(nxt, name, x_n)
        tb = self.table_number_bits
        for k in range(2):             # a cycle late (a table number only grows: the loader's
            o_tab = self.o_tab[k] if tb == 8 else self.o_tab[k][:tb]          # permit stays safe)
            m.d.sync += o_tab.eq(Mux(ph == k, cur.tab, nxt.tab))
        ns.keep(locals(), "ph rport cur nxt")

    def _output(self, m, ns):
        """Output side (not rotated: the consumer takes values at any cycle): per context a queue
        whose head is a register, its credit count, ``released`` / ``final_err``."""
        item_layout = lane_output_layout(self._R)
        queues, inflight, released, final_err, take = [], [], [], [], []
        for k in range(2):
            # (head: a register)
            q = RegisteredFlagFIFO(width=item_layout.size, depth=_QDEPTH, bram=self._queue_bram)
            m.submodules[f"queue{k}"] = q
            rel = Signal(name=f"released{k}")
            ferr = Signal(name=f"final_err{k}")
            o = self.o_sym[k]
            head = lane_step.hold_last(m, q, o, rel, ferr, item_layout)
            tk = Signal(name=f"take{k}")
            m.d.comb += tk.eq(o.valid & o.ready)
            with m.If(tk & head.last):
                m.d.sync += rel.eq(0)
            queues.append(q)
            inflight.append(Signal(range(_QDEPTH + 1), name=f"inflight{k}"))
            released.append(rel)
            final_err.append(ferr)
            take.append(tk)

        emit = Signal()                # registered in stage A, below
        out_q = Signal()
        # a queue's count of values in flight after this cycle (emitted, not yet taken)
        inflight_next = [Signal(range(_QDEPTH + 1), name=f"inflight{k}_next") for k in range(2)]
        for k in range(2):
            m.d.comb += inflight_next[k].eq(inflight[k] + (out_q & (ns.ph == k)) - take[k])
        ns.keep(locals(), "item_layout queues inflight released final_err emit out_q inflight_next")

    def _limits(self, m, ns):
        """lim for stage A: the code ends of the next context's bank, registered in the context's
        turn before (from ``bank``, not ``bank_n``: the compares' carry chains start at flip-flops).
        A turn late only after a table switch, and that turn is the LIMITS state, which decodes
        nothing; the loader writes a bank's limits long before it counts the table."""
        L, bank = self._L, ns.cur.bank
        lim = [None] + [Signal(ln + 1, name=f"lim{ln}") for ln in range(1, L + 1)]
        for ln in range(1, L + 1):
            m.d.sync += lim[ln].eq(Mux(bank, self.i_limit[1][ln][:ln + 1], self.i_limit[0][ln][:ln + 1]))
        ns.esc = None
        if self._E:                    # the escape code of the bank, registered the same way
            esc_on = Signal()
            esc_mask = Signal(L)
            esc_code = Signal(L)
            m.d.sync += [esc_on.eq(self.i_esc_on.bit_select(bank, 1)),
                         esc_mask.eq(Mux(bank, self.i_esc_mask[1], self.i_esc_mask[0])),
                         esc_code.eq(Mux(bank, self.i_esc_code[1], self.i_esc_code[0]))]
            ns.esc = (esc_on, esc_mask, esc_code)
        ns.lim = lim

    def _stage_a(self, m, ns):
        """Stage A, from the next context's registers (``nxt``), registered: the window compare,
        the one-hot shift amount, the staged word's placement, the per-amount fill checks.

        "running" and "the queue has room" reach stage A as single flip-flops:
        ``run_q`` is ``state_n == RUN`` (the block-control switch also says, in the context's
        stage B, whether its next state is RUN, ``run_next``, and that is registered);
        ``space_q`` is "the context's queue has room" after its own stage-B cycle (its emission and
        the consumer's take in that cycle counted), registered."""
        L, R, E, B, S, W, nxt = self._L, self._R, self._E, self._B, self._S, spec.WORD, ns.nxt
        run_q = Signal()
        run_next = Signal()
        space_q = Signal()
        m.d.sync += [run_q.eq(run_next),
                     space_q.eq(Mux(ns.ph, ns.inflight_next[1], ns.inflight_next[0]) < _QDEPTH)]
        win = nxt.buf[B - L:]
        esc_a = Signal()               # the window starts with the escape code
        onehot, invalid_a = lane_step.match_code(m, win, ns.lim, nxt.raw_mode, L,
                                       (esc_a, *ns.esc) if E else None)
        # "enough bits for a symbol": ``fill >= L + r`` is a register of its own (``ready_n``),
        # computed in stage B from per-amount compares registered in stage A (``ge_q``), so the step
        # decision starts from flip-flops
        ready_a = Signal()
        m.d.comb += ready_a.eq(nxt.ready | lane_step.all_bits_in(nxt))
        # (emit_zero_a: a zero value goes out)
        can_a, emit_zero_a = lane_step.decode_turn(nxt, run_q, space_q)
        step_a = Signal()
        m.d.comb += step_a.eq(can_a & ready_a)
        sel_a = Signal(S + 1)          # one-hot shift amount l + r (amount 0 also when not stepping)
        for s in range(S + 1):
            terms = []
            for e, hit in ((0, ~esc_a), (E, esc_a)) if E else ((0, None),):
                plain, raw = ~nxt.rsel, nxt.rsel
                if hit is not None:
                    plain, raw = plain & hit, raw & hit
                if e <= s <= L + e:
                    terms.append(plain & onehot[s - e])
                if R and s >= R + e and s - R - e <= L:
                    terms.append(raw & onehot[s - R - e])
            t = tree(terms, lambda a, b: a | b) if terms else Const(0, 1)
            m.d.comb += sel_a[s].eq((step_a & t) | (~step_a if s == 0 else 0))
        # the staged word (zero if none: ``stage_n`` is written 0 then) placed behind the valid bits
        # and OR'd into the buffer here, so stage B's shift starts from one register
        bufm_a = Signal(B)
        m.d.comb += bufm_a.eq(nxt.buf | ((nxt.stage << (B - W)) >> nxt.fill)[:B])
        # per shift amount s: the fill after this step (fill + W if staged, - s) is >= L + r
        ge_a = Signal(S + 1)
        fill_pa = Signal(range(B + W + 1))
        m.d.comb += fill_pa.eq(nxt.fill + Mux(nxt.staged, W, 0))
        for s in range(S + 1):
            m.d.comb += ge_a[s].eq(lane_step.holds_symbol(fill_pa, nxt.rsel, L + E + s, R))
        ge_q = Signal(S + 1)
        m.d.sync += ge_q.eq(ge_a)
        sel_q = Signal(S + 1, init=1)
        oh_q = Signal(L + 1)          # the one-hot code length of a step (0 if none)
        esc_q = Signal()              # the step's code is the escape
        bufm_q = Signal(B)
        fill_p_q = Signal(range(B + W + 1))
        step_q = Signal()
        invalid_q = Signal()
        emit_zero_q = Signal()
        m.d.sync += [
            sel_q.eq(sel_a), oh_q.eq(Mux(step_a, onehot, 0)), bufm_q.eq(bufm_a),
            *([esc_q.eq(step_a & esc_a)] if E else []),
            fill_p_q.eq(fill_pa),
            step_q.eq(step_a), invalid_q.eq(invalid_a),
            emit_zero_q.eq(emit_zero_a),
        ]
        ns.keep(locals(), "run_q run_next step_a invalid_a emit_zero_a ge_q sel_q oh_q esc_q bufm_q "
                          "fill_p_q step_q invalid_q emit_zero_q")

    def _stage_b(self, m, ns):
        """Stage B (the current context): shift buffer and fill by the registered amount."""
        B, S, W, nxt, sel_q = self._B, self._S, spec.WORD, ns.nxt, ns.sel_q
        # ``emit`` (= step & ~invalid) and "a value goes out" (emit | emit_zero) as registers of
        # their own, computed in stage A: the output credit counters and the rotating counters
        # start at a flip-flop
        m.d.sync += [ns.emit.eq(ns.step_a & ~ns.invalid_a),
                     ns.out_q.eq((ns.step_a & ~ns.invalid_a) | ns.emit_zero_a)]
        m.d.sync += nxt.buf.eq(tree([Mux(sel_q[s], (ns.bufm_q << s)[:B], 0) for s in range(S + 1)],
                                    lambda a, b: a | b))
        m.d.sync += nxt.ready.eq(onehot_mux(sel_q, [ns.ge_q[s] for s in range(S + 1)]))
        # fill: one subtraction of the amount (binary, OR-encoded from the one-hot); no amount (an
        # invalid code) empties the buffer, as the one-cycle lane does
        amount = Signal(range(S + 1))
        m.d.comb += amount.eq(onehot_mux(sel_q, [Const(s, range(S + 1)) for s in range(S + 1)]))
        fill_next = Signal(range(B + W + 1))
        m.d.comb += fill_next.eq(Mux(sel_q.any(), ns.fill_p_q - amount, 0))
        m.d.sync += nxt.fill.eq(fill_next[:len(nxt.fill)])

    def _intake(self, m, ns):
        """Word intake (the current context's FIFO). The next context's FIFO head, registered in
        stage A (the phase multiplexer is then not in front of the CRC and the staged word). It is
        still the head in stage B: only this context's turn pops its FIFO, and a stream's payload
        holds while it is valid and not taken (a word that arrives meanwhile waits a turn)."""
        B, W, ph, cur, nxt = self._B, spec.WORD, ns.ph, ns.cur, ns.nxt
        words = Signal(W + 1)
        words_valid = Signal()
        m.d.sync += [words.eq(Mux(ph, self.i_words[0].payload, self.i_words[1].payload)),
                     words_valid.eq(Mux(ph, self.i_words[0].valid, self.i_words[1].valid))]
        # whether a word may be taken, from the next context's registers (stage A), registered
        pop_ok_q = Signal()
        buf_ok_q = Signal()
        room_a = lane_step.word_room(nxt.staged, nxt.fill, B)
        m.d.sync += [
            pop_ok_q.eq(ns.run_q & nxt.words_nz & (nxt.zeroing | ~nxt.own_nz | ~nxt.nleft_nz | room_a)),
            buf_ok_q.eq(~nxt.zeroing & nxt.own_nz & nxt.nleft_nz),
        ]
        pop = Signal()
        pop_buf = Signal()
        m.d.comb += [
            pop.eq(pop_ok_q & words_valid),
            pop_buf.eq(pop & buf_ok_q),
            self.i_words[0].ready.eq(pop & ~ph),
            self.i_words[1].ready.eq(pop & ph),
        ]
        m.d.sync += [nxt.stage.eq(Mux(pop_buf, words[:W], 0)), nxt.staged.eq(pop_buf)]
        ns.keep(locals(), "words pop_buf")
        m.d.sync += lane_step.clear_error_pulses(self)
        lane_step.account_word(m, cur, nxt, pop, words)
        lane_step.count_symbol(m, cur, nxt, ns.out_q)

    def _stage1_window(self, ns):
        """The current context's ``L + E + R``-bit window in stage B (the top of its buffer)."""
        B, L, E, R = self._B, self._L, self._E, self._R
        return ns.cur.buf[B - L - E - R:]

    def _offset_length(self, ns):
        """The code length (4 bits) that addresses the offsets' block RAM in stage B."""
        return onehot_mux(ns.oh_q, [Const(ln, 4) for ln in range(self._L + 1)])

    def _raw_field(self, m, ns):
        """The symbol's R raw bits in stage 1 (a register): they follow the code (after the escaped
        symbol's bits for an escape), cut from the window in stage A1."""
        L, R, E, s1_n = self._L, self._R, self._E, ns.nxt.s1
        rawtop_q = Signal(R)
        m.d.sync += rawtop_q.eq(lane_step.raw_field(s1_n.onehot, s1_n.win, L, E, R, s1_n.esc if E else None))
        return rawtop_q

    def _escaped_symbol(self, m, ns):
        """An escape's 8 symbol bits in stage 1 (a register), cut from the window in stage A1."""
        L, R, E, s1_n = self._L, self._R, self._E, ns.nxt.s1
        esym_q = Signal(8)
        m.d.sync += esym_q.eq(lane_step.escaped_symbol(s1_n.onehot, s1_n.win, L, E, R))
        return esym_q

    def _tables_in(self, ns):
        """Tables ready for decoding, modulo 256 (the loader's count)."""
        return self.i_count

    def _tables_ok(self, ns):
        """Per bank, the table in it passed its checks (the loader's verdict)."""
        return self.i_ok

    def _stage1(self, m, ns):
        """Stage 1 (rotating): the registered window and length; the bit-length checks. The one-hot
        is over shift amounts s = l + r (r = R when s1.rsel); within / exact / the consumed count
        per amount are the one-cycle lane's checks. Stage A1: what stage 1 needs from the one-hot
        amount (bit-length checks, the code, its offset, the raw field) is computed from the next
        context's registers (``s1_n``, ``bits_left_n``) and registered, so stage 1 starts from
        flip-flops."""
        L, R, E, S, cur, nxt = self._L, self._R, self._E, self._S, ns.cur, ns.nxt
        s1, s1_n = cur.s1, nxt.s1
        lane_step.load_stage1(m, s1_n, cur, valid=s1_n.valid.eq(ns.out_q), win=self._stage1_window(ns),
                              onehot=ns.oh_q, raw=s1_n.rsel.eq(cur.rsel), zero=ns.emit_zero_q, dec=ns.emit,
                              esc=s1_n.esc.eq(ns.esc_q) if E else None)
        oh = s1_n.onehot
        hi_nz = nxt.bits_left[6:].any()
        lo = nxt.bits_left[:6]
        within_q = Signal()
        exact_terms_q = Signal(L + 1)      # per amount: selected and equal to the bits left
        short_q = Signal()                 # fewer than 64 bits left
        cons_q = Signal(range(S + 1))
        by_len = partial(lane_step.bit_counts, max_len=L, raw_bits=R, esc_bits=E, rsel=s1_n.rsel,
                         esc=s1_n.esc if E else None)
        # (the "64 bits or more left" term outside the one-hot multiplexer: fewer levels)
        late = self._checks_in_stage1
        m.d.sync += [
            *([] if late else [
                within_q.eq((hi_nz & oh.any())
                            | onehot_mux(oh, by_len(lambda k: lane_step.at_least(lo, k)))),
                exact_terms_q.eq(Cat(*(oh[ln] & v for ln, v in enumerate(by_len(lambda k: lo == k))))),
            ]),
            short_q.eq(~hi_nz),
            cons_q.eq(onehot_mux(oh, by_len(lambda k: k))),
        ]
        early_cmp = late and getattr(self, "_stage1_compare_a1", False)
        if early_cmp:
            # the same two compares in stage A1, registered: the bits left read there as the next
            # context's are what stage 1 reads as ``cur`` (``lo_1`` below), and the count is
            # ``cons_q``'s input, so stage 1 starts the checks from two flip-flops
            cons_a = onehot_mux(oh, by_len(lambda k: k))
            ge_q, eq_q = Signal(), Signal()
            m.d.sync += [ge_q.eq(lo >= cons_a), eq_q.eq(lo == cons_a)]
            m.d.comb += within_q.eq(s1.dec & (~short_q | ge_q))
        elif late:
            # stage 1 compares the current context's bits left (the register stage A1 read as the
            # next context's: ``cur.x`` is ``nxt.x`` of a cycle ago) with the symbol's bit count
            # ``cons_q`` (0 without a decoded symbol, ``s1.dec`` low: then not within, as above)
            lo_1 = cur.bits_left[:6]
            m.d.comb += within_q.eq(s1.dec & (~short_q | (lo_1 >= cons_q)))
        checked = s1.valid & s1.dec & ~cur.late
        trunc = Signal()
        fire = Signal()
        m.d.comb += [trunc.eq(checked & ~within_q), fire.eq(checked & within_q)]
        m.d.sync += self.o_fire.eq(fire)          # for the counters: a cycle late
        # "the code ends exactly at the lane's last bit": the one-hot's OR in stage 1, from the
        # registered per-amount terms (the compares and the OR tree are not one path)
        exact_q = Signal()
        m.d.comb += exact_q.eq(short_q & (eq_q if early_cmp else
                                          lo_1 == cons_q if late else exact_terms_q.any()))
        lane_step.flag_errors(m, cur, nxt, self, fire=fire, trunc=trunc, mismatch=fire & s1.last & ~exact_q,
                    invalid=ns.step_q & ns.invalid_q, cons=cons_q)
        ns.s1_zero = s1.zero | cur.late | ~within_q
        for k in range(2):
            m.d.sync += ns.inflight[k].eq(ns.inflight_next[k])

    def _lookup(self, m, ns):
        """The symbol index (code = the window's top l bits, l = s - r, plus the length's offset),
        the raw field, the symbol memory read; stage 2 composes the value into the current
        context's queue.

        The offset of the length: a block RAM (``bank << 4 | l``; l = 0 and lengths never written
        read 0), read in stage B with the one-hot length registered in stage A (``oh_q``), so its
        data is there in stage A1, with the code; the symbol index (code + offset) is registered
        there (``index_q``), the symbol memory read with it in stage 1 and its data registered
        (``sym_d``) for stage 2: both memories' addresses and data are registers (Yosys' read/write
        collision check on an address, and a block RAM's slow output, stand alone)."""
        L, R, E, cur, nxt = self._L, self._R, self._E, ns.cur, ns.nxt
        s1, s1_n, s2, s2_n = cur.s1, nxt.s1, cur.s2, nxt.s2
        oh = s1_n.onehot
        code_a = lane_step.code_bits(oh, s1_n.win, L, E, R)
        # 256 deep: a block RAM, not flip-flops
        offmem = Memory(shape=9, depth=256, init=[], attrs=None if self._rw_check else {"no_rw_check": 1})
        m.submodules.offmem = offmem
        owport = offmem.write_port()
        m.d.comb += [owport.en.eq(self.i_off_en), owport.addr.eq(self.i_off_addr),
                     owport.data.eq(self.i_off_data)]
        if self._rw_check:
            orport = offmem.read_port()
        else:
            orport = registered_read_port(m, offmem, name="offmem_rd")
        m.d.comb += orport.addr.eq(Cat(self._offset_length(ns), cur.bank))
        rawtop_q = self._raw_field(m, ns) if R else None
        index_q = Signal(9)
        m.d.sync += index_q.eq(Cat((code_a + orport.data)[:8], s1_n.bank))
        m.d.comb += [ns.rport.addr.eq(index_q), ns.rport.en.eq(1)]
        early = self._early_stage2
        # the read data, registered: the context's next turn (``_early_stage2``: the read data
        # itself, in the cycle after stage 1)
        sym_d = Signal(8)
        sym_dom = m.d.comb if early else m.d.sync
        if E:
            # an escape's symbol, from the window, along the symbol memory's read (a cycle behind
            # stage A1 like the read address, then in the read data's cycle)
            esym_q = self._escaped_symbol(m, ns)
            esym_d = Signal(8)
            esc_d = Signal()
            m.d.sync += [esym_d.eq(esym_q), esc_d.eq(s1.esc)]
            sym_dom += sym_d.eq(Mux(esc_d, esym_d, ns.rport.data))
        else:
            sym_dom += sym_d.eq(ns.rport.data)
        low, place = compose_parts(m, ~s1.rsel, s1.mode, rawtop_q if R else Const(0, 8), s1.ebits, R)
        m.d.sync += [
            s2_n.valid.eq(s1.valid),
            s2_n.low.eq(Mux(ns.s1_zero, 0, low)), s2_n.place.eq(Mux(ns.s1_zero, 0, place)),
            s2_n.first.eq(s1.first), s2_n.last.eq(s1.last),
        ]
        item = Signal(ns.item_layout)
        # (``_early_stage2``: stage 2 reads the context's stage-2 registers ``s2_n`` in the cycle
        # after its stage 1, the other context's turn)
        s2x, s2ph = (s2_n, ~ns.ph) if early else (s2, ns.ph)
        m.d.comb += [item.value.eq(place_symbol(sym_d, s2x.low, s2x.place, R)), item.first.eq(s2x.first),
                     item.last.eq(s2x.last)]
        for k in range(2):
            m.d.comb += [ns.queues[k].w_data.eq(item), ns.queues[k].w_en.eq(s2x.valid & (s2ph == k))]

    def _crc_equal(self, m, ns):
        """``crc == d.crc`` of the current context in stage B."""
        nxt = ns.nxt
        # the CRC compare, from the next context's registers (stage A), registered: ``crc == d.crc``
        # of the current context, exactly (its registers are the ``*_n`` ones a cycle ago)
        crc_eq_q = Signal()
        m.d.sync += crc_eq_q.eq(nxt.crc == nxt.d.crc)
        return crc_eq_q

    def _block_control(self, m, ns):
        """Block control (the rotating state register). "The next table is loaded", the next
        descriptor's valid and its derived fields: registered from the next context's registers
        and its descriptor FIFO (stage A). The count may have moved on meanwhile (a one-cycle-late
        "loaded" only waits a turn longer); a descriptor seen valid a cycle early is still there
        (only this context reads its FIFO, and a full FIFO is not written), so its fields are read
        from the FIFO in the cycle that takes it."""
        W, ph, cur, nxt = spec.WORD, ns.ph, ns.cur, ns.nxt
        crc_eq_q = self._crc_equal(m, ns)
        next_tab = cur.tab + 1
        loaded_q = Signal()
        tb = self.table_number_bits
        diff = Signal(tb)              # (modulo 2**tb: the next table is loaded if 1 .. 2**(tb-1) - 1)
        m.d.comb += diff.eq(self._tables_in(ns) - (nxt.tab + 1))
        m.d.sync += loaded_q.eq((diff != 0) & ~diff[tb - 1])
        desc = Signal(descriptor_layout)
        desc_valid = Signal()
        own_q = Signal(16)
        desc_nz_q = Signal(3)          # n != 0, m != 0, own != 0
        desc_a = Signal(descriptor_layout)
        m.d.comb += desc_a.eq(Mux(ph, self.i_desc[0].payload, self.i_desc[1].payload))
        own_a = Signal(16)
        m.d.comb += own_a.eq((desc_a.bitlen + W - 1) >> 4)
        m.d.sync += [
            desc_valid.eq(Mux(ph, self.i_desc[0].valid, self.i_desc[1].valid)),
            own_q.eq(own_a), desc_nz_q.eq(Cat(desc_a.n != 0, desc_a.m != 0, desc_a.bitlen != 0)),
        ]
        # (own != 0 as bitlen != 0, not behind the adder: they differ only where the 16-bit word
        # count wraps, bitlen > 16 * 65535, an overrun lane, which decodes nothing: ``skip``)
        # the descriptor itself is read where it stands (the descriptor register of the current
        # context's FIFO; no copy: area)
        m.d.comb += desc.eq(Mux(ph, self.i_desc[1].payload, self.i_desc[0].payload))

        def goto(state, run):
            m.d.sync += nxt.state.eq(state)
            if run:
                m.d.comb += ns.run_next.eq(1)

        with m.Switch(cur.state):
            with m.Case(_IDLE):
                m.d.comb += [self.i_desc[0].ready.eq(desc_valid & ~ph),
                             self.i_desc[1].ready.eq(desc_valid & ph)]
                with m.If(desc_valid):
                    m.d.sync += lane_step.load_descriptor(nxt, desc, nonzero=desc_nz_q, own=own_q,
                                                after_fill=[nxt.ready.eq(0)], after_staged=[nxt.stage.eq(0)])
                    lane_step.start_block(m, cur, nxt, desc, self._tables_ok(ns), cur.tab,
                                          run=lambda: goto(_RUN, True), table=lambda: goto(_TABLE, False))
            with m.Case(_TABLE):
                with m.If(loaded_q):
                    m.d.sync += [*lane_step.take_table(nxt, nxt.tab, next_tab), nxt.state.eq(_LIMITS)]
                    with m.If(~self._tables_ok(ns).bit_select(next_tab[0], 1)):
                        m.d.sync += lane_step.reject_table(nxt)
            with m.Case(_LIMITS):
                goto(_RUN, True)
            with m.Case(_RUN):
                m.d.comb += ns.run_next.eq(1)
                with m.If(~cur.nleft_nz & ~cur.words_nz & ~cur.s1.valid):     # stage 1's checks are in
                    bad_crc = cur.check_crc & ~crc_eq_q
                    m.d.sync += [self.o_err_crc.eq(bad_crc), nxt.state.eq(_FINISH)]
                    m.d.comb += ns.run_next.eq(0)
                    for k in range(2):
                        with m.If(ph == k):
                            m.d.sync += [ns.final_err[k].eq(cur.blk_err | bad_crc), ns.released[k].eq(1)]
            with m.Case(_FINISH):
                # the block's last value has been taken (``released`` clears on that take)
                with m.If(~Mux(ph, ns.released[1], ns.released[0])):
                    m.d.sync += nxt.state.eq(_IDLE)
