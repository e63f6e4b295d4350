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
from amaranth.lib.memory import Memory

from ..huffman.decoder import HuffmanDecoder
from ..mac import spec as mac_spec
from ..mac.array import MacArray
from ..params import check_bool, check_choice, check_int, check_pow2
from .handler import Handler, finish_command, send_low_byte, start_command
from .protocol import Cmd, Status

__all__ = ["GEMMHandler", "MAX_N_OUT"]

MAX_N_OUT = 128  # 4-byte results in a 512-byte reply
GEMM_HEADER_BYTES = 6


class _Registers:
    """The handler's registers: weight write pointer, the command's fields and the GEMM walk."""

    def __init__(self, max_weights, cols):
        C = cols
        self.wptr = Signal(range(max_weights + 1))
        self.count = Signal(16)
        self.lo = Signal(8)
        self.status = Signal(8)
        self.saw_last = Signal()
        self.block_err = Signal()
        self.err = Signal()                 # sticky: a block error or weight memory overflow
        self.n_out = Signal(16)
        self.k = Signal(16)
        self.wbase = Signal(16)
        self.n0 = Signal(16)                # first output of the current tile
        self.tile_base = Signal(24)         # wbase + n0 * k
        self.j = Signal(16)                 # beat index
        self.c = Signal(range(C + 1))       # column being gathered / result being sent
        self.waddr = Signal(24)
        self.wbeat = Signal(8 * C)
        self.act = Signal(8)
        self.res = Signal(32 * C)
        self.nbyte = Signal(2)


