"""Accumulator stages of the MAC array: tile-group sums (S3, S3b) and the saturating accumulators (S4).

Implements the accumulator semantics of :mod:`hw.mac.spec` for every PE of the grid:

* With the tile-saturating option (``tile_k > 0``) S3 and S3b form the *contribution*: in a plain
  tile each beat sum passes through unchanged; in a tile-saturating tile (HDQT) the beat sums of one
  group of ``tile_k`` products are added exactly (S3) and the group sum, clamped to
  ``±(2**(tile_bits-1) - 1)`` (S3b), is the contribution at the group's end. Without the option
  (``tile_k = 0``) the beat sum goes straight into S4: two register stages less.
* S4 adds each contribution into the ``acc_width``-bit accumulator and clamps (``sat``), recording
  per PE whether any clamp happened in this tile.

The group bookkeeping (start/end of a group, first/last of a tile) arrives as tags computed once by
the array's input control, so the per-PE logic is two adders, two clamps and the registers.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_bool, check_int
from . import spec
from .products import BEAT_WIDTH

__all__ = ["AccumulatorGrid", "group_width", "check_tile_k", "saturated_view", "view_overflowed"]

# Largest beat-sum magnitude: 255 * 128 (uint8 activation times -128).
_MAX_BEAT = 255 * 128


def group_width(tile_k):
    """Signed width that holds the exact sum of a group of ``tile_k`` products (0: plain only)."""
    if tile_k == 0:
        return BEAT_WIDTH
    return max(BEAT_WIDTH, (tile_k * _MAX_BEAT).bit_length() + 1)


class AccumulatorGrid(wiring.Component):
    """S3 and S4 of every PE: tile-group clamping and saturating accumulation.

    Cycle behaviour: a beat presented with ``in_valid`` while ``en`` is high is added into the
    accumulator in that cycle (``tile_k = 0``) or, when it ends a group, two ``en`` cycles later
    (S3, S3b). After the contribution of a tile's last beat has been applied, ``done`` is high and
    ``acc`` / ``ovf`` hold the tile's final results (``acc``: the saturated view of a register, one
    LUT level); they stay there until the next ``en`` cycle, in which the caller must capture them
    (it holds ``en`` low while it cannot).

    Parameters
    ----------
    rows, cols : int
        1..16.
    acc_width : int
        Accumulator width, 17..48.
    tile_k : int
        Group size of tile-saturating tiles in products, a power of two 4..1024, or 0 for no
        tile-saturating option (``in_tsat`` is then ignored).
    tile_bits : int
        Group sums clamp to ``±(2**(tile_bits-1) - 1)``; 2..16.
    terms : int
        1 or 2: how many terms of the beat sum the product grid hands over (:data:`TERMS`).
    clear : str
        Where a tile's first contribution replaces the running sum: ``"sum"`` after the adder (a
        select behind the carry chain, free on iCE40, where it fits the adder's own sum LUT) or
        ``"view"`` in front of it (the adder's accumulator input is forced to 0, in the saturated
        view's LUT; ECP5, whose carry cells take no extra select: one LUT per bit less and none
        behind the chain).
    saturate : bool
        True (default): the saturating accumulators above. False: plain ``acc_width``-bit
        accumulators that wrap (no saturated view in front of the adder, ``ovf`` and ``hist``
        always 0, ``raw`` the accumulator sign-extended), for callers that guarantee that no
        partial sum of a tile leaves ``[-2**(acc_width-1), 2**(acc_width-1) - 1]``: then nothing
        saturates and the results are the same.

    Members
    -------
    en : In(1)
    beat, beat2 : In(ArrayLayout(ArrayLayout(signed(17), cols), rows))
        The beat sum is ``beat`` (``terms = 1``; ``beat2`` ignored) or ``beat + beat2`` (``terms = 2``).
    in_valid, in_first, in_last, in_tsat, in_gstart, in_gend : In(1)
        Tags of ``beat``: a beat of a tile; the tile's first / last beat; tile-saturating tile; the
        beat starts / ends a group (plain tiles: both always 1).
    done : Out(1)
    done_next : Out(1)
        The value ``done`` takes at the next clock edge (combinational, from registers and ``en``).
    acc : Out(ArrayLayout(ArrayLayout(signed(acc_width), cols), rows))
    ovf : Out(rows)
        Bit ``r``: some PE of row ``r`` saturated in the tile (valid with ``done``).
    raw : Out(ArrayLayout(ArrayLayout(signed(acc_width + 1), cols), rows))
    hist : Out(ArrayLayout(ArrayLayout(1, cols), rows))
        The accumulator registers behind ``acc`` / ``ovf``: the unsaturated sum of the last update
        (``acc`` is :func:`saturated_view` of it) and "an earlier update of this tile overflowed"
        (``ovf`` of a PE is ``hist | view_overflowed(raw)``). A consumer that moves results far
        takes these and forms the view at the far end.

    Raises
    ------
    ValueError
        On a parameter out of range.
    """

    def __init__(self, rows=4, cols=4, acc_width=24, tile_k=spec.DEFAULT_TILE_K,
                 tile_bits=spec.DEFAULT_TILE_BITS, terms=1, clear="sum", saturate=True):
        self._rows = check_int("rows", rows, 1, spec.MAX_DIM)
        self._cols = check_int("cols", cols, 1, spec.MAX_DIM)
        self._acc_width = check_int("acc_width", acc_width, spec.MIN_ACC_WIDTH, spec.MAX_ACC_WIDTH)
        self._tile_k = check_tile_k(tile_k)
        self._tile_bits = check_int("tile_bits", tile_bits, 2, 16)
        self._terms = check_int("terms", terms, 1, 2)
        if clear not in ("sum", "view"):
            raise ValueError(f"clear must be 'sum' or 'view', not {clear!r}")
        self._clear = clear
        self._saturate = check_bool("saturate", saturate)
        super().__init__({
            "en": In(1),
            "beat": In(data.ArrayLayout(data.ArrayLayout(signed(BEAT_WIDTH), cols), rows)),
            "beat2": In(data.ArrayLayout(data.ArrayLayout(signed(BEAT_WIDTH), cols), rows)),
            "in_valid": In(1), "in_first": In(1), "in_last": In(1), "in_tsat": In(1),
            "in_gstart": In(1), "in_gend": In(1),
            "done": Out(1),
            "done_next": Out(1),
            "acc": Out(data.ArrayLayout(data.ArrayLayout(signed(acc_width), cols), rows)),
            "ovf": Out(rows),
            "raw": Out(data.ArrayLayout(data.ArrayLayout(signed(acc_width + 1), cols), rows)),
            "hist": Out(data.ArrayLayout(data.ArrayLayout(1, cols), rows)),
        })

    def elaborate(self, platform):
        m = Module()
        R, C, W = self._rows, self._cols, self._acc_width
        gw = group_width(self._tile_k)
        en = self.en
        lo_t, hi_t = spec.tile_range(self._tile_bits)
        tsat = self.in_tsat if self._tile_k else 0

        # Tags of the contribution entering S4: it is valid; it is the tile's first / last.
        if not self._tile_k:
            # No groups: the beat sum is the contribution, straight from the product grid.
            c_valid, c_first, c_last = self.in_valid, self.in_first, self.in_last
        else:
            # S3 (group sums) and S3b (clamp): two register stages of tags.
            v3, f3, l3 = Signal(), Signal(), Signal()
            c_valid, c_first, c_last = Signal(), Signal(), Signal()
            g_first = Signal()  # the open group started at the tile's first beat
            with m.If(en):
                m.d.sync += [
                    v3.eq(self.in_valid & self.in_gend),
                    f3.eq(Mux(self.in_gstart, self.in_first, g_first)),
                    l3.eq(self.in_last),
                    c_valid.eq(v3), c_first.eq(f3), c_last.eq(l3),
                ]
                with m.If(self.in_valid & self.in_gstart):
                    m.d.sync += g_first.eq(self.in_first)
            tsat3 = Signal()
            with m.If(en):
                m.d.sync += tsat3.eq(tsat)
        with m.If(en):
            m.d.sync += self.done.eq(c_valid & c_last)
        m.d.comb += self.done_next.eq(Mux(en, c_valid & c_last, self.done))

        for r in range(R):
            row_ovf = []
            for c in range(C):
                # The contribution: the beat sum, or (groups) the exact group sum, clamped in
                # tile-saturating tiles.
                beat = self.beat[r][c]
                if self._terms == 2:
                    beat = Signal(signed(BEAT_WIDTH), name=f"beat{r}_{c}")
                    m.d.comb += beat.eq(self.beat[r][c] + self.beat2[r][c])
                if not self._tile_k:
                    contrib = beat
                else:
                    # S3: the group's exact sum (only an adder in the group loop); S3b: its clamp
                    # in a stage of its own (compare + mux after a wide carry chain would not fit
                    # in one cycle with the group adder).
                    g = Signal(signed(gw), name=f"g{r}_{c}")
                    gsum = Signal(signed(gw), name=f"gsum{r}_{c}")
                    g_new = Signal(signed(gw), name=f"g_new{r}_{c}")
                    m.d.comb += g_new.eq(Mux(self.in_gstart, 0, g) + beat)
                    with m.If(en & self.in_valid):
                        m.d.sync += g.eq(g_new)
                        with m.If(self.in_gend):
                            m.d.sync += gsum.eq(g_new)
                    contrib = Signal(signed(gw), name=f"contrib{r}_{c}")
                    # the range is +-(2**(b-1) - 1): the compares as bit tests (no carry chain):
                    # gsum > hi  <=>  gsum >= 2**(b-1): non-negative, a bit at b-1 or above set;
                    # gsum < lo  <=>  gsum <= -2**(b-1): negative and not all ones from bit b-1 up,
                    # or exactly -2**(b-1) (all ones from b-1 up, zeros below)
                    tb = self._tile_bits
                    top, low, neg = gsum[tb - 1:], gsum[:tb - 1], gsum[-1]
                    over = Signal(name=f"tover{r}_{c}")
                    under = Signal(name=f"tunder{r}_{c}")
                    m.d.comb += [over.eq(tsat3 & ~neg & top.any()),
                                 under.eq(tsat3 & neg & (~top.all() | ~low.any()))]
                    with m.If(en & v3):
                        with m.If(over):
                            m.d.sync += contrib.eq(hi_t)
                        with m.Elif(under):
                            m.d.sync += contrib.eq(lo_t)
                        with m.Else():
                            m.d.sync += contrib.eq(gsum)

                if not self._saturate:
                    # S4 without saturation (the caller bounds every partial sum): the adder
                    # alone, the tile's first contribution replacing the sum behind it.
                    acc = Signal(signed(W), name=f"acc{r}_{c}")
                    with m.If(en & c_valid):
                        m.d.sync += acc.eq(Mux(c_first, contrib, acc + contrib))
                    m.d.comb += [self.acc[r][c].eq(acc), self.raw[r][c].eq(acc)]
                    continue
                # S4: saturating accumulate, with only an adder in the loop. The register keeps
                # the *unsaturated* sum of the last update, one bit wider than the accumulator
                # (|sat(acc)| <= 2**(W-1) and |contrib| < 2**(W-1), so it cannot wrap); its two top
                # bits differ exactly when that update overflowed. The adder's input is the
                # saturated view of the register: per bit a function of (raw[W], raw[W-1], raw[i]),
                # one LUT4 in front of the carry chain, instead of the clamp (overflow detect + a
                # mux fanning out to every bit) after it. A tile's first contribution replaces the
                # sum after the adder (clear="sum"; iCE40: in the adder's own sum LUT, whose fourth
                # input is free), so the tile-start flag is not in front of the carry chain; or
                # (clear="view"; ECP5) it forces the adder's register input to 0 in the view's LUT
                # (its fourth input), so nothing follows the carry chain in the loop.
                raw = Signal(signed(W + 1), name=f"raw{r}_{c}")
                hist = Signal(name=f"hist{r}_{c}")      # an earlier update of this tile overflowed
                cur = Signal(name=f"cur{r}_{c}")        # the last update overflowed
                view = Signal(signed(W), name=f"sat{r}_{c}")
                m.d.comb += [cur.eq(view_overflowed(raw)), view.eq(saturated_view(raw)),
                             self.acc[r][c].eq(view), self.raw[r][c].eq(raw), self.hist[r][c].eq(hist)]
                total = Signal(signed(W + 1), name=f"total{r}_{c}")
                if self._clear == "view":
                    m.d.comb += total.eq(Mux(c_first, 0, view) + contrib)
                    new_raw = total
                else:
                    m.d.comb += total.eq(view + contrib)
                    new_raw = Mux(c_first, contrib, total)
                with m.If(en & c_valid):
                    m.d.sync += [
                        raw.eq(new_raw),
                        hist.eq(~c_first & (hist | cur)),
                    ]
                ovf = Signal(name=f"ovf{r}_{c}")
                m.d.comb += ovf.eq(hist | cur)
                row_ovf.append(ovf)
            if row_ovf:
                m.d.comb += self.ovf[r].eq(_any(row_ovf))
        return m


def view_overflowed(raw):
    """The update that left ``raw`` (an accumulator register, one bit wider than the accumulator)
    overflowed: its two top bits differ."""
    return raw[-1] ^ raw[-2]


def saturated_view(raw):
    """The saturated accumulator value of ``raw`` (one bit wider): the rail when the last update
    overflowed (positive: ``raw``'s top bit 0 -> 0b0111...; negative: 0b1000...), else ``raw``
    without its top bit. Per bit a function of three register bits: one LUT level."""
    w = len(raw) - 1
    return Mux(view_overflowed(raw), Cat((~raw[w]).replicate(w - 1), raw[w]), raw[:w]).as_signed()


def _any(bits):
    out = bits[0]
    for b in bits[1:]:
        out = out | b
    return out


def check_tile_k(tile_k):
    """``tile_k`` is 0 (no tile-saturating option) or a power of two from 4 to 1024."""
    ok = isinstance(tile_k, int) and not isinstance(tile_k, bool) and (
        tile_k == 0 or (4 <= tile_k <= 1024 and tile_k & (tile_k - 1) == 0))
    if not ok:
        raise ValueError(f"tile_k must be 0 (no tile saturation) or a power of two from 4 to 1024, "
                         f"not {tile_k!r}")
    return tile_k
