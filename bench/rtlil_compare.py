"""Is the hardware unchanged? Compare every block's RTLIL, without ``src`` attributes, against a reference.

For each registered block (:func:`hw.blocks.all_blocks`) the script elaborates its configurations
from the registry — the defaults, the smoke test's (``smoke_params``) and the demo's UP5K row
(``synth_overrides()``), each once — plus the cores of the simulated board and of each board, and
writes their RTLIL with every ``attribute \\src`` line removed (those name Python source lines,
which move whenever code moves). It then compares them with

* ``--base REV``: the same designs generated from git revision ``REV`` (checked out with
  ``git worktree add --detach`` into a temporary directory, this script run there), or
* ``--ref DIR``: RTLIL files saved earlier with ``--save DIR``,

and prints ``identical`` / ``different`` per design (exit status 1 if any differs). ``--matrix`` adds
more configurations of the blocks that list them in :data:`MATRICES` (the Huffman decoder's lane
kinds, code lengths, lane counts, escape and raw-bit widths).

    python -m bench.rtlil_compare --base main
    python -m bench.rtlil_compare --save build/rtlil-ref     # later: --ref build/rtlil-ref
    python -m bench.rtlil_compare --base main --only hdqt_layer
    python -m bench.rtlil_compare --base main --only huffman_decoder --matrix

The script works against revisions where the board configuration lived in ``boards/config.py``
(it imports whichever module a revision has), so that it can compare across that move. The RTLIL
does not depend on PYTHONHASHSEED (:func:`convert`); a revision before :func:`convert` gave the
ULX3S core's clock and reset ports in the hash seed's order, the same as now with
``PYTHONHASHSEED=9`` (``PYTHONHASHSEED=9 python -m bench.rtlil_compare --base REV``).
"""

import argparse
import difflib
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Fragment, Value
from amaranth.hdl._ir import PortDirection  # rtlil.convert's own port directions
from amaranth.lib.wiring import In

from hw.blocks import all_blocks

__all__ = ["designs", "convert", "strip_src", "write_designs", "compare", "MATRICES"]


def _huffman_matrix():
    """L = 8, 12, 16 x N = 1, 2 x contexts 1, 2 x escape off/on (R = 8), and R = 0, 1 at L = 12,
    N = 1, escape on, for both lane kinds (one-cycle, C-slow); the table-lookup lanes (contexts 1)
    at L = 8, 12, 16 x N = 1, 2 x escape off/on."""
    out = [{"max_len": max_len, "lanes": lanes, "contexts": contexts, "escape": escape, "raw_bits": 8}
           for max_len in (8, 12, 16) for lanes in (1, 2) for contexts in (1, 2) for escape in (False, True)]
    out += [{"max_len": 12, "lanes": 1, "contexts": contexts, "escape": True, "raw_bits": raw_bits}
            for raw_bits in (0, 1) for contexts in (1, 2)]
    out += [{"max_len": max_len, "lanes": lanes, "escape": escape, "impl": "table"}
            for max_len in (8, 12, 16) for lanes in (1, 2) for escape in (False, True)]
    return out


#: ``--matrix``: per block, a function giving more parameter sets (over the registry defaults).
MATRICES = {"huffman_decoder": _huffman_matrix}


def strip_src(text):
    """RTLIL ``text`` without ``attribute \\src`` lines."""
    lines = text.splitlines(keepends=True)
    return "".join(ln for ln in lines if not ln.lstrip().startswith("attribute \\src"))


def _make_core():
    # The revision under comparison may predate hw.control.boards (board configs in boards/).
    try:
        mod = importlib.import_module("hw.control.boards")
        return mod.make_core, mod.BOARD_CONFIGS, mod.SIM_CONFIG
    except ImportError:
        cfg = importlib.import_module("boards.config")
        return importlib.import_module("boards.top").make_core, cfg.BOARD_CONFIGS, cfg.SIM_CONFIG


def designs(only=None, matrix=False):
    """``{design name: factory}``: each block's registry configurations (with ``matrix``, also those
    of :data:`MATRICES`) and the board cores; ``only``: those of these blocks (``"boards"``: the
    board cores). ValueError if ``only`` names something else."""
    blocks = all_blocks()
    unknown = [n for n in only or () if n not in blocks and n != "boards"]
    if unknown:
        raise ValueError(f"--only takes block names or 'boards' (the board cores), not {unknown[0]!r}; "
                         f"the blocks are: {', '.join(blocks)}")
    out = {}
    for name, spec in blocks.items():
        if only and name not in only:
            continue
        configs = [spec.defaults(), {**spec.defaults(), **spec.smoke_params},
                   {**spec.defaults(), **spec.synth_overrides()}]
        if matrix and name in MATRICES:
            configs += [{**spec.defaults(), **params} for params in MATRICES[name]()]
        seen = []
        for params in configs:
            if params in seen:
                continue
            seen.append(params)
            # every parameter in the label, so that a design is matched across revisions whose
            # registry defaults differ
            label = name + "".join(f" {k}={params[k]}" for k in sorted(params))
            out[label] = (lambda s=spec, p=params: s.factory(**p))
    if not only or "boards" in only:
        make_core, boards, sim_config = _make_core()
        out["core sim"] = lambda: make_core("sim", config=sim_config, primitives=False)
        for board in boards:
            out[f"core {board}"] = (lambda b=board: make_core(b))
    return out


