"""Command group 2: one HDQT training step of a linear layer (:class:`hw.hdqt.layer.HdqtLayer`).

The layer's sizes (batch ``B``, inputs ``K``, outputs ``O``) and its MAC array are fixed when the
design is built (:mod:`boards.config`); a step trains ``Y = X W^T`` with X: B x K, W: O x K (master
weights, 16-bit fixed point) and the output gradient dY: B x O, all 16-bit signed, row-major.

Commands (multi-byte fields little-endian):

* ``HDQT_LOAD`` (0x20): ``sel`` (1 byte: bits 1:0 the tensor, 0 = X, 1 = W, 2 = dY; bit 7 =
  ``x_unsigned``, latched by every load: X is a non-negative tensor, quantized unsigned), ``addr``
  (2 bytes), then int16 elements written to ``addr``, ``addr + 1``, ... A load of element 0 of X or
  W restarts that tensor's running maximum (the layer tracks ``max|.|`` while loading), so load whole
  tensors, element 0 first. Bad tensor, odd element bytes or elements beyond the tensor:
  ``ERR_LENGTH`` with nothing written.
* ``HDQT_STEP`` (0x21): ``exp_base`` (int16: ``dy_exp + x_exp - lr_shift + w_frac - log2 n_B``,
  :func:`sim.hdqt.golden.ref_exp_base`). Clears the layer's flags, runs one training step (forward,
  input gradient, weight gradient, SGD update of W in place). Reply (11 bytes): the six quantizer
  shifts (x, w, w', dy', dy'', x''; one byte each), flags (bit 0 a master weight saturated, bit 1 the
  MAC array's wide accumulator saturated), the step's cycles (u32). Payload not 2 bytes:
  ``ERR_LENGTH``.
* ``HDQT_READ`` (0x22): ``what`` (1 byte: 0 = results, 1 = W), ``addr`` (2), ``count`` (2). Results
  (int32 each, at most 128 per reply) are the MAC array's result rows in the order the layer produced
  them: Y's ``B*O/cols`` rows of ``cols`` accumulators (tiles of ``rows`` rows, tile-row-major), then
  dX's ``B*K/cols`` rows; the host reorders them (:func:`result_order`). W: int16 each (at most 256
  per reply). Out of range: ``ERR_LENGTH``.

Decision: results are kept in an on-chip result memory in arrival order rather than streamed into
the reply, because Y and dX together exceed one reply frame at every useful size and the layer
produces them in the middle of the step (the layer waits while a result is being stored, so
nothing is lost). A MAC-array overflow during a step also sets the group's sticky ``error`` (block
flag 2 in ``STATUS``) until ``RESET``; a saturated master weight is ordinary training behaviour
(weights clip at the Q2.13 rails) and only reported in the step's reply.

Cycle cost: a load takes one cycle per element; the step takes the layer's cycles
(:meth:`hw.hdqt.layer.HdqtLayer.mac_macs` MACs at up to ``2*rows*cols`` per cycle, plus the FWHT and
quantizer passes at one element per cycle) plus ``cols - 1`` cycles per result row.
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from ..hdqt.layer import HdqtLayer
from ..hdqt.spec import LayerConfig
from .handler import HandlerSignature
from .protocol import Cmd, Status

__all__ = ["HDQTHandler", "result_order", "MAX_READ_RESULTS", "MAX_READ_WEIGHTS"]

MAX_READ_RESULTS = 128   # 4-byte results in a 512-byte reply
MAX_READ_WEIGHTS = 256   # 2-byte weights in a 512-byte reply
STEP_REPLY_BYTES = 11


def result_order(batch, k_dim, o_dim, rows, cols):
    """Where each stored result goes: a list of ``(tensor, row, col)`` (tensor 0 = Y, 1 = dX) per
    result-memory address, following the layer's output order (tiles ``rows x cols``, tile-row-major
    over the output, ``rows`` result rows per tile)."""
    order = []
    for tensor, n_cols in ((0, o_dim), (1, k_dim)):
        for mb in range(batch // rows):
            for nb in range(n_cols // cols):
                for r in range(rows):
                    for c in range(cols):
                        order.append((tensor, mb * rows + r, nb * cols + c))
    return order


class HDQTHandler(wiring.Component):
    """The HDQT command group (see the module docstring).

    Parameters
    ----------
    **params
        :class:`hw.hdqt.layer.HdqtLayer` parameters (``batch``, ``k_dim``, ``o_dim``, ``had_cap``,
        ``rows``, ``cols``, ``acc_width``, ``tile_bits``, ``backend``, ``primitives``).

    Members
    -------
    bus : Out(HandlerSignature())

    Raises
    ------
    ValueError
        If a layer parameter is out of range.
    """

    bus: Out(HandlerSignature())

    def __init__(self, **params):
        self._params = dict(params)
        # Bad parameters raise here, with the layer config's message.
        self.config = cfg = LayerConfig(**params)
        self.batch, self.k_dim, self.o_dim = cfg.batch, cfg.k_dim, cfg.o_dim
        self.rows, self.cols, self.acc_width = cfg.rows, cfg.cols, cfg.acc_width
        self.sizes = (self.batch * self.k_dim, self.o_dim * self.k_dim, self.batch * self.o_dim)
        self.n_results = self.batch * (self.o_dim + self.k_dim)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.layer = layer = HdqtLayer(**self._params)
        C = self.cols
        m.submodules.results = rmem = Memory(shape=signed(self.acc_width), depth=self.n_results, init=[])
        r_wr, r_rd = rmem.write_port(), rmem.read_port()
        bus = self.bus

        status = Signal(8)
        count = Signal(16)                 # payload bytes taken / reply bytes sent
        sel = Signal(8)
        addr = Signal(16)
        num = Signal(16)
        lo = Signal(8)
        x_uns = Signal()
        exp_base = Signal(signed(16))
        cycles = Signal(32)
        res_ptr = Signal(range(self.n_results + 1))
        res_c = Signal(range(C))
        err = Signal()
        shifts = Signal(48)
        flags = Signal(2)
        out = Signal(32)                   # value being sent, low byte first
        nbyte = Signal(3)
        width = Signal(3)                  # bytes per value being read back
        take = bus.i_data.valid & bus.i_data.ready

        m.d.comb += [bus.error.eq(err), layer.i_x_unsigned.eq(x_uns), layer.i_exp_base.eq(exp_base)]
        with m.If(layer.o_mac_overflow):
            m.d.sync += err.eq(1)

        # Result rows into the result memory, one accumulator per cycle; the layer waits meanwhile.
        row = layer.o_res.payload.data
        m.d.comb += [r_wr.addr.eq(res_ptr), r_wr.data.eq(row[0])]
        for c in range(1, C):
            with m.If(res_c == c):
                m.d.comb += r_wr.data.eq(row[c])
        with m.If(layer.o_res.valid & (res_ptr < self.n_results)):
            m.d.comb += r_wr.en.eq(1)
            m.d.sync += res_ptr.eq(res_ptr + 1)
            with m.If(res_c == C - 1):
                m.d.comb += layer.o_res.ready.eq(1)
                m.d.sync += res_c.eq(0)
            with m.Else():
                m.d.sync += res_c.eq(res_c + 1)

        sizes = self.sizes
        with m.FSM():
            with m.State("IDLE"):
                with m.If(bus.start):
                    m.d.sync += [count.eq(0), status.eq(Status.OK)]
                    with m.Switch(bus.cmd):
                        with m.Case(Cmd.HDQT_LOAD):
                            m.next = "HDR"
                        with m.Case(Cmd.HDQT_STEP):
                            m.next = "HDR"
                        with m.Case(Cmd.HDQT_READ):
                            m.next = "HDR"
                        with m.Default():
                            m.d.sync += status.eq(Status.ERR_UNKNOWN_CMD)
                            m.next = "DONE"

            # Header bytes: LOAD sel, addr (3); STEP exp_base (2); READ what, addr, count (5).
            with m.State("HDR"):
                hdr_len = Signal(3)
                with m.Switch(bus.cmd):
                    with m.Case(Cmd.HDQT_LOAD):
                        m.d.comb += hdr_len.eq(3)
                    with m.Case(Cmd.HDQT_STEP):
                        m.d.comb += hdr_len.eq(2)
                    with m.Default():
                        m.d.comb += hdr_len.eq(5)
                with m.If(count == hdr_len):
                    m.next = "CHECK"
                with m.Elif(bus.length < hdr_len):
                    m.d.sync += status.eq(Status.ERR_LENGTH)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(take):
                        m.d.sync += count.eq(count + 1)
                        b = bus.i_data.payload
                        with m.Switch(count):
                            with m.Case(0):
                                m.d.sync += [sel.eq(b), exp_base[:8].eq(b)]
                            with m.Case(1):
                                m.d.sync += [addr[:8].eq(b), exp_base[8:].eq(b)]
                            with m.Case(2):
                                m.d.sync += addr[8:].eq(b)
                            with m.Case(3):
                                m.d.sync += num[:8].eq(b)
                            with m.Case(4):
                                m.d.sync += num[8:].eq(b)

            with m.State("CHECK"):
                with m.Switch(bus.cmd):
                    with m.Case(Cmd.HDQT_LOAD):
                        n_el = (bus.length - 3) >> 1
                        buf = sel[:2]
                        size = Signal(16)
                        with m.Switch(buf):
                            for b_i, sz in enumerate(sizes):
                                with m.Case(b_i):
                                    m.d.comb += size.eq(sz)
                        with m.If((buf == 3) | ~bus.length[0] | (addr + n_el > size)):
                            m.d.sync += status.eq(Status.ERR_LENGTH)
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += x_uns.eq(sel[7])
                            m.next = "LOAD"
                    with m.Case(Cmd.HDQT_STEP):
                        with m.If(bus.length != 2):
                            m.d.sync += status.eq(Status.ERR_LENGTH)
                            m.next = "DONE"
                        with m.Else():
                            m.d.comb += layer.i_clear.eq(1)
                            m.d.sync += [res_ptr.eq(0), res_c.eq(0), cycles.eq(0)]
                            m.next = "START"
                    with m.Default():
                        limit = Signal(16)
                        per = Signal(16)
                        m.d.comb += [limit.eq(self.n_results), per.eq(MAX_READ_RESULTS)]
                        with m.If(sel[0]):
                            m.d.comb += [limit.eq(sizes[1]), per.eq(MAX_READ_WEIGHTS)]
                        with m.If((bus.length != 5) | (sel[1:] != 0) | (num == 0) | (num > per)
                                  | (addr + num > limit)):
                            m.d.sync += status.eq(Status.ERR_LENGTH)
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [count.eq(0), width.eq(4 - 2 * sel[0])]
                            with m.If(sel[0]):
                                m.next = "W_REQ"
                            with m.Else():
                                m.next = "R_FETCH"

            with m.State("LOAD"):
                with m.If(count == bus.length):
                    m.next = "DONE"
                with m.Elif(count[0]):
                    # First byte of an element (the 3-byte header leaves odd offsets first).
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(take):
                        m.d.sync += [lo.eq(bus.i_data.payload), count.eq(count + 1)]
                with m.Else():
                    m.d.comb += [layer.i_load.valid.eq(bus.i_data.valid),
                                 layer.i_load.payload.buf.eq(sel[:2]),
                                 layer.i_load.payload.addr.eq(addr),
                                 layer.i_load.payload.data.eq(lo | (bus.i_data.payload << 8)),
                                 bus.i_data.ready.eq(layer.i_load.ready)]
                    with m.If(take):
                        m.d.sync += [count.eq(count + 1), addr.eq(addr + 1)]

            with m.State("START"):
                m.d.comb += layer.i_start.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(~layer.o_busy):
                    m.d.sync += [shifts.eq(layer.o_shifts.as_value()),
                                 flags.eq(layer.o_w_saturated | (layer.o_mac_overflow << 1)),
                                 count.eq(0)]
                    m.next = "STEP_REPLY"
            with m.State("STEP_REPLY"):
                # 6 shift bytes, the flags byte, 4 cycle-count bytes.
                byte = Signal(8)
                for i in range(6):
                    with m.If(count == i):
                        m.d.comb += byte.eq(shifts[6 * i:6 * i + 6])
                with m.If(count == 6):
                    m.d.comb += byte.eq(flags)
                for i in range(4):
                    with m.If(count == 7 + i):
                        m.d.comb += byte.eq(cycles[8 * i:8 * i + 8])
                with m.If(count == STEP_REPLY_BYTES):
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(byte)]
                    with m.If(bus.o_data.ready):
                        m.d.sync += count.eq(count + 1)

            # Read-back of results: memory read (one cycle), then 4 bytes.
            with m.State("R_FETCH"):
                m.d.comb += r_rd.addr.eq(addr)
                m.next = "R_LATCH"
            with m.State("R_LATCH"):
                m.d.sync += [out.eq(r_rd.data), nbyte.eq(0), addr.eq(addr + 1), count.eq(count + 1)]
                m.next = "SEND"
            # Read-back of W through the layer's read stream (idle only).
            with m.State("W_REQ"):
                m.d.comb += [layer.i_rd.valid.eq(1), layer.i_rd.payload.eq(addr)]
                with m.If(layer.i_rd.ready):
                    m.d.sync += [addr.eq(addr + 1), count.eq(count + 1)]
                    m.next = "W_WAIT"
            with m.State("W_WAIT"):
                m.d.comb += layer.o_rd.ready.eq(1)
                with m.If(layer.o_rd.valid):
                    m.d.sync += [out.eq(layer.o_rd.payload), nbyte.eq(0)]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(out[:8])]
                with m.If(bus.o_data.ready):
                    m.d.sync += [out.eq(out >> 8), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte + 1 == width):
                        with m.If(count == num):
                            m.next = "DONE"
                        with m.Elif(sel[0]):
                            m.next = "W_REQ"
                        with m.Else():
                            m.next = "R_FETCH"

            with m.State("DONE"):
                m.d.comb += [bus.done.eq(1), bus.status.eq(status)]
                m.next = "IDLE"
        return m
