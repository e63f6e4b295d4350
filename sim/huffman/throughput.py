"""The Huffman decoder's throughput workload: the digits MLP's int8 then int4 weights, two blocks of
each, a table switch between, through the RTL in Amaranth's simulator, checked against the golden
model. Used by ``bench/bench_huffman.py`` and ``edgelearn sweep``."""

from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from sim.huffman import golden as g
from sim.huffman.harness import group_blocks, run_decoder
from sim.huffman.weights import digits_mlp, int_symbols

__all__ = ["BLOCK_N", "split_beats", "throughput_rows"]

BLOCK_N = 1024           # symbols per lane per block in the throughput and size runs


def split_beats(ref, n):
    """Golden blocks (beats of all format lanes) as beats of ``n`` values, the decoder's output."""
    return [dict(b, values=[tuple(t[i:i + n]) for t in b["values"] for i in range(0, len(t), n)])
            for b in ref]


def throughput_rows(lanes=(1, 2, 4), max_len=12, contexts=1, impl="comparator"):
    """Symbols per cycle per (hardware) lane of the RTL in the Amaranth simulator, with block and
    table switches: two blocks of int8 weights (table 0), then two of int4 weights (table 1), back to
    back. With ``contexts=2`` each hardware lane serves two format lanes (blocks of 2N lanes);
    ``impl`` is the decoder's lane implementation."""
    w1, w2, _ = digits_mlp()
    s8, _ = int_symbols([w1, w2], "int8")
    s4, _ = int_symbols([w1, w2], "int4")
    t8, t4 = g.build_table(s8, max_len), g.build_table(s4, max_len)
    tables = g.table_stream([spec.serialize_table(*t, max_len) for t in (t8, t4)])
    rows = []
    for n in lanes:
        f = n * contexts                         # format lanes
        per = f * BLOCK_N // 2                   # two blocks per table within the 2368 weights
        beats, tree_walk = [], 0
        for syms, table, parity in ((s8, t8, 0), (s4, t4, 1)):
            codes = spec.canonical_codes(*table)
            for i in (0, per):
                block = syms[i:i + per]
                beats += g.encode_block(block, n_lanes=f, mode=spec.MODE_INT, parity=parity, table=table)[0]
                tree_walk += sum(codes[v][1] for v in block)
        ref, _ = g.ref_decode(beats, tables, n_lanes=f, max_len=max_len, raw_bits=8)
        ref = split_beats(ref, n)
        dut = HuffmanDecoder(max_len=max_len, lanes=n, raw_bits=8, fifo_depth=64, contexts=contexts,
                             impl=impl)
        res = run_decoder(dut, beats, tables, expect_beats=sum(len(b["values"]) for b in ref))
        rows.append({"lanes": n if contexts == 1 else f"{n} (C=2)", "blocks": len(ref),
                     "symbols": res["symbols"], "cycles": res["cycles"],
                     "per_lane": res["symbols"] / (res["cycles"] * n),
                     "weights_per_cycle": res["symbols"] / res["cycles"], "tree_walk_cycles": tree_walk,
                     "speedup": tree_walk / res["cycles"], "exact": group_blocks(res["beats"]) == ref})
    return rows
