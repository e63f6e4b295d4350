"""Out-of-context synthesis and place-and-route through YoWASP: a real smoke build runs in CI."""

import json
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from boards import synth
from boards.synth import DEVICES, DoesNotFit, RegisterWrapper, parse_utilisation, synthesize, yosys_cells
from boards.toolchain import ABC9_OPTIONS, ToolError, lut_mapping, run_yosys
from edgelearn.cli import main
from hw.lfsr import GaloisLFSR


class Adder(wiring.Component):
    a: In(8)
    b: In(8)
    s: Out(9)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.s.eq(self.a + self.b)
        return m


def test_wrapper_counts_every_port_bit():
    w = RegisterWrapper(Adder())
    assert (w.in_bits, w.out_bits) == (16, 9)


class StructStream(wiring.Component):
    i: In(stream.Signature(data.StructLayout({"a": 3, "b": signed(5)})))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.o.payload.eq(self.i.payload.a + self.i.payload.b), self.o.valid.eq(self.i.valid),
                     self.i.ready.eq(self.o.ready)]
        return m


def test_wrapper_takes_struct_payloads():
    w = RegisterWrapper(StructStream())
    # in: payload 8 + valid 1 + o.ready 1; out: i.ready 1 + payload 8 + valid 1
    assert (w.in_bits, w.out_bits) == (10, 10)
    assert "module \\top" in rtlil.convert(w, name="top")


def test_up5k_smoke_build(tmp_path, monkeypatch):
    r = synthesize(GaloisLFSR(width=16), device="up5k", name="lfsr", build_dir=tmp_path, use_cache=False)
    # A 16-bit LFSR has 16 state flip-flops of its own; the wrapper's 35 are counted apart.
    assert r["ff"] == 16
    assert r["wrapper_ff"] == 35
    assert r["total"]["ff"] == 16 + 35
    assert 16 <= r["lut4"] < 200
    assert r["dsp"] == r["bram"] == r["spram"] == 0
    assert r["lc"] >= r["lut4"]
    assert r["fmax_mhz"] > 0
    assert r["timing_met"] == (r["fmax_mhz"] >= DEVICES["up5k"]["target_mhz"])
    assert json.loads((Path(r["dir"]) / "result.json").read_text()) == r

    # Another seed re-runs nextpnr only: Yosys' netlist comes from the design's entry in yosys/.
    def no_yosys(*args):
        raise AssertionError("Yosys ran again for an unchanged design")
    monkeypatch.setattr(synth, "_run_synth", no_yosys)
    r2 = synthesize(GaloisLFSR(width=16), device="up5k", name="lfsr", build_dir=tmp_path, seed=2)
    assert r2["dir"] != r["dir"]
    assert (r2["lut4"], r2["ff"], r2["abc9"]) == (r["lut4"], r["ff"], r["abc9"])
    # Yosys' cells alone (no nextpnr), from the same entry: the block's counts of the build.
    cells = yosys_cells(GaloisLFSR(width=16), device="up5k", name="lfsr", build_dir=tmp_path)
    assert cells == {k: r[k] for k in cells}
    with pytest.raises(ValueError, match="device must be one of"):
        yosys_cells(GaloisLFSR(width=16), device="xc7")


#: The Yosys script's lines from the synth command on, of the first fallback mapping per device.
FALLBACK_SYNTH = {
    # synth_ecp5 of Yosys 0.70 has no -noabc9 (it maps with abc9 whatever the option): stopped before
    # its LUT mapping, ABC's classic flow maps the LUTs, then synth_ecp5 runs the rest.
    "ecp5-85f": ["synth_ecp5 -top top -run begin:map_luts", "techmap -map +/lattice/latches_map.v",
                 "abc -dress -lut 4:7", "clean", "synth_ecp5 -run map_cells: -top top -json synth.json",
                 "tee -q -o stat.json stat -json"],
    "up5k": ["synth_ice40 -dsp -dff -top top -json synth.json", "tee -q -o stat.json stat -json"],
}


