"""The STDP core's synapse update pipeline: one read-modify-write of a walked synapse per cycle."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import spec
from .sweep import entry_layout, state_layout

__all__ = ["UpdatePipeline"]


class UpdatePipeline(wiring.Component):
    """Delivers a walked synapse's weight into its post's input accumulator and applies the delayed
    LTP and the immediate LTD to the weight (:func:`hw.stdp.spec.synapse_update`), one synapse per
    cycle. The kernel tables (``cfg.kp``, ``cfg.km``) are its own read-only memories.

    Interface contract: ``i_issue`` issues synapse ``i_addr`` of the row of walk-queue entry
    ``i_entry``; the core reads the synapse memory at ``i_addr`` in the same cycle, and its word
    arrives on ``i_syn`` one cycle later. The post is the word's index field (CSR) or ``i_q`` (bitmap
    and crossbar, whose words are the weight alone). Two cycles after the issue ``o_post_n`` is the
    post; the core reads the post's state and accumulator at it (while the walk runs), and they
    arrive on ``i_post`` and ``i_acc`` one cycle later. The accumulator read may be from the cycle
    in which it is written (the port's data is then not used); the neuron states must not change
    during a walk, and a synapse must not be issued twice before its write-back.

    Cycle behaviour: four cycles after the issue the sum (saturated at ``v_max``) is computed and
    five cycles after it it is written on ``o_acc_wr_*`` (if the entry spiked), from a register;
    the three updates before it to the same post are forwarded (from the adder, from the
    write-back register and from the register behind it), so back-to-back updates of a post never
    lose one. Six
    cycles after the issue the new weight is written on ``o_syn_wr_*`` (the word with its index
    field for CSR). ``o_busy`` is 1 while a synapse is in flight.

    Parameters
    ----------
    cfg : STDPConfig

    Members
    -------
    i_issue : In(1)
    i_addr : In(ptr_bits)
    i_q : In(neuron_bits)
    i_entry : In(entry_layout(cfg))
    i_syn : In(syn_bits)
    o_post_n : Out(neuron_bits)
    i_post : In(state_layout(cfg))
    i_acc : In(v_bits)
    o_acc_wr_en, o_acc_wr_n, o_acc_wr_data : Out(1), Out(neuron_bits), Out(v_bits)
    o_syn_wr_en, o_syn_wr_addr, o_syn_wr_data : Out(1), Out(ptr_bits), Out(syn_bits)
    o_busy : Out(1)
    """

    def __init__(self, cfg):
        c = self.cfg = spec.check_config(cfg)
        nb, pb = c.neuron_bits, c.ptr_bits
        super().__init__({
            "i_issue": In(1), "i_addr": In(pb), "i_q": In(nb), "i_entry": In(entry_layout(c)),
            "i_syn": In(c.syn_bits),
            "o_post_n": Out(nb), "i_post": In(state_layout(c)), "i_acc": In(c.v_bits),
            "o_acc_wr_en": Out(1), "o_acc_wr_n": Out(nb), "o_acc_wr_data": Out(c.v_bits),
            "o_syn_wr_en": Out(1), "o_syn_wr_addr": Out(pb), "o_syn_wr_data": Out(c.syn_bits),
            "o_busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        T, nb, pb, tb, vb, wb = c.window, c.neuron_bits, c.ptr_bits, c.tau_bits, c.v_bits, c.w_bits
        csr = c.encoding == "csr"
        entry = entry_layout(c)
        m.submodules.kp = kp = Memory(shape=wb, depth=T, init=c.kp)
        m.submodules.km = km = Memory(shape=wb, depth=T, init=c.km)
        kp_rd, km_rd = kp.read_port(), km.read_port()
        # S0: read weight (the core).  S1: weight word arrives, registered.  R: read post state and
        # accumulator (address from a register: block RAMs' read-during-write emulation compares it
        # with the write address, so it must not come straight from another memory's output).
        # S2: register state and accumulator.  S3: add into the accumulator, read kernels.  S4: write
        # the accumulator, LTP.  S5: LTD, write the weight.
        s1_valid, s1_addr, s1_q = Signal(), Signal(pb), Signal(nb)
        s1_entry = Signal(entry)
        m.d.sync += [s1_valid.eq(self.i_issue), s1_addr.eq(self.i_addr), s1_q.eq(self.i_q),
                     s1_entry.eq(self.i_entry)]

        q1, w1 = Signal(nb), Signal(wb)
        if csr:
            m.d.comb += [q1.eq(self.i_syn[:nb]), w1.eq(self.i_syn[nb:nb + wb])]
        else:
            m.d.comb += [q1.eq(s1_q), w1.eq(self.i_syn)]
        r_valid, r_addr, r_q, r_w = Signal(), Signal(pb), self.o_post_n, Signal(wb)
        r_entry = Signal(entry)
        m.d.sync += [r_valid.eq(s1_valid), r_addr.eq(s1_addr), r_q.eq(q1), r_w.eq(w1), r_entry.eq(s1_entry)]
        s2_valid, s2_addr, s2_q, s2_w = Signal(), Signal(pb), Signal(nb), Signal(wb)
        s2_entry = Signal(entry)
        m.d.sync += [s2_valid.eq(r_valid), s2_addr.eq(r_addr), s2_q.eq(r_q), s2_w.eq(r_w),
                     s2_entry.eq(r_entry)]

        # S2: post state and accumulator arrive; S3 adds the weight, S4 writes the accumulator from
        # a register (delivery needs only the weight as read; the write-back a cycle after the add
        # keeps the carry chain and its saturation away from the block RAM's write data). Three
        # synapses ahead may hold the same post: the one in S3 is adding right now (forwarded from
        # its adder), the one in S4 is writing it right now and the one that was in S4 wrote it in
        # the cycle this synapse's read was issued, when the port's data is not defined (both
        # forwarded from registers). The selects are decided a cycle early, in R, from registers.
        post = self.i_post
        s3_valid, s3_addr, s3_q, s3_w = Signal(), Signal(pb), Signal(nb), Signal(wb)
        s3_entry = Signal(entry)
        fwd_s3, fwd_s4, fwd_s5 = Signal(), Signal(), Signal()
        s3_acc, s3_deliver = Signal(vb), Signal()
        s4_acc, s4_deliver, s5_acc = Signal(vb), Signal(), Signal(vb)
        acc_sum = Signal(vb + 1)
        acc_new = Signal(vb)
        s4_q = Signal(nb)
        s4_valid = Signal()
        m.d.sync += [
            fwd_s3.eq(s2_valid & s2_entry.spike & (s2_q == r_q)),
            fwd_s4.eq(s3_valid & s3_deliver & (s3_q == r_q)),
            fwd_s5.eq(s4_valid & s4_deliver & (s4_q == r_q)),
            s3_acc.eq(Mux(fwd_s3, acc_new, Mux(fwd_s4, s4_acc, Mux(fwd_s5, s5_acc, self.i_acc)))),
            s3_deliver.eq(s2_valid & s2_entry.spike),
            s4_acc.eq(acc_new),
            s4_deliver.eq(s3_deliver),
            s5_acc.eq(s4_acc),
        ]
        m.d.comb += [
            acc_sum.eq(s3_acc + s3_w),
            acc_new.eq(Mux(acc_sum[vb], c.v_max, acc_sum[:vb])),  # carry out: saturate
        ]
        # The data is the register whether or not it is written (no enable in front of the memory's data).
        m.d.comb += self.o_acc_wr_data.eq(s4_acc)
        with m.If(s4_valid & s4_deliver):
            m.d.comb += [self.o_acc_wr_n.eq(s4_q), self.o_acc_wr_en.eq(1)]
        s3_tau, s3_spk = Signal(tb), Signal()
        m.d.sync += [s3_valid.eq(s2_valid), s3_addr.eq(s2_addr), s3_q.eq(s2_q), s3_w.eq(s2_w),
                     s3_entry.eq(s2_entry), s3_tau.eq(post.tau), s3_spk.eq(post.spk)]

        # S3: which updates apply, and the kernel table reads. The tables are read at the time
        # differences whether or not their update applies (a table word is used only under
        # s4_ltp / s5_ltd), so the decisions lead to those registers alone, not to the tables.
        age = Mux(s3_spk, 0, s3_tau)
        dt = Signal(tb + 1)
        m.d.comb += dt.eq(s3_entry.tau - age)
        ltp_ok = Signal()
        ltd_ok = Signal()
        m.d.comb += [
            ltp_ok.eq(s3_entry.ltp & (s3_entry.tau > age) & (dt <= T - 1)),
            ltd_ok.eq(s3_entry.spike & (s3_tau < T)),
            kp_rd.addr.eq(dt),
            km_rd.addr.eq(s3_tau),
        ]
        s4_addr, s4_w = Signal(pb), Signal(wb)
        s4_ltp, s4_ltd = Signal(), Signal()
        m.d.sync += [s4_valid.eq(s3_valid), s4_addr.eq(s3_addr), s4_q.eq(s3_q), s4_w.eq(s3_w),
                     s4_ltp.eq(ltp_ok), s4_ltd.eq(ltd_ok)]

        # S4: LTP (saturating add).  S5: LTD (saturating subtract), write the weight back. (A synapse
        # is walked at most once per step, so no later read in flight can need this value.)
        w_plus = Signal(wb + 1)
        w_ltp = Signal(wb)
        m.d.comb += [
            w_plus.eq(s4_w + kp_rd.data),
            w_ltp.eq(Mux(s4_ltp, Mux(w_plus[wb], c.w_max, w_plus[:wb]), s4_w)),  # carry: saturate
        ]
        s5_valid, s5_addr, s5_q, s5_w = Signal(), Signal(pb), Signal(nb), Signal(wb)
        s5_ltd, s5_km = Signal(), Signal(wb)
        m.d.sync += [s5_valid.eq(s4_valid), s5_addr.eq(s4_addr), s5_q.eq(s4_q), s5_w.eq(w_ltp),
                     s5_ltd.eq(s4_ltd), s5_km.eq(km_rd.data)]
        w_minus = Signal(wb + 1)
        w_out = Signal(wb)
        m.d.comb += [
            w_minus.eq(s5_w - s5_km),
            w_out.eq(Mux(s5_ltd, Mux(w_minus[wb], 0, w_minus[:wb]), s5_w)),       # borrow: saturate
        ]
        with m.If(s5_valid):
            m.d.comb += [self.o_syn_wr_addr.eq(s5_addr), self.o_syn_wr_en.eq(1),
                         self.o_syn_wr_data.eq(Cat(s5_q, w_out) if csr else w_out)]
        m.d.comb += self.o_busy.eq(s1_valid | r_valid | s2_valid | s3_valid | s4_valid | s5_valid)
        return m
