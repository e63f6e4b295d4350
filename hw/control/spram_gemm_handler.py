"""Command group 1 with the compressed weights kept in SPRAM (the iCEBreaker's GEMM group).

Blocks: an :class:`hw.lib.spram.SPRAM` store of compressed block beats (a whole model's blocks stay
on chip between jobs), the compact :class:`hw.huffman.HuffmanDecoder` (``impl="table"``, one
hardware lane, INT mode without raw bits: a symbol is a packed weight byte of :mod:`hw.mac.spec`;
``chain=True``: a layer is one *unit* of chained blocks, each of lane drift at most
:attr:`SpramGEMMHandler.max_drift` words, so that no weights can stop a two-context decoder) and
a ``1 x cols`` :class:`hw.mac.array.MacArray`, fed straight from the decoder: no decoded weight
memory. The activations of a GEMV sit in a block RAM.

Commands (multi-byte fields little-endian; a *beat* is ``2 * contexts`` bytes, the decoder's
``i_data`` words):

* ``LOAD_HUFFMAN`` (0x10): a flag byte, then 16-bit words of a serialized code table
  (:func:`hw.huffman.spec.serialize_table`; a table longer than a frame takes several). Flag bit
  0: the words start a table: the decoder is cleared (its previous tables, flags and FIFOs) and
  the table is its table 0 (parity 0); the store is emptied too (a new model) unless bit 1 is set
  (the stored model's table, reloaded after ``RESET``). Even or shorter than 3 bytes:
  ``ERR_LENGTH``.
* ``LOAD_WEIGHTS`` (0x11): whole beats (compressed block words, header included), appended to the
  store at its fill pointer (the host keeps the count: the store is emptied by a new model's
  ``LOAD_HUFFMAN`` only; it survives ``RESET`` and the watchdog's reset of the group, which clear
  the decoder's tables: reload the table with flag bits 0 and 1 to use the stored blocks again).
  Not a positive multiple of the beat size: ``ERR_LENGTH``. Beats beyond the store's
  ``store_depth`` are not stored: ``ERR_BLOCK`` and the group's sticky error flag.
* ``GEMM`` (0x12, :data:`GEMM_HEADER_BYTES` + ``k`` bytes): precision (1 byte, a
  :data:`hw.mac.spec.MODES` code), ``n_out`` (2, 1..128), ``k`` (2, 1..``max_k``), ``start`` (2:
  the unit's first beat in the store), ``beats`` (2, >= 1: the unit's beats), then ``k`` int8
  activations ``x``. The unit is streamed from the store through the decoder into the MAC array
  (the store keeps no ``first`` marks: the feeder follows the block framing, each block's header
  and ``M`` payload beats, the next block after one marked ``cont``; beats of the range after the
  unit's last block are not offered); its values must be the packed weight bytes of
  ``ceil(n_out / cols)`` tiles, per tile per beat ``j`` (``ceil(k / lanes)`` beats) the ``cols``
  bytes of outputs ``n0 .. n0 + cols - 1`` (:func:`sim.gemm.golden.tile_symbols`' order; missing
  outputs zero). Reply: ``n_out`` int32
  ``y[n] = sum_k x[k] * w[n][k]`` from the array's ``acc_width``-bit saturating accumulators
  (plain ones when ``max_k * 2**14`` fits ``acc_width`` bits: no sum can then saturate).
  A bad precision or size: ``ERR_LENGTH``. ``start + beats`` beyond the beats stored (an address
  out of the loaded store): ``ERR_BLOCK`` and the sticky error flag, nothing decoded.
  A unit that the decoder flags (CRC, invalid code, ...) or that decodes to more or fewer values
  than the tiles need: ``ERR_BLOCK`` and the error flag; the missing values count as 0 (so the
  array's tiles complete), the extra ones are dropped. A range that holds no block header (the
  decoder drops it) or ends inside its unit answers ``ERR_TIMEOUT`` through the controller's
  watchdog, which resets the group (reload the model).

Cycle behaviour of a GEMM: ``k`` cycles to take the activations, then the store streams at one
beat per cycle (decoder permitting), the decoder gives about one symbol per cycle and a weight beat
of ``cols`` symbols goes to the array as soon as it is complete, so a GEMV of ``n_out x k`` int8
weights takes about ``ceil(n_out / cols) * cols * k`` cycles plus the decoder's block start
(header, table lookup) and the array's latency; results leave at one byte per cycle while the next
tile computes. The header's and the length's verdicts are acted on after the payload's last
activation: a refused ``GEMM`` answers once its whole payload is taken.

Timing: the states are one-hot (:class:`hw.control.onehot.OneHotFSM`) and the decisions on the
handshakes' paths are registered compares (the payload's end, the header's end, the store range's
end, the tiles and beats left, the result row's end, the activations' length verdict), so the
payload's ``ready`` is a gate flip-flop and the payload-end choice, and the decoder's output
``ready`` comes from flip-flops only. The command's decode and its length's verdicts are registered
at the start and acted on in a ``DISPATCH`` state (a cycle more per command). The store's read
enable is the decoder's input ``ready`` and two flip-flops (one LUT); the feeder may read one beat
past a unit's end, which it does not offer. ``LOAD_HUFFMAN`` offers each table word from registers
in the cycle after its high byte; no byte is taken while a word waits (at most two bytes per three
cycles), and the command ends once the last word is taken. A weight beat's last value waits until
the beat before it has left for the array (at one value per cycle the array takes each beat in
time, so gathering does not slow down).
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, signed
from amaranth.lib.memory import Memory

from ..hdqt.ram import Ram
from ..huffman import spec as huff_spec
from ..huffman.decoder import IMPLS, HuffmanDecoder
from ..lib.logic import above_pow2
from ..lib.ram import registered_read_port
from ..lib.spram import SPRAM, SPRAM_COUNT, SPRAM_DEPTH
from ..mac import spec as mac_spec
from ..mac.array import MacArray
from ..params import check_bool, check_choice, check_int, check_pow2
from .handler import Handler, capture_bytes
from .onehot import OneHotFSM
from .protocol import MAX_PAYLOAD, Cmd, Status

__all__ = ["SpramGEMMHandler", "GEMM_HEADER_BYTES", "MAX_N_OUT", "FIFO_DEPTH", "max_drift"]

MAX_N_OUT = 128             # 4-byte results in a 512-byte reply
GEMM_HEADER_BYTES = 9
#: The decoder's lane FIFO depth (words) when a board's GEMM parameters do not name one.
FIFO_DEPTH = 16


def max_drift(gemm):
    """The largest lane drift (words) of a chained block that the handler built with the GEMM
    parameters ``gemm`` (a board's ``gemm`` dict; its ``fifo_depth``, else :data:`FIFO_DEPTH`)
    takes: :func:`hw.huffman.spec.max_drift` of its decoder's FIFO depth. The host cuts each layer
    at this drift (:func:`sim.control.spram_gemm.encode_model`)."""
    return huff_spec.max_drift(gemm.get("fifo_depth", FIFO_DEPTH))


class _Registers:
    """The handler's registers: store pointer, command fields, the run's counters.

    The ``GEMM`` header's fields are kept as wide as their valid values need: a field byte with
    bits beyond that sets a ``*_big`` flag instead (the command is refused as before, its value is
    never used). ``start`` and ``beats`` are taken straight into the feeder's ``raddr`` and
    ``rend`` (which then becomes the range's end, ``start + beats``; ``rlast`` follows it as
    ``rend - 1`` while the feeder is off); they are only read while ``feed`` is set (in
    ``RUN``)."""

    def __init__(self, store_depth, beat_bits, cols, max_k, hbeats):
        C = cols
        # Beats stored. Not reset: the store survives RESET and a watchdog reset of the group (the
        # decoder's tables do not: reload the table with flag bit 1 to keep the store).
        self.wptr = Signal(range(store_depth + 1), reset_less=True)
        # Payload bytes taken (0 from DONE on, so 0 in a command's start cycle). Counted up on
        # ``count_inc`` only; ``at_len`` (count == length) is chosen from compares registered in
        # the cycle before (``at0``: count == length, ``at1``: count + 1 == length) by whether that
        # cycle counted (``inc``), so no compare of the length is in the handshakes' paths.
        self.count = Signal(range(MAX_PAYLOAD + 1))
        self.count_inc = Signal()
        self.count0 = Signal(init=1)                  # count == 0, registered (TABLE's flag byte)
        self.inc = Signal()
        self.at0 = Signal()
        self.at1 = Signal()
        self.at_len = Signal()
        self.len_bad = Signal()                       # the command's length is wrong (at its start)
        # The state takes payload bytes (TABLE, BEATS, GEMM_HDR until the header's last byte,
        # GEMM_ACT; not with a bad length): with ``at_len`` and ``tvalid`` the input's ready, a
        # LUT or two of flip-flops (it drives the enables of the controller's payload skid buffer).
        self.gate = Signal()
        self.status = Signal(8)
        self.tflag = Signal()                         # LOAD_HUFFMAN: the frame starts a new model's table
        self.err = Signal()                           # sticky: a flagged block, store overflow or range
        self.block_err = Signal()
        # LOAD_WEIGHTS: a byte written into its beat at wptr in the cycle after it was taken (the
        # store's byte mask), the beat's last one counting wptr up; LOAD_HUFFMAN: a word's low byte
        self.wbyte = Signal(8)
        # LOAD_HUFFMAN: the word offered to the decoder's table stream from registers (``wbyte``
        # its low byte, ``hbyte`` its high byte, ``tfirst`` a table's first word)
        self.hbyte = Signal(8)
        self.tvalid = Signal()
        self.tfirst = Signal()
        self.wpos = Signal(range(beat_bits // 8))
        self.write = Signal()
        self.wlast = Signal()
        self.mode = Signal(2)                         # a defined precision (mode_big: none)
        self.mode_big = Signal()
        # 1..MAX_N_OUT when valid (n_out_big: above 255); in RUN the outputs left to send
        self.n_out = Signal(8)
        self.n_out_big = Signal()
        # 1..max_k when valid (k_big: wider); in GEMM_ACT the activations still to come
        self.k = Signal(range(max_k + 1))
        self.k_big = Signal()
        self.lshift = Signal(2)                       # log2 of the mode's lanes
        self.hdr_bad = Signal()                       # the header's fields are wrong
        self.len_wrong = Signal()                     # GEMM_ACT: hdr_bad | (k != 0), registered
        self.hdr_outside = Signal()                   # ... its range is not in the loaded store
        self.beats_m1 = Signal(range(max_k))          # beats per tile - 1 (the last activation's word)
        # feeder: store -> decoder (raddr: the header's start, then counted up to rend; rend: the
        # header's beats, then start + beats; rlast = rend - 1, so the feeder counts one address
        # and compares it with a register)
        self.raddr = Signal(16)
        self.rend = Signal(16)
        self.rlast = Signal(16)                       # rend - 1 (mod 2**16), set while feed is off
        self.feed = Signal()                          # RUN: the feeder reads the range
        self.rmore = Signal()                         # raddr != the range's end, registered
        self.rgo = Signal()                           # feed & rmore & ~fend, registered (fend a cycle late)
        # the store's enable (write | read) as ebase | ghold & the decoder's ready: ebase = write |
        # rgo & ~fvalid, ghold = rgo & fvalid, registered from their next values (write_n: write's)
        self.ebase = Signal()
        self.ghold = Signal()
        self.write_n = Signal()
        self.fvalid = Signal()
        # the beat offered, by the block framing the feeder follows: a header beat (``fhdr``) and
        # its index ``hb`` (0: a block's first beat, marked ``first``), or a payload beat with
        # ``bleft`` more after it; ``fcont``: the block's cont flag; ``fend``: the unit is over
        self.fhdr = Signal()
        self.ffirst = Signal()                        # fhdr & (hb == 0), registered: the beat is marked first
        self.hb = Signal(range(hbeats))
        self.bleft = Signal(16)
        self.fcont = Signal()
        self.fend = Signal()
        # gatherer: decoder values -> weight beats
        self.gc = Signal(range(C))                    # column of the next value
        self.gj = Signal(range(max_k))                # beat of the tile being gathered; GEMM_ACT: word
        self.al = Signal(2)                           # GEMM_ACT: the activation's lane in its word
        self.gleft = Signal(range(MAX_N_OUT + 1))     # tiles left to gather (0: all gathered)
        self.gnz = Signal()                           # gleft != 0, registered
        self.g1 = Signal()                            # gleft == 1, registered
        self.gj_last = Signal()                       # RUN: gj == beats_m1, registered
        self.gbuf = Signal(8 * max(1, C - 1))
        self.wbeat = Signal(8 * C)
        self.wvalid = Signal()
        self.saw_last = Signal()
        self.act_ok = Signal()
        self.cmd_owed = Signal()                      # a tile's array command is to be issued
        # result sender (sends the array's held result row byte by byte)
        self.sc = Signal(range(C + 1))
        self.out_done = Signal()                      # RUN: n_out == 0, registered
        self.row_end = Signal()                       # RUN: (sc == C) | (n_out == 0), registered
        self.nbyte = Signal(2)


class _ActMemory(Elaboratable):
    """The activation memory: ``depth`` words of the array's 4 lanes, a byte-lane write port
    (``wr``: ``addr``, ``data``, ``en`` per lane) and a read port (``rd``: ``addr``, ``en``,
    ``data``: the word at ``addr`` of the last cycle with ``en``; it holds otherwise).

    No address is read in a cycle it is written (written in ``GEMM_ACT``, read in ``RUN``), and
    nothing reads ``data`` before a read (the array takes it only with a beat gathered after its
    read). So with ``primitives`` and ``depth`` <= 256 the memory is :class:`hw.hdqt.ram.Ram`
    with ``ice40``: two ``SB_RAM40_4K`` in 256 x 16 mode (the lanes' bytes masked by ``MASK``,
    ``data`` their output registers): a
    Yosys memory's read port would take a LUT per bit for its register's initial value or for
    read-during-write. Otherwise it is a memory with ``no_rw_check`` and a registered
    asynchronous read (:func:`hw.lib.ram.registered_read_port`), the register in this module
    with its memory, so that Yosys merges it into the block RAM also when the handler's own
    logic is synthesized apart (``bench_spram_gemm --parts``)."""

    def __init__(self, depth, primitives):
        self.depth = depth
        self.primitives = primitives and depth <= 256
        self.wr = SimpleNamespace(addr=Signal(range(depth), name="a_wr_addr"),
                                  data=Signal(4 * mac_spec.ACT_BITS, name="a_wr_data"),
                                  en=Signal(4, name="a_wr_en"))
        self.rd = SimpleNamespace(addr=Signal(range(depth), name="a_rd_addr"), en=Signal(name="a_rd_en"),
                                  data=Signal(4 * mac_spec.ACT_BITS, name="a_rd_data"))

    def elaborate(self, platform):
        m = Module()
        if self.primitives:
            # hw.hdqt.ram.Ram's SB_RAM40_4K tiling: two blocks in 256 x 16 mode, lanes by MASK
            m.submodules.ram = ram = Ram(4 * mac_spec.ACT_BITS, self.depth, granularity=mac_spec.ACT_BITS,
                                         ice40=True, name="act")
            rd = ram.rd[0]
            m.d.comb += [ram.wr.addr.eq(self.wr.addr), ram.wr.data.eq(self.wr.data), ram.wr.en.eq(self.wr.en),
                         rd.addr.eq(self.rd.addr), rd.en.eq(self.rd.en), self.rd.data.eq(rd.data)]
            return m
        m.submodules.mem = mem = Memory(shape=4 * mac_spec.ACT_BITS, depth=self.depth, init=[],
                                        attrs={"no_rw_check": 1})
        wp = mem.write_port(granularity=mac_spec.ACT_BITS)
        rp = registered_read_port(m, mem, name="rd")
        m.d.comb += [wp.addr.eq(self.wr.addr), wp.data.eq(self.wr.data), wp.en.eq(self.wr.en),
                     rp.addr.eq(self.rd.addr), rp.en.eq(self.rd.en), self.rd.data.eq(rp.data)]
        return m


class SpramGEMMHandler(Handler):
    """The GEMM command group with an SPRAM weight store (see the module docstring).

    Parameters
    ----------
    store_depth : int
        Store beats (``16 * contexts`` bits each), a power of two from 256 to
        ``65536 // contexts`` (all four SPRAMs of the UP5K).
    max_k : int
        Activations per GEMM, a power of two from 16 to 4096.
    cols : int
        MAC array columns, a power of two from ``contexts`` to 8.
    acc_width : int
        Accumulator width, 17..32.
    max_len : int
        Huffman code length limit, 8..16.
    contexts : int
        Decoder lane contexts, 1 or 2 (``HuffmanDecoder(contexts=...)``; blocks of ``contexts``
        format lanes).
    escape : bool
        Decoder with escape codes.
    fifo_depth : int
        Decoder lane FIFO depth (words), a power of two 4..512 (default :data:`FIFO_DEPTH`); the
        host cuts layers at :func:`max_drift` of it.
    impl : str
        Decoder lanes: ``"table"`` (the compact lookup-table lane, default) or ``"comparator"``
        (``HuffmanDecoder(impl=...)``).
    backend : str
        MAC array arithmetic: ``"lut"``, ``"ice40"`` (SB_MAC16) or ``"ecp5"``.
    lane_dsps : bool
        ``"ice40"`` only: every activation lane of the array on SB_MAC16s (``2 * cols`` blocks)
        instead of lanes 1..3 in fabric (:mod:`hw.mac.products`).
    primitives : bool
        SPRAM and DSP primitives (synthesis) or their behavioural models (simulation).

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range.
    """

    def __init__(self, *, store_depth=16384, max_k=256, cols=2, acc_width=24, max_len=12, contexts=1,
                 escape=True, fifo_depth=FIFO_DEPTH, impl="table", backend="ice40", lane_dsps=False,
                 primitives=True):
        self.contexts = check_int("contexts", contexts, 1, 2)
        self.store_depth = check_pow2("store_depth", store_depth, 256,
                                      SPRAM_DEPTH * SPRAM_COUNT // self.contexts)
        self.max_k = check_pow2("max_k", max_k, 16, 4096)
        self.cols = check_pow2("cols", cols, self.contexts, 8)
        self.acc_width = check_int("acc_width", acc_width, mac_spec.MIN_ACC_WIDTH, 32)
        self.max_len = check_int("max_len", max_len, 8, 16)
        self.escape = check_bool("escape", escape)
        self.fifo_depth = check_pow2("fifo_depth", fifo_depth, 4, 512)
        self.impl = check_choice("impl", impl, IMPLS)
        self.backend = check_choice("backend", backend, ("lut", "ice40", "ecp5"))
        self.lane_dsps = check_bool("lane_dsps", lane_dsps)
        if lane_dsps and backend != "ice40":
            raise ValueError(f"lane_dsps is for backend 'ice40', not backend {backend!r}")
        self.primitives = check_bool("primitives", primitives)
        #: The largest lane drift (words) of a block this handler's decoder takes (:func:`max_drift`).
        self.max_drift = huff_spec.max_drift(self.fifo_depth)
        super().__init__()

    @property
    def beat_bytes(self):
        return 2 * self.contexts

    def elaborate(self, platform):
        m = Module()
        C = self.cols
        m.submodules.decoder = dec = HuffmanDecoder(
            max_len=self.max_len, lanes=1, raw_bits=0, fifo_depth=self.fifo_depth, contexts=self.contexts,
            escape=self.escape, impl=self.impl, chain=True, header_regs="fields", header_crc="word",
            # (area: the escape's placement checked in the filler's walk, not by per-length registers)
            escape_check=("filler" if (self.impl, self.contexts, self.escape) == ("table", 2, True)
                          else "loader"),
            # (timing: the join's take does not reach the chain flag FIFO's read logic; the table
            # lane's stage-1 compares and its boundary logic start from flip-flops)
            chain_pop="registered" if self.contexts == 2 else "direct",
            stage1_compare="a1" if (self.impl, self.contexts) == ("table", 2) else "late",
            window_compare="a" if (self.impl, self.contexts) == ("table", 2) else "b",
            fill_step="escape_last" if (self.impl, self.contexts, self.escape) == ("table", 2, True)
            else "candidates")
        # No spill row: the sender takes a result row in at least 4 * cols + 1 cycles, so only
        # tiles shorter than that wait for it (a GEMV's tiles are ceil(k / lanes) beats).
        # Plain accumulators when no sum can saturate: a tile sums at most max_k products of
        # signed int8 activations, each in [-127 * 128, 128 * 128], so every partial sum is within
        # +-max_k * 2**14; the reply is then the saturating accumulators' (hw.mac.spec).
        saturate = self.max_k * 128 * 128 > 2 ** (self.acc_width - 1) - 1
        m.submodules.array = arr = MacArray(rows=1, cols=C, acc_width=self.acc_width, tile_k=0,
                                            count_bits=max(1, (self.max_k - 1).bit_length()),
                                            backend=self.backend, primitives=self.primitives,
                                            spill=False, lane_dsps=self.lane_dsps, saturate=saturate)
        m.submodules.store = store = SPRAM(self.store_depth, 16 * self.contexts,
                                           primitives=self.primitives)
        # Activations: one word of the array's 4 lanes per beat (int8: lane 0 only).
        m.submodules.amem = amem = _ActMemory(self.max_k, self.primitives)
        a_wr, a_rd = amem.wr, amem.rd
        r = _Registers(self.store_depth, 16 * self.contexts, C, self.max_k,
                       huff_spec.header_beats(self.contexts))
        bus = self.bus
        m.d.comb += bus.error.eq(r.err)
        self._store_port(m, store, dec, r)
        with m.If(r.count_inc):
            m.d.sync += [r.count.eq(r.count + 1), r.count0.eq(0)]
        m.d.sync += [r.inc.eq(r.count_inc), r.at0.eq(r.count == bus.length),
                     r.at1.eq(r.count + 1 == bus.length)]
        m.d.comb += r.at_len.eq(Mux(r.inc, r.at1, r.at0))
        running = Signal()
        self._gather(m, dec, arr, a_rd, r, running)

        fsm = OneHotFSM(m, ("IDLE", "DISPATCH", "TABLE", "BEATS", "GEMM_HDR", "GEMM_ACT", "RUN", "DONE"),
                        prefix="sg")
        m.d.comb += running.eq(fsm.bit("RUN"))
        # The payload is taken while the state's gate is open, the payload's end is not reached
        # and (LOAD_HUFFMAN) no table word waits for the decoder.
        m.d.comb += bus.i_data.ready.eq(r.gate & ~r.at_len & ~r.tvalid)
        routes = ((Cmd.LOAD_HUFFMAN, "TABLE"), (Cmd.LOAD_WEIGHTS, "BEATS"), (Cmd.GEMM, "GEMM_HDR"))
        # The command's decode and its length's verdicts, registered with the start (the length
        # holds until done); DISPATCH acts on them a cycle later, so neither the command nor the
        # length reaches a state or gate flip-flop through more than a register.
        is_cmd = {state: Signal(name=f"is_{state.lower()}") for _, state in routes}
        len_no = {state: Signal(name=f"len_no_{state.lower()}") for _, state in routes}
        B = self.beat_bytes
        length = bus.length
        # The compares with constants as bit tests (a compare is a carry chain on iCE40):
        # odd and < 3 is 1; < 10 is below 16 and not 10..15 (bit 3 with bit 1 or 2).
        assert GEMM_HEADER_BYTES + 1 == 10
        bad_len = {
            "TABLE": ~length[0] | (length[1:] == 0),
            "BEATS": (length[:B.bit_length() - 1] != 0) | (length == 0),
            "GEMM_HDR": (length[4:] == 0) & ~(length[3] & (length[1] | length[2])),
        }
        with fsm.state("IDLE"):
            with m.If(bus.start):
                m.d.sync += [r.status.eq(Status.OK), r.block_err.eq(0)]
                m.d.sync += [is_cmd[state].eq(bus.cmd == cmd) for cmd, state in routes]
                m.d.sync += [len_no[state].eq(bad_len[state]) for _, state in routes]
                fsm.goto("DISPATCH")
        with fsm.state("DISPATCH"):
            for i, (_, state) in enumerate(routes):
                with (m.If if i == 0 else m.Elif)(is_cmd[state]):
                    m.d.sync += [r.len_bad.eq(len_no[state]), r.gate.eq(~len_no[state])]
                    fsm.goto(state)
            with m.Else():
                m.d.sync += r.status.eq(Status.ERR_UNKNOWN_CMD)
                fsm.goto("DONE")
        self._load_table(m, fsm, dec, r)
        self._load_beats(m, fsm, r)
        self._gemm_input(m, fsm, a_wr, r)
        with fsm.state("RUN"):
            self._send(m, fsm, arr, r)
        with fsm.state("DONE"):
            m.d.sync += [r.count.eq(0), r.count0.eq(1)]
            m.d.comb += [bus.done.eq(1), bus.status.eq(r.status)]
            fsm.goto("IDLE")
        return m

    def _store_port(self, m, store, dec, r):
        """The store's one port: ``LOAD_WEIGHTS`` writes a completed beat at ``wptr``; a run reads
        the range's beats in order into the decoder (``fvalid``: the store's held read data is a
        beat the decoder has not taken; the next read is issued when it is taken).

        The store keeps no ``first`` marks, so the feeder follows the block framing
        (:mod:`hw.huffman.spec`) of the beats it hands over: the range's first beat starts a
        block; a block is ``header_beats`` beats and its ``M`` (the header's words per lane)
        payload beats; the next block starts after it if the header's ``cont`` flag is set, else
        the unit is over and the rest of the range is not offered (``fend``)."""
        N = self.contexts
        H = huff_spec.header_beats(N)
        FB, MB = 3, 3 + 2 // N                    # header beats of the flags and M words (lane 0 / 2 % N)
        # (``rgo``: feed & rmore & ~fend as one flip-flop, from their next values below; the
        # read enable reaches the SPRAM, so the decoder's ready meets one register there)
        read = r.rgo & (~r.fvalid | dec.i_data.ready)
        abits = (self.store_depth - 1).bit_length()
        m.d.comb += [
            # (write | read, as one LUT behind the decoder's ready: see ``ebase``)
            store.en.eq(r.ebase | (r.ghold & dec.i_data.ready)), store.we.eq(r.write),
            store.mask.eq(Const(0b11, 2 * self.beat_bytes) << (2 * r.wpos)),
            store.addr.eq(Mux(r.write, r.wptr[:abits], r.raddr[:abits])),
            store.wdata.eq(r.wbyte.replicate(self.beat_bytes)),
            dec.i_data.valid.eq(r.fvalid & ~r.fend),
            dec.i_data.payload.first.eq(r.ffirst),
        ]
        for c in range(self.contexts):
            m.d.comb += dec.i_data.payload.data[c].eq(store.rdata[16 * c:16 * c + 16])
        # The feeder's flags that read depends on (rmore, rgo, ebase, ghold) as a choice by the
        # decoder's ready between their two values for ready = 1 and ready = 0 (read = rgo, or
        # rgo & ~fvalid; fvalid next = rgo, or rgo | fvalid), each from registers only and kept as
        # a net, so that ready (the end of the parser's logic) is one multiplexer before them
        # rather than inside every term (the state's transitions into and out of RUN set them
        # after this, and win). (rgo from fend's registered value: rgo falls a cycle after fend
        # rises, so a read may follow a unit's last beat; fend keeps that beat from the decoder,
        # and the run's end clears fvalid.)
        rdy = dec.i_data.ready
        nxt_more = r.raddr != r.rlast     # (raddr + 1) mod 2**16 != the end: a compare, no adder
        on = r.feed & ~r.fend
        co = {}
        for value, read_v, fvalid_v in ((1, r.rgo, r.rgo), (0, r.rgo & ~r.fvalid, r.rgo | r.fvalid)):
            rmore_v = Mux(read_v, nxt_more, r.rmore)
            rgo_v = on & rmore_v
            for name, x in (("rmore", rmore_v), ("rgo", rgo_v), ("ebase", r.write_n | (rgo_v & ~fvalid_v)),
                            ("ghold", rgo_v & fvalid_v)):
                co[name, value] = Signal(name=f"{name}_if_ready{value}", attrs={"keep": 1})
                m.d.comb += co[name, value].eq(x)
        m.d.sync += [getattr(r, name).eq(Mux(rdy, co[name, 1], co[name, 0]))
                     for name in ("rmore", "rgo", "ebase", "ghold")]
        with m.If(read):
            m.d.sync += [r.raddr.eq(r.raddr + 1), r.fvalid.eq(1)]
        with m.Elif(dec.i_data.ready):
            m.d.sync += r.fvalid.eq(0)
        # The framing of the beat taken: the flags and M words read from its header, the block's
        # end (a payload of M = 0 ends with the header) starts the next block or ends the unit.
        flags = store.rdata[16 * (0 % N):16 * (0 % N) + 16]
        words_m = store.rdata[16 * (2 % N):16 * (2 % N) + 16]
        m_now = words_m if MB == H - 1 else r.bleft
        end = Signal()
        with m.If(r.fvalid & ~r.fend & dec.i_data.ready):
            with m.If(r.fhdr):
                m.d.sync += [r.hb.eq(r.hb + 1), r.ffirst.eq(0)]
                with m.If(r.hb == FB):
                    m.d.sync += r.fcont.eq(flags[3])
                with m.If(r.hb == MB):
                    m.d.sync += r.bleft.eq(words_m)
                with m.If(r.hb == H - 1):
                    m.d.sync += r.fhdr.eq(0)
                    m.d.comb += end.eq(m_now == 0)
            with m.Else():
                m.d.sync += r.bleft.eq(r.bleft - 1)
                m.d.comb += end.eq(r.bleft == 1)
        with m.If(end):
            m.d.sync += [r.fhdr.eq(r.fcont), r.hb.eq(0), r.ffirst.eq(r.fcont), r.fend.eq(~r.fcont)]
        with m.If(r.write & r.wlast):
            m.d.sync += r.wptr.eq(r.wptr + 1)
        # rlast from rend in every cycle without the feed: rend is written only in GEMM_HDR, at
        # least a cycle before RUN sets feed, so rlast is rend - 1 whenever the feeder reads it
        with m.If(~r.feed):
            m.d.sync += r.rlast.eq(r.rend - 1)

    def _gather(self, m, dec, arr, a_rd, r, running):
        """Decoded values into weight beats (``cols`` values each, in tile order) and, with the
        beat's activation word, into the array; one array command per tile. Values after the
        tiles' last are dropped, missing ones (the block ended early) are zeros; either is a
        block error."""
        C = self.cols
        val = dec.o_data.payload
        beat_take = arr.i_act.ready           # the array takes act and weight beats together
        last_col = r.gc == C - 1
        gathering = r.gnz
        # A beat's last value waits until the beat before it has left wbeat: no path from the
        # array's handshake into the decoder's ready. (The array takes a beat in the cycle after
        # it is offered when it can, so a beat of C >= 2 values still gathers at one value per
        # cycle.)
        room = gathering & (~last_col | ~r.wvalid)
        src_valid = dec.o_data.valid | r.saw_last
        value = Mux(r.saw_last, 0, val.data[0][:8])
        take = running & room & src_valid
        at_end = r.g1 & r.gj_last & last_col
        m.d.comb += dec.o_data.ready.eq(running & ~r.saw_last & (room | ~gathering))
        with m.If(running & dec.o_data.valid & ~r.saw_last & (room | ~gathering)):
            with m.If(~gathering):
                m.d.sync += [r.err.eq(1), r.block_err.eq(1)]         # more values than the tiles need
            with m.If(val.last):
                m.d.sync += r.saw_last.eq(1)
                with m.If(val.err | (gathering & ~at_end)):
                    m.d.sync += [r.err.eq(1), r.block_err.eq(1)]
        with m.If(beat_take):
            m.d.sync += r.wvalid.eq(0)
        with m.If(take):
            if C > 1:
                with m.If(~last_col):
                    m.d.sync += r.gbuf.eq(Cat(r.gbuf[8:], value) if C > 2 else value)
                m.d.sync += r.gc.eq(Mux(last_col, 0, r.gc + 1))
            with m.If(last_col):
                m.d.sync += [r.wbeat.eq(Cat(r.gbuf, value) if C > 1 else value), r.wvalid.eq(1),
                             r.gj.eq(Mux(r.gj_last, 0, r.gj + 1)),
                             r.gj_last.eq(Mux(r.gj_last, r.beats_m1 == 0, r.gj + 1 == r.beats_m1))]
                with m.If(r.gj_last):
                    m.d.sync += [r.gleft.eq(r.gleft - 1), r.gnz.eq(~r.g1), r.g1.eq(r.gleft == 2)]
        # The activation word of a beat is read as the beat is written into wbeat (the read
        # port's data holds until the next), so it is the word of the beat offered.
        m.d.comb += [a_rd.addr.eq(r.gj), a_rd.en.eq(take & last_col)]
        m.d.sync += r.act_ok.eq(running)
        m.d.comb += [
            arr.i_act.valid.eq(r.wvalid & r.act_ok), arr.i_act.payload.eq(a_rd.data),
            arr.i_wgt.valid.eq(r.wvalid & r.act_ok), arr.i_wgt.payload.eq(r.wbeat),
            arr.i_cmd.valid.eq(running & r.cmd_owed),
            arr.i_cmd.payload.mode.eq(r.mode), arr.i_cmd.payload.act_unsigned.eq(0),
            arr.i_cmd.payload.tile_sat.eq(0), arr.i_cmd.payload.beats_m1.eq(r.beats_m1),
        ]
        # One tile command owed at a time: the first from the run's start, each next one from
        # the cycle its previous tile's last beat is gathered. The array has taken the command
        # owed by then (a tile's last beat is gathered only after the array took a beat of that
        # tile, or, for one-beat tiles, the previous tile's beat, which frees its command
        # register), and the next command reaches it before the next tile's first beat.
        with m.If(arr.i_cmd.valid & arr.i_cmd.ready):
            m.d.sync += r.cmd_owed.eq(0)
        with m.If(take & last_col & r.gj_last & ~r.g1):
            m.d.sync += r.cmd_owed.eq(1)

    def _load_table(self, m, fsm, dec, r):
        """``TABLE``: the flag byte (bit 0: a table starts: clear the decoder, and without bit 1
        empty the store), then 16-bit words to the decoder's table stream (a table's first word
        marked first). A word is offered from registers (``tvalid``) after its high byte is
        taken; no byte is taken while it waits, and the command is done once it is taken."""
        bus = self.bus
        take = bus.i_data.valid & bus.i_data.ready
        m.d.comb += [dec.i_table.valid.eq(r.tvalid), dec.i_table.payload.data.eq(Cat(r.wbyte, r.hbyte)),
                     dec.i_table.payload.first.eq(r.tfirst)]
        with m.If(dec.i_table.ready):
            m.d.sync += r.tvalid.eq(0)
        with fsm.state("TABLE"):
            with m.If(r.len_bad):
                m.d.sync += r.status.eq(Status.ERR_LENGTH)
                fsm.goto("DONE")
            with m.Elif(r.at_len):
                with m.If(~r.tvalid):
                    m.d.sync += r.gate.eq(0)
                    fsm.goto("DONE")
            with m.Elif(take):
                m.d.comb += r.count_inc.eq(1)
                with m.If(r.count0):
                    m.d.sync += r.tflag.eq(bus.i_data.payload[0])
                    with m.If(bus.i_data.payload[0]):
                        # The decoder forgets its tables (this one is table 0, parity 0).
                        m.d.comb += dec.i_clear.eq(1)
                        with m.If(~bus.i_data.payload[1]):
                            m.d.sync += r.wptr.eq(0)
                with m.Elif(r.count[0]):
                    m.d.sync += r.wbyte.eq(bus.i_data.payload)
                with m.Else():
                    # the high byte: the word is offered from the next cycle on
                    m.d.sync += [r.hbyte.eq(bus.i_data.payload), r.tvalid.eq(1),
                                 r.tfirst.eq(r.tflag & (r.count == 2))]

    def _load_beats(self, m, fsm, r):
        """``BEATS``: each byte written into its beat at ``wptr`` (the store's byte mask) the cycle
        after it was taken (``write``), ``wptr`` counted up with a beat's last byte; the bytes of a
        beat beyond the store are not written, and the beat is flagged."""
        bus = self.bus
        B = self.beat_bytes
        take = bus.i_data.valid & bus.i_data.ready
        m.d.sync += r.write.eq(0)
        with fsm.state("BEATS"):
            with m.If(r.len_bad):
                m.d.sync += r.status.eq(Status.ERR_LENGTH)
                fsm.goto("DONE")
            with m.Elif(r.at_len):
                with m.If(~r.write):
                    m.d.sync += r.gate.eq(0)
                    fsm.goto("DONE")
            with m.Elif(take):
                m.d.comb += r.count_inc.eq(1)
                pos = r.count[:B.bit_length() - 1]
                # wptr == store_depth (its most): the store is full, the beat is dropped.
                m.d.sync += [r.wbyte.eq(bus.i_data.payload), r.wpos.eq(pos), r.write.eq(~r.wptr[-1]),
                             r.wlast.eq(pos == B - 1)]
                m.d.comb += r.write_n.eq(~r.wptr[-1])
                with m.If((pos == B - 1) & r.wptr[-1]):
                    m.d.sync += [r.err.eq(1), r.status.eq(Status.ERR_BLOCK)]

    def _gemm_input(self, m, fsm, a_wr, r):
        """``GEMM_HDR``: the header (its verdicts registered); ``GEMM_ACT``: the activations into
        their lanes of the activation words, then the verdicts (the length's: ``k`` counted down
        by the activations, 0 at the payload's end and never passed exactly when the payload is
        the header and ``k`` bytes): refused,
        or the run's registers and ``RUN``. A refused command's activations are written too (no
        run reads them)."""
        bus = self.bus
        take = bus.i_data.valid & bus.i_data.ready
        H = GEMM_HEADER_BYTES
        m.d.comb += a_wr.data.eq(bus.i_data.payload.replicate(4))    # written only with en
        with fsm.state("GEMM_HDR"):
            with m.If(r.len_bad):
                m.d.sync += r.status.eq(Status.ERR_LENGTH)
                fsm.goto("DONE")
            with m.Elif(~r.gate):
                # the header's last byte was taken (its take closed the gate)
                tiles = (r.n_out + self.cols - 1) >> (self.cols.bit_length() - 1)
                # n_out > 128 and k > max_k (powers of two, the fields' top bits) as bit tests.
                assert MAX_N_OUT == 1 << (len(r.n_out) - 1) and self.max_k == 1 << (len(r.k) - 1)
                bad = (r.mode_big | r.n_out_big | (r.n_out == 0) | above_pow2(r.n_out, MAX_N_OUT)
                       | r.k_big | (r.k == 0) | above_pow2(r.k, self.max_k) | (r.rend == 0))
                # A range not (all) in the loaded store is bad data (flagged), a bad field or
                # length a bad length: acted on at the payload's end.
                # rend becomes the range's end: start + beats, 17 bits; beyond 16 bits it is
                # outside the store (and refused), so 16 bits hold every end a run reads to.
                end = Signal(17)
                m.d.comb += end.eq(r.raddr + r.rend)
                m.d.sync += [r.gleft.eq(tiles), r.gnz.eq(tiles != 0), r.g1.eq(tiles == 1),
                             r.hdr_bad.eq(bad), r.len_wrong.eq(bad | (r.k != 0)),
                             r.hdr_outside.eq(end > r.wptr),
                             r.rend.eq(end[:16]), r.rmore.eq(end[:16] != r.raddr), r.gj.eq(0), r.al.eq(0),
                             r.gate.eq(1)]
                fsm.goto("GEMM_ACT")
            with m.Elif(take):
                m.d.comb += r.count_inc.eq(1)
                b = bus.i_data.payload
                kb = len(r.k)
                k_bytes = [[r.k], []] if kb <= 8 else [[r.k[:8]], [r.k[8:]]]
                # The header's bytes are numbered 0..H-1 here: the index's low bits select.
                index = r.count[:(H - 1).bit_length()]
                capture_bytes(m, index, b, [[r.mode], [r.n_out], [], *k_bytes, [r.raddr[:8]],
                                            [r.raddr[8:]], [r.rend[:8]], [r.rend[8:]]])
                # The bits a field keeps no room for: set, the command is refused.
                with m.Switch(index):
                    with m.Case(0):
                        m.d.sync += [r.mode_big.eq(b[2:] != 0),         # > MODE_TERNARY (3)
                                     r.lshift.eq(Mux(b == mac_spec.MODE_INT8, 0,
                                                     Mux(b == mac_spec.MODE_INT4, 1, 2)))]
                    with m.Case(2):
                        m.d.sync += r.n_out_big.eq(b != 0)
                    with m.Case(3):
                        m.d.sync += r.k_big.eq(b[kb:] != 0 if kb < 8 else 0)
                    with m.Case(4):
                        m.d.sync += r.k_big.eq(r.k_big | (b[max(kb - 8, 0):] != 0))
                    with m.Case(H - 1):
                        m.d.sync += r.gate.eq(0)
        with fsm.state("GEMM_ACT"):
            # The activations fill their words lane by lane: lane al of word gj, the word's last
            # lane (lanes - 1: 0, 1 or 3) moving on to the next word. The last activation's word
            # is ceil(k / lanes) - 1, the tiles' beats - 1: kept from every write.
            last_lane = (r.al[0] == (r.lshift != 0)) & (r.al[1] == r.lshift[1])
            m.d.comb += [a_wr.addr.eq(r.gj), a_wr.en.eq(Mux(take, (Const(1, 4) << r.al)[:4], 0))]
            with m.If(r.at_len):
                m.d.sync += r.gate.eq(0)
                with m.If(r.len_wrong):
                    m.d.sync += r.status.eq(Status.ERR_LENGTH)
                    fsm.goto("DONE")
                with m.Elif(r.hdr_outside):
                    m.d.sync += [r.status.eq(Status.ERR_BLOCK), r.err.eq(1)]
                    fsm.goto("DONE")
                with m.Else():
                    m.d.sync += [r.feed.eq(1), r.rgo.eq(r.rmore), r.ebase.eq(r.rmore), r.ghold.eq(0),
                                 r.fhdr.eq(1), r.ffirst.eq(1), r.hb.eq(0), r.fend.eq(0), r.gc.eq(0),
                                 r.gj.eq(0), r.gj_last.eq(r.beats_m1 == 0), r.saw_last.eq(0),
                                 r.cmd_owed.eq(1), r.sc.eq(0), r.nbyte.eq(0), r.out_done.eq(r.n_out == 0),
                                 r.row_end.eq(r.n_out == 0)]
                    fsm.goto("RUN")
            with m.Elif(take):
                m.d.comb += r.count_inc.eq(1)
                m.d.sync += [r.k.eq(r.k - 1), r.beats_m1.eq(r.gj), r.al.eq(Mux(last_lane, 0, r.al + 1)),
                             r.len_wrong.eq(r.hdr_bad | (r.k != 1))]
                with m.If(r.k == 0):
                    m.d.sync += r.hdr_bad.eq(1)       # more than k: k wraps, the length is bad
                with m.If(last_lane):
                    m.d.sync += r.gj.eq(r.gj + 1)

    def _send(self, m, fsm, arr, r):
        """``RUN``: each tile's result row as the array offers it, 4 bytes per output below
        ``n_out`` (the array holds the row until it is taken: no copy); the row is taken after its
        last byte. Done when every tile's results are sent and the block's last value came."""
        C = self.cols
        bus = self.bus
        # Signed accumulators sign-extend into their 32-bit reply fields.
        fields = [Signal(signed(32), name=f"result{i}") for i in range(C)]
        m.d.comb += [f.eq(arr.o_res.payload.data[i]) for i, f in enumerate(fields)]
        # The byte (in every state: the controller reads it only with valid): the output's
        # field (sc < C while bytes are sent), then its byte.
        field = fields[0] if C == 1 else Cat(*fields).word_select(r.sc[:(C - 1).bit_length()], 32)
        m.d.comb += bus.o_data.payload.eq(field.word_select(r.nbyte, 8))
        with m.If(arr.o_res.valid):
            # n_out counts the outputs left: a row is done after its C outputs or the last one.
            # (``row_end``, ``out_done``: those compares, registered as sc and n_out change)
            with m.If(r.row_end):
                m.d.comb += arr.o_res.ready.eq(1)
                m.d.sync += [r.sc.eq(0), r.nbyte.eq(0), r.row_end.eq(r.out_done)]
            with m.Else():
                m.d.comb += bus.o_data.valid.eq(1)
                with m.If(bus.o_data.ready):
                    m.d.sync += r.nbyte.eq(r.nbyte + 1)
                    with m.If(r.nbyte == 3):
                        m.d.sync += [r.sc.eq(r.sc + 1), r.n_out.eq(r.n_out - 1), r.out_done.eq(r.n_out == 1),
                                     r.row_end.eq((r.sc == C - 1) | (r.n_out == 1))]
        with m.Elif(r.out_done & r.saw_last):
            with m.If(r.block_err):
                m.d.sync += r.status.eq(Status.ERR_BLOCK)
            # a range longer than its unit stops here
            m.d.sync += [r.feed.eq(0), r.rgo.eq(0), r.ebase.eq(0), r.ghold.eq(0), r.fvalid.eq(0)]
            fsm.goto("DONE")
