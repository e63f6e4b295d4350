"""Per-board configuration: platform, clock, UART rate and the command groups each board carries.

This is the one place that knows the boards: :mod:`boards` (tops, builds, flashing), the simulated
board in :mod:`sim.board` and the host in :mod:`firmware` all read it, and :func:`check_board` is
the one check of a board name. :func:`make_core` builds the core a board carries.

Decisions (the issue leaves them open):

* The UART rate follows the clock: :func:`hw.uart.baud.link_baud` picks the highest rate up to
  3 Mbaud that the board's USB UART (``usb_uart``) makes exactly and the clock divides into >= 8
  cycles per bit (iCEBreaker at 12 MHz: 1.5 Mbaud; at 48 MHz: 3 Mbaud; ULX3S at 25 MHz: 1 Mbaud,
  since 25 MHz is no multiple of 3 or 1.5 MHz). ``baud=0`` in a config asks for this rate.
* ``clk_hz`` is the system clock. A board with an ``osc_hz`` runs it from the FPGA's PLL fed by
  that oscillator; ``clk_hz`` is then the highest clock its build tries, and the build steps down
  if the design misses it (:mod:`boards.clock`, docs/boards.md). The UART divisor is computed from
  the clock and ``baud`` (:func:`hw.uart.baud.divisor_for`), so it follows the chosen clock.
"""

import importlib
from dataclasses import dataclass, field
from functools import partial

from ..uart.baud import link_baud
from .core import EdgeLearnCore
from .engine_handler import EngineHandler
from .gemm_handler import GEMMHandler
from .hdqt_handler import HDQTHandler
from .protocol import GROUP_GEMM, GROUP_HDQT, GROUP_STDP
from .spram_gemm_handler import SpramGEMMHandler
from .stdp_handler import STDPHandler

__all__ = ["BoardConfig", "BOARD_CONFIGS", "SIM_CONFIG", "check_board", "board_handlers", "make_core"]


@dataclass(frozen=True)
class BoardConfig:
    name: str
    description: str
    platform: str         # "module:Class" in amaranth_boards
    device: str           # the device name reported by build_board
    clk_hz: int
    baud: int             # 0: the link rate for clk_hz and usb_uart (hw.uart.baud.link_baud)
    leds: tuple           # (resource name, number) per core LED bit, in order
    stdp: dict = field(default_factory=dict)  # STDPConfig parameters of the STDP group (empty: none)
    # GEMM group parameters (empty: none): GEMMHandler's, or with "handler": "engine" EngineHandler's,
    # or with "handler": "spram" SpramGEMMHandler's (compressed weights kept in SPRAM).
    gemm: dict = field(default_factory=dict)
    hdqt: dict = field(default_factory=dict)  # HDQTHandler (HdqtLayer) parameters (empty: none)
    label: str = ""       # the board's name for people ("iCEBreaker")
    loader_board: str = ""  # openFPGALoader's -b name
    usb_pid: int = 0      # FTDI product id of the board's USB UART (0x6010 FT2232H: second channel)
    usb_uart: str = ""    # the USB UART bridge (a key of hw.uart.baud.USB_UARTS)
    osc_hz: int = 0       # oscillator feeding the PLL that makes clk_hz (0: no PLL, clk_hz is the oscillator)
    # Other clock domains of the core (e.g. the GEMM engine's array and decoder): {domain: Hz}, each
    # made by a PLL from the board's oscillator (boards.clock); simulated at other periods (sim.board).
    clocks: dict = field(default_factory=dict)
    router: str = ""      # nextpnr router of the board build ("router1", "router2"; "": nextpnr's default)
    placer: str = ""      # nextpnr placer of the board build ("heap", "sa", "static"; "": nextpnr's default)
    timing_ripup: bool = False  # nextpnr's router rips up and reroutes critical nets (--tmg-ripup)

    def __post_init__(self):
        if not self.baud:
            object.__setattr__(self, "baud", link_baud(self.clk_hz, self.usb_uart))

    @property
    def top_name(self):
        """Name of the top-level module and of the bitstream file (an identifier)."""
        return "edgelearn_" + self.name.replace("-", "_")

    @property
    def family(self):
        """``"ice40"`` or ``"ecp5"``, from ``device``."""
        return "ice40" if self.device.startswith("iCE40") else "ecp5"

    @property
    def bitstream_ext(self):
        return "bin" if self.family == "ice40" else "bit"

    def make_platform(self):
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)()


