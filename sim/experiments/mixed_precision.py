"""Mixed-precision post-training quantization by Hessian sensitivity and bisection (``mixed-precision``).

Per layer (tensor) weight precision from {int8, int4, 2-bit} with int8 activations, chosen under a
validation-accuracy budget (points below the float model), minimising the MAC array's cycles.

Models (every layer one GEMM on a 4 x 4 array; conv layers as im2col GEMMs)
    ``digits-mlp``  sklearn digits, MLP 64-32-32-16-10 (fits the board's weight memory);
    ``mnist1d-mlp`` MNIST-1D (``mnist1d.data.make_dataset()``, default arguments: generated, no
    download), MLP 40-128-128-10;
    ``mnist1d-cnn`` MNIST-1D, 1-D CNN: conv 1->16 k5 s2, conv 16->32 k3 s2, conv 32->32 k3 s2, dense
    160->10 (ReLU after each but the last).
    Splits: digits stratified 60/20/20 train/val/test (fixed split); MNIST-1D train 3200 / val 800
    from its training set, its 1000 test samples. Float training: Adam, batch 64; the training seed
    varies over ``--seeds``.

Quantization (PTQ)
    Weights per output channel (:func:`sim.mac.golden.quantize_weights`); "2-bit" is int2 or ternary
    per layer, whichever has the smaller weight quantization error (data-free; the same rule for
    every search). Activations int8 (post-ReLU 0..127), scales calibrated on 512 training samples.
    Integer accumulators exact; biases and rescaling in float outside the array.

Latency
    The array's cycles for a batch of 4 inputs (M = 4 for dense layers, 4 x output positions for
    conv layers), from :func:`sim.mac.cycles.gemm_cycles`: int8 / int4 / 2-bit weights take 1 / 2 / 4
    products per PE per cycle, and a tile never costs fewer cycles than the array has rows.

Sensitivities (on the float model, 512 calibration samples; Hessians of the loss w.r.t. weights)
    ``hutchinson``: Ω_l(p) = ½ tr(H_ll)/n_l · ||Δ_l(p)||², tr(H_ll) by Hutchinson's estimator with
    Rademacher vectors (HAWQ-v2's metric); Δ_l(p) the quantization error of layer l at precision p.
    ``hessian+inter-layer``: Ω_l(p) plus the layer's share of the cross-layer blocks of the
    second-order loss change when every layer is quantized at p: ½ Σ_{m≠l} Δ_l(p)ᵀ H_lm Δ_m(p), from
    one exact Hessian-vector product per layer and precision (:func:`sim.experiments.nets.hvp`).
    This is this project's reading of "augmenting the Hessian with inter-layer dependencies"; the
    paper's exact formula is not in its abstract.

Search (the papers' sensitivity-guided bisection)
    Moves lower one layer by one step (int8 -> int4, int4 -> 2-bit); they are sorted (a layer's
    2-bit move after its int4 move) into a path from all-int8 to all-2-bit; bisection on the path
    finds the last configuration within the budget (validation accuracy). Orders: by the metric's
    increase (``hutchinson``, ``hessian+inter-layer``: the papers' ordering), by that increase per
    array cycle the move saves (``... / cycle``; the method of record, :data:`RECORD`: the objective
    is cycles, and a move that saves few cycles should not spend the budget), by cycles saved alone
    (``cycles only``: what the sensitivity adds beyond it), and random orders (``random``).
    ``exhaustive``: every configuration (3^L), for the true Pareto front and the fastest
    configuration within the budget.
"""

import itertools

import numpy as np

from hw.mac import MacArray
from sim.experiments import Result, Table, mean_se, new_figure, progress, save_figure
from sim.experiments.nets import Conv1d, Dense, IntModel, Net, fake_quant, hvp, logits, train
from sim.mac.amaranth_run import run_tiles
from sim.mac.cycles import gemm_cycles
from sim.mac.golden import gemm_tiles, ref_gemm

__all__ = ["run", "load_dataset", "make_net", "hutchinson_traces", "cross_terms", "bisect_path",
           "move_path", "network_cycles", "budget_lines", "MODELS", "ROWS", "COLS", "BATCH"]

