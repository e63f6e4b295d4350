"""A state machine with one flip-flop per state, for the controller's parsers.

Amaranth's ``m.FSM`` encodes its state in binary, and Yosys leaves a state register that has an
initial value as it is (recoding it would drop the initial value, so the machine could power up in
no state), so every decision of a binary machine goes through a decoder of the state bits. Here
each state is its own bit, with its own initial value (the first state is 1, the others 0), and
each bit is written only where the machine leaves that state or enters it.
"""

from contextlib import contextmanager

from amaranth.hdl import Signal

__all__ = ["OneHotFSM"]


class OneHotFSM:
    """One-hot state machine in module ``m``: ``states`` (names; the first is the initial state).

    Use ``with fsm.state(name):`` for a state's statements (like ``m.State``) and
    ``fsm.goto(name)`` inside it (like ``m.next``: the last ``goto`` that applies in a cycle
    wins). ``fsm.bit(name)`` is the state's flip-flop, named ``<prefix>_<name>``; ``on_goto(name)``,
    if given, returns more sync statements for each transition into ``name``.
    """

    def __init__(self, m, states, *, prefix, on_goto=None):
        states = tuple(states)
        if len(set(states)) != len(states) or not states:
            raise ValueError(f"states must be distinct names, not {states!r}")
        self._m = m
        self._bits = {s: Signal(init=(i == 0), name=f"{prefix}_{s}") for i, s in enumerate(states)}
        self._on_goto = on_goto
        self._current = None
        self._targets = None

    def bit(self, name):
        return self._bits[name]

    @contextmanager
    def state(self, name):
        if self._current is not None:
            raise RuntimeError("states cannot be nested")
        self._current, self._targets = name, set()
        with self._m.If(self._bits[name]):
            yield
        self._current, self._targets = None, None

    def goto(self, name):
        if self._current is None:
            raise RuntimeError("goto outside a state")
        stmts = [self._bits[self._current].eq(name == self._current), self._bits[name].eq(1)]
        # an earlier goto of this state that this one overrides must not leave its bit set
        stmts += [self._bits[t].eq(0) for t in self._targets if t not in (name, self._current)]
        if self._on_goto is not None:
            stmts += list(self._on_goto(name))
        self._m.d.sync += stmts
        self._targets.add(name)