def convert(factory):
    """RTLIL of the design ``factory()`` makes, with the clock domains it uses but does not define
    created in name order.

    Amaranth (0.5) creates those domains, and their clock and reset ports, in the iteration order of
    a set of domain names (``Fragment._create_missing_domains``), which depends on PYTHONHASHSEED: a
    design with more than one (the ULX3S core: ``sync``, ``gemm``, ``dec``, defined by its board
    top) had its ports in another order in each run. Such a design is elaborated again with those
    domains defined at its top in name order and their ports added in that order, as Amaranth does
    when the set happens to iterate that way; a design with one or none is converted as it is.
    """
    missing = []

    def record(name):
        missing.append(name)
        return ClockDomain(name)
    text = rtlil.convert(factory(), name="top", missing_domain=record)
    if len(missing) < 2:
        return text
    design = factory()
    ports = []
    for path, member, value in design.signature.flatten(design):
        direction = PortDirection.Input if member.flow == In else PortDirection.Output
        ports.append(("__".join(map(str, path)), Value.cast(value), direction))
    fragment = Fragment.get(design, None)
    for name in sorted(missing):
        domain = ClockDomain(name)
        fragment.add_domains(domain)
        ports += [(None, domain.clk, PortDirection.Input), (None, domain.rst, PortDirection.Input)]
    return rtlil.convert_fragment(fragment, ports, name="top")[0]


def _file_name(label):
    return hashlib.sha256(label.encode()).hexdigest()[:16] + ".il"


def write_designs(out_dir, only=None, progress=None, matrix=False):
    """Write every design's stripped RTLIL into ``out_dir`` (and ``index.json``: label -> file)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for label, factory in designs(only, matrix).items():
        if progress:
            progress(f"  rtlil {label}")
        text = strip_src(convert(factory))
        index[label] = _file_name(label)
        (out_dir / index[label]).write_text(text)
    (out_dir / "index.json").write_text(json.dumps(index, indent=1))
    return index


def compare(ref_dir, new_dir, subset=False):
    """``[(label, verdict)]``: ``identical``, ``different (N lines)``, ``only in reference`` / ``new``.

    ``subset``: the new designs are a selection (``--only``); reference designs outside it are skipped.
    """
    ref = json.loads((Path(ref_dir) / "index.json").read_text())
    new = json.loads((Path(new_dir) / "index.json").read_text())
    if subset:
        ref = {k: v for k, v in ref.items() if k in new}
    rows = []
    for label in list(ref) + [k for k in new if k not in ref]:
        if label not in new:
            rows.append((label, "only in reference"))
        elif label not in ref:
            rows.append((label, "new (no reference)"))
        else:
            a = (Path(ref_dir) / ref[label]).read_text().splitlines()
            b = (Path(new_dir) / new[label]).read_text().splitlines()
            if a == b:
                rows.append((label, "identical"))
            else:
                n = sum(1 for ln in difflib.unified_diff(a, b, lineterm="", n=0)
                        if ln[:1] in "+-" and not ln.startswith(("+++", "---")))
                rows.append((label, f"different ({n} lines)"))
    return rows


def _generate_at(rev, out_dir, only, matrix=False):
    """Generate the designs of git revision ``rev`` into ``out_dir`` (a temporary worktree)."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="rtlil-base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(tree), rev],
                       check=True)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = [sys.executable, str(Path(__file__).resolve()), "--save", str(out_dir)]
            if only:
                cmd += ["--only", *only]
            if matrix:
                cmd += ["--matrix"]
            subprocess.run(cmd, cwd=tree, env=env, check=True)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--base", metavar="REV", help="compare with the designs of git revision REV")
    what.add_argument("--ref", metavar="DIR", help="compare with RTLIL saved by --save DIR")
    what.add_argument("--save", metavar="DIR", help="write this tree's RTLIL into DIR")
    ap.add_argument("--only", nargs="+", metavar="BLOCK", help="only these ('boards': board cores)")
    ap.add_argument("--matrix", action="store_true",
                    help="also the configurations of MATRICES (" + ", ".join(MATRICES) + ")")
    args = ap.parse_args(argv)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        designs(args.only)    # names checked before anything is written or checked out
    except ValueError as e:
        ap.error(str(e))
    if args.save:
        write_designs(args.save, args.only, progress=say, matrix=args.matrix)
        return 0
    with tempfile.TemporaryDirectory(prefix="rtlil-") as tmp:
        new_dir = Path(tmp) / "new"
        write_designs(new_dir, args.only, progress=say, matrix=args.matrix)
        if args.base:
            ref_dir = Path(tmp) / "base"
            _generate_at(args.base, ref_dir, args.only, args.matrix)
        else:
            ref_dir = Path(args.ref)
        rows = compare(ref_dir, new_dir, subset=bool(args.only))
    width = max(len(label) for label, _ in rows)
    for label, verdict in rows:
        print(f"{label:<{width}}  {verdict}")
    return 0 if all(v == "identical" for _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
