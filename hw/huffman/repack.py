"""Decoded symbols -> the MAC array's packed-weight beats (:mod:`hw.mac.spec`)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mac import spec as mac_spec
from ..params import check_int
from .decoder import output_layout

__all__ = ["WeightRepacker", "weight_symbol_order"]


def weight_symbol_order(wgt_words, cols, mode, packed=False):
    """The symbol sequence a compressed weight stream must hold so that the repacker rebuilds
    ``wgt_words`` (packed-weight beats, :func:`hw.mac.spec.pack_wgt_beat`): per beat, per column, per
    lane (lane 0 first), the lane field's raw bits (int4 ``-3`` -> ``0xD``, ternary ``-1`` -> ``0b11``).

    ``packed``: one symbol per column byte instead, i.e. the packed byte itself (int4: two weights per
    symbol, the first in the low nibble); the repacker then runs with ``i_mode`` = int8 (bytes pass
    whole) while the MAC array runs the weights' own mode."""
    mode = mac_spec.mode_code(mode)
    if packed:
        return [byte for word in wgt_words for byte in mac_spec.unpack_wgt_beat(word, cols)]
    bits, n = mac_spec.WEIGHT_BITS[mode], mac_spec.LANES[mode]
    out = []
    for word in wgt_words:
        for byte in mac_spec.unpack_wgt_beat(word, cols):
            out += [(byte >> (bits * lane)) & ((1 << bits) - 1) for lane in range(n)]
    return out


class WeightRepacker(wiring.Component):
    """Groups the decoder's values into packed-weight beats for a ``cols``-column MAC array.

    Each output beat takes ``cols * lanes(mode)`` consecutive symbols (in
    :func:`weight_symbol_order`) and packs each symbol's low ``WEIGHT_BITS[mode]`` bits into its lane
    field. ``i_mode`` (a MAC mode code, 0..3) must stay constant while a beat is being gathered. The
    decoder's block marks are ignored: the caller encodes whole tiles (a multiple of ``cols *
    lanes(mode)`` symbols per block, so no padding symbol ever reaches the array). One input beat per
    cycle, also in the cycle a finished output beat is taken, so the output rate is
    ``N / (cols * lanes(mode))`` beats per cycle (the decoder's N symbols/cycle are the limit).

    Parameters
    ----------
    lanes : int
        Decoder lanes N (symbols per input beat); ``cols`` must be a multiple of it.
    cols : int
        MAC array columns, 1..16.
    raw_bits : int
        The decoder's R (input values are ``8 + R`` bits; only the low bits are used).

    Members
    -------
    i_sym : In(stream.Signature(output_layout(lanes, raw_bits)))
    i_mode : In(3)
    o_wgt : Out(stream.Signature(cols * 8))

    Raises
    ------
    ValueError
        If a parameter is out of range or ``cols`` is not a multiple of ``lanes``.
    """

    def __init__(self, lanes=1, cols=4, raw_bits=8):
        self._N = check_int("lanes", lanes, 1, 8)
        self._C = check_int("cols", cols, 1, mac_spec.MAX_DIM)
        self._R = check_int("raw_bits", raw_bits, 0, 8)
        if cols % lanes:
            raise ValueError(f"cols must be a multiple of lanes ({lanes}), not {cols!r}")
        super().__init__({
            "i_sym": In(stream.Signature(output_layout(lanes, raw_bits))),
            "i_mode": In(mac_spec.MODE_BITS),
            "o_wgt": Out(stream.Signature(cols * mac_spec.WORD_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        N, C = self._N, self._C
        slots = C * mac_spec.MAX_LANES
        syms = Signal(data.ArrayLayout(8, slots))
        count = Signal(range(slots // N + 1))            # input beats gathered
        need = Signal(range(slots // N + 1))
        with m.Switch(self.i_mode):
            for code, n in mac_spec.LANES.items():
                with m.Case(code):
                    m.d.comb += need.eq(C * n // N)
            with m.Default():
                m.d.comb += need.eq(C // N)               # undefined mode: pack as int8

        full = Signal()
        take = self.o_wgt.valid & self.o_wgt.ready
        # the slot count, as it is after an output beat leaves in this cycle
        cnt = Signal.like(count)
        m.d.comb += [
            cnt.eq(Mux(take, 0, count)),
            self.i_sym.ready.eq(~full | self.o_wgt.ready),
            self.o_wgt.valid.eq(full),
        ]
        with m.If(take):
            m.d.sync += [full.eq(0), count.eq(0)]
        with m.If(self.i_sym.valid & self.i_sym.ready):
            for j in range(slots // N):
                with m.If(cnt == j):
                    for k in range(N):
                        m.d.sync += syms[j * N + k].eq(self.i_sym.payload.data[k][:8])
            m.d.sync += count.eq(cnt + 1)
            with m.If(cnt + 1 == need):
                m.d.sync += full.eq(1)

        packed = Signal(C * mac_spec.WORD_BITS)
        with m.Switch(self.i_mode):
            for code, n in mac_spec.LANES.items():
                bits = mac_spec.WEIGHT_BITS[code]
                with m.Case(code):
                    for c in range(C):
                        for lane in range(n):
                            lo = c * 8 + lane * bits
                            m.d.comb += packed[lo:lo + bits].eq(syms[c * n + lane][:bits])
            with m.Default():
                for c in range(C):
                    m.d.comb += packed[c * 8:c * 8 + 8].eq(syms[c])
        m.d.comb += self.o_wgt.payload.eq(packed)
        return m
