"""The ECP5 ``MULT18X18D`` multiplier as the MAC arrays use it: primitive or behavioural model.

Amaranth's simulator and the project's Verilator runs cannot simulate vendor primitives, so each
use has a behavioural model with the same multiplication and the same register stages; only the
primitive's own multiplier is trusted.
"""

from amaranth.hdl import ClockSignal, Instance, Signal, signed

__all__ = ["mult18x18d", "REGISTERS"]

#: The multiplier's register stages, in pipeline order.
REGISTERS = ("INPUT", "PIPELINE", "OUTPUT")


def mult18x18d(m, name, a, b, *, registers, ce=1, primitive=True):
    """``a * b`` (18 x 18 signed, 36-bit product) through the register stages in ``registers``
    (a subset of :data:`REGISTERS`: the A/B input registers, the pipeline register, the output
    register), all clocked by the ``sync`` domain and enabled by ``ce``. Returns the product signal;
    its latency is ``len(registers)`` cycles. ``primitive``: instantiate ``MULT18X18D`` (synthesis)
    or its behavioural model (simulation)."""
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