ROWS, COLS, BATCH = 4, 4, 4
#: The search whose choice is reported, fine-tuned and run on the array and the board.
RECORD = "hessian+inter-layer / cycle"
LEVELS = ("int8", "int4", "2bit")
BITS = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2}
SHORT = {"int8": "8", "int4": "4", "int2": "2", "ternary": "T"}

#: model -> (dataset, float epochs full / quick)
MODELS = {"digits-mlp": ("digits", 100, 40), "mnist1d-mlp": ("mnist1d", 60, 20),
          "mnist1d-cnn": ("mnist1d", 40, 15)}


def load_dataset(name):
    """``{"x", "y", "xv", "yv", "xt", "yt", "x_scale"}`` (train, val, test; float inputs and the int8
    input scale). Digits pixels are 0..16, given as pixel / 16 with scale 1/16 (exact integers)."""
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        d = load_digits()
        x, y = d.data / 16.0, d.target
        x, xt, y, yt = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
        x, xv, y, yv = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
        return {"x": x, "y": y, "xv": xv, "yv": yv, "xt": xt, "yt": yt, "x_scale": 1 / 16}
    if name == "mnist1d":
        from mnist1d.data import make_dataset  # deferred: only the MNIST-1D runs need it
        d = make_dataset()
        x, y = d["x"], d["y"]
        return {"x": x[:3200], "y": y[:3200], "xv": x[3200:], "yv": y[3200:], "xt": d["x_test"],
                "yt": d["y_test"], "x_scale": float(np.abs(x[:3200]).max()) / 127}
    raise ValueError(f"dataset must be 'digits' or 'mnist1d', not {name!r}")


def make_net(model, rng):
    if model == "digits-mlp":
        layers = [Dense(64, 32), Dense(32, 32), Dense(32, 16), Dense(16, 10)]
    elif model == "mnist1d-mlp":
        layers = [Dense(40, 128), Dense(128, 128), Dense(128, 10)]
    elif model == "mnist1d-cnn":
        layers = [Conv1d(1, 16, 5, 2, 2, 40), Conv1d(16, 32, 3, 2, 1, 20), Conv1d(32, 32, 3, 2, 1, 10),
                  Dense(160, 10)]
    else:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    return Net(layers, rng)


def network_cycles(net, modes, *, batch=BATCH, rows=ROWS, cols=COLS):
    """Array cycles of the network for ``batch`` inputs (layers one after the other)."""
    return sum(gemm_cycles(m, k, n, mode, rows=rows, cols=cols)
               for (m, k, n), mode in zip(net.gemm_shapes(batch), modes))


def weight_bits(net, modes):
    return sum(w.size * BITS[mode] for w, mode in zip(net.w, modes))


def hutchinson_traces(net, x, y, n_samples, rng):
    """Per-layer ``tr(H_ll)`` estimates (mean of ``vᵀ H v`` over Rademacher ``v``) and their standard
    errors."""
    out = []
    for l in range(len(net.w)):
        vals = []
        for _ in range(n_samples):
            v = [None] * len(net.w)
            v[l] = rng.choice([-1.0, 1.0], size=net.w[l].shape)
            vals.append(float((v[l] * hvp(net, x, y, v)[l]).sum()))
        out.append(mean_se(vals))
    return out


def cross_terms(net, x, y, deltas):
    """``D[l][m] = Δ_lᵀ H_lm Δ_m`` (symmetric up to rounding), one Hessian-vector product per layer."""
    L = len(net.w)
    D = np.zeros((L, L))
    for l in range(L):
        v = [None] * L
        v[l] = deltas[l]
        hv = hvp(net, x, y, v)
        for m in range(L):
            D[m, l] = float((deltas[m] * hv[m]).sum())
    return (D + D.T) / 2


def two_bit_modes(net):
    """Per layer the 2-bit format (int2 or ternary) with the smaller weight quantization error."""
    return [min(("int2", "ternary"), key=lambda m: float(((fake_quant(w, m) - w) ** 2).sum())) for w in net.w]


def level_modes(net, levels, two_bit):
    return [LEVELS[p] if LEVELS[p] != "2bit" else two_bit[l] for l, p in enumerate(levels)]


