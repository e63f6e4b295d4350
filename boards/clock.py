"""Board clocks: PLL parameters, the PLL clock domain of a board top, and the clock candidates.

A board whose :class:`hw.control.boards.BoardConfig` names an oscillator (``osc_hz``) runs its
``sync`` domain from the FPGA's PLL instead of the oscillator:

* iCE40UP5K: ``SB_PLL40_PAD`` fed straight from the oscillator's package pin (the iCEBreaker's
  12 MHz on pin 35, a PLL input pad), simple feedback. :func:`ice40_pll` chooses DIVR/DIVF/DIVQ and
  FILTER_RANGE exactly as ``icepll`` does (``yowasp-icepll``; the tests compare the two).

* ECP5: ``EHXPLLL`` fed from the oscillator's pin through an input buffer, feedback from its
  primary output CLKOP (the ULX3S's 25 MHz). :func:`ecp5_pll` chooses CLKI_DIV/CLKFB_DIV/CLKOP_DIV
  and CLKOP_CPHASE exactly as ``ecppll`` does (``yowasp-ecppll``, in its single-precision
  arithmetic; the tests compare the two). The ULX3S's own config has no ``osc_hz``: it runs from
  its oscillator unless a config gives it one.

The ``sync`` domain is held in reset until the PLL reports lock and then for :data:`POR_SECONDS`
more: iCE40 block RAMs read as zeros for ~3 us after configuration (Amaranth's own power-on reset
waits 15 us for the same reason; the PLL's lock time comes first). :class:`LockReset` is that
sequencer, simulated in the tests with a lock input standing in for the PLL.

Which clock a build uses is decided by :func:`clock_candidates` and :func:`next_candidate`: the
frequencies the PLL makes exactly enough for the UART's integer divisor (within
:data:`hw.uart.baud.MAX_BAUD_ERROR`), highest first; a build starts at the board's ``clk_hz`` and
steps down to the highest candidate that the measured Fmax carries with :data:`MARGIN`
(:func:`boards.build.build_board`).
"""

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from hw.uart.baud import divisor_for

__all__ = ["PLLParams", "ice40_pll", "ecp5_pll", "pll_for", "LockReset", "PLLDomain", "OscillatorDomain",
           "clock_candidates", "next_candidate", "MARGIN", "POR_SECONDS"]

#: Timing margin a PLL build must show: Fmax >= clock * (1 + MARGIN), nextpnr's Fmax of the placed
#: and routed design (its timing model is the slow corner; the margin covers what it does not model).
MARGIN = 0.05
#: Time the ``sync`` domain stays in reset after the PLL locks (5x the iCE40 BRAM's ~3 us).
POR_SECONDS = 15e-6


@dataclass(frozen=True)
class PLLParams:
    """A PLL setting: input and achieved output frequency (Hz) and the primitive's parameters."""
    family: str
    f_in: int
    f_out: Fraction
    params: dict        # divider parameters by their primitive names
    f_vco: Fraction

    @property
    def clk_hz(self):
        """The achieved output frequency rounded to whole Hz (what the core's counters use)."""
        return round(self.f_out)


# iCE40 PLL limits as icepll checks them (MHz): phase detector, VCO, output.
_ICE40_PFD = (10, 133)
_ICE40_VCO = (533, 1066)
_ICE40_OUT = (16, 275)


def _ice40_settings(f_in):
    """Every simple-feedback setting: (f_out, divr, divf, divq, f_vco) in MHz as Fractions."""
    f_in = Fraction(f_in, 10**6)
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not _ICE40_PFD[0] <= f_pfd <= _ICE40_PFD[1]:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not _ICE40_VCO[0] <= f_vco <= _ICE40_VCO[1]:
                continue
            for divq in range(1, 7):
                yield f_vco / 2**divq, divr, divf, divq, f_vco


