from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_int
from . import spec

__all__ = ["GaloisLFSR"]


class GaloisLFSR(wiring.Component):
    """Leap-forward Galois LFSR: a stream of pseudo-random words.

    The state advances ``steps`` Galois steps (see :mod:`hw.lfsr.spec`) for every word taken from
    ``o_random``; the ``steps`` steps are unrolled into one cycle of XOR logic, so with
    ``steps == width`` consecutive words share no shifted bits. ``o_random.payload`` is the current
    state; ``o_random.valid`` is always 1 after reset, so the stream never stalls a consumer.

    Parameters
    ----------
    width : int
        State and output width, 3 to 32.
    steps : int
        Galois steps per output word, 1 to 64. Default: ``width``.
    seed : int
        Reset state (0 is replaced by 1, since 0 is a fixed point).

    Members
    -------
    o_random : Out(stream.Signature(width))
        One pseudo-random word per transfer.
    i_seed : In(width)
        Seed value; loaded when ``i_load`` is high (takes priority over advancing).
    i_load : In(1)

    Raises
    ------
    ValueError
        If ``width``, ``steps`` or ``seed`` is out of range.
    """

    def __init__(self, width=16, steps=None, seed=1):
        self.width = check_int("width", width, spec.MIN_WIDTH, spec.MAX_WIDTH)
        self.steps = check_int("steps", width if steps is None else steps, 1, 64)
        self._seed = check_int("seed", seed, 0, (1 << width) - 1)
        super().__init__({
            "o_random": Out(stream.Signature(width)),
            "i_seed": In(width),
            "i_load": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        state = Signal(w, init=spec.normalize_seed(self._seed, w))

        nxt = state
        for i in range(self.steps):
            # One Galois step: shift right, XOR the taps when the LSB was 1. Each step is named by a
            # signal, so the expression stays a chain rather than a tree that doubles per step.
            step = Signal(w, name=f"step{i}")
            m.d.comb += step.eq((nxt >> 1) ^ Mux(nxt[0], Const(spec.TAPS[w], w), Const(0, w)))
            nxt = step

        m.d.comb += [
            self.o_random.valid.eq(1),
            self.o_random.payload.eq(state),
        ]
        with m.If(self.i_load):
            m.d.sync += state.eq(Mux(self.i_seed.any(), self.i_seed, 1))
        with m.Elif(self.o_random.ready):
            m.d.sync += state.eq(nxt)
        return m
