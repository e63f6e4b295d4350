"""Registered reset trees: one synchronous clear fanned out through replicated registers.

A synchronous reset of a large block from one flip-flop is a net with thousands of loads, which on
an FPGA is mostly routing delay (the Huffman decoder's ``i_clear`` was the GEMM engine's critical
path on the ECP5). :func:`add_with_reset_tree` gives each part of a block its own copy of the clear,
registered once: the clear takes effect one cycle later, and each copy drives one part.
:func:`add_with_reset_domains` does the same for a clock domain's own reset (a PLL domain's reset
synchronizer drives every flip-flop of the domain): each part runs in a local domain on the same
clock whose reset is a registered copy, two registers from the domain's reset.

The copies are identical registers, which synthesis would merge back into one. They carry the
``keep`` attribute on their wires; :data:`KEEP_REGISTERS` is the Yosys step (run before synthesis:
``boards.synth``, ``boards.build``) that puts ``keep`` on the flip-flops driving such wires, which
Yosys does not merge. It also drops the initial value of the registers that
:func:`hw.lib.ram.registered_read_port` marks (:data:`hw.lib.ram.UNDEFINED_INIT`), the library's
other register attribute for synthesis.
"""

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    DomainRenamer,
    Fragment,
    MemoryInstance,
    Module,
    ResetSignal,
    Signal,
)

from ..params import check_bool, check_int
from .ram import UNDEFINED_INIT

__all__ = ["add_with_reset_tree", "module_with_reset_tree", "reset_root", "add_with_reset_domains",
           "KEEP_REGISTERS"]

#: Yosys commands (two lines): ``keep`` on every ``$dff`` whose output is a wire with the ``keep``
#: attribute, and :data:`hw.lib.ram.UNDEFINED_INIT`.
KEEP_REGISTERS = "\n".join([r"setattr -set keep 1 a:keep %ci1:+$dff[Q] a:keep %d", UNDEFINED_INIT])


def _leaf(m, clear, domain, name, init=0, reset_less=False):
    leaf = Signal(name=name, init=init, reset_less=reset_less, attrs={"keep": 1})
    m.d[domain] += leaf.eq(clear)
    return leaf


def add_with_reset_tree(m, name, elaboratable, clear, *, platform=None, domain="sync"):
    """Add ``elaboratable`` to ``m`` as submodule ``name`` with a synchronous reset ``clear`` in
    ``domain``, fanned out through one register per part: one for the statements of
    ``elaboratable``'s own module and one for each of its direct submodules (which become
    submodules of ``m``, named as before). ``clear`` resets the parts one cycle after it is high.

    The register also carries ``domain``'s own reset (it holds ``clear | reset``), and each part
    runs in a local domain ``clear_<part>`` on ``domain``'s clock whose reset is that register
    alone: every flip-flop of a part has one reset net, driven by a flip-flop. (With the clear
    added to the domain's reset, an OR of the two in a LUT sat in front of every flip-flop of the
    part: a decoder lane's worst path in the ULX3S build, 8 ns of route behind that LUT.) So the
    domain's reset, too, reaches the parts one cycle late, and leaves them one cycle late. The
    registers start asserted: the parts are held in the first cycle, as they are during a reset of
    a domain held from power-up (a PLL's before lock), not released for a cycle before it.

    Returns the leaf registers (``<name>_clear``, then ``<submodule>_clear`` each).
    """
    frag = Fragment.get(elaboratable, platform)
    parts = _take_subfragments(frag)
    leaves = []
    for part, part_name in [(frag, name), *((sub, sub_name) for sub, sub_name, _ in parts)]:
        leaf = _leaf(m, clear | ResetSignal(domain), domain, f"{part_name}_clear", 1, True)
        cd = ClockDomain(f"clear_{part_name}", local=True)
        m.domains += cd
        m.d.comb += [cd.clk.eq(ClockSignal(domain)), cd.rst.eq(leaf)]
        m.submodules[part_name] = DomainRenamer({domain: cd.name})(part)
        leaves.append(leaf)
    return leaves


