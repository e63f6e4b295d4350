"""Huffman weight decoder benchmark: compression, throughput, resources/Fmax, and a tree-walk baseline.

Run ``python -m bench.bench_huffman`` (``--quick``: synthesis rows for N = 1 only, ``--no-synth``: none;
``--synth-only L:N:C [--device up5k] [--seed S ...]``: just those synthesis rows, e.g.
``--synth-only 8:1:2 --device up5k --seed 1 --seed 2 --seed 3``).

Prints:

1. coded size vs Shannon entropy vs raw, for the digits MLP's int8 and int4 weights (a small numpy MLP
   trained here on scikit-learn's ``load_digits``, weights quantized per tensor) and for the BF16
   exponent stream of the same float weights (coded exponent + 8 raw sign/mantissa bits);
2. measured symbols per cycle per lane of the RTL in the Amaranth simulator, for N = 1, 2, 4, over
   several blocks and a table switch (cycles counted from the first output beat to the last); and
   for the two-context (C-slow) decoder, N = 1, 2 hardware lanes (blocks of 2N format lanes);
3. the same stream through a naive bit-serial tree-walk decoder (1 bit per cycle, the classic
   open-RTL design), modelled cycle-exactly, as the baseline ratio;
4. resources and Fmax (``boards.synth``) on iCE40UP5K and ECP5-85F for L in {8, 12, 16} and
   N in {1, 2, 4}, and the two-context decoder (C = 2) with one hardware lane.
"""

import argparse
import random
import sys

import numpy as np

from boards.synth import DoesNotFit, ToolError, synthesize
from hw.huffman import spec
from hw.huffman.decoder import IMPLS, HuffmanDecoder
from sim.huffman import golden as g
from sim.huffman.harness import group_blocks, run_decoder
from sim.huffman.throughput import BLOCK_N, split_beats, throughput_rows
from sim.huffman.weights import bf16_values, digits_mlp, int4_pair_symbols, int_symbols

__all__ = ["compression_rows", "throughput_rows", "worst_case_row", "synth_rows", "main"]




def _stream_stats(values, *, n_lanes, max_len, mode=spec.MODE_INT, r=0, ebits=0):
    return g.encode_stream(values, n_lanes=n_lanes, block_n=BLOCK_N, max_len=max_len, mode=mode, r=r,
                           ebits=ebits)


def compression_rows(max_len=16):
    """Coded size vs entropy vs raw for the digits MLP weights and their BF16 exponents; int4 also
    coded in pairs (one 8-bit symbol = two weights), measured against the per-weight entropy."""
    w1, w2, _ = digits_mlp()
    rows = []
    for mode, bits in (("int8", 8), ("int4", 4)):
        syms, _ = int_symbols([w1, w2], mode)
        rows.append(_size_row(f"digits MLP {mode}", syms, bits, 0, max_len, spec.MODE_INT, 0))
    s4, _ = int_symbols([w1, w2], "int4")
    rows.append(_size_row("digits MLP int4 pairs", int4_pair_symbols(s4), 4, 0, max_len, spec.MODE_INT, 0,
                          entropy_symbols=s4, weights_per_symbol=2))
    bf = bf16_values([w1, w2])
    exps = [(v >> 7) & 0xFF for v in bf]
    rows.append(_size_row("digits MLP BF16 (exp coded + 8 raw)", bf, 16, 8, max_len, spec.MODE_EXP, 8,
                          entropy_symbols=exps))
    # a larger synthetic layer with the same statistics: overheads amortised
    rng = np.random.default_rng(0)
    big = np.clip(np.rint(rng.laplace(0, 12, 200_000)), -127, 127).astype(np.int64) & 0xFF
    rows.append(_size_row("Laplace int8, 200k weights", [int(v) for v in big], 8, 0, max_len,
                          spec.MODE_INT, 0))
    # int4 with the digits MLP's statistics (per-channel int4 of Gaussian-like weights), 200k weights
    g4 = [int(v) for v in np.clip(np.rint(rng.normal(0, 2.6, 200_000)), -8, 7).astype(np.int64) & 0xF]
    rows.append(_size_row("Gauss int4, 200k weights", g4, 4, 0, max_len, spec.MODE_INT, 0))
    rows.append(_size_row("Gauss int4 pairs, 200k", int4_pair_symbols(g4), 4, 0, max_len, spec.MODE_INT, 0,
                          entropy_symbols=g4, weights_per_symbol=2))
    return rows


