"""GEMM engine: a systolic MAC array fed from block-RAM buffers, its weights decoded from Huffman
streams.

Organisation (see ``docs/gemm.md`` and :mod:`hw.gemm.spec` for the stream formats)::

    i_data, i_table --> HuffmanDecoder (lanes) -->
        WeightTileBuffer (2 banks x K beats x cols bytes, block RAM) --+
    i_act ----------> ActivationBuffer (batch x K bytes, block RAM) --+--> GemmSequencer
    i_cmd ----------------------------------------------------------+        |
                                                        SystolicArray <-------+ --> o_res

A weight tile (``cols`` output channels x K) is decoded once into a bank and reused by every row
tile of the batch; the decoder fills the other bank meanwhile. A tile is one *unit* of chained
Huffman blocks (``HuffmanDecoder(chain=True)``): the host cuts it into blocks whose lane drift
stays within :attr:`GemmEngine.max_drift` (``sim.gemm.golden.compress_tiles``), so that no
weights — a pruned output channel beside a full-range one, say — can stop the decoder. The
batch's activations are loaded once (a command with ``load_acts``) and reused by every weight
tile. Results leave through the array's output FIFO while the next tile computes. With a
decode domain, the decoder and the weight buffer's write side run in it, and the weight banks'
block RAMs are the crossing into the array's domain; with an activation domain, the activation
buffer's block RAMs are written in it, the same way.
"""

from amaranth.hdl import Cat, DomainRenamer, Module, Mux, ResetInserter, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer, PulseSynchronizer
from amaranth.lib.wiring import In, Out

from ..huffman import spec as huff_spec
from ..huffman.block_parser import beat_layout
from ..huffman.decoder import IMPLS, HuffmanDecoder
from ..huffman.table_loader import table_word_layout
from ..lib.reset import module_with_reset_tree, reset_root
from ..lib.stream import HalfRateBuffer, SkidBuffer
from ..mac import spec as mac_spec
from ..mac.array import res_layout
from ..mac.ecp5_dsp import systolic_sites
from ..mac.systolic import SystolicArray, flush_cycles
from ..params import ParameterTypeError, check_bool, check_choice, check_domain, check_int, check_pow2
from . import spec
from .buffers import ActivationBuffer, WeightTileBuffer, symbol_layout
from .sequencer import GemmSequencer, gemm_cmd_layout

__all__ = ["GemmEngine", "ERR_DECODE", "ERR_TILE", "ERR_MODE", "FIFO_DEPTH"]

#: The decoder's lane FIFO depth (words) by default, and on every board (the handlers keep it).
FIFO_DEPTH = 64

ERR_DECODE = 1      # o_errors bit: the Huffman decoder's sticky flags (a bad table, header, code, CRC)
ERR_TILE = 2        # a weight tile's block was bad or of the wrong size, or the activations' shape
ERR_MODE = 4        # a command had an undefined precision code (its tile is dropped by the array)


