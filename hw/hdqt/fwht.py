"""Streaming fast Walsh-Hadamard transform: radix-2 single-path delay-feedback pipeline."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import check_int, check_pow2
from . import spec

__all__ = ["FWHT"]

#: Delay lines up to this length are shift registers; longer ones are memories (block RAM).
SHIFT_MAX = 8


class FWHT(wiring.Component):
    """Streaming unnormalised Walsh-Hadamard transform ``y = H_n x`` (Sylvester order, :mod:`hw.hdqt.spec`).

    Input is a stream of ``n``-element vectors, one element per transfer, in natural order; output is
    the transformed vectors, in natural order, ``log2 n`` bits wider. Throughput is one element per
    cycle sustained (no bubbles between vectors while input is valid and output is ready).

    Architecture: ``log2 n`` radix-2 single-path delay-feedback (SDF) stages of span
    ``n/2, n/4, ..., 1``. A stage of span ``h`` keeps a delay line of ``h`` entries (a memory with a
    prefetching synchronous read port, so it maps to block RAM; a shift register for ``h <= 8``): the
    first ``h`` elements of each ``2h`` block are stored, the second ``h`` leave as ``a + b`` while
    ``a - b`` is stored and leaves during the next block's first half. The Walsh-Hadamard butterflies
    of different index bits commute and act in place, so the result comes out in natural order. Every
    stage output is registered (one adder per clock path).

    Flow control: the whole pipeline advances in lock step (one global enable). Every pipeline slot
    carries a "real" bit. When the input runs dry at a vector boundary while real data is still inside,
    the pipeline inserts a whole vector of "bubbles" (data don't-care) to push it out (a partial bubble
    vector would mix with real data in the butterflies); input offered during a bubble vector waits
    for its end.
    Latency from the last element of a vector in to its first element out: about ``n/2 + log2 n``
    cycles of advance; a flushed tail costs at most two bubble vectors.

    Parameters
    ----------
    n : int
        Transform size, a power of two from 2 to 128.
    width : int
        Input element width (signed), 2 to 32 bits.

    Members
    -------
    i_data : In(stream.Signature(signed(width)))
        Input elements.
    o_data : Out(stream.Signature(signed(width + log2 n)))
        Transformed elements.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two in range or ``width`` is out of range.
    """

    def __init__(self, n=64, width=16):
        self._n = check_pow2("n", n, spec.MIN_FWHT, spec.MAX_FWHT)
        self._width = check_int("width", width, 2, 32)
        self._log2n = spec.log2(n)
        super().__init__({
            "i_data": In(stream.Signature(signed(width))),
            "o_data": Out(stream.Signature(signed(width + self._log2n))),
        })

    @property
    def n(self):
        return self._n

    @property
    def out_width(self):
        return self._width + self._log2n

    @property
    def latency(self):
        """Pipeline depth in advances: an element entering at advance t leaves at t + latency."""
        return self._n - 1 + self._log2n

    def elaborate(self, platform):
        m = Module()
        n, w = self._n, self._width

        can_adv = Signal()
        adv = Signal()
        bubble_now = Signal()
        bubbling = Signal()
        p0 = Signal(range(n))
        inflight = Signal(range(self.latency + 2))
        busy = Signal()                       # registered inflight != 0 (off the enable's path)
        at_start = Signal(init=1)             # registered p0 == 0, for the same reason

        out_valid = Signal()
        m.d.comb += can_adv.eq(~out_valid | self.o_data.ready)

        # Stage-0 input: the stream element, or a zero bubble.
        x = Signal(signed(w))
        xr = Signal()
        m.d.comb += [
            # A bubble vector starts only at a vector boundary and then runs to its end.
            bubble_now.eq(Mux(at_start, ~self.i_data.valid & busy, bubbling)),
            x.eq(self.i_data.payload),
            xr.eq(~bubble_now & self.i_data.valid),
            # ready does not look at valid: at a vector boundary a valid element is always taken (a
            # bubble vector starts only without one), so the transfers are those of ~bubble_now
            self.i_data.ready.eq(Mux(at_start, 1, ~bubbling) & can_adv),
            adv.eq(can_adv & (bubble_now | self.i_data.valid)),
        ]
        # A bubble's data is never zeroed (its real bit is 0 and it never meets real data in a
        # butterfly): keeping bubble_now out of the data path keeps the adders off the control path.
        with m.If(adv):
            m.d.sync += [p0.eq(p0 + 1), at_start.eq(p0 == n - 1)]
            with m.If(at_start):
                m.d.sync += bubbling.eq(bubble_now)
        o_xfer = Signal()
        m.d.comb += o_xfer.eq(out_valid & self.o_data.ready)
        real_in = Signal()
        m.d.comb += real_in.eq(adv & xr)
        inflight_next = Signal.like(inflight)
        m.d.comb += inflight_next.eq(inflight + real_in - o_xfer)
        m.d.sync += [inflight.eq(inflight_next), busy.eq(inflight_next != 0)]

        delay = 0  # advances between stage 0's input and this stage's input
        cur, cur_r, cur_w = x, xr, w
        h = n // 2
        while h >= 1:
            cur, cur_r = self._stage(m, adv, h, delay, cur, cur_r, cur_w, o_xfer if h == 1 else None)
            delay += h + 1
            cur_w += 1
            h //= 2
        m.d.comb += [
            out_valid.eq(cur_r),
            self.o_data.valid.eq(cur_r),
            self.o_data.payload.eq(cur),
        ]
        return m

    def _stage(self, m, adv, h, delay, x, xr, w, taken=None):
        """One SDF stage of span ``h``; returns its registered output (data, real).

        ``taken`` (last stage only): the output was transferred; without an advance the register must
        then drop its real bit, or the element would be sent twice.
        """
        period = 2 * h
        p = Signal(range(period), name=f"p{h}", init=(-delay) % period)
        p_next = Signal(range(period), name=f"p{h}_nx")
        m.d.comb += p_next.eq(p + 1)  # wraps: the period is a power of two
        layout = data.StructLayout({"d": signed(w + 1), "r": 1})
        if h <= SHIFT_MAX:
            # Short delay lines are shift registers: the oldest entry is a flip-flop output, so the
            # butterfly adders start right at a register (no read multiplexer in front of them).
            line = [Signal(layout, name=f"line{h}_{i}") for i in range(h)]
            a, ar = line[-1].d, line[-1].r
        else:
            mem = Memory(shape=layout, depth=h, init=[])
            m.submodules[f"line{h}"] = mem
            rd = mem.read_port(domain="sync")
            wr = mem.write_port()
            slot = p[:spec.log2(h)]
            m.d.comb += [
                rd.en.eq(adv),
                rd.addr.eq(slot + 1),
                wr.addr.eq(slot),
                wr.en.eq(adv),
            ]
            a, ar = rd.data.d, rd.data.r

        second = p[spec.log2(h)]  # position in the upper half of the 2h block
        out = Signal(signed(w + 1), name=f"s{h}_out")
        out_r = Signal(name=f"s{h}_out_r")
        store = Signal(layout, name=f"s{h}_store")
        with m.If(second):
            m.d.comb += [out.eq(a + x), out_r.eq(xr), store.d.eq(a - x), store.r.eq(xr)]
        with m.Else():
            m.d.comb += [out.eq(a), out_r.eq(ar), store.d.eq(x), store.r.eq(xr)]
        if h <= SHIFT_MAX:
            with m.If(adv):
                m.d.sync += [line[0].eq(store)] + [line[i].eq(line[i - 1]) for i in range(1, h)]
        else:
            m.d.comb += wr.data.eq(store)

        reg = Signal(signed(w + 1), name=f"s{h}_q")
        reg_r = Signal(name=f"s{h}_q_r")
        with m.If(adv):
            m.d.sync += [reg.eq(out), reg_r.eq(out_r), p.eq(p_next)]
        if taken is not None:
            with m.Elif(taken):
                m.d.sync += reg_r.eq(0)
        return reg, reg_r
