"""Board link: line efficiency and job times, stop-and-wait vs windowed, measured in simulation.

Runs the board's control core (UART, 512-byte receive FIFO, controller, system group) at the
board's clock and UART rate (``boards.config``: the rate follows the clock, see
:func:`hw.uart.baud.link_baud`) in Verilator, driven at its UART pins by the host driver, and
times two jobs with both host protocols on the same design:

* **bulk load**: :data:`BULK_BYTES` in ``SINK`` frames (a load with no block behind it; every block
  load takes the same receive path) -- stop-and-wait with ``MAX_PAYLOAD``-byte frames, windowed
  with the largest frames that pipeline (:meth:`firmware.driver.Driver.window_payload`);
* **command stream**: :data:`STREAM_COMMANDS` ``PING`` frames of :data:`STREAM_BYTES` bytes, each
  answered with as many (the size of an image's activations in and results out).

Line efficiency = payload bytes to the board / (elapsed board time * line rate), the line rate
being ``baud / 10`` bytes/s (8N1); the framing bound is payload / (payload + frame bytes). Each job
runs with the host seeing replies at once and with a USB bridge's latency (:data:`LATENCIES`:
FTDI's latency timer at 1 ms, the low-latency mode the serial transport asks for, and 16 ms, its
default), modelled by :class:`firmware.transport.SimTransport` (``latency``).

Run: ``python -m bench.bench_uart`` (``--clock-mhz F`` for another clock; ``--amaranth`` for
Amaranth's simulator, much slower).
"""

import argparse
import dataclasses
import sys
import time

from boards.config import BOARD_CONFIGS
from firmware.driver import Driver
from firmware.transport import SimTransport
from hw.control import protocol as P
from hw.control.core import EdgeLearnCore
from sim.board.amaranth_board import SimBoard
from sim.board.verilator_board import VerilatorBoard

BULK_BYTES = 16 * 1024
STREAM_COMMANDS = 32
STREAM_BYTES = 64
LATENCIES = (0.0, 0.001, 0.016)
TARGET = 0.9


def _board(cfg, amaranth):
    core = EdgeLearnCore(clk_hz=cfg.clk_hz, baud=cfg.baud)
    if amaranth:
        return SimBoard(core)
    return VerilatorBoard(core, toplevel=f"edgelearn_link_{cfg.clk_hz // 1000}k_{cfg.baud // 1000}k")


def _bulk(drv, data, windowed):
    replies = drv.bulk(P.Cmd.SINK, data, window=windowed)
    assert sum(int.from_bytes(r[:2], "little") for r in replies) == len(data)


def _stream(drv, pings, windowed):
    cmds = [(P.Cmd.PING, p) for p in pings]
    replies = drv.pipeline(cmds) if windowed else [drv.command(c, p) for c, p in cmds]
    assert replies == pings


def measure(cfg, amaranth=False):
    """``{(job, latency, windowed): (seconds, payload bytes to the board)}`` and the FIFO size."""
    sim = _board(cfg, amaranth)
    data = bytes((i * 7 + 3) & 0xFF for i in range(BULK_BYTES))
    pings = [bytes((k + i) & 0xFF for i in range(STREAM_BYTES)) for k in range(STREAM_COMMANDS)]
    rows = {}
    try:
        for latency in LATENCIES:
            drv = Driver(SimTransport(sim_board=sim, latency=latency), timeout=4 * latency + 0.01)
            st = drv.status()
            for windowed in (False, True):
                for job, run, payload in (("bulk", _bulk, data), ("stream", _stream, pings)):
                    c0 = sim.cycles
                    run(drv, payload, windowed)
                    rows[job, latency, windowed] = ((sim.cycles - c0) / sim.clk_hz, len(b"".join(
                        payload if job == "stream" else [payload])))
            assert drv.status()["flags"] == 0 and drv.resends == 0
    finally:
        sim.close()
    return rows, st["rx_fifo"], Driver.FRAME_BYTES


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.bench_uart", description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="icebreaker", choices=sorted(BOARD_CONFIGS))
    ap.add_argument("--clock-mhz", type=float, help="the board's clock (default: its config's)")
    ap.add_argument("--amaranth", action="store_true", help="Amaranth's simulator instead of Verilator")
    args = ap.parse_args(argv)
    cfg = BOARD_CONFIGS[args.board]
    if args.clock_mhz:
        cfg = dataclasses.replace(cfg, clk_hz=int(args.clock_mhz * 1e6), baud=0)
    t0 = time.monotonic()
    rows, fifo, frame_bytes = measure(cfg, args.amaranth)
    line = cfg.baud / 10
    print(f"board link, {cfg.label or cfg.name}: {cfg.clk_hz / 1e6:g} MHz clock, {cfg.baud / 1e6:g} Mbaud "
          f"over the {cfg.usb_uart or 'USB UART'} ({cfg.clk_hz // cfg.baud} cycles/bit), receive FIFO "
          f"{fifo} B; core simulated at its UART pins")
    chunk = min(P.MAX_PAYLOAD, fifo - frame_bytes)
    print(f"bulk load: {BULK_BYTES} B in SINK frames (stop-and-wait {P.MAX_PAYLOAD} B, windowed {chunk} B "
          f"payloads; framing bounds {P.MAX_PAYLOAD / (P.MAX_PAYLOAD + frame_bytes):.1%} / "
          f"{chunk / (chunk + frame_bytes):.1%}); "
          f"command stream: {STREAM_COMMANDS} PINGs of {STREAM_BYTES} B")
    print(f"{'job':<16}{'reply latency':>14}{'stop-and-wait':>22}{'windowed':>22}{'speed-up':>10}")
    for job in ("bulk", "stream"):
        for latency in LATENCIES:
            cells = []
            for windowed in (False, True):
                seconds, payload = rows[job, latency, windowed]
                cells.append(f"{seconds * 1e3:8.2f} ms {payload / seconds / line:6.1%}")
            speedup = rows[job, latency, False][0] / rows[job, latency, True][0]
            name = "bulk load" if job == "bulk" else "command stream"
            print(f"{name:<16}{latency * 1e3:>11g} ms{cells[0]:>22}{cells[1]:>22}{speedup:>9.2f}x")
    worst = min(rows["bulk", lat, True][1] / rows["bulk", lat, True][0] / line for lat in LATENCIES[:2])
    verdict = "met" if worst >= TARGET else "NOT met"
    print(f"windowed bulk load at <= {LATENCIES[1] * 1e3:g} ms reply latency: >= {worst:.1%} of the line "
          f"rate (target >= {TARGET:.0%}: {verdict})  [{time.monotonic() - t0:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
