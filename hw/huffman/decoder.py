"""The N-lane Huffman weight decoder: block parser, table loader, N lanes, output join, counters and
sticky error flags."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..lib.fifo import RegisteredFlagFIFO
from ..lib.reset import add_with_reset_tree
from ..lib.sections import elaborate_sections
from ..params import check_bool, check_choice, check_int, check_pow2
from . import spec
from .block_parser import (
    HEADER_CRCS,
    HEADER_REGS,
    BlockParser,
    DescriptorSlot,
    beat_layout,
    descriptor_layout,
)
from .lane import LaneDecoder
from .lane_cslow import CSlowLaneDecoder
from .lane_table import CompactTableLoader, TableLaneDecoder
from .lane_table_cslow import (
    ESCAPE_CHECKS,
    FILL_STEPS,
    STAGE1_COMPARES,
    WINDOW_COMPARES,
    CSlowTableLoader,
    TableCSlowLaneDecoder,
)
from .table_loader import TableLoader, table_bus, table_word_layout

__all__ = ["HuffmanDecoder", "output_layout", "ERROR_BITS", "IMPLS", "MIN_COUNTER_BITS", "CHAIN_POPS"]

#: Decode-lane implementations: per-length comparators (fast on the ECP5), or a lookup table in
#: block RAM (compact, for the iCE40UP5K).
IMPLS = ("comparator", "table")

#: ``HuffmanDecoder(chain_pop=...)``: the chain flag FIFO's read at the join's take or a cycle later.
CHAIN_POPS = ("direct", "registered")

#: The status counters' narrowest width (``counter_bits``): 16 bits still count a 65535-symbol block.
MIN_COUNTER_BITS = 16

#: Bit positions in ``o_errors`` (same masks as :mod:`hw.huffman.spec`).
ERROR_BITS = 7


def output_layout(lanes, raw_bits):
    """One output beat: one value per lane (block symbols ``t*N .. t*N+N-1``) and block marks."""
    return data.StructLayout({
        "data": data.ArrayLayout(spec.value_width(raw_bits), lanes),
        "first": 1,     # first beat of a block
        "last": 1,      # last beat of a block
        "err": 1,       # on the last beat: the block had an error (its values after the error are 0)
    })


class HuffmanDecoder(wiring.Component):
    """Decodes compressed weight blocks (:mod:`hw.huffman.spec`) into N values per cycle.

    ``i_data`` carries blocks (header + payload beats of N 16-bit words), ``i_table`` serialized code
    tables. Each lane has a word FIFO (``fifo_depth`` words) and a 2-entry descriptor FIFO, so the
    parser runs ahead: headers and block switches overlap decoding, and lanes that momentarily consume
    fewer bits do not stall the others. ``o_data`` gives one value per lane per beat, in block order.

    Tables are double-buffered: table ``t`` (in load order) loads into bank ``t % 2`` as soon as no lane
    uses table ``t - 2`` any more, i.e. while the lanes decode the blocks of table ``t - 1``.

    Errors: ``o_errors`` is a sticky mask of :data:`hw.huffman.spec.ERR_* <hw.huffman.spec>` bits.
    Every error is local to a block: a bad header drops its block (the parser waits for the next
    ``first`` beat), any other error zeroes the rest of the lane's block and sets ``err`` on the block's
    last beat. The decoder never waits for anything but input and output handshakes.
    ``i_clear`` (one cycle) resets the whole decoder - flags, counters, FIFOs, loaded tables (reload
    them) - without touching the configuration, in the cycle after it (a registered reset tree,
    :func:`hw.lib.reset.add_with_reset_tree`: one clear register per part of the decoder, so that
    no flip-flop drives the whole decoder's reset; the domain's reset reaches the parts through the
    same registers, one cycle late too). Beats taken in the cycle of ``i_clear`` are lost;
    ``i_data.ready`` and ``i_table.ready`` are low in the cycle after it and in the first cycle
    after the domain's reset, while the parts are still held.

    Two contexts (``contexts=2``, C-slow): each hardware lane is a
    :class:`~hw.huffman.lane_cslow.CSlowLaneDecoder`, whose decode loop takes two cycles and serves
    two *format* lanes alternately: hardware lane ``i`` decodes format lanes ``i`` (context 0) and
    ``i + N`` (context 1) of blocks of ``2N`` format lanes. ``i_data`` beats then carry ``2N``
    words (the block format of :mod:`hw.huffman.spec` with ``2N`` lanes: an encoder makes such
    streams with ``n_lanes=2N``); ``o_data`` beats still carry N values, alternately format lanes
    ``0..N-1`` and ``N..2N-1``, i.e. block symbols in order (a format beat of 2N symbols leaves as
    two beats). A block's first beat has ``first``, its last beat ``last`` and ``err`` for all its
    format lanes. Throughput per hardware lane is still about one symbol per cycle; the clock is
    what it buys (the loop is cut in two). ``contexts=1`` is the one-cycle
    :class:`~hw.huffman.lane.LaneDecoder` with blocks of N format lanes.

    Counters (``counter_bits`` wide, default 32; they wrap): ``o_beats_in`` data beats accepted,
    ``o_symbols`` values output (N per beat), ``o_blocks`` blocks output, ``o_err_blocks`` blocks
    output with ``err``, ``o_fires`` decode cycles summed over lanes (``o_fires / (cycles * N)`` =
    lane utilisation).
    The three output counters count a cycle after the output transfer.

    Parameters
    ----------
    max_len : int
        L, maximum code length, 8 to 16.
    lanes : int
        N, hardware lanes (values per output beat), 1 to 8 (1 to 4 with two contexts).
    raw_bits : int
        R, raw bits per symbol of EXP/RAW blocks (a block's ``r`` is 0 or R; BF16 sign+mantissa = 8,
        bypass of int8 = 8), 0 to 8; values are ``8 + R`` bits.
    fifo_depth : int
        Words per lane FIFO, a power of two from 4 to 512.
    contexts : int
        1 (one-cycle lanes, blocks of N format lanes) or 2 (C-slow lanes, blocks of 2N format lanes).
    escape : bool
        Decode escape codes (:data:`hw.huffman.spec.ESCAPE`: a table may list it; its code is
        followed by the symbol's 8 bits). Default False: a table listing the escape fails
        (``ERR_TABLE``).
    impl : str
        ``"comparator"`` (default): the lanes compare the window with every length's code end.
        ``"table"``: :class:`~hw.huffman.lane_table.TableLaneDecoder`, a first-level lookup table in
        block RAM, in less logic; with ``contexts=2``
        :class:`~hw.huffman.lane_table_cslow.TableCSlowLaneDecoder` (see ``docs/huffman.md``).
    counter_bits : int
        Width of the five status counters, 16 to 32 (default 32). They are status, not format:
        a compact build can narrow them (they wrap modulo ``2**counter_bits``).
    chain : bool
        Take chained blocks (:data:`hw.huffman.spec.FLAG_CONT`, default False: their headers are
        bad). ``o_data``'s marks are then a unit's: ``first`` on its first beat, ``last`` on its
        last, ``err`` on the last for all its blocks; ``o_blocks`` / ``o_err_blocks`` count units.
        The parser writes each accepted block's ``cont`` flag into a 4-entry FIFO beside the
        descriptors (it waits while that is full) and the join reads it at the block's last beat,
        so the flag does not travel through the lanes. An encoder for this decoder cuts units into
        blocks of drift at most :func:`hw.huffman.spec.max_drift` ``(fifo_depth)``
        (``sim.huffman.golden.chain_blocks``); a block of more drift can stop the decoder for good.
    header_regs : str
        The block parser's header registers (:class:`~hw.huffman.block_parser.BlockParser`'s
        ``header_regs``): ``"shift"`` (default) or ``"fields"`` (fewer registers, same behaviour).
    header_crc : str
        The block parser's header CRC (:class:`~hw.huffman.block_parser.BlockParser`'s
        ``header_crc``): ``"beat"`` (default) or ``"word"`` (one word per cycle: less logic, a
        header beat every ``lanes * contexts`` cycles).
    escape_check : str
        Which part checks that a table's escape is the last symbol of its length: ``"loader"``
        (default) or ``"filler"`` (``impl="table"``, ``contexts=2``, ``escape``, L up to 14: the lane's
        table filler, in its walk, without the loader's per-length end registers; area, the UP5K's
        GEMM group). Same verdicts; with ``"filler"`` such a table's ``ERR_TABLE`` rises when the
        filler has walked it, not at the loader's verdict (lanes take a table only once it is
        walked, so no block decodes with it either way).
    stage1_compare : str
        (``impl="table"``, ``contexts=2``) Where the lane's stage-1 bit-count compares run
        (:class:`~hw.huffman.lane_table_cslow.TableCSlowLaneDecoder`'s ``stage1_compare``):
        ``"late"`` (default) or ``"a1"`` (a stage earlier, registered: a shorter path into the
        lane's error flags; same behaviour).
    window_compare : str
        (``impl="table"``, ``contexts=2``) Where the lane's compares of the window (long-code
        boundary, escape) run (:class:`~hw.huffman.lane_table_cslow.TableCSlowLaneDecoder`'s
        ``window_compare``): ``"b"`` (default) or ``"a"`` (a stage earlier, registered: a shorter
        stage-B path into the lane's fill; same behaviour).
    chain_pop : str
        (``chain``, ``contexts=2``) When the join reads the next block's ``cont`` flag:
        ``"direct"`` (default): the flag FIFO's read is the join's take of a block's last beat;
        ``"registered"``: a cycle later, from a register (the FIFO's read logic is then not behind
        the lanes' output queues and the join; a block's last beat is context 1's, so the next
        block's last beat is at least two cycles later and finds the next flag at the head). Same
        outputs; the FIFO's entry is free a cycle later (a parser holding four blocks' flags may
        write the next block's descriptors a cycle later).
    fill_step : str
        (``impl="table"``, ``contexts=2``) The lane's fill after a step
        (:class:`~hw.huffman.lane_table_cslow.TableCSlowLaneDecoder`'s ``fill_step``):
        ``"candidates"`` (default), ``"subtract"`` (less logic, a longer stage-B path) or
        ``"escape_last"`` (``escape`` only: the escape's compare picks between two fills last,
        a shorter stage-B path from the window register).

    Members
    -------
    i_data : In(stream.Signature(beat_layout(lanes * contexts)))
    i_table : In(stream.Signature(table_word_layout))
    o_data : Out(stream.Signature(output_layout(lanes, raw_bits)))
    o_errors : Out(7)
    o_beats_in, o_symbols, o_blocks, o_err_blocks, o_fires : Out(counter_bits)
    i_clear : In(1)

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, max_len=12, lanes=1, raw_bits=8, fifo_depth=spec.FIFO_DEPTH, contexts=1, escape=False,
                 impl="comparator", counter_bits=32, chain=False, header_regs="shift", header_crc="beat",
                 escape_check="loader", fill_step="candidates", chain_pop="direct", stage1_compare="late",
                 window_compare="b"):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        self._C = check_int("contexts", contexts, 1, 2)
        self._N = check_int("lanes", lanes, 1, 8 // contexts)
        self._R = check_int("raw_bits", raw_bits, 0, 8)
        self._depth = check_pow2("fifo_depth", fifo_depth, 4, 512)
        self._escape = check_bool("escape", escape)
        self._impl = check_choice("impl", impl, IMPLS)
        self._cbits = check_int("counter_bits", counter_bits, MIN_COUNTER_BITS, 32)
        self._chain = check_bool("chain", chain)
        self._header_regs = check_choice("header_regs", header_regs, HEADER_REGS)
        self._header_crc = check_choice("header_crc", header_crc, HEADER_CRCS)
        self._filler_check = check_choice("escape_check", escape_check, ESCAPE_CHECKS) == "filler"
        filler_ok = (self._impl, self._C, self._escape) == ("table", 2, True) and self._L <= 14
        if self._filler_check and not filler_ok:
            raise ValueError("escape_check: 'filler' only with impl='table', contexts=2, escape=True and "
                             "max_len up to 14")
        self._fill_step = check_choice("fill_step", fill_step, FILL_STEPS)
        self._subtract = self._fill_step == "subtract"
        self._pop_q = check_choice("chain_pop", chain_pop, CHAIN_POPS) == "registered"
        self._s1_a1 = check_choice("stage1_compare", stage1_compare, STAGE1_COMPARES) == "a1"
        if self._s1_a1 and not (self._impl == "table" and self._C == 2):
            raise ValueError("stage1_compare: 'a1' only with impl='table' and contexts=2")
        self._window_a = check_choice("window_compare", window_compare, WINDOW_COMPARES) == "a"
        if self._window_a and not (self._impl == "table" and self._C == 2):
            raise ValueError("window_compare: 'a' only with impl='table' and contexts=2")
        if self._pop_q and not (self._chain and self._C == 2):
            raise ValueError("chain_pop: 'registered' only with chain=True and contexts=2")
        if self._fill_step != "candidates" and not (self._impl == "table" and self._C == 2):
            raise ValueError(f"fill_step: {self._fill_step!r} only with impl='table' and contexts=2")
        if self._fill_step == "escape_last" and not self._escape:
            raise ValueError("fill_step: 'escape_last' only with escape=True")
        cb = self._cbits
        super().__init__({
            "i_data": In(stream.Signature(beat_layout(lanes * contexts))),
            "i_table": In(stream.Signature(table_word_layout)),
            "o_data": Out(stream.Signature(output_layout(lanes, raw_bits))),
            "o_errors": Out(ERROR_BITS),
            "o_beats_in": Out(cb),
            "o_symbols": Out(cb),
            "o_blocks": Out(cb),
            "o_err_blocks": Out(cb),
            "o_fires": Out(cb),
            "i_clear": In(1),
        })

    max_len = property(lambda self: self._L)
    lanes = property(lambda self: self._N)
    contexts = property(lambda self: self._C)
    raw_bits = property(lambda self: self._R)
    escape = property(lambda self: self._escape)
    impl = property(lambda self: self._impl)
    counter_bits = property(lambda self: self._cbits)
    chain = property(lambda self: self._chain)
    fifo_depth = property(lambda self: self._depth)

    @property
    def max_drift(self):
        """The largest block drift (words) this decoder takes: :func:`hw.huffman.spec.max_drift`."""
        return spec.max_drift(self._depth)

    @property
    def format_lanes(self):
        """Lanes of the block format: ``lanes * contexts`` (the width of an ``i_data`` beat)."""
        return self._N * self._C

    def elaborate(self, platform):
        m = Module()
        # High while the parts are held in reset: the inputs are not ready then (see _inputs).
        self._held = Signal()
        core = elaborate_sections(Module(), self._lanes, self._inputs, self._permit, self._join,
                                  self._errors_and_counters)
        # A registered reset tree: the clear (and the domain's reset) reaches each part one cycle
        # later from its own register.
        leaves = add_with_reset_tree(m, "core", core, self.i_clear, platform=platform)
        m.d.comb += self._held.eq(leaves[0])
        return m

    def _lanes(self, core, ns):
        """Parser, table loader, the lanes and per format lane a word FIFO and a descriptor FIFO."""
        N, C = self._N, self._C
        kind = (_TABLE_KINDS if self._impl == "table" else _LANE_KINDS)[C]
        core.submodules.parser = parser = BlockParser(lanes=N * C, raw_bits=self._R, hold=kind.desc_hold,
                                                      chain=self._chain, header_regs=self._header_regs,
                                                      header_crc=self._header_crc)
        # chained blocks: each accepted block's ``cont`` flag, read by the join at the block's end
        conts = SyncFIFOBuffered(width=1, depth=4) if self._chain else None
        if conts is not None:
            core.submodules.conts = conts
        # (the filler's escape check: keyword arguments only then, the classes' defaults otherwise)
        loader_args = {"placement": False, "end_offset": True} if self._filler_check else {}
        lane_args = {"escape_check": "filler"} if self._filler_check else {}
        if self._fill_step != "candidates":
            lane_args["fill_step"] = self._fill_step
        if self._s1_a1:
            lane_args["stage1_compare"] = "a1"
        if self._window_a:
            lane_args["window_compare"] = "a"
        core.submodules.loader = loader = kind.loader_class(max_len=self._L, escape=self._escape,
                                                            **loader_args)
        lanes = []
        for k in range(N):
            lane = kind.lane_class(max_len=self._L, raw_bits=self._R, escape=self._escape, **lane_args)
            core.submodules[f"lane{k}"] = lane
            lanes.append(lane)
            core.d.comb += [getattr(lane, f"i_{name}").eq(getattr(loader, f"o_{name}"))
                            for name in table_bus(self._L, offset_port=kind.offset_port, escape=self._escape)]
        # per format lane f = c * N + i: (words, desc, sym, tab) of lane i, context c
        ports = [kind.port(lane, c) for c in range(C) for lane in lanes]
        fifos = []
        for f, (words, desc, _, _) in enumerate(ports):
            wfifo = RegisteredFlagFIFO(width=spec.WORD + 1, depth=self._depth, bram=kind.fifo_bram)
            if kind.desc_hold:
                dfifo = DescriptorSlot(width=descriptor_layout.size)
            else:
                dfifo = SyncFIFOBuffered(width=descriptor_layout.size, depth=kind.desc_depth)
            core.submodules[f"wfifo{f}"] = wfifo
            core.submodules[f"dfifo{f}"] = dfifo
            fifos.append((wfifo, dfifo))
            core.d.comb += [
                desc.valid.eq(dfifo.r_rdy), desc.payload.eq(dfifo.r_data), dfifo.r_en.eq(desc.ready),
            ]
            kind.feed_words(core, f, wfifo, words)
        ns.keep(locals(), "kind parser loader lanes ports fifos conts")

    def _inputs(self, core, ns):
        """The data stream to the parser, tables to the loader; the parser's beats and descriptors
        to every format lane's FIFOs at once."""
        parser, loader, fifos = ns.parser, ns.loader, ns.fifos
        core.d.comb += [
            parser.i_data.valid.eq(self.i_data.valid), parser.i_data.payload.eq(self.i_data.payload),
            self.i_data.ready.eq(parser.i_data.ready & ~self._held),
        ]
        # The parts leave a reset one cycle after it (the reset tree's registers): the inputs are
        # not ready in that cycle, so that no beat or table word is taken and then lost.
        ns.kind.feed_table(core, self.i_table, loader, self._held)
        desc_fifos = fifos if ns.conts is None else [*fifos, (None, ns.conts)]
        words_room, desc_room = ns.kind.parser_room(core, fifos, desc_fifos, self._depth)
        if ns.kind.desc_hold:       # the parser keeps the descriptors until every lane has read them
            core.d.comb += parser.i_hold.eq(Cat(*(d.r_rdy for _, d in fifos)).any())
        core.d.comb += [parser.o_words.ready.eq(words_room), parser.o_desc.ready.eq(desc_room)]
        words_v = Signal()
        words_d = Signal.like(parser.o_words.payload)
        core.d[ns.kind.beat_domain] += [words_v.eq(parser.o_words.valid & words_room),
                                         words_d.eq(parser.o_words.payload)]
        for f, (wfifo, dfifo) in enumerate(fifos):
            core.d.comb += [
                wfifo.w_en.eq(words_v), wfifo.w_data.eq(words_d[f]),
                dfifo.w_en.eq(parser.o_desc.valid & desc_room), dfifo.w_data.eq(parser.o_desc.payload[f]),
            ]
        if ns.conts is not None:
            core.d.comb += [ns.conts.w_en.eq(parser.o_desc.valid & desc_room),
                            ns.conts.w_data.eq(parser.o_cont)]

    def _permit(self, core, ns):
        """Loader permission: table t overwrites table t-2; wait until every lane is past it (a
        register: the loader reads it only two cycles after its count last changed, and a lane's
        table number only grows, so a one-cycle-old permit is never too permissive)
        (``t - tab <= 1`` modulo 256 as two equalities, with ``t - 1`` a loader register: no
        subtraction before the compare)."""
        loader = ns.loader
        t = loader.o_count
        tb = getattr(ns.kind.lane_class, "table_number_bits", 8)     # (compared modulo 2**tb)
        beyond = Cat(*((tab[:tb] == t[:tb]) | (tab[:tb] == loader.o_count_m1[:tb])
                       for _, _, _, tab in ns.ports)).all()
        permit_q = Signal()
        core.d.sync += permit_q.eq(~loader.o_two | beyond)
        core.d.comb += loader.i_permit.eq(permit_q)

    def _join(self, core, ns):
        """Output join: a beat when every lane has a value (with two contexts, of the context whose
        turn it is: see :class:`_TwoContexts`)."""
        N, kind = self._N, ns.kind
        syms = [p[2] for p in ns.ports]
        bph = Signal()                      # context of the next output beat
        cur = kind.heads(core, syms, N, bph)
        # the joined beat (``jv``/``jr``/``jp``)
        jv = Signal()
        jr = Signal()
        jp = Signal(output_layout(N, self._R))
        all_valid = Cat(*(s.valid for s in cur)).all()
        join_take = jv & jr
        core.d.comb += jv.eq(all_valid)
        for f, sym in enumerate(syms):
            core.d.comb += sym.ready.eq(kind.sym_ready(syms, f, N, jr, all_valid, bph))
        for i in range(N):
            core.d.comb += jp.data[i].eq(cur[i].payload.value)
        err = Cat(*(s.payload.err for s in cur)).any()
        kind.output(core, cur, bph, err, jv, jr, jp, join_take, self.o_data,
                    marks=self._unit_marks(core, ns, join_take))
        ns.out_take = self.o_data.valid & self.o_data.ready

    def _unit_marks(self, core, ns, join_take):
        """``marks(first, last, err) -> (first, last, err)``: a joined beat's block marks as the
        output's. Without chaining the same; with it a unit's (see ``chain``): ``cont``, the head
        of the parser's flag FIFO (written with the block's descriptors, so never empty while the
        block's beats leave), is read at the block's last beat."""
        if ns.conts is None:
            return lambda first, last, err: (first, last, err)
        conts = ns.conts
        inside = Signal()       # the previous block was continued: this one is not a unit's first
        unit_err = Signal()     # an error in the unit's earlier blocks
        cont = conts.r_data[0]

        def marks(first, last, err):
            with core.If(join_take & last):
                core.d.sync += [inside.eq(cont), unit_err.eq(cont & (unit_err | err))]
            if self._pop_q:
                pop = Signal()
                core.d.sync += pop.eq(join_take & last)
                core.d.comb += conts.r_en.eq(pop)
            else:
                core.d.comb += conts.r_en.eq(join_take & last)
            return first & ~inside, last & ~cont, Mux(last, ~cont & (err | unit_err), err)
        return marks

    def _errors_and_counters(self, core, ns):
        """Sticky errors and counters."""
        N, parser, loader, lanes = self._N, ns.parser, ns.loader, ns.lanes
        errs = Signal(ERROR_BITS)
        pulses = {
            spec.ERR_INVALID: [lane.o_err_invalid for lane in lanes],
            spec.ERR_TRUNC: [lane.o_err_trunc for lane in lanes] + [parser.o_err_trunc],
            spec.ERR_MISMATCH: [lane.o_err_mismatch for lane in lanes],
            spec.ERR_OVERRUN: [parser.o_err_overrun],
            spec.ERR_HEADER: [parser.o_err_header],
            spec.ERR_TABLE: [loader.o_err] + [lane.o_err_table for lane in lanes if self._filler_check],
            spec.ERR_CRC: [lane.o_err_crc for lane in lanes],
        }
        for mask, sources in pulses.items():
            core.d.comb += errs[mask.bit_length() - 1].eq(Cat(*sources).any())
        core.d.sync += self.o_errors.eq(self.o_errors | errs)

        fires = Signal(range(N + 1))
        core.d.comb += fires.eq(sum(lane.o_fire for lane in lanes))
        core.d.sync += self.o_fires.eq(self.o_fires + fires)
        with core.If(self.i_data.valid & self.i_data.ready):
            core.d.sync += self.o_beats_in.eq(self.o_beats_in + 1)
        # the output counters count a cycle after the take (registered pulses: the consumer's
        # ready does not reach the counters' enables)
        out_take = ns.out_take
        took, took_last, took_err = Signal(), Signal(), Signal()
        core.d.sync += [took.eq(out_take), took_last.eq(out_take & self.o_data.payload.last),
                        took_err.eq(out_take & self.o_data.payload.last & self.o_data.payload.err)]
        with core.If(took):
            core.d.sync += self.o_symbols.eq(self.o_symbols + N)
        with core.If(took_last):
            core.d.sync += self.o_blocks.eq(self.o_blocks + 1)
        with core.If(took_err):
            core.d.sync += self.o_err_blocks.eq(self.o_err_blocks + 1)


class _OneCycle:
    """How the decoder feeds and joins one-cycle lanes (:class:`~hw.huffman.lane.LaneDecoder`,
    blocks of N format lanes): every connection straight, the output beat straight out."""

    lane_class = LaneDecoder
    loader_class = TableLoader
    offset_port = False                 # the lanes read the loader's offset registers
    desc_depth = 2                      # a 2-entry descriptor FIFO per lane
    desc_hold = False                   # (True: a DescriptorSlot per lane, the parser holds the data)
    fifo_bram = False                   # the FIFOs' memories as the library maps them (collision logic)

    @staticmethod
    def port(lane, context):
        """``(words, desc, sym, tab)`` of a lane's format lane."""
        return lane.i_words, lane.i_desc, lane.o_sym, lane.o_tab

    @staticmethod
    def feed_words(core, f, wfifo, words):
        """Format lane ``f``'s word FIFO to its lane port ``words``."""
        core.d.comb += [
            words.valid.eq(wfifo.r_rdy), words.payload.eq(wfifo.r_data), wfifo.r_en.eq(words.ready),
        ]

    @staticmethod
    def feed_table(core, i_table, loader, held):
        """The table stream to the loader (not ready while ``held``)."""
        core.d.comb += [
            loader.i_table.valid.eq(i_table.valid), loader.i_table.payload.eq(i_table.payload),
            i_table.ready.eq(loader.i_table.ready & ~held),
        ]

    @staticmethod
    def parser_room(core, fifos, desc_fifos, depth):
        """``(words_room, desc_room)``: every word FIFO, every descriptor FIFO (``desc_fifos``'
        second items) can take one."""
        return Cat(*(w.w_rdy for w, _ in fifos)).all(), Cat(*(d.w_rdy for _, d in desc_fifos)).all()

    beat_domain = "comb"                # a taken beat goes to the word FIFOs straight

    @staticmethod
    def heads(core, syms, lanes, bph):
        """The lane outputs joined into a beat."""
        return syms

    @staticmethod
    def sym_ready(syms, f, lanes, jr, all_valid, bph):
        return jr & all_valid

    @staticmethod
    def output(core, cur, bph, err, jv, jr, jp, join_take, o_data, marks):
        """The joined beat, straight out (its block marks through ``marks``)."""
        first, last, err = marks(cur[0].payload.first, cur[0].payload.last, err)
        core.d.comb += [
            jp.first.eq(first),
            jp.last.eq(last),
            jp.err.eq(err),
            o_data.valid.eq(jv), o_data.payload.eq(jp), jr.eq(o_data.ready),
        ]


class _TwoContexts:
    """How the decoder feeds and joins C-slow lanes (:class:`~hw.huffman.lane_cslow.CSlowLaneDecoder`,
    blocks of 2N format lanes): registers wherever a handshake would reach a lane's loop or the
    loader's state logic, and a join that alternates between the contexts."""

    lane_class = CSlowLaneDecoder
    loader_class = TableLoader
    offset_port = True                  # the lanes keep the offsets in a block RAM of their own
    # one descriptor register per format lane (area: the parser's output register holds the next one)
    desc_depth = 1
    desc_hold = False
    fifo_bram = False

    @staticmethod
    def port(lane, context):
        return lane.i_words[context], lane.i_desc[context], lane.o_sym[context], lane.o_tab[context]

    @staticmethod
    def feed_words(core, f, wfifo, words):
        """A 3-entry register FIFO between the (block RAM) word FIFO and the lane: the lane's
        word-take drives only local flip-flops, the RAM FIFO's read a register-derived ready (the
        RAM FIFO's read enable is ``near.w_rdy``, a register in RegisteredFlagFIFO)."""
        near = RegisteredFlagFIFO(width=spec.WORD + 1, depth=3)
        core.submodules[f"wnear{f}"] = near
        core.d.comb += [
            near.w_en.eq(wfifo.r_rdy), near.w_data.eq(wfifo.r_data), wfifo.r_en.eq(near.w_rdy),
            words.valid.eq(near.r_rdy), words.payload.eq(near.r_data), near.r_en.eq(words.ready),
        ]

    @staticmethod
    def feed_table(core, i_table, loader, held):
        """A small FIFO in front of the loader: its input word comes from a local register (the
        count adders start there), and its ready is not the loader's state logic (nor while
        ``held``)."""
        core.submodules.tfifo = tfifo = RegisteredFlagFIFO(width=len(i_table.payload.as_value()), depth=4)
        core.d.comb += [
            tfifo.w_en.eq(i_table.valid), tfifo.w_data.eq(i_table.payload),
            i_table.ready.eq(tfifo.w_rdy & ~held),
            loader.i_table.valid.eq(tfifo.r_rdy), loader.i_table.payload.eq(tfifo.r_data),
            tfifo.r_en.eq(loader.i_table.ready),
        ]

    @staticmethod
    def parser_room(core, fifos, desc_fifos, depth):
        """Both as registers. Words: every word FIFO had three free entries a cycle ago (taken
        beats reach the FIFOs a cycle later, through a register: so one is free when it arrives).
        Descriptors: only the parser writes them, and never in the cycle before it offers a
        descriptor (a lane's read only makes room: a cycle-old "room" is safe)."""
        words_room = Signal()
        core.d.sync += words_room.eq(Cat(*(w.w_level <= depth - 3 for w, _ in fifos)).all())
        desc_room = Cat(*(d.w_rdy for _, d in desc_fifos)).all()
        desc_room_q = Signal()
        core.d.sync += desc_room_q.eq(desc_room)
        return words_room, desc_room_q

    beat_domain = "sync"                # a taken beat goes to the word FIFOs through a register

    @staticmethod
    def heads(core, syms, lanes, bph):
        """The beats alternate between context 0 (format lanes 0..N-1) and context 1 (format lanes
        N..2N-1) of every lane: block order."""
        N = lanes
        cur = [SimpleNamespace(valid=Signal(name=f"cur{i}_valid"),
                               payload=Signal(syms[i].payload.shape(), name=f"cur{i}_payload"))
               for i in range(N)]
        for i in range(N):
            core.d.comb += [cur[i].valid.eq(Mux(bph, syms[N + i].valid, syms[i].valid)),
                            cur[i].payload.eq(Mux(bph, syms[N + i].payload, syms[i].payload))]
        return cur

    @staticmethod
    def sym_ready(syms, f, lanes, jr, all_valid, bph):
        """Flat: this context's turn, and the other lanes' values of this context are there (not
        its own ``valid``: a transfer needs it anyway, and without it the queue's read enable is one
        AND of registers)."""
        N = lanes
        c = f // N
        others = [syms[c * N + i].valid for i in range(N) if c * N + i != f]
        return jr & (bph == c) & Cat(*others).all()

    @classmethod
    def output(cls, core, cur, bph, err, jv, jr, jp, join_take, o_data, marks):
        """A block's first beat is context 0's first, its last beat context 1's last; ``err`` on it
        also covers context 0's lanes (remembered from context 0's last beat). The beat leaves
        through a 5-entry output FIFO so that the consumer's ready does not reach the lanes' queues:
        4 inner entries + the output register; with ``jr`` a cycle old, a level of at most 2 leaves
        at most 3 a cycle later, so the inner 4 have room; a consumer that is always ready keeps
        the level at 2 (a beat reaches the output register two cycles after its write), so the join
        never waits for it."""
        err0 = Signal()
        with core.If(join_take):
            core.d.sync += bph.eq(~bph)
            with core.If(~bph & cur[0].payload.last):
                core.d.sync += err0.eq(err)
        first, last, err = marks(cur[0].payload.first & ~bph, cur[0].payload.last & bph,
                                 bph & cur[0].payload.last & (err | err0))
        core.d.comb += [jp.first.eq(first), jp.last.eq(last), jp.err.eq(err)]
        core.submodules.ofifo = ofifo = RegisteredFlagFIFO(width=jp.shape().size, depth=5,
                                                           bram=cls.fifo_bram)
        core.d.sync += jr.eq(ofifo.w_level <= 2)
        core.d.comb += [
            ofifo.w_en.eq(jv & jr), ofifo.w_data.eq(jp),
            o_data.valid.eq(ofifo.r_rdy), o_data.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(o_data.ready),
        ]


class _TableLookup(_OneCycle):
    """Table-lookup lanes (:class:`~hw.huffman.lane_table.TableLaneDecoder`, ``impl="table"``): fed and
    joined as one-cycle lanes; their loader builds the lookup table and they take the offsets."""

    lane_class = TableLaneDecoder
    loader_class = CompactTableLoader
    offset_port = True
    # The word FIFOs as the library maps them: in block RAM without collision logic they saved
    # 22 LC here (3954 -> 3932), but the `edgelearn demo` UP5K row (gemm_engine 2 x 2, L = 8, 93 %
    # of the logic cells) then did not route (router2 at 2 overused wires for 15 min, seed 1); as
    # mapped by the library it routes in about 90 s.
    fifo_bram = False


class _TableTwoContexts(_TwoContexts):
    """Two-context table-lookup lanes (:class:`~hw.huffman.lane_table_cslow.TableCSlowLaneDecoder`,
    ``impl="table", contexts=2``): fed and joined as C-slow lanes, with the table lane's loader."""

    lane_class = TableCSlowLaneDecoder
    loader_class = CSlowTableLoader    # (its escape check registered)
    # the word FIFOs and the output FIFO in block RAM without collision logic (area: the UP5K's
    # block RAMs are spare, its logic cells are not)
    fifo_bram = True
    # no descriptor registers: the parser holds a block's descriptors (its header registers) until
    # both contexts have read them, and meanwhile forwards the block's payload; only its next
    # header waits (for blocks of more payload than the word FIFOs hold, no later than before)
    desc_hold = True
    # straight word and table feeds (area: the UP5K is the target; the lane registers the next
    # context's word head itself, and its word-take is two registers)
    feed_words = staticmethod(_OneCycle.feed_words)
    feed_table = staticmethod(_OneCycle.feed_table)


_LANE_KINDS = {1: _OneCycle, 2: _TwoContexts}
_TABLE_KINDS = {1: _TableLookup, 2: _TableTwoContexts}
