"""The SPRAM GEMM group (hw/control/spram_gemm_handler.py) on the iCE40UP5K, out of context: logic
cells, DSPs, block RAMs, SPRAMs and Fmax per decoder configuration.

    python -m bench.bench_spram_gemm [--row L:ESC:CTX:FIFO ...] [--seed S ...]
    python -m bench.bench_spram_gemm --board-row L:ESC:CTX:FIFO:IMPL

``--board-row``: the iCEBreaker board build (``boards.build.build_board``, groups system + gemm)
with the ``gemm`` selection's decoder replaced by that one (IMPL ``table`` or ``comparator``);
prints the build's JSON, or the one-line "does not fit" with nextpnr's utilisation.

Each row is the handler as the iCEBreaker carries it (1 x 2 MAC array on SB_MAC16, 32768-beat
store in two SPRAMs, max_k 256) with decoder max_len L, escape codes on/off, contexts and lane
FIFO depth, and beside it the same decoder alone (``HuffmanDecoder(impl="table")``, one lane, no
raw bits): the group's logic cells beyond its decoder are the handler's, the MAC array's and the
store's. nextpnr at the 48 MHz target (boards.synth.synthesize, RegisterWrapper around each).
"""

import argparse
import json

from boards import build, groups
from boards.synth import synthesize
from hw.control.spram_gemm_handler import SpramGEMMHandler
from hw.huffman.decoder import HuffmanDecoder

DEFAULT_ROWS = ("12:1:1:4", "8:0:1:4")
COLUMNS = ("lc", "lut4", "ff", "dsp", "bram", "spram", "fmax_mhz")


def handler(max_len, escape, contexts, fifo_depth):
    return SpramGEMMHandler(store_depth=32768 // contexts, max_k=256, cols=2, max_len=max_len,
                            contexts=contexts, escape=bool(escape), fifo_depth=fifo_depth,
                            backend="ice40", primitives=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", action="append", default=None, metavar="L:ESC:CTX:FIFO")
    ap.add_argument("--seed", type=int, action="append", default=None)
    ap.add_argument("--board-row", default=None, metavar="L:ESC:CTX:FIFO:IMPL")
    args = ap.parse_args(argv)
    if args.board_row:
        return board_build(args.board_row, args.seed[0] if args.seed else None)
    rows = []
    for row in args.row or DEFAULT_ROWS:
        L, esc, ctx, fifo = (int(v) for v in row.split(":"))
        for seed in args.seed or [1]:
            res = synthesize(handler(L, esc, ctx, fifo), device="up5k",
                             name=f"spram_gemm_L{L}_e{esc}_c{ctx}_f{fifo}", seed=seed,
                             progress=lambda s: print(s, flush=True))
            dec = synthesize(HuffmanDecoder(max_len=L, lanes=1, raw_bits=0, fifo_depth=fifo, contexts=ctx,
                                            escape=bool(esc), impl="table"), device="up5k",
                             name=f"table_decoder_L{L}_e{esc}_c{ctx}_f{fifo}", seed=seed,
                             progress=lambda s: print(s, flush=True))
            rows.append((f"L={L} escape={esc} contexts={ctx} fifo={fifo}", seed,
                         *(res.get(k) for k in COLUMNS), dec["lc"], dec["fmax_mhz"], res["lc"] - dec["lc"]))
    heads = ("decoder", "seed", *COLUMNS, "decoder alone lc", "decoder alone fmax_mhz",
             "lc beyond the decoder")
    print("| " + " | ".join(heads) + " |")
    print("|---" * len(heads) + "|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


def board_build(row, seed):
    L, esc, ctx, fifo, impl = row.split(":")
    gemm = dict(groups.EXTRA_GROUP_SIZES["icebreaker"]["gemm"], max_len=int(L), escape=bool(int(esc)),
                contexts=int(ctx), fifo_depth=int(fifo), impl=impl, store_depth=32768 // int(ctx))
    # This process only: the board build reads the selection's sizes from here.
    groups.EXTRA_GROUP_SIZES["icebreaker"]["gemm"] = gemm
    build_dir = build.build_root() / "boards" / f"icebreaker_gemm_{row.replace(':', '_')}"
    try:
        res = build.build_board("icebreaker", groups="system,gemm", seed=seed, build_dir=build_dir,
                                progress=lambda s: print(s, flush=True))
    except build.GroupsDoNotFit as e:
        print(f"{row}: {e}")
        return 1
    print(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
