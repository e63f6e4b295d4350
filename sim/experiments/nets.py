"""Small numpy networks whose layers are GEMMs on the MAC array: training, exact Hessian-vector products
and the array's integer inference pipeline.

A network is a list of layers; each is ``Y = cols(H) · Wᵀ + b`` (then ReLU, except after the last):
:class:`Dense` takes the flattened input as ``cols``, :class:`Conv1d` its im2col matrix (rows = batch
× output positions, columns = kernel taps × input channels; activations are channels-last
``B x L x C``), so every layer is one ``M x K x N`` GEMM. The loss is the mean softmax cross-entropy.

:func:`grads` is plain backpropagation; :func:`hvp` the exact Hessian-vector product of the loss with
respect to the weights (Pearlmutter's R-operator: forward-mode through the network and its backward
pass; ReLU's second derivative is zero almost everywhere), for a direction on any subset of layers.
:func:`int_forward` is the integer pipeline the array runs: int8 activations (signed, post-ReLU
values 0..127), weights quantized per output channel by :func:`sim.mac.golden.quantize_weights`,
exact integer accumulators, float rescale + bias + ReLU between layers (outside the array).
"""

from dataclasses import dataclass

import numpy as np

from sim.mac.golden import quantize_weights

__all__ = ["Dense", "Conv1d", "Net", "grads", "hvp", "loss", "train", "int_forward", "fake_quant",
           "ACT_MAX"]

#: Activations are signed int8 on the array (the board's GEMM path takes signed bytes): post-ReLU
#: values use 0..127, signed inputs -127..127.
ACT_MAX = 127


@dataclass
class Dense:
    k: int
    n: int

    def cols(self, h):
        return h.reshape(len(h), -1)

    def uncols(self, g, h_shape):
        return g.reshape(h_shape)

    def out(self, a, batch):
        return a

    def m(self, batch):
        return batch


@dataclass
class Conv1d:
    """``cin -> cout`` channels, kernel ``ksize``, ``stride``, zero padding ``pad``, input ``length``."""
    cin: int
    cout: int
    ksize: int
    stride: int
    pad: int
    length: int

    @property
    def k(self):
        return self.ksize * self.cin

    @property
    def n(self):
        return self.cout

    @property
    def length_out(self):
        return (self.length + 2 * self.pad - self.ksize) // self.stride + 1

    def _index(self):
        t = np.arange(self.length_out)[:, None] * self.stride - self.pad + np.arange(self.ksize)[None, :]
        return t  # L_out x ksize positions into the unpadded input (-pad .. length+pad-1)

    def cols(self, h):
        h = h.reshape(len(h), self.length, self.cin)
        hp = np.pad(h, ((0, 0), (self.pad, self.pad), (0, 0)))
        c = hp[:, self._index() + self.pad, :]               # B x L_out x ksize x cin
        return c.reshape(len(h) * self.length_out, self.k)

    def uncols(self, g, h_shape):
        b = h_shape[0]
        g = g.reshape(b, self.length_out, self.ksize, self.cin)
        out = np.zeros((b, self.length + 2 * self.pad, self.cin))
        idx = self._index() + self.pad
        for j in range(self.ksize):
            np.add.at(out, (slice(None), idx[:, j], slice(None)), g[:, :, j, :])
        return out[:, self.pad:self.pad + self.length, :].reshape(h_shape)

    def out(self, a, batch):
        return a.reshape(batch, self.length_out, self.cout)

    def m(self, batch):
        return batch * self.length_out


class Net:
    """Layers plus float parameters ``w[l]`` (``N x K``) and ``b[l]``."""

    def __init__(self, layers, rng):
        self.layers = layers
        self.w = [rng.normal(0, np.sqrt(2.0 / L.k), (L.n, L.k)) for L in layers]
        self.b = [np.zeros(L.n) for L in layers]

    def copy(self):
        other = Net.__new__(Net)
        other.layers = self.layers
        other.w = [w.copy() for w in self.w]
        other.b = [b.copy() for b in self.b]
        return other

    def gemm_shapes(self, batch):
        """``[(M, K, N), ...]`` of each layer's GEMM for ``batch`` inputs."""
        return [(L.m(batch), L.k, L.n) for L in self.layers]


