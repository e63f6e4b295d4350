"""Class-incremental learning on scikit-learn digits (and MNIST-1D): float vs HDQT (integer golden model).

Run: ``python -m sim.hdqt.experiment`` (``--quick`` for one seed and fewer epochs; ``--plot FILE``
writes a PNG when matplotlib is installed).

Setup
    sklearn's 8x8 digits (1797 images, pixels 0..16), stratified 70/30 train/test split; 5 tasks of 2
    classes ({0,1}, {2,3}, ..., {8,9}) seen in sequence; a 64-64-10 ReLU MLP without biases; plain SGD,
    batch 32 (so the batch Hadamard is a real 32-point transform and the hidden-dimension one a
    64-point transform), learning rate ``2**-lr_shift`` (0.25), 16 epochs per task; class-incremental
    with a small replay memory (``replay`` random exemplars per class already seen are mixed into every
    later task; without replay, any method forgets everything but the last task). Reported: accuracy
    over all 10 classes after the last task ("final"), and the mean over tasks of the accuracy on the
    classes seen so far ("average incremental"), each the mean over seeds.

Methods
    ``float``: float64 backprop. ``float-hdqt``: the authors' algorithm with float scales
    (:mod:`sim.hdqt.float_ref`). ``hdqt``: the hardware's integer arithmetic
    (:func:`sim.hdqt.golden.ref_layer_step`: power-of-two scales, LFSR stochastic rounding, Q2.13 master
    weights, learning rate as a shift). The loss gradient (softmax cross-entropy) is computed on the host
    in float and handed to the last layer as a 16-bit integer tensor with a power-of-two exponent; the
    hidden layer's gradient passes ReLU's mask in integers.

Paper figures to compare with (Schiemer et al., HDQT): on human-activity data sets the 4-bit-input /
8-bit-accumulator model loses well under 1 point on average; on CIFAR100 (BiC) float 48.54 -> 46.07 at
8-bit accumulators, 49.54 at 12-bit, and a collapse to 0.94 at 4-bit accumulators. The digits MLP is
far smaller than those models, so only the shape is comparable: near-float at 8-bit accumulators and
4-bit inputs, collapse at 4-bit accumulators, recovery by 12 bits. Run the script for the numbers on
this machine; docs/hdqt.md records one run.
"""

import argparse
import time

import numpy as np

from hw.hdqt import spec
from sim.hdqt.float_ref import float_layer_forward, float_layer_step
from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_layer_forward, ref_layer_step, ref_rshift_rtn

__all__ = ["load_tasks", "run_cil", "main"]

#: Pixels 0..16 enter as integers with exponent -4 (value = pixel / 16); the float models get pixel / 16.
X_EXP = -4
#: MNIST-1D's standardised signal (about -5.5..4.5) enters as signed integers with exponent -8.
X_EXP_MNIST1D = -8
TASKS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
DATASETS = ("digits", "mnist1d")


def load_tasks(seed, dataset="digits"):
    """``(x_train, x_test, y_train, y_test)`` as integers (value = x * 2**x_exp, see :func:`input_format`).

    digits: stratified 70/30 split by ``seed``; MNIST-1D: ``mnist1d.data.make_dataset()`` with its
    default arguments (4000 train / 1000 test, generated offline), the same for every seed.
    """
    if dataset == "digits":
        from sklearn.datasets import load_digits  # deferred: scikit-learn is heavy to import
        from sklearn.model_selection import train_test_split
        d = load_digits()
        x, y = d.data.astype(np.int64), d.target.astype(np.int64)
        return train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    if dataset == "mnist1d":
        d = _mnist1d()
        to_int = lambda v: np.round(v * 2.0 ** -X_EXP_MNIST1D).astype(np.int64)  # noqa: E731
        return to_int(d["x"]), to_int(d["x_test"]), d["y"].astype(np.int64), d["y_test"].astype(np.int64)
    raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}, not {dataset!r}")


_MNIST1D = {}


def _mnist1d():
    if "d" not in _MNIST1D:
        from mnist1d.data import make_dataset  # deferred: only the MNIST-1D runs need it
        _MNIST1D["d"] = make_dataset()
    return _MNIST1D["d"]


def input_format(dataset):
    """``(input features, exponent, non-negative)`` of a data set's integer inputs."""
    return (64, X_EXP, True) if dataset == "digits" else (40, X_EXP_MNIST1D, False)


def _init(rng, o, k):
    return rng.uniform(-1, 1, (o, k)) * np.sqrt(6.0 / k) * 0.7


