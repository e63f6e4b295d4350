"""Bulk-load throughput of the board link vs the UART line rate, measured in simulation.

Runs the iCEBreaker core (12 MHz, 1 Mbaud: 12 cycles per bit, as flashed) in Amaranth's simulator,
driven at the UART pins by the simulated host, and times stop-and-wait ``SINK`` frames (a bulk load
with no block behind it; block loads use the same receive path) of several payload sizes. The line
rate is ``baud / 10`` bytes/s (8N1); efficiency = payload bytes / (simulated time * line rate).

The baseline in the same table is the framing bound: payload / (payload + 7 command framing bytes +
7 reply bytes), i.e. what a zero-latency controller would reach with stop-and-wait.

Then the controller core's resources and Fmax out of context on the UP5K (boards.synth).

Run: ``python -m bench.bench_uart``
"""

import sys
import time

from boards.config import BOARD_CONFIGS
from boards.synth import synthesize
from firmware.driver import Driver
from firmware.transport import SimTransport
from hw.control import protocol as P
from hw.control.core import EdgeLearnCore
from sim.board.amaranth_board import SimBoard, make_sim_core


def measure(sizes=(16, 64, 256, 512), repeat=1, board="icebreaker"):
    cfg = BOARD_CONFIGS[board]
    divisor = cfg.clk_hz // cfg.baud
    sim = SimBoard(make_sim_core(board, divisor=divisor))
    drv = Driver(SimTransport(sim_board=sim))
    drv.ping(b"warm-up")
    rows = []
    for size in sizes:
        data = bytes((i * 7 + 3) & 0xFF for i in range(size))
        c0 = sim.cycles
        for _ in range(repeat):
            n, total = drv.sink(data)
            assert (n, total) == (size, sum(data) & 0xFFFF)
        cycles = sim.cycles - c0
        # Reads advance the simulator in chunks; the reply's last byte ends within one chunk of
        # the reported cycle count, so the measured time is an upper bound (efficiency a lower bound).
        seconds = cycles / cfg.clk_hz
        line = cfg.baud / 10
        eff = size * repeat / seconds / line
        bound = size / (size + 7 + 7)
        rows.append((size, cycles // repeat, eff, bound))
    return cfg, divisor, rows


def main():
    t0 = time.monotonic()
    cfg, divisor, rows = measure()
    print(f"board link bulk load, {cfg.name}: {cfg.clk_hz / 1e6:g} MHz, {cfg.baud} baud "
          f"({divisor} cycles/bit), stop-and-wait SINK frames, simulated at the UART pins")
    print(f"{'payload B':>10} {'cycles/frame':>13} {'of line rate':>13} {'framing bound':>14}")
    for size, cycles, eff, bound in rows:
        print(f"{size:>10} {cycles:>13} {eff:>12.1%} {bound:>14.1%}")
    best = rows[-1][2]
    print(f"bulk load at MAX_PAYLOAD={P.MAX_PAYLOAD}: {best:.1%} of the line rate "
          f"(target >= 80%: {'met' if best >= 0.8 else 'NOT met'})  [{time.monotonic() - t0:.0f} s]")
    if "--no-synth" in sys.argv:
        return
    for device in ("up5k",):
        r = synthesize(EdgeLearnCore(clk_hz=cfg.clk_hz, baud=cfg.baud), device=device, name="control_core",
                       freq_mhz=cfg.clk_hz / 1e6)
        keys = ("lut4", "ff", "dsp", "bram", "fmax_mhz")
        print(f"control core (UART + controller + system group) on {device}: "
              + ", ".join(f"{k}={r.get(k)}" for k in keys))


if __name__ == "__main__":
    main()
