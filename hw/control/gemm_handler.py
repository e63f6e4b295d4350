"""Command group 1: Huffman-compressed weights into the MAC array (GEMV per command).

Blocks: :class:`hw.huffman.HuffmanDecoder` (1 lane, INT mode without raw bits: 8-bit symbols are
the int8 weights' two's-complement bytes) writes decoded weights into a weight memory;
:class:`hw.mac.array.MacArray` (1 row, ``cols`` columns, int8 mode) computes from it.

Commands (multi-byte fields little-endian):

* ``LOAD_HUFFMAN`` (0x10): one serialized code table (:func:`hw.huffman.spec.serialize_table`),
  16-bit words. Clears the decoder (its previous tables, flags and FIFOs) and rewinds the weight
  write pointer to 0: a new model starts, and its table is the decoder's table 0. Odd length:
  ``ERR_LENGTH``.
* ``LOAD_WEIGHTS`` (0x11): exactly one compressed block (header + payload words, 16-bit each) of
  the decoder's block stream; its decoded values are appended to the weight memory. Reply: empty;
  ``ERR_BLOCK`` if the decoder flagged the block (bad CRC, invalid code, ...) or the weight memory
  is full (the extra values are dropped). A block the decoder drops entirely (bad header) answers
  ``ERR_TIMEOUT`` through the controller's watchdog, which resets this group (reload the model).
* ``GEMM`` (0x12): ``n_out`` (2 bytes, 1..128), ``k`` (2 bytes, 1..``max_k``), ``wbase`` (2 bytes),
  then ``k`` int8 activations ``x``. Reply: ``n_out`` int32 values
  ``y[n] = sum_k x[k] * W[wbase + n*k + k']`` (weights row-major from ``wbase``), computed by the MAC
  array with its ``acc_width``-bit saturating accumulators (sign-extended to 32 bits).
  Bad sizes: ``ERR_LENGTH``.

Cycle cost per GEMM: ``k`` cycles to buffer the activations, then per tile of ``cols`` outputs
``k * (2 * cols + 2)`` cycles to gather weight beats (one single-port weight memory) plus the array's
latency — well below the UART time of the reply for every size that fits a frame.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from ..huffman.decoder import HuffmanDecoder
from ..mac import spec as mac_spec
from ..mac.array import MacArray
from ..params import check_bool, check_choice, check_int, check_pow2
from .handler import HandlerSignature
from .protocol import Cmd, Status

__all__ = ["GEMMHandler", "MAX_N_OUT"]

MAX_N_OUT = 128  # 4-byte results in a 512-byte reply


class GEMMHandler(wiring.Component):
    """The GEMM command group (see the module docstring).

    Parameters
    ----------
    max_weights : int
        Weight memory depth (bytes), a power of two from 256 to 65536.
    max_k : int
        Activation buffer depth, a power of two from 16 to 4096.
    cols : int
        MAC array columns (outputs per tile), a power of two from 1 to 8.
    acc_width : int
        Accumulator width, 17..32.
    max_len : int
        Huffman code length limit of the decoder, 8..16.
    fifo_depth : int
        Decoder lane FIFO depth (words), a power of two 4..512 (one LOAD_WEIGHTS block streams
        through it; depth only smooths the decoder's pace).
    backend : str
        MAC array arithmetic: ``"lut"`` (fabric), ``"ice40"`` (SB_MAC16), ``"ecp5"`` (MULT18X18D).
    primitives : bool
        DSP backends: vendor primitives (synthesis) or behavioural models (simulation).

    Members
    -------
    bus : Out(HandlerSignature())

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    bus: Out(HandlerSignature())

    def __init__(self, *, max_weights=4096, max_k=256, cols=4, acc_width=24, max_len=12, fifo_depth=16,
                 backend="lut", primitives=True):
        self.max_weights = check_pow2("max_weights", max_weights, 256, 65536)
        self.max_k = check_pow2("max_k", max_k, 16, 4096)
        self.cols = check_pow2("cols", cols, 1, 8)
        self.acc_width = check_int("acc_width", acc_width, mac_spec.MIN_ACC_WIDTH, 32)
        self.max_len = check_int("max_len", max_len, 8, 16)
        self.fifo_depth = check_pow2("fifo_depth", fifo_depth, 4, 512)
        self.backend = check_choice("backend", backend, ("lut", "ice40", "ecp5"))
        self.primitives = check_bool("primitives", primitives)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        C = self.cols
        m.submodules.decoder = dec = HuffmanDecoder(max_len=self.max_len, lanes=1, raw_bits=0,
                                                    fifo_depth=self.fifo_depth)
        m.submodules.array = arr = MacArray(rows=1, cols=C, acc_width=self.acc_width, tile_k=0,
                                            count_bits=max(1, (self.max_k - 1).bit_length()),
                                            backend=self.backend, primitives=self.primitives)
        m.submodules.wmem = wmem = Memory(shape=8, depth=self.max_weights, init=[])
        m.submodules.amem = amem = Memory(shape=8, depth=self.max_k, init=[])
        w_wr, w_rd = wmem.write_port(), wmem.read_port()
        a_wr, a_rd = amem.write_port(), amem.read_port()
        bus = self.bus

        wptr = Signal(range(self.max_weights + 1))
        count = Signal(16)
        lo = Signal(8)
        status = Signal(8)
        saw_last = Signal()
        block_err = Signal()
        err = Signal()                 # sticky: a block error or weight memory overflow
        n_out = Signal(16)
        k = Signal(16)
        wbase = Signal(16)
        n0 = Signal(16)                # first output of the current tile
        tile_base = Signal(24)         # wbase + n0 * k
        j = Signal(16)                 # beat index
        c = Signal(range(C + 1))       # column being gathered / result being sent
        waddr = Signal(24)
        wbeat = Signal(8 * C)
        act = Signal(8)
        res = Signal(32 * C)
        nbyte = Signal(2)

        m.d.comb += bus.error.eq(err)
        more = count != bus.length
        take = bus.i_data.valid & bus.i_data.ready

        # Decoded weights go straight into the weight memory.
        m.d.comb += [dec.o_data.ready.eq(1), w_wr.addr.eq(wptr), w_wr.data.eq(dec.o_data.payload.data[0])]
        with m.If(dec.o_data.valid):
            with m.If(wptr == self.max_weights):
                m.d.sync += [err.eq(1), block_err.eq(1)]
            with m.Else():
                m.d.comb += w_wr.en.eq(1)
                m.d.sync += wptr.eq(wptr + 1)
            with m.If(dec.o_data.payload.last):
                m.d.sync += saw_last.eq(1)
                with m.If(dec.o_data.payload.err):
                    m.d.sync += [err.eq(1), block_err.eq(1)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(bus.start):
                    m.d.sync += [count.eq(0), status.eq(Status.OK), saw_last.eq(0), block_err.eq(0)]
                    with m.Switch(bus.cmd):
                        with m.Case(Cmd.LOAD_HUFFMAN):
                            # A new model: the decoder forgets its tables, so this one is table 0
                            # (parity 0, as the host encodes its blocks).
                            m.d.comb += dec.i_clear.eq(1)
                            m.d.sync += wptr.eq(0)
                            m.next = "WORDS"
                        with m.Case(Cmd.LOAD_WEIGHTS):
                            m.next = "WORDS"
                        with m.Case(Cmd.GEMM):
                            m.next = "GEMM_HDR"
                        with m.Default():
                            m.d.sync += status.eq(Status.ERR_UNKNOWN_CMD)
                            m.next = "DONE"

            # 16-bit words to the decoder's table or data stream; the first word is marked first.
            with m.State("WORDS"):
                is_table = bus.cmd == Cmd.LOAD_HUFFMAN
                word = lo | (bus.i_data.payload << 8)
                first = count == 1
                with m.If(bus.length[0] | (bus.length == 0)):
                    m.d.sync += status.eq(Status.ERR_LENGTH)
                    m.next = "DONE"
                with m.Elif(~more):
                    with m.If(is_table):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "WAIT_BLOCK"
                with m.Elif(~count[0]):
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(take):
                        m.d.sync += [lo.eq(bus.i_data.payload), count.eq(count + 1)]
                with m.Else():
                    # Second byte: offer the word, take the byte when the decoder takes the word.
                    with m.If(is_table):
                        m.d.comb += [dec.i_table.valid.eq(bus.i_data.valid),
                                     dec.i_table.payload.data.eq(word), dec.i_table.payload.first.eq(first),
                                     bus.i_data.ready.eq(dec.i_table.ready)]
                    with m.Else():
                        m.d.comb += [dec.i_data.valid.eq(bus.i_data.valid),
                                     dec.i_data.payload.data[0].eq(word), dec.i_data.payload.first.eq(first),
                                     bus.i_data.ready.eq(dec.i_data.ready)]
                    with m.If(take):
                        m.d.sync += count.eq(count + 1)
            with m.State("WAIT_BLOCK"):
                with m.If(saw_last):
                    with m.If(block_err):
                        m.d.sync += status.eq(Status.ERR_BLOCK)
                    m.next = "DONE"

            with m.State("GEMM_HDR"):
                with m.If(bus.length < 7):
                    m.d.sync += status.eq(Status.ERR_LENGTH)
                    m.next = "DONE"
                with m.Elif(count == 6):
                    bad = ((n_out == 0) | (n_out > MAX_N_OUT) | (k == 0) | (k > self.max_k)
                           | (bus.length != 6 + k))
                    with m.If(bad):
                        m.d.sync += status.eq(Status.ERR_LENGTH)
                        m.next = "DONE"
                    with m.Else():
                        m.next = "GEMM_ACT"
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(take):
                        m.d.sync += count.eq(count + 1)
                        for i, (sig, sh) in enumerate(((n_out, 0), (n_out, 8), (k, 0), (k, 8),
                                                      (wbase, 0), (wbase, 8))):
                            with m.If(count == i):
                                m.d.sync += sig[sh:sh + 8].eq(bus.i_data.payload)
            with m.State("GEMM_ACT"):
                m.d.comb += [a_wr.addr.eq(count - 6), a_wr.data.eq(bus.i_data.payload)]
                with m.If(~more):
                    m.d.sync += [n0.eq(0), tile_base.eq(wbase)]
                    m.next = "TILE_CMD"
                with m.Else():
                    m.d.comb += [bus.i_data.ready.eq(1), a_wr.en.eq(bus.i_data.valid)]
                    with m.If(take):
                        m.d.sync += count.eq(count + 1)

            with m.State("TILE_CMD"):
                m.d.comb += [arr.i_cmd.valid.eq(1), arr.i_cmd.payload.mode.eq(mac_spec.MODE_INT8),
                             arr.i_cmd.payload.act_unsigned.eq(0), arr.i_cmd.payload.tile_sat.eq(0),
                             arr.i_cmd.payload.beats_m1.eq(k - 1)]
                with m.If(arr.i_cmd.ready):
                    m.d.sync += j.eq(0)
                    m.next = "BEAT_START"
            with m.State("BEAT_START"):
                m.d.comb += a_rd.addr.eq(j)
                m.d.sync += [c.eq(0), waddr.eq(tile_base + j)]
                m.next = "WREAD"
            with m.State("WREAD"):
                with m.If(c == 0):
                    m.d.sync += act.eq(a_rd.data)
                m.d.comb += w_rd.addr.eq(waddr)
                m.next = "WLATCH"
            with m.State("WLATCH"):
                valid_col = n0 + c < n_out
                m.d.sync += [wbeat.eq((wbeat >> 8) | ((w_rd.data & valid_col.replicate(8)) << (8 * C - 8))),
                             waddr.eq(waddr + k), c.eq(c + 1)]
                with m.If(c == C - 1):
                    m.next = "BEAT"
                with m.Else():
                    m.next = "WREAD"
            with m.State("BEAT"):
                m.d.comb += [arr.i_act.valid.eq(1), arr.i_act.payload.eq(act),
                             arr.i_wgt.valid.eq(1), arr.i_wgt.payload.eq(wbeat)]
                with m.If(arr.i_act.ready):
                    m.d.sync += j.eq(j + 1)
                    with m.If(j + 1 == k):
                        m.next = "RESULT"
                    with m.Else():
                        m.next = "BEAT_START"
            with m.State("RESULT"):
                m.d.comb += arr.o_res.ready.eq(1)
                with m.If(arr.o_res.valid):
                    m.d.sync += [c.eq(0), nbyte.eq(0)]
                    # Signed accumulators sign-extend into their 32-bit reply fields.
                    m.d.sync += [res[32 * i:32 * i + 32].eq(arr.o_res.payload.data[i]) for i in range(C)]
                    m.next = "SEND"
            with m.State("SEND"):
                with m.If((c == C) | (n0 + c >= n_out)):
                    m.d.sync += [n0.eq(n0 + C), tile_base.eq(tile_base + (k << (C.bit_length() - 1)))]
                    with m.If(n0 + C >= n_out):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "TILE_CMD"
                with m.Else():
                    m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(res[:8])]
                    with m.If(bus.o_data.ready):
                        m.d.sync += [res.eq(res >> 8), nbyte.eq(nbyte + 1)]
                        with m.If(nbyte == 3):
                            m.d.sync += c.eq(c + 1)

            with m.State("DONE"):
                m.d.comb += [bus.done.eq(1), bus.status.eq(status)]
                m.next = "IDLE"
        return m
