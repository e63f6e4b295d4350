"""Jobs: end-to-end runs through the driver, on a board or on the simulated board, checked against
the golden models.

Each job returns ``(label, value)`` string rows (what ``edgelearn run JOB`` prints). ``board=None``
runs on the simulated board (the iCEBreaker design in Amaranth's simulator, driven at its UART
pins); a board name with a ``port`` (or an auto-detected FTDI port) runs on hardware. The same job
code runs in both cases: only the transport differs.
"""

import random
import time

__all__ = ["JOBS", "run_job", "find_port"]

JOBS = {
    "status": "link check: STATUS, PING round trip and a bulk SINK load, with the measured line efficiency",
    "snn": "STDP run: load a random SNN, inject Poisson spikes, read spikes and learned weights vs golden",
}


def find_port(board):
    """The FTDI serial port of ``board`` (iCEBreaker: the FT2232H's second channel; ULX3S: FT231X)."""
    from serial.tools import list_ports
    ports = [p for p in list_ports.comports() if p.vid == 0x0403]
    if board == "icebreaker":
        ports = [p for p in ports if p.pid == 0x6010 and (p.location or "").endswith(".1")] or \
            [p for p in ports if p.pid == 0x6010][1:2]
    else:
        ports = [p for p in ports if p.pid == 0x6015]
    if not ports:
        raise ConnectionError(f"no {board} serial port found (FTDI USB UART); pass port=")
    return ports[0].device


def _open(board, port):
    from .api import Accelerator
    from .driver import Driver
    from .transport import SerialTransport, SimTransport
    if board is None:
        return Accelerator(Driver(SimTransport("icebreaker")), "icebreaker"), "simulated icebreaker"
    from boards.config import BOARD_CONFIGS
    if board not in BOARD_CONFIGS:
        raise ValueError(f"board must be one of {', '.join(BOARD_CONFIGS)}, not {board!r}")
    port = port or find_port(board)
    transport = SerialTransport(port, BOARD_CONFIGS[board].baud)
    return Accelerator(Driver(transport), board), f"{board} on {port}"


def _job_status(acc, where):
    st = acc.status()
    rows = [("target", where), ("protocol version", str(st["version"])),
            ("command groups", ", ".join(sorted(acc.groups()))),
            ("clock", f"{st['clk_khz'] / 1000:g} MHz, UART {st['divisor']} cycles/bit")]
    payload = bytes(random.Random(0).randrange(256) for _ in range(64))
    ok = acc.driver.ping(payload) == payload
    rows.append(("PING 64 B", "ok" if ok else "MISMATCH"))
    data = bytes((i * 13) & 0xFF for i in range(512))
    sim = getattr(acc.driver.transport, "board", None)
    c0 = sim.cycles if sim is not None else None
    t0 = time.monotonic()
    n, total = acc.driver.sink(data)
    ok_sink = (n, total) == (len(data), sum(data) & 0xFFFF)
    if sim is not None:
        seconds = (sim.cycles - c0) / sim.clk_hz
        line = sim.clk_hz / sim.divisor / 10
    else:
        seconds = time.monotonic() - t0
        line = acc.config.baud / 10
    eff = len(data) / seconds / line
    rows.append(("SINK 512 B", f"{'ok' if ok_sink else 'MISMATCH'}, {eff:.1%} of line rate"))
    rows.append(("link errors", f"flags=0x{acc.status()['flags']:02x}"))
    return rows


def _job_snn(acc, where):
    from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows
    cfg = acc.stdp_config()
    rng = random.Random(2024)
    rows = random_rows(rng, cfg.n_neurons, 0.04, cfg.w_bits)
    steps = poisson_events(rng, 8, range(cfg.n_neurons), 0.25)
    t0 = time.monotonic()
    acc.reset()
    spikes, learned = acc.run_snn(rows, steps)
    net = ForwardSTDPNetwork(cfg, rows)
    ref = [net.step(ev)[0] for ev in steps]
    changed = sum(w0 != w1 for r0, r1 in zip(rows, learned) for (_, w0), (_, w1) in zip(r0, r1))
    return [
        ("target", where),
        ("network", f"{cfg.n_neurons} LIF neurons, {sum(map(len, rows))} synapses (CSR), "
                    f"window {cfg.window}"),
        ("steps", f"{len(steps)}, {sum(map(len, steps))} input events"),
        ("output spikes", f"{sum(map(len, spikes))} (golden {sum(map(len, ref))})"),
        ("spikes == golden", str(spikes == ref)),
        ("weights changed by STDP", str(changed)),
        ("learned weights == golden", str(learned == net.weights())),
        ("time", f"{time.monotonic() - t0:.1f} s"),
    ]


_RUNNERS = {"status": _job_status, "snn": _job_snn}


def run_job(name, *, board=None, port=None):
    """Run job ``name`` (a key of :data:`JOBS`) and return its ``(label, value)`` rows.

    Raises
    ------
    ValueError
        Unknown job or board.
    ConnectionError
        No serial port for the board.
    """
    if name not in JOBS:
        raise ValueError(f"job must be one of {', '.join(JOBS)}, not {name!r}")
    acc, where = _open(board, port)
    try:
        return _RUNNERS[name](acc, where)
    finally:
        acc.close()
