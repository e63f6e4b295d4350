"""The SPRAM GEMM group (hw/control/spram_gemm_handler.py) on the iCE40UP5K, out of context: logic
cells, DSPs, block RAMs, SPRAMs and Fmax per decoder configuration.

    python -m bench.bench_spram_gemm [--row L:ESC:CTX:FIFO ...] [--seed S ...]
    python -m bench.bench_spram_gemm --board-row L:ESC:CTX:FIFO:IMPL
    python -m bench.bench_spram_gemm --parts [--groups system,gemm]

``--board-row``: the iCEBreaker board build (``boards.build.build_board``, groups system + gemm)
with the ``gemm`` selection's decoder replaced by that one (IMPL ``table`` or ``comparator``);
prints the build's JSON, or the one-line "does not fit" with nextpnr's utilisation.

``--parts``: where the iCEBreaker board's logic goes, by part (Yosys only, no place and route): the
board's design (``boards.build.write_build_tree``) synthesized as the board build does, with
``keep_hierarchy`` on the core's parts (controller, system handler, receive FIFO, UART, heartbeat,
the GEMM handler's own logic, its MAC array's wrapper, accumulators and sequencer, the decoder's
parts); the rest (the decoder's table loader, the MAC array's product grid, whose separate
mapping trips a Yosys assertion, and the reset trees) stays in ``core.group1``. LUT4 / FF / carry
cells per part: a logic cell holds one LUT4 and one flip-flop (and a carry), so these bound the
part's cells from below.

Each row is the handler as the iCEBreaker carries it (1 x 2 MAC array on SB_MAC16s, lane_dsps as
the selection has it, a 64 KiB store in two SPRAMs, max_k 256) with decoder max_len L, escape
codes on/off, contexts and lane FIFO depth, and beside it the same decoder alone
(``HuffmanDecoder(impl="table")``, one lane, no raw bits): the group's logic cells beyond its
decoder are the handler's, the MAC array's and the store's. nextpnr at the 48 MHz target
(boards.synth.synthesize, RegisterWrapper around each).
"""

import argparse
import json
import re

from boards import build, groups, toolchain
from boards.synth import synthesize
from hw.control.spram_gemm_handler import SpramGEMMHandler
from hw.huffman.decoder import HuffmanDecoder
from hw.lib.reset import KEEP_REGISTERS

DEFAULT_ROWS = ("12:1:1:4", "12:1:2:8")
COLUMNS = ("lc", "lut4", "ff", "dsp", "bram", "spram", "fmax_mhz")


def handler(max_len, escape, contexts, fifo_depth):
    lane_dsps = groups.EXTRA_GROUP_SIZES["icebreaker"]["gemm"].get("lane_dsps", False)
    return SpramGEMMHandler(store_depth=32768 // contexts, max_k=256, cols=2, max_len=max_len,
                            contexts=contexts, escape=bool(escape), fifo_depth=fifo_depth,
                            backend="ice40", lane_dsps=lane_dsps, primitives=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", action="append", default=None, metavar="L:ESC:CTX:FIFO")
    ap.add_argument("--seed", type=int, action="append", default=None)
    ap.add_argument("--board-row", default=None, metavar="L:ESC:CTX:FIFO:IMPL")
    ap.add_argument("--parts", action="store_true")
    ap.add_argument("--groups", default="system,gemm")
    args = ap.parse_args(argv)
    if args.parts:
        return parts(args.groups)
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


#: The parts ``--parts`` keeps apart (paths below the board's top module).
PARTS = ("clock", "core.controller", "core.system", "core.rx_fifo", "core.uart_rx", "core.uart_tx",
         "core.heartbeat", "core.group1", "core.group1.handler", "core.group1.handler__array",
         "core.group3")
#: Parts of the decoder and the MAC array kept apart too (their own submodules stay inside them), but
#: not those named in NOT_APART: Yosys 0.70's abc9 fails an assertion on them alone.
PART_TREES = ("core.group1.handler__decoder", "core.group1.handler__array__")
NOT_APART = ("loader", "grid")


def parts(selection):
    top = "edgelearn_icebreaker"
    work = build.build_root() / "boards" / f"icebreaker_parts_{selection.replace(',', '_')}"
    build.write_build_tree("icebreaker", groups=selection, build_dir=work, seed=1)
    text = (work / f"{top}.il").read_text()
    keep = []
    for name in re.findall(r"^module \\?(\S+)", text, re.M):
        rel = name[len(top) + 1:]
        if name.startswith(top + ".") and (rel in PARTS or (rel.startswith(PART_TREES) and "." not in rel[12:]
                                                             and not any(n in rel for n in NOT_APART))):
            keep.append(name)
    toolchain.use_yowasp()
    toolchain.run_yosys("\n".join([f"read_rtlil {top}.il", KEEP_REGISTERS,
                                   *(f"setattr -mod -set keep_hierarchy 1 \\{n}" for n in keep),
                                   f"synth_ice40 -top {top}", "tee -q -o parts_stat.json stat -json"]) + "\n",
                        log=work / "parts.log", cwd=work)
    stat = json.loads((work / "parts_stat.json").read_text())
    print("| part | LUT4 | FF | carry | other |")
    print("|---|---|---|---|---|")
    total = [0, 0, 0]
    for name, info in sorted(stat["modules"].items()):
        cells = {k.lstrip("\\$"): v for k, v in info.get("num_cells_by_type", {}).items()}
        row = [sum(v for k, v in cells.items() if k.startswith(p)) for p in ("SB_LUT4", "SB_DFF", "SB_CARRY")]
        other = ", ".join(f"{k} {v}" for k, v in cells.items() if k.startswith("SB_") and
                          not k.startswith(("SB_LUT4", "SB_DFF", "SB_CARRY")))
        if not any(row) and not other:
            continue
        total = [t + v for t, v in zip(total, row)]
        part = name.lstrip("\\")[len(top) + 1:] or "(top)"
        print(f"| {part} | {row[0]} | {row[1]} | {row[2]} | {other} |")
    print(f"| total | {total[0]} | {total[1]} | {total[2]} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
