"""Command group 1 served by the GEMM engine (:class:`hw.gemm.GemmEngine`): ``Y = X · Wᵀ`` with
Huffman-compressed weights, the ULX3S's GEMM group.

The host (:mod:`firmware.api`) cuts a GEMM into the engine's shapes (``docs/gemm.md``): per GEMM one
code table, the activations of up to ``max_batch`` rows and ``max_k`` columns, and weight tiles of
``cols`` output channels, one unit of chained Huffman blocks each. Weights are staged in a
block-RAM FIFO before a run, so that a run's cycle count is the engine's own, not the UART's
(which is 10 000 times slower than the engine on the ULX3S). Commands (multi-byte fields little-endian):

* ``LOAD_HUFFMAN`` (0x10): a flag byte, then 16-bit words of a serialized code table
  (:func:`hw.huffman.spec.serialize_table`; a table longer than a frame takes several). Flag bit 0:
  the words start a new GEMM's table: the engine is cleared first (its flags, decoder tables,
  weight banks, the staged beats and unread results). Even or shorter than 3 bytes: ``ERR_LENGTH``.
* ``GEMM_START`` (0x13, :data:`START_BYTES` bytes): precision code (:mod:`hw.mac.spec`; an
  undefined code runs, and the engine sets its sticky ``ERR_MODE``), activations unsigned (0/1),
  row tiles (1..``max_batch / rows``), groups ``K / 4`` (1..``max_k / 4``, 2 bytes). Issues the
  GEMM's first tile command, which loads the activations.
* ``GEMM_ACTS`` (0x14): activation words of ``rows * 4`` bytes (:func:`sim.gemm.golden.act_words`),
  at most the ``row tiles * groups`` words the GEMM still expects.
* ``LOAD_WEIGHTS`` (0x11): a flag byte (bit 0: the first beat starts a block), then data beats of
  ``lanes * contexts`` 16-bit words (the decoder's ``i_data`` beats), appended to the staging
  FIFO; more than it has room for: ``ERR_LENGTH``, nothing staged.
* ``GEMM_RUN`` (0x15, 2 bytes: ``n`` weight tiles, 1..65535): the engine runs the next ``n`` tile
  commands on the staged beats (which must hold those tiles' units) into the result FIFO (which
  must have room for their rows: ``n * row tiles * rows``). Reply (:data:`RUN_REPLY_BYTES`):
  cycles (4: from the command to the engine idle with all staged beats taken), array beats (4),
  result rows (2), ``o_errors`` | :data:`RUN_STALLED` (1), ``o_overflow`` (1). Status
  ``ERR_BLOCK`` if a flag is set (the group's sticky error too). A run that stops making
  progress (no beat staged, computed or stored for :data:`STALL_CYCLES`: e.g. a block the decoder
  dropped, or the result FIFO full) ends with :data:`RUN_STALLED`; send ``LOAD_HUFFMAN`` (or
  ``RESET``) and the GEMM again.
* ``GEMM_READ`` (0x16, 2 bytes: ``n`` rows, at most the rows stored and :data:`MAX_READ_ROWS`):
  reply ``n`` result rows of ``cols`` values, :data:`RESULT_BYTES` bytes each (two's complement,
  sign-extended), in the engine's order (per weight tile, per row tile, ``rows`` rows).
* Any other size: ``ERR_LENGTH``, nothing done.

Cycle behaviour: one payload byte per cycle. The engine's array and decoder may run in their own
clock domains (``array_domain``, ``decode_domain``; :class:`hw.gemm.crossing.EngineCrossing`: the
staging FIFO, the table, command, activation and result streams cross with ``AsyncFIFO`` s, the
counters and flags with a toggle-handshake snapshot); a run's cycles are the array's own.
"""

from amaranth.hdl import Cat, Module, ResetInserter, Signal, signed
from amaranth.lib.fifo import SyncFIFOBuffered

