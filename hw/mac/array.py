"""The mixed-precision MAC array: an output-stationary R x C grid fed by broadcast streams.

Organisation and why
--------------------
*Output-stationary*: PE (r, c) owns the accumulator of ``Y[m0 + r, n0 + c]`` for a whole tile, so
the reduction never leaves the PE (no partial sums travel between PEs, no skew buffers) and the
accumulator and its saturation logic exist once per PE. *Broadcast* rather than systolic
forwarding: every cycle the activation beat of row ``r`` goes to the ``cols`` PEs of that row and
the packed weight byte of column ``c`` to the ``rows`` PEs of that column. For the array sizes that
fit these FPGAs (up to 8x8) the fan-out is at most 8 loads behind a register (S0), which costs less
than the ``rows + cols`` skew registers per operand a systolic wavefront needs, and it keeps the
first and last cycles of a tile aligned across PEs, so a tile's mode and tile-saturation tags are a
single pipeline of flags rather than one per PE diagonal. Weight-stationary would need the weights
loaded before each tile (a bubble per reload) and partial sums leaving every cycle.

Precision per tile, no bubbles
------------------------------
The mode travels down the pipeline with each beat (S0 operands and S1 mode flags, tags after), so
beats of consecutive tiles in different modes follow each other cycle by cycle; the next tile's
command waits in a one-entry register and takes over in the cycle after the previous tile's last
beat, so its first beat is taken in the very next cycle. A tile's results are
moved from the accumulators into a result buffer when its last contribution is applied, and the
buffer drains one row per transfer while the next tile computes; it takes the next tile's results
when at most the previous tile's last row is left in it (that row moves to a one-row spill
register if the consumer does not take it in that cycle, and leaves first). The only stall: a tile
finishing while the buffer still holds more than that (the consumer is slow or tiles are shorter
than ``rows`` beats). The pipeline enable is a register, decided a cycle ahead, so no
combinational path runs from ``o_res.ready`` to the input handshakes or the pipeline's clock
enables.

Pipeline (all stages advance together on the internal enable)::

    input control -> S0 operands -> S1 products -> S2 beat sums -> [S3 group sums -> S3b clamp]
    -> S4 accumulators -> S5 result buffer -> o_res

S3 and S3b exist only with the tile-saturating option (``tile_k > 0``). Latency: a tile's first
result row is valid 5 cycles (``tile_k = 0``) or 7 cycles (``tile_k > 0``) after its last beat is
taken (no stalls); the same for every backend.

Undefined modes: the command is accepted, the sticky ``mode_error`` flag set, the tile's beats are
consumed (so the streams stay aligned with the tile boundaries the producer intended) and no results
are produced for it; the next tile runs normally.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_bool, check_choice, check_int
from . import spec
from .accumulate import AccumulatorGrid, check_tile_k
from .products import BACKENDS, TERMS, ProductGrid
from .sequencer import TileSequencer

__all__ = ["MacArray", "cmd_layout", "res_layout", "array_members"]


def cmd_layout(count_bits):
    """The ``i_cmd`` payload layout (field order and widths from :func:`hw.mac.spec.cmd_layout_fields`)."""
    return data.StructLayout(dict(spec.cmd_layout_fields(count_bits)))


def res_layout(rows, cols, acc_width):
    """The ``o_res`` payload layout (see :func:`hw.mac.spec.res_layout_fields`)."""
    fields = dict(spec.res_layout_fields(rows, cols, acc_width))
    fields["data"] = data.ArrayLayout(signed(acc_width), cols)
    return data.StructLayout(fields)


def array_members(rows, cols, acc_width, count_bits):
    """The members of a MAC array component (MacArray's, documented there): the four streams,
    ``i_clear`` and the status outputs."""
    return {
        "i_cmd": In(stream.Signature(cmd_layout(count_bits))),
        "i_act": In(stream.Signature(rows * spec.MAX_LANES * spec.ACT_BITS)),
        "i_wgt": In(stream.Signature(cols * spec.WORD_BITS)),
        "o_res": Out(stream.Signature(res_layout(rows, cols, acc_width))),
        "i_clear": In(1),
        "o_overflow": Out(1),
        "o_mode_error": Out(1),
        "o_idle": Out(1),
    }


class MacArray(wiring.Component):
    """Mixed-precision output-stationary MAC array with stream interfaces.

    Computes tiles of ``Y = X · Wᵀ`` as specified in :mod:`hw.mac.spec`: per tile one command on
    ``i_cmd``, then ``beats`` beats taken together from ``i_act`` and ``i_wgt`` (at most one per
    cycle), then ``rows`` result rows on ``o_res``. Peak rate: one beat per cycle, i.e. ``rows * cols
    * lanes(mode)`` MACs per cycle (1, 2, 4, 4 per PE for int8, int4, int2, ternary).

    Parameters
    ----------
    rows, cols : int
        Array size, 1..16 each.
    acc_width : int
        Accumulator width, 17..48 (17 is the narrowest that holds a single product, 255 * -128).
    tile_k : int
        Group size in products of the tile-saturating (HDQT) option, a power of two 4..1024, or 0 to
        leave the option out (``tile_sat`` commands then run as plain tiles).
    tile_bits : int
        Tile-saturating group sums clamp to ``±(2**(tile_bits-1) - 1)``; 2..16, less than ``acc_width``.
    count_bits : int
        Width of the command's beat count: a tile has 1..``2**count_bits`` beats; 1..20.
    backend : str
        ``"lut"``, ``"ice40"`` or ``"ecp5"``; see :mod:`hw.mac.products`.
    primitives : bool
        With a DSP backend: instantiate the vendor primitive (synthesis, True) or its behavioural
        model (simulation, False).
    lane_dsps : bool
        ``"ice40"`` only: every activation lane on SB_MAC16s, no fabric partial products
        (``4 * rows * ceil(cols / 2)`` blocks; see :mod:`hw.mac.products`).
    spill : bool
        Keep the one-row spill register (default), so that the next tile's results load while the
        previous tile's last row is still offered. False: no spill row (``cols * acc_width`` fewer
        flip-flops and their multiplexer); a finished tile then waits until the result buffer is
        empty, which stalls the array only when tiles are shorter than the consumer takes to
        drain a tile's rows. The results are the same.
    saturate : bool
        True (default): the saturating accumulators of :mod:`hw.mac.spec`. False: plain wrapping
        accumulators (:class:`hw.mac.accumulate.AccumulatorGrid` ``saturate=False``; no
        saturated view, ``overflow`` always 0), for a caller that guarantees that no partial sum
        of a tile leaves the ``acc_width``-bit range (e.g. ``K * 128 * 128 < 2**(acc_width-1)``
        with signed activations): then nothing saturates and the results are the same.

    Members
    -------
    i_cmd : In(stream.Signature(cmd_layout(count_bits)))
    i_act : In(stream.Signature(rows * 32))
    i_wgt : In(stream.Signature(cols * 8))
        ``i_act`` and ``i_wgt`` are taken in the same cycle; their ``ready`` is high only when both are
        valid and a tile is running.
    o_res : Out(stream.Signature(res_layout(rows, cols, acc_width)))
    i_clear : In(1)
        Clears the sticky flags (wins over a flag being set in the same cycle).
    o_overflow : Out(1)
        Sticky: an accumulator saturated.
    o_mode_error : Out(1)
        Sticky: a command had an undefined mode (its tile was dropped).
    o_idle : Out(1)
        No tile running, nothing in the pipeline, no results waiting.

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names it and the allowed values).
    """

    def __init__(self, rows=4, cols=4, acc_width=24, tile_k=spec.DEFAULT_TILE_K,
                 tile_bits=spec.DEFAULT_TILE_BITS, count_bits=12, backend="lut", primitives=True,
                 spill=True, lane_dsps=False, saturate=True):
        self._rows = check_int("rows", rows, 1, spec.MAX_DIM)
        self._cols = check_int("cols", cols, 1, spec.MAX_DIM)
        self._acc_width = check_int("acc_width", acc_width, spec.MIN_ACC_WIDTH, spec.MAX_ACC_WIDTH)
        self._tile_k = check_tile_k(tile_k)
        self._tile_bits = check_int("tile_bits", tile_bits, 2, min(16, acc_width - 1))
        self._count_bits = check_int("count_bits", count_bits, 1, 20)
        self._backend = check_choice("backend", backend, BACKENDS)
        self._primitives = check_bool("primitives", primitives)
        self._spill = check_bool("spill", spill)
        self._saturate = check_bool("saturate", saturate)
        # Checks cols against the backend (ecp5 packs column pairs).
        self._grid = ProductGrid(rows, cols, backend, primitives, lane_dsps)
        super().__init__(array_members(rows, cols, acc_width, count_bits))

    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    acc_width = property(lambda self: self._acc_width)
    tile_k = property(lambda self: self._tile_k)
    tile_bits = property(lambda self: self._tile_bits)
    count_bits = property(lambda self: self._count_bits)
    backend = property(lambda self: self._backend)

    def elaborate(self, platform):
        m = Module()
        R = self._rows
        m.submodules.grid = grid = self._grid
        m.submodules.accs = accs = AccumulatorGrid(R, self._cols, self._acc_width, self._tile_k,
                                                   self._tile_bits, TERMS[self._backend],
                                                   saturate=self._saturate)

        # The pipeline advances (`en`) unless a finished tile waits in the accumulators for the
        # result buffer. `en` is a register, decided a cycle ahead from registers and o_res.ready:
        # it fans out to every pipeline register and gates the input handshakes, so it must not
        # sit at the end of a combinational path from the consumer. So that a tile may still be
        # loaded in the cycle the previous tile's last row is presented (tiles of `rows` beats
        # back to back) without knowing whether that row is taken in this cycle, the buffer has
        # one spill row: if the consumer does not take the old last row in the load cycle, it
        # moves to the spill register and is presented first.
        en = Signal(init=1)
        full = Signal()            # the result buffer holds (the rest of) a tile
        rd = Signal(spec.row_bits(R))
        rd_last = Signal(init=int(R == 1))   # rd == rows - 1, registered
        spill_v = Signal()         # the spill row holds the previous tile's last row
        ready = self.o_res.ready
        load, b_take = Signal(), Signal()
        full_n, rd_last_n, spill_n, can_load_n = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            load.eq(accs.done & en),                 # en with done implies the buffer can load
            b_take.eq(full & ~spill_v & ready),      # the buffer's head row leaves
            # The state after this cycle, for the enable of the next one.
            full_n.eq(load | (full & ~(b_take & rd_last))),
            rd_last_n.eq(Mux(load, R == 1, Mux(b_take, (rd == R - 2) | (R == 1), rd_last))),
        ]
        if self._spill:
            m.d.comb += [spill_n.eq((load & full & ~ready) | (spill_v & ~ready)),
                         can_load_n.eq(~full_n | (rd_last_n & ~spill_n))]
        else:
            # No spill row: a tile loads into an empty buffer only (spill_v stays 0).
            m.d.comb += can_load_n.eq(~full_n)
        m.d.sync += en.eq(~(accs.done_next & ~can_load_n))

        # --- input control -----------------------------------------------------------------------
        m.submodules.seq = seq = TileSequencer(self._count_bits, self._tile_k)
        wiring.connect(m, wiring.flipped(self.i_cmd), seq.i_cmd)
        take = seq.take
        m.d.comb += [
            seq.beat_valid.eq(self.i_act.valid & self.i_wgt.valid), seq.en.eq(en), seq.last_ok.eq(1),
            self.i_act.ready.eq(take), self.i_wgt.ready.eq(take), seq.i_clear.eq(self.i_clear),
        ]
        st = seq.tags
        tags = [st.valid, st.first, st.last, st.tsat, st.gstart, st.gend]
        overflow = Signal()
        m.d.comb += [
            grid.act.eq(self.i_act.payload), grid.wgt.eq(self.i_wgt.payload),
            grid.mode.eq(seq.mode), grid.act_unsigned.eq(seq.act_unsigned), grid.en.eq(en),
        ]
        # Three stages of tags alongside the grid's S0, S1, S2.
        for stage in range(3):
            regs = [Signal(name=f"s{stage}_tag{i}") for i in range(len(tags))]
            with m.If(en):
                m.d.sync += [r.eq(t) for r, t in zip(regs, tags)]
            tags = regs
        v2, first2, last2, tsat2, gstart2, gend2 = tags
        m.d.comb += [
            accs.en.eq(en), accs.beat.eq(grid.beat), accs.beat2.eq(grid.beat2),
            accs.in_valid.eq(v2), accs.in_first.eq(first2), accs.in_last.eq(last2),
            accs.in_tsat.eq(tsat2), accs.in_gstart.eq(gstart2), accs.in_gend.eq(gend2),
        ]

        # --- result buffer: loaded whole, drained one row per transfer (row 0 first) ------------
        row_layout = data.ArrayLayout(signed(self._acc_width), self._cols)
        buf = [Signal(row_layout, name=f"buf{r}") for r in range(R)]
        buf_ovf = Signal(R)
        res = self.o_res.payload
        m.d.comb += self.o_res.valid.eq(full | spill_v)
        if self._spill:
            spill = Signal(row_layout, name="spill")
            spill_ovf = Signal()
            m.d.comb += [
                res.data.eq(Mux(spill_v, spill, buf[0])),
                res.overflow.eq(Mux(spill_v, spill_ovf, buf_ovf[0])),
                res.row.eq(Mux(spill_v, R - 1, rd)),
                res.last.eq(spill_v | rd_last),
            ]
        else:
            m.d.comb += [res.data.eq(buf[0]), res.overflow.eq(buf_ovf[0]), res.row.eq(rd),
                         res.last.eq(rd_last)]
        # The sticky flag is set from the buffer's row flags in the cycle after the load (an OR
        # over all PEs straight off the accumulators would be a long path into one flip-flop).
        loaded = Signal()
        m.d.sync += loaded.eq(load)
        with m.If(loaded & buf_ovf.any()):
            m.d.sync += overflow.eq(1)
        with m.If(spill_v & ready):
            m.d.sync += spill_v.eq(0)
        with m.If(load):
            m.d.sync += [full.eq(1), rd.eq(0), rd_last.eq(R == 1), buf_ovf.eq(accs.ovf)]
            m.d.sync += [buf[r].eq(accs.acc[r]) for r in range(R)]
            if self._spill:
                with m.If(full & ~ready):
                    # Load while the previous tile's last row waits: it moves to the spill row.
                    m.d.sync += [spill.eq(buf[0]), spill_ovf.eq(buf_ovf[0]), spill_v.eq(1)]
        with m.Elif(b_take):
            m.d.sync += [buf[r].eq(buf[r + 1]) for r in range(R - 1)]
            m.d.sync += [buf_ovf.eq(buf_ovf >> 1), rd.eq(rd + 1), rd_last.eq((rd == R - 2) | (R == 1))]
            with m.If(rd_last):
                m.d.sync += full.eq(0)

        # --- status ------------------------------------------------------------------------------
        with m.If(self.i_clear):
            m.d.sync += overflow.eq(0)
        m.d.comb += [self.o_overflow.eq(overflow), self.o_mode_error.eq(seq.o_mode_error)]

        # Idle: nothing to do and nothing in flight. A taken beat reaches the buffer within 7
        # pipeline advances (S0..S5 with S3b), so a down-counter re-armed by every taken beat and
        # counting advances tells whether one may still be in flight.
        quiet = Signal(range(9))
        with m.If(take):
            m.d.sync += quiet.eq(8)
        with m.Elif(en & (quiet != 0)):
            m.d.sync += quiet.eq(quiet - 1)
        m.d.comb += self.o_idle.eq(~seq.busy & ~full & ~spill_v & (quiet == 0))
        return m
