"""Systolic mixed-precision MAC array for ECP5: operands pass neighbour to neighbour, skewed.

Same arithmetic and the same stream interface as :class:`hw.mac.array.MacArray` (see
:mod:`hw.mac.spec`: int8/int4/int2/ternary weights per tile, int8/uint8 activations, saturating
accumulators, the tile-saturating HDQT option, sticky ``overflow`` and ``mode_error`` flags), but
organised so that no operand is broadcast: the array scales to the ECP5-85F's multipliers.

Organisation
------------
Output-stationary, ``rows x cols`` PEs grouped in *column pairs*: PE pair ``(r, p)`` computes
output columns ``2p`` and ``2p + 1`` of row ``r`` with two ``MULT18X18D`` (the int4 lane packing
of :mod:`hw.mac.products` needs both columns' weights at one multiplier). Activations enter at the
left edge, row ``r`` delayed by ``r`` cycles, and move one pair to the right per cycle; packed
weight operands enter at the top, pair ``p`` delayed by ``p`` cycles, and move one row down per
cycle; so beat ``j`` meets PE pair ``(r, p)`` at cycle ``j + r + p`` (plus a constant). Every wire
of the datapath joins neighbours; only the clock reaches every PE (there is no clock enable: a
cycle without a beat sends a *bubble*, a beat whose ``valid`` tag is 0).

Per PE pair and beat (``a_l``: activation lane ``l``, 9-bit signed so uint8 and int8 share it)::

    int8          DSP0 = a_0 * w[2p]                  DSP1 = a_0 * w[2p+1]
    int4          DSP0 = a_0 * (w_0[2p] + w_0[2p+1] * 2**12)
                  DSP1 = a_1 * (w_1[2p+1] + w_1[2p] * 2**12)   (the columns the other way round)
    int2/ternary  DSP0, DSP1 as int4 for lanes 0 and 1 (weights decoded to -2..1 / -1..1);
                  lanes 2 and 3 in fabric: a_l * w_l is one of 0, +-a, -2a (a select and a negation)

so one multiplier retires 1 int8 or 2 int4/int2/ternary products per cycle, and the pair retires
2, 4, 8, 8 products per beat: MAC/cycle = ``rows * cols * lanes(mode)``, as MacArray. The
multipliers use their input, pipeline and output registers; their operands come from the pair's
own pass-through registers, so the fabric-to-DSP route is a register-to-register path.

PE pair pipeline (cycle ``t``: the beat's multiplier operands are in the pair's pass-through
registers; its fabric-lane operands follow :data:`FABRIC_LAG` = 2 cycles behind them, a delay
spent once per row and column pair at the edges instead of in every pair)::

    t+1 DSP input regs      t+2 DSP pipeline reg     t+3 DSP output reg | fabric lane products
    t+4 products in fabric flip-flops (the DSP-to-fabric route alone) | fabric pair sums
    t+5 beat sums (int8/packed choice and borrows, a 3:2 compressor and one carry chain;
        with product_stages=2 the compressor's words registered here, the chain at t+6)
    t+6 accumulators (with the tile-saturating option: group sum and clamp between, at t+8)

Results drain through the array: when a pair applies a tile's last contribution, it copies its two
accumulators into its *shadow* register; the shadows of a column shift up one row per cycle
(towards the top edge) while the capture wave moves down, so column pair ``p`` emits row ``r`` of
a tile ``2r + p`` cycles after row 0 of pair 0. At the top edge pair ``p`` is delayed by
``pairs - p`` cycles (deskew, and one cycle for every pair that keeps the documented latency), and
every second cycle a whole result row is written into an output FIFO
(:attr:`SystolicArray.fifo_depth` rows) that ``o_res`` reads, one slice of it per column pair (own
pointers and output register, or without ``out_reg`` read at its registered read pointer: no
control net but ``o_res.ready`` spans the row).

Flow control without stalls in the array: the input control takes a tile's *last* beat only when
(a) the output FIFO has room for the tile's ``rows`` result rows (a credit counter: rows reserved
by last beats taken, returned as rows leave on ``o_res``), and (b) at least ``2 * rows - 1`` cycles
have passed since the previous tile's last beat, so a tile's draining results have left a shadow
column before the next tile's capture wave reaches it. A slow consumer therefore stalls the input
streams, never the array.

Differences to MacArray
-----------------------
* ``cols`` is even (column pairs); ``backend`` is fixed (ECP5 multipliers; ``primitives=False``
  simulates their behavioural model, as MacArray's DSP backends do).
* Tiles shorter than ``2 * rows - 1`` beats run at one tile per ``2 * rows - 1`` cycles (MacArray:
  one per ``rows`` cycles).
* Latency: a tile's first result row reaches ``o_res`` ``pairs + 13`` cycles (``pairs + 12``
  without ``out_reg``) after its last beat
  is taken, its last row ``2 * (rows - 1)`` cycles later (MacArray: 5 or 7 cycles, then one row
  per cycle); two more with the tile-saturating option.
* ``i_act.ready`` / ``i_wgt.ready`` depend on their ``valid`` (as MacArray), ``i_cmd.ready`` is a
  flip-flop, ``o_res.valid`` a register (the FIFO's output register's, or without ``out_reg``
  its count non-zero, ``o_res.payload`` then its LUT RAM read at a registered pointer).
"""

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.reset import module_with_reset_tree, reset_root
from ..params import ParameterTypeError, check_bool, check_int
from . import spec
from .accumulate import AccumulatorGrid, check_tile_k, saturated_view, view_overflowed
from .array import array_members, cmd_layout, res_layout
from .ecp5_dsp import REGISTERS, mult18x18d, systolic_sites
from .products import ACT9, BEAT_WIDTH
from .sequencer import TileSequencer, beat_tags_layout

__all__ = ["SystolicArray", "SystolicPair", "flush_cycles", "PAIR_LATENCY", "FABRIC_LAG", "BEAT_SPLIT",
           "act_ops_layout", "act_late_layout", "wgt_ops_layout", "wgt_late_layout", "digit_layout",
           "tags_layout", "shadow_layout"]

#: Cycles from a beat in a pair's pass-through registers to its beat sums at the accumulators.
PAIR_LATENCY = 5
#: Cycles the fabric lanes' operands (:func:`act_late_layout`, :func:`wgt_late_layout`) travel
#: behind the multipliers' operands: the multipliers and the copy of their products take four
#: cycles and the fabric lanes two, so the two cycles between are spent once at the array's
#: edges, not in every pair.
FABRIC_LAG = 2
FABRIC = signed(12)      # a fabric pair sum: two products of at most 2 * 255 each
#: The beat-sum bits below this take one copy of a column's int8 flag, the others another
#: (:class:`SystolicPair`): each copy drives about half a column's term selects.
BEAT_SPLIT = 9


def act_ops_layout():
    """Activation operands of one row and beat for the multipliers: their A operands."""
    return data.StructLayout({"a0": ACT9, "a1": ACT9})


