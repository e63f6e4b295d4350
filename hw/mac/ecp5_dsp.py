"""The ECP5 ``MULT18X18D`` multiplier as the MAC arrays use it: primitive or behavioural model.

Amaranth's simulator and the project's Verilator runs cannot simulate vendor primitives, so each
use has a behavioural model with the same multiplication and the same register stages; only the
primitive's own multiplier is trusted.
"""

from amaranth.hdl import ClockSignal, Instance, Signal, signed

from ..params import ParameterTypeError

__all__ = ["mult18x18d", "REGISTERS", "DSP_LAYOUTS", "systolic_sites"]

#: The multiplier's register stages, in pipeline order.
REGISTERS = ("INPUT", "PIPELINE", "OUTPUT")


def mult18x18d(m, name, a, b, *, registers, ce=1, primitive=True, site=None):
    """``a * b`` (18 x 18 signed, 36-bit product) through the register stages in ``registers``
    (a subset of :data:`REGISTERS`: the A/B input registers, the pipeline register, the output
    register), all clocked by the ``sync`` domain and enabled by ``ce``. Returns the product signal;
    its latency is ``len(registers)`` cycles. ``primitive``: instantiate ``MULT18X18D`` (synthesis)
    or its behavioural model (simulation). ``site``: a nextpnr-ecp5 bel name (``"X4/Y34/MULT18_0"``,
    see :func:`systolic_sites`) the primitive is placed at (its ``BEL`` attribute), or None."""
    unknown = set(registers) - set(REGISTERS)
    if unknown:
        raise ValueError(f"registers must be a subset of {REGISTERS}, not {tuple(registers)!r}")
    p = Signal(signed(36), name=f"{name}_p")
    if primitive:
        a18, b18 = Signal(signed(18), name=f"{name}_a"), Signal(signed(18), name=f"{name}_b")
        m.d.comb += [a18.eq(a), b18.eq(b)]
        ports = {f"i_A{i}": a18[i] for i in range(18)}
        ports.update({f"i_B{i}": b18[i] for i in range(18)})
        ports.update({f"i_C{i}": 0 for i in range(18)})
        ports.update({f"o_P{i}": p[i] for i in range(36)})
        params = {}
        for stage in REGISTERS:
            used = stage in registers
            for reg in (("INPUTA", "INPUTB") if stage == "INPUT" else (stage,)):
                params[f"p_REG_{reg}_CLK"] = "CLK0" if used else "NONE"
                if used:
                    params.update({f"p_REG_{reg}_CE": "CE0", f"p_REG_{reg}_RST": "RST0"})
        params["p_REG_INPUTC_CLK"] = "NONE"
        if site is not None:
            params["a_BEL"] = site
        m.submodules[name] = Instance(
            "MULT18X18D", **params,
            p_GSR="DISABLED", p_RESETMODE="SYNC",
            p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE",
            i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
            # Only the selectors the registers use are connected. nextpnr-ecp5 ties a constant
            # on a DSP data pin (A, B, C) in the bitstream, but routes a constant on a clock,
            # clock-enable or reset pin as a fabric net from one constant LUT: nine such pins per
            # multiplier (CLK1-3, CE1-3, RST1-3, unused by every register) were 1152 routed
            # arcs into the DSP rows of the 8 x 16 systolic array.
            i_CLK0=ClockSignal(), i_CE0=ce, i_RST0=0,
            **ports,
        )
        return p
    if "INPUT" in registers:
        ra, rb = Signal(signed(18), name=f"{name}_ra"), Signal(signed(18), name=f"{name}_rb")
        with m.If(ce):
            m.d.sync += [ra.eq(a), rb.eq(b)]
        a, b = ra, rb
    value = a * b
    stages = [s for s in ("PIPELINE", "OUTPUT") if s in registers]
    for i, stage in enumerate(stages):
        reg = p if i == len(stages) - 1 else Signal(signed(36), name=f"{name}_{stage.lower()}")
        with m.If(ce):
            m.d.sync += reg.eq(value)
        value = reg
    if not stages:
        m.d.comb += p.eq(value)
    return p


