"""Jobs: end-to-end runs through the driver, on a board or on the simulated board, checked against
the golden models.

Each job returns ``(label, value)`` string rows (what ``edgelearn run JOB`` prints); every result
is printed next to its golden model's and a row says whether they match. ``board=None`` runs on
the simulated board (:func:`sim.board.shared_board`: every command group at small sizes, in
Verilator, driven at its UART pins); a board name with a ``port`` (or an auto-detected FTDI port)
runs on hardware, with that board's block sizes. The same job code runs in both cases: only the
transport and the sizes differ. A job whose block the board lacks returns a row saying so.

Sizes (decisions): each job is kept to well under a minute on the simulated board, where the UART
bytes dominate (about 1 ms per byte of Python callbacks): ``mlp`` classifies the first
:data:`MLP_IMAGES` test images (about 300 bytes on the line per image), ``gemm`` multiplies
:data:`GEMM_VECTORS` vectors, ``hdqt`` runs two steps of the board's layer.
"""

import random
import time

import numpy as np
from serial.tools import list_ports

from boards.config import SIM_CONFIG, check_board
from hw.control.protocol import FLAG_BITS
from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_exp_base, ref_layer_step
from sim.mac.demo import load_data, mlp_forward, train_mlp
from sim.mac.golden import quantize_weights, ref_gemm
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows

from .api import Accelerator, BlockMissing
from .driver import Driver
from .transport import SerialTransport, SimTransport

__all__ = ["JOBS", "run_job", "find_port"]

JOBS = {
    "status": "link check: STATUS, PING round trip and a bulk SINK load, with the measured line efficiency",
    "gemm": "Huffman-compressed int8 weights into the MAC array, GEMVs vs numpy",
    "mlp": "digits MLP inference, compressed int8 weights on the MAC array: accuracy, logits vs golden",
    "hdqt": "two HDQT training steps of a layer (forward, dX, dW, SGD update) vs the golden model",
    "snn": "STDP run: load a random SNN, inject Poisson spikes, read spikes and learned weights vs golden",
}

MLP_IMAGES = 16
GEMM_VECTORS = 8


def find_port(board):
    """The FTDI serial port of ``board`` (iCEBreaker: the FT2232H's second channel; ULX3S: FT231X)."""
    pid = check_board(board).usb_pid
    ports = [p for p in list_ports.comports() if p.vid == 0x0403 and p.pid == pid]
    if pid == 0x6010:  # FT2232H: channel A is the FPGA's SPI flash, channel B the UART
        ports = [p for p in ports if (p.location or "").endswith(".1")] or ports[1:2]
    if not ports:
        raise ConnectionError(f"no {board} serial port found (FTDI USB UART); pass port=")
    return ports[0].device


def _open(board, port):
    if board is None:
        transport = SimTransport()
        return Accelerator(Driver(transport), "sim", SIM_CONFIG), transport.name
    cfg = check_board(board)
    port = port or find_port(board)
    transport = SerialTransport(port, cfg.baud)
    return Accelerator(Driver(transport), board), f"{board} on {port}"


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
    # About 8 synapses per neuron whatever the network size (small simulated networks need density).
    rows = random_rows(rng, cfg.n_neurons, max(0.04, 8 / cfg.n_neurons), cfg.w_bits)
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
        ("board == golden", _match(spikes == ref and learned == net.weights())),
        ("time", f"{time.monotonic() - t0:.1f} s"),
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


def _job_gemm(acc, where):

    acc._need("gemm")
    g = acc.config.gemm
    rng = np.random.default_rng(7)
    n_out, k = min(32, 8 * g.get("cols", 4)), min(64, g.get("max_k", 256))
    # Trained-weight-like statistics (Gaussian, many small values) are what Huffman coding exploits.
    w = np.clip(np.rint(rng.normal(0, 12, (n_out, k))), -128, 127).astype(np.int64)
    x = rng.integers(-128, 128, (GEMM_VECTORS, k))
    acc.reset()
    c0, t0, b0 = _cycles(acc), time.monotonic(), acc.driver.bytes_sent + acc.driver.bytes_received
    stats = acc.load_compressed_weights(w.ravel(), block_n=256)
    y = np.array([acc.gemv(list(v), n_out) for v in x])
    nbytes = acc.driver.bytes_sent + acc.driver.bytes_received - b0
    golden = ref_gemm(x, w, "int8", acc_width=g.get("acc_width", 24))[0]
    equal = int((y == golden).sum())
    return [
        ("target", where),
        ("weights", f"{n_out} x {k} int8, Huffman-coded: {stats['code_bits']} code bits "
                    f"({stats['code_bits'] / w.size:.2f} bits/weight, {8 * w.size / stats['code_bits']:.2f}x "
                    f"smaller than int8), {stats['sent_bytes']} B in {stats['blocks']} blocks"),
        ("GEMVs", f"{GEMM_VECTORS} int8 vectors on the MAC array ({g.get('cols', 4)} columns)"),
        ("results", f"board {equal}/{golden.size} equal to numpy golden; y[0][:4] board "
                    f"{list(map(int, y[0][:4]))} / golden {list(map(int, golden[0][:4]))}"),
        ("board == golden", _match(equal == golden.size)),
        ("link", _line(acc, c0, t0, nbytes)),
    ]


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
    if q1.size + q2.size > acc.config.gemm.get("max_weights", 4096):
        raise ValueError("the board's weight memory cannot hold the MLP")
    x, y = xte[:MLP_IMAGES], yte[:MLP_IMAGES]
    acc.reset()
    c0, t0, b0 = _cycles(acc), time.monotonic(), acc.driver.bytes_sent + acc.driver.bytes_received
    stats = acc.load_compressed_weights(np.concatenate([q1.ravel(), q2.ravel()]), block_n=256)
    logits_b = []
    for img in x:
        a1 = np.array(acc.gemv(list(img), q1.shape[0]))
        a2 = np.array(acc.gemv(list(_mlp_hidden(a1, model)), q2.shape[0], wbase=q1.size))
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
    except BlockMissing as e:
        return [("target", where), ("skipped", str(e))]
    finally:
        acc.close()
