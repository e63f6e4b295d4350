"""``edgelearn experiment``: the machinery of each experiment on tiny settings (seconds, not minutes)."""

import numpy as np
import pytest

from edgelearn.cli import main
from hw.mac import MacArray
from sim.experiments import mean_se
from sim.experiments.mixed_precision import bisect_path, cross_terms, hutchinson_traces, move_path
from sim.experiments.nets import Conv1d, Dense, IntModel, Net, grads, hvp, loss
from sim.mac.amaranth_run import run_tiles
from sim.mac.cycles import gemm_cycles
from sim.mac.golden import gemm_tiles, random_acts, random_weights, ref_gemm


def _tiny_net(rng, conv=False):
    layers = [Conv1d(2, 3, 3, 2, 1, 8), Dense(12, 3)] if conv else [Dense(6, 5), Dense(5, 4), Dense(4, 3)]
    net = Net(layers, rng)
    for b in net.b:
        b += rng.normal(0, 0.1, b.shape)
    x = rng.normal(size=(7, 8, 2) if conv else (7, 6))
    return net, x, rng.integers(0, 3, 7)


def _exact_hessian(net, x, y):
    """The full weight Hessian from HVPs with unit vectors (tiny models only)."""
    sizes = [w.size for w in net.w]
    n = sum(sizes)
    H = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1
        v = np.split(e, np.cumsum(sizes)[:-1])
        H[:, i] = np.concatenate([h.ravel() for h in hvp(net, x, y, [a.reshape(w.shape)
                                                                      for a, w in zip(v, net.w)])])
    return H, np.cumsum([0] + sizes)


@pytest.mark.parametrize("conv", [False, True])
def test_hvp_matches_gradient_differences(conv):
    rng = np.random.default_rng(0)
    net, x, y = _tiny_net(rng, conv)
    v = [rng.normal(size=w.shape) for w in net.w]
    eps = 1e-5
    gp = grads(net, x, y, [w + eps * d for w, d in zip(net.w, v)])[1]
    gm = grads(net, x, y, [w - eps * d for w, d in zip(net.w, v)])[1]
    for h, a, b in zip(hvp(net, x, y, v), gp, gm):
        fd = (a - b) / (2 * eps)
        assert np.abs(h - fd).max() < 1e-6 * np.abs(fd).max()
    # and the gradient against the loss itself
    d = [rng.normal(size=w.shape) for w in net.w]
    num = (loss(net, x, y, [w + eps * e for w, e in zip(net.w, d)])
           - loss(net, x, y, [w - eps * e for w, e in zip(net.w, d)])) / (2 * eps)
    assert num == pytest.approx(sum((g * e).sum() for g, e in zip(grads(net, x, y)[1], d)), rel=1e-6)


def test_hutchinson_trace_and_cross_terms_match_exact_hessian():
    rng = np.random.default_rng(1)
    net, x, y = _tiny_net(rng)
    H, off = _exact_hessian(net, x, y)
    assert np.allclose(H, H.T, atol=1e-10)
    est = hutchinson_traces(net, x, y, 400, np.random.default_rng(2))
    for l, (t, se) in enumerate(est):
        exact = np.trace(H[off[l]:off[l + 1], off[l]:off[l + 1]])
        assert 0 < se < 0.2 * abs(exact) + 1e-12
        assert abs(t - exact) < 4 * se, (l, t, exact, se)
    deltas = [rng.normal(size=w.shape) for w in net.w]
    D = cross_terms(net, x, y, deltas)
    flat = [d.ravel() for d in deltas]
    for l in range(3):
        for m in range(3):
            assert D[l, m] == pytest.approx(flat[l] @ H[off[l]:off[l + 1], off[m]:off[m + 1]] @ flat[m],
                                            rel=1e-8, abs=1e-12)


def test_conv_im2col_is_a_convolution():
    rng = np.random.default_rng(3)
    L = Conv1d(2, 3, 3, 2, 1, 8)
    h = rng.normal(size=(2, 8, 2))
    w = rng.normal(size=(3, 3, 2))        # cout x taps x cin, the column order of cols()
    y = (L.cols(h) @ w.reshape(3, -1).T).reshape(2, L.length_out, 3)
    hp = np.pad(h, ((0, 0), (1, 1), (0, 0)))
    direct = np.array([[[sum(hp[b, t * 2 + j, c] * w[o, j, c] for j in range(3) for c in range(2))
                         for o in range(3)] for t in range(L.length_out)] for b in range(2)])
    assert np.allclose(y, direct)


