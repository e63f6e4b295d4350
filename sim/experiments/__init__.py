"""Experiments that reproduce the seed papers' claims (``edgelearn experiment NAME``).

Each experiment module has a ``run(*, quick, seeds, plot, **options)`` function that returns a
:class:`Result`: printed tables, free-text lines (conclusions, with seeds and standard errors) and,
when ``plot`` names a file, the figure written there. Results and the decisions behind each
experiment are in ``docs/experiments.md``.
"""

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Table", "Result", "mean_se", "fmt_mean_se", "new_figure", "save_figure", "progress"]


def progress(msg):
    """A progress line on stderr (stdout carries only the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Table:
    """A printed table: ``columns`` names, ``rows`` lists of cells (numbers or strings)."""
    title: str
    columns: list
    rows: list = field(default_factory=list)

    def format(self):
        cells = [[str(c) for c in self.columns]] + [[_cell(v) for v in r] for r in self.rows]
        numeric = [[False] * len(self.columns)] + [[_is_number(v) for v in r] for r in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = [self.title]
        for r, num in zip(cells, numeric):
            lines.append("  " + "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, num)))
        return "\n".join(lines)

    def as_dict(self):
        return {"title": self.title, "columns": list(self.columns),
                "rows": [[_json(v) for v in r] for r in self.rows]}


@dataclass
class Result:
    """What an experiment returns: tables, conclusion lines, the plot file (or None), extra data."""
    name: str
    tables: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    plot: str | None = None
    data: dict = field(default_factory=dict)

    def format(self):
        parts = [t.format() for t in self.tables]
        if self.lines:
            parts.append("\n".join(self.lines))
        if self.plot:
            parts.append(f"plot: {self.plot}")
        return "\n\n".join(parts)

    def as_dict(self):
        return {"experiment": self.name, "tables": [t.as_dict() for t in self.tables], "lines": self.lines,
                "plot": self.plot, "data": _json(self.data)}


def _is_number(v):
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    return isinstance(v, str) and v[:1] in "+-0123456789" and v[-1:] in "0123456789%"


def _cell(v):
    if isinstance(v, (float, np.floating)):
        return f"{v:.2f}" if abs(v) < 1e5 else f"{v:.3g}"
    return str(v)


def _json(v):
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    if isinstance(v, np.ndarray):
        return _json(v.tolist())
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def mean_se(values):
    """Mean and standard error of the mean (0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def fmt_mean_se(values, digits=2):
    m, se = mean_se(values)
    return f"{m:.{digits}f} ± {se:.{digits}f}"


def new_figure(ncols=1, width=5.0, height=3.5, nrows=1):
    """A matplotlib figure on the Agg backend (no display needed); axes indexed ``[row][col]``."""
    import matplotlib  # heavy: imported only when a figure is asked for
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)


def save_figure(fig, path):
    import matplotlib.pyplot as plt
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
