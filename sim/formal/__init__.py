"""Formal checks of the blocks through SymbiYosys (``edgelearn prove``).

Each module here holds the harnesses of one group and its ``PROPERTIES`` (a list of
:class:`~sim.formal.runner.Property`); :func:`properties` collects them. A property's name is
``<group>.<check>``; the groups are the keys of :data:`GROUPS`.
"""

import importlib

from .runner import FormalError, Property, Result, run_property

__all__ = ["GROUPS", "properties", "select", "run_property", "Property", "Result", "FormalError"]

GROUPS = {
    "fifo": "RegisteredFlagFIFO (hw/lib/fifo.py) against SyncFIFOBuffered",
    "control": "the command controller's frame rules (hw/control/controller.py)",
    "mac": "MAC array accumulators and flags (hw/mac)",
    "huffman": "Huffman decoder: table loader verdict, streams, error flags (hw/huffman)",
    "stdp": "STDP core: walk-queue spacing, event range, streams, error flags (hw/stdp)",
    "hdqt": "HDQT FWHT, quantizer and layer: streams, overflow flag (hw/hdqt)",
    "lfsr": "LFSR output stream (hw/lfsr)",
}


def properties():
    """Every property, by name, in group order."""
    found = {}
    for group in GROUPS:
        for prop in importlib.import_module(f"{__name__}.{group}").PROPERTIES:
            found[prop.name] = prop
    return found


def select(names=(), *, everything=False):
    """The properties a command line names: each name is a group (its fast properties, or all of
    them with ``everything``) or one property (``group.check``); no names: every group.

    Raises ``ValueError`` naming the first unknown name and the allowed ones."""
    props = properties()
    if not names:
        names = list(GROUPS)
    chosen = {}
    for name in names:
        if name in GROUPS:
            for prop in props.values():
                if prop.block == name and (everything or prop.fast):
                    chosen[prop.name] = prop
        elif name in props:
            chosen[name] = props[name]
        else:
            raise ValueError(f"unknown block or property {name!r}; the blocks are: {', '.join(GROUPS)} "
                             f"(or one property, e.g. {next(iter(props))})")
    return list(chosen.values())