@pytest.mark.parametrize("rows,cols", [(4, 4), (2, 4)])
def test_cycle_model_matches_simulated_array(rows, cols):
    """A small network's GEMMs in three modes, including tiles shorter than the array's rows."""
    rng = np.random.default_rng(4)
    total_sim = total_model = 0
    for (m, k, n, mode) in [(4, 10, 8, "int8"), (6, 9, 5, "int4"), (4, 6, 12, "ternary"), (3, 20, 4, "int2")]:
        x, w = random_acts(rng, (m, k)), random_weights(rng, (n, k), mode)
        tiles = gemm_tiles(x, w, mode, rows=rows, cols=cols)
        out = run_tiles(MacArray(rows=rows, cols=cols, acc_width=24, tile_k=0, count_bits=12), tiles)
        assert out["cycles"] == gemm_cycles(m, k, n, mode, rows=rows, cols=cols), (m, k, n, mode)
        total_sim += out["cycles"]
        total_model += gemm_cycles(m, k, n, mode, rows=rows, cols=cols)
    assert total_sim == total_model


def test_integer_pipeline_accumulators_are_the_golden_gemm():
    rng = np.random.default_rng(5)
    net, x, _ = _tiny_net(rng, conv=True)
    modes = ["int4", "ternary"]
    m = IntModel(net, modes, float(np.abs(x).max()) / 127, x)
    seen = []

    def golden(l, X, mode, W):
        y = ref_gemm(X, W, mode, acc_width=24)[0]
        assert np.array_equal(y, X @ W.T)         # no saturation: numpy's product is the array's
        seen.append((l, mode))
        return y
    assert np.array_equal(m.forward(x, golden), m.forward(x))
    assert seen == [(0, "int4"), (1, "ternary")]


def test_move_path_and_bisection():
    # Move keys: layer 0 cheap at both steps, layer 1 expensive; precedence int4 before 2-bit.
    keys = {(0, 1): 1, (0, 2): 0, (1, 1): 5, (1, 2): 6}
    path = move_path(2, lambda l, p: keys[(l, p)])
    assert path == [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2)]
    # Monotone accuracy along the path: bisection finds the last one that meets the budget.
    acc = {c: 100 - 2 * sum(c) for c in path}
    idx, seen = bisect_path(path, lambda c: acc[c] >= 95)
    assert path[idx] == (2, 0) and len(set(seen)) <= 4
    # A budget nothing meets: None, and only the first configuration was tried.
    idx, seen = bisect_path(path, lambda c: False)
    assert idx is None and seen == [0]


def test_budget_not_met_line():
    from sim.experiments.mixed_precision import budget_lines
    evals = {(0, 0): {"val": 90.0, "test": 89.5, "cycles": 984, "modes": ["int8", "int8"]},
             (1, 0): {"val": 80.0, "test": 79.0, "cycles": 700, "modes": ["int4", "int8"]}}
    path = [(0, 0), (1, 0)]
    idx, seen = bisect_path(path, lambda c: evals[c]["val"] >= 95.0 - 1.0)
    assert idx is None
    r = {"ev": evals.__getitem__, "ref_val": 95.0,
         "searches": {"hutchinson": {"chosen": None, "best": max((path[i] for i in seen),
                                                                 key=lambda c: evals[c]["val"])},
                      "random": {"chosen": (0, 0), "best": (0, 0)}}}
    lines = budget_lines("m", r, 1.0)
    assert lines == ["m hutchinson: BUDGET NOT MET: no configuration on the path is within 1.0 points of "
                     "float (95.00 % val); best found 8/8: val 90.00 %, test 89.50 %, 984 cycles"]


def test_mean_se():
    assert mean_se([1.0]) == (1.0, 0.0)
    m, se = mean_se([1.0, 2.0, 3.0])
    assert m == 2.0 and se == pytest.approx(1 / np.sqrt(3))