def act_late_layout():
    """Activation operands of one row and beat for the fabric lanes 2 and 3 (:data:`FABRIC_LAG`
    cycles behind :func:`act_ops_layout`)."""
    return data.StructLayout({"x2": ACT9, "x3": ACT9})


def wgt_ops_layout():
    """Weight operands of one column pair and beat for the multipliers: their B operands."""
    return data.StructLayout({"b0": signed(18), "b1": signed(18)})


def digit_layout():
    """A fabric-lane weight (-2..1) as the product's one-LUT form: ``neg = 0``: ``t ? a : 0``;
    ``neg = 1``: ``t ? ~(2a) : ~a``; the product is that plus ``neg`` (``~v + 1 = -v``), the ``+ 1``
    added later as a carry-in. Codes ``(neg, t)``: 0 -> 00, 1 -> 01, -1 -> 10, -2 -> 11."""
    return data.StructLayout({"t": 1, "neg": 1})


def wgt_late_layout():
    """Weight operands of one column pair and beat for the fabric (:data:`FABRIC_LAG` cycles
    behind :func:`wgt_ops_layout`): the digits (:func:`digit_layout`) of lanes 2 and 3 of both
    columns (``d[2 * col + lane - 2]``), zero outside int2/ternary; ``is8`` (the products are int8,
    not lane-packed)."""
    return data.StructLayout({"d": data.ArrayLayout(digit_layout(), 4), "is8": 1})


def tags_layout():
    """Tags of a beat at the accumulators (see :class:`hw.mac.accumulate.AccumulatorGrid`)."""
    return beat_tags_layout()


def shadow_layout(acc_width):
    """A pair's result on its way up: its two accumulator registers (``raw``: unsaturated, one bit
    wider; the saturated value is :func:`hw.mac.accumulate.saturated_view` of it, formed at the
    array's top edge) and ``hist``: an earlier update of the tile overflowed in either column."""
    return data.StructLayout({"valid": 1, "raw": data.ArrayLayout(signed(acc_width + 1), 2), "hist": 1})


def _data_register(m, port, name):
    """A reset-less register of ``m``'s ``sync`` domain (to be assigned by the caller) driving the
    output ``port``: for data, which needs no reset net."""
    reg = Signal.like(port, name=name, reset_less=True)
    m.d.comb += port.eq(reg)
    return reg


def _add_with_carry(m, a, b, cin, width, name):
    """``a + b + cin`` (mod ``2**width``, signed) on one carry chain: ``cin`` goes in as an extra
    LSB of both operands (``(2a + c) + (2b + c) = 2 (a + b + c)``), i.e. as the chain's carry-in."""
    ea, eb = Signal(signed(width), name=f"{name}_a"), Signal(signed(width), name=f"{name}_b")
    m.d.comb += [ea.eq(a), eb.eq(b)]
    total = Cat(cin, ea) + Cat(cin, eb)
    return total[1:width + 1].as_signed()