def reset_root(m, clear, *, name, domain="sync"):
    """A root register in ``m`` (named ``name``, ``keep``, reset-less, starting at 1) loading
    ``clear | reset`` (``domain``'s reset), for one or several :func:`module_with_reset_tree`
    given it with ``with_reset=False``: their part registers load it alone, so the route to them,
    spread out with the parts, starts at a flip-flop, not at the OR's LUT, and the parts are reset
    a cycle later still (two after ``clear``). High in a cycle: the parts are held in the next."""
    return _leaf(m, clear | ResetSignal(domain), domain, name, 1, True)


def module_with_reset_tree(elaboratable, clear, *, name, depth, platform=None, domain="sync",
                           with_reset=True):
    """``elaboratable`` in a module of its own, reset by ``clear`` in ``domain`` one cycle later
    through a registered copy per part: its own statements and each submodule down to ``depth``
    levels (a memory shares its parent's copy). Unlike :func:`add_with_reset_tree` (one level, the
    parts named in the caller's module), the parts are named ``<name>__<submodule>__...`` inside the
    returned module, so several blocks can each have a tree beside one another.

    As in :func:`add_with_reset_tree`, each register holds ``clear | reset`` (``domain``'s own
    reset), starts asserted, and is the only reset of its part (a local domain ``clear_<part>`` on
    ``domain``'s clock): so the domain's reset reaches and leaves the parts one cycle late too, and
    no OR of the two nets sits in front of a part's flip-flops. (With the clear added to the
    domain's reset, the PLL's lock reset, from its one flip-flop across the die, went through that
    OR into the enables of the iCEBreaker HDQT layer's flip-flops: the worst path at seed 2.)

    ``with_reset=False``: ``clear`` already carries the domain's reset (a :func:`reset_root`):
    the part registers load ``clear`` alone, with no OR in front of them."""
    m = Module()

    def add(frag, part, depth, parent_domain=None):
        if isinstance(frag, MemoryInstance):
            m.submodules[part] = DomainRenamer({domain: parent_domain})(frag)
            return
        source = clear | ResetSignal(domain) if with_reset else clear
        leaf = _leaf(m, source, domain, f"{part}_clear", 1, True)
        cd = ClockDomain(f"clear_{part}", local=True)
        m.domains += cd
        m.d.comb += [cd.clk.eq(ClockSignal(domain)), cd.rst.eq(leaf)]
        subs = _take_subfragments(frag) if depth > 0 else []
        m.submodules[part] = DomainRenamer({domain: cd.name})(frag)
        for i, (sub, sub_name, _) in enumerate(subs):
            add(sub, f"{part}__{sub_name or i}", depth - 1, cd.name)

    add(Fragment.get(elaboratable, platform), name, depth)
    return m


def _take_subfragments(frag):
    """Remove and return ``frag``'s subfragments, to be placed elsewhere. A local domain of
    ``frag`` (e.g. :func:`add_with_reset_tree`'s) is seen only below it: the subfragments moved
    out keep seeing it, as a definition of their own (the same object)."""
    subs, frag.subfragments = frag.subfragments, []
    local = [cd for cd in frag.domains.values() if cd.local]
    for sub, _, _ in subs:
        sub.add_domains(*(cd for cd in local if cd.name not in sub.domains))
    return subs


def _split(frag, name, depth, parts, branch=None):
    """Append ``(fragment, name, branch)`` for every part of ``frag`` down to ``depth`` levels."""
    subs = _take_subfragments(frag) if depth > 0 else []
    parts.append((frag, name, branch or name))
    for i, (sub, sub_name, _) in enumerate(subs):
        _split(sub, f"{name}__{sub_name or i}", depth - 1, parts, branch or f"{name}__{sub_name or i}")