def ice40_pll(f_in, f_out):
    """iCE40 PLL setting nearest to ``f_out`` Hz from ``f_in`` Hz (icepll's search and tie order).

    Raises ``ValueError`` naming ``f_out`` if the result is outside the PLL's 16-275 MHz output range.
    """
    target = Fraction(f_out, 10**6)
    best = None
    for setting in _ice40_settings(f_in):
        # icepll keeps the first setting of least error (strictly better replaces).
        if best is None or abs(setting[0] - target) < abs(best[0] - target):
            best = setting
    if best is None or not _ICE40_OUT[0] <= best[0] <= _ICE40_OUT[1]:
        raise ValueError(f"f_out must be from {_ICE40_OUT[0]} to {_ICE40_OUT[1]} MHz for the iCE40 PLL, "
                         f"not {f_out / 1e6:g} MHz")
    fout, divr, divf, divq, f_vco = best
    f_pfd = Fraction(f_in, 10**6) / (divr + 1)
    filter_range = 1 + sum(f_pfd >= edge for edge in (17, 26, 44, 66, 101))
    return PLLParams("ice40", f_in, fout * 10**6,
                     {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range},
                     f_vco * 10**6)


# ECP5 PLL limits as ecppll uses them (MHz): input, phase detector, VCO, output; divider ranges.
_ECP5_IN = (8, 400)
_ECP5_PFD = (3.125, 400)
_ECP5_VCO = (400, 800)
_ECP5_OUT = (10, 400)
_ECP5_DIVS = (128, 80, 128)     # CLKI_DIV, CLKFB_DIV, CLKOP_DIV: 1..n


@lru_cache(maxsize=4)
def _ecp5_grid(f_in_mhz):
    """Every (CLKI_DIV, CLKFB_DIV, CLKOP_DIV) in ecppll's loop order and its f_vco, f_out (MHz) in
    ecppll's single-precision arithmetic, restricted to its phase-detector and VCO ranges."""
    f32 = np.float32
    ri, fi, oi = np.meshgrid(*(np.arange(1, n + 1) for n in _ECP5_DIVS), indexing="ij")
    pfd = f32(f_in_mhz) / ri.astype(f32)
    vco = (pfd * fi.astype(f32)) * oi.astype(f32)
    ok = (pfd >= f32(_ECP5_PFD[0])) & (pfd <= f32(_ECP5_PFD[1])) & \
        (vco >= f32(_ECP5_VCO[0])) & (vco <= f32(_ECP5_VCO[1]))
    fout = vco / oi.astype(f32)
    return ri[ok], fi[ok], oi[ok], vco[ok], fout[ok]


def ecp5_pll(f_in, f_out):
    """ECP5 ``EHXPLLL`` setting nearest to ``f_out`` Hz from ``f_in`` Hz, as ``ecppll`` finds it.

    ecppll's search: over CLKI_DIV 1..128, CLKFB_DIV 1..80, CLKOP_DIV 1..128 (loop order), with
    the phase detector at 3.125-400 MHz and the VCO at 400-800 MHz, keep the setting of least
    output error, a tie going to the VCO nearer 600 MHz (else the first); all in single precision.
    CLKOP_CPHASE shifts the output by half a period, as ecppll writes it. The achieved frequency
    is exact: ``f_in * CLKFB_DIV / CLKI_DIV``.

    Raises ``ValueError`` naming ``f_in`` / ``f_out`` outside the PLL's 8-400 MHz input or
    10-400 MHz output range.
    """
    if not _ECP5_IN[0] * 10**6 <= f_in <= _ECP5_IN[1] * 10**6:
        raise ValueError(f"f_in must be from {_ECP5_IN[0]} to {_ECP5_IN[1]} MHz for the ECP5 PLL, "
                         f"not {f_in / 1e6:g} MHz")
    if not _ECP5_OUT[0] * 10**6 <= f_out <= _ECP5_OUT[1] * 10**6:
        raise ValueError(f"f_out must be from {_ECP5_OUT[0]} to {_ECP5_OUT[1]} MHz for the ECP5 PLL, "
                         f"not {f_out / 1e6:g} MHz")
    ri, fi, oi, vco, fout = _ecp5_grid(f_in / 1e6)
    f32 = np.float32
    error = np.abs(fout - f32(f_out / 1e6))
    near = np.abs(vco - f32(600))
    best = np.flatnonzero(error == error.min())
    best = best[near[best] == near[best].min()][0]
    # ecppll: float ns_phase = 1 / (fout * 1e6) * 0.5 (in double, stored as float); then
    # int(ns_phase * (fvco * 1e6)) in double.
    ns_phase = float(f32(1 / (float(fout[best]) * 1e6) * 0.5))
    cphase = int(ns_phase * (float(vco[best]) * 1e6))
    r, fb, od = int(ri[best]), int(fi[best]), int(oi[best])
    return PLLParams("ecp5", f_in, Fraction(f_in * fb, r),
                     {"CLKI_DIV": r, "CLKFB_DIV": fb, "CLKOP_DIV": od, "CLKOP_CPHASE": cphase},
                     Fraction(f_in * fb * od, r))