from ..gemm import spec as gemm_spec
from ..gemm.crossing import EngineCrossing
from ..mac import spec as mac_spec
from ..params import check_bool, check_int, check_pow2
from .handler import Handler, capture_bytes, finish_command, send_low_byte, start_command
from .protocol import MAX_REPLY, Cmd, Status

__all__ = ["EngineHandler", "START_BYTES", "RUN_REPLY_BYTES", "RESULT_BYTES", "RUN_STALLED",
           "STALL_CYCLES", "max_read_rows"]

START_BYTES = 5
RUN_REPLY_BYTES = 12
RESULT_BYTES = 3            # a result value on the wire (accumulators of at most 24 bits)
RUN_STALLED = 0x08          # GEMM_RUN flag bit above the engine's o_errors: the run stopped moving
STALL_CYCLES = 1 << 14


def max_read_rows(cols):
    """Most result rows one ``GEMM_READ`` reply carries."""
    return MAX_REPLY // (cols * RESULT_BYTES)


class _Registers:
    def __init__(self, n_bits, row_bits):
        self.status = Signal(8)
        self.count = Signal(16)           # payload bytes taken
        self.err = Signal()               # sticky: a run ended with a flag
        self.hdr = Signal(8 * START_BYTES)
        self.started = Signal()           # GEMM_START seen since the last clear
        self.acts_left = Signal(16)
        self.cmd_valid = Signal()
        self.cmds_left = Signal(17)
        self.ahead = Signal()             # the GEMM's first command was issued by GEMM_START
        self.issued = Signal(16)          # commands handed to the engine since the last clear (wraps)
        self.rows_in = Signal(16)         # result rows stored since the last clear (wraps)
        self.cycles = Signal(32)          # handler cycles of the run (the started check)
        self.rows = Signal(16)
        self.idle_for = Signal(range(STALL_CYCLES + 1))
        self.beats_seen = Signal(32)
        self.level_seen = Signal(17)
        self.stalled = Signal()
        self.reply = Signal(8 * RUN_REPLY_BYTES)
        self.nbyte = Signal(8)
        self.first = Signal()             # this LOAD_WEIGHTS frame starts with a block's first beat
        self.bidx = Signal(n_bits)        # byte of the beat being assembled
        self.beat_bytes = Signal(8 * (1 << n_bits))
        self.row_sr = Signal(row_bits)
        self.rows_left = Signal(16)