def _forward(net, x, w=None):
    w = net.w if w is None else w
    cache, h = [], x
    last = len(net.layers) - 1
    for l, L in enumerate(net.layers):
        X = L.cols(h)
        a = X @ w[l].T + net.b[l]
        cache.append((h.shape, X, a))
        h = L.out(a, len(x)) if l == last else np.maximum(L.out(a, len(x)), 0)
    return h.reshape(len(x), -1), cache


def _softmax(z):
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def loss(net, x, y, w=None):
    z, _ = _forward(net, x, w)
    p = _softmax(z)
    return float(-np.log(p[np.arange(len(y)), y] + 1e-300).mean())


def logits(net, x, w=None):
    return _forward(net, x, w)[0]


def grads(net, x, y, w=None):
    """``(loss, [dL/dW_l], [dL/db_l])`` of the mean cross-entropy."""
    w = net.w if w is None else w
    z, cache = _forward(net, x, w)
    p = _softmax(z)
    B = len(y)
    L_ = float(-np.log(p[np.arange(B), y] + 1e-300).mean())
    g = p.copy()
    g[np.arange(B), y] -= 1
    g /= B
    gw, gb = [None] * len(w), [None] * len(w)
    for l in range(len(net.layers) - 1, -1, -1):
        h_shape, X, a = cache[l]
        g = g.reshape(a.shape)
        gw[l] = g.T @ X
        gb[l] = g.sum(0)
        if l:
            gh = net.layers[l].uncols(g @ w[l], h_shape)
            g = gh.reshape(cache[l - 1][2].shape) * (cache[l - 1][2] > 0)
    return L_, gw, gb


def hvp(net, x, y, v):
    """Exact ``H v`` of the loss w.r.t. the weights (biases fixed); ``v[l]`` a direction or ``None``.

    Returns one ``N x K`` block per layer (all layers, also where ``v`` is ``None``).
    """
    w = net.w
    B = len(y)
    nl = len(net.layers)
    v = [np.zeros_like(w[l]) if v[l] is None else v[l] for l in range(nl)]
    # Forward and R-forward.
    h, rh = x, np.zeros_like(x)
    cache = []
    for l, L in enumerate(net.layers):
        X, rX = L.cols(h), L.cols(rh)
        a = X @ w[l].T + net.b[l]
        ra = rX @ w[l].T + X @ v[l].T
        cache.append((h.shape, X, rX, a))
        if l < nl - 1:
            mask = a > 0
            h, rh = L.out(a * mask, B), L.out(ra * mask, B)
        else:
            z, rz = a.reshape(B, -1), ra.reshape(B, -1)
    p = _softmax(z)
    g = p.copy()
    g[np.arange(B), y] -= 1
    g /= B
    rg = (p * rz - p * (p * rz).sum(1, keepdims=True)) / B
    out = [None] * nl
    for l in range(nl - 1, -1, -1):
        h_shape, X, rX, a = cache[l]
        g, rg = g.reshape(a.shape), rg.reshape(a.shape)
        out[l] = rg.T @ X + g.T @ rX
        if l:
            L = net.layers[l]
            gh = L.uncols(g @ w[l], h_shape)
            rgh = L.uncols(rg @ w[l] + g @ v[l], h_shape)
            mask = cache[l - 1][3] > 0
            g = gh.reshape(mask.shape) * mask
            rg = rgh.reshape(mask.shape) * mask
    return out


def fake_quant(w, mode):
    """``w`` quantized per output channel to ``mode`` and scaled back (float)."""
    if mode is None or mode == "float":
        return w
    q, s = quantize_weights(w, mode, per_channel=True)
    return q * s[:, None]


