"""``edgelearn sweep``: points on a 2-worker Dask LocalCluster, failures as rows, restart from the result
cache, lost workers retried, bad arguments as one line before anything is submitted."""

import json
import logging
import os
import uuid

import pytest
from distributed import LocalCluster

from boards.synth import DoesNotFit
from edgelearn import cli, sweep
from hw.blocks import get_block


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    """One synthesis directory for the module: the failing-point test reuses the Yosys netlist of the
    4-point test's width 8 (only nextpnr runs again)."""
    return tmp_path_factory.mktemp("synth")


def _points(widths, seeds, freq=None):
    return sweep.expand_points(get_block("lfsr"), {"width": list(widths)}, ["up5k"], list(seeds), freq)


def fake_point(point, log_dir):
    """A point function without tools: logs its call (one file per call) and returns a row computed
    from the point alone. Width 13 fails with an exception, as a flaky tool would, on its first call
    only if the file ``flaky`` exists in ``log_dir``."""
    (log_dir / f"call-{point['params']['width']}-{point['seed']}-{uuid.uuid4().hex}").touch()
    if point["params"]["width"] == 13 and (log_dir / "flaky").exists():
        raise RuntimeError("flaky tool")
    w = point["params"]["width"]
    return {"block": point["block"], **point["params"], "device": point["device"], "seed": point["seed"],
            "status": "ok", "reason": "", "lut4": 3 * w, "ff": w, "dsp": 0, "bram": 0, "fmax_mhz": 200.0 - w,
            "target_mhz": 48, "timing_met": True}


def dying_point(point, log_dir):
    """Kills its worker process the first time it runs (a lost worker); a row after that."""
    marker = log_dir / "died"
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return fake_point(point, log_dir)


def failing_point(point, synth_dir):
    """The real point function, except that seed 3 raises inside the task."""
    if point["seed"] == 3:
        raise RuntimeError("tool crashed")
    return sweep.run_point(point, synth_dir)


def _calls(log_dir):
    return sorted(p.name.rsplit("-", 1)[0] for p in log_dir.glob("call-*"))


