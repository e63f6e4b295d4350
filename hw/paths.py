"""Where generated files go (Verilog, simulator builds, synthesis and board builds).

A neutral module at the bottom of the import graph, so that :mod:`sim`, :mod:`boards` and everything
above them find one build directory without importing each other.
"""

import os
from pathlib import Path

__all__ = ["PROJECT_ROOT", "build_root"]

#: The source tree this package was imported from.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def build_root():
    """``$EDGELEARN_BUILD``, else ``build/`` in the source tree, else ``~/.cache/edgelearn``."""
    env = os.environ.get("EDGELEARN_BUILD")
    if env:
        return Path(env)
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "build"
    return Path.home() / ".cache" / "edgelearn"
