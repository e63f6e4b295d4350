"""A two-context (C-slow) lane decoder: one hardware decode loop serving two format lanes alternately,
with the loop cut into two register stages, so it delivers one symbol per cycle at about twice the
clock of :class:`~hw.huffman.lane.LaneDecoder`."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from ..params import check_bool, check_int
from . import spec
from .block_parser import descriptor_layout
from .crc import crc16_next
from .fifo import RegisteredFlagFIFO
from .lane import (
    buffer_bits,
    compose_parts,
    lane_members,
    lane_output_layout,
    place_symbol,
    symbol_memory,
)
from .lane_step import at_least as _at_least
from .lane_step import onehot_mux as _onehot_mux
from .lane_step import tree as _tree

__all__ = ["CSlowLaneDecoder"]

# block-control states (an explicit register: it rotates with the other per-context registers)
_IDLE, _TABLE, _LIMITS, _RUN, _FINISH = range(5)


class CSlowLaneDecoder(wiring.Component):
    """Decodes two format lanes (contexts 0 and 1) of each block, one symbol per cycle in total.

    The decode of one context is the algorithm of :class:`~hw.huffman.lane.LaneDecoder` (same
    checks, errors, outputs and per-block behaviour; read its docstring), C-slowed: every
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
    ValueError
        If ``max_len`` or ``raw_bits`` is out of range.
    """

    def __init__(self, max_len=16, raw_bits=8, escape=False):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        self._R = check_int("raw_bits", raw_bits, 0, 8)
        self._escape = check_bool("escape", escape)
        super().__init__(lane_members(self._L, self._R, contexts=2, escape=self._escape))

    def elaborate(self, platform):
        m = Module()
        L, R, W = self._L, self._R, spec.WORD
        E = spec.ESCAPE_BITS if self._escape else 0     # bits an escape code adds to a symbol
        B = buffer_bits(L, R, self._escape)
        QDEPTH = 4
        S = L + E + R                 # largest shift amount

        def creg(shape, init=None, name=None):
            """A per-context register pair ``(x, x_n)``: logic reads ``x`` and writes ``x_n``
            (default: hold, ``x_n <= x``); ``x <= x_n`` every cycle."""
            cur = Signal(shape, init=init, name=name)
            nxt = Signal(shape, init=init, name=f"{name}_n")
            m.d.sync += [cur.eq(nxt), nxt.eq(cur)]
            return cur, nxt

        ph = Signal()                  # the current context
        m.d.sync += ph.eq(~ph)

        rport = symbol_memory(m, self)

        # ---- per-context state
        state, state_n = creg(range(5), _IDLE, "state")
        d, d_n = creg(descriptor_layout, name="d")
        n_left, n_left_n = creg(16, name="n_left")
        words_left, words_left_n = creg(16, name="words_left")
        own_left, own_left_n = creg(16, name="own_left")
        nleft_nz, nleft_nz_n = creg(1, name="nleft_nz")
        words_nz, words_nz_n = creg(1, name="words_nz")
        own_nz, own_nz_n = creg(1, name="own_nz")
        bits_left, bits_left_n = creg(21, name="bits_left")
        crc, crc_n = creg(16, name="crc")
        check_crc, check_crc_n = creg(1, name="check_crc")
        blk_err, blk_err_n = creg(1, name="blk_err")
        zeroing, zeroing_n = creg(1, name="zeroing")
        is_first, is_first_n = creg(1, name="is_first")
        bank, bank_n = creg(1, name="bank")
        has_tab, has_tab_n = creg(1, name="has_tab")
        tab, tab_n = creg(8, 0xFF, "tab")
        rsel, rsel_n = creg(1, name="rsel")
        raw_mode, raw_mode_n = creg(1, name="raw_mode")
        late, late_n = creg(1, name="late")
        buf, buf_n = creg(B, name="buf")
        fill, fill_n = creg(range(B + 1), name="fill")
        _, ready_n = creg(1, name="ready")      # fill >= L + r (r = R if rsel, else 0)
        stage, stage_n = creg(W, name="stage")
        staged, staged_n = creg(1, name="staged")
        s1_layout = data.StructLayout({
            "valid": 1, "win": L + E + R, "onehot": L + 1, "mode": 2, "rsel": 1, "ebits": 4, "bank": 1,
            "zero": 1, "dec": 1, "first": 1, "last": 1, **({"esc": 1} if E else {})})
        # stage 2 holds the value's parts that do not depend on the symbol (``low``, ``place``: see
        # ``compose_parts``; zero for a value that goes out as 0), so the symbol's read data reaches
        # the queue through one level of AND-OR
        s2_layout = data.StructLayout({
            "valid": 1, "low": spec.value_width(R), "place": 3, "first": 1, "last": 1})
        s1, s1_n = creg(s1_layout, name="s1")
        s2, s2_n = creg(s2_layout, name="s2")

        for k in range(2):             # a cycle late (a table number only grows: the loader's
            m.d.sync += self.o_tab[k].eq(Mux(ph == k, tab, tab_n))     # permit stays safe)

        # ---- output side (not rotated: the consumer takes values at any cycle)
        item_layout = lane_output_layout(R)
        queues, inflight, released, final_err, take = [], [], [], [], []
        for k in range(2):
            q = RegisteredFlagFIFO(width=item_layout.size, depth=QDEPTH)     # head: a register
            m.submodules[f"queue{k}"] = q
            head = item_layout(q.r_data)
            rel = Signal(name=f"released{k}")
            ferr = Signal(name=f"final_err{k}")
            hold = head.last & ~rel
            o = self.o_sym[k]
            m.d.comb += [o.valid.eq(q.r_rdy & ~hold), o.payload.eq(head),
                         o.payload.err.eq(head.last & ferr), q.r_en.eq(o.ready & ~hold)]
            tk = Signal(name=f"take{k}")
            m.d.comb += tk.eq(o.valid & o.ready)
            with m.If(tk & head.last):
                m.d.sync += rel.eq(0)
            queues.append(q)
            inflight.append(Signal(range(QDEPTH + 1), name=f"inflight{k}"))
            released.append(rel)
            final_err.append(ferr)
            take.append(tk)

        emit = Signal()                # registered in stage A, below
        out_q = Signal()
        # a queue's count of values in flight after this cycle (emitted, not yet taken)
        inflight_next = [Signal(range(QDEPTH + 1), name=f"inflight{k}_next") for k in range(2)]
        for k in range(2):
            m.d.comb += inflight_next[k].eq(inflight[k] + (out_q & (ph == k)) - take[k])

        # lim for stage A: the code ends of the next context's bank, registered in the context's
        # turn before (from ``bank``, not ``bank_n``: the compares' carry chains start at flip-flops).
        # A turn late only after a table switch, and that turn is the LIMITS state, which decodes
        # nothing; the loader writes a bank's limits long before it counts the table.
        lim = [None] + [Signal(ln + 1, name=f"lim{ln}") for ln in range(1, L + 1)]
        for ln in range(1, L + 1):
            m.d.sync += lim[ln].eq(Mux(bank, self.i_limit[1][ln][:ln + 1], self.i_limit[0][ln][:ln + 1]))
        if E:                          # the escape code of the bank, registered the same way
            esc_on = Signal()
            esc_mask = Signal(L)
            esc_code = Signal(L)
            m.d.sync += [esc_on.eq(self.i_esc_on.bit_select(bank, 1)),
                         esc_mask.eq(Mux(bank, self.i_esc_mask[1], self.i_esc_mask[0])),
                         esc_code.eq(Mux(bank, self.i_esc_code[1], self.i_esc_code[0]))]

        # ---- stage A: from the next context's registers (``*_n``), registered
        # "running" and "the queue has room" reach stage A as single flip-flops:
        # * ``run_q`` is ``state_n == RUN``: the block-control switch below also says, in the
        #   context's stage B, whether its next state is RUN (``run_next``), and that is registered.
        # * ``space_q`` is "the context's queue has room" after its own stage-B cycle (its emission
        #   and the consumer's take in that cycle counted), registered.
        run_q = Signal()
        run_next = Signal()
        space_q = Signal()
        m.d.sync += [run_q.eq(run_next),
                     space_q.eq(Mux(ph, inflight_next[1], inflight_next[0]) < QDEPTH)]
        running_a = run_q
        space_a = space_q
        win = buf_n[B - L:]
        lt = [Const(0, 1)] + [Signal(name=f"lt{ln}") for ln in range(1, L + 1)]
        for ln in range(1, L + 1):
            m.d.comb += lt[ln].eq(win[L - ln:] < lim[ln])
        onehot = Signal(L + 1)
        m.d.comb += onehot[0].eq(raw_mode_n)
        for ln in range(1, L + 1):
            m.d.comb += onehot[ln].eq(~raw_mode_n & lt[ln] & ~lt[ln - 1])
        invalid_a = ~raw_mode_n & ~lt[L]
        esc_a = Signal()               # the window starts with the escape code
        if E:
            m.d.comb += esc_a.eq(~raw_mode_n & esc_on & ((win & esc_mask) == esc_code))
        # "enough bits for a symbol": ``fill >= L + r`` is a register of its own (``ready_n``), computed
        # in stage B from per-amount compares registered in stage A (``ge_q``), so the step decision
        # starts from flip-flops
        ready_a = Signal()
        m.d.comb += ready_a.eq(ready_n | (~own_nz_n & ~staged_n))
        can_a = running_a & ~zeroing_n & nleft_nz_n & space_a
        emit_zero_a = running_a & zeroing_n & nleft_nz_n & space_a    # a zero value goes out
        step_a = Signal()
        m.d.comb += step_a.eq(can_a & ready_a)
        sel_a = Signal(S + 1)          # one-hot shift amount l + r (amount 0 also when not stepping)
        for s in range(S + 1):
            terms = []
            for e, hit in ((0, ~esc_a), (E, esc_a)) if E else ((0, None),):
                plain, raw = ~rsel_n, rsel_n
                if hit is not None:
                    plain, raw = plain & hit, raw & hit
                if e <= s <= L + e:
                    terms.append(plain & onehot[s - e])
                if R and s >= R + e and s - R - e <= L:
                    terms.append(raw & onehot[s - R - e])
            t = _tree(terms, lambda a, b: a | b) if terms else Const(0, 1)
            m.d.comb += sel_a[s].eq((step_a & t) | (~step_a if s == 0 else 0))
        # the staged word (zero if none: ``stage_n`` is written 0 then) placed behind the valid bits
        # and OR'd into the buffer here, so stage B's shift starts from one register
        bufm_a = Signal(B)
        m.d.comb += bufm_a.eq(buf_n | ((stage_n << (B - W)) >> fill_n)[:B])
        # per shift amount s: the fill after this step (fill + W if staged, - s) is >= L + r
        ge_a = Signal(S + 1)
        fill_pa = Signal(range(B + W + 1))
        m.d.comb += fill_pa.eq(fill_n + Mux(staged_n, W, 0))
        for s in range(S + 1):
            m.d.comb += ge_a[s].eq(Mux(rsel_n, fill_pa >= L + E + R + s, fill_pa >= L + E + s))
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

        # ---- stage B (the current context): shift buffer and fill by the registered amount
        step = step_q
        # ``emit`` (= step & ~invalid) and "a value goes out" (emit | emit_zero) as registers of
        # their own, computed in stage A: the output credit counters and the rotating counters
        # start at a flip-flop
        m.d.sync += [emit.eq(step_a & ~invalid_a),
                     out_q.eq((step_a & ~invalid_a) | emit_zero_a)]
        emit_zero = emit_zero_q
        m.d.sync += buf_n.eq(_tree([Mux(sel_q[s], (bufm_q << s)[:B], 0) for s in range(S + 1)],
                                   lambda a, b: a | b))
        m.d.sync += ready_n.eq(_onehot_mux(sel_q, [ge_q[s] for s in range(S + 1)]))
        # fill: one subtraction of the amount (binary, OR-encoded from the one-hot); no amount (an
        # invalid code) empties the buffer, as the one-cycle lane does
        amount = Signal(range(S + 1))
        m.d.comb += amount.eq(_onehot_mux(sel_q, [Const(s, range(S + 1)) for s in range(S + 1)]))
        fill_next = Signal(range(B + W + 1))
        m.d.comb += fill_next.eq(Mux(sel_q.any(), fill_p_q - amount, 0))
        m.d.sync += fill_n.eq(fill_next[:len(fill)])

        # ---- word intake (the current context's FIFO)
        # The next context's FIFO head, registered in stage A (the phase multiplexer is then not in
        # front of the CRC and the staged word). It is still the head in stage B: only this context's
        # turn pops its FIFO, and a stream's payload holds while it is valid and not taken (a word
        # that arrives meanwhile waits a turn).
        words = Signal(W + 1)
        words_valid = Signal()
        m.d.sync += [words.eq(Mux(ph, self.i_words[0].payload, self.i_words[1].payload)),
                     words_valid.eq(Mux(ph, self.i_words[0].valid, self.i_words[1].valid))]
        # whether a word may be taken, from the next context's registers (stage A), registered
        pop_ok_q = Signal()
        buf_ok_q = Signal()
        room_a = Mux(staged_n, fill_n <= B - 2 * W, fill_n <= B - W)
        m.d.sync += [
            pop_ok_q.eq(running_a & words_nz_n & (zeroing_n | ~own_nz_n | ~nleft_nz_n | room_a)),
            buf_ok_q.eq(~zeroing_n & own_nz_n & nleft_nz_n),
        ]
        pop = Signal()
        pop_buf = Signal()
        m.d.comb += [
            pop.eq(pop_ok_q & words_valid),
            pop_buf.eq(pop & buf_ok_q),
            self.i_words[0].ready.eq(pop & ~ph),
            self.i_words[1].ready.eq(pop & ph),
        ]
        m.d.sync += [stage_n.eq(Mux(pop_buf, words[:W], 0)), staged_n.eq(pop_buf)]

        m.d.sync += [self.o_err_invalid.eq(0), self.o_err_trunc.eq(0), self.o_err_mismatch.eq(0),
                     self.o_err_crc.eq(0)]
        with m.If(pop):
            m.d.sync += [crc_n.eq(crc16_next(crc, [words[:W]])), words_left_n.eq(words_left - 1),
                         words_nz_n.eq(words_left != 1)]
            with m.If(words[W]):
                m.d.sync += blk_err_n.eq(1)
            with m.If(own_nz):
                m.d.sync += [own_left_n.eq(own_left - 1), own_nz_n.eq(own_left != 1)]
        with m.If(out_q):
            m.d.sync += [n_left_n.eq(n_left - 1), nleft_nz_n.eq(n_left != 1), is_first_n.eq(0)]

        # ---- stage 1 (rotating): registered window and length; the bit-length checks
        m.d.sync += [
            s1_n.valid.eq(out_q),
            s1_n.win.eq(buf[B - L - E - R:]),
            s1_n.onehot.eq(oh_q),
            s1_n.mode.eq(d.mode), s1_n.rsel.eq(rsel), s1_n.ebits.eq(d.ebits), s1_n.bank.eq(bank),
            s1_n.zero.eq(emit_zero), s1_n.dec.eq(emit), s1_n.first.eq(is_first), s1_n.last.eq(n_left == 1),
        ]
        if E:
            m.d.sync += s1_n.esc.eq(esc_q)
        # the one-hot is over shift amounts s = l + r (r = R when s1.rsel); within / exact / the
        # consumed count per amount are the same checks as the one-cycle lane's
        # Stage A1: what stage 1 needs from the one-hot amount (bit-length checks, the code, its
        # offset, the raw field) is computed from the next context's registers (``s1_n``,
        # ``bits_left_n``) and registered, so stage 1 starts from flip-flops.
        oh = s1_n.onehot
        hi_nz = bits_left_n[6:].any()
        lo = bits_left_n[:6]
        within_q = Signal()
        exact_terms_q = Signal(L + 1)      # per amount: selected and equal to the bits left
        short_q = Signal()                 # fewer than 64 bits left
        cons_q = Signal(range(S + 1))
        rawtop_q = Signal(max(R, 1))
        rs = s1_n.rsel

        def by_len(f):
            """``f(k)`` for the symbol's bit count ``k`` = length (+ R) (+ ESCAPE_BITS), per length."""
            def one(ln):
                v = Mux(rs, f(ln + R), f(ln))
                return Mux(s1_n.esc, Mux(rs, f(ln + E + R), f(ln + E)), v) if E else v
            return [one(ln) for ln in range(L + 1)]
        # (the "64 bits or more left" term outside the one-hot multiplexer: fewer levels)
        m.d.sync += [
            within_q.eq((hi_nz & oh.any()) | _onehot_mux(oh, by_len(lambda k: _at_least(lo, k)))),
            exact_terms_q.eq(Cat(*(oh[ln] & v for ln, v in enumerate(by_len(lambda k: lo == k))))),
            short_q.eq(~hi_nz),
            cons_q.eq(_onehot_mux(oh, by_len(lambda k: k))),
        ]
        checked = s1.valid & s1.dec & ~late
        trunc = Signal()
        fire = Signal()
        m.d.comb += [trunc.eq(checked & ~within_q), fire.eq(checked & within_q)]
        m.d.sync += self.o_fire.eq(fire)          # for the counters: a cycle late
        with m.If(fire):
            m.d.sync += bits_left_n.eq(bits_left - cons_q)
        with m.If(trunc):
            m.d.sync += [late_n.eq(1), zeroing_n.eq(1), blk_err_n.eq(1), self.o_err_trunc.eq(1)]
        # "the code ends exactly at the lane's last bit": the one-hot's OR in stage 1, from the
        # registered per-amount terms (the compares and the OR tree are not one path)
        exact_q = Signal()
        m.d.comb += exact_q.eq(short_q & exact_terms_q.any())
        with m.If(fire & s1.last & ~exact_q):
            m.d.sync += [blk_err_n.eq(1), self.o_err_mismatch.eq(1)]
        with m.If(step & invalid_q):
            m.d.sync += [zeroing_n.eq(1), blk_err_n.eq(1), self.o_err_invalid.eq(~trunc)]
        s1_zero = s1.zero | late | ~within_q
        for k in range(2):
            m.d.sync += inflight[k].eq(inflight_next[k])
        # symbol index (code = the window's top l bits, l = s - r) and raw field
        win1 = s1_n.win[E + R:]

        code_a = _onehot_mux(oh, [Const(0, L)] + [win1[L - ln:] for ln in range(1, L + 1)])
        # the offset of the length: a block RAM (``bank << 4 | l``; l = 0 and lengths never written
        # read 0), read in stage B with the one-hot length registered in stage A (``oh_q``), so its
        # data is there in stage A1, with the code; the symbol index (code + offset) is registered
        # there (``index_q``), the symbol memory read with it in stage 1 and its data registered
        # (``sym_d``) for stage 2: both memories' addresses and data are registers (Yosys' read/write
        # collision check on an address, and a block RAM's slow output, stand alone)
        offmem = Memory(shape=9, depth=256, init=[])   # 256 deep: a block RAM, not flip-flops
        m.submodules.offmem = offmem
        owport = offmem.write_port()
        m.d.comb += [owport.en.eq(self.i_off_en), owport.addr.eq(self.i_off_addr),
                     owport.data.eq(self.i_off_data)]
        orport = offmem.read_port()
        m.d.comb += orport.addr.eq(Cat(_onehot_mux(oh_q, [Const(ln, 4) for ln in range(L + 1)]), bank))
        if R:
            # the raw field follows the code: window bits below the top l bits
            # (after the escaped symbol's bits for an escape)
            win_r = Mux(s1_n.esc, s1_n.win, s1_n.win >> E) if E else s1_n.win
            m.d.sync += rawtop_q.eq(_onehot_mux(oh, [(win_r << ln)[L:L + R] for ln in range(L + 1)]))
        index_q = Signal(9)
        m.d.sync += index_q.eq(Cat((code_a + orport.data)[:8], s1_n.bank))
        m.d.comb += [rport.addr.eq(index_q), rport.en.eq(1)]
        sym_d = Signal(8)              # the read data, registered: the context's next turn
        if E:
            # an escape's symbol, from the window, along the symbol memory's read (a cycle behind
            # stage A1 like the read address, then in the read data's cycle)
            esym_q = Signal(8)
            esym_d = Signal(8)
            esc_d = Signal()
            esyms = [(s1_n.win << ln)[L + R:L + R + E] for ln in range(L + 1)]
            m.d.sync += [esym_q.eq(_onehot_mux(oh, esyms)), esym_d.eq(esym_q), esc_d.eq(s1.esc)]
            m.d.sync += sym_d.eq(Mux(esc_d, esym_d, rport.data))
        else:
            m.d.sync += sym_d.eq(rport.data)
        low, place = compose_parts(m, ~s1.rsel, s1.mode, rawtop_q if R else Const(0, 8), s1.ebits, R)
        m.d.sync += [
            s2_n.valid.eq(s1.valid),
            s2_n.low.eq(Mux(s1_zero, 0, low)), s2_n.place.eq(Mux(s1_zero, 0, place)),
            s2_n.first.eq(s1.first), s2_n.last.eq(s1.last),
        ]
        # ---- stage 2 -> the current context's queue
        item = Signal(item_layout)
        m.d.comb += [item.value.eq(place_symbol(sym_d, s2.low, s2.place, R)), item.first.eq(s2.first),
                     item.last.eq(s2.last)]
        for k in range(2):
            m.d.comb += [queues[k].w_data.eq(item), queues[k].w_en.eq(s2.valid & (ph == k))]

        # ---- block control (rotating state register)
        # "the next table is loaded", the next descriptor's valid and its derived fields: registered
        # from the next context's registers and its descriptor FIFO (stage A). The count may have
        # moved on meanwhile (a one-cycle-late "loaded" only waits a turn longer); a descriptor
        # seen valid a cycle early is still there (only this context reads its FIFO, and a full
        # FIFO is not written), so its fields are read from the FIFO in the cycle that takes it.
        # the CRC compare, from the next context's registers (stage A), registered: ``crc == d.crc``
        # of the current context, exactly (its registers are the ``*_n`` ones a cycle ago)
        crc_eq_q = Signal()
        m.d.sync += crc_eq_q.eq(crc_n == d_n.crc)
        next_tab = tab + 1
        loaded_q = Signal()
        diff = Signal(8)
        m.d.comb += diff.eq(self.i_count - (tab_n + 1))
        m.d.sync += loaded_q.eq((diff != 0) & ~diff[7])
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
        with m.Switch(state):
            with m.Case(_IDLE):
                m.d.comb += [self.i_desc[0].ready.eq(desc_valid & ~ph),
                             self.i_desc[1].ready.eq(desc_valid & ph)]
                with m.If(desc_valid):
                    m.d.sync += [
                        d_n.eq(desc), n_left_n.eq(desc.n), words_left_n.eq(desc.m),
                        nleft_nz_n.eq(desc_nz_q[0]), words_nz_n.eq(desc_nz_q[1]),
                        own_left_n.eq(own_q), own_nz_n.eq(desc_nz_q[2]), bits_left_n.eq(desc.bitlen),
                        rsel_n.eq(desc.r != 0), raw_mode_n.eq(desc.mode == spec.MODE_RAW),
                        crc_n.eq(spec.CRC_INIT), blk_err_n.eq(desc.skip), zeroing_n.eq(desc.skip),
                        late_n.eq(0), check_crc_n.eq(~desc.skip), is_first_n.eq(1), fill_n.eq(0),
                        ready_n.eq(0), staged_n.eq(0), stage_n.eq(0), buf_n.eq(0),
                    ]
                    with m.If(desc.skip | (desc.mode == spec.MODE_RAW)):
                        m.d.sync += state_n.eq(_RUN)
                        m.d.comb += run_next.eq(1)
                    with m.Elif(has_tab & (desc.parity == tab[0])):
                        # Keeping the table: a rejected one zeroes this block too (see lane.py).
                        with m.If(~self.i_ok.bit_select(tab[0], 1)):
                            m.d.sync += [zeroing_n.eq(1), blk_err_n.eq(1), check_crc_n.eq(0)]
                        m.d.sync += state_n.eq(_RUN)
                        m.d.comb += run_next.eq(1)
                    with m.Else():
                        m.d.sync += state_n.eq(_TABLE)
            with m.Case(_TABLE):
                with m.If(loaded_q):
                    m.d.sync += [tab_n.eq(next_tab), has_tab_n.eq(1), bank_n.eq(next_tab[0]),
                                 state_n.eq(_LIMITS)]
                    with m.If(~self.i_ok.bit_select(next_tab[0], 1)):
                        m.d.sync += [zeroing_n.eq(1), blk_err_n.eq(1), check_crc_n.eq(0)]
            with m.Case(_LIMITS):
                m.d.sync += state_n.eq(_RUN)
                m.d.comb += run_next.eq(1)
            with m.Case(_RUN):
                m.d.comb += run_next.eq(1)
                with m.If(~nleft_nz & ~words_nz & ~s1.valid):     # stage 1's checks are in
                    bad_crc = check_crc & ~crc_eq_q
                    m.d.sync += [self.o_err_crc.eq(bad_crc), state_n.eq(_FINISH)]
                    m.d.comb += run_next.eq(0)
                    for k in range(2):
                        with m.If(ph == k):
                            m.d.sync += [final_err[k].eq(blk_err | bad_crc), released[k].eq(1)]
            with m.Case(_FINISH):
                # the block's last value has been taken (``released`` clears on that take)
                with m.If(~Mux(ph, released[1], released[0])):
                    m.d.sync += state_n.eq(_IDLE)
        return m