def test_four_point_sweep_on_two_workers(cluster, synth_dir, tmp_path):
    points = _points([8, 12], [1, 2])
    assert len(points) == 4
    rows = sweep.run_sweep(points, scheduler=cluster.scheduler_address, cache_dir=tmp_path / "cache",
                           synth_dir=synth_dir, progress=None)
    assert [(r["width"], r["seed"]) for r in rows] == [(8, 1), (8, 2), (12, 1), (12, 2)]
    for r in rows:
        assert r["status"] in ("ok", "timing missed"), r
        assert r["ff"] == r["width"]          # the LFSR's state register, nothing else clocked
        assert r["lut4"] > 0 and r["fmax_mhz"] > 0
        assert r["timing_met"] == (r["fmax_mhz"] >= 48)
    # Seeds share the netlist (same cells) but are separate place-and-route runs.
    assert rows[0]["lut4"] == rows[1]["lut4"] and rows[2]["lut4"] == rows[3]["lut4"]
    assert rows[2]["lut4"] > rows[0]["lut4"]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 4

    sweep.write_outputs(rows, tmp_path / "out", ["width"])
    csv_lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("block,width,device,seed,status")
    assert len(csv_lines) == 5
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == rows
    assert (tmp_path / "out" / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failing_points_are_rows(cluster, synth_dir, tmp_path):
    """Timing missed (a real nextpnr run at 900 MHz) and an exception inside the task are rows with
    their reasons; the other point still has its figures."""
    points = _points([8], [1, 3], freq=900) + _points([8], [1])
    rows = sweep.run_sweep(points, scheduler=cluster.scheduler_address, cache_dir=tmp_path / "cache",
                           synth_dir=synth_dir, point_fn=failing_point, retries=0, progress=None)
    missed, crashed, ok = rows
    assert missed["status"] == "timing missed" and missed["fmax_mhz"] < 900
    assert missed["reason"] == f"Fmax {missed['fmax_mhz']} MHz < 900 MHz"
    assert crashed["status"] == "error" and "tool crashed" in crashed["reason"]
    assert ok["status"] == "ok" and ok["timing_met"] and ok["fmax_mhz"] >= 48
    # Only the deterministic results are cached: the crash is run again on a restart.
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_does_not_fit_is_a_row(monkeypatch):
    def no_room(*args, **kwargs):
        usage = {"ICESTORM_LC": (6000, 5280), "ICESTORM_RAM": (2, 30)}
        raise DoesNotFit("lfsr", "iCE40UP5K", usage, "pnr.log")
    monkeypatch.setattr("boards.synth.synthesize", no_room)
    row = sweep.run_point(_points([8], [1])[0])
    assert row["status"] == "does not fit"
    assert row["reason"] == "ICESTORM_LC 6000/5280"
    assert row["width"] == 8 and row["seed"] == 1


def test_restarted_sweep_redoes_only_missing_points(cluster, tmp_path):
    points = _points([8, 12, 13, 16], [1])
    cache = tmp_path / "cache"
    (tmp_path / "flaky").touch()
    first = sweep.run_sweep(points, dhash="d1", scheduler=cluster.scheduler_address, cache_dir=cache,
                            synth_dir=tmp_path, point_fn=fake_point, retries=0, progress=None)
    assert [r["status"] for r in first] == ["ok", "ok", "error", "ok"]
    assert _calls(tmp_path) == ["call-12-1", "call-13-1", "call-16-1", "call-8-1"]

    (tmp_path / "flaky").unlink()
    for p in tmp_path.glob("call-*"):
        p.unlink()
    second = sweep.run_sweep(points, dhash="d1", scheduler=cluster.scheduler_address, cache_dir=cache,
                             synth_dir=tmp_path, point_fn=fake_point, retries=0, progress=None)
    assert _calls(tmp_path) == ["call-13-1"]
    assert [r["cached"] for r in second] == [True, True, False, True]
    assert [r["lut4"] for r in second] == [24, 36, 39, 48]
    strip = [{k: v for k, v in r.items() if k != "cached"} for r in second]
    assert [strip[i] for i in (0, 1, 3)] == [{k: v for k, v in first[i].items() if k != "cached"}
                                            for i in (0, 1, 3)]

    # Another design hash (changed source or tool version) is another cache key: all run again.
    for p in tmp_path.glob("call-*"):
        p.unlink()
    sweep.run_sweep(points, dhash="d2", scheduler=cluster.scheduler_address, cache_dir=cache,
                    synth_dir=tmp_path, point_fn=fake_point, progress=None)
    assert len(_calls(tmp_path)) == 4


def test_lost_worker_is_retried(cluster, tmp_path):
    rows = sweep.run_sweep(_points([8], [1]), dhash="lost", scheduler=cluster.scheduler_address,
                           synth_dir=tmp_path, point_fn=dying_point, progress=None)
    assert (tmp_path / "died").exists()
    assert rows[0]["status"] == "ok" and rows[0]["lut4"] == 24


def test_cross_product_and_skip():
    spec = get_block("mac_array")
    pts = sweep.expand_points(spec, {"rows": [1, 2], "backend": ["lut", "ice40", "ecp5"]},
                              ["up5k", "ecp5-85f"], [1, 2], skip=[{"backend": "ice40", "device": "ecp5-85f"},
                                                                  {"backend": "ecp5", "device": "up5k"}])
    assert len(pts) == 2 * 3 * 2 * 2 - 2 * 2 * 2
    assert all(not (p["params"]["backend"] == "ice40" and p["device"] == "ecp5-85f") for p in pts)


def test_device_parameters_are_computed_once_per_combination_and_device(monkeypatch):
    calls = []
    real = sweep.device_params

    def counted(spec, device, swept):
        calls.append((device, dict(swept)))
        return real(spec, device, swept)
    monkeypatch.setattr(sweep, "device_params", counted)
    pts = sweep.expand_points(get_block("mac_array"), {"rows": [1, 2]}, ["up5k", "ecp5-85f"], [1, 2, 3])
    assert sorted(calls, key=str) == sorted([(d, {"rows": r}) for r in (1, 2) for d in ("up5k", "ecp5-85f")],
                                            key=str)
    assert [(p["params"]["rows"], p["device"], p["seed"]) for p in pts] == \
        [(r, d, s) for r in (1, 2) for d in ("up5k", "ecp5-85f") for s in (1, 2, 3)]
    # each point has its own parameters: a change to one point's leaves the other seeds' alone
    pts[0]["params"]["rows"] = 7
    assert pts[1]["params"]["rows"] == 1 and pts[1]["params"] == {**pts[0]["params"], "rows": 1}


def test_points_take_the_registrys_device_parameters(monkeypatch):
    """As ``edgelearn synth BLOCK --device``: on up5k a point has the registry's iCEBreaker size for
    every parameter the sweep does not set, a swept value wins; on ecp5-85f the registry has none.
    The points are taken where the CLI submits them; no tool runs."""
    spec = get_block("mac_array")
    submitted = {}

    def no_tools(points, **kw):
        submitted.update(points=points, header=kw["header"])
        return []

    monkeypatch.setattr(sweep, "run_sweep", no_tools)
    argv = ["sweep", "mac_array", "-p", "rows=1,2", "-p", "backend=lut", "--device", "up5k,ecp5-85f"]
    assert cli.main(argv) == 0
    got = {(p["device"], p["params"]["rows"]): p["params"] for p in submitted["points"]}
    assert len(got) == len(submitted["points"]) == 4
    for rows in (1, 2):
        assert got["up5k", rows] == {"rows": rows, "backend": "lut", "cols": 4, "tile_k": 0}
        assert got["up5k", rows] == spec.device_params("up5k", {"rows": rows, "backend": "lut"})[0]
        assert got["ecp5-85f", rows] == {"rows": rows, "backend": "lut"}
    assert "on up5k at the registry's parameters cols=4 tile_k=0" in submitted["header"]
    assert "ecp5-85f at the registry" not in submitted["header"]


def test_pareto_front():
    # (logic, performance): (10, 5) and (20, 9) and (30, 12) form the front; (25, 8) is dominated by
    # (20, 9), (20, 7) by (20, 9), (40, 12) by (30, 12).
    items = [(25, 8), (10, 5), (20, 9), (20, 7), (30, 12), (40, 12)]
    assert sweep._front(items) == {1, 2, 4}


def _run_cli(capsys, *argv):
    code = cli.main(["sweep", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("argv, named", [
    (["lfsr", "-p", "widt=8"], "'widt'"),
    (["lfsr", "-p", "width=8,99"], "width must be an integer from 3 to 32, not 99"),
    (["lfsr", "-p", "width=8,x"], "width must be an integer, not 'x'"),
    (["lfsr", "-p", "width=8", "--device", "up5k,up6k"], "'up6k'"),
    (["lfsr", "--seed", "1,a"], "--seed"),
    (["mac_array", "-p", "backend=lut,dsp"], "backend"),
    (["nosuch"], "'nosuch'"),
    # checked before the scheduler is contacted: exit 2, not the unreachable scheduler's 1
    (["lfsr", "-p", "width=99", "--scheduler", "tcp://127.0.0.1:9"], "width"),
])
def test_bad_arguments_one_line_exit_2(capsys, argv, named):
    code, err = _run_cli(capsys, *argv)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("edgelearn: error:") and named in err[0], err


def test_bad_spec_file(capsys, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('block = "lfsr"\ndevices = ["up5k"]\n')
    code, err = _run_cli(capsys, "--spec", str(spec))
    assert code == 2 and len(err) == 1 and "'devices'" in err[0]
    spec.write_text('block = "lfsr"\n[params]\nwidth = [8, 40]\n')
    code, err = _run_cli(capsys, "--spec", str(spec))
    assert code == 2 and len(err) == 1 and "not 40" in err[0]


def test_unreachable_scheduler_one_line_exit_1(capsys):
    code, err = _run_cli(capsys, "lfsr", "-p", "width=8", "--scheduler", "tcp://127.0.0.1:9",
                         "--connect-timeout", "1")
    assert code == 1
    assert len(err) == 1 and "tcp://127.0.0.1:9" in err[0], err
