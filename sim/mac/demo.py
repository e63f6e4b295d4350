"""Digits MLP on the MAC array: real data, weights at 8/4/2 bits and ternary, array == numpy.

scikit-learn's digits (1797 8x8 images, pixel values 0..16; 1437 train / 360 test, fixed shuffle)
train a 64-32-10 ReLU MLP in numpy (Adam, cross-entropy). For each weight mode the float weights
are fine-tuned for a few epochs with quantization in the loop (straight-through estimator), then
quantized per output channel (:func:`sim.mac.golden.quantize_weights`). Inference is integer on the
array:

* layer 1: the pixels are already integers 0..16: uint8 activations with scale 1;
  ``acc1 = X · W1qᵀ`` on the array; ``h = ReLU(acc1 * s1 + b1)`` (float, per channel);
* ``h`` is quantized to uint8 with a per-tensor scale calibrated on the training set;
* layer 2: ``acc2 = Hq · W2qᵀ`` on the array; ``logits = acc2 * sh * s2 + b2``.

Both layers of all four modes run as one job per layer through the array in Verilator (the tiles of
the four modes interleave, so the array changes mode between tiles), and every accumulator is
compared with :func:`sim.mac.golden.ref_gemm`. Biases and rescaling are float, outside the array.
"""

import numpy as np

from hw.mac import spec
from sim.mac.golden import gemm_tiles, quantize_acts, quantize_weights, ref_gemm
from sim.mac.verilator_run import run_tiles_verilator

__all__ = ["run", "train_mlp", "load_data"]

MODES = list(spec.MODES)
ROWS, COLS = 4, 4
HIDDEN = 32


def load_data(seed=0):
    from sklearn.datasets import load_digits  # deferred: scikit-learn is heavy to import
    d = load_digits()
    order = np.random.default_rng(seed).permutation(len(d.target))
    x, y = d.data[order].astype(np.int64), d.target[order]
    return x[:1437], y[:1437], x[1437:], y[1437:]


def mlp_forward(params, x, quant=None):
    w1, b1, w2, b2 = params
    if quant is not None:  # fake-quantized weights (straight-through in the backward pass)
        w1, w2 = (_fake_quant(w, quant) for w in (w1, w2))
    h = np.maximum(x @ w1.T + b1, 0)
    return h, h @ w2.T + b2, (w1, w2)


def _fake_quant(w, mode):
    q, s = quantize_weights(w, mode, per_channel=True)
    return q * s[:, None]


def train_mlp(x, y, *, epochs=300, lr=3e-3, seed=1, init=None, quant=None):
    """Adam on cross-entropy; ``quant`` = a mode name trains with fake-quantized weights (STE)."""
    rng = np.random.default_rng(seed)
    xs = x / 16.0
    if init is None:
        params = [rng.normal(0, 1 / 8, (HIDDEN, 64)), np.zeros(HIDDEN),
                  rng.normal(0, 1 / np.sqrt(HIDDEN), (10, HIDDEN)), np.zeros(10)]
    else:
        params = [p.copy() for p in init]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(10)[y]
    for t in range(1, epochs + 1):
        h, logits, (w1q, w2q) = mlp_forward(params, xs, quant)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g_logits = (p - onehot) / len(y)
        g_h = (g_logits @ w2q) * (h > 0)
        grads = [g_h.T @ xs, g_h.sum(0), g_logits.T @ h, g_logits.sum(0)]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] -= lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    # Fold the 1/16 input scaling into layer 1 so the integer pixels are the layer's input.
    return [params[0] / 16.0, params[1], params[2], params[3]]


def _run_layer(jobs, runner):
    """Run the tiles of every mode as one job; return ``{mode: M x N results}`` and the cycles."""
    tiles, index = [], []
    for mode, (xq, wq, unsigned) in jobs.items():
        ts = gemm_tiles(xq, wq, mode, rows=ROWS, cols=COLS, act_unsigned=unsigned, acc_width=24)
        tiles += ts
        index += [(mode, t) for t in ts]
    res = runner(tiles)
    out = {mode: np.zeros((len(xq) + ROWS, len(wq) + COLS), dtype=np.int64)
           for mode, (xq, wq, _) in jobs.items()}
    rows = res["rows"]
    for i, (mode, t) in enumerate(index):
        block = [rows[i * ROWS + r]["values"] for r in range(ROWS)]
        out[mode][t["m0"]:t["m0"] + ROWS, t["n0"]:t["n0"] + COLS] = block
    return {mode: out[mode][:len(xq), :len(wq)] for mode, (xq, wq, _) in jobs.items()}, res["cycles"]


def run(runner=None):
    """The demo: ``[(label, value), ...]`` rows for ``edgelearn demo``."""
    if runner is None:
        runner = run_tiles_verilator
    xtr, ytr, xte, yte = load_data()
    base = train_mlp(xtr, ytr)
    _, logits, _ = mlp_forward(base, xte)
    rows = [("data", f"sklearn digits, {len(ytr)} train / {len(yte)} test, MLP 64-{HIDDEN}-10"),
            ("float accuracy", f"{100 * (logits.argmax(1) == yte).mean():.1f}%")]

    models = {}
    for mode in MODES:
        # Fine-tune from the float model (w1 unfolded back to the x / 16 domain train_mlp works in).
        init = [base[0] * 16, base[1], base[2], base[3]]
        w1, b1, w2, b2 = train_mlp(xtr, ytr, epochs=60, lr=1e-3, init=init, quant=mode)
        q1, s1 = quantize_weights(w1, mode, per_channel=True)
        q2, s2 = quantize_weights(w2, mode, per_channel=True)
        h_tr = np.maximum(xtr @ (q1 * s1[:, None]).T + b1, 0)
        _, sh = quantize_acts(h_tr, unsigned=True)
        models[mode] = (q1, s1, b1, q2, s2, b2, sh)

    layer1, cyc1 = _run_layer({mode: (xte, models[mode][0], True) for mode in MODES}, runner)
    hq = {}
    for mode in MODES:
        q1, s1, b1, q2, s2, b2, sh = models[mode]
        h = np.maximum(layer1[mode] * s1 + b1, 0)
        hq[mode] = np.clip(np.rint(h / sh), 0, 255).astype(np.int64)
    layer2, cyc2 = _run_layer({mode: (hq[mode], models[mode][3], True) for mode in MODES}, runner)

    exact = True
    for mode in MODES:
        q1, s1, b1, q2, s2, b2, sh = models[mode]
        exact &= bool((layer1[mode] == ref_gemm(xte, q1, mode)[0]).all())
        exact &= bool((layer2[mode] == ref_gemm(hq[mode], q2, mode)[0]).all())
        acc = (np.argmax(layer2[mode] * sh * s2 + b2, axis=1) == yte).mean()
        rows.append((f"{mode} weights (array) accuracy", f"{100 * acc:.1f}%"))
    macs = len(yte) * (64 * HIDDEN + HIDDEN * 10)
    rows.append(("array == numpy golden", "yes, all 8 layer GEMMs bit-exact" if exact else "NO: MISMATCH"))
    rows.append((f"array {ROWS}x{COLS} cycles (4 modes, 2 layers)",
                 f"{cyc1 + cyc2} for {4 * macs} MACs ({4 * macs / (cyc1 + cyc2):.1f} MAC/cycle)"))
    if not exact:
        raise AssertionError("MAC array results differ from the golden model")
    return rows


if __name__ == "__main__":  # pragma: no cover
    for label, value in run():
        print(f"{label:40s} {value}")