def _size_row(label, values, raw_width, r, max_len, mode, ebits, entropy_symbols=None, weights_per_symbol=1):
    """Sizes of one stream, per weight; the entropy is of the coded part (``entropy_symbols``, per weight:
    for pair-coded int4 the per-weight Shannon entropy, not the pair entropy) plus ``r`` raw bits."""
    n = len(values) * weights_per_symbol
    h = g.entropy_bits(entropy_symbols if entropy_symbols is not None else values)
    _, _, st = _stream_stats(values, n_lanes=1, max_len=max_len, mode=mode, r=r, ebits=ebits)
    payload = st["code_bits"] / n                                 # code + raw bits per weight
    h_total = h + r
    over = st["header_bits"] + st["pad_bits"] + st["table_bits"]
    return {"stream": label, "values": n, "raw_bits": raw_width, "entropy": h_total, "coded": payload,
            "vs_entropy_pct": 100 * (payload / h_total - 1), "overhead_bits_per_value": over / n,
            "total_vs_raw": (st["code_bits"] + over) / (raw_width * n), "raw_blocks": st["raw_blocks"]}


def pairs_row(max_len=12):
    """The digits int4 weights coded in pairs (one symbol = a packed byte = 2 weights), 1 lane:
    the same symbols per cycle, twice the weights per cycle."""
    w1, w2, _ = digits_mlp()
    pairs = int4_pair_symbols(int_symbols([w1, w2], "int4")[0])
    tables, beats, _ = g.encode_stream(pairs, n_lanes=1, block_n=BLOCK_N // 2, max_len=max_len)
    tw = g.table_stream(tables)
    ref, _ = g.ref_decode(beats, tw, n_lanes=1, max_len=max_len, raw_bits=8)
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=8, fifo_depth=64)
    res = run_decoder(dut, beats, tw, expect_beats=sum(len(b["values"]) for b in ref))
    codes = spec.canonical_codes(*g.build_table(pairs, max_len))
    tree_walk = sum(codes[v][1] for v in pairs)
    return {"lanes": "1 (int4 pairs)", "blocks": len(ref), "symbols": res["symbols"], "cycles": res["cycles"],
            "per_lane": res["symbols"] / res["cycles"],
            "weights_per_cycle": 2 * res["symbols"] / res["cycles"], "tree_walk_cycles": tree_walk,
            "speedup": tree_walk / res["cycles"],
            "exact": group_blocks(res["beats"]) == ref}


def worst_case_row(max_len=16, contexts=1, impl="comparator", escape=False):
    """Every code at the length limit: 1 symbol/cycle needs a full 16-bit word per cycle per lane.
    (``escape``: the decoder built with escape codes, on the same plain table.)"""
    lengths = {s: 8 for s in range(255)}
    lengths[255] = max_len
    table = spec.table_from_lengths(lengths, max_len)
    values = [255] * (4 * BLOCK_N)
    beats = []
    for i in range(0, len(values), BLOCK_N):
        beats += g.encode_block(values[i:i + BLOCK_N], n_lanes=contexts, mode=spec.MODE_INT, table=table)[0]
    tables = g.table_stream([spec.serialize_table(*table, max_len)])
    dut = HuffmanDecoder(max_len=max_len, lanes=1, raw_bits=0, fifo_depth=64, contexts=contexts, impl=impl,
                         escape=escape)
    res = run_decoder(dut, beats, tables, expect_beats=len(values))
    ref = split_beats(g.ref_decode(beats, tables, n_lanes=contexts, max_len=max_len, raw_bits=0,
                                   escape=escape)[0], 1)
    return {"lanes": 1, "blocks": 4 // contexts, "symbols": res["symbols"], "cycles": res["cycles"],
            "exact": group_blocks(res["beats"]) == ref,
            "per_lane": res["symbols"] / res["cycles"], "weights_per_cycle": res["symbols"] / res["cycles"],
            "tree_walk_cycles": max_len * len(values),
            "speedup": max_len * len(values) / res["cycles"]}


#: (L, N hardware lanes, contexts) of the synthesis table
SYNTH_GRID = ([(L, n, 1) for L in (8, 12, 16) for n in (1, 2, 4)]
              + [(L, 1, 2) for L in (8, 12, 16)])


def _synth_name(L, n, c, escape=False, impl="comparator"):
    return (f"huffman_L{L}_N{n}" + ("" if c == 1 else f"_C{c}") + ("_esc" if escape else "")
            + ("" if impl == "comparator" else f"_{impl}"))


