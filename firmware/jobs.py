"""Jobs: end-to-end runs through the driver, on a board or on a simulated board, checked against
the golden models.

Each job returns ``(label, value)`` string rows (what ``edgelearn run JOB`` prints); every result
is printed next to its golden model's and a row says whether they match. Where a job runs:

* ``board=None``: the small simulated board (:data:`boards.config.SIM_CONFIG`: every command group
  at small sizes, in Verilator, driven at its UART pins);
* ``board=B, sim=True``: board ``B``'s own core in Verilator (its groups, block sizes, clock and
  UART divisor; :func:`sim.board.shared_board`);
* ``board=B``: the board itself on ``port`` (or its auto-detected FTDI port).

The same job code runs in all cases: only the transport and the sizes differ. A job whose group the
board lacks raises :class:`BlockMissing` (the board's ``STATUS`` lists its groups).

On a simulated board the jobs also print the board's time per step (``snn``), per GEMV (``gemm``)
or per image (``mlp``): :func:`board_time` splits the simulated cycles of one command's exchange
into the line time of its bytes and the board's own cycles (see there).

Sizes (decisions): ``snn`` fills the board's synapse memory (``max_synapses`` CSR synapses,
``max_synapses / n_neurons`` per neuron); ``gemm`` fills its weight memory (``k`` up to 128, up
to 128 outputs per GEMV); ``mlp`` classifies the first :data:`MLP_IMAGES` test images; ``hdqt``
runs two steps of the board's layer. On the small simulated board each takes well under a minute.
"""

import random
import time

import numpy as np
from serial.tools import list_ports

from boards.build import with_engine_clocks
from boards.config import SIM_CONFIG, check_board
from boards.groups import config_for_groups
from hw.control.gemm_handler import MAX_N_OUT
from hw.control.protocol import FLAG_BITS
from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_exp_base, ref_layer_step
from sim.mac.demo import load_data, mlp_forward, train_mlp
from sim.mac.golden import quantize_weights, ref_gemm
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows

from . import spram_gemm
from .api import Accelerator, BlockMissing
from .driver import Driver
from .engine import default_batch, engine_config, peak_macs, run_gemm, split
from .transport import SerialTransport, SimTransport

__all__ = ["JOBS", "run_job", "find_port", "board_time", "BlockMissing"]

JOBS = {
    "status": "link check: STATUS, PING round trip and a bulk SINK load, with the measured line efficiency",
    "gemm": "Huffman-compressed int8 weights into the MAC array, GEMVs vs numpy",
    "mlp": "digits MLP inference, compressed int8 weights on the MAC array: accuracy, logits vs golden",
    "hdqt": "two HDQT training steps of a layer (forward, dX, dW, SGD update) vs the golden model",
    "snn": "STDP run: load a random SNN, inject Poisson spikes, read spikes and learned weights vs golden",
}

MLP_IMAGES = 16
GEMM_VECTORS = 4


def find_port(board):
    """The FTDI serial port of ``board`` (iCEBreaker: the FT2232H's second channel; ULX3S: FT231X)."""
    pid = check_board(board).usb_pid
    ports = [p for p in list_ports.comports() if p.vid == 0x0403 and p.pid == pid]
    if pid == 0x6010:  # FT2232H: channel A is the FPGA's SPI flash, channel B the UART
        ports = [p for p in ports if (p.location or "").endswith(".1")] or ports[1:2]
    if not ports:
        raise ConnectionError(f"no {board} serial port found (FTDI USB UART); pass port=")
    return ports[0].device


def _open(board, port, sim, groups=None, gemm_array=None, clocks=None):
    if sim and port is not None:
        raise ValueError(f"port must be None on a simulated board, not {port!r}")
    if sim and board is None:
        transport = SimTransport()
        return Accelerator(Driver(transport), "sim", SIM_CONFIG), transport.name
    cfg = with_engine_clocks(config_for_groups(board, groups, gemm_array), clocks)
    if sim:
        transport = SimTransport(board=board, config=cfg)
        return (Accelerator(Driver(transport), board, cfg),
                f"{cfg.label or board}'s own core{_array(cfg, gemm_array)}, {transport.name}")
    port = port or find_port(board)
    transport = SerialTransport(port, cfg.baud)
    return Accelerator(Driver(transport), board, cfg), f"{board}{_array(cfg, gemm_array)} on {port}"