def scores(net, x, y, traces, two_bit):
    """``{"hutchinson": S, "hessian+inter-layer": S}``, ``S[l][p]`` for each level ``p``."""
    L = len(net.w)
    hut = np.zeros((L, len(LEVELS)))
    aug = np.zeros((L, len(LEVELS)))
    for p in range(len(LEVELS)):
        modes = level_modes(net, [p] * L, two_bit)
        deltas = [fake_quant(w, mode) - w for w, mode in zip(net.w, modes)]
        D = cross_terms(net, x, y, deltas)
        for l in range(L):
            hut[l, p] = 0.5 * traces[l][0] / net.w[l].size * float((deltas[l] ** 2).sum())
            aug[l, p] = hut[l, p] + 0.5 * (D[l].sum() - D[l, l])
    return {"hutchinson": hut, "hessian+inter-layer": aug}


def move_path(n_layers, key):
    """Configurations (level per layer) from all-int8 to all-2-bit, one move at a time, taking the move
    with the smallest ``key(layer, to_level)`` among those whose previous step is done."""
    levels = [0] * n_layers
    path = [tuple(levels)]
    while any(p < len(LEVELS) - 1 for p in levels):
        open_layers = [l for l in range(n_layers) if levels[l] < len(LEVELS) - 1]
        l = min(open_layers, key=lambda l: key(l, levels[l] + 1))
        levels[l] += 1
        path.append(tuple(levels))
    return path


def bisect_path(path, meets):
    """Bisection for the last configuration on ``path`` that ``meets`` the budget (accuracy assumed to
    fall along the path). Returns ``(index or None, evaluated indices)``; ``None``: not even the
    first configuration meets it."""
    seen = []

    def ok(i):
        seen.append(i)
        return meets(path[i])
    if not ok(0):
        return None, seen
    lo, hi = 0, len(path) - 1
    if ok(hi):
        return hi, seen
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo, seen


class _Evaluator:
    """Validation / test accuracy (%) and cycles of configurations (level tuples), cached."""

    def __init__(self, net, data, two_bit, calib):
        self.net, self.data, self.two_bit, self.calib = net, data, two_bit, calib
        self.cache = {}

    def modes(self, levels):
        return level_modes(self.net, levels, self.two_bit)

    def __call__(self, levels):
        if levels not in self.cache:
            modes = self.modes(levels)
            m = IntModel(self.net, modes, self.data["x_scale"], self.calib)
            d = self.data
            self.cache[levels] = {"val": 100 * m.accuracy(d["xv"], d["yv"]),
                                  "test": 100 * m.accuracy(d["xt"], d["yt"]),
                                  "cycles": network_cycles(self.net, modes),
                                  "bits": weight_bits(self.net, modes), "modes": modes}
        return self.cache[levels]


def _shape(x, model):
    return x.reshape(len(x), 40, 1) if model == "mnist1d-cnn" else x


def _float_acc(net, x, y):
    return 100 * float((logits(net, x).argmax(1) == y).mean())