def escape_rows(lanes=(1, 2, 4), max_len=8, blocks=2, impl="comparator", contexts=1):
    """Escape codes at the UP5K's length limit: wide int8 weights (Gaussian, sigma 20: about 6.3
    bits of entropy, most of the 256 values occur), coded at L = ``max_len`` with an escape code,
    through the RTL built with ``escape``; symbols per cycle per (hardware) lane, and bits per weight
    against the plain code (no escape) on the same weights as the baseline. With two contexts the
    blocks have ``2 n`` format lanes (the same values, twice as many blocks' worth per lane pair)."""
    rows = []
    for n in lanes:
        f = n * contexts                                   # format lanes
        rng = random.Random(n)
        values = [max(-128, min(127, round(rng.gauss(0, 20)))) & 0xFF for _ in range(blocks * f * BLOCK_N)]
        _, _, plain = g.encode_stream(values, n_lanes=f, block_n=BLOCK_N, max_len=max_len, allow_raw=False)
        tables, beats, st = g.encode_stream(values, n_lanes=f, block_n=BLOCK_N, max_len=max_len,
                                            allow_raw=False, escape=True)
        symbols = spec.parse_table(tables[0], max_len, escape=True)[1]
        tw = g.table_stream(tables)
        ref = split_beats(g.ref_decode(beats, tw, n_lanes=f, max_len=max_len, raw_bits=8, escape=True)[0], n)
        dut = HuffmanDecoder(max_len=max_len, lanes=n, raw_bits=8, fifo_depth=64, escape=True, impl=impl,
                             contexts=contexts)
        res = run_decoder(dut, beats, tw, expect_beats=sum(len(b["values"]) for b in ref))
        escaped = sum(1 for v in values if v not in symbols)
        rows.append({"lanes": n, "escaped_pct": 100 * escaped / len(values), "symbols": res["symbols"],
                     "cycles": res["cycles"], "per_lane": res["symbols"] / (res["cycles"] * n),
                     "bits_escape": (st["code_bits"] + st["table_bits"]) / len(values),
                     "bits_plain": (plain["code_bits"] + plain["table_bits"]) / len(values),
                     "exact": group_blocks(res["beats"]) == ref})
    return rows


def synth_rows(devices=("up5k", "ecp5-85f"), grid=SYNTH_GRID, progress=None, seeds=(1,), escape=False,
               impl="comparator", counter_bits=32):
    """Synthesis rows: :class:`HuffmanDecoder` itself through ``boards.synth`` (its register wrapper
    takes struct-shaped ports), so a row is the same netlist as ``edgelearn synth huffman_decoder``
    with the same parameters, and the same figure for the same seed (``boards.synth`` caches by
    netlist, device and seed)."""
    rows = []
    for device in devices:
        for L, n, c in grid:
            for seed in seeds:
                head = {"device": device, "impl": impl, "L": L, "N": n, "C": c, "esc": escape, "seed": seed}
                try:
                    dut = HuffmanDecoder(max_len=L, lanes=n, raw_bits=8, fifo_depth=64, contexts=c,
                                         escape=escape, impl=impl, counter_bits=counter_bits)
                    name = _synth_name(L, n, c, escape, impl)
                    name += f"_cb{counter_bits}" if counter_bits != 32 else ""
                    r = synthesize(dut, device=device, name=name, seed=seed, progress=progress)
                    rows.append({**head, **{k: r.get(k) for k in
                                 ("lut4", "ff", "carry", "bram", "lc", "slices", "fmax_mhz", "timing_met",
                                  "wrapper_ff")}})
                except DoesNotFit as e:
                    usage = {k: f"{used}/{avail}" for k, (used, avail) in e.utilisation.items()}
                    rows.append({**head, "timing_met": False, "error": "does not fit",
                                 "lc": usage.get("ICESTORM_LC") or usage.get("TRELLIS_COMB")})
                except ToolError as e:
                    rows.append({**head, "timing_met": False, "error": str(e).split(";")[0][:60]})
    return rows


#: The UP5K comparison of the two lane implementations: one hardware lane, escape codes, L = 12
#: (``impl``, contexts, counter bits). The comparator lane does not fit the UP5K at L = 12; the last
#: row is the compact build (16-bit status counters).
COMPACT_GRID = (("comparator", 1, 32), ("comparator", 2, 32), ("table", 1, 32), ("table", 2, 32),
                ("table", 2, 16))


