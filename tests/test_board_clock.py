"""PLL clock of the board tops, clock choice and the build report, without a real place-and-route.

The PLL parameters are compared with ``yowasp-icepll`` and ``yowasp-ecppll`` themselves; the build
flow (clock step-down, ``--json`` report, the "does not fit" line) runs the real elaboration with
the tool run replaced by files in the tools' formats (nextpnr's report and log, Yosys' log and
``stat -json``).
"""

import dataclasses
import json
import re
import subprocess
from fractions import Fraction

import pytest
from amaranth.sim import Simulator

import boards.build as build
import boards.top
from boards.clock import LockReset, clock_candidates, ecp5_pll, ice40_pll, next_candidate
from boards.groups import carried_groups, config_for_groups
from boards.synth import parse_utilisation
from boards.toolchain import tool_path
from boards.top import BoardTop
from edgelearn.cli import main
from hw.control.boards import check_board
from hw.uart.baud import divisor_for


@pytest.mark.parametrize("mhz", [48, 50, 60, 33, 17.5, 16.5, 100, 200])
def test_ice40_pll_matches_icepll(mhz, tmp_path):
    out = subprocess.run([tool_path("yowasp-icepll"), "-i", "12", "-o", str(mhz)], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path).stdout
    want = {k: int(v) for k, v in re.findall(r"^(DIVR|DIVF|DIVQ|FILTER_RANGE):\s+(\d+)", out, re.M)}
    achieved = float(re.search(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", out).group(1))
    pll = ice40_pll(12_000_000, int(mhz * 1e6))
    assert pll.params == want
    assert float(pll.f_out) / 1e6 == pytest.approx(achieved, abs=5e-4)


@pytest.mark.parametrize("pll,f_in,f_out,message", [
    (ice40_pll, 12_000_000, 5_000_000, "f_out must be from 16 to 275 MHz for the iCE40 PLL, not 5 MHz"),
    (ecp5_pll, 25_000_000, 5_000_000, "f_out must be from 10 to 400 MHz for the ECP5 PLL, not 5 MHz"),
    (ecp5_pll, 4_000_000, 100_000_000, "f_in must be from 8 to 400 MHz for the ECP5 PLL, not 4 MHz"),
])
def test_pll_refuses_frequencies_out_of_range(pll, f_in, f_out, message):
    with pytest.raises(ValueError, match=message):
        pll(f_in, f_out)


# 125 and 112.5 exact; 133, 48, 46, 31.4159 nearest (48: a tie on the error decided by the VCO
# nearer 600 MHz); 250 and 390 at the VCO's ends; 12 at the bottom of the output range.
@pytest.mark.parametrize("mhz", [125, 112.5, 133, 48, 46, 31.4159, 250, 390, 12])
def test_ecp5_pll_matches_ecppll(mhz, tmp_path):
    proc = subprocess.run([tool_path("yowasp-ecppll"), "-i", "25", "-o", str(mhz), "-f", "pll.v"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    verilog = (tmp_path / "pll.v").read_text()
    names = "CLKI_DIV|CLKFB_DIV|CLKOP_DIV|CLKOP_CPHASE"
    want = {k: int(v) for k, v in re.findall(rf"\.({names})\((\d+)\)", verilog)}
    assert len(want) == 4, verilog
    vco = float(re.search(r"VCO frequency: ([\d.]+)", proc.stdout).group(1))
    pll = ecp5_pll(25_000_000, round(mhz * 1e6))
    assert pll.params == want
    assert pll.f_out == Fraction(pll.f_in * want["CLKFB_DIV"], want["CLKI_DIV"])
    assert float(pll.f_vco) / 1e6 == pytest.approx(vco, rel=1e-5)


def test_ecp5_clock_candidates_are_exact_pll_clocks():
    cands = clock_candidates("ecp5", 25_000_000, 1_000_000, highest=150_000_000, lowest=100_000_000)
    assert cands[0] == 150_000_000 and 125_000_000 in cands and 133_333_333 not in cands
    for f in cands:
        assert ecp5_pll(25_000_000, f).clk_hz == f


@pytest.mark.parametrize("baud", [1_000_000, 3_000_000])
def test_clock_candidates_are_exact_pll_clocks_the_uart_divides(baud):
    cands = clock_candidates("ice40", 12_000_000, baud, highest=72_000_000, lowest=24_000_000)
    assert cands == sorted(cands, reverse=True) and 48_000_000 in cands and cands[0] == 72_000_000
    for f in cands:
        assert ice40_pll(12_000_000, f).clk_hz == f
        d = divisor_for(f, baud)
        assert abs(f / d - baud) / baud <= 0.02
    # 49.5 MHz is a PLL clock but 16.5 cycles per bit at 3 Mbaud: not a candidate there.
    assert (49_500_000 in cands) == (baud == 1_000_000)


def test_next_candidate_keeps_the_margin():
    cands = clock_candidates("ice40", 12_000_000, 1_000_000, highest=48_000_000, lowest=16_000_000)
    assert next_candidate(cands, 60.0) == 48_000_000
    # 40 MHz carries 37.5 MHz with 5 % (39.375) but not 38.25 MHz (40.16).
    assert next_candidate(cands, 40.0) == 37_500_000
    assert next_candidate(cands, 10.0) is None


def test_lock_reset_holds_the_domain_until_lock_plus_delay():
    dut = LockReset(5, domain="sync")
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    trace = []

    async def tb(ctx):
        for lock in [0] * 4 + [1] * 12 + [0] * 4:
            ctx.set(dut.lock, lock)
            await ctx.tick()
            trace.append(ctx.get(dut.rst))

    sim.add_testbench(tb)
    sim.run()
    # lock is sampled high at tick 4: two synchronizer flops and five counted cycles later (tick 11)
    # the reset drops; lock sampled low at tick 16 raises it at tick 18 (synchronizer, register).
    assert trace == [1] * 11 + [0] * 7 + [1] * 2


def _elaborate(top, tmp_path):
    platform = check_board(top.board).make_platform()
    plan = platform.build(top, name="t", build_dir=str(tmp_path), do_build=False)
    return plan.files["t.il"]


@pytest.fixture
def made_cores(monkeypatch):
    """The cores the board tops make, in order (``boards.top.make_core`` watched)."""
    made = []
    real = boards.top.make_core

    def spy(board, **kw):
        core = real(board, **kw)
        made.append(core)
        return core
    monkeypatch.setattr(boards.top, "make_core", spy)
    return made


def test_icebreaker_top_runs_from_the_pll_and_the_core_follows_its_clock(tmp_path, made_cores):
    made = made_cores
    il = _elaborate(BoardTop("icebreaker", clk_hz=50_250_000), tmp_path)
    cell = il[il.index("cell \\SB_PLL40_PAD"):]
    cell = cell[:cell.index("end")]
    assert "parameter \\DIVF 66" in cell and "parameter \\DIVQ 4" in cell and "parameter \\DIVR 0" in cell
    assert "connect \\PACKAGEPIN \\clk12_0__io" in cell
    assert made[0].clk_hz == 50_250_000 and made[0].divisor == 17    # 3 Mbaud at 50.25 MHz (16.75)


def test_ulx3s_top_runs_from_the_pll_when_its_config_names_the_oscillator(tmp_path, made_cores):
    made = made_cores
    # The smallest group (the clock is the board's, not the groups'): a quick elaboration.
    cfg = dataclasses.replace(config_for_groups("ulx3s", "stdp"), osc_hz=25_000_000, clk_hz=125_000_000)
    il = _elaborate(BoardTop("ulx3s", config=cfg), tmp_path)
    cell = il[il.index("cell \\EHXPLLL"):]
    cell = cell[:cell.index("end")]
    for name, value in (("CLKI_DIV", 1), ("CLKFB_DIV", 5), ("CLKOP_DIV", 5), ("CLKOP_CPHASE", 2)):
        assert f"parameter \\{name} {value}\n" in cell
    assert 'parameter \\FEEDBK_PATH "CLKOP"' in cell
    # Feedback from the primary output; the clock pin through an input buffer.
    clkop, clkfb = (re.search(rf"connect \\{pin} (\S+)", cell).group(1) for pin in ("CLKOP", "CLKFB"))
    assert clkop == clkfb
    attrs = il[:il.index("cell \\EHXPLLL")][-400:]
    assert 'attribute \\FREQUENCY_PIN_CLKI "25"' in attrs and 'attribute \\FREQUENCY_PIN_CLKOP "125"' in attrs
    assert made[0].clk_hz == 125_000_000
    # The ULX3S's own config keeps the oscillator's clock: no PLL.
    assert BoardTop("ulx3s").pll is None


def test_ulx3s_gemm_domains_each_get_a_pll_from_the_oscillator(tmp_path):
    """The ULX3S's GEMM group (a small engine: a quick elaboration) in its array and decoder
    domains: sync straight from the oscillator, one EHXPLLL per domain at its configured clock."""
    cfg = config_for_groups("ulx3s", "gemm")
    cfg = dataclasses.replace(cfg, gemm={**cfg.gemm, "rows": 2, "cols": 4, "max_k": 32, "max_batch": 4,
                                         "lanes": 2, "contexts": 1, "stage_depth": 64, "result_depth": 16})
    top = BoardTop("ulx3s", config=cfg)
    assert top.pll is None and set(top.domain_plls) == {"gemm", "dec"}
    # 95 and 65 MHz: 25 MHz x 19 / 5 and x 13 / 5 (the config's clocks, docs/boards.md).
    assert cfg.clocks == {"gemm": 95_000_000, "dec": 65_000_000}
    assert _domain_pll_clocks_in(_elaborate(top, tmp_path)) == {"gemm": 95.0, "dec": 65.0}
    aim = dataclasses.replace(cfg, clocks={"gemm": 125_000_000, "dec": 100_000_000})
    assert _domain_pll_clocks_in(_elaborate(BoardTop("ulx3s", config=aim), tmp_path)) == \
        {"gemm": 125.0, "dec": 100.0}


def test_board_top_refuses_a_clock_its_board_cannot_make():
    with pytest.raises(ValueError, match="clk_hz must be a frequency the PLL makes from 12000000 Hz, "
                                         "not 50000000 \\(nearest: 50250000\\)"):
        BoardTop("icebreaker", clk_hz=50_000_000)
    with pytest.raises(ValueError, match="clk_hz must be the oscillator's 25000000 Hz on ulx3s"):
        BoardTop("ulx3s", clk_hz=50_000_000)


def test_build_refuses_bad_parameters_before_any_tool_runs(monkeypatch):
    monkeypatch.setattr(build, "_run_script", None)     # calling it would fail differently
    with pytest.raises(ValueError, match="max_attempts must be an integer from 1 to 16, not 0"):
        build.build_board("icebreaker", max_attempts=0)
    with pytest.raises(ValueError, match="seed must be an integer from 0 to"):
        build.build_board("icebreaker", seed=-1)
    with pytest.raises(ValueError, match="clk_hz must be a frequency the PLL makes"):
        build.build_board("icebreaker", clk_hz=50_000_000)


def test_group_selection():
    assert carried_groups(config_for_groups("ulx3s")) == ("gemm", "hdqt", "stdp")
    assert carried_groups(config_for_groups("ulx3s", "stdp,gemm")) == ("gemm", "stdp")
    ib = config_for_groups("icebreaker", "hdqt")
    assert carried_groups(ib) == ("hdqt",) and ib.hdqt["backend"] == "ice40"
    with pytest.raises(ValueError, match="groups must be a comma-separated selection of system, gemm, hdqt"):
        config_for_groups("icebreaker", "stdp,mac")
    # "system" may be named (it is always carried); the iCEBreaker's GEMM group keeps its weights in SPRAM.
    ib = config_for_groups("icebreaker", "system,gemm")
    assert carried_groups(ib) == ("gemm",) and ib.gemm["handler"] == "spram"


# --- the build flow with the tool run replaced -----------------------------------------------------

TOP = "edgelearn_icebreaker"

YOSYS_LOG = """\
2.50. Printing statistics.

=== edgelearn_icebreaker ===

       12   SB_RAM40_4K
      449   SB_CARRY
      689   SB_DFFESR
      541   SB_DFFSR
     2142   SB_LUT4

End of script. Logfile hash: 0123456789, CPU: user 1.00s system 0.10s
"""


def _report(fmax, clock_mhz, lc=2964):
    return {"fmax": {"clk": {"achieved": fmax, "constraint": clock_mhz}},
            "utilization": {"ICESTORM_LC": {"available": 5280, "used": lc},
                            "ICESTORM_RAM": {"available": 30, "used": 12},
                            "ICESTORM_DSP": {"available": 8, "used": 0},
                            "ICESTORM_SPRAM": {"available": 4, "used": 0},
                            "ICESTORM_PLL": {"available": 1, "used": 1}}}


def _pll_clock_mhz(build_dir):
    """The PLL output the elaborated design asks for (from its RTLIL)."""
    il = (build_dir / f"{TOP}.il").read_text()
    divf = int(re.search(r"parameter \\DIVF (\d+)", il).group(1))
    divq = int(re.search(r"parameter \\DIVQ (\d+)", il).group(1))
    return 12 * (divf + 1) / 2**divq


@pytest.fixture
def fake_tools(monkeypatch):
    """Replace the build script's run by writing the tools' files; ``fmax(clock_mhz)`` decides timing."""
    runs = []

    def install(fmax):
        def outputs(build_dir):
            clock = _pll_clock_mhz(build_dir)
            runs.append(clock)
            return {"rpt": YOSYS_LOG, "tim": NEXTPNR_DONE,
                    "report.json": json.dumps(_report(fmax(clock), clock)), "bin": b"\0" * 64}
        _replace_tool_run(monkeypatch, outputs)
        return runs
    return install


NEXTPNR_DONE = "Info: Program finished normally.\n"


def _replace_tool_run(monkeypatch, outputs):
    """Replace the build script's run: ``outputs(build_dir)`` gives ``{file suffix: text or bytes}``,
    the files the tools would write (Yosys' log, nextpnr's log and report, the bitstream)."""
    def run(build_dir, script, top_name, say):
        for suffix, content in outputs(build_dir).items():
            path = build_dir / f"{top_name}.{suffix}"
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        return 0
    monkeypatch.setattr(build, "_run_script", run)
    monkeypatch.setattr(build.toolchain, "use_yowasp", lambda: {})


def test_build_steps_the_clock_down_to_what_fmax_carries(fake_tools, tmp_path):
    runs = fake_tools(lambda clock: 40.0 if clock == 48 else 39.5)
    r = build.build_board("icebreaker", build_dir=tmp_path)
    # 40 MHz misses 48 MHz; 36 MHz is the highest PLL clock 40 MHz carries with the 5 % margin at
    # which the divisor makes 3 Mbaud within 2 % (37.5 MHz would give 12.5 cycles per bit).
    assert runs == [48, 36]
    assert r["attempts"] == [{"clock_mhz": 48.0, "fmax_mhz": 40.0}, {"clock_mhz": 36.0, "fmax_mhz": 39.5}]
    assert (r["clock_mhz"], r["target_mhz"], r["fmax_mhz"]) == (36.0, 36.0, 39.5)
    assert r["timing_met"] and r["margin_met"]
    assert r["pll"] == {"DIVR": 0, "DIVF": 47, "DIVQ": 4, "FILTER_RANGE": 1}


def test_build_wants_the_margin_not_only_the_clock(fake_tools, tmp_path):
    runs = fake_tools(lambda clock: 49.0 if clock == 48 else 50.0)
    r = build.build_board("icebreaker", build_dir=tmp_path)
    # 49 MHz meets 48 MHz but not 48 * 1.05; 45.75 MHz is the highest clock it carries with the
    # margin at which the divisor makes 3 Mbaud within 2 % (15 cycles per bit: +1.7 %).
    assert runs == [48, 45.75] and r["clock_mhz"] == 45.75 and r["margin_met"]


NEXTPNR_NO_LEGAL_PLACEMENT = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:    4646/   5280    87%
Info: \t        ICESTORM_RAM:      18/     30    60%

ERROR: Unable to find legal placement for all cells, design is probably at utilisation limit.
"""


def _seed_of_run(build_dir):
    script = next(build_dir.glob("build_*.sh")).read_text()
    found = re.search(r"--seed (\d+)", script)
    return int(found.group(1)) if found else None


@pytest.mark.parametrize("asked, placing, tried", [(5, {7}, [5, 6, 7]), (None, {2}, [None, 2]),
                                                   (1, {9}, [1, 2, 3, 4, 5])])
def test_a_seed_without_a_legal_placement_tries_the_next(monkeypatch, tmp_path, asked, placing, tried):
    # nextpnr places the design only at the seeds in `placing`; at the others it finds no legal
    # placement although the design fits: the build goes on with the next seed and reports it
    runs = []

    def outputs(build_dir):
        seed = _seed_of_run(build_dir)
        runs.append(seed)
        if seed not in placing:
            return {"rpt": YOSYS_LOG, "tim": NEXTPNR_NO_LEGAL_PLACEMENT}
        return {"rpt": YOSYS_LOG, "tim": NEXTPNR_DONE, "report.json": json.dumps(_report(60.0, 48)),
                "bin": b"\0" * 64}
    _replace_tool_run(monkeypatch, outputs)
    if set(tried) & placing:
        r = build.build_board("icebreaker", build_dir=tmp_path, seed=asked)
        assert runs == tried and r["seed"] == tried[-1] and r["unplaced_seeds"] == tried[:-1]
    else:
        msg = f"no legal placement for icebreaker at seed {tried[-1]}"
        with pytest.raises(build.PlacementFailed, match=msg):
            build.build_board("icebreaker", build_dir=tmp_path, seed=asked)
        assert runs == tried


def test_placement_seeds_are_counted_per_clock(monkeypatch, tmp_path):
    # At 48 MHz seeds 1 and 2 find no legal placement and seed 3 places, too slow; at 36 MHz seeds
    # 3-5 find none and seed 6 places: five seeds fail in the build, at most three at one clock.
    runs = []

    def outputs(build_dir):
        seed, clock = _seed_of_run(build_dir), _pll_clock_mhz(build_dir)
        runs.append((clock, seed))
        if (clock, seed) in ((48, 3), (36, 6)):
            return {"rpt": YOSYS_LOG, "tim": NEXTPNR_DONE, "report.json": json.dumps(_report(40.0, clock)),
                    "bin": b"\0" * 64}
        return {"rpt": YOSYS_LOG, "tim": NEXTPNR_NO_LEGAL_PLACEMENT}
    _replace_tool_run(monkeypatch, outputs)
    r = build.build_board("icebreaker", build_dir=tmp_path, seed=1)
    assert runs == [(48, 1), (48, 2), (48, 3), (36, 3), (36, 4), (36, 5), (36, 6)]
    assert r["clock_mhz"] == 36 and r["seed"] == 6 and r["unplaced_seeds"] == [1, 2, 3, 4, 5]


def test_build_stops_after_max_attempts(fake_tools, tmp_path):
    runs = fake_tools(lambda clock: clock * 0.9)
    r = build.build_board("icebreaker", build_dir=tmp_path, max_attempts=2)
    assert len(runs) == 2 and r["timing_met"] is False and r["margin_met"] is False


# --- the ULX3S's engine clocks (a PLL per domain from the 25 MHz oscillator) -----------------------

def _domain_pll_clocks_mhz(build_dir):
    """{domain: MHz} of every ``pll_<domain>`` EHXPLLL in the elaborated design's RTLIL file."""
    return _domain_pll_clocks_in(next(build_dir.glob("*.il")).read_text())


def _domain_pll_clocks_in(il):
    """{domain: MHz} of every ``pll_<domain>`` EHXPLLL (from 25 MHz) in the RTLIL text ``il``."""
    out = {}
    for d, body in re.findall(r"module \\\S+\.pll_(\w+)\n(.*?)\nend\n", il, re.S):
        ri = int(re.search(r"parameter \\CLKI_DIV (\d+)", body).group(1))
        fb = int(re.search(r"parameter \\CLKFB_DIV (\d+)", body).group(1))
        out[d] = 25 * fb / ri
    return out


@pytest.fixture
def fake_ulx3s(monkeypatch):
    """The ULX3S GEMM group aiming at gemm 125 / dec 100 MHz, the tool run replaced; ``fmax(clocks)``
    gives nextpnr's per-clock Fmax for the PLL clocks the elaborated design asks for."""
    runs = []
    aim = {"gemm": 125_000_000, "dec": 100_000_000}
    real = build.config_for_groups
    monkeypatch.setattr(build, "config_for_groups",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), clocks=dict(aim)))

    def install(fmax):
        def outputs(build_dir):
            clocks = _domain_pll_clocks_mhz(build_dir)
            runs.append(clocks)
            got = fmax(clocks)
            report = {"fmax": {"$glbnet$clk": {"achieved": 51.0, "constraint": 25.0},
                               **{f"$glbnet${d}_clk": {"achieved": got[d], "constraint": mhz}
                                  for d, mhz in clocks.items()}},
                      "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 40000},
                                      "MULT18X18D": {"available": 156, "used": 33}}}
            return {"rpt": "End of script.\n", "tim": NEXTPNR_DONE, "report.json": json.dumps(report),
                    "bit": b"\0" * 64}
        _replace_tool_run(monkeypatch, outputs)
        return runs
    return install


def test_ulx3s_build_steps_each_engine_clock_down_to_what_its_fmax_carries(fake_ulx3s, tmp_path):
    # gemm reaches 90 MHz whatever it is asked; dec carries its 100 MHz with the margin.
    runs = fake_ulx3s(lambda clocks: {"gemm": 90.0, "dec": 120.0})
    r = build.build_board("ulx3s", groups="gemm", gemm_array="2x4", build_dir=tmp_path)
    # 85 MHz is the highest clock the PLL makes exactly from 25 MHz below 90 / 1.05 = 85.7 MHz
    # (then 84.375); dec stays.
    assert runs == [{"gemm": 125.0, "dec": 100.0}, {"gemm": 85.0, "dec": 100.0}]
    assert r["clocks_mhz"] == {"gemm": 85.0, "dec": 100.0}
    assert r["fmax_by_domain"] == {"gemm": 90.0, "dec": 120.0}
    assert r["timing_met"] and r["margin_met"]
    assert r["pll_by_domain"]["gemm"]["CLKFB_DIV"] * 25 / r["pll_by_domain"]["gemm"]["CLKI_DIV"] == 85
    assert [a["clocks_mhz"] for a in r["attempts"]] == runs


def test_ulx3s_build_keeps_engine_clocks_that_carry_the_margin(fake_ulx3s, tmp_path):
    runs = fake_ulx3s(lambda clocks: {"gemm": 131.3, "dec": 105.0})
    r = build.build_board("ulx3s", groups="gemm", gemm_array="2x4", build_dir=tmp_path)
    assert runs == [{"gemm": 125.0, "dec": 100.0}]
    assert r["timing_met"] and r["margin_met"] and r["clocks_mhz"] == {"gemm": 125.0, "dec": 100.0}


def test_ulx3s_build_that_misses_on_its_last_attempt_says_so(fake_ulx3s, tmp_path):
    runs = fake_ulx3s(lambda clocks: {d: mhz * 0.9 for d, mhz in clocks.items()})
    r = build.build_board("ulx3s", groups="gemm", gemm_array="2x4", build_dir=tmp_path, max_attempts=1)
    assert runs == [{"gemm": 125.0, "dec": 100.0}]
    assert r["timing_met"] is False and r["margin_met"] is False
    assert r["fmax_by_domain"] == {"gemm": 112.5, "dec": 90.0}


def test_held_clocks_try_the_next_seed_not_a_lower_clock(fake_ulx3s, tmp_path):
    # gemm meets 125 MHz (without the margin) at seed 3 only: the clocks stay, the seed steps.
    seeds = []

    def fmax(clocks):
        seeds.append(_seed_of_run(tmp_path))
        return {"gemm": 126.0 if seeds[-1] == 3 else 118.0, "dec": 105.0}
    runs = fake_ulx3s(fmax)
    r = build.build_board("ulx3s", groups="gemm", gemm_array="2x4", build_dir=tmp_path, hold_clocks=True,
                          max_attempts=5)
    assert runs == [{"gemm": 125.0, "dec": 100.0}] * 3 and seeds == [None, 2, 3]
    assert r["seed"] == 3 and r["timing_met"] and not r["margin_met"]
    assert [(a["seed"], a["fmax_by_domain"]["gemm"]) for a in r["attempts"]] == [(None, 118.0), (2, 118.0),
                                                                                 (3, 126.0)]


def test_held_clocks_that_no_seed_meets_stop_at_max_attempts(fake_ulx3s, tmp_path):
    runs = fake_ulx3s(lambda clocks: {"gemm": 110.0, "dec": 101.0})
    r = build.build_board("ulx3s", groups="gemm", gemm_array="2x4", build_dir=tmp_path, seed=4,
                          hold_clocks=True, max_attempts=2)
    assert runs == [{"gemm": 125.0, "dec": 100.0}] * 2 and r["seed"] == 5 and not r["timing_met"]
    with pytest.raises(TypeError, match="hold_clocks must be"):
        build.build_board("ulx3s", hold_clocks="yes")


def test_engine_domain_fmax_is_found_by_net_name_or_by_its_constraint():
    by_clock = {"$glbnet$clk": {"fmax_mhz": 51.0, "target_mhz": 25.0},
                "$glbnet$crossing_rst0_clk": {"fmax_mhz": 85.1, "target_mhz": 125.0},
                "$glbnet$dec_clk": {"fmax_mhz": 77.9, "target_mhz": 100.0}}
    got = build.domain_fmax(by_clock, {"gemm": 125_000_000, "dec": 100_000_000})
    assert got == {"gemm": 85.1, "dec": 77.9}
    # Two clocks at one constraint and neither named: unknown, not a guess.
    by_clock["$glbnet$x"] = {"fmax_mhz": 99.0, "target_mhz": 125.0}
    assert build.domain_fmax(by_clock, {"gemm": 125_000_000})["gemm"] is None
    assert build.domain_clocks_down({"gemm": 125_000_000}, {"gemm": None}, 25_000_000) is None


def test_engine_domain_fmax_is_found_by_the_pll_output_net(tmp_path):
    """Both engine PLLs at one clock, and nextpnr names each global clock by a local reset domain's
    clock net (as in the ULX3S board with the engine's reset tree): the PLL cells' outputs in
    Yosys' netlist say which is which."""
    netlist = {"modules": {
        "sub": {"attributes": {}, "cells": {}, "netnames": {}},
        "top": {"attributes": {"top": "00000000000000000000000000000001"},
                "cells": {"pll_gemm.pll": {"type": "EHXPLLL", "connections": {"CLKOP": [10], "LOCK": [11]}},
                          "pll_dec.pll": {"type": "EHXPLLL", "connections": {"CLKOP": [20], "LOCK": [21]}}},
                "netnames": {"core.crossing.crossing_rst0_clk": {"bits": [10]},
                             "core.crossing.crossing_dec_rst0_clk": {"bits": [20]},
                             "pll_gemm.lock": {"bits": [11]}}}}}
    (tmp_path / "top.json").write_text(json.dumps(netlist))
    nets = build.pll_clock_nets(tmp_path / "top.json", ["gemm", "dec"])
    assert nets == {"gemm": {"core.crossing.crossing_rst0_clk"},
                    "dec": {"core.crossing.crossing_dec_rst0_clk"}}
    by_clock = {"$glbnet$clk": {"fmax_mhz": 49.5, "target_mhz": 25.0},
                "$glbnet$core.crossing.crossing_dec_rst0_clk": {"fmax_mhz": 80.4, "target_mhz": 65.63},
                "$glbnet$core.crossing.crossing_rst0_clk": {"fmax_mhz": 72.5, "target_mhz": 65.63}}
    clocks = {"gemm": 65_625_000, "dec": 65_625_000}
    assert build.domain_fmax(by_clock, clocks, nets) == {"gemm": 72.5, "dec": 80.4}
    # Without the netlist: one constraint for both, no name to go by; unknown, not a guess.
    assert build.pll_clock_nets(tmp_path / "missing.json", ["gemm"]) == {}
    assert build.domain_fmax(by_clock, clocks) == {"gemm": None, "dec": None}


def test_build_json_reports_groups_resources_clock_and_timing(fake_tools, tmp_path, monkeypatch, capsys):
    fake_tools(lambda clock: 55.0)
    monkeypatch.setattr(build, "_default_build_dir", lambda name: tmp_path)
    assert main(["build", "--board", "icebreaker", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["groups"] == ["system", "stdp"]
    assert {k: r[k] for k in ("lut4", "lc", "lc_available", "ff", "dsp", "bram", "spram")} == \
        {"lut4": 2142, "lc": 2964, "lc_available": 5280, "ff": 689 + 541, "dsp": 0, "bram": 12, "spram": 0}
    assert (r["clock_mhz"], r["fmax_mhz"], r["timing_met"], r["margin_met"]) == (48.0, 55.0, True, True)
    assert main(["build", "--board", "icebreaker"]) == 0
    human = capsys.readouterr().out
    for line in ("groups       system+stdp", "clock_mhz    48.0", "fmax_mhz     55.0", "timing_met   True"):
        assert line in human.splitlines()


def test_build_falls_back_to_abc9_dff_when_yosys_fails_an_assertion(fake_tools, tmp_path, monkeypatch):
    fake_tools(lambda clock: 55.0)
    ran = build._run_script
    synth = []

    def run(build_dir, script, top_name, say):
        synth.append(next(line.strip() for line in (build_dir / f"{top_name}.ys").read_text().splitlines()
                          if "synth_ice40" in line))
        if "-dff" not in synth[-1]:
            (build_dir / f"{top_name}.rpt").write_text(
                "ERROR: Assert `wire' failed in passes/techmap/abc_ops_reintegrate.cc:596.\n")
            return 1
        return ran(build_dir, script, top_name, say)
    monkeypatch.setattr(build, "_run_script", run)
    r = build.build_board("icebreaker", build_dir=tmp_path, max_attempts=1)
    assert synth == [f"synth_ice40  -top {TOP}", f"synth_ice40 -dff -top {TOP}"]
    assert r["abc9"] == "-dff" and r["fmax_mhz"] == 55.0
    assert "abc_ops_reintegrate" in (tmp_path / f"{TOP}.abc9.rpt").read_text()
    # Asked for, -dff runs first; a mapping the family does not have is refused before any run.
    synth.clear()
    assert build.build_board("icebreaker", build_dir=tmp_path, max_attempts=1, abc9="-dff")["abc9"] == "-dff"
    assert synth == [f"synth_ice40 -dff -top {TOP}"]
    with pytest.raises(ValueError, match="abc9 must be one of abc9, -dff for icebreaker, not '-noabc9'"):
        build.build_board("icebreaker", abc9="-noabc9")


def test_ecp5_noabc9_maps_luts_with_classic_abc(tmp_path):
    # Yosys 0.70's synth_ecp5 has no -noabc9: the script stops it before its LUT mapping, maps
    # with ABC's classic flow and runs the rest.
    cfg = config_for_groups("ulx3s", "system")
    build._extract_plan(cfg, BoardTop("ulx3s", config=cfg), tmp_path, 1, None, "-noabc9")
    lines = [line.strip() for line in (tmp_path / f"{cfg.top_name}.ys").read_text().splitlines()]
    i = lines.index(f"synth_ecp5 -top {cfg.top_name} -run begin:map_luts")
    assert lines[i + 1:i + 5] == ["techmap -map +/lattice/latches_map.v", "abc -dress -lut 4:7", "clean",
                                  f"synth_ecp5 -run map_cells: -top {cfg.top_name}"]
    assert build.ABC9_OPTIONS["ecp5"][:2] == ("abc9", "-noabc9")


def test_build_reports_a_yosys_failure_without_an_assertion_at_once(fake_tools, tmp_path, monkeypatch):
    runs = []

    def run(build_dir, script, top_name, say):
        runs.append(1)
        (build_dir / f"{top_name}.rpt").write_text("ERROR: Module `x' not found.\n")
        return 1
    monkeypatch.setattr(build, "_run_script", run)
    monkeypatch.setattr(build.toolchain, "use_yowasp", lambda: {})
    with pytest.raises(build.BuildError, match="yosys did not finish synthesis of icebreaker"):
        build.build_board("icebreaker", build_dir=tmp_path)
    assert runs == [1]


NEXTPNR_OVERFULL = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:    7140/   5280   135%
Info: \t        ICESTORM_RAM:      40/     30   133%
Info: \t               SB_IO:       5/     39    12%
Info: \t        ICESTORM_DSP:       6/      8    75%
Info: \t      ICESTORM_SPRAM:       0/      4     0%

ERROR: Unable to place cell 'x_LC', no BELs remaining to implement cell type 'ICESTORM_LC'
"""

# Yosys `stat -json` of the design synthesized without flattening (the parts that matter here).
HIERARCHY_STAT = {"modules": {
    f"\\{TOP}": {"num_cells_by_type": {"SB_IO": 4, "SB_PLL40_PAD": 1, f"{TOP}.core": 1}},
    f"\\{TOP}.core": {"num_cells_by_type": {"SB_LUT4": 900, "SB_DFF": 600, f"{TOP}.core.group1": 1}},
    f"\\{TOP}.core.group1": {"num_cells_by_type": {"SB_LUT4": 3000, "SB_DFFE": 1000, "SB_MAC16": 2,
                                                   "SB_RAM40_4K": 8}},
    f"\\{TOP}.core.group1.decoder": {"num_cells_by_type": {"SB_LUT4": 1500, "SB_DFF": 500, "$scopeinfo": 3}},
    f"\\{TOP}.core.group2": {"num_cells_by_type": {"SB_LUT4": 1200, "SB_DFF": 800, "SB_MAC16": 4,
                                                   "SB_RAM40_4K": 10}},
    f"\\{TOP}.core.group3": {"num_cells_by_type": {"SB_LUT4": 1500, "SB_DFFESR": 900, "SB_RAM40_4K": 22}},
}}


def test_groups_that_fit_are_estimated_from_each_groups_share():
    cfg = config_for_groups("icebreaker", "gemm,hdqt,stdp")
    costs = build.group_costs(HIERARCHY_STAT, TOP, cfg)
    assert costs["gemm"] == {"SB_LUT4": 4500, "SB_DFFE": 1000, "SB_DFF": 500, "SB_MAC16": 2,
                             "SB_RAM40_4K": 8, "scopeinfo": 3}
    assert costs["base"]["SB_LUT4"] == 900 and costs["stdp"]["SB_RAM40_4K"] == 22
    # LC scale 7140 / 11900 = 0.6: base 900, gemm 3600, hdqt 1200, stdp 1440 of 5280; RAM 0/8/10/22
    # of 30. gemm+hdqt (5700 LC) and gemm+stdp (5940 LC) have too many logic cells, hdqt+stdp too many
    # block RAMs (32); each group alone fits.
    fitting = build.groups_that_fit(costs, parse_utilisation(NEXTPNR_OVERFULL), "ice40")
    assert fitting == [("gemm",), ("hdqt",), ("stdp",)]


def test_groups_that_do_not_fit_give_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    def run(build_dir, script, top_name, say):
        (build_dir / f"{top_name}.rpt").write_text(YOSYS_LOG)
        (build_dir / f"{top_name}.tim").write_text(NEXTPNR_OVERFULL)
        return 1
    monkeypatch.setattr(build, "_run_script", run)
    monkeypatch.setattr(build, "_hierarchy_stat", lambda *a: HIERARCHY_STAT)
    monkeypatch.setattr(build.toolchain, "use_yowasp", lambda: {})
    monkeypatch.setattr(build, "_default_build_dir", lambda name: tmp_path)
    assert main(["build", "--board", "icebreaker", "--groups", "gemm,hdqt,stdp"]) == 1
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if not ln.startswith("[")]   # progress lines start with a time
    assert out == "" and len(lines) == 1
    assert lines[0] == (
        "edgelearn: error: GroupsDoNotFit: icebreaker with groups gemm+hdqt+stdp does not fit the iCE40UP5K: "
        "ICESTORM_LC 7140/5280 (135 %), ICESTORM_RAM 40/30 (133 %), ICESTORM_DSP 6/8 (75 %); "
        f"groups that would fit (estimated): gemm; hdqt; stdp; see {tmp_path / (TOP + '.tim')}")


def test_hierarchy_estimate_falls_back_to_yosys_lut_mapping_when_abc9_fails(tmp_path, monkeypatch):
    scripts = []

    def run_yosys(script, *, log, cwd):
        scripts.append(script)
        if "-noabc" not in script:
            raise build.toolchain.ToolError("yosys did not finish (ABC9 assertion)")
        (cwd / "hierarchy_stat.json").write_text(json.dumps(HIERARCHY_STAT))
        return ""
    monkeypatch.setattr(build.toolchain, "run_yosys", run_yosys)
    (tmp_path / f"{TOP}.il").write_text("".join(f"module \\{n}\nend\n" for n in (
        TOP, f"{TOP}.core", f"{TOP}.core.group1", f"{TOP}.core.group1.decoder", f"{TOP}.core.group3")))
    assert build._hierarchy_stat(tmp_path, TOP, "ice40") == HIERARCHY_STAT
    assert len(scripts) == 2 and f"synth_ice40 -top {TOP}" in scripts[0] and "-noabc" in scripts[1]
    # each group's subtree one module, the rest flattened as in the build
    kept = [ln.split()[-1] for ln in scripts[0].splitlines() if "keep_hierarchy" in ln]
    assert kept == [f"\\{TOP}.core.group1", f"\\{TOP}.core.group3"] and "-noflatten" not in scripts[0]