class GEMMHandler(Handler):
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

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

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
        r = _Registers(self.max_weights, C)

        m.d.comb += bus.error.eq(r.err)
        self._store_weights(m, dec, w_wr, r)

        def new_model():
            # A new model: the decoder forgets its tables, so this one is table 0 (parity 0, as the
            # host encodes its blocks).
            m.d.comb += dec.i_clear.eq(1)
            m.d.sync += r.wptr.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                start_command(m, bus, r.status, [((Cmd.LOAD_HUFFMAN,), "WORDS", new_model),
                                                  ((Cmd.LOAD_WEIGHTS,), "WORDS", None),
                                                  ((Cmd.GEMM,), "GEMM_HDR", None)],
                              on_start=[r.count.eq(0), r.status.eq(Status.OK), r.saw_last.eq(0),
                                        r.block_err.eq(0)])
            self._load_words(m, dec, r)
            self._gemm_input(m, a_wr, r)
            self._tiles(m, arr, a_rd, w_rd, r)
            with m.State("SEND"):
                self._send(m, r)
            with m.State("DONE"):
                finish_command(m, bus, r.status)
        return m

    def _store_weights(self, m, dec, w_wr, r):
        """Decoded weights go straight into the weight memory; overflow or a flagged block sets
        ``block_err`` and the sticky ``err``."""
        m.d.comb += [dec.o_data.ready.eq(1), w_wr.addr.eq(r.wptr), w_wr.data.eq(dec.o_data.payload.data[0])]
        with m.If(dec.o_data.valid):
            with m.If(r.wptr == self.max_weights):
                m.d.sync += [r.err.eq(1), r.block_err.eq(1)]
            with m.Else():
                m.d.comb += w_wr.en.eq(1)
                m.d.sync += r.wptr.eq(r.wptr + 1)
            with m.If(dec.o_data.payload.last):
                m.d.sync += r.saw_last.eq(1)
                with m.If(dec.o_data.payload.err):
                    m.d.sync += [r.err.eq(1), r.block_err.eq(1)]

    def _load_words(self, m, dec, r):
        """``WORDS``: 16-bit words to the decoder's table or data stream (the first word is marked
        first); ``WAIT_BLOCK``: a data block's last decoded value, then its verdict."""
        bus = self.bus
        more = r.count != bus.length
        take = bus.i_data.valid & bus.i_data.ready
        with m.State("WORDS"):
            is_table = bus.cmd == Cmd.LOAD_HUFFMAN
            word = r.lo | (bus.i_data.payload << 8)
            first = r.count == 1
            with m.If(bus.length[0] | (bus.length == 0)):
                m.d.sync += r.status.eq(Status.ERR_LENGTH)
                m.next = "DONE"
            with m.Elif(~more):
                with m.If(is_table):
                    m.next = "DONE"
                with m.Else():
                    m.next = "WAIT_BLOCK"
            with m.Elif(~r.count[0]):
                m.d.comb += bus.i_data.ready.eq(1)
                with m.If(take):
                    m.d.sync += [r.lo.eq(bus.i_data.payload), r.count.eq(r.count + 1)]
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
                    m.d.sync += r.count.eq(r.count + 1)
        with m.State("WAIT_BLOCK"):
            with m.If(r.saw_last):
                with m.If(r.block_err):
                    m.d.sync += r.status.eq(Status.ERR_BLOCK)
                m.next = "DONE"

    def _gemm_input(self, m, a_wr, r):
        """``GEMM_HDR``: ``n_out``, ``k``, ``wbase`` (checked); ``GEMM_ACT``: the ``k`` activations
        into the activation memory."""
        bus = self.bus
        more = r.count != bus.length
        take = bus.i_data.valid & bus.i_data.ready
        with m.State("GEMM_HDR"):
            with m.If(bus.length < GEMM_HEADER_BYTES + 1):
                m.d.sync += r.status.eq(Status.ERR_LENGTH)
                m.next = "DONE"
            with m.Elif(r.count == GEMM_HEADER_BYTES):
                bad = ((r.n_out == 0) | (r.n_out > MAX_N_OUT) | (r.k == 0) | (r.k > self.max_k)
                       | (bus.length != GEMM_HEADER_BYTES + r.k))
                with m.If(bad):
                    m.d.sync += r.status.eq(Status.ERR_LENGTH)
                    m.next = "DONE"
                with m.Else():
                    m.next = "GEMM_ACT"
            with m.Else():
                m.d.comb += bus.i_data.ready.eq(1)
                with m.If(take):
                    m.d.sync += r.count.eq(r.count + 1)
                    for i, (sig, sh) in enumerate(((r.n_out, 0), (r.n_out, 8), (r.k, 0), (r.k, 8),
                                                  (r.wbase, 0), (r.wbase, 8))):
                        with m.If(r.count == i):
                            m.d.sync += sig[sh:sh + 8].eq(bus.i_data.payload)
        with m.State("GEMM_ACT"):
            m.d.comb += [a_wr.addr.eq(r.count - GEMM_HEADER_BYTES), a_wr.data.eq(bus.i_data.payload)]
            with m.If(~more):
                m.d.sync += [r.n0.eq(0), r.tile_base.eq(r.wbase)]
                m.next = "TILE_CMD"
            with m.Else():
                m.d.comb += [bus.i_data.ready.eq(1), a_wr.en.eq(bus.i_data.valid)]
                with m.If(take):
                    m.d.sync += r.count.eq(r.count + 1)

    def _tiles(self, m, arr, a_rd, w_rd, r):
        """One tile of ``cols`` outputs: ``TILE_CMD`` (the array's command), per beat ``BEAT_START``,
        ``WREAD``/``WLATCH`` per column (gather the beat's weights from the single-port weight
        memory; columns beyond ``n_out`` are 0), ``BEAT``; then ``RESULT``."""
        C = self.cols
        with m.State("TILE_CMD"):
            m.d.comb += [arr.i_cmd.valid.eq(1), arr.i_cmd.payload.mode.eq(mac_spec.MODE_INT8),
                         arr.i_cmd.payload.act_unsigned.eq(0), arr.i_cmd.payload.tile_sat.eq(0),
                         arr.i_cmd.payload.beats_m1.eq(r.k - 1)]
            with m.If(arr.i_cmd.ready):
                m.d.sync += r.j.eq(0)
                m.next = "BEAT_START"
        with m.State("BEAT_START"):
            m.d.comb += a_rd.addr.eq(r.j)
            m.d.sync += [r.c.eq(0), r.waddr.eq(r.tile_base + r.j)]
            m.next = "WREAD"
        with m.State("WREAD"):
            with m.If(r.c == 0):
                m.d.sync += r.act.eq(a_rd.data)
            m.d.comb += w_rd.addr.eq(r.waddr)
            m.next = "WLATCH"
        with m.State("WLATCH"):
            valid_col = r.n0 + r.c < r.n_out
            m.d.sync += [r.wbeat.eq((r.wbeat >> 8) | ((w_rd.data & valid_col.replicate(8)) << (8 * C - 8))),
                         r.waddr.eq(r.waddr + r.k), r.c.eq(r.c + 1)]
            with m.If(r.c == C - 1):
                m.next = "BEAT"
            with m.Else():
                m.next = "WREAD"
        with m.State("BEAT"):
            m.d.comb += [arr.i_act.valid.eq(1), arr.i_act.payload.eq(r.act),
                         arr.i_wgt.valid.eq(1), arr.i_wgt.payload.eq(r.wbeat)]
            with m.If(arr.i_act.ready):
                m.d.sync += r.j.eq(r.j + 1)
                with m.If(r.j + 1 == r.k):
                    m.next = "RESULT"
                with m.Else():
                    m.next = "BEAT_START"
        with m.State("RESULT"):
            m.d.comb += arr.o_res.ready.eq(1)
            with m.If(arr.o_res.valid):
                m.d.sync += [r.c.eq(0), r.nbyte.eq(0)]
                # Signed accumulators sign-extend into their 32-bit reply fields.
                m.d.sync += [r.res[32 * i:32 * i + 32].eq(arr.o_res.payload.data[i]) for i in range(C)]
                m.next = "SEND"

    def _send(self, m, r):
        """``SEND``: the tile's results (4 bytes each, outputs below ``n_out``), then the next tile
        or ``DONE``."""
        C = self.cols
        with m.If((r.c == C) | (r.n0 + r.c >= r.n_out)):
            m.d.sync += [r.n0.eq(r.n0 + C), r.tile_base.eq(r.tile_base + (r.k << (C.bit_length() - 1)))]
            with m.If(r.n0 + C >= r.n_out):
                m.next = "DONE"
            with m.Else():
                m.next = "TILE_CMD"
        with m.Else():
            with send_low_byte(m, self.bus, r.res, r.nbyte):
                with m.If(r.nbyte == 3):
                    m.d.sync += r.c.eq(r.c + 1)
