"""The STDP core's row walker: walk-queue entries to synapse addresses, one per cycle."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import spec, sweep

__all__ = ["RowWalker"]


class RowWalker(wiring.Component):
    """Takes the rows to walk from the walk queue and issues their synapses, one per cycle.

    Interface contract: while ``i_run`` is 1 (the walk phase), ``i_head`` is the walk queue's head
    entry (read at a registered address: valid two cycles after a pop) and ``i_nonempty`` says there
    is one. ``o_pop`` pops it; a spiking neuron's entry is popped only with ``i_spike_ready`` (the
    core offers its output event while ``o_spike_valid``, neuron ``i_head.n``). No pop follows a pop
    for two cycles. The core reads the row memory at ``o_row_addr`` (CSR, bitmap; its word arrives
    on ``i_row`` a cycle later) and the bitmap memory at ``o_bmp_addr`` (bitmap; on ``i_bmp``)
    while ``i_run`` is 1. ``o_issue`` issues synapse ``o_addr`` (post ``o_q`` for bitmap and
    crossbar) of the row of entry ``o_entry``. CSR and crossbar: the core reads the synapse memory
    at ``o_syn_raddr``, a register equal to ``o_addr`` while a row is issued and loaded with
    ``i_cfg_next_addr`` after ``i_cfg_next_valid`` (configuration access); bitmap: at ``o_addr``.
    SPRAM store: ``i_syn_busy`` (the write-back is using the bank of ``o_syn_raddr``) holds the
    issue. ``o_busy`` is 1 while a row is in the walker.

    Cycle behaviour: rows flow queue head -> p (popped: row pointers being read) -> f (pointers
    registered) -> s (slot: row ready) -> g (issuer). CSR / crossbar: consecutive rows of three or
    more synapses follow without a bubble; bitmap: a word costs max(set bits, 2) cycles, a row
    start about 3.

    Parameters
    ----------
    cfg : STDPConfig

    Members
    -------
    i_run, i_nonempty, i_spike_ready : In(1)
    i_head : In(entry_layout(cfg))
    o_pop, o_spike_valid : Out(1)
    o_row_addr : Out(neuron_bits)
    i_row : In(row_bits)
    o_bmp_addr : Out(range(bmp_depth))
    i_bmp : In(bitmap_word)
    i_syn_busy, i_cfg_next_valid : In(1)
    i_cfg_next_addr : In(CFG_ADDR_BITS)
    o_issue : Out(1)
    o_addr, o_syn_raddr : Out(ptr_bits)
    o_q : Out(neuron_bits)
    o_entry : Out(entry_layout(cfg))
    o_busy : Out(1)
    """

    def __init__(self, cfg):
        c = self.cfg = spec.check_config(cfg)
        nb, pb = c.neuron_bits, c.ptr_bits
        super().__init__({
            "i_run": In(1), "i_nonempty": In(1), "i_spike_ready": In(1), "i_head": In(sweep.entry_layout(c)),
            "o_pop": Out(1), "o_spike_valid": Out(1),
            "o_row_addr": Out(nb), "i_row": In(c.row_bits),
            "o_bmp_addr": Out(range(max(2, c.bmp_depth))), "i_bmp": In(c.bitmap_word),
            "i_syn_busy": In(1), "i_cfg_next_valid": In(1), "i_cfg_next_addr": In(spec.CFG_ADDR_BITS),
            "o_issue": Out(1), "o_addr": Out(pb), "o_syn_raddr": Out(pb), "o_q": Out(nb),
            "o_entry": Out(sweep.entry_layout(c)), "o_busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        N, nb, pb = c.n_neurons, c.neuron_bits, c.ptr_bits
        csr, crossbar, spram = c.encoding == "csr", c.encoding == "crossbar", c.syn_store == "spram"
        entry_layout = sweep.entry_layout(c)
        in_walk, head, q_nonempty, q_pop = self.i_run, self.i_head, self.i_nonempty, self.o_pop
        issue, iss_addr, iss_q, g_entry = self.o_issue, self.o_addr, self.o_q, self.o_entry
        # Data registers whose value is used only under a valid flag (which is reset) are not
        # reset: iCE40 flip-flops with an enable and a synchronous reset need the reset in their
        # enable logic, and the block's reset net (RESET command, watchdog) reaches hundreds of
        # them.
        syn_ra = Signal(pb, reset_less=True)
        m.d.comb += self.o_syn_raddr.eq(syn_ra)
        want_pop = Signal()
        # Rows flow queue head -> p (popped: row pointers being read) -> f (pointers registered)
        # -> s (slot: row ready) -> g (issuer).
        # Every hand-over is decided from registers only (no memory output in the pop/advance logic),
        # which keeps the memories' clock-to-out off the control paths. CSR / crossbar: the slot holds
        # (start, length) and the issuer follows with no bubble, one synapse per cycle. Bitmap: the
        # issuer reads the row's bitmap words and issues their set bits, one per cycle.
        p_valid, f_valid, s_valid, g_active = Signal(), Signal(), Signal(), Signal()
        p_entry, f_entry, s_entry = (Signal(entry_layout, reset_less=True) for _ in range(3))
        g_free = Signal()
        # Each stage is refilled only once it is empty (not in the cycle it empties), so the pop
        # does not depend on the issuer; rows of three or more synapses still follow back to back.
        s_adv = s_valid & g_free
        f_adv = f_valid & ~s_valid
        m.d.comb += want_pop.eq(in_walk & q_nonempty & ~p_valid & ~f_valid)
        m.d.comb += q_pop.eq(want_pop & (~head.spike | self.i_spike_ready))
        m.d.sync += [p_valid.eq(q_pop), p_entry.eq(head)]
        f_row = Signal(c.row_bits, reset_less=True)
        with m.If(p_valid):
            m.d.sync += [f_valid.eq(1), f_entry.eq(p_entry)]
            if not crossbar:
                m.d.sync += f_row.eq(self.i_row)
        with m.Elif(f_adv):
            m.d.sync += f_valid.eq(0)
        with m.If(f_adv):
            m.d.sync += [s_valid.eq(1), s_entry.eq(f_entry)]
        with m.Elif(s_adv):
            m.d.sync += s_valid.eq(0)
        m.d.comb += self.o_row_addr.eq(head.n)

        if csr or crossbar:
            bits_for_len = c.syn_depth.bit_length()
            s_start, s_len = Signal(pb, reset_less=True), Signal(bits_for_len, reset_less=True)
            s_nonempty = Signal(reset_less=True)
            if csr:
                r_start, r_end = f_row[:pb], f_row[pb:2 * pb]
                # The row's length is subtracted from the registered row (f_row), not from the row
                # memory's output. "One synapse" is decided from the registered length (s_len == 1)
                # when the slot hands over, not as end == start + 1 here: an adder in front of a
                # compare was the critical path at 48 MHz. (A row word has start <= end <= syn_depth,
                # the config port refuses others, so s_len is exact.)
                with m.If(f_adv):
                    m.d.sync += [s_start.eq(r_start), s_len.eq(r_end - r_start),
                                 s_nonempty.eq(r_end != r_start)]
            else:
                f_start = Signal(pb, reset_less=True)
                with m.If(p_valid):
                    m.d.sync += f_start.eq(p_entry.n * N)
                with m.If(f_adv):
                    m.d.sync += [s_start.eq(f_start), s_len.eq(N), s_nonempty.eq(1)]
            g_addr, g_rem, g_q = (Signal(w, reset_less=True) for w in (pb, bits_for_len, nb))
            g_last = Signal()  # g_rem == 1, kept as a register: it gates every hand-over
            if spram:
                # The write-back holds the bank of g_addr (syn_ra == g_addr while g_active): wait.
                advance = g_active & ~self.i_syn_busy
                m.d.comb += [g_free.eq(~g_active | (g_last & ~self.i_syn_busy)), issue.eq(advance)]
            else:
                advance = g_active
                m.d.comb += [g_free.eq(~g_active | g_last), issue.eq(g_active)]
            m.d.comb += [iss_addr.eq(g_addr), iss_q.eq(g_q)]
            # syn_ra: the synapse memory's read address as one register (no phase multiplexer in
            # front of the 28 block RAMs' read-first compares): g_addr during the walk, the config
            # command's address during the input phase (set with `cmd`, in the cycle before it is used).
            with m.If(s_adv):
                m.d.sync += [g_active.eq(s_nonempty), g_addr.eq(s_start), g_rem.eq(s_len), g_q.eq(0),
                             g_entry.eq(s_entry), g_last.eq(s_len == 1), syn_ra.eq(s_start)]
            with m.Elif(advance):
                m.d.sync += [g_active.eq(~g_last), g_addr.eq(g_addr + 1), g_rem.eq(g_rem - 1),
                             g_q.eq(g_q + 1), g_last.eq(g_rem == 2), syn_ra.eq(g_addr + 1)]
            with m.If(self.i_cfg_next_valid):
                m.d.sync += syn_ra.eq(self.i_cfg_next_addr)
        else:
            B, wpr = c.bitmap_word, c.words_per_row
            kb = max(1, (wpr - 1).bit_length())
            bb = (B - 1).bit_length()
            f_base, s_base = Signal(range(c.bmp_depth)), Signal(range(c.bmp_depth))
            s_start = Signal(pb)
            with m.If(p_valid):
                m.d.sync += f_base.eq(p_entry.n * wpr)
            with m.If(f_adv):
                m.d.sync += [s_base.eq(f_base), s_start.eq(f_row)]
            # Words are read ahead into n_* (one in flight), taken into g_* when the current word's
            # last set bit issues; g_single / n_single ("at most one bit left") are registers, so
            # the word hand-over is decided without a carry chain in front of it.
            def single(x):
                return (x & (x - 1)) == 0

            g_k, n_k, rd_k = Signal(kb), Signal(kb), Signal(kb)
            g_lastw, n_last, rd_last_p = Signal(), Signal(), Signal()
            g_word, n_word = Signal(B), Signal(B)
            g_single, n_single = Signal(), Signal()
            g_wvalid, n_valid, bmp_rd_pending, rd_more = Signal(), Signal(), Signal(), Signal()
            g_base = Signal(range(c.bmp_depth))
            g_waddr = Signal(pb)
            rd_kp = Signal(kb)
            j = Signal(bb)
            for bit in reversed(range(B)):
                with m.If(g_word[bit]):
                    m.d.comb += j.eq(bit)
            q_full = Cat(j, g_k)
            rem = Signal(B)
            m.d.comb += rem.eq(g_word & (g_word - 1))
            word_end = g_wvalid & g_single
            m.d.comb += [
                g_free.eq(~g_active),
                issue.eq(g_active & g_wvalid & (g_word != 0) & (q_full < N)),
                iss_addr.eq(g_waddr),
                iss_q.eq(q_full),
            ]
            load = g_active & (~g_wvalid | word_end) & n_valid
            rd_go = g_active & rd_more & ~bmp_rd_pending & (~n_valid | load)
            m.d.comb += self.o_bmp_addr.eq(Mux(s_adv, s_base, g_base + rd_k))
            m.d.sync += bmp_rd_pending.eq(rd_go | s_adv)
            with m.If(s_adv):  # a new row: read its first word right away
                m.d.sync += [rd_k.eq(1), rd_more.eq(wpr > 1), rd_kp.eq(0), rd_last_p.eq(wpr == 1)]
            with m.Elif(rd_go):
                m.d.sync += [rd_k.eq(rd_k + 1), rd_more.eq(rd_k != wpr - 1), rd_kp.eq(rd_k),
                             rd_last_p.eq(rd_k == wpr - 1)]
            with m.If(bmp_rd_pending):
                m.d.sync += [n_valid.eq(1), n_word.eq(self.i_bmp), n_single.eq(single(self.i_bmp)),
                             n_k.eq(rd_kp), n_last.eq(rd_last_p)]
            with m.Elif(load):
                m.d.sync += n_valid.eq(0)
            with m.If(s_adv):
                m.d.sync += [g_active.eq(1), g_wvalid.eq(0), g_base.eq(s_base), g_waddr.eq(s_start),
                             g_entry.eq(s_entry)]
            with m.Elif(g_active):
                m.d.sync += g_waddr.eq(g_waddr + issue)
                with m.If(word_end & g_lastw):
                    m.d.sync += [g_active.eq(0), g_wvalid.eq(0)]
                with m.Elif(load):
                    m.d.sync += [g_word.eq(n_word), g_single.eq(n_single), g_k.eq(n_k), g_lastw.eq(n_last),
                                 g_wvalid.eq(1)]
                with m.Elif(word_end):
                    m.d.sync += g_wvalid.eq(0)
                with m.Elif(g_wvalid):
                    m.d.sync += [g_word.eq(rem), g_single.eq(single(rem))]


        m.d.comb += [self.o_spike_valid.eq(want_pop & head.spike),
                     self.o_busy.eq(p_valid | f_valid | s_valid | g_active)]
        return m