@pytest.mark.parametrize("device", list(FALLBACK_SYNTH))
def test_failed_abc9_run_falls_back_to_the_board_builds_mapping(device, tmp_path, monkeypatch):
    # No tool runs: the first Yosys run (abc9) fails as Yosys 0.70's assertion does; the second
    # must be the first fallback of boards.toolchain.ABC9_OPTIONS, as board builds run it.
    scripts = []

    def fake_yosys(script, *, log, cwd, timeout=None):
        scripts.append(script.splitlines())
        if len(scripts) == 1:
            raise ToolError("yosys did not finish (last log line: 'ERROR: Assert ...')")
        stat = {"modules": {"\\top": {"num_cells_by_type": {}},
                            "\\top.dut": {"num_cells_by_type": {"LUT4": 7, "SB_LUT4": 7}}}}
        for f, text in (("synth.json", "{}"), ("stat.json", json.dumps(stat)),
                        ("yosys.log", "End of script\n")):
            (Path(cwd) / f).write_text(text)
        return "End of script\n"

    monkeypatch.setattr(synth, "run_yosys", fake_yosys)
    assert yosys_cells(GaloisLFSR(width=16), device=device, build_dir=tmp_path)["lut4"] == 7
    first, fallback = scripts
    family = DEVICES[device]["family"]
    assert [sorted(ln.split()) for ln in first if ln.startswith("synth_")] == \
        [sorted(f"synth_{family} {'-dsp ' if family == 'ice40' else ''}-top top -json synth.json".split())]
    start = next(i for i, ln in enumerate(fallback) if ln.startswith("synth_"))
    # (options in any order)
    tokens = [sorted(ln.split()) for ln in FALLBACK_SYNTH[device]]
    assert [sorted(ln.split()) for ln in fallback[start:]] == tokens
    cached, = (tmp_path / "yosys").glob(f"{device}-*/abc9.txt")
    assert cached.read_text().strip() == ABC9_OPTIONS[family][1]


def test_yosys_cached_tries_only_the_mappings_asked_for(tmp_path, monkeypatch):
    """``options`` restricts the mappings (a bench pins one); a failure of the last is raised, and
    each list of mappings has its own cache entry."""
    tried = []

    def fake(dev, abc9, dut_module, work, timeout=None):
        tried.append(abc9)
        if abc9 == "abc9":
            raise ToolError("assertion")
        for f in ("synth.json", "stat.json", "yosys.log"):
            (Path(work) / f).write_text("{}")
    monkeypatch.setattr(synth, "_run_synth", fake)
    work = tmp_path / "w"
    work.mkdir()
    args = ("design", "ecp5-85f", "t", work, tmp_path, True, lambda msg: None)
    assert synth.yosys_cached(*args, options=("-noabc9",)) == "-noabc9"
    assert synth.yosys_cached(*args) == "-noabc9"      # default list: abc9 fails, -noabc9 runs
    assert tried == ["-noabc9", "abc9", "-noabc9"]
    assert synth.yosys_cached(*args, options=("-noabc9",)) == "-noabc9" and len(tried) == 3   # cached
    with pytest.raises(ToolError):
        synth.yosys_cached("other", *args[1:], options=("abc9",))


def test_lut_mapping_refuses_a_mapping_the_family_does_not_have():
    with pytest.raises(ValueError, match="option must be one of abc9, -dff for ice40, not '-noabc9'"):
        lut_mapping("ice40", "top", "-noabc9")
    with pytest.raises(ValueError, match="family must be one of ecp5, ice40, not 'gowin'"):
        lut_mapping("gowin", "top")


def test_synth_command_prints_table(capsys):
    assert main(["synth", "lfsr", "-p", "width=8"]) == 0
    out = capsys.readouterr().out
    assert "LUT4" in out and "Fmax MHz" in out and "lfsr" in out