def search_one(model, data, seed, *, budget, quick, n_random):
    """Train, quantize and search one model at one seed; returns a dict of everything reported."""
    rng = np.random.default_rng(seed)
    d = {k: (_shape(v, model) if k in ("x", "xv", "xt") else v) for k, v in data.items()}
    epochs = MODELS[model][2 if quick else 1]
    net = train(make_net(model, rng), d["x"], d["y"], epochs=epochs, rng=rng)
    calib_idx = rng.permutation(len(d["y"]))[:512]
    xc, yc = d["x"][calib_idx], d["y"][calib_idx]
    two_bit = two_bit_modes(net)
    ev = _Evaluator(net, d, two_bit, xc)
    L = len(net.w)
    ref_val, ref_test = _float_acc(net, d["xv"], d["yv"]), _float_acc(net, d["xt"], d["yt"])
    meets = lambda c: ev(c)["val"] >= ref_val - budget  # noqa: E731
    traces = hutchinson_traces(net, xc, yc, 8 if quick else 32, rng)
    sc = scores(net, xc, yc, traces, two_bit)

    out = {"model": model, "seed": seed, "net": net, "ev": ev, "ref_val": ref_val, "ref_test": ref_test,
           "traces": traces, "two_bit": two_bit, "epochs": epochs, "searches": {}}
    dcyc = np.zeros((L, len(LEVELS)))           # cycles a layer's move to level p saves
    for l, shape in enumerate(net.gemm_shapes(BATCH)):
        for p in range(1, len(LEVELS)):
            modes = [level_modes(net, [q] * L, two_bit)[l] for q in (p - 1, p)]
            dcyc[l, p] = gemm_cycles(*shape, modes[0], rows=ROWS, cols=COLS) - \
                gemm_cycles(*shape, modes[1], rows=ROWS, cols=COLS)
    keys = {}
    for name, S in sc.items():
        keys[name] = lambda l, p, S=S: S[l, p] - S[l, p - 1]
        keys[f"{name} / cycle"] = lambda l, p, S=S: (S[l, p] - S[l, p - 1]) / dcyc[l, p] if dcyc[l, p] > 0 \
            else np.inf
    keys["cycles only"] = lambda l, p: -dcyc[l, p]
    for name, key in keys.items():
        path = move_path(L, key)
        idx, seen = bisect_path(path, meets)
        best = max((path[i] for i in seen), key=lambda c: ev(c)["val"])
        out["searches"][name] = {"path": path, "chosen": path[idx] if idx is not None else None,
                                 "best": best, "evals": len(set(seen)),
                                 "path_acc": float(np.mean([ev(c)["val"] for c in path]))}
    rand = []
    for _ in range(n_random):
        keys = rng.random((L, len(LEVELS)))
        path = move_path(L, lambda l, p, keys=keys: keys[l, p])
        idx, _ = bisect_path(path, meets)
        rand.append({"chosen": path[idx] if idx is not None else None,
                     "path_acc": float(np.mean([ev(c)["val"] for c in path]))})
    out["random"] = rand
    for c in itertools.product(range(len(LEVELS)), repeat=L):   # exhaustive: Pareto front, oracle
        ev(c)
    ok = [c for c in ev.cache if meets(c)]
    out["oracle"] = min(ok, key=lambda c: (ev(c)["cycles"], -ev(c)["val"])) if ok else None
    uniform = [tuple([p] * L) for p in range(len(LEVELS))]
    out["uniform"] = uniform
    ok_u = [c for c in uniform if meets(c)]
    out["best_uniform"] = min(ok_u, key=lambda c: ev(c)["cycles"]) if ok_u else None
    return out


def _cfg(ev, c):
    return "/".join(SHORT[m] for m in ev(c)["modes"]) if c is not None else "-"


def _finetune(res, data, epochs, configs):
    """QAT (straight-through) of each configuration for ``epochs`` more epochs from the float model,
    and the float model trained for the same extra epochs; test accuracies (%)."""
    model, net0, ev = res["model"], res["net"], res["ev"]
    d = {k: (_shape(v, model) if k in ("x", "xv", "xt") else v) for k, v in data.items()}
    out = {}
    for name, c in configs:
        rng = np.random.default_rng(1000 + res["seed"])
        net = net0.copy()
        if c is None:
            train(net, d["x"], d["y"], epochs=epochs, rng=rng, lr=5e-4)
            out[name] = _float_acc(net, d["xt"], d["yt"])
        else:
            modes = ev(c)["modes"]
            train(net, d["x"], d["y"], epochs=epochs, rng=rng, lr=5e-4, modes=modes)
            calib = d["x"][np.random.default_rng(res["seed"]).permutation(len(d["y"]))[:512]]
            out[name] = 100 * IntModel(net, modes, d["x_scale"], calib).accuracy(d["xt"], d["yt"])
    return out