class SystolicPair(wiring.Component):
    """PE pair of :class:`SystolicArray`: two columns of one row, two ``MULT18X18D``.

    Cycle behaviour: ``a_in`` / ``w_in`` are registered into ``a_out`` / ``w_out`` (the beat is at
    the pair in cycle ``t`` when it is in those registers); ``x_in`` / ``d_in`` (the beat's fabric
    operands, arriving ``FABRIC_LAG`` cycles later) into ``x_out`` / ``d_out``; ``t_in`` (the tags
    of that beat, arriving at ``t + PAIR_LATENCY - 1``) is registered into ``t_out``. A tile's results go into
    the shadow register in the cycle after the pair applied its last contribution; otherwise the
    shadow register loads ``sh_in`` (the pair below), so ``sh_out`` shifts a column's results up.

    Members
    -------
    a_in : In(act_ops_layout()), a_out : Out(act_ops_layout())
    x_in : In(act_late_layout()), x_out : Out(act_late_layout())
    w_in : In(wgt_ops_layout()), w_out : Out(wgt_ops_layout())
    d_in : In(wgt_late_layout()), d_out : Out(wgt_late_layout())
    t_in : In(tags_layout()), t_out : Out(tags_layout())
    sh_in : In(shadow_layout(acc_width)), sh_out : Out(shadow_layout(acc_width))

    ``sites``: None, or the two multipliers' nextpnr-ecp5 bel names (``primitives`` only; see
    :func:`hw.mac.ecp5_dsp.systolic_sites`).

    ``product_stages`` (1 or 2): fabric register stages between the multipliers' output registers
    and the beat sums' carry chains. With 2 the beat sums' 3:2 compressor (a LUT level behind the
    product registers) is registered, and the carry chains start from those registers in the next
    cycle: with one stage the product register sat by the DSP, 3.5-3.7 ns of route from the
    compressor and its chain (8.41-9.13 ns, the 8 x 16 ULX3S board aimed at 125 MHz); with the
    products registered a second time the compressor and the 17-bit chain behind them were still
    8.0-8.4 ns. Everything after is a cycle later: ``t_in`` arrives at ``t + PAIR_LATENCY +
    product_stages - 2``.
    """

    def __init__(self, acc_width=24, tile_k=0, tile_bits=spec.DEFAULT_TILE_BITS, primitives=True, sites=None,
                 product_stages=1):
        self._acc_width = check_int("acc_width", acc_width, spec.MIN_ACC_WIDTH, spec.MAX_ACC_WIDTH)
        self._tile_k = check_tile_k(tile_k)
        self._tile_bits = check_int("tile_bits", tile_bits, 2, min(16, acc_width - 1))
        self._primitives = check_bool("primitives", primitives)
        if sites is not None and not (isinstance(sites, tuple) and len(sites) == 2
                                      and all(isinstance(b, str) for b in sites)):
            raise ParameterTypeError(f"sites must be None or a tuple of two bel names, not {sites!r}")
        self._sites = sites or (None, None)
        self._product_stages = check_int("product_stages", product_stages, 1, 2)
        super().__init__({
            "a_in": In(act_ops_layout()), "a_out": Out(act_ops_layout()),
            "x_in": In(act_late_layout()), "x_out": Out(act_late_layout()),
            "w_in": In(wgt_ops_layout()), "w_out": Out(wgt_ops_layout()),
            "d_in": In(wgt_late_layout()), "d_out": Out(wgt_late_layout()),
            "t_in": In(tags_layout()), "t_out": Out(tags_layout()),
            "sh_in": In(shadow_layout(acc_width)), "sh_out": Out(shadow_layout(acc_width)),
        })

    def elaborate(self, platform):
        m = Module()

        # Operands, products and sums are data: a beat's count only with its tags (``t_in`` /
        # ``t_out``, the accumulators' valid and first), and the shadow's results only with its
        # valid flag. Their registers are reset-less, so the pair's reset reaches only the
        # control flip-flops (about 300 of a pair's flip-flops need no reset net, no LSR pin).
        a, w = _data_register(m, self.a_out, "a_q"), _data_register(m, self.w_out, "w_q")
        x, dw = _data_register(m, self.x_out, "x_q"), _data_register(m, self.d_out, "d_q")
        m.d.sync += [a.eq(self.a_in), w.eq(self.w_in), x.eq(self.x_in), dw.eq(self.d_in),
                     self.t_out.eq(self.t_in)]

        # t+1..t+3: the two multipliers (input, pipeline, output registers).
        p0, p1 = (mult18x18d(m, f"dsp{i}", x, y, registers=REGISTERS, primitive=self._primitives,
                             site=self._sites[i])
                  for i, (x, y) in enumerate(((a.a0, w.b0), (a.a1, w.b1))))

        # t+3: fabric products of lanes 2 and 3 (int2/ternary; the digits are 0 otherwise) from the
        # fabric operands, which are at the pair at t+2: per bit one LUT4 of (a_i, a_{i-1}, t, neg)
        # giving a, 2a, ~a or ~(2a) (:func:`digit_layout`); the negations' "+ 1" are carry-ins of
        # later adders, so no carry chain of its own. t+4: per column the sum of the two, lane 2's
        # "+ 1" as its carry-in; lane 3's goes into the beat sum's free carry slot.
        fab, neg3 = [], []
        for col in range(2):
            pps, negs = [], []
            for lane, xl in ((2, x.x2), (3, x.x3)):
                d = dw.d[2 * col + lane - 2]
                pp = Signal(signed(11), name=f"pp{col}_{lane}", reset_less=True)
                neg = Signal(name=f"neg{col}_{lane}", reset_less=True)
                m.d.sync += [pp.eq(Mux(d.neg, ~Mux(d.t, xl << 1, xl), Mux(d.t, xl, 0))), neg.eq(d.neg)]
                pps.append(pp)
                negs.append(neg)
            f = Signal(FABRIC, name=f"f{col}", reset_less=True)
            m.d.sync += f.eq(_add_with_carry(m, pps[0], pps[1], negs[0], FABRIC.width, f"fsum{col}"))
            fab.append(f)
            n3 = Signal(name=f"neg3_{col}_4", reset_less=True)
            m.d.sync += n3.eq(negs[1])
            neg3.append(n3)
        # The int8 flag selects every bit of both columns' beat-sum terms: one register would
        # drive ~2 x BEAT_WIDTH LUTs spread over both columns' carry chains. Four copies instead,
        # one per column and per half of the beat-sum bits (below / from BEAT_SPLIT), each loaded
        # from stage 3 and kept ("keep": Yosys would merge equal flip-flops back into one).
        is8_3 = Signal(name="is8_3", reset_less=True)
        m.d.sync += is8_3.eq(dw.is8)
        is8 = [[Signal(name=f"is8_4_{col}{half}", attrs={"keep": 1}, reset_less=True) for half in "lh"]
               for col in range(2)]
        m.d.sync += [reg.eq(is8_3) for col in is8 for reg in col]

        # t+4: the products in fabric flip-flops. The multipliers sit where the device has them,
        # often far from their pair's logic: the route gets a cycle with no logic behind it.
        q0, q1 = (Signal(signed(26), name=n, reset_less=True) for n in ("q0", "q1"))
        m.d.sync += [q0.eq(p0[:26]), q1.eq(p1[:26])]
        p0, p1 = q0, q1

        # t+5: the beat sums, three terms per column in one stage. int8: the product (and 0, 0).
        # Lane-packed: multiplier 0 holds (column 0, column 1) in its (low, high) 12-bit fields,
        # multiplier 1 (column 1, column 0) (:func:`decode_wgt`), so each column adds one low and
        # one high field and the column's fabric sum; high = P[12:] + P[11], the borrow of a
        # negative low product, so each column adds one borrow, and lane 3's negation carry.
        # Carry-save: a 3:2 compressor per bit (one LUT level, the int8/packed choice folded in)
        # and one carry chain, whose free LSBs take the two carries (one in the shifted carry
        # word, one as the chain's carry-in).
        # Each column's bits below BEAT_SPLIT take its low copy of the int8 flag (the chain's
        # carry-in slot cin0, bit 0, too), the others its high copy.
        accs = []
        for col in range(2):
            accs.append(AccumulatorGrid(1, 1, self._acc_width, self._tile_k, self._tile_bits, clear="view"))
            m.submodules[f"accs{col}"] = accs[col]
        lo0, lo1 = p0[:12].as_signed(), p1[:12].as_signed()
        hi0, hi1 = p0[12:26].as_signed(), p1[12:26].as_signed()
        terms = (
            (p0[:17].as_signed(), lo0, hi1, fab[0], p1[11], neg3[0]),
            (p1[:17].as_signed(), lo1, hi0, fab[1], p0[11], neg3[1]),
        )
        for col, (prod, lo, hi, tz, borrow, cin1) in enumerate(terms):
            x, y, z = (Signal(signed(BEAT_WIDTH), name=f"{n}{col}") for n in "xyz")
            xs = [Signal(signed(BEAT_WIDTH), name=f"x{col}{h}") for h in "lh"]
            ys = [Signal(signed(BEAT_WIDTH), name=f"y{col}{h}") for h in "lh"]
            m.d.comb += [xs[h].eq(Mux(is8[col][h], prod, lo)) for h in range(2)]
            m.d.comb += [ys[h].eq(Mux(is8[col][h], 0, hi)) for h in range(2)]
            m.d.comb += [x.eq(Cat(xs[0][:BEAT_SPLIT], xs[1][BEAT_SPLIT:])),
                         y.eq(Cat(ys[0][:BEAT_SPLIT], ys[1][BEAT_SPLIT:])), z.eq(tz)]
            cin0 = ~is8[col][0] & borrow
            half = Signal(BEAT_WIDTH, name=f"half{col}")
            carry = Signal(BEAT_WIDTH, name=f"carry{col}")
            m.d.comb += [half.eq(x ^ y ^ z), carry.eq(Cat(cin0, (x & y) | (x & z) | (y & z)))]
            if self._product_stages == 2:
                # t+5: the compressor's two words and the chain's carry-in in the pair's
                # flip-flops; t+6 the carry chain alone.
                half_q = Signal(BEAT_WIDTH, name=f"half{col}_q", reset_less=True)
                carry_q = Signal(BEAT_WIDTH, name=f"carry{col}_q", reset_less=True)
                cin1_q = Signal(name=f"cin1_{col}_q", reset_less=True)
                m.d.sync += [half_q.eq(half), carry_q.eq(carry), cin1_q.eq(cin1)]
                half, carry, cin1 = half_q, carry_q, cin1_q
            beat = _add_with_carry(m, half, carry, cin1, BEAT_WIDTH, f"beat{col}")
            m.d.sync += _data_register(m, accs[col].beat[0][0], f"beat_q{col}").eq(beat)
        # t+6: the accumulators take the beat sums with the tags. The valid and first tags reach
        # every accumulator bit (its enable, its clear): each column has its own kept copies of
        # them (loaded with t_out, from t_in), so each drives one column's accumulator.
        t = self.t_out
        for col, acc in enumerate(accs):
            valid = Signal(name=f"valid_{col}", attrs={"keep": 1})
            first = Signal(name=f"first_{col}", attrs={"keep": 1})
            m.d.sync += [valid.eq(self.t_in.valid), first.eq(self.t_in.first)]
            m.d.comb += [acc.en.eq(1), acc.in_valid.eq(valid), acc.in_first.eq(first),
                         acc.in_last.eq(t.last), acc.in_tsat.eq(t.tsat), acc.in_gstart.eq(t.gstart),
                         acc.in_gend.eq(t.gend)]

        # Shadow: capture the tile's accumulator registers (done lasts one cycle), else shift up
        # from below. The registers, not their saturated view: the view's LUTs are then the
        # adder's only (with the tile-start clear), and the view is formed once per column pair
        # at the top edge instead of in every pair.
        # Both columns' done are high in the same cycle; each column's half of the shadow
        # follows its own, so no done fans out to both columns (column 0's also loads the valid
        # and the overflow history).
        sh = Signal.like(self.sh_out, name="sh_q", reset_less=True)
        sh_valid = Signal()
        m.d.comb += [self.sh_out.eq(sh), self.sh_out.valid.eq(sh_valid)]
        with m.If(accs[0].done):
            m.d.sync += [sh_valid.eq(1), sh.raw[0].eq(accs[0].raw[0][0]),
                         sh.hist.eq(accs[0].hist[0][0] | accs[1].hist[0][0])]
        with m.Else():
            m.d.sync += [sh_valid.eq(self.sh_in.valid), sh.raw[0].eq(self.sh_in.raw[0]),
                         sh.hist.eq(self.sh_in.hist)]
        with m.If(accs[1].done):
            m.d.sync += sh.raw[1].eq(accs[1].raw[0][0])
        with m.Else():
            m.d.sync += sh.raw[1].eq(self.sh_in.raw[1])
        return m

