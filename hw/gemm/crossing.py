"""The GEMM engine in its own clock domains behind ``sync``-domain streams (the ULX3S's GEMM group).

:class:`EngineCrossing` holds a :class:`hw.gemm.engine.GemmEngine` whose array runs in
``array_domain`` and whose decoder runs in ``decode_domain`` (the same name: one domain), and
gives the ``sync`` domain (the controller's) everything it needs to drive it::

    sync                         | decode_domain                 | array_domain
    i_stage --AsyncQueue(stage_depth, block RAM)-> decoder i_data  |
    i_table --AsyncFIFO(cdc_depth)-------------> decoder i_table    |
    i_cmd   --AsyncQueue(cdc_depth)--------------------------------> engine i_cmd
    i_act   --(array_domain "sync": AsyncQueue(cdc_depth))--------> engine i_act
                 (else: into the activation buffer's block RAMs, written in sync)
    o_res   <--RegisteredWriteAsyncFIFO(cdc_depth)-----------------<-- engine o_res
    o_cycles, o_beats, ... <--- snapshot registers, toggle handshake -- counters

Crossings (``docs/gemm.md`` "On the ULX3S"):

* **Streams:** one ``amaranth.lib.fifo.AsyncFIFO`` each (Gray-coded pointers through two-flop
  synchronizers), but the staging queue and the activations' and commands' queues. The staging
  queue is the crossing of the staged weight beats, read in the decoder's domain at its own rate (the ``sync``
  domain is 4-5 times slower than the decoder: a staging FIFO read in ``sync`` would starve it):
  a :class:`hw.lib.async_queue.AsyncQueue`, the same crossing with a read side whose block-RAM
  read address is a register, fetched ahead into four output registers from registered state
  only, so that neither the synchronized write pointer's compare nor the decoder's ready (which
  depends on the beat it is offered) reaches the address of its block RAMs, and leaving through
  a skid buffer, so that the decoder's ready reaches only that buffer's registers; its memory is
  in banks of 2048 beats, each with its own address register and read-data register, the bank
  selected a cycle after the read. The commands cross in an ``AsyncQueue`` too (``cdc_depth``
  words), without the skid buffer: the engine's ready reaches neither the queue's memory nor its
  fetch-ahead registers (a ring: the ready advances its head pointers alone). The activations,
  with the array outside ``sync``, do not cross as a stream: the engine's activation buffer is
  written from ``sync`` (its ``act_domain``) and read in the array's domain, its block RAMs the
  crossing, a load a four-phase handshake (:class:`hw.gemm.buffers.ActivationBuffer`); the
  writer is held idle through a flush. (With the array in ``sync`` they go through an
  ``AsyncQueue`` of both sides in ``sync``.) The result rows go from the engine's output registers
  (one per column pair of the array) into a :class:`hw.lib.async_fifo.RegisteredWriteAsyncFIFO`:
  the library FIFO's crossing and read side, its memory written from a write register alone, its
  ready (the engine's result ready, which drives the array's pop and credit logic) a register that
  says there is room (the FIFO's registered level plus the writes in flight below its depth), not
  the library FIFO's writable flag, a compare of Gray pointers.
* **Counters and flags:** a snapshot. The array domain captures, in one cycle, its cycle and beat
  counters, the commands it took, the rows it handed over, ``idle``, the sticky flags; the
  ``sync`` domain copies the captured registers only after the array domain's acknowledge toggle
  has come through a two-flop synchronizer, and the array domain overwrites them only after the
  next request toggle has come through its own: the registers are stable whenever they are read
  (a multi-cycle path, no multi-bit value is ever sampled while it changes). The handshake runs
  continuously: the ``o_*`` snapshot is at most a round trip old (about 3 cycles of each clock).
* **Clear:** ``i_clear`` raises a flush level, synchronized into both domains: the array domain
  gives the engine one ``i_clear`` pulse and discards commands, activations and results (rows taken from
  the engine and not written), the decoder's domain discards table words and staged beats (the staging
  queue read out, its prefetched beats too); ``sync`` discards result rows. The array
  domain acknowledges once the engine's clear is over (``GemmEngine.i_clear``: every state machine,
  counter and FIFO of the engine back to its post-reset state, the engine idle), the decoder's
  domain ``DECODE_HOLD`` cycles after its flush started. The level drops when both domains have
  acknowledged it and every crossing FIFO is empty as seen from its writer (``w_level``: the
  reader's pointer has come back), and ``o_clearing`` stays high until both acknowledges have
  dropped again: when it falls the engine takes a command. No FIFO is reset (an ``AsyncFIFO`` may
  only be reset from its write domain, and a reset of one side only breaks its pointers' Gray
  code).

Cycle behaviour: ``o_cycles`` counts array cycles from the run's start (``i_run`` rising, as seen in
the array domain) to the last cycle the engine was busy (not idle, or a command waiting);
``o_beats`` the array's beats since that start. ``i_run`` must stay low for at least three cycles
of the array's clock between two runs.
"""