def run(*, quick=False, seeds=None, plot=None, budget=1.0, models=None, n_random=None):
    """The experiment; ``models`` (names of :data:`MODELS`) defaults to all three."""
    models = list(models or MODELS)
    seeds = list(range(seeds or (1 if quick else 5)))
    n_random = n_random or (10 if quick else 40)
    datasets = {}
    res = Result("mixed-precision")
    all_runs = {m: [] for m in models}
    for model in models:
        ds = MODELS[model][0]
        if ds not in datasets:
            datasets[ds] = load_dataset(ds)
        for seed in seeds:
            progress(f"mixed-precision: {model}, seed {seed}")
            all_runs[model].append(search_one(model, datasets[ds], seed, budget=budget, quick=quick,
                                              n_random=n_random))
    for model in models:
        _report_model(res, model, all_runs[model], budget, datasets[MODELS[model][0]], quick)
    _report_summary(res, models, all_runs, budget)
    r0 = all_runs[models[0]][0]
    if "digits-mlp" in models:
        r0 = all_runs["digits-mlp"][0]
        chosen = r0["searches"][RECORD]["chosen"] or r0["uniform"][0]
        res.data["board_model"] = _board_model(r0, chosen, datasets["digits"])
        res.tables.append(_array_check(r0, chosen, datasets["digits"]))
    if plot:
        res.plot = _plot(all_runs, models, budget, plot)
    return res


def budget_lines(model, r, budget):
    """One line per search whose budget no configuration on its path met: the best one it found."""
    ev, out = r["ev"], []
    for name, s in r["searches"].items():
        if s["chosen"] is None:
            e = ev(s["best"])
            out.append(f"{model} {name}: BUDGET NOT MET: no configuration on the path is within {budget} "
                       f"points of float ({r['ref_val']:.2f} % val); best found {_cfg(ev, s['best'])}: "
                       f"val {e['val']:.2f} %, test {e['test']:.2f} %, {e['cycles']} cycles")
    return out