BOARD_CONFIGS = {
    "icebreaker": BoardConfig(
        name="icebreaker",
        description="iCEBreaker (iCE40UP5K, PLL clock up to 48 MHz, FT2232H USB UART)",
        platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        device="iCE40UP5K",
        label="iCEBreaker",
        # openFPGALoader's generic FT2232H iCE40 board, which writes the SPI flash.
        loader_board="ice40_generic",
        usb_pid=0x6010,
        usb_uart="FT2232H",
        clk_hz=48_000_000,
        osc_hz=12_000_000,
        baud=0,
        # Green: heartbeat; red: any error flag.
        leds=(("led_g", 0), ("led_r", 0)),
        # 256 neurons, 32768 CSR synapses of 8-bit weights (fan-out 128) in two of the four SPRAMs
        # (docs/stdp.md); the neuron state, row table and walk queue stay in block RAM.
        stdp={"n_neurons": 256, "max_synapses": 32768, "syn_store": "spram"},
        # No GEMM group by default (measured, docs/boards.md "The iCEBreaker's GEMM group"): the
        # SPRAM GEMM group (`--groups gemm`, boards/groups.py) takes 4696 of 5280 LCs beside the
        # system group alone (36 MHz, not 48) and 7888 with STDP; its compact Huffman decoder is
        # the bulk.
        # STDP fits with margin, so the iCEBreaker carries STDP and the ULX3S carries every group
        # (gemm/mlp/hdqt jobs there and on the simulated board).
    ),
    "ulx3s": BoardConfig(
        name="ulx3s",
        description="ULX3S (ECP5 LFE5U-85F, 25 MHz, FT231X USB UART)",
        platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
        device="LFE5U-85F",
        label="ULX3S",
        loader_board="ulx3s",
        usb_pid=0x6015,
        usb_uart="FT231X",
        clk_hz=25_000_000,
        baud=0,
        leds=tuple(("led", i) for i in range(8)),
        stdp={"n_neurons": 256, "max_synapses": 8192},
        # The GEMM engine (docs/gemm.md): 8 x 16 systolic array (128 MULT18X18D; with HDQT's 16,
        # 145 of the 156). It routes beside HDQT and STDP with nextpnr's static placer (below; with
        # HeAP router2 did not converge, docs/boards.md); `--gemm-array 4x8` builds or simulates the
        # smaller array (boards/groups.py). K <= 512 and batches <= 64 per engine GEMM (the
        # host splits larger ones), 8192 staged data beats (64 KB) and 1024 result rows. The array
        # in its own PLL domain, the decoder (4 C-slow lanes, contexts=2: 101.9 MHz on the
        # ECP5 alone, docs/huffman.md) in another; the controller and the handler stay on the
        # 25 MHz oscillator. The array's multipliers sit at fixed DSP sites (dsp_layout,
        # hw/mac/ecp5_dsp.py: left to itself nextpnr scattered a pair's two over the die). The
        # sequencer's prefetch queue keeps the array's ready off the block RAMs' enables.
        gemm={"handler": "engine", "rows": 8, "cols": 16, "max_k": 512, "max_batch": 64, "lanes": 4,
              "contexts": 2, "max_len": 16, "stage_depth": 8192, "result_depth": 1024,
              "array_domain": "gemm", "decode_domain": "dec", "dsp_layout": "lfe5u-85f", "prefetch": True},
        # The engine's PLL clocks, the first a build tries (it steps a domain down when its Fmax
        # does not carry it with 5 %, boards/build.py): 95 MHz for the array (25 x 19 / 5), 65 MHz
        # for the decoder (25 x 13 / 5), exact; the highest that the full board's builds at seeds 1
        # and 2 carry with the margin (docs/boards.md "The ULX3S build"). The decoder's clock is
        # below the array's: the GEMM job's batch (48, six row tiles) reuses a decoded tile enough
        # (docs/gemm.md), and its `dec` domain is the one whose Fmax varies most with placement.
        # The aim is 125 MHz for the array.
        clocks={"gemm": 95_000_000, "dec": 65_000_000},
        # router1 rips up the dense DSP neighbourhoods of the systolic array for hours; router2 routes them.
        router="router2",
        # nextpnr's static (electrostatic) placer: with HeAP the full 8 x 16 board's decoder lanes
        # spread over the array's DSP rows and router2's overuse rose again after ~1200 wires; with
        # static it routed (docs/boards.md "Placer").
        placer="static",
        # router2 with timing-driven rip-up: it reroutes nets of paths that fail the constraint, so
        # on the same placement a build that missed its clocks met them, and two that met them came
        # out unchanged (docs/boards.md "Router").
        timing_ripup=True,
        hdqt={"batch": 32, "k_dim": 64, "o_dim": 64, "had_cap": 64, "rows": 4, "cols": 4,
              "backend": "ecp5"},
    ),
}