def act_beat_layout():
    """One row's share of a taken beat, before decoding: its four activation bytes, the tile's
    activation format and whether the tile is int8 (then lane 0 feeds both multipliers)."""
    return data.StructLayout({"bytes": 4 * spec.ACT_BITS, "unsigned": 1, "is8": 1})


def wgt_beat_layout():
    """One column pair's share of a taken beat, before decoding: its two packed weight bytes and
    the tile's mode."""
    return data.StructLayout({"bytes": 2 * spec.WORD_BITS, "mode": 2})


class _InputControl(wiring.Component):
    """Takes commands and beats, registers each row's and each column pair's share of the beat
    with the running tile's mode, and holds back last beats.

    Members: the array's ``i_cmd``, ``i_act``, ``i_wgt``, ``i_clear``, ``o_mode_error``; ``acts``
    (per row), ``wgts`` (per column pair), ``tags``: the undecoded beat taken in the previous cycle
    and its tags (``tags.valid = 0``: a bubble); ``pop``: a result row left the array; ``o_idle``:
    no tile running or waiting, no result rows reserved; ``i_flush``: while high, the tile
    sequencer, the credits and the tags are held at their reset values (``acts`` / ``wgts`` are
    data: a bubble's are never used).
    """

    def __init__(self, rows, cols, tile_k, count_bits, fifo_depth):
        self._rows, self._pairs = rows, cols // 2
        self._tile_k, self._count_bits, self._depth = tile_k, count_bits, fifo_depth
        super().__init__({
            "i_cmd": In(stream.Signature(cmd_layout(count_bits))),
            "i_act": In(stream.Signature(rows * spec.MAX_LANES * spec.ACT_BITS)),
            "i_wgt": In(stream.Signature(cols * spec.WORD_BITS)),
            "i_clear": In(1),
            "o_mode_error": Out(1),
            "acts": Out(data.ArrayLayout(act_beat_layout(), rows)),
            "wgts": Out(data.ArrayLayout(wgt_beat_layout(), cols // 2)),
            "tags": Out(tags_layout()),
            "pop": In(1),
            "o_idle": Out(1),
            "i_flush": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        R = self._rows
        seq = TileSequencer(self._count_bits, self._tile_k)
        m.submodules.seq = ResetInserter(self.i_flush)(seq)
        wiring.connect(m, wiring.flipped(self.i_cmd), seq.i_cmd)

        # A last beat may go in (registered, decided a cycle ahead): the output FIFO has room for
        # the tile's rows and the previous tile's results have left the shadow columns.
        gap = 2 * R - 1
        free = Signal(range(self._depth + 1), init=self._depth)
        wait = Signal(range(gap))
        last_ok = Signal(init=1)
        reserve = Signal()
        m.d.comb += [
            seq.beat_valid.eq(self.i_act.valid & self.i_wgt.valid), seq.en.eq(1), seq.last_ok.eq(last_ok),
            seq.i_clear.eq(self.i_clear), self.o_mode_error.eq(seq.o_mode_error),
            self.i_act.ready.eq(seq.take), self.i_wgt.ready.eq(seq.take),
            # A defined tile's last beat taken, from the sequencer's registers (not through the
            # take and the tags: the take -> the tags' valid -> the free count's sum, 9.36 ns on
            # the full 8 x 16 board aimed at 125 MHz, seed 2).
            reserve.eq(seq.take_last),
        ]
        free_n = Signal.like(free)
        wait_n = Signal.like(wait)
        # free_n for each (reserve, pop), each from the register, then picked by the two: no
        # carry chain behind the reservation.
        free_if = [[free + pop - (R if res else 0) for pop in (0, 1)] for res in (0, 1)]
        m.d.comb += [free_n.eq(Mux(reserve, Mux(self.pop, free_if[1][1], free_if[1][0]),
                                   Mux(self.pop, free_if[0][1], free_if[0][0]))),
                     wait_n.eq(Mux(reserve, gap - 1, Mux(wait != 0, wait - 1, 0)))]
        # last_ok's next value for each (reserve, pop), each from the registers alone, then picked
        # by the two: the take (through reserve) reaches last_ok through one LUT, not the sum
        # and compare of free_n (9.51 ns, the 8 x 16 board aimed at 125 MHz, seed 2).
        ok_if = [[((free + pop) >= (1 + res) * R) & (int(gap == 1) if res else (wait <= 1))
                  for pop in (0, 1)] for res in (0, 1)]
        m.d.sync += [free.eq(free_n), wait.eq(wait_n),
                     last_ok.eq(Mux(reserve, Mux(self.pop, ok_if[1][1], ok_if[1][0]),
                                    Mux(self.pop, ok_if[0][1], ok_if[0][0]))),
                     self.tags.eq(seq.tags)]
        with m.If(self.i_flush):
            m.d.sync += [free.eq(self._depth), wait.eq(0), last_ok.eq(1), self.tags.valid.eq(0)]
        # The beat is decoded only after the skew, at each row's and column pair's entry: the
        # mode reaches every decoder through the skew registers (a chain with one tap per row /
        # pair) instead of fanning out from the sequencer to all operand bits.
        # The beats are data (a bubble's are never used), held in reset-less registers: no reset
        # reaches them.
        act, wgt = self.i_act.payload, self.i_wgt.payload
        is8 = seq.mode == spec.MODE_INT8
        for r in range(R):
            m.d.sync += _data_register(m, self.acts[r], f"act_beat{r}").eq(
                Cat(act[32 * r: 32 * r + 32], seq.act_unsigned, is8))
        for p in range(self._pairs):
            m.d.sync += _data_register(m, self.wgts[p], f"wgt_beat{p}").eq(
                Cat(wgt[16 * p: 16 * p + 16], seq.mode))
        m.d.comb += self.o_idle.eq(~seq.busy & (free == self._depth))
        return m


def decode_act(m, beat, ops, late):
    """Registered: one row's activation operands ``ops`` (:func:`act_ops_layout`) and ``late``
    (:func:`act_late_layout`) from its undecoded beat ``beat`` (:func:`act_beat_layout`)."""
    lane = [beat.bytes[8 * l: 8 * l + 8] for l in range(4)]
    val = [Mux(beat.unsigned, b.as_unsigned(), b.as_signed()) for b in lane]
    m.d.sync += [ops.a0.eq(val[0]), ops.a1.eq(Mux(beat.is8, val[0], val[1])),
                 late.x2.eq(val[2]), late.x3.eq(val[3])]


def decode_wgt(m, beat, ops, late):
    """Registered: one column pair's weight operands ``ops`` (:func:`wgt_ops_layout`) and
    ``late`` (:func:`wgt_late_layout`) from its undecoded beat ``beat`` (:func:`wgt_beat_layout`)."""
    mode = beat.mode
    is8, is4 = mode == spec.MODE_INT8, mode == spec.MODE_INT4
    is2, tern = mode == spec.MODE_INT2, mode == spec.MODE_TERNARY

    def lane_value(byte, l):
        """Lane ``l`` (0 or 1) of a non-int8 byte as a 4-bit signed weight."""
        f = byte[2 * l: 2 * l + 2]
        tern_v = Mux(f[0], Mux(f[1], -1, 1), 0)
        return Mux(is4, byte[4 * l: 4 * l + 4].as_signed(), Mux(tern, tern_v, f.as_signed()))

    w0, w1 = beat.bytes[:8], beat.bytes[8:]
    m.d.sync += [
        ops.b0.eq(Mux(is8, w0.as_signed(), lane_value(w0, 0) + (lane_value(w1, 0) << 12))),
        # Multiplier 1 packs the columns the other way round: each column gets one low field
        # and one high field (one borrow each), see SystolicPair.
        ops.b1.eq(Mux(is8, w1.as_signed(), lane_value(w1, 1) + (lane_value(w0, 1) << 12))),
        late.is8.eq(is8),
    ]
    for col, byte in enumerate((w0, w1)):
        for lane in (2, 3):
            f0, f1 = byte[2 * lane], byte[2 * lane + 1]
            d = late.d[2 * col + lane - 2]
            # int2 (two's complement f1 f0): 00 0, 01 1, 10 -2, 11 -1; ternary: 01 1, 11 -1, else 0.
            m.d.sync += [d.neg.eq(Mux(is2, f1, tern & f0 & f1)), d.t.eq(Mux(is2, f0 ^ f1, tern & f0 & ~f1))]


class _ResultCollector(wiring.Component):
    """Top edge: deskews the pairs' shadow outputs into result rows, buffers them, drives ``o_res``.

    Members: ``sh`` (the top row's ``sh_out`` per pair); the array's ``o_res``, ``i_clear``,
    ``o_overflow``; ``pop``: a row leaves on ``o_res`` in this cycle; ``i_room``: with ``credit``,
    the reader's ready of the next cycle (``o_res.ready`` is then not read: a row is offered
    only when taken); ``i_flush_next``: the next
    cycle is flushed (the array's ``flushing`` register's next value). In a flushed cycle the
    result buffer is held empty (rows arriving are dropped: its pointers stay reset), ``o_res``
    not valid and ``o_overflow`` cleared. Each slice of the buffer is reset by a register of its
    own holding ``i_flush_next`` (:func:`hw.lib.reset.module_with_reset_tree`): with the flush
    added to the domain's reset, the OR of the two in one LUT drove the reset pins of every slice's
    pointers across the array's width (8.0-9.1 ns, the result buffer's endpoints over 8 ns in the
    8 x 16 ULX3S board aimed at 125 MHz).
    """

    def __init__(self, rows, cols, acc_width, depth, out_reg, credit, flush_root, product_stages):
        self._rows, self._pairs, self._acc_width, self._depth = rows, cols // 2, acc_width, depth
        self._out_reg, self._credit, self._flush_root = out_reg, credit, flush_root
        self._product_stages = product_stages
        super().__init__({
            "sh": In(data.ArrayLayout(shadow_layout(acc_width), cols // 2)),
            "o_res": Out(stream.Signature(res_layout(rows, cols, acc_width))),
            "i_clear": In(1),
            "o_overflow": Out(1),
            "pop": Out(1),
            "i_flush_next": In(1),
            "i_room": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, W, R = self._pairs, self._acc_width, self._rows
        flushing = Signal()
        m.d.sync += flushing.eq(self.i_flush_next)
        aligned = []
        # Pair p waits P - p cycles: P - 1 - p to align it with the last pair, and one more that
        # keeps the array's result latency at its documented value (the pairs' single-stage
        # beat sums deliver one cycle earlier than the two stages they replace; one register
        # per column pair here instead of one per PE pair).
        # Only the valid tags are reset: the values (raw, hist) are data, used only with a valid
        # tag. Reset, they were 36 x 51 flip-flops at 8 x 16 on one reset register, spread over
        # the array's width: the array domain's worst path in the 8 x 16 board build (15 ns of
        # route).
        # With two product stages in the pairs (``product_stages``) their results come a cycle
        # later, and the one more register is not needed.
        for p in range(P):
            v, valid = self.sh[p], self.sh[p].valid
            for stage in range(P - p - (self._product_stages - 1)):
                reg = Signal(shadow_layout(W), name=f"deskew{p}_{stage}", reset_less=True)
                reg_valid = Signal(name=f"deskew{p}_{stage}_valid")
                m.d.sync += [reg.eq(v), reg_valid.eq(valid)]
                v, valid = reg, reg_valid
            aligned.append((v, valid))
        # The result buffer, one slice per column pair (_ResultSlice): copies of one FIFO (the tags
        # arrive in the same cycle, the pops are common), so every slice holds the same rows; but
        # no pointer or load enable spans the array's width: with one ring for the whole row, its
        # read pointer drove about 100 LUT-RAM cells along the array (13 ns of route in the 8 x 16
        # ULX3S build) and its load enable every output flip-flop. Only ``o_res.ready`` reaches
        # every slice, one load LUT each. The input control's credits guarantee room, so no full
        # flag gates the writes.
        # With ``credit`` each slice takes the reader's ready as a register of its own loaded
        # from ``i_room`` (the reader's room-ahead register): no LUT between that register and
        # the copies, so the route across the array's width has a cycle of its own (the result
        # FIFO's ready into every slice's count and valid: 9.09-9.87 ns, the 8 x 16 board aimed
        # at 125 MHz, seed 1).
        def ready_copy(name):
            if not self._credit:
                return self.o_res.ready
            copy = Signal(name=name, attrs={"keep": 1})
            m.d.sync += copy.eq(self.i_room)
            return copy

        # With ``flush_root`` the slices' clear registers load from one root register (holding
        # the flush's next value or the domain's reset), not from that OR's LUT: the slices are
        # then reset a cycle later, from the flush's second cycle to the one after it (no row
        # arrives then: the flush holds the array's input control, and a tile's first row is many
        # cycles behind its first beat). The LUT -> the eight slices across the array's width was
        # 8.21-8.30 ns (the 8 x 16 board aimed at 125 MHz).
        clear = reset_root(m, self.i_flush_next, name="flush_root") if self._flush_root else self.i_flush_next
        slices = []
        for p, (v, valid) in enumerate(aligned):
            sl = _ResultSlice(W, self._depth, self._out_reg, offer=self._credit and p == 0)
            m.submodules[f"slice{p}"] = module_with_reset_tree(
                sl, clear, name="slice", depth=0, platform=platform, with_reset=not self._flush_root)
            m.d.comb += [sl.i_v.eq(v), sl.i_valid.eq(valid), sl.i_ready.eq(ready_copy(f"room{p}"))]
            slices.append(sl)
        ovf_seen = Signal()         # a row with an overflow was written since the clear
        m.d.sync += ovf_seen.eq(ovf_seen | Cat(*(sl.o_w_ovf for sl in slices)).any())
        with m.If(self.i_clear | flushing):
            m.d.sync += ovf_seen.eq(0)
        m.d.comb += self.o_overflow.eq(ovf_seen)
        out_data = Cat(*(sl.o_data[:2 * W] for sl in slices))
        out_ovf = Cat(*(sl.o_data[-1] for sl in slices)).any()

        row = Signal(spec.row_bits(R))
        res = self.o_res.payload
        if self._credit:
            # ``o_res.valid`` is the first slice's offer register, equal to its valid flag, not
            # flushing and the reader's room in every cycle: no LUT between the flip-flop and
            # the reader's take, whose net loads the result FIFO's write-enable copies and room
            # registers (the slice's valid -> this AND -> the FIFO's take -> its write enables and
            # room ahead: 8.1-9.6 ns, the full 8 x 16 board aimed at 125 MHz).
            # An offered row is taken (the reader's room ahead was high).
            m.d.comb += [slices[0].i_offer_ok.eq(~self.i_flush_next & self.i_room),
                         self.o_res.valid.eq(slices[0].o_offer), self.pop.eq(slices[0].o_offer)]
        else:
            m.d.comb += [self.o_res.valid.eq(slices[0].o_valid & ~flushing),
                         self.pop.eq(self.o_res.valid & self.o_res.ready)]
        m.d.comb += [
            res.data.eq(out_data), res.overflow.eq(out_ovf),
            res.row.eq(row), res.last.eq(row == R - 1),
        ]
        with m.If(self.pop):
            m.d.sync += row.eq(Mux(row == R - 1, 0, row + 1))
        with m.If(flushing):
            m.d.sync += row.eq(0)
        return m


class _ResultSlice(wiring.Component):
    """One column pair's slice of the result buffer: a LUT-RAM ring of the pair's aligned shadow
    values (``i_v``, both saturated, and their overflow), written when ``i_valid``, with its own
    write pointer, read pointer and count. With ``out_reg`` the ring's word loads into an output
    register (``o_data``, ``o_valid``) when that is empty or taken. Without, ``o_data`` is the
    ring read at the read pointer (a register) and ``o_valid`` the count non-zero (a register of
    its own), from the cycle after the row's write, a cycle earlier; ``i_ready``
    (``o_res.ready``, or with ``credit`` the slice's copy of the reader's room ahead) with
    ``o_valid`` takes the row: it steps only the read pointer, the count
    and ``o_valid``. No data register loads with it: an output
    register of the row's 49 bits per slice, loaded with the reader's ready, was on the result
    rows' paths over 8 ns of the 8 x 16 ULX3S board aimed at 125 MHz (the crossing FIFO's ready
    -> the load LUT -> the output flip-flops' enables, 9.0 ns). ``o_w_ovf``: a row with an
    overflow was written in the cycle before. Its reset empties it (the collector's flush).

    With ``offer``, ``o_offer`` is a register equal to ``o_valid & ok`` in every cycle, ``ok``
    being ``i_offer_ok`` of the cycle before: its next value is ``o_valid``'s (the slice's
    state for this cycle's take) and ``i_offer_ok``, and the slice's reset clears it with
    ``o_valid``. The collector offers rows from it (``credit``)."""

    def __init__(self, acc_width, depth, out_reg, offer=False):
        self._acc_width, self._depth, self._out_reg, self._offer = acc_width, depth, out_reg, offer
        ports = {"i_offer_ok": In(1), "o_offer": Out(1)} if offer else {}
        super().__init__({
            "i_v": In(shadow_layout(acc_width)), "i_valid": In(1), "i_ready": In(1),
            "o_valid": Out(1), "o_data": Out(2 * acc_width + 1), "o_w_ovf": Out(1), **ports,
        })

    def elaborate(self, platform):
        m = Module()
        v, valid, depth = self.i_v, self.i_valid, self._depth
        ovf = v.hist
        for raw in v.raw:
            ovf = ovf | view_overflowed(raw)
        data_in = Cat(*(saturated_view(raw) for raw in v.raw), ovf)
        m.submodules.ram = ram = Memory(shape=len(data_in), depth=depth, init=[])
        wr, rd = ram.write_port(), ram.read_port(domain="comb")
        wptr, rptr = Signal(range(depth)), Signal(range(depth))
        count = Signal(range(depth + 1))
        nonempty, take = Signal(), Signal()
        nonempty_next, valid_next = Signal(), Signal()
        m.d.comb += [wr.en.eq(valid), wr.addr.eq(wptr), rd.addr.eq(rptr), wr.data.eq(data_in)]
        if self._out_reg:
            # The ring's word loads into an output register when that is empty or taken (Yosys
            # folds the register into a block RAM's read port where there is no LUT RAM).
            out_data = Signal(len(data_in), reset_less=True)     # data: see o_valid
            m.d.comb += [take.eq(nonempty & (~self.o_valid | self.i_ready)), self.o_data.eq(out_data),
                         valid_next.eq(take | (self.o_valid & ~self.i_ready))]
            with m.If(take):
                m.d.sync += out_data.eq(rd.data)
            m.d.sync += self.o_valid.eq(valid_next)
        else:
            m.d.comb += [self.o_valid.eq(nonempty), self.o_data.eq(rd.data),
                         take.eq(nonempty & self.i_ready), valid_next.eq(nonempty_next)]
        if self._offer:
            m.d.sync += self.o_offer.eq(valid_next & self.i_offer_ok)
        # "Not empty" kept as a register of its own (from the count, a compare and an adder
        # ahead of it, it was the array's longest path).
        m.d.comb += nonempty_next.eq(Mux(take, count > 1, count != 0) | valid)
        m.d.sync += nonempty.eq(nonempty_next)
        with m.If(valid):
            m.d.sync += wptr.eq(Mux(wptr == depth - 1, 0, wptr + 1))
        with m.If(take):
            m.d.sync += rptr.eq(Mux(rptr == depth - 1, 0, rptr + 1))
        # The count steps by one either way or holds: the sums from the count alone, picked by
        # valid and take (an adder of valid - take behind the take was the slices' longest path,
        # the ULX3S builds at 125 MHz: the take follows o_res.ready, which reaches every slice).
        count_up, count_down = Signal.like(count), Signal.like(count)
        m.d.comb += [count_up.eq(count + 1), count_down.eq(count - 1)]
        with m.If(valid & ~take):
            m.d.sync += count.eq(count_up)
        with m.Elif(take & ~valid):
            m.d.sync += count.eq(count_down)
        # Registered: the collector ORs every slice's flag into its sticky overflow, and the
        # overflow test and that OR across the die in one cycle reached 9.23 ns (the 8 x 16 board
        # aimed at 125 MHz, seed 2).
        m.d.sync += self.o_w_ovf.eq(valid & ovf)
        return m


def flush_cycles(rows, cols):
    """Cycles ``i_flush`` holds a ``rows x cols`` :class:`SystolicArray`: a beat's last result row
    is written into the result buffer at most ``pairs + 2 * rows + 13`` cycles after the beat is
    taken (as :attr:`SystolicArray.fifo_depth`, ``+ 3`` margin), and the last beat taken is the
    one in the pulse's cycle, whose tags leave the input control one cycle into the flush."""
    return cols // 2 + 2 * rows + 16 + 1


class SystolicArray(wiring.Component):
    """Systolic mixed-precision MAC array for ECP5 (see the module docstring) with MacArray's streams.

    Parameters
    ----------
    rows : int
        Activation rows per tile, 1..16.
    cols : int
        Output columns per tile, an even number 2..16 (``cols // 2`` PE pairs per row, two
        ``MULT18X18D`` each).
    acc_width, tile_k, tile_bits, count_bits :
        As :class:`hw.mac.array.MacArray`.
    primitives : bool
        Instantiate ``MULT18X18D`` (synthesis, True) or its behavioural model (simulation, False).
    dsp_layout : str or None
        With ``primitives``: place the multipliers at the sites
        :func:`hw.mac.ecp5_dsp.systolic_sites` gives for this device (one of
        :data:`hw.mac.ecp5_dsp.DSP_LAYOUTS`, ``"lfe5u-85f"``); None (default): nextpnr places them.
    out_reg : bool
        Each result slice's row into an output register (default: where there is no LUT RAM,
        Yosys folds it into a block RAM's read port). False (the ULX3S engine): ``o_res`` is the
        slices' LUT RAM read at their registered read pointers, the first row a cycle earlier,
        and ``o_res.ready`` loads no data register.
    product_stages : int
        1 (default) or 2: register stages between each PE pair's multipliers and its beat sums
        (:class:`SystolicPair`); with 2 the pairs are a cycle longer and the result deskew a cycle
        shorter, so the array's latency stays as documented. The ULX3S engine.
    flush_root : bool
        The result slices' clear registers load from one register holding the flush's next value
        (or the domain's reset), so each slice is reset a cycle later (default False: from that
        value's LUT). The ULX3S engine.
    res_credit : bool
        The reader's ready a cycle ahead in ``i_res_room`` (default False). With it, ``o_res.ready``
        is not read: a row is offered on ``o_res`` only in a cycle after one with ``i_res_room``
        high, and the reader must take it (``o_res.ready`` high whenever ``o_res.valid``; e.g.
        :class:`hw.lib.async_fifo.RegisteredWriteAsyncFIFO`'s ``w_room_ahead``). Each result slice
        registers ``i_res_room`` itself (the ULX3S engine: one ready register reached every
        slice's logic across the array's width).

    Members
    -------
    i_cmd, i_act, i_wgt, o_res, i_clear, o_overflow, o_mode_error, o_idle
        As :class:`hw.mac.array.MacArray` (same payload layouts and handshakes).
    i_flush : In(1)
        A pulse: abandon everything. From the next cycle, for :attr:`flush_cycles` cycles, the
        running and waiting tiles, the credits and the result buffer are held at their reset values,
        both flags cleared, ``o_res.valid``, ``i_cmd.ready`` and ``o_idle`` low, and every row of a
        beat still in the pipeline is dropped; then the array is in its post-reset state (the PEs'
        data registers are not reset: the next tile's first beat restarts the accumulators). A
        command or beat taken in the cycle of the pulse is abandoned too. ``i_flush`` while
        flushing restarts the count.
    i_res_room : In(1)
        With ``res_credit``: the reader takes a row offered in the next cycle.

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names it and the allowed values).
    """

    def __init__(self, rows=8, cols=16, acc_width=24, tile_k=0, tile_bits=spec.DEFAULT_TILE_BITS,
                 count_bits=12, primitives=True, dsp_layout=None, out_reg=True, res_credit=False,
                 flush_root=False, product_stages=1):
        self._rows = check_int("rows", rows, 1, spec.MAX_DIM)
        if not isinstance(cols, int) or isinstance(cols, bool) or cols % 2 or not 2 <= cols <= spec.MAX_DIM:
            raise ValueError(f"cols must be an even integer from 2 to {spec.MAX_DIM} (column pairs), "
                             f"not {cols!r}")
        self._cols = cols
        self._acc_width = check_int("acc_width", acc_width, spec.MIN_ACC_WIDTH, spec.MAX_ACC_WIDTH)
        self._tile_k = check_tile_k(tile_k)
        self._tile_bits = check_int("tile_bits", tile_bits, 2, min(16, acc_width - 1))
        self._count_bits = check_int("count_bits", count_bits, 1, 20)
        self._primitives = check_bool("primitives", primitives)
        self._out_reg = check_bool("out_reg", out_reg)
        self._res_credit = check_bool("res_credit", res_credit)
        self._flush_root = check_bool("flush_root", flush_root)
        self._product_stages = check_int("product_stages", product_stages, 1, 2)
        self._sites = None if dsp_layout is None else systolic_sites(dsp_layout, rows, cols // 2)
        credit = {"i_res_room": In(1)} if res_credit else {}
        super().__init__({**array_members(rows, cols, acc_width, count_bits), "i_flush": In(1), **credit})
        # Read-only by convention, as MacArray's properties (the stream runners read them).
        self.rows, self.cols, self.acc_width = rows, cols, acc_width
        self.tile_k, self.tile_bits, self.count_bits = tile_k, tile_bits, count_bits

    @property
    def fifo_depth(self):
        """Output FIFO depth in result rows: enough credits that tiles one drain gap
        (``max(2 * rows - 1, 2)`` cycles) apart never wait for them while the consumer takes a row
        per cycle. A tile holds its ``rows`` credits from its last beat until its last row leaves,
        ``pairs + 2 * rows + 13`` cycles at most (``+ 3`` margin)."""
        R, P = self._rows, self._cols // 2
        hold = P + 2 * R + 16
        gap = max(2 * R - 1, 2)
        return R * (-(-hold // gap) + 1)

    @property
    def flush_cycles(self):
        """Cycles ``i_flush`` holds the array (:func:`flush_cycles`)."""
        return flush_cycles(self._rows, self._cols)

    def elaborate(self, platform):
        m = Module()
        R, P = self._rows, self._cols // 2
        depth = self.fifo_depth
        m.submodules.ctl = ctl = _InputControl(R, self._cols, self._tile_k, self._count_bits, depth)
        m.submodules.out = out = _ResultCollector(R, self._cols, self._acc_width, depth, self._out_reg,
                                                  self._res_credit, self._flush_root, self._product_stages)
        if self._res_credit:
            m.d.comb += out.i_room.eq(self.i_res_room)
        # The flush is a register (``flushing``), so its fan-out starts at a flip-flop; the result
        # collector keeps copies of its own from its next value. ``flush_left != 0`` is a register
        # of its own (``left_nz``), set a cycle ahead: the count's compare was two LUTs ahead of
        # the route to the collector's copies (9.08 ns, the 8 x 16 ULX3S board aimed at 125 MHz).
        flushing, flushing_next = Signal(), Signal()
        flush_left = Signal(range(self.flush_cycles + 1))
        left_nz = Signal()
        m.d.comb += flushing_next.eq(self.i_flush | left_nz)
        m.d.sync += [flushing.eq(flushing_next),
                     left_nz.eq(Mux(self.i_flush, self.flush_cycles - 1 != 0, flush_left > 1))]
        with m.If(self.i_flush):
            m.d.sync += flush_left.eq(self.flush_cycles - 1)
        with m.Elif(left_nz):
            m.d.sync += flush_left.eq(flush_left - 1)
        m.d.comb += [ctl.i_cmd.payload.eq(self.i_cmd.payload),
                     ctl.i_cmd.valid.eq(self.i_cmd.valid & ~flushing),
                     self.i_cmd.ready.eq(ctl.i_cmd.ready & ~flushing)]
        wiring.connect(m, wiring.flipped(self.i_act), ctl.i_act)
        wiring.connect(m, wiring.flipped(self.i_wgt), ctl.i_wgt)
        wiring.connect(m, out.o_res, wiring.flipped(self.o_res))
        m.d.comb += [
            ctl.i_clear.eq(self.i_clear), out.i_clear.eq(self.i_clear), ctl.pop.eq(out.pop),
            ctl.i_flush.eq(flushing), out.i_flush_next.eq(flushing_next),
            self.o_mode_error.eq(ctl.o_mode_error), self.o_overflow.eq(out.o_overflow),
            self.o_idle.eq(ctl.o_idle & ~flushing),
        ]

        def delayed(value, n, name, reset_less=False):
            for i in range(n):
                reg = Signal.like(value, name=f"{name}_{i}", reset_less=reset_less)
                m.d.sync += reg.eq(value)
                value = reg
            return value

        # The operands are data (a bubble's are never used: the tags say which beats count), so
        # their skew, decode and lag registers are reset-less. With a reset, the array's one
        # reset register reached every one of them across the die (a 12.97 ns route to a row's
        # activation skew register, the `gemm` worst path of the 8 x 16 board at e29404b).
        def edge_operands(names, index, beat, decode, ops_layout, late_layout):
            """Row ``index``'s activation (``names="ax"``) or pair ``index``'s weight (``"wd"``)
            operands at the array's edge: the undecoded beat skewed ``index`` cycles, decoded into
            the multiplier operands and the fabric operands, the latter ``FABRIC_LAG`` cycles later."""
            ops = Signal(ops_layout, name=f"edge_{names[0]}{index}", reset_less=True)
            late = Signal(late_layout, name=f"edge_{names[1]}{index}", reset_less=True)
            decode(m, delayed(beat, index, f"skew_{names[0]}{index}", reset_less=True), ops, late)
            return ops, delayed(late, FABRIC_LAG, f"lag_{names[1]}{index}", reset_less=True)

        pes = [[SystolicPair(self._acc_width, self._tile_k, self._tile_bits, self._primitives,
                             self._sites[r][p] if self._sites and self._primitives else None,
                             self._product_stages)
                for p in range(P)] for r in range(R)]
        for r in range(R):
            for p in range(P):
                pe = m.submodules[f"pe{r}_{p}"] = pes[r][p]
                # Skew: row r's activations r cycles late, pair p's weights p cycles late; the
                # tags, which the pairs need PAIR_LATENCY cycles after the operands, follow the
                # weights down the column, PAIR_LATENCY cycles behind them.
                # The fabric operands enter FABRIC_LAG cycles behind the multipliers' operands.
                if p == 0:
                    a_in, x_in = edge_operands("ax", r, ctl.acts[r], decode_act,
                                               act_ops_layout(), act_late_layout())
                else:
                    a_in, x_in = pes[r][p - 1].a_out, pes[r][p - 1].x_out
                if r == 0:
                    w_in, d_in = edge_operands("wd", p, ctl.wgts[p], decode_wgt,
                                               wgt_ops_layout(), wgt_late_layout())
                else:
                    w_in, d_in = pes[r - 1][p].w_out, pes[r - 1][p].d_out
                t_in = (delayed(ctl.tags, p + PAIR_LATENCY + self._product_stages, f"skew_t{p}") if r == 0
                        else pes[r - 1][p].t_out)
                m.d.comb += [pe.a_in.eq(a_in), pe.x_in.eq(x_in), pe.w_in.eq(w_in), pe.d_in.eq(d_in),
                             pe.t_in.eq(t_in)]
                if r + 1 < R:
                    m.d.comb += pe.sh_in.eq(pes[r + 1][p].sh_out)
        m.d.comb += [out.sh[p].eq(pes[0][p].sh_out) for p in range(P)]
        return m
