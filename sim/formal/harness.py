"""Building blocks for formal harnesses: free inputs, past values, the design's internal signals,
and the stream rules for every ``stream.Signature`` port of a component.

A harness is an Elaboratable whose ``ports`` are its free inputs (the solver chooses them every
cycle); everything else is driven by the design. The harnesses assume the reset input low: the
registers start from their ``init`` values (as after a reset) and the design is never reset again.
"""

import contextlib
import importlib
import inspect
from unittest import mock

from amaranth.hdl import Assert, Assume, Elaboratable, Fragment, Module, ResetSignal, Signal, Value
from amaranth.lib import stream, wiring

__all__ = ["Harness", "DutHarness", "internals", "stream_ports", "add_stream_rules", "StreamRulesHarness",
           "mutated", "Patched"]


class Harness(Elaboratable):
    """Base class: ``free(shape, name)`` makes a free input; ``past(m, value)`` is ``value`` one cycle
    earlier (its ``init`` in the first cycle); ``started`` (after :meth:`begin`) is low only in the
    first cycle, so that properties about ``past`` values skip it."""

    def __init__(self):
        self.ports = []

    def free(self, shape=1, name=None):
        sig = Signal(shape, name=name)
        self.ports.append(sig)
        return sig

    def bind_inputs(self, component):
        """Make every input of ``component`` a free input of the harness."""
        for _path, member, value in component.signature.flatten(component):
            if member.flow == wiring.In:
                self.ports.append(Value.cast(value))

    def begin(self, m):
        m.d.comb += Assume(~ResetSignal())
        self.started = Signal(name="started")
        m.d.sync += self.started.eq(1)

    @staticmethod
    def past(m, value, name=None):
        value = Value.cast(value)
        reg = Signal(value.shape(), name=name)
        m.d.sync += reg.eq(value)
        return reg


class DutHarness(Harness):
    """A harness around one component whose inputs are all free; a subclass states its checks in
    ``check(m, dut)``."""

    def __init__(self, dut):
        super().__init__()
        self.dut = dut
        self.bind_inputs(dut)

    def elaborate(self, platform):
        m = Module()
        self.begin(m)
        m.submodules.dut = self.dut
        self.check(m, self.dut)
        return m

    def check(self, m, dut):
        raise NotImplementedError


def internals(elaboratable, platform=None):
    """Elaborate ``elaboratable`` and return ``(fragment, signals)``: the fragment (add it as a
    submodule in its place) and its own signals by name, so a harness can state invariants about
    state the design keeps in ``elaborate`` locals. Names that occur twice map to the first."""
    frag = Fragment.get(elaboratable, platform)
    found = {}

    def visit(stmts):
        for stmt in stmts:
            for sig in list(stmt._lhs_signals()) + list(stmt._rhs_signals()):
                found.setdefault(sig.name, sig)

    for stmts in frag.statements.values():
        visit(stmts)
    return frag, found


def stream_ports(component):
    """``(name, flow, interface)`` for every ``stream.Signature`` member of ``component``, also those
    nested in a sub-signature (``flow`` is the stream's own: ``Out`` means the component drives
    ``valid`` and the payload)."""
    found = []

    def walk(signature, obj, prefix, flip):
        for name, member in signature.members.items():
            if not member.is_signature:
                continue
            sub = getattr(obj, name)
            flow = member.flow if not flip else member.flow.flip()
            sig = member.signature
            unflipped = sig.flip() if isinstance(sig, wiring.FlippedSignature) else sig
            if isinstance(unflipped, stream.Signature):
                found.append((prefix + name, flow, sub))
            else:
                walk(sig, sub, prefix + name + ".", flow == wiring.In)

    walk(component.signature, component, "", False)
    return found


def add_stream_rules(m, harness, component, *, check_inputs=False, asserts=True):
    """The stream rules on every stream port of ``component``: while ``valid`` is high and ``ready``
    low, ``valid`` stays high and the payload does not change. Assumed of the streams the component
    consumes (unless ``check_inputs``: then nothing is assumed), asserted of those it produces.
    With ``asserts=False`` only the assumptions are added. Returns the names of the streams
    asserted."""
    asserted = []
    for name, flow, port in stream_ports(component):
        label = name.replace(".", "_")
        p_valid = harness.past(m, port.valid, f"{label}_past_valid")
        p_ready = harness.past(m, port.ready, f"{label}_past_ready")
        payload = Value.cast(port.payload)
        p_payload = harness.past(m, payload, f"{label}_past_payload")
        held = harness.started & p_valid & ~p_ready
        rule = ~held | (port.valid & (payload == p_payload))
        if flow == wiring.Out:
            if asserts:
                m.d.comb += Assert(rule)
                asserted.append(name)
        elif not check_inputs:
            m.d.comb += Assume(rule)
    return asserted


class StreamRulesHarness(Harness):
    """Wraps any component: all its inputs free, the stream rules assumed of its input streams
    and asserted of its output streams. ``drop_assumptions`` leaves the inputs unconstrained (the
    mutation that shows the check can fail when a producer breaks the rules and the design passes
    its input straight through). ``quiet``: control inputs assumed low throughout (overrides
    that legitimately replace a pending word, such as a seed load); ``constraints(dut)``: more
    conditions on the inputs, assumed every cycle."""

    def __init__(self, make_component, *, drop_assumptions=False, asserts=True, quiet=(),
                 constraints=None):
        super().__init__()
        self.dut = make_component()
        self.drop_assumptions = drop_assumptions
        self.asserts = asserts
        self.quiet = quiet
        self.constraints = constraints
        self.fragment = None      # set to the dut's elaborated fragment when a harness needs internals
        self.bind_inputs(self.dut)

    def elaborate(self, platform):
        m = Module()
        self.begin(m)
        m.submodules.dut = self.dut if self.fragment is None else self.fragment
        for name in self.quiet:
            m.d.comb += Assume(~getattr(self.dut, name))
        if self.constraints is not None:
            m.d.comb += [Assume(c) for c in self.constraints(self.dut)]
        streams = add_stream_rules(m, self, self.dut, check_inputs=self.drop_assumptions,
                                   asserts=self.asserts)
        if self.asserts and not streams:
            raise ValueError(f"{type(self.dut).__name__} has no output stream")
        return m


def mutated(module_name, attr, old, new):
    """``attr`` of module ``module_name`` re-executed with the source text ``old`` replaced by
    ``new`` (which must occur exactly once): a mutant of the design for the checks that show a
    property can fail."""
    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    count = source.count(old)
    if count != 1:
        raise ValueError(f"mutation text occurs {count} times in {module_name}, not once: {old!r}")
    namespace = {"__name__": module_name, "__package__": module.__package__, "__file__": module.__file__}
    exec(compile(source.replace(old, new), module.__file__, "exec"), namespace)
    return namespace[attr]


class Patched(Elaboratable):
    """A harness built and elaborated while ``patches`` (``(namespace, name, value)`` triples; a
    namespace is a module's or a function's globals dict) are in place: how a harness scales a
    module constant down, or a mutant replaces a class that the design instantiates inside."""

    def __init__(self, make_harness, patches):
        self.patches = patches
        with self._patched():
            self.inner = make_harness()
        self.ports = self.inner.ports

    @contextlib.contextmanager
    def _patched(self):
        with contextlib.ExitStack() as stack:
            for namespace, name, value in self.patches:
                stack.enter_context(mock.patch.dict(namespace, {name: value}))
            yield

    def elaborate(self, platform):
        with self._patched():
            return Fragment.get(self.inner, platform)
