"""Registered reset trees: one synchronous clear fanned out through replicated registers.

A synchronous reset of a large block from one flip-flop is a net with thousands of loads, which on
an FPGA is mostly routing delay (the Huffman decoder's ``i_clear`` was the GEMM engine's critical
path on the ECP5). :func:`add_with_reset_tree` gives each part of a block its own copy of the clear,
registered once: the clear takes effect one cycle later, and each copy drives one part.

The copies are identical registers, which synthesis would merge back into one. They carry the
``keep`` attribute on their wires; :data:`KEEP_REGISTERS` is the Yosys step (run before synthesis:
``boards.synth``, ``boards.build``) that puts ``keep`` on the flip-flops driving such wires, which
Yosys does not merge.
"""

from amaranth.hdl import Fragment, ResetInserter, Signal

__all__ = ["add_with_reset_tree", "KEEP_REGISTERS"]

#: Yosys command: ``keep`` on every ``$dff`` whose output is a wire with the ``keep`` attribute.
KEEP_REGISTERS = r"setattr -set keep 1 a:keep %ci1:+$dff[Q] a:keep %d"


def _leaf(m, clear, domain, name):
    leaf = Signal(name=name, attrs={"keep": 1})
    m.d[domain] += leaf.eq(clear)
    return leaf


def add_with_reset_tree(m, name, elaboratable, clear, *, platform=None, domain="sync"):
    """Add ``elaboratable`` to ``m`` as submodule ``name`` with a synchronous reset ``clear`` in
    ``domain``, fanned out through one register per part: one for the statements of
    ``elaboratable``'s own module and one for each of its direct submodules (which become
    submodules of ``m``, named as before). ``clear`` resets the parts one cycle after it is high.

    Returns the leaf registers (``<name>_clear``, then ``<submodule>_clear`` each).
    """
    frag = Fragment.get(elaboratable, platform)
    parts, frag.subfragments = frag.subfragments, []
    leaves = [_leaf(m, clear, domain, f"{name}_clear")]
    m.submodules[name] = ResetInserter({domain: leaves[0]})(frag)
    for sub, sub_name, _ in parts:
        leaves.append(_leaf(m, clear, domain, f"{sub_name}_clear"))
        m.submodules[sub_name] = ResetInserter({domain: leaves[-1]})(sub)
    return leaves
