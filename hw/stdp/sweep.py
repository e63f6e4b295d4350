"""The STDP core's neuron-memory sweeps: the reset sweep and the LIF neuron sweep."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import spec

__all__ = ["ResetSweep", "NeuronSweep", "state_layout", "entry_layout"]


def state_layout(cfg):
    """A neuron's state word (:func:`hw.stdp.spec.pack_state`): potential, refractory count,
    timer, pending-LTP and spiked-last-step flags."""
    return data.StructLayout({"v": cfg.v_bits, "r": cfg.refr_bits, "tau": cfg.tau_bits, "pend": 1, "spk": 1})


def entry_layout(cfg):
    """A walk-queue entry: the neuron whose row is walked, whether it spiked (deliver, LTD) and
    owes a causal update (LTP), and its timer after the sweep."""
    return data.StructLayout({"n": cfg.neuron_bits, "spike": 1, "ltp": 1, "tau": cfg.tau_bits})


class ResetSweep(wiring.Component):
    """Walks the neuron indices once after reset, so the core can write every neuron's reset state.

    Cycle behaviour: ``o_clearing`` is 1 for the first ``n_neurons`` cycles after reset, with
    ``o_n`` = 0, 1, ..., ``n_neurons - 1`` in them; then ``o_clearing`` stays 0 (and ``o_n``, not
    used then, holds) until the next reset. It has no inputs: a reset of its domain (the
    controller's ``RESET``) restarts it.

    Parameters
    ----------
    cfg : STDPConfig

    Members
    -------
    o_clearing : Out(1)
    o_n : Out(range(n_neurons))
    """

    def __init__(self, cfg):
        self.cfg = spec.check_config(cfg)
        super().__init__({"o_clearing": Out(1, init=1), "o_n": Out(range(cfg.n_neurons))})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.o_clearing):
            m.d.sync += self.o_n.eq(self.o_n + 1)
            with m.If(self.o_n == self.cfg.n_neurons - 1):
                m.d.sync += self.o_clearing.eq(0)
        return m


class NeuronSweep(wiring.Component):
    """The LIF sweep of a time step (:func:`hw.stdp.spec.lif_step`), one neuron per cycle.

    Interface contract: while ``i_run`` is 1 the sweep reads neuron ``o_rd_n`` (state, input
    accumulator and input bit; the memories return the words, on ``i_state``, ``i_acc`` and
    ``i_ext``, one cycle later), for ``o_rd_n`` = 0, 1, ..., ``n_neurons - 1`` in consecutive cycles.
    ``i_run`` must stay 1 until ``o_done``.

    Cycle behaviour: three stages. sw1: the read; sw2 (the cycle after): leak, add, saturate,
    threshold, the new state; sw3 (the next cycle): ``o_wr_en`` writes neuron ``o_wr_n``'s new
    state ``o_wr_state`` from registers (and the core clears its accumulator and input bit), and
    ``o_push`` with ``o_entry`` if the neuron spiked or owes its LTP walk. Each neuron is read and
    written once, so no stage forwards. ``o_done`` is 1 for one cycle, ``n_neurons + 3`` cycles
    after the one in which ``i_run`` rose, when the last write and push are a cycle old (the
    queue's head is readable); the sweep is then ready for the next step.

    Parameters
    ----------
    cfg : STDPConfig

    Members
    -------
    i_run : In(1)
    o_rd_n : Out(range(n_neurons + 1))
    i_state : In(state_layout(cfg))
    i_acc : In(v_bits)
    i_ext : In(1)
    o_wr_en : Out(1)
    o_wr_n : Out(neuron_bits)
    o_wr_state : Out(state_layout(cfg))
    o_push : Out(1)
    o_entry : Out(entry_layout(cfg))
    o_done : Out(1)
    """

    def __init__(self, cfg):
        c = self.cfg = spec.check_config(cfg)
        super().__init__({
            "i_run": In(1),
            "o_rd_n": Out(range(c.n_neurons + 1)),
            "i_state": In(state_layout(c)),
            "i_acc": In(c.v_bits),
            "i_ext": In(1),
            "o_wr_en": Out(1),
            "o_wr_n": Out(c.neuron_bits),
            "o_wr_state": Out(state_layout(c)),
            "o_push": Out(1),
            "o_entry": Out(entry_layout(c)),
            "o_done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        N, T, vb = c.n_neurons, c.window, c.v_bits
        sw_n = self.o_rd_n
        sw1_valid, sw2_valid, sw3_valid = Signal(), Signal(), self.o_push
        sw1_n, sw2_n = Signal(c.neuron_bits), Signal(c.neuron_bits)
        with m.If(self.i_run):
            with m.If(sw_n < N):
                m.d.sync += [sw_n.eq(sw_n + 1), sw1_valid.eq(1), sw1_n.eq(sw_n)]
            with m.Else():
                m.d.sync += sw1_valid.eq(0)
                with m.If(~sw1_valid & ~sw2_valid & ~sw3_valid & ~self.o_wr_en):
                    # The last queue write was a cycle ago, so the queue head is readable.
                    m.d.comb += self.o_done.eq(1)
                    m.d.sync += sw_n.eq(0)

        s = self.i_state
        sw2_s = Signal(state_layout(c))
        sw2_tau = Signal(c.tau_bits)
        sw2_sum = Signal(vb + 1)
        sw2_ext = Signal()
        refr = Signal()    # sw2_s.r != 0, registered with the state (it selects every field)
        m.d.sync += [
            sw2_valid.eq(self.i_run & sw1_valid), sw2_n.eq(sw1_n), sw2_s.eq(s), sw2_ext.eq(self.i_ext),
            refr.eq(s.r != 0),
            sw2_tau.eq(Mux(s.spk, 1, Mux(s.tau >= T, T, s.tau + 1))),
            sw2_sum.eq(s.v - (s.v >> c.leak_shift) + self.i_acc),
        ]
        v_sat = Signal(vb)
        m.d.comb += v_sat.eq(Mux(sw2_sum[vb], c.v_max, sw2_sum[:vb]))
        spike = Signal()
        # v_sat >= threshold  <=>  sw2_sum >= threshold, since threshold <= v_max.
        m.d.comb += spike.eq(~refr & ((sw2_sum >= c.threshold) | sw2_ext))
        ltp_due = Signal()
        m.d.comb += ltp_due.eq(sw2_s.pend & (spike | (sw2_tau == T)))
        new_state = Signal(state_layout(c))
        m.d.comb += [
            new_state.v.eq(Mux(refr, sw2_s.v, Mux(spike, c.v_reset, v_sat))),
            new_state.r.eq(Mux(refr, sw2_s.r - 1, Mux(spike, c.refractory, 0))),
            new_state.tau.eq(sw2_tau),
            new_state.pend.eq(spike | (sw2_s.pend & ~ltp_due)),
            new_state.spk.eq(spike),
        ]
        # The write is registered (sw3): the threshold's carry chain, the spike decision and the
        # state's field selects end at flip-flops, not at the memory's write data behind the
        # write-port multiplexers (the critical path at 48 MHz on the UP5K). The state is not
        # reset: it is written only under o_wr_en.
        wr_state = Signal(state_layout(c), reset_less=True)
        m.d.sync += [wr_state.eq(new_state), self.o_wr_en.eq(sw2_valid), self.o_wr_n.eq(sw2_n)]
        m.d.comb += self.o_wr_state.eq(wr_state)
        sw3_entry = self.o_entry
        m.d.sync += [
            sw3_valid.eq(sw2_valid & (spike | ltp_due)),
            sw3_entry.n.eq(sw2_n), sw3_entry.spike.eq(spike), sw3_entry.ltp.eq(ltp_due),
            sw3_entry.tau.eq(sw2_tau),
        ]
        return m
