"""The heartbeat LED in Amaranth's simulator: it keeps toggling, every ``clk_hz // 2`` cycles of the
clock it is built for (a 1 Hz blink), and on each board top it is the board's first LED, built for
the clock of the board's config.

The expected times come from ``clk_hz`` alone, never from the design's output.
"""

import dataclasses
from types import SimpleNamespace

import pytest
from amaranth.lib import io

import boards.top
from boards.top import BoardTop
from hw.control import core as core_module
from hw.control.boards import BOARD_CONFIGS, make_core
from hw.control.heartbeat import Heartbeat
from sim.streams import simulate

#: Toggles watched: the first one (from reset) and the intervals after it.
TOGGLES = 4
#: A board's clock toggles its heartbeat after millions of cycles, too many for Amaranth's simulator:
#: on a board top the heartbeat is built for the config's clock divided by this (the blink's
#: arithmetic at any clock is checked on the component itself).
BOARD_SCALE = 100_000


def toggle_cycles(dut, led, clk_hz):
    """Cycles from reset after which ``led`` changed, its first :data:`TOGGLES` changes (fewer if it
    stops: the watch ends a whole interval after the last expected toggle)."""
    times = []
    limit = (TOGGLES + 1) * (clk_hz // 2) + 2

    async def tb(ctx):
        last = ctx.get(led)
        assert last == 0, "the heartbeat is low out of reset"
        for cycle in range(1, limit + 1):
            await ctx.tick()
            value = ctx.get(led)
            if value != last:
                times.append(cycle)
                last = value
                if len(times) == TOGGLES:
                    return

    simulate(dut, tb)
    return times


def expected(clk_hz):
    return [(i + 1) * (clk_hz // 2) for i in range(TOGGLES)]


# Odd and even clocks, half periods at and around powers of two (the counter's width), the smallest.
@pytest.mark.parametrize("clk_hz", [2, 3, 4, 5, 16, 17, 18, 1023, 1024, 1026, 4800])
def test_heartbeat_toggles_every_half_second(clk_hz):
    hb = Heartbeat(clk_hz)
    assert toggle_cycles(hb, hb.o_led, clk_hz) == expected(clk_hz)


@pytest.mark.parametrize("clk_hz, error", [(1, ValueError), (10**9 + 1, ValueError), (1e6, TypeError),
                                           (True, TypeError)])
def test_heartbeat_checks_clk_hz(clk_hz, error):
    with pytest.raises(error, match="clk_hz must be an integer from 2 to 1000000000"):
        Heartbeat(clk_hz)


class _SimPins:
    """A stand-in platform for :class:`boards.top.BoardTop`: every pin a simulation port."""

    def __init__(self):
        self.leds = {}

    def request(self, name, number=0, *, dir):
        if name == "uart":
            return SimpleNamespace(rx=io.SimulationPort("i", 1), tx=io.SimulationPort("o", 1))
        self.leds[name, number] = port = io.SimulationPort("o", 1)
        return port


@pytest.mark.parametrize("board", sorted(BOARD_CONFIGS))
def test_board_top_heartbeat(board, monkeypatch):
    cfg = BOARD_CONFIGS[board]
    built_for = []

    def scaled_heartbeat(clk_hz):
        built_for.append(clk_hz)
        return Heartbeat(clk_hz // BOARD_SCALE)

    monkeypatch.setattr(core_module, "Heartbeat", scaled_heartbeat)
    # The system group alone (the board's block groups use FPGA primitives and are not the point).
    monkeypatch.setattr(boards.top, "make_core", lambda b, **kw: make_core(b, **kw, handlers={}))
    # The board's clock straight from a pin: the PLL is an FPGA primitive (and so are the PLLs of
    # the GEMM engine's own clock domains, not carried here).
    top = BoardTop(board, config=dataclasses.replace(cfg, osc_hz=0, clocks={}))
    pins = _SimPins()
    design = top.elaborate(pins)
    led = pins.leds[cfg.leds[0]].o
    assert toggle_cycles(design, led, cfg.clk_hz // BOARD_SCALE) == expected(cfg.clk_hz // BOARD_SCALE)
    assert built_for == [cfg.clk_hz]
