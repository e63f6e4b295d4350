"""Host weight codec benchmark (``edgelearn compress``): speed, bits per weight against the entropy, and
zlib / lzma on the same quantized bytes.

Run ``python -m bench.bench_compress`` (``--rows R --cols C``: tensor shape, default 4096 x 5120 =
21 M weights; ``--threads T``: numba threads for the speed rows, default 1; ``--no-lzma``).

Tensors: one synthetic Laplacian (like transformer weights: heavy tails) and one Gaussian weight
matrix, float32, seeds 1 and 2; no public checkpoint is used (no registry package ships one).
Quantization as ``edgelearn compress``: int8 / int4 per-row symmetric (the MAC array's), int4 pairs
(two int4 weights per 8-bit symbol), BF16 (exponent coded, sign + 7 mantissa bits raw).

Prints:

1. encode and decode weights/s of :func:`edgelearn.compress.encode_tensor` / ``decode_tensor``
   (table construction included; numba kernels compiled before timing), at L = 16 and at L = 8 with
   escape codes, decode checked equal: per CPU second of this process (``time.process_time``: the
   one-core rate, not skewed by other jobs on a shared machine) and per wall-clock second;
2. per format and L in {8, 12, 16} (plain, and with escape codes): entropy, total coded bits per
   weight (payload + headers + padding + table) and the overhead against the per-tensor entropy;
3. zlib (level 9) and lzma (preset 6) on the same quantized bytes (int8: one byte per weight; int4:
   two weights per byte; BF16: two bytes per weight), in bits per weight, beside the coded size at
   L = 16.
"""

import argparse
import lzma
import time
import zlib

import numba
import numpy as np

from edgelearn import compress as c

__all__ = ["tensors", "speed_rows", "size_rows", "baseline_rows", "main"]

FORMATS = ("int8", "int4", "int4-pairs", "bf16")


def tensors(rows, cols):
    """``{name: float32 matrix}``: a Laplacian and a Gaussian tensor with per-row scales, like weights."""
    out = {}
    for seed, name in ((1, "laplace"), (2, "gauss")):
        rng = np.random.default_rng(seed)
        scale = rng.uniform(0.5, 2.0, (rows, 1)).astype(np.float32) * np.float32(0.02)
        draw = rng.laplace if name == "laplace" else rng.normal
        out[name] = (draw(0.0, 1.0, (rows, cols)).astype(np.float32) * scale)
    return out


def _quantized(w, fmt):
    q, _ = c.quantize_tensor(w, fmt)
    return q


def _bytes(q, fmt):
    """The quantized tensor as it would be stored without coding."""
    if fmt == "bf16":
        return q.astype("<u2").tobytes()
    if fmt == "int8":
        return q.astype(np.int8).tobytes()
    nib = (q.ravel() & 0xF).astype(np.uint8)
    if nib.size % 2:
        nib = np.concatenate([nib, np.zeros(1, np.uint8)])
    return (nib[0::2] | nib[1::2] << 4).tobytes()


def _warm_up():
    q = np.arange(-64, 64).reshape(8, 16)
    for escape in (False, True):
        tables, stream, _ = c.encode_tensor(q, "int8", max_len=8, escape=escape)
        c.decode_tensor(stream, tables, "int8", max_len=8, n_lanes=1, escape=escape)


def speed_rows(mats, quant):
    rows = []
    for name in mats:
        for fmt in FORMATS:
            q = quant[name, fmt]
            for max_len, escape in ((16, False), (8, True)):
                c0, w0 = time.process_time(), time.perf_counter()
                tables, stream, info = c.encode_tensor(q, fmt, max_len=max_len, escape=escape)
                c1, w1 = time.process_time(), time.perf_counter()
                values, _ = c.decode_tensor(stream, tables, fmt, max_len=max_len, n_lanes=1, escape=escape)
                c2, w2 = time.process_time(), time.perf_counter()
                ok = np.array_equal(values[:info["symbols"]], c._symbols(q, fmt))
                rows.append((name, fmt, max_len, escape, q.size, q.size / (c1 - c0), q.size / (c2 - c1),
                             q.size / (w1 - w0), q.size / (w2 - w1), ok))
    return rows


