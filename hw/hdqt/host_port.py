"""The HDQT layer's host port: tensor loads into the X, W and dY buffers, their maxima, W's read-back."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_pow2
from . import spec
from .update import absval

__all__ = ["HostPort", "load_layout", "lane", "BUF_X", "BUF_W", "BUF_DY", "LOAD_LATENCY"]

BUF_X, BUF_W, BUF_DY = 0, 1, 2
LOAD_LATENCY = 2   # register stages of a load: 1 writes the buffer, 2 ORs |x| into the maximum


def load_layout():
    return data.StructLayout({"buf": 2, "addr": 16, "data": signed(spec.W_BITS)})


def lane(view, idx, lanes):
    """Lane ``idx`` of a W word ``view`` of ``lanes`` weights (lane 0 when there is one)."""
    return view[idx] if lanes > 1 else view[0]


class HostPort(wiring.Component):
    """Host loads into the tensor buffers and the read-back of W, while the layer is idle (``i_idle``).

    * ``i_load`` (stream of :func:`load_layout`): ``ready`` is ``i_idle``. A load is registered (stage
      1: ``o_wr_addr``/``o_wr_data`` with one of ``o_x_wr_en``, ``o_dy_wr_en`` or the lane mask
      ``o_w_wr_en`` of W word ``addr / lanes``) and its magnitude registered again (stage 2) before it
      is ORed into ``o_max_x`` or ``o_max_w``; element 0 (``addr == 0``) restarts that maximum. A
      negative element of X counts 0 when ``i_x_unsigned`` was high with it (it quantizes to 0).
      ``o_busy``: a load is in either stage (the engines wait for it).
    * ``i_max_w_load`` sets ``o_max_w`` to ``i_max_w`` (the updated W's maximum) in that cycle, over a
      load's stage 2.
    * ``i_rd`` (element index of W) -> ``o_rd`` (the weight): W's read port is enabled
      (``o_w_rd_en``, word ``o_w_rd_addr``) when a request is taken, and ``i_w_rd_data`` (the word a
      cycle later) answers on ``o_rd``. ``i_rd`` is taken while idle and ``o_rd`` empty or taken;
      ``o_rd.valid`` holds while stalled and is forced low when not idle.
    """

    def __init__(self, *, lanes):
        check_pow2("lanes", lanes, 1, 16)
        self._u = lanes
        super().__init__({
            "i_idle": In(1),
            "i_x_unsigned": In(1),
            "i_load": In(stream.Signature(load_layout())),
            "o_busy": Out(1),
            "o_wr_addr": Out(16),
            "o_wr_data": Out(signed(spec.W_BITS)),
            "o_x_wr_en": Out(1),
            "o_dy_wr_en": Out(1),
            "o_w_wr_en": Out(lanes),
            "o_max_x": Out(16),
            "o_max_w": Out(16),
            "i_max_w_load": In(1),
            "i_max_w": In(16),
            "i_rd": In(stream.Signature(16)),
            "o_rd": Out(stream.Signature(signed(spec.W_BITS))),
            "o_w_rd_en": Out(1),
            "o_w_rd_addr": Out(16 - spec.log2(lanes)),
            "i_w_rd_data": In(data.ArrayLayout(signed(spec.W_BITS), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        U = self._u
        log_u = spec.log2(U)
        idle = self.i_idle
        m.d.comb += self.i_load.ready.eq(idle)
        ld = Signal(load_layout())
        lv1, lz1, lu1 = Signal(), Signal(), Signal()
        m.d.sync += lv1.eq(self.i_load.valid & idle)
        with m.If(self.i_load.valid & idle):
            m.d.sync += [ld.eq(self.i_load.payload), lz1.eq(self.i_load.payload.addr == 0),
                         lu1.eq(self.i_x_unsigned)]
        lv2, lb2, lz2, lclip2 = Signal(), Signal(2), Signal(), Signal()
        ld_abs = Signal(16)
        m.d.sync += [lv2.eq(lv1), lb2.eq(ld.buf), lz2.eq(lz1), lclip2.eq(ld.data[-1] & lu1),
                     ld_abs.eq(absval(m, ld.data, 16, "ld_abs_c"))]
        m.d.comb += [self.o_busy.eq(lv1 | lv2), self.o_wr_addr.eq(ld.addr), self.o_wr_data.eq(ld.data)]
        with m.If(lv1):
            with m.Switch(ld.buf):
                with m.Case(BUF_X):
                    m.d.comb += self.o_x_wr_en.eq(1)
                with m.Case(BUF_W):
                    m.d.comb += self.o_w_wr_en.eq(1 << ld.addr[:log_u])
                with m.Case(BUF_DY):
                    m.d.comb += self.o_dy_wr_en.eq(1)
        # "max" registers: OR of magnitudes (same leading one as the maximum)
        max_x = Signal(16)
        max_w = Signal(16)
        m.d.comb += [self.o_max_x.eq(max_x), self.o_max_w.eq(max_w)]
        ld_abs_x = Mux(lclip2, 0, ld_abs)
        with m.If(lv2):
            with m.Switch(lb2):
                with m.Case(BUF_X):
                    m.d.sync += max_x.eq(Mux(lz2, ld_abs_x, max_x | ld_abs_x))
                with m.Case(BUF_W):
                    m.d.sync += max_w.eq(Mux(lz2, ld_abs, max_w | ld_abs))
        with m.If(self.i_max_w_load):
            m.d.sync += max_w.eq(self.i_max_w)

        rd_v = Signal()
        rd_lane = Signal(range(U))
        m.d.comb += [self.i_rd.ready.eq(idle & (~rd_v | self.o_rd.ready)),
                     self.o_rd.valid.eq(idle & rd_v),
                     self.o_rd.payload.eq(lane(self.i_w_rd_data, rd_lane, U)),
                     self.o_w_rd_addr.eq(self.i_rd.payload >> log_u)]
        with m.If(idle & (~rd_v | self.o_rd.ready)):
            m.d.comb += self.o_w_rd_en.eq(1)
            m.d.sync += [rd_v.eq(self.i_rd.valid), rd_lane.eq(self.i_rd.payload[:log_u])]
        return m
