"""Stream plumbing with ``amaranth.lib.stream`` signatures: a skid buffer, a one-entry buffer and a
queue."""

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_int

__all__ = ["skid_buffer", "SkidBuffer", "HalfRateBuffer", "Queue"]


def skid_buffer(m, name, shape, in_valid, in_data, out_ready, *, free_load=False):
    """A two-entry skid buffer's logic, added to module ``m``; returns ``(in_ready, out_valid, out_data)``.

    ``in_ready`` is the inverse of a flip-flop (the second entry is free), so no path runs from
    ``out_ready`` to ``in_ready``. A transfer offered with ``in_valid`` while ``in_ready`` is taken;
    entries leave in order, one per cycle while ``out_ready``. Signals are named ``<name>_d0`` etc.

    With ``free_load`` the second entry's data register loads ``in_data`` in every cycle it is
    free (its contents are used only once it holds an entry), so its load enable is that
    flip-flop's inverse alone, not a decision with ``out_ready`` in it (a consumer's ready then
    reaches the first entry's data register only). The same transfers, cycle for cycle.
    """
    d0, d1 = Signal(shape, name=f"{name}_d0"), Signal(shape, name=f"{name}_d1")
    v0, v1 = Signal(name=f"{name}_v0"), Signal(name=f"{name}_v1")
    in_take = Signal(name=f"{name}_in_take")
    m.d.comb += in_take.eq(in_valid & ~v1)
    with m.If(~v0 | out_ready):
        with m.If(v1):
            m.d.sync += [d0.eq(d1), v0.eq(1)]
        with m.Else():
            m.d.sync += [d0.eq(in_data), v0.eq(in_take)]
    if free_load:
        with m.If(~v1):
            m.d.sync += d1.eq(in_data)
    else:
        with m.Elif(in_take):
            m.d.sync += d1.eq(in_data)
    # v1 as plain logic (set by a transfer the head cannot pass on, cleared when the head moves),
    # not as a flip-flop enable: the enable would be an OR of out_ready and in_take, one LUT level
    # more behind out_ready (a consumer's ready decode).
    m.d.sync += v1.eq(v0 & ~out_ready & (v1 | in_valid))
    return ~v1, v0, d0


class _Buffer(wiring.Component):
    """A component between two streams of ``shape``: ``i`` in, ``o`` out."""

    def __init__(self, shape):
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})


class SkidBuffer(_Buffer):
    """Two-entry skid buffer between two streams of ``shape``.

    Cuts every combinational path between the sides: ``o.valid`` and ``o.payload`` are registers,
    ``i.ready`` is a register's inverse. Full throughput (one transfer per cycle) while the consumer
    is ready; one cycle of latency. ``free_load``: as :func:`skid_buffer`'s.
    """

    def __init__(self, shape, *, free_load=False):
        self._free_load = free_load
        super().__init__(shape)

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        ready, valid, payload = skid_buffer(m, "skid", self._shape, i.valid, i.payload, o.ready,
                                            free_load=self._free_load)
        m.d.comb += [self.i.ready.eq(ready), self.o.valid.eq(valid), self.o.payload.eq(payload)]
        return m


class HalfRateBuffer(_Buffer):
    """One-entry buffer between two streams of ``shape``: every path between the sides cut, as by
    :class:`SkidBuffer`, with half of the entries and half of the rate.

    ``o.valid`` and ``o.payload`` are registers and ``i.ready`` is the inverse of ``o.valid``'s
    register (the entry is free), so no path runs from ``o.ready`` to ``i.ready``, and ``o.ready``
    reaches the valid flip-flop alone (a skid buffer's reaches its data registers' enables too).
    A transfer offered while the entry is free is taken; it is offered on ``o`` from the next cycle
    on, and the entry is free again in the cycle after it was taken: one transfer every two
    cycles at most, for a consumer that is always ready. The price of half of the flip-flops and
    no multiplexer in front of them.

    ``load_slice`` (default ``None``: one register): the data register's load enable ("the entry
    is free") comes from a copy of the inverse of ``o.valid`` per ``load_slice`` bits of the word
    (``keep`` registers, each set with the valid register's next value), so no flip-flop drives
    the enables of the whole word (the ULX3S engine's 256-bit activations: ``valid`` to the data
    enables, 8.75 ns aimed at 125 MHz). The same transfers, cycle for cycle.
    """

    def __init__(self, shape, *, load_slice=None):
        if load_slice is not None:
            check_int("load_slice", load_slice, 1)
        self._load_slice = load_slice
        super().__init__(shape)

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        data = Signal(self._shape, name="data", reset_less=True)   # read only while valid
        valid = Signal(name="valid")
        m.d.comb += [i.ready.eq(~valid), o.valid.eq(valid), o.payload.eq(data)]
        if self._load_slice is None:
            with m.If(~valid):
                m.d.sync += [data.eq(i.payload), valid.eq(i.valid)]
            with m.Elif(o.ready):
                m.d.sync += valid.eq(0)
            return m
        valid_next = Signal()
        m.d.comb += valid_next.eq(Mux(valid, ~o.ready, i.valid))
        m.d.sync += valid.eq(valid_next)
        bits = Value.cast(data)
        for k, lo in enumerate(range(0, len(bits), self._load_slice)):
            free = Signal(name=f"free{k}", init=1, attrs={"keep": 1})
            m.d.sync += free.eq(~valid_next)
            with m.If(free):
                m.d.sync += bits[lo:lo + self._load_slice].eq(Value.cast(i.payload)[lo:lo + self._load_slice])
        return m


class Queue(wiring.Component):
    """First-in first-out queue of ``depth`` entries of ``shape`` between two streams.

    ``amaranth.lib.fifo.SyncFIFOBuffered`` behind stream signatures: ``o.payload`` is a register,
    ``depth`` entries in all (``depth >= 1``; block RAM for larger depths where the device has it).
    """

    def __init__(self, shape, depth):
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise TypeError(f"depth must be an integer, not {type(depth).__name__}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self._shape, self._depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        width = len(Signal(self._shape))
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=width, depth=self._depth)
        m.d.comb += [q.w_data.eq(self.i.payload), q.w_en.eq(self.i.valid), self.i.ready.eq(q.w_rdy),
                     self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready)]
        return m