def size_rows(mats, quant):
    rows = []
    for name in mats:
        for fmt in FORMATS:
            q = quant[name, fmt]
            for max_len in (8, 12, 16):
                for escape in (False, True):
                    if fmt == "bf16" and escape:
                        continue                 # <= 256 exponents: an escape never pays at L >= 8
                    _, _, info = c.encode_tensor(q, fmt, max_len=max_len, escape=escape)
                    rows.append((name, fmt, max_len, escape, info["entropy_bits"] / q.size,
                                 info["total_bits"] / q.size, info["total_bits"] / info["entropy_bits"] - 1))
    return rows


def baseline_rows(mats, quant, *, with_lzma=True):
    rows = []
    for name in mats:
        for fmt in ("int8", "int4", "bf16"):
            q = quant[name, fmt]
            raw = _bytes(q, fmt)
            z = 8 * len(zlib.compress(raw, 9)) / q.size
            x = 8 * len(lzma.compress(raw, preset=6)) / q.size if with_lzma else float("nan")
            coded = {}
            for f in (("int4", "int4-pairs") if fmt == "int4" else (fmt,)):
                coded[f] = c.encode_tensor(quant[name, f], f, max_len=16)[2]["total_bits"] / q.size
            rows.append((name, fmt, 8 * len(raw) / q.size, z, x, coded))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=5120)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-lzma", action="store_true")
    args = ap.parse_args(argv)
    numba.set_num_threads(args.threads)
    mats = tensors(args.rows, args.cols)
    quant = {(n, f): _quantized(w, f) for n, w in mats.items() for f in FORMATS}
    _warm_up()
    n = args.rows * args.cols
    print(f"tensors: Laplacian and Gaussian, {args.rows} x {args.cols} = {n / 1e6:.1f} M weights each; "
          f"numba threads: {args.threads}")
    print("\n1. speed (M weights per CPU second of this process, and per wall second on a shared "
          "machine; encode includes the table; decode checked equal)")
    print(f"{'tensor':<8} {'format':<11} {'L':>2} {'esc':>3} {'weights':>9} {'enc cpu':>8} {'dec cpu':>8} "
          f"{'enc wall':>9} {'dec wall':>9} {'equal':>5}")
    for name, fmt, max_len, escape, count, enc, dec, enc_w, dec_w, ok in speed_rows(mats, quant):
        print(f"{name:<8} {fmt:<11} {max_len:>2} {'yes' if escape else 'no':>3} {count / 1e6:8.1f}M "
              f"{enc / 1e6:8.1f} {dec / 1e6:8.1f} {enc_w / 1e6:9.1f} {dec_w / 1e6:9.1f} {str(ok):>5}")
    print("\n2. size (bits per weight; coded = payload + block headers + padding + table)")
    print(f"{'tensor':<8} {'format':<11} {'L':>2} {'esc':>3} {'entropy':>8} {'coded':>8} {'overhead':>9}")
    for name, fmt, max_len, escape, h, coded, over in size_rows(mats, quant):
        print(f"{name:<8} {fmt:<11} {max_len:>2} {'yes' if escape else 'no':>3} {h:8.4f} {coded:8.4f} "
              f"{100 * over:8.2f}%")
    print("\n3. baselines on the same quantized bytes (bits per weight; coded at L = 16)")
    print(f"{'tensor':<8} {'format':<6} {'raw':>6} {'zlib-9':>7} {'lzma-6':>7}  coded (vs zlib)")
    for name, fmt, raw, z, x, coded in baseline_rows(mats, quant, with_lzma=not args.no_lzma):
        cells = ", ".join(f"{f} {b:.3f} ({b / z:.3f}x)" for f, b in coded.items())
        print(f"{name:<8} {fmt:<6} {raw:6.2f} {z:7.3f} {x:7.3f}  {cells}")


if __name__ == "__main__":
    main()
