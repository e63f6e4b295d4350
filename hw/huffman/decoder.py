"""The N-lane Huffman weight decoder: block parser, table loader, N lanes, output join, counters and
sticky error flags."""

from amaranth.hdl import Cat, Module, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..params import check_int, check_pow2
from . import spec
from .block_parser import BlockParser, beat_layout, descriptor_layout
from .lane import LaneDecoder
from .table_loader import TableLoader, table_word_layout

__all__ = ["HuffmanDecoder", "output_layout", "ERROR_BITS"]

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
    them) - without touching the configuration.

    Counters (32-bit, wrap): ``o_beats_in`` data beats accepted, ``o_symbols`` values output
    (N per beat), ``o_blocks`` blocks output, ``o_err_blocks`` blocks output with ``err``,
    ``o_fires`` decode cycles summed over lanes (``o_fires / (cycles * N)`` = lane utilisation).

    Parameters
    ----------
    max_len : int
        L, maximum code length, 8 to 16.
    lanes : int
        N, 1 to 8.
    raw_bits : int
        R, raw bits per symbol of EXP/RAW blocks (a block's ``r`` is 0 or R; BF16 sign+mantissa = 8,
        bypass of int8 = 8), 0 to 8; values are ``8 + R`` bits.
    fifo_depth : int
        Words per lane FIFO, a power of two from 4 to 512.

    Members
    -------
    i_data : In(stream.Signature(beat_layout(lanes)))
    i_table : In(stream.Signature(table_word_layout))
    o_data : Out(stream.Signature(output_layout(lanes, raw_bits)))
    o_errors : Out(7)
    o_beats_in, o_symbols, o_blocks, o_err_blocks, o_fires : Out(32)
    i_clear : In(1)

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, max_len=12, lanes=1, raw_bits=8, fifo_depth=64):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        self._N = check_int("lanes", lanes, 1, 8)
        self._R = check_int("raw_bits", raw_bits, 0, 8)
        self._depth = check_pow2("fifo_depth", fifo_depth, 4, 512)
        super().__init__({
            "i_data": In(stream.Signature(beat_layout(lanes))),
            "i_table": In(stream.Signature(table_word_layout)),
            "o_data": Out(stream.Signature(output_layout(lanes, raw_bits))),
            "o_errors": Out(ERROR_BITS),
            "o_beats_in": Out(32),
            "o_symbols": Out(32),
            "o_blocks": Out(32),
            "o_err_blocks": Out(32),
            "o_fires": Out(32),
            "i_clear": In(1),
        })

    @property
    def max_len(self):
        return self._L

    @property
    def lanes(self):
        return self._N

    @property
    def raw_bits(self):
        return self._R

    def elaborate(self, platform):
        m = Module()
        core = Module()
        N = self._N

        core.submodules.parser = parser = BlockParser(lanes=N, raw_bits=self._R)
        core.submodules.loader = loader = TableLoader(max_len=self._L)
        lanes = []
        for k in range(N):
            lane = LaneDecoder(max_len=self._L, raw_bits=self._R)
            wfifo = SyncFIFOBuffered(width=spec.WORD + 1, depth=self._depth)
            dfifo = SyncFIFOBuffered(width=descriptor_layout.size, depth=2)
            core.submodules[f"lane{k}"] = lane
            core.submodules[f"wfifo{k}"] = wfifo
            core.submodules[f"dfifo{k}"] = dfifo
            lanes.append((lane, wfifo, dfifo))
            core.d.comb += [
                lane.i_words.valid.eq(wfifo.r_rdy), lane.i_words.payload.eq(wfifo.r_data),
                wfifo.r_en.eq(lane.i_words.ready),
                lane.i_desc.valid.eq(dfifo.r_rdy), lane.i_desc.payload.eq(dfifo.r_data),
                dfifo.r_en.eq(lane.i_desc.ready),
                lane.i_limit.eq(loader.o_limit), lane.i_offset.eq(loader.o_offset),
                lane.i_count.eq(loader.o_count), lane.i_ok.eq(loader.o_ok),
                lane.i_sym_en.eq(loader.o_sym_en), lane.i_sym_addr.eq(loader.o_sym_addr),
                lane.i_sym_data.eq(loader.o_sym_data),
            ]

        # inputs: the data stream goes to the parser, tables to the loader
        core.d.comb += [
            parser.i_data.valid.eq(self.i_data.valid), parser.i_data.payload.eq(self.i_data.payload),
            self.i_data.ready.eq(parser.i_data.ready),
            loader.i_table.valid.eq(self.i_table.valid), loader.i_table.payload.eq(self.i_table.payload),
            self.i_table.ready.eq(loader.i_table.ready),
        ]
        # parser -> lane FIFOs: a beat (or descriptor) goes to every lane at once
        words_room = Cat(*(w.w_rdy for _, w, _ in lanes)).all()
        desc_room = Cat(*(d.w_rdy for _, _, d in lanes)).all()
        core.d.comb += [parser.o_words.ready.eq(words_room), parser.o_desc.ready.eq(desc_room)]
        for k, (_, wfifo, dfifo) in enumerate(lanes):
            core.d.comb += [
                wfifo.w_en.eq(parser.o_words.valid & words_room), wfifo.w_data.eq(parser.o_words.payload[k]),
                dfifo.w_en.eq(parser.o_desc.valid & desc_room), dfifo.w_data.eq(parser.o_desc.payload[k]),
            ]

        # loader permission: table t overwrites table t-2; wait until every lane is past it
        # (registered, with the table number it was computed for: a one-cycle-late permit only delays
        # a table load, and keeps this compare off the loader's input handshake)
        t = loader.o_count
        beyond = Cat(*(((t - lane.o_tab)[:8] <= 1) for lane, _, _ in lanes)).all()
        permit_q = Signal()
        permit_for = Signal(8)
        core.d.sync += [permit_q.eq(~loader.o_two | beyond), permit_for.eq(t)]
        core.d.comb += loader.i_permit.eq(permit_q & (permit_for == t))

        # output join: a beat when every lane has a value
        all_valid = Cat(*(lane.o_sym.valid for lane, _, _ in lanes)).all()
        core.d.comb += self.o_data.valid.eq(all_valid)
        for k, (lane, _, _) in enumerate(lanes):
            core.d.comb += [
                self.o_data.payload.data[k].eq(lane.o_sym.payload.value),
                lane.o_sym.ready.eq(self.o_data.ready & all_valid),
            ]
        lane0 = lanes[0][0]
        err = Cat(*(lane.o_sym.payload.err for lane, _, _ in lanes)).any()
        core.d.comb += [
            self.o_data.payload.first.eq(lane0.o_sym.payload.first),
            self.o_data.payload.last.eq(lane0.o_sym.payload.last),
            self.o_data.payload.err.eq(err),
        ]

        # sticky errors and counters
        errs = Signal(ERROR_BITS)
        pulses = {
            spec.ERR_INVALID: [lane.o_err_invalid for lane, _, _ in lanes],
            spec.ERR_TRUNC: [lane.o_err_trunc for lane, _, _ in lanes] + [parser.o_err_trunc],
            spec.ERR_MISMATCH: [lane.o_err_mismatch for lane, _, _ in lanes],
            spec.ERR_OVERRUN: [parser.o_err_overrun],
            spec.ERR_HEADER: [parser.o_err_header],
            spec.ERR_TABLE: [loader.o_err],
            spec.ERR_CRC: [lane.o_err_crc for lane, _, _ in lanes],
        }
        for mask, sources in pulses.items():
            core.d.comb += errs[mask.bit_length() - 1].eq(Cat(*sources).any())
        core.d.sync += self.o_errors.eq(self.o_errors | errs)

        out_take = self.o_data.valid & self.o_data.ready
        fires = Signal(range(N + 1))
        core.d.comb += fires.eq(sum(lane.o_fire for lane, _, _ in lanes))
        core.d.sync += self.o_fires.eq(self.o_fires + fires)
        with core.If(self.i_data.valid & self.i_data.ready):
            core.d.sync += self.o_beats_in.eq(self.o_beats_in + 1)
        with core.If(out_take):
            core.d.sync += self.o_symbols.eq(self.o_symbols + N)
            with core.If(self.o_data.payload.last):
                core.d.sync += self.o_blocks.eq(self.o_blocks + 1)
                with core.If(self.o_data.payload.err):
                    core.d.sync += self.o_err_blocks.eq(self.o_err_blocks + 1)

        m.submodules.core = ResetInserter({"sync": self.i_clear})(core)
        return m
