"""The mixed-precision experiment's chosen digits MLP on a board, through the GEMM command group.

The board's GEMM path (:mod:`hw.control.gemm_handler`) runs the MAC array in int8 mode only: it
cannot take a weight mode per layer. int4 / int2 / ternary weights are int8 values, so the board
computes the same integer accumulators as the array would in the layer's own mode (the sums are
exact either way), but at int8 speed: the cycle savings are measured on the MAC array itself (the
experiment's array check), the bit-exactness of the whole pipeline here. Each layer's accumulators
are compared with :func:`sim.mac.golden.ref_gemm` in the layer's own mode, and the logits with the
same pipeline on the golden accumulators.
"""

import time

import numpy as np

from firmware.jobs import MLP_IMAGES, _open
from sim.mac.golden import ref_gemm

__all__ = ["run_mixed_mlp"]


def run_mixed_mlp(board_model, *, board=None, port=None, images=MLP_IMAGES):
    """Classify the first ``images`` test images on the board; returns ``(label, value)`` rows."""
    m, x, y = board_model["model"], board_model["x"][:images], board_model["y"][:images]
    acc, where = _open(board, port)
    try:
        acc._need("gemm")
        if sum(q.size for q in m.q) > acc.config.gemm.get("max_weights", 4096):
            raise ValueError("the board's weight memory cannot hold the MLP")
        acc.reset()
        t0 = time.monotonic()
        stats = acc.load_compressed_weights(np.concatenate([q.ravel() for q in m.q]), block_n=256)
        base = np.cumsum([0] + [q.size for q in m.q])
        equal = [0, 0]

        def on_board(l, X, mode, W):
            a = np.array([acc.gemv(list(row), len(W), wbase=int(base[l])) for row in X])
            gold = ref_gemm(X, W, mode, acc_width=24)[0]
            equal[0] += int((a == gold).sum())
            equal[1] += gold.size
            return a

        logits_b = np.concatenate([m.forward(x[i:i + 1], on_board) for i in range(len(x))])
        logits_g = m.forward(x)
        same = bool((logits_b == logits_g).all()) and equal[0] == equal[1]
        return [
            ("target", where),
            ("model", f"digits MLP {'-'.join(str(q.shape[1]) for q in m.q)}-{m.q[-1].shape[0]}, layers "
                      f"{board_model['layers']} (int8 mode on the board, see firmware.mixed_mlp)"),
            ("weights", f"Huffman-coded {stats['code_bits'] / sum(q.size for q in m.q):.2f} bits/weight, "
                        f"{stats['sent_bytes']} B"),
            ("accumulators", f"{equal[0]}/{equal[1]} equal to the golden model in each layer's mode"),
            ("accuracy", f"board {(logits_b.argmax(1) == y).mean():.3f} / golden "
                         f"{(logits_g.argmax(1) == y).mean():.3f} on the first {len(y)} test images"),
            ("board == golden", "yes" if same else "NO: MISMATCH"),
            ("time", f"{time.monotonic() - t0:.1f} s"),
        ]
    finally:
        acc.close()
