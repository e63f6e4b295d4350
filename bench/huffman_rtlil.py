"""Is the Huffman decoder's hardware unchanged? Its RTLIL, without ``src`` attributes, over a matrix of
configurations (more than the registry's three that :mod:`bench.rtlil_compare` covers).

Configurations: L = 8, 12, 16 x N = 1, 2 x contexts 1, 2 x escape off/on (raw bits R = 8), plus
R = 0 and R = 1 at L = 12, N = 1 for both lane kinds. Compared as :mod:`bench.rtlil_compare` does:

    python -m bench.huffman_rtlil --base main
    python -m bench.huffman_rtlil --save build/huff-ref      # later: --ref build/huff-ref

``--base REV`` runs this script (from this tree) with the packages of a temporary ``git worktree`` of
``REV``, so the reference revision needs no copy of the script.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil

from bench.rtlil_compare import _file_name, compare, strip_src
from hw.huffman import HuffmanDecoder

__all__ = ["configs", "write_configs"]


def configs():
    """``[params]`` of :class:`hw.huffman.HuffmanDecoder` compared."""
    out = []
    for max_len in (8, 12, 16):
        for lanes in (1, 2):
            for contexts in (1, 2):
                for escape in (False, True):
                    out.append({"max_len": max_len, "lanes": lanes, "contexts": contexts,
                                "escape": escape, "raw_bits": 8})
    for raw_bits in (0, 1):
        for contexts in (1, 2):
            out.append({"max_len": 12, "lanes": 1, "contexts": contexts, "escape": True,
                        "raw_bits": raw_bits})
    return out


def _label(params):
    return "huffman_decoder" + "".join(f" {k}={params[k]}" for k in sorted(params))


def write_configs(out_dir, progress=None):
    """Write every configuration's stripped RTLIL into ``out_dir`` (and ``index.json``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for params in configs():
        label = _label(params)
        if progress:
            progress(f"  rtlil {label}")
        index[label] = _file_name(label)
        text = strip_src(rtlil.convert(HuffmanDecoder(**params), name="top"))
        (out_dir / index[label]).write_text(text)
    (out_dir / "index.json").write_text(json.dumps(index, indent=1))
    return index


def _generate_at(rev, out_dir):
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="huff-rtlil-base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(tree), rev],
                       check=True)
        try:
            # this script, run with the reference tree's packages (hw, bench.rtlil_compare)
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--save", str(out_dir)],
                           cwd=tree, env=env, check=True)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--base", metavar="REV", help="compare with the designs of git revision REV")
    what.add_argument("--ref", metavar="DIR", help="compare with RTLIL saved by --save DIR")
    what.add_argument("--save", metavar="DIR", help="write this tree's RTLIL into DIR")
    args = ap.parse_args(argv)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if args.save:
        write_configs(args.save, progress=say)
        return 0
    with tempfile.TemporaryDirectory(prefix="huff-rtlil-") as tmp:
        new_dir = Path(tmp) / "new"
        write_configs(new_dir, progress=say)
        if args.base:
            ref_dir = Path(tmp) / "base"
            _generate_at(args.base, ref_dir)
        else:
            ref_dir = Path(args.ref)
        rows = compare(ref_dir, new_dir)
    width = max(len(label) for label, _ in rows)
    for label, verdict in rows:
        print(f"{label:<{width}}  {verdict}")
    return 0 if all(v == "identical" for _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