class GemmEngine(wiring.Component):
    """Computes ``Y = X · Wᵀ`` tile by tile with compressed weights (see the module docstring).

    Parameters
    ----------
    rows, cols : int
        The systolic array (:class:`hw.mac.systolic.SystolicArray`): rows 1..16, cols even 2..16.
    max_k : int
        Longest reduction (a multiple of 4, 4..4096): a weight bank holds ``max_k`` beats (int8).
    max_batch : int
        Most activation rows held (a multiple of ``rows``, at most ``64 * rows``).
    lanes : int
        Huffman decoder hardware lanes, 1..8 (1..4 with ``contexts=2``), dividing ``cols``.
    contexts, max_len, escape, fifo_depth, impl :
        As :class:`hw.huffman.decoder.HuffmanDecoder` (its ``raw_bits`` is 0: symbols are the
        packed weight bytes, coded; the host does not send raw blocks; ``chain`` is True: a weight
        tile is one unit of blocks).
    decode_domain : str
        Clock domain of the decoder and of ``i_data`` / ``i_table``. ``"sync"``: the array's;
        any other name: a second domain, crossed by the weight buffer's block RAMs (written in
        that domain, read in the array's; :class:`~hw.gemm.buffers.WeightTileBuffer`).
    acc_width : int
        As :class:`hw.mac.systolic.SystolicArray`.
    primitives : bool
        Instantiate the ECP5 ``MULT18X18D`` with their registers (True: the board build) or the
        behavioural multipliers (False, default: portable Verilog and simulation).
    dsp_layout : str or None
        With ``primitives``: the array's multipliers placed by
        :func:`hw.mac.ecp5_dsp.systolic_sites` (``"lfe5u-85f"``); None (default): by nextpnr.
    prefetch : bool
        The sequencer's prefetch queue between the block RAMs and the array
        (:class:`hw.gemm.sequencer.GemmSequencer`): the array's ready then reaches neither the
        RAMs' enables nor the read counters (the ULX3S build). Off by default: on the UP5K its
        flip-flops do not fit beside the registry's ``gemm_engine``.
    act_domain : str
        Clock domain of ``i_act`` and of the activation buffer's write side (``"sync"``: the
        array's; any other name: the buffer's block RAMs are the crossing, written in that domain:
        :class:`~hw.gemm.buffers.ActivationBuffer`'s ``w_domain``, with ``i_act_clear``).
    res_credit : bool
        ``o_res`` on the reader's ready a cycle ahead, ``i_res_room`` (the array's
        ``res_credit``): a row is offered only in a cycle after one with ``i_res_room`` high, and
        must be taken then. Default False (``o_res`` a plain stream); :class:`hw.gemm.crossing.
        EngineCrossing` sets it outside the controller's domain (the ULX3S).

    Members
    -------
    i_data : In(stream.Signature(beat_layout(lanes * contexts)))  (``decode_domain``)
    i_table : In(stream.Signature(table_word_layout))  (``decode_domain``)
    i_cmd : In(stream.Signature(cmd layout, :func:`hw.gemm.spec.cmd_layout_fields`))
    i_act : In(stream.Signature(rows * 32))  (``act_domain``)
    i_act_clear : In(1)  (``act_domain``; only with an ``act_domain`` other than ``"sync"``)
        A level: the activation buffer's write side is idle and starts no load. Raise it before
        ``i_clear`` and hold it until two ``act_domain`` cycles after the clear
        (:class:`~hw.gemm.crossing.EngineCrossing`'s flush: from its start until both domains
        acknowledged it), so that no load requested before the clear starts after it.
    o_res : Out(stream.Signature(res_layout(rows, cols, acc_width)))
    o_errors : Out(3)
        Sticky :data:`ERR_DECODE`, :data:`ERR_TILE`, :data:`ERR_MODE`. No bad input stops the
        engine: a bad tile still runs (its results are wrong and flagged).
    o_overflow : Out(1)
        Sticky: an accumulator saturated.
    o_idle : Out(1)
        No command running, no result waiting in the array, not clearing.
    o_idle_d : Out(1)
        ``o_idle`` of the cycle before, from a register per term (the sequencer's, the command
        buffer's, the array's, the clear's) and one AND: for a reader that can wait a cycle
        (:class:`hw.gemm.crossing.EngineCrossing`'s flush acknowledge), without the terms'
        gather across the engine in front of its register.
    o_beats : Out(32)
        Beats the array took (wraps; each counted in the cycle after its take): MAC/cycle =
        beats x rows x cols x lanes(mode) / cycles.
    i_clear : In(1)
        A pulse, at any time, in any state: the engine returns to its post-reset state (see
        :attr:`clear_cycles`). Every state machine, counter and FIFO is reset or emptied: the
        sequencer (a command waiting for a weight block or for activations is dropped), both
        weight banks, the activation load, the MAC array (:meth:`SystolicArray.i_flush
        <hw.mac.systolic.SystolicArray>`: tiles running or waiting and result rows not yet taken
        are dropped), ``o_beats``, the three flags and ``o_overflow``, and the decoder (its
        tables, a partially decoded block, its FIFOs; the tables must be sent again) with the
        weight buffer's write side in a decode domain. Input taken in the cycle of the pulse is
        dropped; from the next cycle until ``o_idle`` rises no input is taken (``ready`` low)
        and no row is offered, so input offered meanwhile waits and goes to the cleared engine.
        ``i_clear`` while clearing is ignored (the clear in progress resets everything).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it and the allowed values).
    """

    def __init__(self, rows=8, cols=16, max_k=512, max_batch=64, lanes=4, contexts=1, max_len=16,
                 escape=False, fifo_depth=FIFO_DEPTH, impl="comparator", decode_domain="sync",
                 acc_width=24, primitives=False, dsp_layout=None, prefetch=False, res_credit=False,
                 act_domain="sync"):
        check_int("rows", rows, 1, mac_spec.MAX_DIM)
        allowed = f"an even integer from 2 to {mac_spec.MAX_DIM}"
        if not isinstance(cols, int) or isinstance(cols, bool):
            raise ParameterTypeError(f"cols must be {allowed}, not {cols!r}")
        if cols % 2 or not 2 <= cols <= mac_spec.MAX_DIM:
            raise ValueError(f"cols must be {allowed}, not {cols!r}")
        check_int("max_k", max_k, 4, 4096)
        if max_k % spec.GROUP:
            raise ValueError(f"max_k must be a multiple of {spec.GROUP} from 4 to 4096, not {max_k!r}")
        check_int("max_batch", max_batch, rows, 64 * rows)
        if max_batch % rows:
            raise ValueError(f"max_batch must be a multiple of rows ({rows}) up to {64 * rows}, "
                             f"not {max_batch!r}")
        check_int("contexts", contexts, 1, 2)
        check_int("lanes", lanes, 1, 8 // contexts)
        if cols % lanes:
            raise ValueError(f"lanes must divide cols ({cols}), not {lanes!r}")
        check_domain("decode_domain", decode_domain)
        check_domain("act_domain", act_domain)
        check_int("max_len", max_len, huff_spec.MIN_MAX_LEN, huff_spec.MAX_MAX_LEN)
        check_bool("escape", escape)
        check_pow2("fifo_depth", fifo_depth, 4, 512)
        check_choice("impl", impl, IMPLS)
        if impl == "table" and contexts != 1:
            raise ValueError(f"contexts must be 1 with impl='table', not {contexts!r}")
        check_int("acc_width", acc_width, mac_spec.MIN_ACC_WIDTH, mac_spec.MAX_ACC_WIDTH)
        check_bool("primitives", primitives)
        self._decoder_params = {"max_len": max_len, "lanes": lanes, "raw_bits": 0, "fifo_depth": fifo_depth,
                                "contexts": contexts, "escape": escape, "impl": impl, "chain": True}
        #: The largest lane drift (words) of a weight block this engine takes (see the module docstring).
        self.max_drift = huff_spec.max_drift(fifo_depth)
        self._primitives = primitives
        if dsp_layout is not None:
            systolic_sites(dsp_layout, rows, cols // 2)     # checks it: a bad layout raises here
        self._dsp_layout = dsp_layout
        self._prefetch = check_bool("prefetch", prefetch)
        self._res_credit = check_bool("res_credit", res_credit)
        self.count_bits = max(1, (max_k - 1).bit_length())
        self.rows, self.cols, self.max_k, self.max_batch = rows, cols, max_k, max_batch
        self.lanes, self.contexts, self.acc_width = lanes, contexts, acc_width
        self.decode_domain, self.act_domain = decode_domain, act_domain
        self.row_tile_bits = max(1, (max_batch // rows - 1).bit_length())
        self.group_bits = max(1, (max_k // spec.GROUP - 1).bit_length())
        super().__init__({
            "i_data": In(stream.Signature(beat_layout(lanes * contexts))),
            "i_table": In(stream.Signature(table_word_layout)),
            "i_cmd": In(stream.Signature(gemm_cmd_layout(self.row_tile_bits, self.group_bits))),
            "i_act": In(stream.Signature(rows * mac_spec.MAX_LANES * mac_spec.ACT_BITS)),
            "o_res": Out(stream.Signature(res_layout(rows, cols, acc_width))),
            "o_errors": Out(3), "o_overflow": Out(1), "o_idle": Out(1), "o_idle_d": Out(1),
            "o_beats": Out(32),
            "i_clear": In(1),
            **({"i_res_room": In(1)} if res_credit else {}),
            **({"i_act_clear": In(1)} if act_domain != "sync" else {}),
        })

    #: Decoder-domain cycles the decoder's inputs and output are held after its clear arrives: its
    #: registered reset tree lands one cycle after the clear, and its output registers show the
    #: old state until then.
    DECODE_HOLD = 4

    @property
    def clear_cycles(self):
        """With the decoder in the array's domain, ``i_clear`` in cycle 0 gives ``o_idle`` (the
        engine takes a command) in cycle ``clear_cycles``: the MAC array's flush
        (:func:`hw.mac.systolic.flush_cycles`, cycles 1 .. ``clear_cycles - 1``). With a decode
        domain the clear also waits for the decoder's acknowledge (``DECODE_HOLD`` decoder cycles
        after the clear reaches that domain, two synchronizers of 2-3 cycles each way), when that
        is longer: by then the weight buffer's write side, reset with the decoder, is seen
        empty by its read side (its synchronizers are two cycles too)."""
        return flush_cycles(self.rows, self.cols) + 1

    def elaborate(self, platform):
        m = Module()
        R, C, N = self.rows, self.cols, self.lanes
        groups = self.max_k // spec.GROUP
        dom = self.decode_domain
        crossing = dom != "sync"
        dec = HuffmanDecoder(**self._decoder_params)
        m.submodules.decoder = dec if not crossing else DomainRenamer({"sync": dom})(dec)
        # The prefetching sequencer reads through address registers beside the block RAMs.
        # With a decode domain the weight buffer's write side is in it: its block RAMs are the
        # crossing (see WeightTileBuffer). A FIFO of symbols between the decoder and the buffer
        # put its read side, a skid buffer and the buffer's write logic in the array's domain
        # (the read-during-write bypass of the RAMs written and read by one clock, 10.65 ns, and
        # the FIFO's read side, 9.2-9.4 ns: endpoints over 8 ns of the engine alone at 125 MHz).
        wbuf = WeightTileBuffer(C, N, self.max_k, addr_reg=self._prefetch, w_domain=dom)
        if not crossing:
            m.submodules.wbuf = wbuf
        m.submodules.abuf = abuf = ActivationBuffer(R, self.max_batch // R, groups, addr_reg=self._prefetch,
                                                    w_domain=self.act_domain)
        seq = GemmSequencer(R, C, self.max_batch // R, groups, self.count_bits, prefetch=self._prefetch)
        m.submodules.array = array = SystolicArray(R, C, acc_width=self.acc_width, tile_k=0,
                                                   count_bits=self.count_bits, primitives=self._primitives,
                                                   dsp_layout=self._dsp_layout, out_reg=not self._prefetch,
                                                   res_credit=self._res_credit, flush_root=self._prefetch,
                                                   product_stages=2 if self._prefetch else 1)
        clearing, clearing_next, start, dec_busy = self._clear(m, dec)
        # The sequencer is reset by a register of its own holding clearing's next value (and the
        # domain's reset): the same cycles as ``clearing``, with no OR of the two resets in a LUT
        # in front of its flip-flops (clearing -> that LUT -> the prefetch queue's slot copies,
        # 9.9 ns: the `gemm` domain's worst path of the 8 x 16 board aimed at 125 MHz, seed 1),
        # and each slice of its prefetch queue by a copy of its own (depth 1).
        # With the prefetch queue (the ULX3S) the tree has a root register (``seq_root``): its
        # LUT (clearing's next value or the domain's reset) drove the clear copies of the queue's
        # ten slices across the die (9.21 ns, the 8 x 16 board aimed at 125 MHz, seed 2). The
        # sequencer is then reset a cycle after ``clearing`` and the domain's reset: it runs the
        # clear's first cycle with the buffers and the command buffer cleared and the array
        # flushing, and is held a cycle after them. No command reaches it then: the command
        # buffer takes none while ``seq_root`` is high, and offers one a cycle after taking it.
        seq_root = reset_root(m, clearing_next, name="seq_root") if self._prefetch else None
        seq_clear = clearing_next if seq_root is None else seq_root
        m.submodules.seq = module_with_reset_tree(seq, seq_clear, name="seq", depth=1, platform=platform,
                                                  with_reset=seq_root is None)
        if crossing:
            # The data beats reach the decoder from a skid buffer of its domain, emptied by the
            # decoder's clear: the staging queue's output registers sit by its block RAMs, and the
            # route from them to the parser's CRC was the `dec` domain's worst path of the ULX3S
            # build at seed 1 (11.22 ns of a 14.39 ns path, docs/boards.md). A beat held there at a
            # clear is discarded, as the beats inside the decoder are (kept, it would reach the
            # decoder after its clear: test_gemm_clear's clears at cycle 800 fail).
            in_skid = ResetInserter(dec.i_clear)(SkidBuffer(self.i_data.payload.shape()))
            m.submodules.in_skid = in_skid = DomainRenamer({"sync": dom})(in_skid)
            _gated(m, self.i_data, in_skid.i, dec_busy)
            wiring.connect(m, in_skid.o, dec.i_data)
        else:
            _gated(m, self.i_data, dec.i_data, dec_busy)
        _gated(m, self.i_table, dec.i_table, dec_busy)

        # Decoded values (8-bit: raw_bits = 0) -> symbol beats into the weight buffer; while
        # clearing, whatever the decoder still offers is discarded. With a decode domain the
        # buffer's write side is cleared with the decoder (held while ``dec_busy``), its read side
        # with the rest of the engine; the clear ends after both (the decoder's acknowledge).
        out = dec.o_data
        sym = Signal(symbol_layout(N))
        m.d.comb += [sym.bytes[i].eq(out.payload.data[i]) for i in range(N)]
        m.d.comb += [sym.last.eq(out.payload.last), sym.err.eq(out.payload.err)]
        dec_error = Signal()
        busy = dec_busy if crossing else clearing
        m.d.comb += [wbuf.i_sym.payload.eq(sym), wbuf.i_sym.valid.eq(out.valid & ~busy),
                     out.ready.eq(wbuf.i_sym.ready | busy)]
        if crossing:
            m.submodules.wbuf = ResetInserter({dom: dec_busy})(wbuf)
            m.submodules.err_sync = FFSynchronizer(dec.o_errors.any(), dec_error)
        else:
            m.d.comb += dec_error.eq(dec.o_errors.any())

        # Buffers <-> sequencer <-> array. A command reaches the sequencer from a register
        # (HalfRateBuffer: at most one every two cycles; the sequencer takes one per weight tile,
        # 15 cycles or more), so the sequencer's take loads its command registers from registers
        # and the command source sees a register's ready: on the 8 x 16 ULX3S board the
        # sequencer's state, ANDed with the crossing FIFO's valid, enabled the FIFO's read-data
        # register and, from that FIFO's distributed RAM, its own command registers (10.1-12.7
        # ns, docs/boards.md). Emptied with everything else in a clear.
        m.submodules.cmd_buf = cmd_buf = ResetInserter(clearing)(HalfRateBuffer(seq.i_cmd.payload.shape()))
        _gated(m, self.i_cmd, cmd_buf.i, self.i_clear | clearing | seq_root if self._prefetch
               else self.i_clear | clearing)
        wiring.connect(m, cmd_buf.o, seq.i_cmd)
        if self.act_domain != "sync" or self._prefetch:
            # Not gated (the ULX3S): the buffer takes nothing while clearing (its ``i_clear``
            # holds ``o_loading``, its ready, low; in an activation domain ``i_act_clear`` holds
            # its write side idle), and a word it takes with ``i_clear`` belongs to the abandoned
            # GEMM, like the words the clear drops. The gate put the crossing's clear pulse (a
            # LUT of two registers) in front of the take that enables the load counters and the
            # RAMs' write copies (8.4-9.3 ns, the 8 x 16 board aimed at 125 MHz).
            wiring.connect(m, wiring.flipped(self.i_act), abuf.i_act)
            if self.act_domain != "sync":
                m.d.comb += abuf.i_w_clear.eq(self.i_act_clear)
        else:
            _gated(m, self.i_act, abuf.i_act, self.i_clear | clearing)
        m.d.comb += [
            abuf.i_load.eq(seq.o_load), abuf.i_row_tiles.eq(seq.o_row_tiles), abuf.i_groups.eq(seq.o_groups),
            seq.i_loading.eq(abuf.o_loading),
            abuf.rd_en.eq(seq.act_rd_en), abuf.rd_addr.eq(seq.act_rd_addr), seq.i_act_data.eq(abuf.rd_data),
            seq.i_full.eq(wbuf.o_full), seq.i_beats.eq(wbuf.o_beats), seq.i_bad.eq(wbuf.o_bad),
            wbuf.i_release.eq(seq.o_release),
            wbuf.rd_en.eq(seq.wgt_rd_en), wbuf.rd_addr.eq(seq.wgt_rd_addr), seq.i_wgt_data.eq(wbuf.rd_data),
        ]
        wiring.connect(m, seq.o_acmd, array.i_cmd)
        wiring.connect(m, seq.o_act, array.i_act)
        wiring.connect(m, seq.o_wgt, array.i_wgt)
        wiring.connect(m, array.o_res, wiring.flipped(self.o_res))
        if self._res_credit:
            m.d.comb += array.i_res_room.eq(self.i_res_room)

        # Beats counted a cycle after the take (``took``, a register): the take reaches the
        # sequencer's prefetch queue and the array's input registers; the counter's 32 enables
        # behind it were a `gemm` endpoint over 8 ns of the 8 x 16 board aimed at 125 MHz.
        took = Signal()
        m.d.sync += took.eq(array.i_act.valid & array.i_act.ready)
        with m.If(clearing):
            m.d.sync += self.o_beats.eq(0)
        with m.Elif(took):
            m.d.sync += self.o_beats.eq(self.o_beats + 1)
        m.d.comb += [
            wbuf.i_clear.eq(clearing), abuf.i_clear.eq(clearing), seq.i_clear.eq(clearing),
            array.i_clear.eq(start), array.i_flush.eq(start),
            self.o_errors.eq(Cat(dec_error, seq.o_tile_error, array.o_mode_error)),
            self.o_overflow.eq(array.o_overflow),
        ]
        terms = Cat(seq.o_idle, ~cmd_buf.o.valid, array.o_idle, ~clearing)
        terms_d = Signal.like(terms)
        m.d.sync += terms_d.eq(terms)
        m.d.comb += [self.o_idle.eq(terms.all()), self.o_idle_d.eq(terms_d.all())]
        return m

    def _clear(self, m, dec):
        """The clear's control (see ``i_clear``). Returns ``(clearing, clearing_next, start,
        dec_busy)``: ``clearing`` (a register of the array's domain: hold the sequencer and the
        buffers in reset, discard the decoder's output), its next value, ``start`` (the pulse
        that starts a clear, to the MAC array) and ``dec_busy`` (the decoder's domain: its inputs
        are not taken)."""
        clearing, left = Signal(), Signal(range(self.clear_cycles + 1))
        start = Signal()
        m.d.comb += start.eq(self.i_clear & ~clearing)
        # ``left == 0`` and "clearing goes on" (``clearing & ~done``) are registers of their own,
        # set a cycle ahead: ``clearing_next`` feeds the sequencer's reset tree, and the count's
        # compare, the acknowledge and the OR in front of it were five LUTs ahead of the route to
        # the prefetch slices' clear copies (9.46 ns, the 8 x 16 ULX3S board aimed at 125 MHz).
        left_is0, stay = Signal(init=1), Signal()
        left_is0_next, waiting, waiting_next = Signal(), Signal(), Signal()
        done = left_is0 & ~waiting
        if self.decode_domain == "sync":
            m.d.comb += dec.i_clear.eq(start)
            dec_busy = self.i_clear | clearing
        else:
            # The clear crosses into the decoder's domain and its acknowledge comes back once the
            # decoder and the weight buffer's write side have been reset (DECODE_HOLD cycles
            # later): their bank toggles have then reached the read side too.
            dom = self.decode_domain
            m.submodules.clear_sync = to_dec = PulseSynchronizer(i_domain="sync", o_domain=dom)
            m.submodules.ack_sync = ack = PulseSynchronizer(i_domain=dom, o_domain="sync")
            # ``dec_busy`` gates the decoder's input ready, on the path from the decoder's ready
            # to the staging queue's output registers (the `dec` worst path of the 8 x 16 board at
            # 3b8371b, 13.80 ns): ``held`` is ``hold.any()`` as a register of its own (the OR of
            # the next hold's bits), so the gate has three inputs, not DECODE_HOLD + 2.
            hold, held = Signal(self.DECODE_HOLD), Signal()
            m.d[dom] += [hold.eq(Cat(to_dec.o, hold[:-1])), held.eq(to_dec.o | hold[:-1].any())]
            dec_busy = to_dec.o | held
            m.d.comb += [to_dec.i.eq(start), dec.i_clear.eq(to_dec.o), ack.i.eq(hold[-1]),
                         waiting_next.eq(start | (waiting & ~ack.o))]
            m.d.sync += waiting.eq(waiting_next)
        clearing_next = Signal()
        m.d.comb += [
            clearing_next.eq(start | stay),
            # ``left`` counts down to 0 unless a clear starts: it is 0 next if it is 1 or 0 now.
            left_is0_next.eq(Mux(start, self.clear_cycles - 2 == 0, left <= 1)),
        ]
        m.d.sync += [clearing.eq(clearing_next), left_is0.eq(left_is0_next),
                     stay.eq(clearing_next & ~(left_is0_next & ~waiting_next))]
        with m.If(start):
            m.d.sync += left.eq(self.clear_cycles - 2)
        with m.Elif(~done):
            m.d.sync += left.eq(left - (left != 0))
        return clearing, clearing_next, start, dec_busy


def _gated(m, source, sink, block):
    """Connect stream ``source`` (a port) to ``sink``; no transfer while ``block``."""
    m.d.comb += [sink.payload.eq(source.payload), sink.valid.eq(source.valid & ~block),
                 source.ready.eq(sink.ready & ~block)]