def _report_model(res, model, runs, budget, data, quick):
    r = runs[0]
    ev, net = r["ev"], r["net"]
    shapes = ", ".join(f"{m}x{k}x{n}" for m, k, n in net.gemm_shapes(BATCH))
    res.lines.append(f"{model}: GEMMs (M x K x N, batch {BATCH}) {shapes}; 2-bit formats "
                     f"{'/'.join(SHORT[m] for m in r['two_bit'])}; float {r['epochs']} epochs; Hutchinson "
                     f"traces " + ", ".join(f"{t:.3g}±{s:.2g}" for t, s in r["traces"]))
    t = Table(f"{model}, seed {r['seed']}: float val {r['ref_val']:.2f} % / test {r['ref_test']:.2f} %, "
              f"budget {budget} points on val (PTQ)",
              ["configuration", "layers", "val %", "test %", "cycles", "vs int8", "weight bits", "evals"])
    c8 = ev(r["uniform"][0])["cycles"]

    def row(label, c, evals=""):
        if c is None:
            t.rows.append([label, "budget not met", "-", "-", "-", "-", "-", evals])
            return
        e = ev(c)
        t.rows.append([label, _cfg(ev, c), e["val"], e["test"], e["cycles"],
                       f"{100 * (e['cycles'] / c8 - 1):+.1f} %", e["bits"], evals])
    for name, c in zip(("uniform int8", "uniform int4", "uniform 2-bit"), r["uniform"]):
        row(name, c)
    row("best uniform within budget", r["best_uniform"])
    for name, s in r["searches"].items():
        row(f"search: {name}", s["chosen"], s["evals"])
    rcyc = [ev(x["chosen"])["cycles"] for x in r["random"] if x["chosen"] is not None]
    if rcyc:
        m, se = mean_se(rcyc)
        t.rows.append([f"search: random order ({len(r['random'])} orders)", "mean ± se", "-", "-",
                       f"{m:.0f} ± {se:.0f}", f"{100 * (m / c8 - 1):+.1f} %", "-", "-"])
    row(f"exhaustive ({len(ev.cache)} configurations): fastest within budget", r["oracle"], len(ev.cache))
    res.tables.append(t)
    res.lines += budget_lines(model, r, budget)
    # Pareto front on validation accuracy vs cycles (weight bits as a third objective).
    pts = list(ev.cache)
    key = lambda c: (ev(c)["val"], -ev(c)["cycles"], -ev(c)["bits"])  # noqa: E731
    front = [c for c in pts if not any(all(a >= b for a, b in zip(key(o), key(c))) and key(o) != key(c)
                                       for o in pts)]
    front.sort(key=lambda c: ev(c)["cycles"])
    pf = Table(f"{model}, seed {r['seed']}: Pareto front (val accuracy, cycles, weight bits) of all "
               f"{len(pts)} configurations", ["layers", "val %", "test %", "cycles", "weight bits"],
               [[_cfg(ev, c), ev(c)["val"], ev(c)["test"], ev(c)["cycles"], ev(c)["bits"]] for c in front])
    res.tables.append(pf)
    # Fine-tuned variants (seed 0): every configuration and the float model the same extra epochs.
    ft_epochs = max(2, r["epochs"] // 4)
    chosen = r["searches"][RECORD]["chosen"]
    configs = [("float (trained the same extra epochs)", None)] + \
        [(n, c) for n, c in zip(("uniform int8", "uniform int4", "uniform 2-bit"), r["uniform"])]
    if chosen is not None:
        configs.append((f"mixed ({RECORD} PTQ choice)", chosen))
    progress(f"mixed-precision: {model}, fine-tuning {len(configs)} models {ft_epochs} epochs each")
    ft = _finetune(r, data, ft_epochs, configs)
    res.tables.append(Table(f"{model}, seed {r['seed']}: fine-tuned {ft_epochs} more epochs each (QAT, "
                            f"straight-through; float continued as long)", ["model", "layers", "test %",
                                                                          "cycles"],
                            [[n, _cfg(ev, c) if c else "float", ft[n], ev(c)["cycles"] if c else "-"]
                             for n, c in configs]))


def _report_summary(res, models, all_runs, budget):
    t = Table(f"summary over seeds (mean ± standard error; budget {budget} points on val; cycles for "
              f"{BATCH} inputs on a {ROWS}x{COLS} array)",
              ["model", "search", "seeds", "cycles vs int8", "test loss vs float", "meets budget",
               "< best uniform", "path val acc"])
    for model in models:
        runs = all_runs[model]
        names = list(runs[0]["searches"]) + ["random order", "exhaustive (oracle)", "best uniform"]
        for name in names:
            red, loss, met, beats, area = [], [], 0, 0, []
            for r in runs:
                ev = r["ev"]
                c8 = ev(r["uniform"][0])["cycles"]
                if name == "random order":
                    chosen = [x["chosen"] for x in r["random"]]
                    area.append(np.mean([x["path_acc"] for x in r["random"]]))
                elif name == "exhaustive (oracle)":
                    chosen = [r["oracle"]]
                elif name == "best uniform":
                    chosen = [r["best_uniform"]]
                else:
                    chosen = [r["searches"][name]["chosen"]]
                    area.append(r["searches"][name]["path_acc"])
                ok = [c for c in chosen if c is not None]
                met += len(ok) == len(chosen)
                if ok:
                    red.append(np.mean([100 * (ev(c)["cycles"] / c8 - 1) for c in ok]))
                    loss.append(np.mean([r["ref_test"] - ev(c)["test"] for c in ok]))
                    bu = r["best_uniform"]
                    beats += int(bu is not None and all(ev(c)["cycles"] < ev(bu)["cycles"] for c in ok))

            def f(v, unit=""):
                if not v:
                    return "-"
                m, se = mean_se(v)
                return f"{m:+.2f} ± {se:.2f}{unit}"
            t.rows.append([model, name + (" *" if name == RECORD else ""), len(runs), f(red, " %"), f(loss),
                           f"{met}/{len(runs)}", "-" if name == "best uniform" else f"{beats}/{len(runs)}",
                           f(area).lstrip("+") if area else "-"])
    res.tables.append(t)
    res.lines.append(f"* the method of record ({RECORD}): moves ranked by the metric's increase per cycle "
                     "saved. test loss: float test accuracy minus the choice's (points); cycles vs int8: "
                     "negative = fewer; '< best uniform': seeds where the choice needs fewer cycles than the "
                     "fastest uniform precision within the budget; 'path val acc': mean validation accuracy "
                     "over the configurations of the search's path (higher: the order keeps accuracy "
                     "longer; random: mean over orders); oracle: the fastest configuration within the "
                     "budget among all.")


def _board_model(r, chosen, data):
    """What the board run needs: integer weights per layer, scales, biases (firmware builds the same
    pipeline around the board's GEMM command)."""
    ev = r["ev"]
    d = data
    calib = d["x"][np.random.default_rng(r["seed"]).permutation(len(d["y"]))[:512]]
    m = IntModel(r["net"], ev(chosen)["modes"], d["x_scale"], calib)
    return {"model": m, "x": d["xt"], "y": d["yt"], "layers": _cfg(ev, chosen)}


def _array_check(r, chosen, data):
    """Run the chosen configuration's GEMMs for one batch of test inputs through the MAC array in the
    Amaranth simulator, in each layer's mode: results vs the golden model, cycles vs the model."""
    ev = r["ev"]
    modes = ev(chosen)["modes"]
    calib = data["x"][np.random.default_rng(r["seed"]).permutation(len(data["y"]))[:512]]
    m = IntModel(r["net"], modes, data["x_scale"], calib)
    rows, ok, total_sim, total_model = [], True, 0, 0

    def accumulate(l, X, mode, W):
        nonlocal ok, total_sim, total_model
        tiles = gemm_tiles(X, W, mode, rows=ROWS, cols=COLS, acc_width=24)
        out = run_tiles(MacArray(rows=ROWS, cols=COLS, acc_width=24, tile_k=0, count_bits=12), tiles)
        y = np.zeros((-(-len(X) // ROWS) * ROWS, -(-len(W) // COLS) * COLS), dtype=np.int64)
        for i, t in enumerate(tiles):
            y[t["m0"]:t["m0"] + ROWS, t["n0"]:t["n0"] + COLS] = [out["rows"][i * ROWS + k]["values"]
                                                                 for k in range(ROWS)]
        y = y[:len(X), :len(W)]
        gold = ref_gemm(X, W, mode, acc_width=24)[0]
        cyc = gemm_cycles(len(X), X.shape[1], len(W), mode, rows=ROWS, cols=COLS)
        ok &= bool((y == gold).all())
        total_sim += out["cycles"]
        total_model += cyc
        rows.append([l, mode, f"{len(X)}x{X.shape[1]}x{len(W)}", out["cycles"], cyc,
                     "yes" if (y == gold).all() else "NO"])
        return y
    m.forward(data["xt"][:BATCH], accumulate)
    rows.append(["all", _cfg(ev, chosen), "", total_sim, total_model, "yes" if ok else "NO"])
    if not ok or total_sim != total_model:
        raise AssertionError(f"MAC array check failed: results equal {ok}, cycles {total_sim} vs model "
                             f"{total_model}")
    return Table(f"{r['model']} chosen configuration on the MAC array ({ROWS}x{COLS}, Amaranth simulator, "
                 f"{BATCH} test inputs): cycles measured vs the cycle model, results vs the golden model",
                 ["layer", "mode", "M x K x N", "cycles (sim)", "cycles (model)", "== golden"], rows)


def _plot(all_runs, models, budget, path):
    fig, axes = new_figure(len(models), 4.5, 3.6)
    for ax, model in zip(axes[0], models):
        r = all_runs[model][0]
        ev = r["ev"]
        pts = list(ev.cache)
        ax.scatter([ev(c)["cycles"] for c in pts], [ev(c)["val"] for c in pts], s=8, c="0.7",
                   label="all configurations")
        for c, name in zip(r["uniform"], ("int8", "int4", "2-bit")):
            ax.scatter(ev(c)["cycles"], ev(c)["val"], marker="s", label=f"uniform {name}")
        for name, mk in (("hutchinson / cycle", "^"), (RECORD, "*"), ("cycles only", "v")):
            c = r["searches"][name]["chosen"]
            if c is not None:
                ax.scatter(ev(c)["cycles"], ev(c)["val"], marker=mk, s=90, label=name)
        ax.axhline(r["ref_val"] - budget, color="k", ls="--", lw=0.8, label="budget")
        ax.set_title(model)
        ax.set_xlabel(f"array cycles ({BATCH} inputs)")
        ax.set_ylabel("validation accuracy %")
        lo = r["ref_val"] - 15
        ax.set_ylim(max(0, lo), r["ref_val"] + 2)
    axes[0][0].legend(fontsize=6)
    return save_figure(fig, path)
