"""Board builds (synthesis + place-and-route with YoWASP) and the flash path without a board."""

import os
import re
from pathlib import Path

import pytest

from boards.build import BOARDS, build_board, parse_reports, write_build_tree
from boards.clock import clock_candidates, next_candidate
from boards.flash import FlashError, flash_board
from hw.control.boards import check_board


def _check_result(r, board, device):
    assert r["board"] == board and r["device"] == device
    bit = Path(r["bitstream"])
    assert bit.exists() and bit.stat().st_size > 10_000
    assert r["lut4"] > 100 and r["ff"] > 50 and r["bram"] >= 2
    assert r["fmax_mhz"] > 0
    assert r["timing_met"] == (r["fmax_mhz"] >= r["target_mhz"])
    assert r["timing_met"], f"{board} misses timing: {r['fmax_mhz']} MHz < {r['target_mhz']} MHz"


def test_build_icebreaker(tmp_path):
    steps = []
    r = build_board("icebreaker", build_dir=tmp_path, progress=steps.append)
    _check_result(r, "icebreaker", "iCE40UP5K")
    # The PLL clock: the board's clk_hz, or the highest PLL clock the previous run's Fmax carries
    # with the margin, which the final run meets.
    cfg = check_board("icebreaker")
    assert r["pll"] is not None and r["margin_met"] and r["target_mhz"] == r["clock_mhz"]
    assert r["attempts"][0]["clock_mhz"] * 1e6 == cfg.clk_hz
    assert r["attempts"][-1]["clock_mhz"] == r["clock_mhz"]
    if len(r["attempts"]) > 1:
        cands = clock_candidates("ice40", cfg.osc_hz, cfg.baud, highest=cfg.clk_hz, lowest=0)
        assert r["clock_mhz"] * 1e6 == next_candidate(cands, r["attempts"][-2]["fmax_mhz"])
    assert r["lc"] <= 5280 * 0.9, "the iCEBreaker design must leave a 10% margin"
    assert any("synthesis" in s for s in steps)
    # The report is read back from the tools' files, not from their stdout.
    again = parse_reports(tmp_path, "edgelearn_icebreaker", "ice40", r["clock_mhz"])
    assert again["lut4"] == r["lut4"] and again["fmax_mhz"] == r["fmax_mhz"]


@pytest.mark.slow
def test_build_ulx3s(tmp_path):
    r = build_board("ulx3s", build_dir=tmp_path)
    _check_result(r, "ulx3s", "LFE5U-85F")
    assert r["target_mhz"] == 25.0


def _nextpnr_line(script):
    lines = [line for line in script.read_text().splitlines() if line.startswith('"$NEXTPNR_')]
    assert len(lines) == 1, lines
    return lines[0]


def test_build_script_router(tmp_path):
    # The ULX3S build routes with router2 (its config); the iCEBreaker's options stay nextpnr's
    # defaults; an explicit router overrides the board's.
    ulx3s = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "u", seed=1))
    assert " --seed 1 --router router2 " in ulx3s
    ice = _nextpnr_line(write_build_tree("icebreaker", groups="system", build_dir=tmp_path / "i", seed=1))
    assert ice.startswith('"$NEXTPNR_ICE40" --quiet --timing-allow-fail '
                          "--report edgelearn_icebreaker.report.json --seed 1 --log ")
    assert "--router" not in ice
    ulx3s_r1 = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "u1",
                                              router="router1"))
    assert " --router router1 " in ulx3s_r1 and "router2" not in ulx3s_r1


@pytest.mark.parametrize("option, value, message", [
    ("router", "router3", "router must be None, 'router1' or 'router2', not"),
    ("router", "", "router must be None"), ("router", 2, "router must be None"),
    ("placer", "analytic", "placer must be None, 'heap', 'sa', 'static', not"),
    ("placer", "", "placer must be None"), ("placer", 2, "placer must be None")])
def test_build_unknown_router_or_placer(option, value, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        build_board("ulx3s", build_dir=tmp_path, **{option: value})
    assert not any(tmp_path.iterdir()), f"a bad {option} must fail before anything is written"


def test_build_script_placer(tmp_path):
    # The ULX3S build places with nextpnr's static placer (its config); the iCEBreaker's stays
    # nextpnr's default; an explicit placer overrides the board's.
    ulx3s = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "u", seed=1))
    assert " --router router2 --placer static " in ulx3s
    ice = _nextpnr_line(write_build_tree("icebreaker", groups="system", build_dir=tmp_path / "i", seed=1))
    assert "--placer" not in ice
    ulx3s_heap = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "h",
                                                placer="heap"))
    assert " --placer heap " in ulx3s_heap and "static" not in ulx3s_heap


