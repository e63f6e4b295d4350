"""The systolic array's multiplier placement (``dsp_layout``, :func:`hw.mac.ecp5_dsp.systolic_sites`)."""

import re

import pytest
from amaranth.back import rtlil

from boards.groups import gemm_array_shapes
from hw.gemm.engine import GemmEngine
from hw.mac.ecp5_dsp import _ECP5_85F_DSP_ROWS, _ECP5_85F_DSP_XS, systolic_sites
from hw.mac.systolic import SystolicArray

SITES = {f"X{x}/Y{y}" for x in _ECP5_85F_DSP_XS for y in _ECP5_85F_DSP_ROWS}


def _xy(bel):
    x, y, name = re.fullmatch(r"X(\d+)/Y(\d+)/(MULT18_[0145])", bel).groups()
    return int(x), int(y), name


@pytest.mark.parametrize("shape", gemm_array_shapes("ulx3s"))
def test_every_board_shape_gets_distinct_sites_of_the_device(shape):
    rows, cols = shape
    sites = systolic_sites("lfe5u-85f", rows, cols // 2)
    assert len(sites) == rows and all(len(row) == cols // 2 for row in sites)
    flat = [bel for row in sites for pair in row for bel in pair]
    assert len(set(flat)) == len(flat)
    assert all(f"X{x}/Y{y}" in SITES for x, y, _ in map(_xy, flat))


def test_pairs_sit_in_one_dsp_block_and_neighbours_stay_close():
    sites = systolic_sites("lfe5u-85f", 8, 8)
    xs = _ECP5_85F_DSP_XS
    for r, row in enumerate(sites):
        for p, (b0, b1) in enumerate(row):
            (x0, y0, n0), (x1, y1, n1) = _xy(b0), _xy(b1)
            # The two multipliers of a pair: adjacent sites of one DSP block (bels 0/1 or 4/5).
            assert (y0, x1 - x0, (n0, n1) in {("MULT18_0", "MULT18_1"), ("MULT18_4", "MULT18_5")}) == \
                (y1, 1, True)
            assert y0 == _ECP5_85F_DSP_ROWS[r // 3]
            index = xs.index(x0) // 2
            if p:       # activations pass right: three site pairs (three rows share a DSP row)
                assert index - xs.index(_xy(row[p - 1][0])[0]) // 2 == 3
            if r % 3:   # weights pass down: the neighbouring site pair of the same DSP row
                assert abs(index - xs.index(_xy(sites[r - 1][p][0])[0]) // 2) == 1
            elif r:     # ... or the same x one DSP row further down (a serpentine)
                assert _xy(sites[r - 1][p][0])[0] == x0


def _bels(design):
    text = rtlil.convert(design)
    return re.findall(r'attribute \\BEL "([^"]+)"\n\s*cell \\MULT18X18D', text)


def test_the_array_carries_the_sites_only_when_asked():
    sites = systolic_sites("lfe5u-85f", 2, 2)
    placed = _bels(SystolicArray(2, 4, primitives=True, dsp_layout="lfe5u-85f"))
    assert sorted(placed) == sorted(b for row in sites for pair in row for b in pair)
    assert _bels(SystolicArray(2, 4, primitives=True)) == []
    # The behavioural multipliers (simulation) have no primitive to place.
    assert "MULT18X18D" not in rtlil.convert(SystolicArray(2, 4, primitives=False, dsp_layout="lfe5u-85f"))


@pytest.mark.parametrize("layout, error", [("lfe5u-45f", ValueError), (85, TypeError)])
def test_bad_layout_names_the_parameter(layout, error):
    with pytest.raises(error, match="dsp_layout must be one of lfe5u-85f or None"):
        SystolicArray(2, 4, dsp_layout=layout)
    with pytest.raises(error, match="dsp_layout"):
        GemmEngine(rows=2, cols=4, lanes=2, max_batch=2, dsp_layout=layout)


def test_an_array_too_wide_for_the_dsp_rows_is_refused():
    # 16 rows need six site pairs per DSP row and PE pair: 8 pairs need 48 of the 26.
    with pytest.raises(ValueError, match="26 PE pairs per DSP row"):
        SystolicArray(16, 16, dsp_layout="lfe5u-85f")
