"""Formal harnesses for the STDP core (:class:`hw.stdp.core.STDPCore`, CSR encoding, 3 neurons, so
that neuron index 3 fits the 2-bit index field but names no neuron; 8 synapses, 2-bit weights,
4-bit potentials). All inputs are free, the input streams obey the stream rules.

``stdp.pop_spacing``: after a walk-queue pop, no pop in the next two cycles (the queue's read
address is the register ``q_rp``, which follows a pop a cycle later, and the new head arrives three
cycles after a pop; the core's timing relies on it). ``stdp.event_range``: an input event reaches
the memories (the external-input write port, from which the sweep feeds the synapse walks) only for
an existing neuron (index < 3)."""

from amaranth.hdl import Assert, Module

from hw.stdp import core as core_module
from hw.stdp.core import STDPCore

from .harness import Harness, Patched, StreamRulesHarness, internals, mutated
from .runner import Property
from .sticky import StickyHarness

__all__ = ["PROPERTIES"]

CORE_PARAMS = dict(n_neurons=3, max_synapses=8, encoding="csr", w_bits=2, v_bits=4, window=2, threshold=4)
PARAMS = " ".join(f"{k}={v}" for k, v in CORE_PARAMS.items())


def _core(cls=STDPCore):
    return cls(**CORE_PARAMS)


class CoreHarness(Harness):
    """``check``: ``"pop"`` or ``"event"``."""

    def __init__(self, check, core_class=STDPCore):
        super().__init__()
        self.check = check
        self.rules = StreamRulesHarness(lambda: _core(core_class), asserts=False)
        self.ports = self.rules.ports
        self.dut = self.rules.dut

    def elaborate(self, platform):
        m = Module()
        frag, sig = internals(self.dut)
        self.rules.fragment = frag     # the stream rules around the elaborated core
        m.submodules.rules = self.rules
        if self.check == "pop":
            pop = sig["q_pop"]
            pop_1 = self.past(m, pop, "pop_1")
            pop_2 = self.past(m, pop_1, "pop_2")
            m.d.comb += Assert(~(pop & (pop_1 | pop_2)))
        elif self.check == "event":
            with m.If(sig["ext_wr__en"]):
                m.d.comb += Assert(sig["ext_wr__addr"] < CORE_PARAMS["n_neurons"])
        else:
            raise ValueError(f"check must be 'pop' or 'event', not {self.check!r}")
        return m


PROPERTIES = [
    Property("stdp.pop_spacing", "after a walk-queue pop, no pop for two cycles",
             lambda: CoreHarness("pop"), "prove", 3, PARAMS,
             mutant=lambda: Patched(lambda: CoreHarness("pop"), [(
                 vars(core_module), "RowWalker", mutated(
                     "hw.stdp.walker", "RowWalker", "want_pop.eq(in_walk & q_nonempty & ~p_valid & ~f_valid)",
                     "want_pop.eq(in_walk & q_nonempty & ~p_valid)"))]),
             mutation="pop decision ignores the fetch stage", mutant_depth=24),
    Property("stdp.event_range", "an event for a neuron >= n_neurons never reaches the memories",
             lambda: CoreHarness("event"), "bmc", 12, PARAMS,
             mutant=lambda: CoreHarness("event", mutated(
                 "hw.stdp.core", "STDPCore", "ev_ok.eq(ev.neuron < N)", "ev_ok.eq(ev.neuron <= N)")),
             mutation="range check off by one"),
    Property("stdp.streams", "o_aer and o_rdata hold valid and payload while stalled (inputs assumed to)",
             lambda: StreamRulesHarness(_core), "bmc", 12, PARAMS,
             mutant=lambda: Patched(lambda: StreamRulesHarness(_core), [(
                 vars(core_module), "ConfigPort", mutated(
                     "hw.stdp.config_port", "ConfigPort",
                     "with m.If(self.o_rdata.valid & self.o_rdata.ready):",
                     "with m.If(self.o_rdata.valid):"))]),
             mutation="read word withdrawn without a transfer"),
    Property("stdp.sticky_errors", "o_err bits stay set until i_err_clear",
             lambda: StickyHarness(_core, ["o_err"], "i_err_clear"), "prove", 1, PARAMS,
             mutant=lambda: StickyHarness(lambda: _core(mutated(
                 "hw.stdp.core", "STDPCore", "with m.If(self.i_err_clear):",
                 "with m.If(self.i_err_clear | ~self.i_aer.valid):")),
                 ["o_err"], "i_err_clear"),
             mutation="flags also cleared while no event is offered", mutant_depth=12),
]