from amaranth.hdl import Cat, DomainRenamer, Module, ResetInserter, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

from ..huffman.block_parser import beat_layout
from ..huffman.table_loader import table_word_layout
from ..lib.async_fifo import RegisteredWriteAsyncFIFO
from ..lib.async_queue import SLICE, AsyncQueue
from ..lib.reset import add_with_reset_domains
from ..lib.stream import HalfRateBuffer
from ..mac.array import res_layout
from ..params import check_domain, check_pow2
from .engine import GemmEngine

__all__ = ["EngineCrossing"]


class EngineCrossing(wiring.Component):
    """A :class:`~hw.gemm.engine.GemmEngine` in ``array_domain`` / ``decode_domain``, driven from
    ``sync`` (see the module docstring).

    Parameters
    ----------
    array_domain, decode_domain : str
        Clock domains of the array (with the buffers and sequencer) and of the decoder; equal
        names: the decoder runs in the array's domain. Either may be ``"sync"``.
    stage_depth : int
        Data beats the staging FIFO holds, a power of two 16..65536.
    cdc_depth : int
        Depth of the other crossing FIFOs, a power of two 4..256.
    **engine : the engine's parameters (:class:`~hw.gemm.engine.GemmEngine`), but ``decode_domain``.

    Members (all in ``sync``)
    -------
    i_stage : In(stream.Signature(beat_layout(lanes * contexts)))
    o_stage_level : Out(range(stage_depth + 1))
        Beats staged and not yet taken by the decoder (as the writer sees it: never too low; the
        beats the staging queue fetched ahead count until the decoder takes them).
    i_run : In(1)
        Staged beats flow to the decoder while high; its rising edge starts ``o_cycles``/``o_beats``.
    i_table, i_cmd, i_act, o_res :
        The engine's streams (:class:`~hw.gemm.engine.GemmEngine`).
    i_clear : In(1)
        A pulse: flush (see the module docstring). Give it while no stream is written.
    o_clearing : Out(1)
        The flush is in progress: write nothing, trust no snapshot.
    o_fresh : Out(1)
        The snapshot was requested after the last flush ended.
    o_cycles, o_beats : Out(32)
        Snapshot: array cycles and beats of the current run (module docstring).
    o_cmds, o_rows : Out(16)
        Snapshot: commands the engine took and result rows it wrote since the last flush (wrap).
    o_idle, o_errors, o_overflow :
        Snapshot: engine idle and no command waiting; the engine's sticky flags.
    """

    #: Decoder-domain cycles between the start of its flush and its acknowledge: the engine's clear
    #: reaches the decoder through a two-flop synchronizer and the decoder's reset tree (one more).
    DECODE_HOLD = 4

    def __init__(self, *, array_domain="sync", decode_domain="sync", stage_depth=8192, cdc_depth=16,
                 **engine):
        self.array_domain = check_domain("array_domain", array_domain)
        self.decode_domain = check_domain("decode_domain", decode_domain)
        self.stage_depth = check_pow2("stage_depth", stage_depth, 16, 65536)
        self.cdc_depth = check_pow2("cdc_depth", cdc_depth, 4, 256)
        split = decode_domain != array_domain
        # Outside the controller's domain (the ULX3S) the engine offers result rows on the
        # crossing FIFO's room a cycle ahead (GemmEngine's ``res_credit``).
        if "res_credit" in engine:
            raise TypeError("res_credit is set by EngineCrossing")
        if "act_domain" in engine:
            raise TypeError("act_domain is set by EngineCrossing")
        # Outside the controller's domain the activations are written into the engine's
        # activation RAMs from the controller's domain (the engine's ``act`` domain, renamed).
        self.engine = GemmEngine(decode_domain="dec" if split else "sync",
                                 res_credit=array_domain != "sync",
                                 act_domain="act" if array_domain != "sync" else "sync", **engine)
        e = self.engine
        super().__init__({
            "i_stage": In(stream.Signature(beat_layout(e.lanes * e.contexts))),
            "o_stage_level": Out(range(stage_depth + 1)),
            "i_run": In(1),
            "i_table": In(stream.Signature(table_word_layout)),
            "i_cmd": In(e.i_cmd.signature.flip()),
            "i_act": In(e.i_act.signature.flip()),
            "o_res": Out(stream.Signature(res_layout(e.rows, e.cols, e.acc_width))),
            "i_clear": In(1), "o_clearing": Out(1), "o_fresh": Out(1),
            "o_cycles": Out(32), "o_beats": Out(32), "o_cmds": Out(16), "o_rows": Out(16),
            "o_idle": Out(1), "o_errors": Out(3), "o_overflow": Out(1),
        })
        #: The array domain's flush acknowledge (a register of that domain): an attribute for the
        #: tests.
        self.cleared_a = Signal()

    def elaborate(self, platform):
        m = Module()
        if self.array_domain == "sync":
            # One clock with the controller: the controller's reset is the array's, and its
            # flush may come in the first cycle after it, so no part may leave reset later.
            m.submodules.crossing = self._crossing()
            return m
        # The array domain's reset comes from one register (a PLL domain's reset synchronizer);
        # driving every flip-flop of the array, buffers and counters from it (7000 loads on the
        # ULX3S) is mostly routing delay. Each part gets a registered copy instead. All parts
        # leave reset in the same cycle (three array cycles after the domain's reset), and a flush
        # that arrives before is not lost: it is a level held until this domain acknowledges it,
        # and its one-cycle pulse comes from a register under the tree. With the split, the ULX3S
        # board's Yosys run (YoWASP 0.70) fails an internal assertion in synth_ecp5's default ABC9
        # mapping (abc_ops_reintegrate.cc:596; not the result FIFO's reset synchronizer, nor reached
        # by a small split AsyncFIFO); the board build then maps with a fallback
        # (boards.toolchain.ABC9_OPTIONS; docs/boards.md).
        # The decoder's PLL domain (the ULX3S's `dec`) gets the same tree: its reset synchronizer
        # drove the decoder's per-part reset LUTs across the die and through them each part's
        # flip-flops (16 ns, that domain's worst path in the 8 x 16 board build). Not a decoder in
        # the controller's domain: that domain's reset is the controller's (see above).
        D = self.decode_domain
        domains = (self.array_domain, D) if D not in ("sync", self.array_domain) else self.array_domain
        # ``root``: the PLL's reset synchronizer sits by its PLL; one register among the branches
        # takes the route across the die (docs/boards.md).
        add_with_reset_domains(m, "crossing", self._crossing(), domain=domains, depth=3,
                               platform=platform, root=True)
        return m

    def _crossing(self):
        """The engine, its crossings and counters (module docstring) in one module."""
        m = Module()
        A, D = self.array_domain, self.decode_domain
        rename = {"sync": A}
        if D != A:
            rename["dec"] = D
        direct_acts = self.engine.act_domain != "sync"
        if direct_acts:
            rename["act"] = "sync"
        m.submodules.engine = eng = DomainRenamer(rename)(self.engine)

        def fifo(name, width, depth, w, r):
            m.submodules[name] = f = AsyncFIFO(width=width, depth=depth, w_domain=w, r_domain=r)
            return f

        # The staging queue's block-RAM read address is a register (hw/lib/async_queue.py): the
        # library FIFO's, its read pointer plus the read, took the synchronized write pointer's
        # empty compare to the address of every block RAM of the queue in one cycle.
        # Its output skid buffer: the decoder's ready depends on the beat offered (the parser's
        # `first`), and through the queue's take it enabled the queue's four output registers of
        # 128-bit beats, placed by the block RAMs (13.3-14.0 ns, the `dec` worst path of the ULX3S
        # builds at af7b956); the skid's registered ready takes that path.
        m.submodules.stage = stage = AsyncQueue(self.i_stage.payload.shape(), self.stage_depth,
                                                w_domain="sync", r_domain=D, out_skid=True)
        table = fifo("table", Value.cast(self.i_table.payload).shape().width, self.cdc_depth, "sync", D)
        # The commands cross in an AsyncQueue as well: the library FIFO's read pointer, stepped by
        # the engine's ready, addressed its distributed RAM, whose data went to the sequencer's
        # command registers (10.7-11.0 ns on the 8 x 16 ULX3S board at 125 MHz, docs/boards.md).
        m.submodules.cmd = cmd = AsyncQueue(self.i_cmd.payload.shape(), self.cdc_depth,
                                            w_domain="sync", r_domain=A)
        if not direct_acts:
            m.submodules.act = act = AsyncQueue(self.i_act.payload.shape(), self.cdc_depth,
                                                w_domain="sync", r_domain=A, addr_slice=SLICE)
        m.submodules.res = res = RegisteredWriteAsyncFIFO(Value.cast(self.o_res.payload).shape().width,
                                                          self.cdc_depth, w_domain=A, r_domain="sync",
                                                          room_ahead=A != "sync")
        if A != "sync":
            m.d.comb += eng.i_res_room.eq(res.w_room_ahead)
        wiring.connect(m, wiring.flipped(self.i_stage), stage.i)
        if direct_acts:
            # The activations go straight into the engine's activation RAMs, written in this
            # domain (ActivationBuffer's w_domain): the array's domain holds only their read side.
            # They need no speed (one load per GEMM, at the controller's byte rate), and their
            # queue, half-rate buffer and the buffer's write logic in the array's domain spread
            # over the die in the full ULX3S board aimed at 125 MHz (the queue's load flags
            # 12.23 ns, its head slots from the half-rate buffer's valid 10.4-10.9 ns; 236
            # endpoints after 8 ns, docs/boards.md). The writer is held idle through a flush.
            wiring.connect(m, wiring.flipped(self.i_act), eng.i_act)
        else:
            wiring.connect(m, wiring.flipped(self.i_act), act.i)
        wiring.connect(m, wiring.flipped(self.i_cmd), cmd.i)
        m.d.comb += [table.w_data.eq(self.i_table.payload), table.w_en.eq(self.i_table.valid),
                     self.i_table.ready.eq(table.w_rdy)]
        m.d.comb += self.o_stage_level.eq(stage.w_level)

        flush = Signal()
        flush_a, flush_d, run_a, run_d = Signal(), Signal(), Signal(), Signal()
        m.submodules.flush_a = FFSynchronizer(flush, flush_a, o_domain=A)
        m.submodules.run_a = FFSynchronizer(self.i_run, run_a, o_domain=A)
        m.submodules.run_d = FFSynchronizer(self.i_run, run_d, o_domain=D)

        # Decoder's domain: staged beats while running, table words; both discarded in a flush
        # (the staging queue's prefetched beats too: they leave its output like any other). The
        # decoder's ready depends on the beat it is offered; it reaches only the queue's output
        # registers, not its block RAMs' address.
        m.d.comb += [eng.i_data.payload.eq(stage.o.payload),
                     eng.i_data.valid.eq(stage.o.valid & run_d & ~flush_d),
                     stage.o.ready.eq(eng.i_data.ready & run_d | flush_d)]
        _read_into(m, table, eng.i_table, flush_d)
        # Array's domain: commands, activations, results; discarded in a flush.
        streams = [(cmd, eng.i_cmd)]
        if direct_acts:
            m.d.comb += eng.i_act_clear.eq(flush)
        else:
            # The activation words reach the engine from a half-rate buffer (emptied in a flush): the
            # engine's ready, through the queue's take, set the queue's head slot copies (9.36-9.59
            # ns, the `gemm` endpoints of the ULX3S build at 95 MHz, docs/boards.md); the queue's take
            # is now decided from registers (its count, the buffer's valid). Half the array clock is
            # still well above the controller's clock, which writes the activations.
            act_buf = ResetInserter(flush_a)(HalfRateBuffer(self.i_act.payload.shape(), load_slice=SLICE))
            m.submodules.act_buf = act_buf = DomainRenamer({"sync": A})(act_buf)
            wiring.connect(m, act.o, act_buf.i)
            streams.append((act_buf, eng.i_act))
        for q, sink in streams:
            m.d.comb += [sink.payload.eq(q.o.payload), sink.valid.eq(q.o.valid & ~flush_a),
                         q.o.ready.eq(sink.ready | flush_a)]
        # Result rows go from the engine's output registers (the array's result collector: one
        # per column pair, each with its own load enable) into the crossing FIFO's write register
        # (hw/lib/async_fifo.py). The engine's ready is that FIFO's ``i.ready``, a register that
        # counts the room (not the library FIFO's writable flag, a compare of Gray pointers: 16.7
        # ns in the 8 x 16 board, docs/boards.md), and the FIFO's memory is written from the
        # write register alone (the library FIFO gates its write enables, those of about 100
        # distributed-RAM cells at 8 x 16, with that compare: 12.7-13.8 ns, the `gemm` worst path
        # at 3b8371b); no decision with the flush synchronizer behind it reaches those enables
        # either (14.50 ns before the write register). A skid buffer between (two registers of the
        # whole row, 770 flip-flops at 8 x 16 on one load enable) is not needed: the collector's
        # rings hold a row until taken. In a flush nothing is written: a row the
        # engine offers is taken while the FIFO has room (the reader drains it in a flush) and
        # dropped, and the engine's clear (the flush's first cycle) empties its collector anyway.
        # So the engine's ready is the FIFO's register alone, not ORed with the flush (the
        # synchronizer -> that OR -> the collector's load and count logic: 11.90 ns, the `gemm`
        # worst path at 8cc4ef0).
        m.d.comb += [res.i.payload.eq(eng.o_res.payload), res.i.valid.eq(eng.o_res.valid & ~flush_a),
                     eng.o_res.ready.eq(res.i.ready)]
        # The engine's clear pulse reaches its decoder through a synchronizer of its own: the
        # decoder's domain starts its flush from the array domain's (so no later than that pulse)
        # and acknowledges it DECODE_HOLD cycles later (so after the decoder was cleared).
        flush_seen = Signal()
        m.d[A] += flush_seen.eq(flush_a)
        m.d.comb += eng.i_clear.eq(flush_a & ~flush_seen)
        m.submodules.flush_d = FFSynchronizer(flush_seen, flush_d, o_domain=D)
        hold_d = Signal(self.DECODE_HOLD)
        m.d[D] += hold_d.eq(Cat(flush_d, hold_d[:-1]))

        # The array domain acknowledges once the engine's own clear is over (it is idle again):
        # a cycle later than it could, from the engine's idle terms of the cycle before and
        # ``flush_seen`` of that cycle (the gather of the terms across the engine into this
        # register: 8.46-8.90 ns, the 8 x 16 board aimed at 125 MHz).
        cleared_a, flush_seen_d = self.cleared_a, Signal()
        m.d[A] += [flush_seen_d.eq(flush_seen), cleared_a.eq(flush_seen_d & eng.o_idle_d)]

        # A row is counted as the engine hands it over (not as it enters the crossing FIFO's
        # memory): a row in the FIFO's write register is one the handler still waits for once the
        # engine is idle.
        handed = Signal()
        m.d.comb += handed.eq(eng.o_res.valid & eng.o_res.ready)
        snap = self._array_counters(m, eng, cmd, handed, flush_a, run_a)
        writers = (stage, table, cmd) if direct_acts else (stage, table, cmd, act)
        self._flush(m, flush, cleared_a, hold_d[-1], writers, res)
        self._snapshot(m, snap)
        return m

    def _array_counters(self, m, eng, cmd, handed, flush_a, run_a):
        """The array domain's counters; returns ``{output name: value}`` to be snapshot."""
        d = m.d[self.array_domain]
        run_seen, cycles, busy_until = Signal(), Signal(32), Signal(32)
        beats0, cmds, rows = Signal(32), Signal(16), Signal(16)
        busy = ~eng.o_idle | cmd.o.valid
        # `busy` (the engine's parts' idle flags and the command queue's) registered before it
        # enables busy_until: the same count, written a cycle later (cycles has moved on by one;
        # a busy run's last cycle is written in the cycle after, run_seen), and no path from
        # across the engine into the 32-bit counter's enable (the full ULX3S build's worst `gemm`
        # path at seed 1); idle only once busy_q has fallen too, so that a snapshot taken at idle
        # holds the count's last write
        # Idle from registers only (busy_q and the one before it): the engine's flags into the
        # snapshot's holding register were 10.25 ns at 100 MHz (docs/boards.md). A cycle later
        # than busy_q alone: busy rises with the command queue's valid, no later than the cycle
        # the command is taken, and the count of commands taken shows it a cycle after that, as
        # idle falls: a snapshot never shows idle with a command counted and not run.
        busy_q, busy_q2 = Signal(), Signal()
        d += [run_seen.eq(run_a), busy_q.eq(busy), busy_q2.eq(busy_q)]
        with m.If(run_a & ~run_seen):
            d += [cycles.eq(1), busy_until.eq(0), beats0.eq(eng.o_beats)]
        with m.Elif(run_a):
            d += cycles.eq(cycles + 1)
        with m.If(run_seen & busy_q):
            d += busy_until.eq(cycles)
        with m.If(flush_a):
            d += [cmds.eq(0), rows.eq(0)]
        with m.Else():
            with m.If(eng.i_cmd.valid & eng.i_cmd.ready):
                d += cmds.eq(cmds + 1)
            with m.If(handed):
                d += rows.eq(rows + 1)
        return {"o_cycles": busy_until, "o_beats": eng.o_beats - beats0, "o_cmds": cmds, "o_rows": rows,
                "o_idle": ~(busy_q | busy_q2), "o_errors": eng.o_errors, "o_overflow": eng.o_overflow}

    def _flush(self, m, flush, flush_a, flush_d, writers, res):
        """The ``sync`` side of a flush (module docstring); ``flush_a`` / ``flush_d``: the two
        domains' acknowledges (registers of their domains)."""
        ack_a, ack_d = Signal(), Signal()
        m.submodules.ack_a = FFSynchronizer(flush_a, ack_a)
        m.submodules.ack_d = FFSynchronizer(flush_d, ack_d)
        drained = ~res.o.valid
        for f in writers:
            drained &= f.w_level == 0
        with m.If(self.i_clear):
            m.d.sync += flush.eq(1)
        with m.Elif(flush & ack_a & ack_d & drained):
            m.d.sync += flush.eq(0)
        m.d.comb += [self.o_clearing.eq(flush | ack_a | ack_d),
                     self.o_res.payload.eq(res.o.payload), self.o_res.valid.eq(res.o.valid & ~flush),
                     res.o.ready.eq(self.o_res.ready | flush)]

    def _snapshot(self, m, values):
        """Toggle handshake: array domain captures ``values``, ``sync`` copies them to the outputs."""
        A = self.array_domain
        req, ack, req_a, ack_a = Signal(), Signal(), Signal(), Signal()
        m.submodules.req_sync = FFSynchronizer(req, req_a, o_domain=A)
        m.submodules.ack_sync = FFSynchronizer(ack_a, ack)
        held = {name: Signal.like(getattr(self, name), name=f"held_{name[2:]}") for name in values}
        # The capture a cycle after the request is seen, from a register per held value
        # (``keep``: Yosys would merge them): the compare of ``req_a`` and ``ack_a`` as the enable
        # of every held register was 8.00-8.47 ns (the full 8 x 16 board aimed at 95 MHz, seed 1).
        # ``ack_a`` follows with the values, so the ``sync`` side copies them after.
        cap = {name: Signal(name=f"cap_{name[2:]}", attrs={"keep": 1}) for name in values}
        for name, v in values.items():
            m.d[A] += cap[name].eq((req_a != ack_a) & ~cap[name])
            with m.If(cap[name]):
                m.d[A] += held[name].eq(v)
        with m.If(next(iter(cap.values()))):
            m.d[A] += ack_a.eq(req_a)
        clean = Signal()        # the request in flight was made after the last flush
        with m.If(ack == req):
            m.d.sync += [req.eq(~req), clean.eq(~self.o_clearing & ~self.i_clear), self.o_fresh.eq(clean)]
            m.d.sync += [getattr(self, name).eq(h) for name, h in held.items()]
        with m.If(self.i_clear | self.o_clearing):
            m.d.sync += [clean.eq(0), self.o_fresh.eq(0)]


def _read_into(m, fifo, sink, flush):
    """``fifo``'s read side into the stream ``sink``; while ``flush``, its words are read and dropped."""
    m.d.comb += [sink.payload.eq(fifo.r_data), sink.valid.eq(fifo.r_rdy & ~flush),
                 fifo.r_en.eq(sink.ready | flush)]