def compact_rows(seeds=(1, 2, 3), max_len=12, progress=None, grid=COMPACT_GRID):
    """Both lane implementations side by side on the iCE40UP5K at L = ``max_len`` with escape codes,
    one hardware lane: logic cells and Fmax per nextpnr seed (``boards.synth``; a design that does not
    fit gives its utilisation), and symbols per cycle in the Amaranth simulator on three workloads
    (the digits MLP int8/int4 blocks with a table switch; every code at the length limit; Gaussian
    int8 weights, sigma 20, coded with an escape code: ``escaped_pct`` of them escaped), each checked
    against the golden model (the counter width changes no cycle: those runs use 32 bits).

    ``lc`` counts the wrapped design (the block and :class:`boards.synth.RegisterWrapper`'s port
    registers, one logic cell per bit: ``wrapper_ff``); ``lc_block`` = ``lc - wrapper_ff``, the
    decoder's own logic cells."""
    rows = []
    sims = {}
    for impl, c, cbits in grid:
        if (impl, c) not in sims:
            tput = throughput_rows(lanes=(1,), max_len=max_len, contexts=c, impl=impl)[0]
            worst = worst_case_row(max_len=max_len, contexts=c, impl=impl, escape=True)
            esc = escape_rows(lanes=(1,), max_len=max_len, impl=impl, contexts=c)[0]
            sims[impl, c] = {"sym_per_cycle_mlp": tput["per_lane"], "sym_per_cycle_Lmax": worst["per_lane"],
                             "sym_per_cycle_esc": esc["per_lane"], "escaped_pct": esc["escaped_pct"],
                             "exact": tput["exact"] and worst["exact"] and esc["exact"]}
        row = {"impl": impl, "C": c, "L": max_len, "cbits": cbits, **sims[impl, c]}
        synth = synth_rows(devices=("up5k",), grid=[(max_len, 1, c)], seeds=seeds, escape=True, impl=impl,
                           counter_bits=cbits, progress=progress)
        for k in ("lc", "lut4", "ff", "bram"):
            row[k] = synth[0].get(k)
        if synth[0].get("lc") and synth[0].get("wrapper_ff"):
            row["lc_block"] = synth[0]["lc"] - synth[0]["wrapper_ff"]
        row["fmax_mhz"] = " / ".join(f"{r['fmax_mhz']:.2f}" if r.get("fmax_mhz") else r.get("error", "-")
                                     for r in synth)
        rows.append(row)
    return rows


COMPACT_COLS = ["impl", "C", "L", "cbits", "lc", "lc_block", "lut4", "ff", "bram", "fmax_mhz",
                "sym_per_cycle_mlp", "sym_per_cycle_Lmax", "sym_per_cycle_esc", "escaped_pct"]


SYNTH_COLS = ["device", "impl", "L", "N", "C", "esc", "seed", "lut4", "ff", "carry", "bram", "lc", "slices",
              "fmax_mhz", "timing_met", "error"]


