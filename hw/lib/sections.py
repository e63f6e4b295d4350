"""Elaborating a large block in sections: methods that add to one module and share signals by name."""

from types import SimpleNamespace

__all__ = ["Shared", "elaborate_sections"]


class Shared(SimpleNamespace):
    """The signals, ports and helpers one section makes and later sections use, by name."""

    def get(self, names):
        """The values of the space-separated ``names``, as a tuple in that order."""
        return tuple(getattr(self, n) for n in names.split())

    def keep(self, scope, names):
        """Keep the space-separated ``names`` of ``scope`` (a section's ``locals()``)."""
        for n in names.split():
            setattr(self, n, scope[n])


def elaborate_sections(m, *sections):
    """Run ``section(m, shared)`` for each section in order on module ``m``; return ``m``.

    The order is the order in which the sections add statements, which the netlist keeps.
    """
    shared = Shared()
    for section in sections:
        section(m, shared)
    return m