@pytest.mark.slow
def test_ecp5_build(tmp_path):
    r = synthesize(GaloisLFSR(width=16), device="ecp5-85f", name="lfsr", build_dir=tmp_path, use_cache=False)
    assert r["ff"] == 16 and r["fmax_mhz"] > 0 and r["slices"] > 0


def test_ecp5_build_with_router2(tmp_path):
    r = synthesize(GaloisLFSR(width=16), device="ecp5-85f", name="lfsr", build_dir=tmp_path, router="router2")
    assert r["router"] == "router2" and r["ff"] == 16 and r["fmax_mhz"] > 0
    log = (Path(r["dir"]) / "pnr.log").read_text()
    assert "Router2" in log
    # The clock pad sits on the clock-capable pin the LPF names (G2 is bel X0/Y47/PIOA).
    assert "pin 'clk$tr_io' constrained to Bel 'X0/Y47/PIOA'" in log


@pytest.mark.slow
def test_ecp5_build_with_nextpnr_options(tmp_path):
    opts = ("--placer-heap-beta", "0.7")
    r = synthesize(GaloisLFSR(width=16), device="ecp5-85f", name="lfsr", build_dir=tmp_path, router="router2",
                   nextpnr_options=opts)
    assert r["nextpnr_options"] == list(opts) and r["ff"] == 16 and r["fmax_mhz"] > 0
    plain = synthesize(GaloisLFSR(width=16), device="ecp5-85f", name="lfsr", build_dir=tmp_path,
                       router="router2")
    assert plain["dir"] != r["dir"] and plain["nextpnr_options"] == []


@pytest.mark.parametrize("options", ["--placer-heap-beta 0.7", [0.7], ("--seed", 2)])
def test_bad_nextpnr_options(options):
    with pytest.raises(TypeError, match="nextpnr_options must be a sequence of strings, not"):
        synthesize(GaloisLFSR(), device="ecp5-85f", nextpnr_options=options)


@pytest.mark.parametrize("router", ["router3", 2, ""])
def test_unknown_router(router):
    with pytest.raises(ValueError, match="router must be None, 'router1' or 'router2', not"):
        synthesize(GaloisLFSR(), device="ecp5-85f", router=router)


def test_yosys_failure_is_reported_with_its_log(tmp_path):
    with pytest.raises(ToolError, match="yosys did not finish .* see .*yosys.log"):
        run_yosys("read_rtlil does-not-exist.il\n", log=tmp_path / "yosys.log", cwd=tmp_path)


def test_unknown_device():
    with pytest.raises(ValueError, match="device must be one of 'up5k', 'ecp5-85f', not 'xc7'"):
        synthesize(GaloisLFSR(), device="xc7")


def test_missed_clock_target_is_reported_not_raised(tmp_path):
    r = synthesize(GaloisLFSR(width=8), device="up5k", name="lfsr", freq_mhz=1000, build_dir=tmp_path)
    assert r["timing_met"] is False
    assert 0 < r["fmax_mhz"] < 1000


NEXTPNR_OVERFULL_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:    6902/   5280   130%
Info: \t        ICESTORM_RAM:       6/     30    20%
Info: \t        ICESTORM_DSP:       0/      8     0%

ERROR: Unable to place cell 'x_LC', no BELs remaining to implement cell type 'ICESTORM_LC'
"""


def test_utilisation_is_parsed_from_the_nextpnr_log():
    assert parse_utilisation(NEXTPNR_OVERFULL_LOG) == {
        "ICESTORM_LC": (6902, 5280), "ICESTORM_RAM": (6, 30), "ICESTORM_DSP": (0, 8)}


def test_does_not_fit_names_the_exhausted_resource():
    e = DoesNotFit("big", "iCE40UP5K", parse_utilisation(NEXTPNR_OVERFULL_LOG), "b/pnr.log")
    assert isinstance(e, ToolError)
    assert e.over == ["ICESTORM_LC"]
    assert str(e) == "big does not fit the iCE40UP5K: ICESTORM_LC 6902/5280 (130 %); see b/pnr.log"
