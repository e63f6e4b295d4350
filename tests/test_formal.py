"""Formal checks (sim/formal) through SymbiYosys: every property holds, and fails with a
counterexample trace on its mutant; the tools come from the private shim PATH only."""

import dataclasses
import os
from pathlib import Path

import pytest

from edgelearn import cli
from sim.formal import properties, run_property, select
from sim.formal.runner import sby_env, shim_dir

PROPS = properties()
# The default run (<= 3 minutes on a loaded 2-core machine) proves the fast properties except these
# two (the same sticky-flag harness as stdp/hdqt, slower), and checks the mutants of MUTANT_SMOKE
# (fifo.no_overflow's mutant runs in test_cli_failing_proof_one_line); the rest are slow-marked.
SLOW_IN_TESTS = {"mac.sticky_flags", "control.sticky_flags"}
MUTANT_SMOKE = {"mac.acc_saturates", "stdp.event_range"}


def _marked(prop, fast=None):
    fast = prop.fast if fast is None else fast
    return pytest.param(prop, id=prop.name, marks=() if fast else pytest.mark.slow)


@pytest.mark.parametrize("prop", [_marked(p, p.fast and p.name not in SLOW_IN_TESTS) for p in PROPS.values()])
def test_property_holds(prop, tmp_path):
    res = run_property(prop, tmp_path)
    assert res.status == "PASS", f"{prop.name}: {res.status} {res.message} {res.failed_at} trace {res.trace}"


@pytest.mark.parametrize("prop", [_marked(p, p.name in MUTANT_SMOKE) for p in PROPS.values()])
def test_mutant_fails_with_trace(prop, tmp_path):
    res = run_property(prop, tmp_path, mutant=True)
    assert res.status == "FAIL", f"{prop.name} mutant ({prop.mutation}): {res.status} {res.message}"
    assert res.trace and res.trace.endswith(".vcd") and Path(res.trace).stat().st_size > 0
    print(f"{prop.name} mutant ({prop.mutation}): counterexample {res.trace}")


def test_every_property_has_a_mutant():
    assert len(PROPS) >= 15
    for prop in PROPS.values():
        assert prop.mutant is not None and prop.mutation, prop.name


def test_system_yosys_does_not_leak_in(tmp_path, monkeypatch):
    """A ``yosys`` (and ``yosys-smtbmc``, ``boolector``) first on the caller's PATH, and the YOSYS
    override, are never run: the property is proved with the shims."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    marker = tmp_path / "fake-ran"
    for tool in ("yosys", "yosys-smtbmc", "boolector", "yosys-abc"):
        (fake / tool).write_text(f"#!/bin/sh\necho {tool} >> {marker}\nexit 1\n")
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("YOSYS", str(fake / "yosys"))
    monkeypatch.setenv("SMTBMC", str(fake / "yosys-smtbmc"))
    shims = shim_dir(tmp_path / "work")
    env = sby_env(shims)
    assert env["PATH"].split(os.pathsep) == [str(shims), str(Path(os.sys.executable).parent)]
    assert "YOSYS" not in env and "SMTBMC" not in env
    res = run_property(PROPS["fifo.no_overflow"], tmp_path / "work")
    assert res.status == "PASS", res.message
    assert not marker.exists(), marker.read_text()


def test_cli_unknown_block(capsys):
    assert cli.main(["prove", "nosuchblock"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuchblock" in err[0] and err[0].startswith("edgelearn: error:")


def test_cli_failing_proof_one_line(capsys, monkeypatch):
    """A failing proof: the table, then one line naming the property and its trace; exit 1."""
    prop = PROPS["fifo.no_overflow"]
    broken = dataclasses.replace(prop, harness=prop.mutant)
    monkeypatch.setattr("edgelearn.prove.select", lambda names, everything=False: [broken])
    assert cli.main(["prove", "fifo"]) == 1
    out = capsys.readouterr()
    assert "fifo.no_overflow" in out.out and "FAIL" in out.out
    errors = [ln for ln in out.err.splitlines() if ln.startswith("edgelearn: error:")]
    assert len(errors) == 1, out.err
    assert "fifo.no_overflow" in errors[0]
    trace = errors[0].rsplit(" ", 1)[1]
    assert trace.endswith(".vcd") and Path(trace).exists()


def test_select():
    assert [p.name for p in select(["fifo.equal_data"])] == ["fifo.equal_data"]
    assert all(p.fast for p in select())
    assert len(select(everything=True)) == len(PROPS)
    with pytest.raises(ValueError, match="nosuch"):
        select(["nosuch"])