#: The simulated board (``edgelearn run JOB --sim``, ``edgelearn demo``, the UART-level tests): every
#: command group, each small enough that a job runs in seconds in Verilator, on one design so that
#: it is built once (Verilator builds are cached by the design's hash). Its UART runs at 4 cycles
#: per bit; everything else is the gateware of the boards at other sizes.
SIM_CONFIG = BoardConfig(
    name="sim",
    description="simulated board (all command groups at small sizes, Verilator)",
    platform="",
    device="simulation",
    clk_hz=25_000_000,
    baud=25_000_000 // 4,
    leds=(),
    stdp={"n_neurons": 32, "max_synapses": 512, "refractory": 1, "threshold": 200},
    gemm={"max_weights": 4096, "max_k": 256, "cols": 4},
    hdqt={"batch": 8, "k_dim": 16, "o_dim": 8, "had_cap": 8, "rows": 2, "cols": 2},
)


def check_board(name):
    """The :class:`BoardConfig` of ``name``; ``ValueError`` naming the boards if there is none."""
    if not isinstance(name, str):
        raise TypeError(f"board must be a string, not {type(name).__name__}")
    if name not in BOARD_CONFIGS:
        raise ValueError(f"board must be one of {', '.join(BOARD_CONFIGS)}, not {name!r}")
    return BOARD_CONFIGS[name]


def board_handlers(board, config=None, *, primitives=True):
    """``{group: factory}`` of the block handlers for ``board`` (see :mod:`hw.control.core`).

    ``config`` (a :class:`BoardConfig`) replaces the board's own, e.g. a smaller network for fast
    simulations. ``primitives=False`` gives the MAC arrays of DSP backends behavioural models of
    the vendor multipliers (simulators cannot run the primitives).
    """
    cfg = config if config is not None else check_board(board)
    handlers = {}

    def params(p):
        p = dict(p)
        if p.get("backend", "lut") != "lut":
            p.setdefault("primitives", primitives)
            if not primitives:
                p["primitives"] = False
        return p

    if cfg.gemm.get("handler") == "engine":
        gemm = {k: v for k, v in cfg.gemm.items() if k != "handler"}
        handlers[GROUP_GEMM] = partial(EngineHandler, primitives=primitives, **gemm)
    elif cfg.gemm.get("handler") == "spram":
        gemm = {k: v for k, v in cfg.gemm.items() if k != "handler"}
        handlers[GROUP_GEMM] = partial(SpramGEMMHandler, primitives=primitives, **gemm)
    elif cfg.gemm:
        handlers[GROUP_GEMM] = partial(GEMMHandler, **params(cfg.gemm))
    if cfg.hdqt:
        handlers[GROUP_HDQT] = partial(HDQTHandler, **params(cfg.hdqt))
    if cfg.stdp:
        handlers[GROUP_STDP] = partial(STDPHandler, primitives=primitives, **cfg.stdp)
    return handlers


def make_core(board, *, config=None, primitives=True, **overrides):
    """The core a board carries (also what the simulated board runs, with ``overrides``).

    ``config`` replaces the board's :class:`BoardConfig` (block sizes); ``primitives=False``
    replaces DSP primitives by their behavioural models (for simulators).
    """
    cfg = config if config is not None else check_board(board)
    kwargs = {"clk_hz": cfg.clk_hz, "baud": cfg.baud,
              "handlers": board_handlers(board, cfg, primitives=primitives)}
    kwargs.update(overrides)
    return EdgeLearnCore(**kwargs)