def _softmax_grad(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p / len(labels)


def _to_fixed(g, bits=16):
    """A float tensor as ``bits``-bit integers with a power-of-two exponent (host-side conversion)."""
    m = float(np.abs(g).max())
    if m == 0.0:
        return np.zeros(g.shape, dtype=np.int64), 0
    e = int(np.floor(np.log2(m))) - (bits - 2)
    return np.round(g / 2.0 ** e).astype(np.int64), e


class FloatMLP:
    def __init__(self, rng, lr, k_in=64):
        self.w1, self.w2, self.lr = _init(rng, 64, k_in), _init(rng, 10, 64), lr

    def logits(self, x):
        return np.maximum(x @ self.w1.T, 0) @ self.w2.T

    def step(self, x, labels):
        h_pre = x @ self.w1.T
        h = np.maximum(h_pre, 0)
        g = _softmax_grad(h @ self.w2.T, labels)
        dh = (g @ self.w2) * (h_pre > 0)
        self.w2 -= self.lr * g.T @ h
        self.w1 -= self.lr * dh.T @ x


class FloatHdqtMLP(FloatMLP):
    """The authors' algorithm with float scales."""

    def __init__(self, rng, lr, cfg, k_in=64, x_unsigned=True, backward="input"):
        super().__init__(rng, lr, k_in)
        self.cfg, self.rng = cfg, np.random.default_rng(rng.integers(1 << 31))
        self.x_unsigned, self.backward = x_unsigned, backward

    def logits(self, x):
        h = np.maximum(float_layer_forward(self.cfg, self.w1, x, x_unsigned=self.x_unsigned), 0)
        return float_layer_forward(self.cfg, self.w2, h)

    def step(self, x, labels):
        h_pre = float_layer_forward(self.cfg, self.w1, x, x_unsigned=self.x_unsigned)
        h = np.maximum(h_pre, 0)
        g = _softmax_grad(float_layer_forward(self.cfg, self.w2, h), labels)
        _, dh, self.w2 = float_layer_step(self.cfg, self.w2, h, g, self.rng, lr=self.lr,
                                          backward=self.backward)
        _, _, self.w1 = float_layer_step(self.cfg, self.w1, x, dh * (h_pre > 0), self.rng, lr=self.lr,
                                         need_dx=False, x_unsigned=self.x_unsigned, backward=self.backward)


class IntHdqtMLP:
    """The hardware's integer arithmetic (golden model); inputs are integers with exponent ``x_exp``
    (digits: the pixels, exponent -4)."""

    def __init__(self, rng, cfg, k_in=64, x_exp=X_EXP, x_unsigned=True, backward="input"):
        lim = spec.acc_limit(spec.W_BITS)
        to_q = lambda w: np.clip(np.round(w * 2 ** cfg.w_frac), -lim, lim).astype(np.int64)  # noqa: E731
        self.w1, self.w2 = to_q(_init(rng, 64, k_in)), to_q(_init(rng, 10, 64))
        self.x_exp, self.x_unsigned, self.backward = x_exp, x_unsigned, backward
        self.cfg, self.lfsr, self.saturated = cfg, LfsrStream(int(rng.integers(65535))), False
        self.steps, self.record, self.records = 0, (), []

    def logits(self, x):
        y1, e1, _ = ref_layer_forward(self.cfg, self.w1, x, self.x_exp, x_unsigned=self.x_unsigned)
        y2, e2, _ = ref_layer_forward(self.cfg, self.w2, np.maximum(y1, 0), e1)
        return y2 * 2.0 ** e2

    def step(self, x, labels):
        cfg = self.cfg
        y1, e1, _ = ref_layer_forward(cfg, self.w1, x, self.x_exp, x_unsigned=self.x_unsigned)
        h = np.maximum(y1, 0)
        y2, e2, _ = ref_layer_forward(cfg, self.w2, h, e1)
        dy2, dy2_exp = _to_fixed(_softmax_grad(y2 * 2.0 ** e2, labels))
        r2 = ref_layer_step(cfg, self.w2, h, e1, dy2, dy2_exp, self.lfsr, backward=self.backward)
        # The gradient buffer is 16 bits: requantize dX (round to nearest) before ReLU's mask.
        dh = r2["dx"] * (y1 > 0)
        s = spec.shift_for(int(np.abs(dh).max()), spec.W_BITS, False)
        dh = ref_rshift_rtn(dh, s)
        if self.steps in self.record:  # the hidden layer's inputs, for replay on the RTL (64 x 64, B = 32)
            self.records.append({"step": self.steps, "w": self.w1.copy(), "x": x.copy(), "x_exp": self.x_exp,
                                 "dy": dh.copy(), "dy_exp": r2["dx_exp"] + s, "lfsr_index": self.lfsr.index})
        self.steps += 1
        r1 = ref_layer_step(cfg, self.w1, x, self.x_exp, dh, r2["dx_exp"] + s, self.lfsr, need_dx=False,
                            x_unsigned=self.x_unsigned, backward=self.backward)
        self.w1, self.w2 = r1["w"], r2["w"]
        self.saturated |= r1["w_saturated"] or r2["w_saturated"]


def run_cil(method, *, seed=0, epochs=8, lr_shift=2, replay=20, batch=32, bits=4, tile_bits=8, record=(),
            model_out=None, dataset="digits", backward="input"):
    """Train one model through the 5 tasks; returns ``(final accuracy, average incremental accuracy)``.

    ``record`` (``hdqt`` only): step numbers whose hidden-layer inputs are recorded in
    ``model.records``; ``model_out`` (a list) receives the trained model. ``dataset``: "digits" or
    "mnist1d"; ``backward``: the HDQT methods' backward-pass operands (see
    :func:`sim.hdqt.golden.ref_layer_step`).
    """
    xtr, xte, ytr, yte = load_tasks(seed, dataset)
    k_in, x_exp, x_unsigned = input_format(dataset)
    if method != "hdqt":
        xtr, xte = xtr * 2.0 ** x_exp, xte * 2.0 ** x_exp
    rng = np.random.default_rng(seed)
    cfg = HdqtConfig(bits=bits, tile_bits=tile_bits, lr_shift=lr_shift)
    lr = 2.0 ** -lr_shift
    if method == "float":
        model = FloatMLP(rng, lr, k_in)
    elif method == "float-hdqt":
        model = FloatHdqtMLP(rng, lr, cfg, k_in, x_unsigned, backward)
    elif method == "hdqt":
        model = IntHdqtMLP(rng, cfg, k_in, x_exp, x_unsigned, backward)
        model.record = set(record)
    else:
        raise ValueError(f"method must be 'float', 'float-hdqt' or 'hdqt', not {method!r}")
    memory_x, memory_y, accs = [], [], []
    seen = []
    for task in TASKS:
        sel = np.isin(ytr, task)
        tx = np.concatenate([xtr[sel]] + memory_x)
        ty = np.concatenate([ytr[sel]] + memory_y)
        for _ in range(epochs):
            order = rng.permutation(len(tx))
            for i in range(0, len(order) - batch + 1, batch):  # full batches only: B stays 32
                idx = order[i:i + batch]
                model.step(tx[idx], ty[idx])
        for c in task:
            pick = rng.permutation(np.flatnonzero(ytr == c))[:replay]
            memory_x.append(xtr[pick])
            memory_y.append(ytr[pick])
        seen.extend(task)
        sel = np.isin(yte, seen)
        accs.append(float((model.logits(xte[sel]).argmax(1) == yte[sel]).mean()))
    if model_out is not None:
        model_out.append(model)
    return 100 * accs[-1], 100 * float(np.mean(accs))


def _row(label, method, seeds, **kw):
    res = np.array([run_cil(method, seed=s, **kw) for s in seeds])
    return label, res[:, 0].mean(), res[:, 0].std(), res[:, 1].mean()


def experiment(seeds=(0, 1, 2), epochs=16):
    rows = [_row("float", "float", seeds, epochs=epochs),
            _row("float-scale HDQT (authors), 4b in / 8b acc", "float-hdqt", seeds, epochs=epochs),
            _row("integer HDQT (hardware), 4b in / 8b acc", "hdqt", seeds, epochs=epochs)]
    for acc in (4, 12, 16):
        rows.append(_row(f"integer HDQT, 4b in / {acc}b acc", "hdqt", seeds, epochs=epochs, tile_bits=acc))
    for bits in (2, 3, 6, 8):
        rows.append(_row(f"integer HDQT, {bits}b in / 8b acc", "hdqt", seeds, epochs=epochs, bits=bits))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 4 epochs per task")
    ap.add_argument("--epochs", type=int, default=16, help="epochs per task (default 16)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--plot", metavar="FILE", help="write a PNG of the sweeps (needs matplotlib)")
    args = ap.parse_args(argv)
    seeds = (0,) if args.quick else tuple(range(args.seeds))
    t0 = time.time()
    rows = experiment(seeds, epochs=4 if args.quick else args.epochs)
    print(f"class-incremental digits, 5 tasks x 2 classes, MLP 64-64-10, {len(seeds)} seed(s), "
          f"{4 if args.quick else args.epochs} epochs per task")
    print(f"{'method':48s} {'final acc %':>12s} {'+-':>6s} {'avg incr %':>11s}")
    for label, m, s, a in rows:
        print(f"{label:48s} {m:12.2f} {s:6.2f} {a:11.2f}")
    print(f"integer HDQT 4b/8b minus float: {rows[2][1] - rows[0][1]:+.2f} points "
          f"({time.time() - t0:.0f} s)")
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no plot (pip install -e '.[plot]')")
            return
        acc = {4: rows[3][1], 8: rows[2][1], 12: rows[4][1], 16: rows[5][1]}
        bits = {2: rows[6][1], 3: rows[7][1], 4: rows[2][1], 6: rows[8][1], 8: rows[9][1]}
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
        for a, d, xl in ((ax[0], acc, "tile accumulator bits"), (ax[1], bits, "matmul input bits")):
            a.plot(list(d), list(d.values()), "o-", label="integer HDQT")
            a.axhline(rows[0][1], color="k", ls="--", label="float")
            a.set_xlabel(xl)
            a.set_ylabel("final accuracy %")
            a.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