@pytest.mark.parametrize("args,needle", [
    (["experiment", "nosuch"], "unknown experiment name 'nosuch'; the experiments are: mixed-precision, "),
    (["experiment", "stdp-dw", "--budget", "1"], "--budget applies only to mixed-precision"),
    (["experiment", "stdp-dw", "--seeds", "0"], "--seeds must be a positive integer"),
])
def test_bad_arguments_one_line_exit_2(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgelearn: error: ") and needle in err and err.count("\n") == 1


def test_list(capsys):
    assert main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("mixed-precision", "hdqt", "stdp-error", "synapse-encodings"):
        assert name in out


# --- HDQT: the backward-operand option ---------------------------------------------------------------

def test_hdqt_backward_operands():
    from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_layer_step
    cfg = HdqtConfig(lr_shift=3)
    rng = np.random.default_rng(6)
    # Operands already on the 4-bit grid (shift 0): quantizing them first changes nothing.
    x, w = rng.integers(0, 16, (32, 16)), rng.integers(-7, 8, (8, 16))
    dy = rng.integers(-3000, 3000, (32, 8))
    a = ref_layer_step(cfg, w, x, -4, dy, -20, LfsrStream(), backward="input")
    b = ref_layer_step(cfg, w, x, -4, dy, -20, LfsrStream(), backward="quantized")
    for k in ("dx", "dw", "w"):
        assert np.array_equal(a[k], b[k])
    # Wide operands: the quantized source differs, but it is the same gradient up to rounding (a wrong
    # exponent would scale it by a power of two).
    x, w = rng.integers(0, 3000, (32, 16)), rng.integers(-6000, 6000, (8, 16))
    a = ref_layer_step(cfg, w, x, -8, dy, -20, LfsrStream(), backward="input")
    b = ref_layer_step(cfg, w, x, -8, dy, -20, LfsrStream(), backward="quantized")
    assert not np.array_equal(a["dw"], b["dw"])
    for k in ("dw", "dx"):
        fa, fb = a[k] * 2.0 ** a[f"{k}_exp"], b[k] * 2.0 ** b[f"{k}_exp"]
        assert np.corrcoef(fa.ravel(), fb.ravel())[0, 1] > 0.8
        assert 0.7 < np.abs(fb).sum() / np.abs(fa).sum() < 1.4
    with pytest.raises(ValueError, match="backward must be 'input' or 'quantized'"):
        ref_layer_step(cfg, w, x, -8, dy, -20, LfsrStream(), backward="float")


def test_hdqt_mnist1d_tasks_are_int16():
    from sim.hdqt.experiment import input_format, load_tasks
    xtr, xte, ytr, yte = load_tasks(0, "mnist1d")
    assert xtr.shape == (4000, 40) and xte.shape == (1000, 40) and set(ytr) == set(range(10))
    assert xtr.dtype == np.int64 and np.abs(xtr).max() < 1 << 15
    assert input_format("mnist1d") == (40, -8, False)


# --- STDP error curve and synapse encodings ------------------------------------------------------------

def test_stdp_error_zero_above_window_and_not_below():
    from hw.stdp import spec
    from sim.experiments.stdp_error import ltp_ltd_errors, spike_trains
    T = 20
    kp, km = spec.exp_kernel(T, 40, 5), spec.exp_kernel(T, 44, 5)
    syn = [(p, 3 + q) for p in range(3) for q in range(3)]
    for refractory, exact in ((T - 1, True), (2, False)):
        trains = spike_trains(np.random.default_rng(7), 6, 3000, 60, refractory)
        for t in trains:
            assert np.all(np.diff(t) > refractory)
        ltp, ltd = ltp_ltd_errors(trains, syn, kp, km, T, 3000)
        assert (ltp == 0 and ltd == 0) if exact else (ltp > 0.05 and ltd > 0.01), (refractory, ltp, ltd)


def test_synapse_energy_model_and_counts():
    from sim.experiments.synapse_encodings import access_energy_pj, measure, rtl_check
    assert access_energy_pj(8 * 1024 * 8, 64) == pytest.approx(10.0)
    assert access_energy_pj(32 * 1024 * 8, 64) == pytest.approx(20.0)
    assert access_energy_pj(1024 * 1024 * 8, 32) == pytest.approx(50.0)
    n, f = 32, 4
    csr, xbar = measure("csr", n, f, steps=5), measure("crossbar", n, f, steps=5)
    assert csr["walks"] == xbar["walks"] > 0                     # same spikes, same walks
    assert csr["accesses"]["syn"] == 2 * csr["walks"] * f       # read + write per walked synapse
    assert xbar["accesses"]["syn"] == 2 * xbar["walks"] * n     # every post of the row
    assert csr["accesses"]["row"] == csr["walks"] and "row" not in xbar["accesses"]
    t = rtl_check(n=8, fanout=2, steps=4)
    for enc, walks, words, cycles, _, ok in t.rows:
        assert ok is True and walks > 0 and cycles >= words
        assert words == walks * (8 if enc == "crossbar" else 2)
