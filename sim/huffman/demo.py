"""Huffman decoder demo: the digits MLP's int4 weights, compressed, decoded by the RTL and fed to the
MAC array.

1. train the 64-32-10 digits MLP (numpy, scikit-learn's ``load_digits``), quantize to int4 per channel;
2. build the length-limited canonical code (package-merge, L = 12) and encode all 2368 weights in
   blocks of 2 lanes;
3. decode the stream in the Amaranth simulator (HuffmanDecoder, N = 2) and compare with the weights;
4. run layer 1 on 4 test images with the compressed weights streamed through decoder -> repacker ->
   MAC array (16 of the 32 channels, to stay quick) and compare with numpy.
"""

import numpy as np

from hw.huffman.decoder import HuffmanDecoder
from sim.huffman import golden as g
from sim.huffman.e2e import run_compressed_gemm
from sim.huffman.harness import group_blocks, run_decoder
from sim.huffman.weights import digits_mlp, int_symbols

__all__ = ["run"]


def run():
    """Rows ``(label, value)`` for ``edgelearn demo``."""
    w1, w2, (xtr, ytr, xte, yte) = digits_mlp()
    syms, (q1, q2) = int_symbols([w1, w2], "int4")
    lanes, max_len = 2, 12
    tables, beats, stats = g.encode_stream(syms, n_lanes=lanes, block_n=592, max_len=max_len, raw_bits=8)
    h = g.entropy_bits(syms)
    total = sum(stats[k] for k in ("code_bits", "header_bits", "pad_bits", "table_bits"))
    rows = [("data", f"sklearn digits MLP 64-32-10, int4 per-channel weights: {len(syms)} symbols"),
            ("entropy / raw", f"{h:.3f} / 4 bits per weight"),
            ("Huffman code (L=12)", f"{stats['code_bits'] / len(syms):.3f} bits per weight "
                                    f"({100 * (stats['code_bits'] / (h * len(syms)) - 1):+.2f}% vs entropy)"),
            ("with headers, padding, table",
             f"{total / len(syms):.3f} bits per weight")]

    dut = HuffmanDecoder(max_len=max_len, lanes=lanes, raw_bits=8, fifo_depth=16)
    ref, _ = g.ref_decode(beats, g.table_stream(tables), n_lanes=lanes, max_len=max_len, raw_bits=8)
    res = run_decoder(dut, beats, g.table_stream(tables), expect_beats=sum(len(b["values"]) for b in ref))
    decoded = [v for b in group_blocks(res["beats"]) for t in b["values"] for v in t][:len(syms)]
    exact = decoded == syms and res["errors"] == 0
    rows.append(("RTL decode (Amaranth sim, N=2)", "bit-exact" if exact else "MISMATCH"))
    rate = len(decoded) / (res["cycles"] * lanes)
    rows.append(("symbols/cycle/lane",
                 f"{rate:.3f} ({len(decoded)} symbols, {res['cycles']} cycles, {len(ref)} blocks)"))

    x = xte[:4]
    w = q1[:16]
    y, st = run_compressed_gemm(x, w, "int4", n_lanes=lanes, max_len=max_len, stall=0.0)
    gemm_ok = bool((y == x @ w.T).all()) and st["errors"] == 0
    rows.append(("compressed weights -> MAC array GEMM",
                 f"{'equal to numpy' if gemm_ok else 'MISMATCH'} (4 images x 16 channels, "
                 f"{st['coded_bits']} coded bits for {st['raw_bits']} raw, {st['cycles']} cycles)"))
    acc = (np.argmax(np.maximum(xte @ w1.T, 0) @ w2.T, axis=1) == yte).mean()
    rows.append(("float MLP accuracy (reference)", f"{100 * acc:.1f}%"))
    if not (exact and gemm_ok):
        raise AssertionError("Huffman demo: RTL output differs from the golden model")
    return rows
