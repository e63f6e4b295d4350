"""Sticky error flags: a harness that checks a component's flags never fall unless cleared."""

from amaranth.hdl import Assert, Module, Value

from .harness import Harness, StreamRulesHarness

__all__ = ["StickyHarness"]


class StickyHarness(Harness):
    """All inputs of ``make_component()`` free (stream rules assumed of its inputs); each bit of the
    ``flags`` outputs, once high, stays high in every later cycle unless ``clear`` (an input) was
    high in the cycle before."""

    def __init__(self, make_component, flags, clear):
        super().__init__()
        self.inner = StreamRulesHarness(make_component, asserts=False)
        self.ports = self.inner.ports
        self.flags, self.clear = flags, clear

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        dut = self.inner.dut
        clear = getattr(dut, self.clear)
        for name in self.flags:
            flag = Value.cast(getattr(dut, name))
            before = self.past(m, flag, f"{name}_before")
            cleared = self.past(m, clear, f"{name}_cleared")
            m.d.comb += Assert(cleared | ((before & ~flag) == 0))
        return m