def add_with_reset_domains(m, name, elaboratable, *, domain="sync", depth=3, fanout=8, platform=None,
                           root=False):
    """Add ``elaboratable`` to ``m`` as submodule ``name`` with ``domain``'s reset replaced, in each
    of its parts, by a registered copy: the domain's reset -> one register per branch (the block's
    own statements, each direct submodule) -> one register per part. A branch of more than
    ``fanout`` parts would drive all of them from its one register across the die (the 8 x 16
    array's 117 parts in the ULX3S build: 15.6 ns of route to the farthest); if any branch has
    more, every branch gets a level between: one register per run of at most ``fanout``
    consecutive parts of the branch. Every part leaves reset two cycles (three with that level)
    after the domain's reset drops, all in the same cycle, and no register drives the reset of
    more than ``fanout`` parts below a branch.

    Parts: the block's submodule tree split ``depth`` levels deep; a module above that depth
    contributes its own statements as a part, a module at that depth (or without submodules) is one
    part with everything below it. Each part runs in a local clock domain ``<name>_rst<i>`` clocked
    by ``domain``'s clock (the other domains it uses are untouched). The parts become submodules of
    ``m`` named by their path (``<name>__<submodule>__...``). Registers of the tree are ``keep``
    (see :data:`KEEP_REGISTERS`) and start asserted; those of the level between are named
    ``<branch>_rst_group<j>``.

    ``root``: one register more above the branches per domain (``<name><tag>_rst_root``), so the
    domain's reset synchronizer (by a PLL at the die's edge) drives one register that the placer
    can put among the branches, not every branch across the die (the ULX3S engine's PLL lock reset
    into its branches: 8.06-8.28 ns on the full 8 x 16 board aimed at 125 MHz). The parts leave
    reset a cycle later still.

    ``domain`` may be a tuple of domains: each gets its own tree over the same parts (the first
    named as above; another domain ``d``'s registers ``..._<d>_rst`` and local domains
    ``<name>_<d>_rst<i>``), e.g. the GEMM engine's array and decoder PLL domains.

    Returns the part reset registers of the first domain, in the order of the parts (the block's
    own statements first).
    """
    check_int("fanout", fanout, 2)
    check_bool("root", root)
    domains = (domain,) if isinstance(domain, str) else tuple(domain)
    parts = []
    _split(Fragment.get(elaboratable, platform), name, depth, parts)
    in_branch = {}
    for _, _, branch in parts:
        in_branch[branch] = in_branch.get(branch, 0) + 1
    grouped = max(in_branch.values()) > fanout
    seen = {}
    branches, groups, leaves = {}, {}, []
    roots = {}
    for i, (frag, part, branch) in enumerate(parts):
        group = seen.get(branch, 0) // fanout
        seen[branch] = seen.get(branch, 0) + 1
        rename = {}
        for k, d in enumerate(domains):
            tag = "" if k == 0 else f"_{d}"
            if d not in roots:
                roots[d] = (_leaf(m, ResetSignal(d), d, f"{name}{tag}_rst_root", 1, True) if root
                            else ResetSignal(d))
            if (branch, d) not in branches:
                branches[branch, d] = _leaf(m, roots[d], d, f"{branch}{tag}_rst_branch", 1, True)
            above = branches[branch, d]
            if grouped:
                if (branch, group, d) not in groups:
                    groups[branch, group, d] = _leaf(m, above, d, f"{branch}{tag}_rst_group{group}", 1, True)
                above = groups[branch, group, d]
            leaf = _leaf(m, above, d, f"{part}{tag}_rst", 1, True)
            if k == 0:
                leaves.append(leaf)
            cd = ClockDomain(f"{name}{tag}_rst{i}", local=True)
            m.domains += cd
            m.d.comb += [cd.clk.eq(ClockSignal(d)), cd.rst.eq(leaf)]
            rename[d] = cd.name
        m.submodules[part] = DomainRenamer(rename)(frag)
    return leaves