def _array(cfg, gemm_array):
    """`` with the RxC GEMM array`` when the job names a shape (the rows say which core ran)."""
    return "" if gemm_array is None else f" with the {cfg.gemm['rows']}x{cfg.gemm['cols']} GEMM array"


def _job_status(acc, where):
    acc.reset()                       # a clean board: flags below are this job's
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
    # UART-link health (CRC, truncated or oversize frames, framing, overrun) apart from command-level
    # flags (unknown command, watchdog, block error), which other clients of a shared board may raise.
    flags = acc.status()["flags"]
    link = sum(1 << FLAG_BITS[k] for k in ("crc", "truncated", "oversize", "framing", "overrun"))
    rows.append(("link errors", f"flags=0x{flags & link:02x}"))
    rows.append(("command errors", f"flags=0x{flags & ~link & 0xFF:02x}"))
    return rows


def _job_snn(acc, where):
    cfg = acc.stdp_config()
    rng = random.Random(2024)
    # The board's whole synapse memory: the same fan-out for every neuron.
    n = cfg.n_neurons
    rows = random_rows(rng, n, None, cfg.w_bits, fanout=min(n, cfg.max_synapses // n))
    # About 8 input events per step: the recurrent network's cascades do the rest.
    steps = poisson_events(rng, 8, range(n), min(0.25, 8 / n))
    t0 = time.monotonic()
    acc.reset()
    acc.load_network(rows)
    spikes, per_step = [], []
    for ev in steps:
        with _Meter(acc) as m:
            spikes.append(acc.snn_step(ev))
        per_step.append(m)
    learned = acc.read_network(rows)
    net = ForwardSTDPNetwork(cfg, rows)
    ref = [net.step(ev)[0] for ev in steps]
    changed = sum(w0 != w1 for r0, r1 in zip(rows, learned) for (_, w0), (_, w1) in zip(r0, r1))
    return [
        ("target", where),
        ("network", f"{n} LIF neurons, {sum(map(len, rows))} synapses (CSR, {cfg.syn_store}; board "
                    f"maximum {cfg.max_synapses}), window {cfg.window}"),
        ("steps", f"{len(steps)}, {sum(map(len, steps))} input events"),
        ("output spikes", f"{sum(map(len, spikes))} (golden {sum(map(len, ref))})"),
        ("spikes == golden", str(spikes == ref)),
        ("weights changed by STDP", str(changed)),
        ("learned weights == golden", str(learned == net.weights())),
        ("board == golden", _match(spikes == ref and learned == net.weights())),
        *_time_rows(acc, per_step, "INJECT_SPIKES step"),
        ("wall time", f"{time.monotonic() - t0:.1f} s"),
    ]


def _match(ok):
    return "yes" if ok else "NO: MISMATCH"


def _cycles(acc):
    sim = getattr(acc.driver.transport, "board", None)
    return sim.cycles if sim is not None else None


def _line(acc, c0, t0, nbytes):
    """Time on the link: board cycles for the simulated board, wall time on hardware."""
    sim = getattr(acc.driver.transport, "board", None)
    if sim is not None:
        return f"{(sim.cycles - c0) / sim.clk_hz * 1e3:.1f} ms board time ({nbytes} B on the line)"
    return f"{time.monotonic() - t0:.2f} s ({nbytes} B on the line)"


def board_time(cycles, nbytes, clk_hz, baud, divisor):
    """The board's time for one command's exchange, from a simulated board.

    ``cycles`` is the simulated clock cycles from the command's first byte to its reply's last one,
    ``nbytes`` the bytes on the line both ways (stop-and-wait: the controller receives the whole
    frame, executes, then sends the reply, so the line and the board never work at once). The
    simulated UART runs at ``divisor`` cycles per bit, so ``10 * divisor * nbytes`` of the cycles
    are the line's; the rest are the board's own (``compute``: CRC check, the handler's work,
    reply start). Returns a dict: ``cycles``, ``compute_cycles``, ``clock_mhz``, ``compute_us``
    (compute cycles at ``clk_hz``), ``link_us`` (``nbytes * 10 / baud``: 8N1 frames at the
    board's line rate) and ``total_us`` (their sum).
    """
    compute = cycles - 10 * divisor * nbytes
    if compute < 0:
        raise ValueError(f"cycles must cover the line time of nbytes ({10 * divisor * nbytes} cycles "
                         f"at divisor {divisor}), not {cycles}")
    compute_us = compute / clk_hz * 1e6
    link_us = nbytes * 10 / baud * 1e6
    return {"cycles": cycles, "compute_cycles": compute, "clock_mhz": clk_hz / 1e6,
            "compute_us": compute_us, "link_us": link_us, "total_us": compute_us + link_us}


class _Meter:
    """Simulated cycles and line bytes of the commands run inside ``with`` (``None`` on hardware)."""

    def __init__(self, acc):
        self._acc = acc
        self.cycles = self.nbytes = None

    def _read(self):
        drv = self._acc.driver
        return _cycles(self._acc), drv.bytes_sent + drv.bytes_received

    def __enter__(self):
        self._c0, self._b0 = self._read()
        return self

    def __exit__(self, *exc):
        c1, b1 = self._read()
        self.nbytes = b1 - self._b0
        if c1 is not None:
            self.cycles = c1 - self._c0


def _time_rows(acc, meters, what):
    """Rows of the board's mean time per command (:func:`board_time`); none on hardware."""
    sim = getattr(acc.driver.transport, "board", None)
    if sim is None or not meters:
        return []
    baud = acc.config.baud
    times = [board_time(m.cycles, m.nbytes, sim.clk_hz, baud, sim.divisor) for m in meters]
    mean = {k: sum(t[k] for t in times) / len(times) for k in times[0]}
    nbytes = sum(m.nbytes for m in meters) / len(meters)
    return [
        ("time per", f"{what}, mean of {len(meters)}: simulated cycles of the exchange; link = "
                     f"{nbytes:.0f} B x 10 / {baud} baud; compute = cycles - line cycles"),
        ("cycles", f"{mean['cycles']:.0f} ({mean['compute_cycles']:.0f} on the board, the rest on the line)"),
        ("clock_mhz", f"{mean['clock_mhz']:g} (the board's configured clock; the simulated core has no PLL)"),
        ("compute_us", f"{mean['compute_us']:.1f}"),
        ("link_us", f"{mean['link_us']:.1f}"),
        ("total_us", f"{mean['total_us']:.1f}"),
    ]


def gemm_shape(gemm):
    """``(n_out, k)`` of the ``gemm`` job for a board's GEMM group parameters: ``k`` up to 128
    activations, as many outputs as the weight memory holds, up to one GEMM command's 128."""
    k = min(128, gemm.get("max_k", 256))
    return min(MAX_N_OUT, gemm.get("max_weights", 4096) // k), k


def _job_gemm(acc, where, **options):
    acc._need("gemm")
    if acc.config.gemm.get("handler") == "engine":
        return _job_gemm_engine(acc, where, **options)
    if acc.config.gemm.get("handler") == "spram":
        return _job_gemm_spram(acc, where, **options)
    if options:
        raise ValueError(f"{', '.join(options)}: options of the gemm job on the GEMM engine only")
    g = acc.config.gemm
    cols = g.get("cols", 4)
    rng = np.random.default_rng(7)
    n_out, k = gemm_shape(g)
    # Trained-weight-like statistics (Gaussian, many small values) are what Huffman coding exploits.
    w = np.clip(np.rint(rng.normal(0, 12, (n_out, k))), -128, 127).astype(np.int64)
    x = rng.integers(-128, 128, (GEMM_VECTORS, k))
    acc.reset()
    c0, t0, b0 = _cycles(acc), time.monotonic(), acc.driver.bytes_sent + acc.driver.bytes_received
    stats = acc.load_compressed_weights(w.ravel(), block_n=256)
    y, meters = [], []
    for v in x:
        with _Meter(acc) as m:
            y.append(acc.gemv(list(v), n_out))
        meters.append(m)
    y = np.array(y)
    nbytes = acc.driver.bytes_sent + acc.driver.bytes_received - b0
    golden = ref_gemm(x, w, "int8", acc_width=g.get("acc_width", 24))[0]
    equal = int((y == golden).sum())
    rows = [
        ("target", where),
        ("weights", f"{n_out} x {k} int8, Huffman-coded: {stats['code_bits']} code bits "
                    f"({stats['code_bits'] / w.size:.2f} bits/weight, {8 * w.size / stats['code_bits']:.2f}x "
                    f"smaller than int8), {stats['sent_bytes']} B in {stats['blocks']} blocks"),
        ("GEMVs", f"{GEMM_VECTORS} int8 vectors on the MAC array ({cols} columns)"),
        ("results", f"board {equal}/{golden.size} equal to numpy golden; y[0][:4] board "
                    f"{list(map(int, y[0][:4]))} / golden {list(map(int, golden[0][:4]))}"),
        ("board == golden", _match(equal == golden.size)),
        ("link", _line(acc, c0, t0, nbytes)),
        *_time_rows(acc, meters, f"GEMV of {n_out} x {k}"),
    ]
    sim = getattr(acc.driver.transport, "board", None)
    if sim is not None:
        per = [board_time(m.cycles, m.nbytes, sim.clk_hz, acc.config.baud, sim.divisor)["compute_cycles"]
               for m in meters]
        mac_per_cycle = n_out * k * len(per) / sum(per)
        rows += [("MAC/cycle", f"{mac_per_cycle:.3f} measured ({n_out * k} MAC per GEMV / its board "
                               f"cycles), {mac_per_cycle / cols:.1%} of the array's peak {cols}"),
                 ("MAC/s", f"{mac_per_cycle * sim.clk_hz / 1e9:.3f} G int8 MAC/s at "
                           f"{sim.clk_hz / 1e6:g} MHz")]
    return rows


def _job_gemm_spram(acc, where, *, size=128, batch=GEMM_VECTORS,
                    precisions=("int8", "int4", "int2", "ternary")):
    """The SPRAM GEMM group: one ``size x size`` layer per precision (Gaussian weights quantized per
    output channel), all loaded into the store at once, then ``batch`` GEMVs per layer vs the golden
    model; MACs per cycle from the board cycles of the GEMVs."""
    g = acc.config.gemm
    rng = np.random.default_rng(17)
    n_out, k = min(size, MAX_N_OUT), min(size, g.get("max_k", 256))
    layers = [(quantize_weights(rng.normal(0, 1, (n_out, k)), mode, per_channel=True)[0], mode)
              for mode in precisions]
    acc.reset()
    loaded = spram_gemm.load_model(acc.driver, g, layers)
    rows = [("target", where),
            ("layers", f"{n_out} x {k} in {', '.join(precisions)}: {loaded['symbols']} packed weight bytes "
                       f"Huffman-coded to {loaded['code_bits']} bits, {loaded['sent_bytes']} B sent once "
                       f"into the SPRAM store")]
    all_ok = True
    sim = getattr(acc.driver.transport, "board", None)
    for (w, mode), block in zip(layers, loaded["blocks"]):
        x = rng.integers(-128, 128, (batch, k))
        y, meters = [], []
        for v in x:
            with _Meter(acc) as m:
                y.append(spram_gemm.gemv(acc.driver, block, v, n_out, mode))
            meters.append(m)
        golden = ref_gemm(x, w, mode, acc_width=g.get("acc_width", 24))[0]
        ok = bool((np.array(y) == golden).all())
        all_ok &= ok
        rows.append((f"{mode} GEMVs", f"{batch}: board {int((np.array(y) == golden).sum())}/{golden.size} "
                                      f"equal to golden"))
        if sim is not None:
            per = [board_time(m.cycles, m.nbytes, sim.clk_hz, acc.config.baud, sim.divisor)["compute_cycles"]
                   for m in meters]
            rows.append((f"{mode} MAC/cycle", f"{n_out * k * len(per) / sum(per):.3f} (board cycles of a "
                                              f"GEMV, mean {sum(per) / len(per):.0f})"))
    rows.append(("board == golden", _match(all_ok)))
    return rows


def _sim_periods(sim):
    """The simulated board's clock periods, e.g. ``sync 10 ns, gemm 6.4 ns``."""
    clocks = getattr(sim, "clocks", {}) or {}
    return ", ".join(["sync 10 ns"] + [f"{d} {ps / 1000:g} ns" for d, ps in clocks.items()])


def _job_gemm_engine(acc, where, *, size=512, batch=None, precisions=("int8", "int4")):
    """``batch x size`` activations times ``size x size`` weights per precision on the GEMM engine
    (weights Gaussian, quantized per output channel, compressed), against numpy and the golden model.
    ``batch`` defaults to :func:`firmware.engine.default_batch` at the engine's clocks: the smallest
    that the cycle model keeps >= 90 % busy (48 at the ULX3S's 95 / 65 MHz, 64 at 125 / 65).

    The MAC/cycle figures are the engine's: MACs over the cycles of its ``GEMM_RUN`` commands (the
    weights staged in block RAM beforehand, :mod:`firmware.engine`), which do not depend on the
    line. The line's time is printed apart, at the board's own rate (on a simulated board whose line
    runs faster, :data:`sim.board.SIM_LINE_DIVISORS`, the bytes are the same)."""
    cfg = engine_config(acc.config.gemm)
    rng = np.random.default_rng(18)
    rows = [("target", where),
            ("engine", f"{cfg['rows']} x {cfg['cols']} systolic array, {cfg['lanes']} Huffman lanes"
                       f"{' (C-slow, 2 contexts)' if cfg['contexts'] == 2 else ''}, "
                       f"K <= {cfg['max_k']}, batch <= {cfg['max_batch']} per engine GEMM, weights staged "
                       f"in {cfg['stage_depth']} beats of block RAM")]
    sim = getattr(acc.driver.transport, "board", None)
    clk_hz = sim.clk_hz if sim is not None else acc.config.clk_hz
    # The engine's cycles are its array's: in the array's own clock domain where it has one.
    array_hz = acc.config.clocks.get(cfg["array_domain"], clk_hz)
    decode_hz = acc.config.clocks.get(cfg["decode_domain"], array_hz)
    if array_hz != clk_hz:
        rows.append(("clocks", f"array {array_hz / 1e6:g} MHz ({cfg['array_domain']}), decoder "
                               f"{decode_hz / 1e6:g} MHz, "
                               f"controller {clk_hz / 1e6:g} MHz"
                               + (f"; simulated at periods {_sim_periods(sim)}" if sim is not None else "")))
    if batch is None:
        batch = default_batch(cfg, array_hz, decode_hz, size)
        rows.append(("batch", f"{batch}: the smallest multiple of {cfg['rows']} rows that the engine's cycle "
                              f"model keeps >= 90 % busy at these clocks (--batch to choose)"))
    baud = acc.config.baud
    if sim is not None:
        rows.append(("line", f"simulated at {sim.divisor} cycles/bit; the board's line is "
                             f"{baud / 1e6:g} Mbaud ({clk_hz // baud} cycles/bit): the link times "
                             f"below are at that rate"))
    all_ok = True
    acc.reset()
    for mode in precisions:
        w, _ = quantize_weights(rng.normal(0, 1, (size, size)), mode, per_channel=True)
        x = rng.integers(-128, 128, (batch, size))
        t0, b0 = time.monotonic(), acc.driver.bytes_sent + acc.driver.bytes_received
        y, st = run_gemm(acc.driver, cfg, x, w, mode)
        wall = time.monotonic() - t0
        nbytes = acc.driver.bytes_sent + acc.driver.bytes_received - b0
        # The golden model of the engine's split: each K slice's accumulators saturate on their own.
        k_slices = sorted({(ks.start, ks.stop) for _, ks in split(batch, size, cfg)})
        golden = sum(ref_gemm(x[:, a:b], w[:, a:b], mode, acc_width=cfg["acc_width"])[0] for a, b in k_slices)
        exact = x @ w.T
        ok = bool((y == exact).all() and (y == golden).all())
        all_ok &= ok
        macs = batch * size * size
        per_cycle = macs / st["cycles"]
        peak = peak_macs(cfg, mode)
        busy = st["beats"] / st["cycles"]
        rows += [
            (f"{mode} layer", f"{batch} x {size} activations, {size} x {size} weights: "
                              f"Huffman-coded in {st['code_bits'] / w.size:.2f} bits/weight "
                              f"({st['sent_bytes']} B of code), {st['engine_gemms']} engine GEMM(s), "
                              f"{st['runs']} runs (chunks of tiles the staging FIFO holds)"),
            (f"{mode} result", f"board {int((y == exact).sum())}/{exact.size} equal to numpy, "
                               f"{int((y == golden).sum())}/{exact.size} to the golden model"),
            (f"{mode} MAC/cycle", f"{per_cycle:.2f} measured ({macs} MAC / {st['cycles']} array cycles "
                                  f"of the runs on staged weights), {per_cycle / peak:.1%} of the array's "
                                  f"peak {peak}; the array took a beat in {busy:.1%} of the cycles "
                                  f"(padding rows included)"),
            (f"{mode} MAC/s", f"{per_cycle * array_hz / 1e9:.3f} G MAC/s at the array's clock "
                              f"{array_hz / 1e6:g} MHz (the runs: {st['cycles'] / array_hz * 1e3:.2f} ms)"),
            (f"{mode} link", f"{nbytes} B on the line both ways (table, activations, weights, results): "
                             f"{nbytes * 10 / baud:.2f} s at {baud / 1e6:g} Mbaud, "
                             f"{nbytes * 10 / baud / (st['cycles'] / array_hz):.0f}x the runs' time; "
                             f"{wall:.0f} s on the host"),
        ]
    rows.append(("board == golden", _match(all_ok)))
    return rows


def _mlp_model():
    """The digits MLP (64-32-10, :func:`sim.mac.demo.train_mlp`), int8 per-channel weights."""

    xtr, ytr, xte, yte = load_data()
    w1, b1, w2, b2 = train_mlp(xtr, ytr)
    float_acc = float((mlp_forward((w1, b1, w2, b2), xte)[1].argmax(1) == yte).mean())
    q1, s1 = quantize_weights(w1, "int8", per_channel=True)
    q2, s2 = quantize_weights(w2, "int8", per_channel=True)
    # Hidden activations as signed int8 0..127 (the GEMM group's activations are signed).
    h_tr = np.maximum(xtr @ (q1 * s1[:, None]).T + b1, 0)
    sh = float(h_tr.max()) / 127
    return (q1, s1, b1, q2, s2, b2, sh), (xte, yte), float_acc


def _mlp_hidden(acc1, model):
    q1, s1, b1, q2, s2, b2, sh = model
    return np.clip(np.rint(np.maximum(acc1 * s1 + b1, 0) / sh), 0, 127).astype(np.int64)


def _job_mlp(acc, where):

    acc._need("gemm")
    model, (xte, yte), float_acc = _mlp_model()
    q1, s1, b1, q2, s2, b2, sh = model
    engine = acc.config.gemm.get("handler") == "engine"
    spram = acc.config.gemm.get("handler") == "spram"
    if not engine and not spram and q1.size + q2.size > acc.config.gemm.get("max_weights", 4096):
        raise ValueError("the board's weight memory cannot hold the MLP")
    x, y = xte[:MLP_IMAGES], yte[:MLP_IMAGES]
    acc.reset()
    c0, t0, b0 = _cycles(acc), time.monotonic(), acc.driver.bytes_sent + acc.driver.bytes_received
    logits_b, meters = [], []
    if engine:
        # The GEMM engine: each layer one GEMM of all the images (the weights sent per layer).
        cfg = engine_config(acc.config.gemm)
        a1, st1 = run_gemm(acc.driver, cfg, x, q1, "int8")
        a2, st2 = run_gemm(acc.driver, cfg, _mlp_hidden(a1, model), q2, "int8")
        logits_b = a2 * sh * s2 + b2
        stats = {"code_bits": st1["code_bits"] + st2["code_bits"],
                 "sent_bytes": st1["sent_bytes"] + st2["sent_bytes"]}
    else:
        if spram:
            # The SPRAM store: both layers' compressed blocks loaded once, each GEMV names its layer's beats.
            loaded = spram_gemm.load_model(acc.driver, acc.config.gemm, [(q1, "int8"), (q2, "int8")])
            stats = loaded
            layer1 = lambda v: spram_gemm.gemv(acc.driver, loaded["blocks"][0], v, q1.shape[0])  # noqa: E731
            layer2 = lambda v: spram_gemm.gemv(acc.driver, loaded["blocks"][1], v, q2.shape[0])  # noqa: E731
        else:
            stats = acc.load_compressed_weights(np.concatenate([q1.ravel(), q2.ravel()]), block_n=256)
            layer1 = lambda v: acc.gemv(list(v), q1.shape[0])  # noqa: E731
            layer2 = lambda v: acc.gemv(list(v), q2.shape[0], wbase=q1.size)  # noqa: E731
        for img in x:
            # The host's hidden-layer arithmetic between the two GEMVs takes no board time (the
            # simulated board stands still while the host computes; on hardware it is host time).
            with _Meter(acc) as m:
                a1 = np.array(layer1(img))
                a2 = np.array(layer2(_mlp_hidden(a1, model)))
            meters.append(m)
            logits_b.append(a2 * sh * s2 + b2)
        logits_b = np.array(logits_b)
    nbytes = acc.driver.bytes_sent + acc.driver.bytes_received - b0
    # Golden: the same integer pipeline in numpy (ref_gemm is the MAC array's golden model).
    a1g = ref_gemm(x, q1, "int8")[0]
    a2g = ref_gemm(_mlp_hidden(a1g, model), q2, "int8")[0]
    logits_g = a2g * sh * s2 + b2
    acc_b = float((logits_b.argmax(1) == y).mean())
    acc_g = float((logits_g.argmax(1) == y).mean())
    equal = int((logits_b == logits_g).sum())
    return [
        ("target", where),
        ("model", f"sklearn digits MLP 64-32-10, int8 per-channel weights, Huffman-coded "
                  f"({stats['code_bits'] / (q1.size + q2.size):.2f} bits/weight, {stats['sent_bytes']} B)"),
        ("images", f"first {len(y)} of {len(yte)} test images (float model: {100 * float_acc:.1f}% on all)"),
        ("accuracy", f"board {acc_b:.3f} / golden {acc_g:.3f}"),
        ("logits", f"{equal}/{logits_g.size} board logits equal to golden"),
        ("board == golden", _match(equal == logits_g.size and acc_b == acc_g)),
        ("link", _line(acc, c0, t0, nbytes)),
        *_time_rows(acc, meters, "image (two GEMVs)"),
    ]


def _job_hdqt(acc, where):

    acc._need("hdqt")
    L = acc.hdqt_layer()
    B, K, O = L["batch"], L["k_dim"], L["o_dim"]
    cfg = HdqtConfig(had_cap=L["had_cap"], tile_bits=L["tile_bits"], acc_bits=L["acc_width"], lr_shift=3)
    rng = np.random.default_rng(2025)
    w = rng.integers(-4000, 4000, (O, K))                 # Q2.13 master weights (about +-0.5)
    acc.reset()                                           # also restarts the stochastic-rounding LFSR
    lfsr = LfsrStream()
    rows = [("target", where), ("layer", f"Y = X W^T, B={B} K={K} O={O}, 4-bit HDQT operands, "
                                         f"{L['rows']}x{L['cols']} MAC array, lr 2^-{cfg.lr_shift}")]
    all_ok = True
    for step in range(2):
        x = rng.integers(0, 200, (B, K))                   # post-ReLU input, exponent -6
        dy = rng.integers(-20000, 20000, (B, O))           # output gradient, exponent -22
        got = acc.hdqt_step(x, dy, ref_exp_base(cfg, -6, -22, B), w=w if step == 0 else None)
        ref = ref_layer_step(cfg, w, x, -6, dy, -22, lfsr)
        eq = {name: int((np.array(got[name]) == ref[name]).sum()) for name in ("y", "dx", "w")}
        ok = (all(eq[n] == ref[n].size for n in eq) and tuple(got["shifts"]) == tuple(ref["shifts"])
              and got["w_saturated"] == ref["w_saturated"])
        all_ok &= ok
        rows.append((f"step {step + 1}", f"Y {eq['y']}/{ref['y'].size}, dX {eq['dx']}/{ref['dx'].size}, "
                                         f"W {eq['w']}/{ref['w'].size} equal to golden; shifts board "
                                         f"{tuple(got['shifts'])} / golden {tuple(ref['shifts'])}; "
                                         f"{got['cycles']} cycles"))
        moved = np.abs(np.array(got["w"]) - w).mean()
        rows.append((f"step {step + 1} update", f"mean |dW| board {moved:.1f} / "
                                                f"golden {np.abs(ref['w'] - w).mean():.1f} LSB (Q2.13)"))
        w = ref["w"]
    rows.append(("board == golden", _match(all_ok)))
    return rows


_RUNNERS = {"status": _job_status, "gemm": _job_gemm, "mlp": _job_mlp, "hdqt": _job_hdqt, "snn": _job_snn}


def run_job(name, *, board=None, port=None, sim=None, groups=None, gemm_array=None, clocks=None,
            **options):
    """Run job ``name`` (a key of :data:`JOBS`) and return its ``(label, value)`` rows.

    ``sim`` (default: ``board is None``) runs on a simulated board: ``board``'s own core, or the
    small all-groups board without ``board``. ``groups`` (with ``board``): the command groups of the
    bitstream, as ``edgelearn build --groups`` selects them (:func:`boards.groups.config_for_groups`);
    ``gemm_array`` (with ``board``): its GEMM engine's array shape (``"8x16"``), as ``build
    --gemm-array`` sets it; ``clocks`` (with ``board``): its engine's PLL clocks ``{domain: Hz}``, as
    ``edgelearn build --clock`` sets them (:func:`boards.build.with_engine_clocks`): the simulated
    core runs at them, and the job's MAC/s are at them.

    Raises
    ------
    ValueError
        Unknown job or board, or a ``port`` with ``sim``.
    ConnectionError
        No serial port for the board.
    BlockMissing
        The board's bitstream lacks the job's command group (its ``STATUS`` says which it has).
    """
    if name not in JOBS:
        raise ValueError(f"job must be one of {', '.join(JOBS)}, not {name!r}")
    if groups is not None and board is None:
        raise ValueError("groups needs a board (the small simulated board carries every group)")
    if gemm_array is not None and board is None:
        raise ValueError("gemm_array needs a board (the small simulated board has no GEMM engine)")
    if clocks is not None and board is None:
        raise ValueError("clocks needs a board (the small simulated board has one clock)")
    acc, where = _open(board, port, board is None if sim is None else sim, groups, gemm_array, clocks)
    try:
        if options and name != "gemm":
            raise ValueError(f"{', '.join(options)}: options of the gemm job only")
        return _RUNNERS[name](acc, where, **options)
    finally:
        acc.close()