def test_build_script_timing_ripup(tmp_path):
    # The ULX3S build's router rips up critical nets (its config); the iCEBreaker's does not.
    ulx3s = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "u", seed=1))
    assert " --tmg-ripup " in ulx3s
    ice = _nextpnr_line(write_build_tree("icebreaker", groups="system", build_dir=tmp_path / "i", seed=1))
    assert "--tmg-ripup" not in ice
    # A build aimed above reach turns it off (router2 would rip up until its iteration 1500).
    off = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "o", seed=1,
                                         timing_ripup=False))
    assert "--tmg-ripup" not in off
    on = _nextpnr_line(write_build_tree("icebreaker", groups="system", build_dir=tmp_path / "n", seed=1,
                                        timing_ripup=True))
    assert " --tmg-ripup" in on
    with pytest.raises(TypeError, match="timing_ripup must be True, False or None, not 1"):
        build_board("ulx3s", timing_ripup=1)


def _pll_outputs(script):
    """The CLKOP frequencies (MHz, as text) of the PLLs in the build tree of ``script``."""
    il = next(script.parent.glob("*.il")).read_text()
    return re.findall(r'attribute \\FREQUENCY_PIN_CLKOP "([0-9.]+)"', il)


def test_build_engine_clocks(tmp_path):
    # The engine's PLL clocks named for a build replace the board's for those domains only.
    plain = _pll_outputs(write_build_tree("ulx3s", build_dir=tmp_path / "p", seed=1))
    assert sorted(plain) == ["65", "95"]
    asked = _pll_outputs(write_build_tree("ulx3s", build_dir=tmp_path / "a", seed=1,
                                          engine_clocks={"gemm": 125_000_000}))
    assert sorted(asked) == ["125", "65"]
    with pytest.raises(ValueError, match=r"engine_clocks\['gemm'\] must be a clock the PLL makes from 25 "
                       r"MHz exactly, not 123.457 MHz \(the nearest: 125 MHz\)"):
        build_board("ulx3s", engine_clocks={"gemm": 123_456_789})
    with pytest.raises(ValueError, match="engine_clocks domain must be one of gemm, dec, not 'array'"):
        build_board("ulx3s", engine_clocks={"array": 125_000_000})
    with pytest.raises(ValueError, match="engine_clocks domain must be one of .none"):
        build_board("icebreaker", engine_clocks={"gemm": 48_000_000})
    with pytest.raises(TypeError, match=r"engine_clocks\['dec'\] must be an int .Hz., not 65.0"):
        build_board("ulx3s", engine_clocks={"dec": 65.0})
    with pytest.raises(TypeError, match="engine_clocks must be a dict"):
        build_board("ulx3s", engine_clocks=[("gemm", 125_000_000)])


def test_build_script_detailed_timing(tmp_path):
    # Only on request does nextpnr write every endpoint's arrival into its report (boards.timing).
    plain = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "p", seed=1))
    assert "--detailed-timing-report" not in plain
    detailed = _nextpnr_line(write_build_tree("ulx3s", groups="system", build_dir=tmp_path / "d", seed=1,
                                              detailed_timing=True))
    assert " --detailed-timing-report" in detailed
    with pytest.raises(TypeError, match="detailed_timing must be True or False, not 'yes'"):
        build_board("icebreaker", detailed_timing="yes")


def test_unknown_board():
    assert set(BOARDS) == {"icebreaker", "ulx3s"}
    with pytest.raises(ValueError, match="board must be one of icebreaker, ulx3s, not 'de10'"):
        build_board("de10")
    with pytest.raises(ValueError, match="board must be one of icebreaker, ulx3s, not 'de10'"):
        flash_board("de10")


@pytest.mark.skipif(os.environ.get("EDGELEARN_HW") == "1", reason="a board is attached")
def test_flash_without_board_is_one_line(tmp_path):
    fake = tmp_path / "x.bin"
    fake.write_bytes(b"\xff" * 64)
    with pytest.raises(FlashError) as e:
        flash_board("icebreaker", fake)
    msg = str(e.value)
    assert "\n" not in msg and "iCEBreaker" in msg


def test_flash_missing_bitstream(tmp_path):
    with pytest.raises(FlashError, match="does not exist"):
        flash_board("ulx3s", tmp_path / "none.bit")