class EngineHandler(Handler):
    """The GEMM command group on a :class:`~hw.gemm.GemmEngine` (see the module docstring).

    Parameters
    ----------
    rows, cols, max_k, max_batch, lanes, contexts, max_len, acc_width, primitives, dsp_layout, prefetch :
        The engine's (:class:`hw.gemm.GemmEngine`); ``lanes * contexts`` a power of two,
        ``acc_width`` at most 24 (three reply bytes).
    array_domain, decode_domain : str
        Clock domains of the engine's array and of its decoder (``"sync"``: the handler's; see
        :class:`hw.gemm.crossing.EngineCrossing`). The parent defines them.
    stage_depth : int
        Data beats the staging FIFO holds (block RAM), a power of two 16..65536.
    result_depth : int
        Result rows the result FIFO holds, a power of two 4..65536.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range.
    """

    def __init__(self, *, rows=8, cols=16, max_k=512, max_batch=64, lanes=4, contexts=1, max_len=16,
                 acc_width=24, stage_depth=8192, result_depth=1024, primitives=False,
                 array_domain="sync", decode_domain="sync", dsp_layout=None, prefetch=False):
        check_pow2("lanes * contexts", lanes * contexts, 1, 8)
        self.acc_width = check_int("acc_width", acc_width, mac_spec.MIN_ACC_WIDTH, 8 * RESULT_BYTES)
        self.result_depth = check_pow2("result_depth", result_depth, 4, 65536)
        check_bool("primitives", primitives)
        self._crossing = EngineCrossing(      # checks the parameters
            array_domain=array_domain, decode_domain=decode_domain, stage_depth=stage_depth, rows=rows,
            cols=cols, max_k=max_k, max_batch=max_batch, lanes=lanes, contexts=contexts, max_len=max_len,
            acc_width=acc_width, primitives=primitives, dsp_layout=dsp_layout, prefetch=prefetch)
        engine = self._crossing.engine
        self.stage_depth = stage_depth
        self.array_domain, self.decode_domain = array_domain, decode_domain
        #: Added by the core beside the handler, not under its reset (see ``elaborate``).
        self.outside_reset = {"engine": self._crossing}
        self.rows, self.cols, self.max_k, self.max_batch = rows, cols, max_k, max_batch
        self.format_lanes = lanes * contexts
        self._row_tile_bits, self._group_bits = engine.row_tile_bits, engine.group_bits
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        FL = self.format_lanes
        clear = Signal()
        # The engine behind its crossings (in the handler's domain too when the domains are "sync"),
        # outside the handler's reset (core.EdgeLearnCore adds it): a reset of the crossings' sync
        # side alone would break their pointers. After a reset the handler flushes them instead.
        eng = self._crossing
        boot = Signal(init=1)
        m.d.sync += boot.eq(0)
        m.submodules.results = results = ResetInserter({"sync": clear})(
            SyncFIFOBuffered(width=self.cols * self.acc_width, depth=self.result_depth))
        r = _Registers((2 * FL - 1).bit_length(), self.cols * 8 * RESULT_BYTES)
        running = Signal()

        # Staged beats flow into the decoder only during a run (i_run); results always into their FIFO.
        m.d.comb += [eng.i_run.eq(running),
                     results.w_data.eq(eng.o_res.payload.data), results.w_en.eq(eng.o_res.valid),
                     eng.o_res.ready.eq(results.w_rdy), eng.i_clear.eq(clear | boot)]
        m.d.comb += [eng.i_cmd.valid.eq(r.cmd_valid), bus.error.eq(r.err)]
        with m.If(eng.i_cmd.valid & eng.i_cmd.ready):
            m.d.sync += [r.cmds_left.eq(r.cmds_left - 1), eng.i_cmd.payload.load_acts.eq(0),
                         r.issued.eq(r.issued + 1)]
            with m.If(r.cmds_left == 1):
                m.d.sync += r.cmd_valid.eq(0)
        with m.If(results.w_en & results.w_rdy):
            m.d.sync += r.rows_in.eq(r.rows_in + 1)
        with m.If(eng.o_fresh & ~boot & eng.o_errors.any()):     # (boot: the flags are not cleared yet)
            m.d.sync += r.err.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                start_command(m, bus, r.status, [
                    ((Cmd.LOAD_HUFFMAN,), "TABLE_FLAG", None), ((Cmd.LOAD_WEIGHTS,), "STAGE", None),
                    ((Cmd.GEMM_ACTS,), "ACTS", None),
                    ((Cmd.GEMM_START, Cmd.GEMM_RUN, Cmd.GEMM_READ), "HEADER", None)],
                    on_start=[r.count.eq(0), r.status.eq(Status.OK), r.bidx.eq(0), r.nbyte.eq(0)])
            self._table(m, eng, clear, r)
            self._stage(m, eng, r)
            self._acts(m, eng, r)
            self._header(m, r)
            self._start(m, eng, r)
            self._run(m, eng, results, running, r)
            self._read(m, results, r)
            with m.State("DONE"):
                finish_command(m, bus, r.status)
        return m

    def _length_error(self, m, r):
        m.d.sync += r.status.eq(Status.ERR_LENGTH)
        m.next = "DONE"

    def _table(self, m, eng, clear, r):
        """``TABLE_FLAG``: the flag byte (bit 0: a new table); ``CLEAR``: one cycle of ``i_clear``
        (engine, staging and result FIFOs, the GEMM's state); ``SETTLE``: the decoder's clear (one
        cycle later); ``TABLE``: the words to ``i_table`` (the first word of a new table marked)."""
        bus = self.bus
        with m.State("TABLE_FLAG"):
            with m.If(~bus.length[0] | (bus.length < 3)):
                self._length_error(m, r)
            with m.Else():
                m.d.comb += bus.i_data.ready.eq(1)
                with m.If(bus.i_data.valid):
                    m.d.sync += [r.first.eq(bus.i_data.payload[0]), r.count.eq(1)]
                    with m.If(bus.i_data.payload[0]):
                        m.next = "CLEAR"
                    with m.Else():
                        m.next = "TABLE"
        with m.State("CLEAR"):
            m.d.comb += clear.eq(1)
            m.d.sync += [r.started.eq(0), r.cmd_valid.eq(0), r.acts_left.eq(0), r.issued.eq(0),
                         r.rows_in.eq(0)]
            m.next = "SETTLE"
        with m.State("SETTLE"):
            with m.If(~eng.o_clearing):
                m.next = "TABLE"
        with m.State("TABLE"):
            with m.If(r.count == bus.length):
                m.next = "DONE"
            with m.Elif(r.count[0]):
                m.d.comb += bus.i_data.ready.eq(1)
                with m.If(bus.i_data.valid):
                    m.d.sync += [r.hdr[:8].eq(bus.i_data.payload), r.count.eq(r.count + 1)]
            with m.Else():
                tab = eng.i_table
                m.d.comb += [tab.valid.eq(bus.i_data.valid), tab.payload.first.eq(r.first & (r.count == 2)),
                             tab.payload.data.eq(Cat(r.hdr[:8], bus.i_data.payload)),
                             bus.i_data.ready.eq(tab.ready)]
                with m.If(bus.i_data.valid & tab.ready):
                    m.d.sync += r.count.eq(r.count + 1)

    def _stage(self, m, eng, r):
        """``STAGE``: a LOAD_WEIGHTS frame's beats into the staging FIFO (checked to fit first)."""
        bus = self.bus
        beat_bytes = 2 * self.format_lanes
        shift = (beat_bytes - 1).bit_length()
        words = bus.length - 1
        n_beats = words >> shift
        stage = eng.i_stage
        room = self.stage_depth - eng.o_stage_level
        with m.State("STAGE"):
            with m.If(eng.o_clearing):      # the crossings' flush after a reset
                pass
            with m.Elif(r.count == 0):
                bad = (bus.length < 1 + beat_bytes) | (words & (beat_bytes - 1)).any() | (n_beats > room)
                with m.If(bad):
                    self._length_error(m, r)
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(bus.i_data.valid):
                        m.d.sync += [r.first.eq(bus.i_data.payload[0]), r.count.eq(1)]
            with m.Elif(r.count == bus.length):
                m.next = "DONE"
            with m.Else():
                full_beat = Cat(r.beat_bytes[8:8 * beat_bytes], bus.i_data.payload)
                last_byte = r.bidx == beat_bytes - 1
                m.d.comb += [bus.i_data.ready.eq(~last_byte | stage.ready),
                             stage.payload.eq(Cat(full_beat, r.first)),
                             stage.valid.eq(last_byte & bus.i_data.valid)]
                with m.If(bus.i_data.valid & bus.i_data.ready):
                    m.d.sync += [r.beat_bytes.eq(full_beat), r.count.eq(r.count + 1), r.bidx.eq(r.bidx + 1)]
                    with m.If(last_byte):
                        m.d.sync += [r.bidx.eq(0), r.first.eq(0)]

    def _acts(self, m, eng, r):
        """``ACTS``: activation words (``rows * 4`` bytes, little-endian) to ``i_act``."""
        bus = self.bus
        word_bytes = self.rows * gemm_spec.GROUP
        word = Signal(8 * word_bytes)
        widx = Signal(range(word_bytes))
        with m.State("ACTS"):
            with m.If(eng.o_clearing):
                pass
            with m.Elif(r.count == 0):
                n_words = bus.length // word_bytes
                with m.If((bus.length == 0) | (bus.length % word_bytes != 0) | (n_words > r.acts_left)):
                    self._length_error(m, r)
                with m.Else():
                    m.d.sync += [r.acts_left.eq(r.acts_left - n_words), widx.eq(0), r.count.eq(1)]
            with m.Elif(r.count == bus.length + 1):
                m.next = "DONE"
            with m.Else():
                full = Cat(word[8:], bus.i_data.payload)
                last_byte = widx == word_bytes - 1
                m.d.comb += [bus.i_data.ready.eq(~last_byte | eng.i_act.ready), eng.i_act.payload.eq(full),
                             eng.i_act.valid.eq(last_byte & bus.i_data.valid)]
                with m.If(bus.i_data.valid & bus.i_data.ready):
                    m.d.sync += [word.eq(full), r.count.eq(r.count + 1), widx.eq(widx + 1)]
                    with m.If(last_byte):
                        m.d.sync += widx.eq(0)

    def _header(self, m, r):
        """``HEADER``: the fixed-size payload of GEMM_START / GEMM_RUN / GEMM_READ into ``hdr``."""
        bus = self.bus
        size = {Cmd.GEMM_START: START_BYTES, Cmd.GEMM_RUN: 2, Cmd.GEMM_READ: 2}
        with m.State("HEADER"):
            expected = Signal(8)
            with m.Switch(bus.cmd):
                for cmd, n in size.items():
                    with m.Case(cmd):
                        m.d.comb += expected.eq(n)
            with m.If(bus.length != expected):
                self._length_error(m, r)
            with m.Elif(r.count == bus.length):
                with m.Switch(bus.cmd):
                    with m.Case(Cmd.GEMM_START):
                        m.next = "START"
                    with m.Case(Cmd.GEMM_RUN):
                        m.next = "RUN_CHECK"
                    with m.Default():
                        m.next = "READ_CHECK"
            with m.Else():
                m.d.comb += bus.i_data.ready.eq(1)
                with m.If(bus.i_data.valid):
                    m.d.sync += r.count.eq(r.count + 1)
                    capture_bytes(m, r.count, bus.i_data.payload,
                                  [[r.hdr[8 * i:8 * i + 8]] for i in range(START_BYTES)])

    def _start(self, m, eng, r):
        """``START``: check the GEMM's shape, issue its first command (with ``load_acts``)."""
        mode, unsigned, row_tiles, groups = r.hdr[:8], r.hdr[8:16], r.hdr[16:24], r.hdr[24:40]
        with m.State("START"):
            bad = ((unsigned > 1) | (row_tiles == 0) | (row_tiles > self.max_batch // self.rows)
                   | (groups == 0) | (groups > self.max_k // gemm_spec.GROUP)
                   | (mode >= 1 << mac_spec.MODE_BITS) | r.cmd_valid)
            with m.If(eng.o_clearing):
                pass
            with m.Elif(bad):
                self._length_error(m, r)
            with m.Else():
                p = eng.i_cmd.payload
                m.d.sync += [p.mode.eq(mode), p.act_unsigned.eq(unsigned[0]), p.load_acts.eq(1),
                             p.row_tiles_m1.eq(row_tiles - 1), p.groups_m1.eq(groups - 1),
                             r.cmd_valid.eq(1), r.cmds_left.eq(1), r.ahead.eq(1), r.started.eq(1),
                             r.acts_left.eq(row_tiles * groups)]
                m.next = "DONE"

    def _run(self, m, eng, results, running, r):
        """``RUN_CHECK``/``RUN``: issue the tiles' commands, open the staging FIFO, wait until the
        engine's snapshot (taken after the run's commands were issued) says it took every command
        and is idle, every staged beat left the staging FIFO and every row it wrote is stored (or the run
        stalls); ``REPLY``: the snapshot's array cycles and beats."""
        n = r.hdr[:16]
        with m.State("RUN_CHECK"):
            with m.If(eng.o_clearing):
                pass
            with m.Elif(~r.started | (n == 0) | r.cmd_valid & ~r.ahead):
                self._length_error(m, r)
            with m.Else():
                more = n - r.ahead
                m.d.sync += [r.cmds_left.eq(r.cmds_left + more), r.ahead.eq(0), r.cycles.eq(0),
                             r.beats_seen.eq(0), r.level_seen.eq(eng.o_stage_level),
                             r.rows.eq(0), r.idle_for.eq(0), r.stalled.eq(0)]
                with m.If(more != 0):
                    m.d.sync += r.cmd_valid.eq(1)
                m.next = "RUN"
        with m.State("RUN"):
            m.d.comb += running.eq(1)
            m.d.sync += [r.cycles.eq(r.cycles + 1), r.beats_seen.eq(eng.o_beats),
                         r.level_seen.eq(eng.o_stage_level)]
            with m.If(results.w_en & results.w_rdy):
                m.d.sync += r.rows.eq(r.rows + 1)
            moving = ((eng.o_stage_level != r.level_seen) | (results.w_en & results.w_rdy)
                      | (eng.o_beats != r.beats_seen))
            with m.If(moving):
                m.d.sync += r.idle_for.eq(0)
            with m.Else():
                m.d.sync += r.idle_for.eq(r.idle_for + 1)
            finished = (~r.cmd_valid & (eng.o_stage_level == 0) & eng.o_fresh & eng.o_idle
                        & (eng.o_cmds == r.issued) & (eng.o_rows == r.rows_in) & (r.cycles > 2))
            with m.If(finished | (r.idle_for == STALL_CYCLES)):
                m.d.sync += [r.stalled.eq(~finished), r.nbyte.eq(0)]
                m.next = "REPLY_LOAD"
        with m.State("REPLY_LOAD"):
            flags, overflow = Signal(8), Signal(8)
            m.d.comb += [flags.eq(eng.o_errors | (r.stalled << 3)), overflow.eq(eng.o_overflow)]
            m.d.sync += r.reply.eq(Cat(eng.o_cycles, eng.o_beats, r.rows, flags, overflow))
            with m.If(flags.any()):
                m.d.sync += [r.status.eq(Status.ERR_BLOCK), r.err.eq(1)]
            m.next = "REPLY"
        self._send(m, "REPLY", r.reply, RUN_REPLY_BYTES, r.nbyte, "DONE")

    def _send(self, m, state, value, n_bytes, nbyte, then):
        """State ``state``: send ``value``'s ``n_bytes`` low bytes (``nbyte`` counts), then ``then``."""
        with m.State(state):
            with m.If(nbyte == n_bytes):
                m.next = then
            with m.Else():
                with send_low_byte(m, self.bus, value, nbyte):
                    pass

    def _read(self, m, results, r):
        """``READ_CHECK``/``READ_ROW``/``READ_SEND``: ``n`` result rows, 3 bytes per value."""
        n = r.hdr[:16]
        row_bytes = self.cols * RESULT_BYTES
        with m.State("READ_CHECK"):
            with m.If((n == 0) | (n > results.level) | (n > max_read_rows(self.cols))):
                self._length_error(m, r)
            with m.Else():
                m.d.sync += r.rows_left.eq(n)
                m.next = "READ_ROW"
        with m.State("READ_ROW"):
            with m.If(r.rows_left == 0):
                m.next = "DONE"
            with m.Else():
                W = self.acc_width
                wide = [Signal(signed(8 * RESULT_BYTES), name=f"res{c}") for c in range(self.cols)]
                m.d.comb += [v.eq(results.r_data[W * c:W * (c + 1)].as_signed()) for c, v in enumerate(wide)]
                m.d.comb += results.r_en.eq(1)
                m.d.sync += [r.row_sr.eq(Cat(*wide)), r.nbyte.eq(0), r.rows_left.eq(r.rows_left - 1)]
                m.next = "READ_SEND"
        self._send(m, "READ_SEND", r.row_sr, row_bytes, r.nbyte, "READ_ROW")
