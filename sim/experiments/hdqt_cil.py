"""HDQT class-incremental learning, honestly (``edgelearn experiment hdqt``).

The setup is :mod:`sim.hdqt.experiment` (5 tasks x 2 classes, MLP with 64 hidden units, batch 32,
replay of 20 exemplars per seen class, SGD lr 0.25) on sklearn digits and on MNIST-1D
(``mnist1d.data.make_dataset()`` with its default arguments: generated offline, 4000 train / 1000
test; its standardised signal enters as signed integers with exponent -8). Every row runs the same
seeds; a seed fixes the data split (digits), the initial weights and the batch order, so the gap
to float is *paired* by seed: reported as the mean over seeds of (method - float) with the standard
error of that mean.

Rows
    ``float``; the authors' algorithm with float scales (:mod:`sim.hdqt.float_ref`) and the
    integer hardware arithmetic (:mod:`sim.hdqt.golden`), each with the backward pass transforming
    the unquantized operands (``input``: the hardware's choice) or the forward-quantized 4-bit ones
    (``quantized``: what the authors' code does); two input-bit sweeps of the integer model: with a
    fixed 8-bit tile accumulator, and with the accumulator at twice the input bits (the paper's
    sweep); and the tile-accumulator sweep at 4-bit inputs.
"""

import numpy as np

from sim.experiments import Result, Table, mean_se, new_figure, progress, save_figure
from sim.hdqt.experiment import DATASETS, run_cil

__all__ = ["run", "rows_for"]

BITS = (2, 3, 4, 6, 8)
#: Epochs per task (quick, full). MNIST-1D has 3.2x digits' training samples per task, so 8 epochs
#: are 2.5x the SGD steps of digits' 16.
EPOCHS = {"digits": (4, 16), "mnist1d": (2, 8)}


def _configs():
    """``[(label, method, kwargs), ...]`` of every row (float first)."""
    rows = [("float", "float", {})]
    for b in ("input", "quantized"):
        rows.append((f"float-scale HDQT (authors), 4b/8b, backward={b}", "float-hdqt", {"backward": b}))
    for b in ("input", "quantized"):
        rows.append((f"integer HDQT (hardware), 4b/8b, backward={b}", "hdqt", {"backward": b}))
    for bits in BITS:
        rows.append((f"integer HDQT, {bits}b in / 8b acc", "hdqt", {"bits": bits, "tile_bits": 8}))
    for bits in BITS:
        rows.append((f"integer HDQT, {bits}b in / {2 * bits}b acc", "hdqt",
                     {"bits": bits, "tile_bits": 2 * bits}))
    for acc in (4, 12, 16):
        rows.append((f"integer HDQT, 4b in / {acc}b acc", "hdqt", {"bits": 4, "tile_bits": acc}))
    return rows


def rows_for(dataset, seeds, epochs, configs=None):
    """``{label: array (seeds x 2) of (final, average incremental) accuracy}`` — duplicate settings run
    once."""
    out, done = {}, {}
    for label, method, kw in configs or _configs():
        key = (method, tuple(sorted({"bits": 4, "tile_bits": 8, "backward": "input", **kw}.items())))
        if key not in done:
            progress(f"hdqt: {dataset}, {label}, {len(seeds)} seed(s)")
            done[key] = np.array([run_cil(method, seed=s, epochs=epochs, dataset=dataset, **kw)
                                  for s in seeds])
        out[label] = done[key]
    return out


def run(*, quick=False, seeds=None, plot=None, datasets=DATASETS):
    seeds = tuple(range(seeds or (2 if quick else 10)))
    res = Result("hdqt")
    sweeps = {}
    for ds in datasets:
        epochs = EPOCHS[ds][0 if quick else 1]
        acc = rows_for(ds, seeds, epochs)
        f = acc["float"][:, 0]
        k_in = "64" if ds == "digits" else "40"
        t = Table(f"class-incremental {ds}, 5 tasks x 2 classes, MLP {k_in}-64-10, "
                  f"seeds 0-{len(seeds) - 1}, {epochs} epochs per task (final accuracy over all 10 classes)",
                  ["method", "final acc %", "avg incr %", "gap to float (paired)", "seeds within 1 pt"])
        for label, a in acc.items():
            m, se = mean_se(a[:, 0])
            gm, gse = mean_se(a[:, 0] - f)
            t.rows.append([label, f"{m:.2f} ± {se:.2f}", f"{mean_se(a[:, 1])[0]:.2f}",
                           "-" if label == "float" else f"{gm:+.2f} ± {gse:.2f}",
                           "-" if label == "float" else f"{int((a[:, 0] - f >= -1).sum())}/{len(seeds)}"])
        res.tables.append(t)
        hw = acc["integer HDQT (hardware), 4b/8b, backward=input"][:, 0] - f
        q = acc["integer HDQT (hardware), 4b/8b, backward=quantized"][:, 0] - f
        res.lines.append(f"{ds}: integer HDQT 4b/8b minus float {mean_se(hw)[0]:+.2f} ± {mean_se(hw)[1]:.2f} "
                         f"points (paired, {len(seeds)} seeds); transforming the forward-quantized operands "
                         f"instead: {mean_se(q)[0]:+.2f} ± {mean_se(q)[1]:.2f}; difference quantized - input "
                         f"{mean_se(q - hw)[0]:+.2f} ± {mean_se(q - hw)[1]:.2f}")
        sweeps[ds] = ({b: acc[f"integer HDQT, {b}b in / 8b acc"][:, 0] for b in BITS},
                      {b: acc[f"integer HDQT, {b}b in / {2 * b}b acc"][:, 0] for b in BITS}, f)
    if plot:
        fig, axes = new_figure(len(datasets), 4.5, 3.4)
        for ax, ds in zip(axes[0], datasets):
            fixed, double, f = sweeps[ds]
            for d, label in ((fixed, "8-bit accumulator"), (double, "accumulator = 2 x input bits")):
                ms = [mean_se(d[b]) for b in BITS]
                ax.errorbar(BITS, [m for m, _ in ms], yerr=[s for _, s in ms], marker="o", capsize=3,
                            label=label)
            ax.axhline(mean_se(f)[0], color="k", ls="--", label="float")
            ax.set_title(f"integer HDQT, {ds}")
            ax.set_xlabel("matmul input bits")
            ax.set_ylabel("final accuracy % (mean ± se)")
            ax.legend(fontsize=7)
        res.plot = save_figure(fig, plot)
    return res