#: DSP placements :func:`systolic_sites` knows: the devices whose ``MULT18X18D`` sites are below.
DSP_LAYOUTS = ("lfe5u-85f",)

# The LFE5U-85F's 156 MULT18X18D sites as nextpnr-ecp5 names them: three DSP tile rows (y = 10,
# 34, 58), each 52 multipliers at these x, in DSP blocks of four (bels MULT18_0, _1, _4, _5:
# two adjacent pairs). Read off nextpnr-ecp5 placements of the 8 x 16 systolic array (every site
# of a row in use) and accepted by it as placement constraints.
_ECP5_85F_DSP_ROWS = (10, 34, 58)
_ECP5_85F_DSP_XS = (4, 5, 8, 9, 13, 14, 17, 18, 22, 23, 26, 27, 31, 32, 35, 36, 40, 41, 44, 45, 49, 50,
                    53, 54, 58, 59, 62, 63, 69, 70, 73, 74, 78, 79, 82, 83, 87, 88, 91, 92, 96, 97,
                    100, 101, 105, 106, 109, 110, 114, 115, 118, 119)
_ECP5_BELS = ("MULT18_0", "MULT18_1", "MULT18_4", "MULT18_5")


def systolic_sites(layout, rows, pairs):
    """``sites[r][p]``: the two ``MULT18X18D`` bel names (multiplier 0, multiplier 1) of PE pair
    ``p`` of row ``r`` of a ``rows x 2 pairs`` systolic array on the device ``layout`` (one of
    :data:`DSP_LAYOUTS`).

    Left alone, nextpnr scatters an array that fills the DSP rows: at 8 x 16 on the LFE5U-85F it
    put the two multipliers of one pair up to 74 tiles apart and a pair's logic over up to 90
    columns, so the neighbour-to-neighbour wires of the systolic array crossed the die and the
    router did not converge. Here each pair's multipliers are the two adjacent sites of a DSP
    block, and the array's rows are interleaved along the device's DSP rows: with ``S =
    ceil(rows / 3)`` array rows per DSP row, row ``r`` lies in DSP row ``d = r // S`` and pair ``p``
    at site pair ``offset + p * S + slot`` (centred), ``slot = r % S`` in even DSP rows and
    ``S - 1 - r % S`` in odd ones (a serpentine: the last row of a DSP row lies above the first of
    the next). A column's pairs (weights passing down, results up) are neighbouring site pairs or
    the same x one DSP row away; a row's pairs (activations passing right) are ``S`` site pairs
    apart.

    Raises
    ------
    TypeError
        ``layout`` not a string.
    ValueError
        ``layout`` unknown, or the array does not fit (``S * pairs`` site pairs in a DSP row of 26).
    """
    if not isinstance(layout, str):
        raise ParameterTypeError(f"dsp_layout must be one of {', '.join(DSP_LAYOUTS)} or None, "
                                 f"not {layout!r}")
    if layout not in DSP_LAYOUTS:
        raise ValueError(f"dsp_layout must be one of {', '.join(DSP_LAYOUTS)} or None, not {layout!r}")
    lines, xs = _ECP5_85F_DSP_ROWS, _ECP5_85F_DSP_XS
    slots = -(-rows // len(lines))
    per_line = len(xs) // 2
    if slots * pairs > per_line:
        raise ValueError(f"dsp_layout {layout!r} holds {per_line} PE pairs per DSP row and "
                         f"{len(lines)} DSP rows: a {rows} x {2 * pairs} array needs "
                         f"{slots * pairs} per row")
    offset = (per_line - slots * pairs) // 2

    def bel(index, y):
        return f"X{xs[index]}/Y{y}/{_ECP5_BELS[index % 4]}"

    def slot(r):
        return r % slots if (r // slots) % 2 == 0 else slots - 1 - r % slots

    return [[tuple(bel(2 * (offset + p * slots + slot(r)) + k, lines[r // slots]) for k in range(2))
             for p in range(pairs)] for r in range(rows)]