def train(net, x, y, *, epochs, rng, lr=2e-3, batch=64, modes=None):
    """Adam on minibatches (in place). ``modes`` (one per layer): quantization-aware training with
    fake-quantized weights and the straight-through estimator; ``None`` trains in float."""
    params = net.w + net.b
    m = [np.zeros_like(p) for p in params]
    s = [np.zeros_like(p) for p in params]
    t = 0
    nl = len(net.layers)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            wq = None if modes is None else [fake_quant(net.w[l], modes[l]) for l in range(nl)]
            _, gw, gb = grads(net, x[idx], y[idx], wq)
            t += 1
            for j, g in enumerate(gw + gb):
                m[j] = 0.9 * m[j] + 0.1 * g
                s[j] = 0.999 * s[j] + 0.001 * g * g
                params[j] -= lr * (m[j] / (1 - 0.9 ** t)) / (np.sqrt(s[j] / (1 - 0.999 ** t)) + 1e-8)
    return net


def quantize_input(x, scale):
    """Network input as signed int8 (``x ≈ q * scale``)."""
    return np.clip(np.rint(x / scale), -ACT_MAX, ACT_MAX).astype(np.int64)


class IntModel:
    """A network quantized for the array: per-layer ``mode``, integer weights ``q[l]`` with per-channel
    scales ``s[l]``, biases, the input scale and the calibrated activation scales ``sh[l]`` (the
    output of layer ``l`` requantized to 0..127 with ``h ≈ q * sh[l]``)."""

    def __init__(self, net, modes, x_scale, x_calib):
        self.net, self.modes, self.x_scale = net, list(modes), x_scale
        self.q, self.s = [], []
        for w, mode in zip(net.w, modes):
            q, s = quantize_weights(w, mode, per_channel=True)
            self.q.append(q)
            self.s.append(s)
        self.sh = [None] * len(modes)
        self._calibrate(x_calib)

    def _calibrate(self, x):
        # Activation scales from the calibration set's maximum, layer by layer through the quantized
        # network (each layer sees the requantized output of the one before).
        h, scale = quantize_input(x, self.x_scale), self.x_scale
        for l in range(len(self.modes) - 1):
            a = self._layer_float(l, h, scale, len(x))
            self.sh[l] = max(float(a.max()), 1e-12) / ACT_MAX
            h, scale = self._requant(a, l), self.sh[l]

    def accumulators(self, l, h):
        """The array's integer result of layer ``l`` for integer input ``h`` (exact: float64 holds every
        partial sum, all far below 2**53); ``M x N``."""
        X = self.net.layers[l].cols(h).astype(np.float64)
        return np.rint(X @ self.q[l].T.astype(np.float64)).astype(np.int64)

    def _layer_float(self, l, h, scale, batch, acc=None):
        acc = self.accumulators(l, h) if acc is None else acc
        a = acc * (scale * self.s[l][None, :]) + self.net.b[l]
        a = self.net.layers[l].out(a, batch)
        return a if l == len(self.modes) - 1 else np.maximum(a, 0)

    def _requant(self, a, l):
        return np.clip(np.rint(a / self.sh[l]), 0, ACT_MAX).astype(np.int64)

    def forward(self, x, accumulate=None):
        """Logits of ``x``; ``accumulate(l, X_int, mode, W_int)`` (if given) computes each layer's
        integer GEMM instead of numpy (the array, the board)."""
        h, scale = quantize_input(x, self.x_scale), self.x_scale
        last = len(self.modes) - 1
        for l in range(len(self.modes)):
            acc = None
            if accumulate is not None:
                acc = np.asarray(accumulate(l, self.net.layers[l].cols(h), self.modes[l], self.q[l]))
            a = self._layer_float(l, h, scale, len(x), acc)
            if l == last:
                return a.reshape(len(x), -1)
            h, scale = self._requant(a, l), self.sh[l]

    def accuracy(self, x, y):
        return float((self.forward(x).argmax(1) == y).mean())


def int_forward(net, modes, x_scale, x_calib, x):
    """Logits of the integer pipeline (convenience wrapper of :class:`IntModel`)."""
    return IntModel(net, modes, x_scale, x_calib).forward(x)
