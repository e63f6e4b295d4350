"""HDQT class-incremental learning (:mod:`sim.hdqt.experiment`) as an ``edgelearn experiment``."""

from sim.experiments import Result, Table, new_figure, save_figure
from sim.hdqt.experiment import experiment

__all__ = ["run"]


def run(*, quick=False, seeds=None, plot=None):
    seeds = tuple(range(seeds or (1 if quick else 3)))
    epochs = 4 if quick else 16
    rows = experiment(seeds, epochs=epochs)
    t = Table(f"class-incremental digits, 5 tasks x 2 classes, MLP 64-64-10, {len(seeds)} seed(s), "
              f"{epochs} epochs per task", ["method", "final acc %", "std", "avg incr %"],
              [[label, m, s, a] for label, m, s, a in rows])
    res = Result("hdqt", [t], [f"integer HDQT 4b/8b minus float: {rows[2][1] - rows[0][1]:+.2f} points"])
    if plot:
        fig, ax = new_figure(2)
        acc = {4: rows[3][1], 8: rows[2][1], 12: rows[4][1], 16: rows[5][1]}
        bits = {2: rows[6][1], 3: rows[7][1], 4: rows[2][1], 6: rows[8][1], 8: rows[9][1]}
        for a, d, xl in ((ax[0][0], acc, "tile accumulator bits"), (ax[0][1], bits, "matmul input bits")):
            a.plot(list(d), list(d.values()), "o-", label="integer HDQT")
            a.axhline(rows[0][1], color="k", ls="--", label="float")
            a.set_xlabel(xl)
            a.set_ylabel("final accuracy %")
            a.legend()
        res.plot = save_figure(fig, plot)
    return res