_PLLS = {"ice40": ice40_pll, "ecp5": ecp5_pll}


def pll_for(family, f_in, f_out):
    """The PLL setting of ``family`` (``"ice40"`` or ``"ecp5"``) for ``f_out`` from ``f_in``."""
    if family not in _PLLS:
        raise ValueError(f"family must be one of {', '.join(map(repr, _PLLS))} for a PLL clock, "
                         f"not {family!r}")
    return _PLLS[family](f_in, f_out)


def _achievable(family, f_in):
    """Every output frequency (Hz, Fraction) the family's PLL makes from ``f_in``."""
    if family == "ecp5":
        ecp5_pll(f_in, 100_000_000)   # the input range check
        ri, fi, _, _, _ = _ecp5_grid(f_in / 1e6)
        out = {Fraction(f_in * int(fb), int(r)) for r, fb in set(zip(ri.tolist(), fi.tolist()))}
        return {f for f in out if _ECP5_OUT[0] * 10**6 <= f <= _ECP5_OUT[1] * 10**6}
    pll_for(family, f_in, 48_000_000)   # the family check
    return {s[0] * 10**6 for s in _ice40_settings(f_in) if _ICE40_OUT[0] <= s[0] <= _ICE40_OUT[1]}


def clock_candidates(family, f_in, baud, *, highest, lowest):
    """PLL clocks (whole Hz) from ``highest`` down to ``lowest`` Hz that the UART can divide to ``baud``.

    Only clocks the PLL makes exactly (to the Hz) and at which :func:`hw.uart.baud.divisor_for`
    accepts ``baud`` are candidates, so the UART divisor follows the chosen clock by construction.
    ``baud=None``: no UART in the domain (the ULX3S's GEMM engine clocks), every exact clock.
    """
    out = []
    for f in _achievable(family, f_in):
        if f.denominator != 1 or not lowest <= f <= highest:
            continue
        try:
            if baud is not None:
                divisor_for(int(f), baud, max_divisor=0xFFFF)
        except ValueError:
            continue
        # ecppll's single-precision search must land on the exact setting too.
        if family == "ecp5" and ecp5_pll(f_in, int(f)).clk_hz != f:
            continue
        out.append(int(f))
    return sorted(out, reverse=True)


def next_candidate(candidates, fmax_mhz, margin=MARGIN):
    """The highest of ``candidates`` (Hz) that ``fmax_mhz`` carries with ``margin``, else None."""
    for f in candidates:
        if fmax_mhz * 1e6 >= f * (1 + margin):
            return f
    return None


class LockReset(Elaboratable):
    """Reset of a PLL clock domain: asserted until ``lock`` has been high for ``delay`` cycles.

    ``lock`` (the PLL's LOCK output) may be asynchronous to ``domain``: it clears the counter through
    a two-flop synchronizer. ``rst`` is high while the counter runs and goes low ``delay`` cycles
    (plus two for the synchronizer) after ``lock`` is first sampled high; a drop of ``lock``
    asserts it again three cycles after it is sampled low.
    ``domain`` is clocked by the PLL output and has no reset of its own.
    """

    def __init__(self, delay, domain="por"):
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 1:
            raise ValueError(f"delay must be an integer number of cycles >= 1, not {delay!r}")
        self.delay = delay
        self.domain = domain
        self.lock = Signal()
        self.rst = Signal(init=1)

    def elaborate(self, platform):
        m = Module()
        locked = Signal(2)
        timer = Signal(range(self.delay + 1))
        d = m.d[self.domain]
        d += locked.eq(Cat(self.lock, locked[0]))
        with m.If(~locked[1]):
            d += [timer.eq(0), self.rst.eq(1)]
        with m.Elif(timer == self.delay):
            d += self.rst.eq(0)
        with m.Else():
            d += timer.eq(timer + 1)
        return m


