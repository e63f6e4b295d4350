"""``edgelearn experiment NAME``: the papers' claims reproduced, one entry per experiment.

Each experiment lives in a ``sim`` module (its ``run`` returns a :class:`sim.experiments.Result`);
this module only lists them, checks the arguments, prints the tables (or JSON) and, for the
mixed-precision search, runs the chosen configuration on the simulated board (``firmware`` may not
be imported from ``sim``). Results and decisions: ``docs/experiments.md``.
"""

import importlib
import json

from sim.experiments import Table

__all__ = ["EXPERIMENTS", "run_experiment", "describe", "check_args", "print_result"]

#: name -> (summary, "module:function", options it takes beyond quick/seeds/plot)
EXPERIMENTS = {
    "mixed-precision": ("per-layer weight precision by Hessian sensitivity + bisection under an accuracy "
                        "budget; cycles from the MAC array's cycle model; digits and MNIST-1D",
                        "sim.experiments.mixed_precision:run", ("budget", "board")),
    "hdqt": ("HDQT class-incremental learning (digits, MNIST-1D): paired gap to float over seeds, "
             "accumulator and input-bit sweeps, backward-operand option", "sim.experiments.hdqt_cil:run", ()),
    "stdp-error": ("forward-table STDP vs exact pair STDP in the paper's units (ms, Hz), LTP and LTD "
                   "errors separately", "sim.experiments.stdp_error:run", ()),
    "stdp-dw": ("cumulative dw of the STDP RTL vs exact pair STDP over refractory periods (steps)",
                "sim.experiments.stdp:run_dw", ()),
    "stdp-sma": ("competitive Hebbian STDP (Song-Miller-Abbott) on the Verilated STDP core",
                 "sim.experiments.stdp:run_sma", ()),
    "synapse-encodings": ("CSR / bitmap / crossbar synapse memory: bits and energy per synaptic event over "
                          "density and fan-out", "sim.experiments.synapse_encodings:run", ()),
}


def describe():
    """``[(name, summary), ...]`` of the experiments."""
    return [(name, e[0]) for name, e in EXPERIMENTS.items()]


def check_name(name):
    """Raise ``ValueError`` (one line naming the known experiments) for an unknown ``name``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment name {name!r}; the experiments are: {', '.join(EXPERIMENTS)}")


def check_args(name, seeds=None, budget=None):
    """Raise ``ValueError`` for an unknown name, a bad seed count or an option the experiment does not
    take (``budget`` only applies to ``mixed-precision``)."""
    check_name(name)
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"--seeds must be a positive integer, not {seeds!r}")
    if budget is not None:
        if "budget" not in EXPERIMENTS[name][2]:
            raise ValueError(f"--budget applies only to mixed-precision, not {name!r}")
        if not budget >= 0:
            raise ValueError(f"--budget must be a non-negative number of accuracy points, not {budget!r}")


def run_experiment(name, *, quick=False, seeds=None, plot=None, budget=None, board=True):
    """Run experiment ``name``; return its :class:`sim.experiments.Result` (arguments checked by
    :func:`check_args`). ``board``: run the mixed-precision choice on the simulated board."""
    check_args(name, seeds, budget)
    _, target, options = EXPERIMENTS[name]
    kw = {} if budget is None else {"budget": budget}
    module, func = target.split(":")
    result = getattr(importlib.import_module(module), func)(quick=quick, seeds=seeds, plot=plot, **kw)
    if "board" in options and board and result.data.get("board_model") is not None:
        _run_on_board(result)
    return result


def _run_on_board(result):
    """Run the chosen mixed-precision digits MLP as the ``mlp`` job's pipeline on the simulated board."""
    from firmware.mixed_mlp import run_mixed_mlp  # deferred: the simulated board, only when the run gets here
    rows = run_mixed_mlp(result.data["board_model"])
    result.tables.append(Table("chosen digits configuration on the simulated board (GEMM command group, "
                               "Verilator, driven at its UART pins)", ["what", "value"],
                               [list(r) for r in rows]))


def print_result(result, as_json=False):
    if as_json:
        d = result.as_dict()
        d["data"].pop("board_model", None)
        print(json.dumps(d, indent=1))
    else:
        print(result.format())