def _table(rows, cols):
    out = ["  ".join(f"{c:>12}" for c in cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:>12.3f}" if isinstance(v, float) else f"{v!s:>12}")
        out.append("  ".join(cells))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="synthesis rows only for N=1")
    ap.add_argument("--no-synth", action="store_true", help="skip synthesis and place-and-route")
    ap.add_argument("--synth-only", metavar="L:N:C", action="append", default=None,
                    help="only these synthesis rows (e.g. 8:1:2 = L 8, 1 hardware lane, 2 contexts), "
                         "skipping the simulator sections; repeatable")
    ap.add_argument("--device", choices=("up5k", "ecp5-85f"), action="append", default=None,
                    help="only this device (repeatable; default both)")
    ap.add_argument("--escape", action="store_true",
                    help="with --synth-only: the decoder built with escape codes (C = 1 only)")
    ap.add_argument("--compact", action="store_true",
                    help="only the UP5K comparison of the comparator and table lanes (L=12, escape codes; "
                         "seeds 1, 2, 3 unless --seed)")
    ap.add_argument("--compact-row", metavar="IMPL:C[:CBITS]", action="append", default=None,
                    choices=[f"{i}:{c}" for i, c, cb in COMPACT_GRID if cb == 32]
                    + [f"{i}:{c}:{cb}" for i, c, cb in COMPACT_GRID],
                    help="with --compact: only these rows (repeatable; default all; CBITS: status counter "
                         "bits, default 32)")
    ap.add_argument("--impl", choices=IMPLS, default="comparator",
                    help="with --synth-only: the lane implementation (default comparator)")
    ap.add_argument("--seed", type=int, action="append", default=None,
                    help="nextpnr placer seed (repeatable: a row per seed; default 1)")
    args = ap.parse_args(argv)
    if args.compact:
        grid = [(f[0], int(f[1]), int(f[2]) if len(f) > 2 else 32)
                for f in (r.split(":") for r in args.compact_row)] if args.compact_row else COMPACT_GRID
        rows = compact_rows(seeds=tuple(args.seed or (1, 2, 3)), grid=grid,
                            progress=lambda m: print("  ..", m, file=sys.stderr))
        print("== iCE40UP5K, one hardware lane, L=12, escape codes, raw_bits=8, fifo_depth=64: "
              "comparator vs table lanes ==")
        print("  lc: logic cells of the wrapped design (nextpnr); lc_block: lc less the wrapper's port "
              "registers (one LC per bit); cbits: status counter bits; fmax_mhz per seed; sym_per_cycle: "
              "Amaranth simulator, per hardware lane")
        print(_table(rows, COMPACT_COLS))
        return 0 if all(r["exact"] for r in rows) else 1
    seeds = tuple(args.seed or (1,))
    devices = tuple(args.device or ("up5k", "ecp5-85f"))
    if args.synth_only:
        try:
            grid = [tuple(int(x) for x in item.split(":")) for item in args.synth_only]
            if any(len(g3) != 3 for g3 in grid):
                raise ValueError("three numbers each")
            rows = synth_rows(devices=devices, grid=grid, seeds=seeds, escape=args.escape, impl=args.impl,
                              progress=lambda m: print("  ..", m, file=sys.stderr))
        except ValueError as e:                 # (the decoder checks L, N and C first)
            ap.error(f"--synth-only takes L:N:C with valid decoder parameters ({e})")
        print(_table(rows, SYNTH_COLS))
        return 0

    print("== coded size vs entropy vs raw (L=16, blocks of 1024 symbols, 1 lane) ==")
    print("  values: weights; entropy, coded: payload bits per weight (code + raw bits);"
          " overhead: headers + lane padding + table, per weight")
    print("  'pairs': int4 coded two weights per 8-bit symbol (the packed byte); entropy = per-weight"
          " Shannon entropy of the int4 weights (not of the pairs)")
    print(_table(compression_rows(), ["stream", "values", "raw_bits", "entropy", "coded", "vs_entropy_pct",
                                      "overhead_bits_per_value", "total_vs_raw", "raw_blocks"]))
    print()
    print("== RTL throughput, Amaranth simulator (L=12, digits int8 then int4 blocks: 2 tables) ==")
    print("  baseline: bit-serial tree walk, 1 payload bit per cycle (headers free)")
    rows = throughput_rows()
    rows += throughput_rows(lanes=(1, 2), contexts=2)
    rows.append(pairs_row())
    rows.append({**worst_case_row(), "lanes": "1 (L=16 codes)"})
    rows.append({**worst_case_row(contexts=2), "lanes": "1 (C=2, L=16 codes)"})
    print(_table(rows, ["lanes", "blocks", "symbols", "cycles", "per_lane", "weights_per_cycle",
                        "tree_walk_cycles", "speedup"]))
    print()
    print("== RTL with escape codes (L=8, Gaussian int8 sigma 20, 2 blocks of 1024 symbols per lane) ==")
    print("  bits_escape / bits_plain: payload + table bits per weight with the escape code / plain L=8 code")
    erows = escape_rows()
    print(_table(erows, ["lanes", "escaped_pct", "symbols", "cycles", "per_lane", "bits_escape",
                         "bits_plain"]))
    if not all(r.get("exact", True) for r in rows + erows):
        print("ERROR: RTL output differs from the golden model")
        return 1
    if not args.no_synth:
        print()
        print("== resources / Fmax (boards.synth, out of context, raw_bits=8, fifo_depth=64) ==")
        grid = [(L, 1, c) for c in (1, 2) for L in (8, 12, 16)] if args.quick else SYNTH_GRID
        print(_table(synth_rows(devices=devices, grid=grid, seeds=seeds,
                                progress=lambda m: print("  ..", m, file=sys.stderr)), SYNTH_COLS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