class PLLDomain(Elaboratable):
    """Clock and reset of ``domain`` (defined by the parent) from the board's oscillator through its
    PLL.

    ``pll`` is a :class:`PLLParams` (from :func:`ice40_pll` or :func:`ecp5_pll`); ``clk`` the name of
    the oscillator's resource on the platform, or (ECP5) the oscillator's clock after its input
    buffer, a signal, when other logic uses it too. The domain's reset comes from
    :class:`LockReset` (held :data:`POR_SECONDS` after lock) through a reset synchronizer.
    """

    def __init__(self, pll, clk, domain="sync"):
        self.pll = pll
        self.clk = clk
        self.domain = domain

    def elaborate(self, platform):
        m = Module()
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        clk_out = Signal()
        lock = Signal()
        if not isinstance(self.clk, str):
            m.submodules.pll = _ecp5_instance(self.clk, self.pll, clk_out, lock)
        elif self.pll.family == "ice40":
            m.submodules.pll = _ice40_instance(platform.request(self.clk, dir="-"), self.pll, clk_out, lock)
        else:
            m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(self.clk, dir="-"))
            m.submodules.pll = _ecp5_instance(clk_in.i, self.pll, clk_out, lock)
        m.d.comb += [ClockSignal(self.domain).eq(clk_out), ClockSignal("por").eq(clk_out)]
        m.submodules.lock_reset = lock_reset = LockReset(max(1, round(POR_SECONDS * self.pll.clk_hz)))
        m.d.comb += lock_reset.lock.eq(lock)
        m.submodules.reset_sync = ResetSynchronizer(lock_reset.rst, domain=self.domain)
        # No constraint of our own: nextpnr derives the PLL output's (clk_hz) from the oscillator
        # pin's and the PLL's dividers; the margin is checked on the Fmax it reports.
        return m


def _ice40_instance(pad, pll, clk_out, lock):
    p = pll.params
    return Instance(
        "SB_PLL40_PAD",
        p_FEEDBACK_PATH="SIMPLE",
        p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"],
        i_PACKAGEPIN=pad.io,
        i_RESETB=1, i_BYPASS=0,
        o_PLLOUTGLOBAL=clk_out,
        o_LOCK=lock,
    )


def _ecp5_instance(clk_in, pll, clk_out, lock):
    """``EHXPLLL`` with the parameters and attributes ``ecppll`` writes for a single output."""
    p = pll.params
    return Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{pll.f_in / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{float(pll.f_out) / 1e6:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
        p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
        p_CLKFB_DIV=p["CLKFB_DIV"],
        i_RST=0, i_STDBY=0, i_CLKI=clk_in, i_CLKFB=clk_out,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0,
        o_CLKOP=clk_out, o_LOCK=lock,
    )


class OscillatorDomain(Elaboratable):
    """The ``sync`` domain (defined by the parent) straight from the board's oscillator (resource
    ``clk``), for a board whose PLLs make other domains from the same oscillator (``clk_in``: the
    oscillator after its input buffer, for them). Reset: held :data:`POR_SECONDS` after
    configuration (:class:`LockReset` with the lock high), through a reset synchronizer.
    """

    def __init__(self, clk, clk_hz):
        self.clk = clk
        self.clk_hz = clk_hz
        self.clk_in = Signal()

    def elaborate(self, platform):
        m = Module()
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.submodules.clk_buf = buf = io.Buffer("i", platform.request(self.clk, dir="-"))
        m.d.comb += [self.clk_in.eq(buf.i), ClockSignal("sync").eq(buf.i), ClockSignal("por").eq(buf.i)]
        m.submodules.por_reset = por = LockReset(max(1, round(POR_SECONDS * self.clk_hz)))
        m.d.comb += por.lock.eq(1)
        m.submodules.reset_sync = ResetSynchronizer(por.rst, domain="sync")
        return m
