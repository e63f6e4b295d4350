"""The product grid of the MAC array: every PE's beat sum, with three arithmetic backends.

One *beat sum* is the exact sum of the ``lanes(mode)`` products a PE retires in one beat (see
:mod:`hw.mac.spec`). All backends have the same three register stages, all advancing on ``en``:

* S0 — operands: per row and Booth digit the activation it multiplies (9-bit signed, so int8 and
  uint8 share the datapath) and, for the fabric, ``+a`` and ``-a`` with the digit's shift applied;
  per column the packed byte and its Booth digits; the mode flags;
* S1 — products: fabric partial-product pair sums and/or the DSP multiplier output registers;
* S2 — the beat sum of each PE (17-bit signed: the extreme beat, 255 * -128, fits 16 bits), as
  one term or (ecp5) two terms the accumulator stage adds.

So ``beat`` (+ ``beat2``) is valid three ``en`` cycles after the inputs, whatever the backend.

Backends
--------
``"lut"``
    Everything in fabric: per PE the fused radix-4 Booth datapath of :mod:`hw.mac.booth` — four
    partial products, shifts chosen by the mode — retires 1 int8, 2 int4 or 4 int2/ternary products
    per cycle with one adder tree. No multiplier cells are inferred (Yosys would otherwise map
    ``*`` to DSPs, which the UP5K has only 8 of).
``"ice40"``
    iCE40UP5K ``SB_MAC16`` blocks in dual 8x8 mode: one block multiplies the row's lane-0
    activation by the lane-0 weights of two neighbouring columns (signed x signed, input regs
    bypassed, 8x8 product registers used as S1) in *every* mode: the int8 weight, or the int4/int2/
    ternary lane-0 weight sign-extended to 8 bits (registered per column in S0). Unsigned
    activations are corrected inside the block: ``a_u * w = a_s * w + 256 * a[7] * w``, the
    ``256 * w`` term entering through the C/D registers and the block's adders. The fabric covers
    lanes 1..3 only (int4 lane 1: two Booth digits; int2/ternary lanes 1..3: one digit each): three
    partial products of at most 12 bits per PE instead of four of 14, zero in int8, and their sum
    (13 bits) is added to the DSP output in S2. Digit operands need at most one mode mux before
    their S0 negation.

    With ``lane_dsps=True`` every activation lane has SB_MAC16s of its own instead (four blocks
    per row and column pair, each configured as the lane-0 block): block ``l`` multiplies the
    row's lane-``l`` activation by the lane-``l`` weights of the two columns (int4 lane 1, int2
    and ternary lanes 1..3, sign-extended; 0 in the modes without that lane; registered per column
    in S0 as 4 or 2 bits), with the same unsigned correction, and S2 adds the four blocks' outputs
    per PE. No Booth digits, no fabric partial products: for arrays small enough to spend
    ``4 * rows * ceil(cols / 2)`` of the UP5K's 8 SB_MAC16 (the iCEBreaker's 1 x 2 GEMV array).
``"ecp5"``
    One ECP5 ``MULT18X18D`` per PE (output register = S1). int8: ``a * w``. int4 *lane packing*:
    the multipliers of columns ``c`` (even) and ``c + 1`` compute ``a0 * (w0[c] + w0[c+1] * 2**12)``
    and ``a1 * (w1[c] + w1[c+1] * 2**12)``; each product ``a * w`` of a 9-bit activation and a 4-bit
    weight fits 12 signed bits, so the fabric recovers ``lo = sext(P[11:0])`` and
    ``hi = (P >> 12) + P[11]`` (the borrow the negative low product took from the high one) — two
    MACs per multiplier. The packed B operands are formed from the inputs and registered in S0, so
    the multipliers' inputs come straight from flip-flops. int2/ternary products use a fabric Booth
    datapath (digit j = lane j, no mode mux). ``cols`` must be even. The beat leaves S2 as two
    terms (``beat + beat2``: the two unpacked products, or the two fabric pair sums) which the
    accumulator stage adds, so S2 holds only the DSP's route into the fabric, the borrow
    correction and a mux.

With ``primitives=False`` the DSP backends use a behavioural model of the primitive (the same
multiplication, the same registers, the same fabric correction), which is what simulation uses:
Amaranth's simulator and the project's Verilator runs cannot simulate vendor primitives. The
model is the arithmetic the primitive is configured for, so the lane packing and the corrections are
verified bit-exactly in simulation; only the primitive's own multiplier is trusted.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_bool, check_choice, check_int
from . import spec
from .booth import PAIR_SHIFT, booth_digits, booth_pp
from .ecp5_dsp import mult18x18d

__all__ = ["ProductGrid", "BACKENDS", "BEAT_WIDTH", "TERMS"]

BACKENDS = ("lut", "ice40", "ecp5")
#: Terms of the beat sum each backend hands over (``beat`` alone, or ``beat + beat2``).
TERMS = {"lut": 1, "ice40": 1, "ecp5": 2}
BEAT_WIDTH = 17
ACT9 = signed(9)
OP = signed(11)    # a << 2 for a in -128..255


def _lane0_weight(b, mode):
    """The SB_MAC16's lane-0 weight (signed) of packed weight byte ``b`` in ``mode``: int8 the byte,
    int4 its low nibble, int2 its low two bits, ternary its low code (0b01 -> 1, 0b11 -> -1,
    else 0)."""
    tern0 = Cat(b[0], b[1] & b[0]).as_signed()
    return Mux(mode == spec.MODE_INT8, b.as_signed(),
               Mux(mode == spec.MODE_INT4, b[0:4].as_signed(),
                   Mux(mode == spec.MODE_TERNARY, tern0, b[0:2].as_signed())))


class ProductGrid(wiring.Component):
    """Beat sums of an ``rows x cols`` grid of PEs, three register stages after the inputs.

    Parameters
    ----------
    rows, cols : int
        Grid size, 1..16 each (``cols`` even for ``backend="ecp5"``).
    backend : str
        ``"lut"``, ``"ice40"`` or ``"ecp5"`` (see the module docstring).
    primitives : bool
        Instantiate the vendor DSP primitive (synthesis) or its behavioural model (simulation).
        Ignored by ``"lut"``.
    lane_dsps : bool
        ``"ice40"`` only: every activation lane on SB_MAC16s (see the module docstring), no fabric
        partial products.

    Members
    -------
    act : In(rows * 32)
        Activation beat as in :mod:`hw.mac.spec` (row ``r`` lane ``l`` at byte ``4r + l``).
    wgt : In(cols * 8)
        Packed weight beat (column ``c`` at byte ``c``).
    mode : In(2)
        A defined mode code (0..3); the grid never sees undefined codes.
    act_unsigned : In(1)
    en : In(1)
        Advance all three stages.
    beat, beat2 : Out(ArrayLayout(ArrayLayout(signed(17), cols), rows))
        ``beat[r][c] + beat2[r][c]``: the beat sum of PE (r, c) for the inputs three ``en`` cycles
        earlier. ``beat2`` is always 0 except with backend ``"ecp5"`` (see :attr:`TERMS`), which
        leaves the last addition to the accumulator stage.

    Raises
    ------
    ValueError
        On a bad ``rows``, ``cols``, ``backend`` or ``primitives``, odd ``cols`` with ``"ecp5"``,
        or ``lane_dsps`` with a backend other than ``"ice40"``.
    """

    def __init__(self, rows=4, cols=4, backend="lut", primitives=False, lane_dsps=False):
        self._rows = check_int("rows", rows, 1, spec.MAX_DIM)
        self._cols = check_int("cols", cols, 1, spec.MAX_DIM)
        self._backend = check_choice("backend", backend, BACKENDS)
        self._primitives = check_bool("primitives", primitives)
        self._lane_dsps = check_bool("lane_dsps", lane_dsps)
        if lane_dsps and backend != "ice40":
            raise ValueError(f"lane_dsps is for backend 'ice40' (SB_MAC16 per activation lane), not "
                             f"backend {backend!r}")
        if backend == "ecp5" and cols % 2:
            raise ValueError(f"cols must be an even integer from 2 to {spec.MAX_DIM} with backend 'ecp5' "
                             f"(int4 lanes are packed across column pairs), not {cols!r}")
        super().__init__({
            "act": In(rows * spec.MAX_LANES * spec.ACT_BITS),
            "wgt": In(cols * spec.WORD_BITS),
            "mode": In(2),
            "act_unsigned": In(1),
            "en": In(1),
            "beat": Out(data.ArrayLayout(data.ArrayLayout(signed(BEAT_WIDTH), cols), rows)),
            "beat2": Out(data.ArrayLayout(data.ArrayLayout(signed(BEAT_WIDTH), cols), rows)),
        })

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        en = self.en

        # --- S0: operands ----------------------------------------------------------------------
        mode = self.mode
        is8_in, is4_in = mode == spec.MODE_INT8, mode == spec.MODE_INT4
        tern_in = mode == spec.MODE_TERNARY
        is8, is4 = Signal(name="s0_is8"), Signal(name="s0_is4")
        with m.If(en):
            m.d.sync += [is8.eq(is8_in), is4.eq(is4_in)]

        # Activation of Booth digit j: int8 lane 0; int4 lane j // 2; int2/ternary lane j.
        # Per row and digit: the 9-bit activation (the DSPs' operand) and, for the fabric Booth
        # datapath, +a and -a with the odd digits' shift of int8/int4 applied. The DSP backends
        # use the fabric only for some modes and digits (see ``_fabric_lanes``), which makes their
        # operand selection (in front of the negation, the S0 path) one mux level or none.
        acts, ops, acts_in = [], [], []
        for r in range(R):
            lane = [self.act[8 * (4 * r + l): 8 * (4 * r + l + 1)] for l in range(4)]
            row, row_ops, row_in = [], [], []
            # Each lane's value and its negation, formed straight from the input bytes (only the
            # top bit depends on the unsigned flag); the digits' mode muxes come after the
            # negation, so the carry chain starts at the payload, not behind the mode decode.
            lane_pos, lane_neg = [], []
            for l in range(4):
                p_l = Signal(ACT9, name=f"p{r}_{l}")
                n_l = Signal(signed(10), name=f"n{r}_{l}")
                m.d.comb += [p_l.eq(Mux(self.act_unsigned, lane[l].as_unsigned(), lane[l].as_signed())),
                             n_l.eq(-p_l)]
                lane_pos.append(p_l)
                lane_neg.append(n_l)
            for j in range(4):
                raw = Mux(is8_in, lane[0], Mux(is4_in, lane[j // 2], lane[j]))
                a_in = Signal(ACT9, name=f"a{r}_{j}")
                # 9-bit value: uint8 zero-extends, int8 sign-extends.
                m.d.comb += a_in.eq(Mux(self.act_unsigned, raw.as_unsigned(), raw.as_signed()))
                sel = self._fabric_operand(j, is8_in, is4_in)
                a = Signal(ACT9, name=f"s0_a{r}_{j}")
                with m.If(en):
                    m.d.sync += a.eq(a_in)
                if sel is not None:
                    pos, neg = Signal(OP, name=f"s0_pos{r}_{j}"), Signal(OP, name=f"s0_neg{r}_{j}")
                    with m.If(en):
                        m.d.sync += [pos.eq(sel(lane_pos)), neg.eq(sel(lane_neg))]
                    row_ops.append((pos, neg))
                else:
                    row_ops.append(None)
                row.append(a)
                row_in.append(a_in)
            acts_in.append(row_in)
            acts.append(row)
            ops.append(row_ops)
        self._ops = ops
        self._acts_in = acts_in
        self._is8_in, self._is4_in = is8_in, is4_in

        wbytes, digits = [], []
        for c in range(C):
            b_in = self.wgt[8 * c: 8 * (c + 1)]
            b = Signal(8, name=f"s0_w{c}")
            ds = []
            digits_in = [] if self._lane_dsps else booth_digits(b_in, is8_in, is4_in, tern_in)
            for j, (one, two, neg) in enumerate(digits_in):
                if self._backend == "ice40":
                    # The DSP takes lane 0 in every mode: the fabric's digit 1 works in int2 and
                    # ternary only, digits 2 and 3 in all modes but int8 (zero otherwise, so the
                    # fabric sum needs no mux).
                    live = ~is8_in & ~is4_in if j == 1 else ~is8_in
                    one, two = one & live, two & live
                d = [Signal(name=f"s0_d{c}_{j}_{t}") for t in ("one", "two", "neg")]
                with m.If(en):
                    m.d.sync += [d[0].eq(one), d[1].eq(two), d[2].eq(neg)]
                ds.append(tuple(d))
            with m.If(en):
                m.d.sync += b.eq(b_in)
            wbytes.append(b)
            digits.append(ds)

        # --- S1, S2: per backend ---------------------------------------------------------------
        is8_1, is4_1 = Signal(name="s1_is8"), Signal(name="s1_is4")
        with m.If(en):
            m.d.sync += [is8_1.eq(is8), is4_1.eq(is4)]
        grid = "ice40_lanes" if self._lane_dsps else self._backend
        getattr(self, f"_grid_{grid}")(m, acts, wbytes, digits, is8, is4, is8_1, is4_1)
        return m

    def _fabric_operand(self, j, is8_in, is4_in):
        """How digit ``j`` picks its fabric operand from a row's four lane values (a function of
        the list of lane values, applied to both ``+a`` and ``-a``), or None: no fabric partial
        product for that digit."""
        if self._lane_dsps:
            return None
        if self._backend == "lut":
            # Every mode: int8 lane 0, int4 lane j // 2 (odd digits shifted), int2/ternary lane j.
            def sel(lanes):
                base = Mux(is8_in, lanes[0], Mux(is4_in, lanes[j // 2], lanes[j]))
                return Mux(is8_in | is4_in, base << PAIR_SHIFT, base) if j % 2 else base
        elif self._backend == "ecp5":
            # int2/ternary only: lane j, unshifted, whatever the mode.
            def sel(lanes):
                return lanes[j]
        else:
            # ice40: lane 0 is the DSP's in every mode. Digit 1: int2/ternary lane 1; digit 2:
            # int4 lane 1 (low digit) or lane 2; digit 3: int4 lane 1 (high digit, shifted) or lane 3.
            if j == 0:
                return None

            def sel(lanes):
                if j == 1:
                    return lanes[1]
                if j == 2:
                    return Mux(is4_in, lanes[1], lanes[2])
                return Mux(is4_in, lanes[1] << PAIR_SHIFT, lanes[3])
        return sel

    # Fabric Booth datapath: S1 = two pair sums, S2 = their sum (upper pair shifted by 4 in int8).
    def _fabric(self, m, r, c, acts, digits, is8, is4, is8_1, width, pairs_only=False):
        ops, d = self._ops[r], digits[c]
        pairs = []
        for p in range(2):
            lo = booth_pp(m, f"pe{r}_{c}_{2 * p}", *ops[2 * p], d[2 * p], width)
            hi = booth_pp(m, f"pe{r}_{c}_{2 * p + 1}", *ops[2 * p + 1], d[2 * p + 1], width)
            q = Signal(signed(width), name=f"s1_q{r}_{c}_{p}")
            with m.If(self.en):
                m.d.sync += q.eq(lo + hi)
            pairs.append(q)
        if pairs_only:
            return pairs
        total = Signal(signed(width), name=f"fab{r}_{c}")
        m.d.comb += total.eq(pairs[0] + Mux(is8_1, pairs[1] << 4, pairs[1]))
        return total

    def _store(self, m, r, c, value, value2=None):
        with m.If(self.en):
            m.d.sync += self.beat[r][c].eq(value)
            if value2 is not None:
                m.d.sync += self.beat2[r][c].eq(value2)

    def _grid_lut(self, m, acts, wbytes, digits, is8, is4, is8_1, is4_1):
        for r in range(self._rows):
            for c in range(self._cols):
                self._store(m, r, c, self._fabric(m, r, c, acts, digits, is8, is4, is8_1, BEAT_WIDTH))

    def _grid_ice40(self, m, acts, wbytes, digits, is8, is4, is8_1, is4_1):
        # The SB_MAC16 halves multiply lane 0 in every mode (int8: the weight; int4/int2/ternary:
        # the lane-0 weight, sign-extended), so the fabric covers lanes 1..3 of int4/int2/ternary
        # only: three partial products (int4 lane 1: two digits; int2/ternary: one per lane) of at
        # most 12 bits, |sum| <= 2040 (13 bits), and they are zero in int8.
        mode = self.mode
        dsp_w = []
        for c in range(self._cols):
            w_in = _lane0_weight(self.wgt[8 * c: 8 * (c + 1)], mode)
            w = Signal(signed(8), name=f"s0_wd{c}")
            with m.If(self.en):
                m.d.sync += w.eq(w_in)
            dsp_w.append(w)
        for r in range(self._rows):
            a = acts[r][0]
            # a_u = a_s + 256 when an unsigned activation has bit 7 set (bit 8 is then 0): the DSP
            # multiplies a_s and adds the correction w * 256 in its own adder.
            fix = Signal(name=f"s0_fix{r}")
            m.d.comb += fix.eq(a[7] & ~a[8])
            for c0 in range(0, self._cols, 2):
                c1 = c0 + 1 if c0 + 1 < self._cols else None
                w_lo = dsp_w[c0]
                w_hi = dsp_w[c1] if c1 is not None else Const(0, 8)
                p_lo, p_hi = self._sb_mac16(m, f"dsp{r}_{c0}", a[:8], w_lo, w_hi, fix)
                for c, p in ((c0, p_lo), (c1, p_hi)):
                    if c is None:
                        continue
                    self._store(m, r, c, p + self._fabric_ice40(m, r, c, digits))

    def _grid_ice40_lanes(self, m, acts, wbytes, digits, is8, is4, is8_1, is4_1):
        # Lane l's weight of each column, registered in S0: lane 0 the DSP operand of _grid_ice40
        # (8 bits), lane 1 int4 / int2 / ternary (4 bits hold -8..7), lanes 2 and 3 int2 / ternary
        # (2 bits hold -2..1); 0 in the modes without the lane. Sign-extended to the DSP's 8 bits.
        mode = self.mode
        is8_in, is4_in = mode == spec.MODE_INT8, mode == spec.MODE_INT4
        tern_in = mode == spec.MODE_TERNARY
        lane_w = []
        for c in range(self._cols):
            b = self.wgt[8 * c: 8 * (c + 1)]

            def two_bit(lo, b=b):
                f = b[lo:lo + 2]
                return Mux(tern_in, Cat(f[0], f[1] & f[0]), f)   # 0b01 -> 1, 0b11 -> -1, else 0

            ins = [
                _lane0_weight(b, mode),
                Mux(is8_in, 0, Mux(is4_in, b[4:8].as_signed(), two_bit(2).as_signed())),
                Mux(is8_in | is4_in, 0, two_bit(4)),
                Mux(is8_in | is4_in, 0, two_bit(6)),
            ]
            ws = []
            for l, (w_in, bits) in enumerate(zip(ins, (8, 4, 2, 2))):
                w = Signal(signed(bits), name=f"s0_wl{c}_{l}")
                with m.If(self.en):
                    m.d.sync += w.eq(w_in)
                w8 = Signal(signed(8), name=f"wl{c}_{l}")
                m.d.comb += w8.eq(w)
                ws.append(w8)
            lane_w.append(ws)
        for r in range(self._rows):
            # Lane l's activation byte goes into the blocks' own A register (S0, A_REG: no fabric
            # flip-flops, whose D would come straight from the input); only the unsigned
            # correction's flag (an unsigned activation with bit 7 set) is an S0 register here.
            fixes = []
            for l in range(4):
                byte = self.act[8 * (4 * r + l): 8 * (4 * r + l + 1)]
                fix = Signal(name=f"s0_fix{r}_{l}")
                with m.If(self.en):
                    m.d.sync += fix.eq(self.act_unsigned & byte[7])
                fixes.append((byte, fix))
            for c0 in range(0, self._cols, 2):
                c1 = c0 + 1 if c0 + 1 < self._cols else None
                prods = []
                for l, (byte, fix) in enumerate(fixes):
                    w_hi = lane_w[c1][l] if c1 is not None else Const(0, 8)
                    prods.append(self._sb_mac16(m, f"dsp{r}_{c0}_l{l}", byte, lane_w[c0][l], w_hi, fix,
                                                a_reg=True))
                for c, half in ((c0, 0), (c1, 1)):
                    if c is None:
                        continue
                    # Lane 1's product fits 12 signed bits (|a * w| <= 255 * 8), lanes 2 and 3's
                    # 10 (w in -2..1): the sum's adders only as wide as that (area, same values).
                    # The two partial sums are kept wires: otherwise Yosys merges the three
                    # additions into one four-operand $macc, whose full-adder tree takes about
                    # 34 LUT4 more per PE on iCE40 than three carry-chain adders.
                    p = [pr[half] for pr in prods]
                    s01 = Signal(signed(17), name=f"lsum{r}_{c}_01", attrs={"keep": 1})
                    s23 = Signal(signed(11), name=f"lsum{r}_{c}_23", attrs={"keep": 1})
                    m.d.comb += [s01.eq(p[0] + p[1][:12].as_signed()),
                                 s23.eq(p[2][:10].as_signed() + p[3][:10].as_signed())]
                    self._store(m, r, c, s01 + s23)

    def _fabric_ice40(self, m, r, c, digits):
        """Digits 1..3 of PE (r, c): S1 = (pp1 + pp2, pp3), returned summed (comb, 13 bits); the
        sum runs while the DSP's output goes through its adder, and S2 adds the two."""
        ops, d = self._ops[r], digits[c]
        pp = [booth_pp(m, f"pe{r}_{c}_{j}", *ops[j], d[j], 12) for j in (1, 2, 3)]
        q0 = Signal(signed(12), name=f"s1_q{r}_{c}_0")
        q1 = Signal(signed(12), name=f"s1_q{r}_{c}_1")
        with m.If(self.en):
            m.d.sync += [q0.eq(pp[0] + pp[1]), q1.eq(pp[2])]
        total = Signal(signed(13), name=f"fab{r}_{c}")
        m.d.comb += total.eq(q0 + q1)
        return total

    def _sb_mac16(self, m, name, a8, w_lo, w_hi, fix, a_reg=False):
        """``a*w + (fix ? w*256 : 0)`` for ``w`` in ``(w_lo, w_hi)``: signed 8x8 products (SB_MAC16
        dual 8x8 mode, product registers on ``en``) plus the correction, registered alongside in the
        C/D input registers and added by the block's 16-bit adders (output select 0: adder output).
        Every true result fits 16 signed bits, so the adders' wrap-around is exact. ``a_reg``:
        ``a8`` is the activation a stage earlier (``w_lo``, ``w_hi`` and ``fix`` are S0
        registers), registered on ``en`` in the block's A register (A_REG) as the S0 stage."""
        p_lo = Signal(signed(16), name=f"{name}_lo")
        p_hi = Signal(signed(16), name=f"{name}_hi")
        corr_lo = Signal(16, name=f"{name}_corr_lo")
        corr_hi = Signal(16, name=f"{name}_corr_hi")
        m.d.comb += [corr_lo.eq(Mux(fix, w_lo << 8, 0)), corr_hi.eq(Mux(fix, w_hi << 8, 0))]
        if self._primitives:
            o = Signal(32, name=f"{name}_o")
            m.submodules[name] = Instance(
                "SB_MAC16",
                p_MODE_8x8=1, p_A_SIGNED=1, p_B_SIGNED=1,
                p_A_REG=int(a_reg), p_B_REG=0, p_C_REG=1, p_D_REG=1,
                p_TOP_8x8_MULT_REG=1, p_BOT_8x8_MULT_REG=1,
                p_PIPELINE_16x16_MULT_REG1=0, p_PIPELINE_16x16_MULT_REG2=0,
                # Adder: lower input = registered 8x8 product, upper input = C (top) / D (bottom),
                # output = the adder, unregistered; no carry between the halves.
                p_TOPOUTPUT_SELECT=0, p_BOTOUTPUT_SELECT=0,
                p_TOPADDSUB_LOWERINPUT=1, p_TOPADDSUB_UPPERINPUT=1, p_TOPADDSUB_CARRYSELECT=0,
                p_BOTADDSUB_LOWERINPUT=1, p_BOTADDSUB_UPPERINPUT=1, p_BOTADDSUB_CARRYSELECT=0,
                p_NEG_TRIGGER=0,
                i_CLK=ClockSignal(), i_CE=self.en,
                i_A=a8.as_unsigned().replicate(2), i_B=Cat(w_lo, w_hi),
                i_C=corr_hi, i_D=corr_lo,
                i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
                i_IRSTTOP=0, i_IRSTBOT=0, i_ORSTTOP=0, i_ORSTBOT=0,
                i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
                i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
                o_O=o,
            )
            m.d.comb += [p_lo.eq(o[:16]), p_hi.eq(o[16:])]
        else:
            if a_reg:
                a_q = Signal(8, name=f"{name}_a")
                with m.If(self.en):
                    m.d.sync += a_q.eq(a8)
                a8 = a_q
            prod_lo, prod_hi = Signal(signed(16), name=f"{name}_f"), Signal(signed(16), name=f"{name}_g")
            reg_lo, reg_hi = Signal(16, name=f"{name}_rd"), Signal(16, name=f"{name}_rc")
            with m.If(self.en):
                m.d.sync += [prod_lo.eq(a8.as_signed() * w_lo.as_signed()),
                             prod_hi.eq(a8.as_signed() * w_hi.as_signed()),
                             reg_lo.eq(corr_lo), reg_hi.eq(corr_hi)]
            m.d.comb += [p_lo.eq(prod_lo + reg_lo), p_hi.eq(prod_hi + reg_hi)]
        return p_lo, p_hi

    def _grid_ecp5(self, m, acts, wbytes, digits, is8, is4, is8_1, is4_1):
        no = Const(0, 1)
        is8_in = self._is8_in
        bs = []
        for c0 in range(0, self._cols, 2):
            w0, w1 = self.wgt[8 * c0: 8 * c0 + 8], self.wgt[8 * c0 + 8: 8 * c0 + 16]
            b_even = Signal(signed(18), name=f"s0_b{c0}")
            b_odd = Signal(signed(18), name=f"s0_b{c0 + 1}")
            with m.If(self.en):
                m.d.sync += [
                    b_even.eq(Mux(is8_in, w0.as_signed(),
                                  w0[0:4].as_signed() + (w1[0:4].as_signed() << 12))),
                    b_odd.eq(Mux(is8_in, w1.as_signed(),
                                 w0[4:8].as_signed() + (w1[4:8].as_signed() << 12))),
                ]
            bs.append((b_even, b_odd))
        a_odds = []
        for r in range(self._rows):
            a_odd = Signal(ACT9, name=f"s0_a_odd{r}")
            with m.If(self.en):
                m.d.sync += a_odd.eq(Mux(is8_in, self._acts_in[r][0], self._acts_in[r][2]))
            a_odds.append(a_odd)
        for r in range(self._rows):
            a = acts[r]
            for c0 in range(0, self._cols, 2):
                c1 = c0 + 1
                # int8: B = the column's weight; int4: B = lane weight of c0 + (lane weight of c1) << 12.
                # Formed from the inputs and registered in S0 (fabric flip-flops, shared by the
                # column pair's multipliers in every row), so the multipliers' B inputs come
                # straight from registers: the operand adder is off the DSP's input setup path.
                b_even, b_odd = bs[c0 // 2]
                # In int4 the activation of digits 2, 3 is lane 1 (registered in S0 as well).
                a_odd = a_odds[r]
                p_even = self._mult18(m, f"dsp{r}_{c0}", a[0], b_even)
                p_odd = self._mult18(m, f"dsp{r}_{c1}", a_odd, b_odd)
                lo_e, hi_e = _unpack12(m, f"x{r}_{c0}", p_even)
                lo_o, hi_o = _unpack12(m, f"x{r}_{c1}", p_odd)
                # Fabric covers int2/ternary only: two unshifted pairs of 2 * 2 * 255, 12 bits.
                f0 = self._fabric(m, r, c0, acts, digits, no, no, no, 12, pairs_only=True)
                f1 = self._fabric(m, r, c1, acts, digits, no, no, no, 12, pairs_only=True)
                # The beat leaves as two terms (``beat`` + ``beat2``), added by the accumulator
                # stage: S2 is then the DSP output, one borrow correction and a mux (no adder
                # of two unpacked products behind the DSP's long route into the fabric).
                self._store(m, r, c0, Mux(is8_1, p_even, Mux(is4_1, lo_e, f0[0])),
                            Mux(is4_1, lo_o, Mux(is8_1, 0, f0[1])))
                self._store(m, r, c1, Mux(is8_1, p_odd, Mux(is4_1, hi_e, f1[0])),
                            Mux(is4_1, hi_o, Mux(is8_1, 0, f1[1])))

    def _mult18(self, m, name, a, b):
        """``a * b`` (18x18 signed), registered on ``en`` (MULT18X18D output register)."""
        return mult18x18d(m, name, a, b, registers=("OUTPUT",), ce=self.en, primitive=self._primitives)


def _unpack12(m, name, p):
    """Split a packed product ``lo + hi * 2**12`` (``lo`` a 12-bit signed value) into ``(lo, hi)``."""
    lo = Signal(signed(12), name=f"{name}_lo")
    hi = Signal(signed(14), name=f"{name}_hi")
    m.d.comb += [lo.eq(p[:12].as_signed()), hi.eq(p[12:26].as_signed() + p[11])]
    return lo, hi
