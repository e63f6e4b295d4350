"""Host side of the GEMM engine group (:mod:`hw.control.engine_handler`): ``Y = X · Wᵀ`` of any
size, cut into the engine's shapes, with compressed weights.

A GEMM of ``M x K`` activations and ``N x K`` weights is split (``docs/gemm.md``) into batches of
at most ``max_batch`` rows and K slices of at most ``max_k`` columns; each (batch, slice) pair is
one engine GEMM with its own code table (:func:`sim.gemm.golden.compress_tiles`: one table for all
its weight tiles, one unit of chained blocks per tile of ``cols`` output channels (lane drift at
most the engine's ``max_drift``), beats in the array's order,
:func:`sim.gemm.golden.tile_symbols`), and the host adds the slices' partial results. ``K`` is
padded with zeros to a multiple of 4, ``M`` to whole row tiles, ``N`` to whole weight tiles.

Per engine GEMM: ``LOAD_HUFFMAN`` (the table, in frames of at most 255 words; clears the engine),
``GEMM_START``, the activations (``GEMM_ACTS``), then per *chunk* of weight tiles (as many as
the staging FIFO's beats and the result FIFO's rows allow) their blocks (``LOAD_WEIGHTS``),
``GEMM_RUN`` and the rows (``GEMM_READ``). The runs' cycle and beat counts are the engine's own
work on staged weights: MAC/cycle = MACs / run cycles (the UART time of loading the weights is not
in it).
"""

import inspect

import numpy as np

from hw.control.engine_handler import RESULT_BYTES, START_BYTES, EngineHandler, max_read_rows
from hw.control.protocol import MAX_PAYLOAD, Cmd
from hw.gemm import spec as gemm_spec
from hw.gemm.engine import FIFO_DEPTH as ENGINE_FIFO_DEPTH
from hw.huffman import spec as huff_spec
from hw.mac import spec as mac_spec
from sim.gemm.golden import act_words, compress_tiles, weight_tiles
from sim.gemm.model import busy_fraction

__all__ = ["ENGINE_DEFAULTS", "engine_config", "split", "run_gemm", "peak_macs", "weight_frames",
           "default_batch", "LANE_RATE", "BUSY_TARGET"]

#: Decoded symbols per decode cycle per hardware lane that :func:`default_batch` assumes: the
#: decoder on Gaussian weights quantized per output channel, 0.980 (int4) and 0.989 (int8) as
#: measured by ``bench/bench_gemm.py`` section 1 (``docs/gemm.md``); the lower one.
LANE_RATE = 0.98

#: The fraction of the array's peak :func:`default_batch` asks of the cycle model (issue 18's 90 %).
BUSY_TARGET = 0.9

#: Code-table words the model loads before the first block (a few dozen: hardly counts).
_TABLE_WORDS = 64

#: :class:`hw.control.engine_handler.EngineHandler`'s defaults, read from its constructor (a board's
#: ``gemm`` dict overrides).
ENGINE_DEFAULTS = {name: p.default for name, p in inspect.signature(EngineHandler).parameters.items()
                   if name != "primitives"}


def engine_config(gemm):
    """The engine handler's parameters of a board's ``gemm`` dict (``handler == "engine"``)."""
    cfg = dict(ENGINE_DEFAULTS)
    cfg.update({k: v for k, v in gemm.items() if k in ENGINE_DEFAULTS})
    return cfg


def default_batch(cfg, array_hz, decode_hz, size=512, modes=("int8", "int4"), target=BUSY_TARGET):
    """The smallest batch M, a multiple of the array's rows up to ``max_batch``, at which the
    engine's cycle model (:func:`sim.gemm.model.busy_fraction`, :data:`LANE_RATE`) keeps the
    array at least ``target`` busy on a ``size x size`` layer at each of ``modes``, with the array
    at ``array_hz`` and the decoder at ``decode_hz``; ``max_batch`` when none does.

    Every row tile of the batch reuses a decoded weight tile, so the decode rate a busy array
    needs falls as M grows: with 4 lanes at 65 MHz, 48 with the array at 95 MHz, 64 at 125 MHz
    (the model's 74 % at 48 there)."""
    ratio = array_hz / decode_hz
    k = min(size, cfg["max_k"])
    for m in range(cfg["rows"], cfg["max_batch"] + 1, cfg["rows"]):
        if all(busy_fraction(m, k, size, mac_spec.lanes(mode), rows=cfg["rows"], cols=cfg["cols"],
                             rate=cfg["lanes"] * LANE_RATE / ratio, table_words=_TABLE_WORDS,
                             clock_ratio=ratio)[1] >= target for mode in modes):
            return m
    return cfg["max_batch"]


def peak_macs(cfg, mode):
    """The array's MACs per cycle at ``mode``: rows x cols x products per PE."""
    return cfg["rows"] * cfg["cols"] * mac_spec.LANES[mac_spec.mode_code(mode)]


def split(m, k, cfg):
    """``[(row slice, K slice)]`` of an ``m x k`` GEMM: batches of ``max_batch`` rows, K slices of
    ``max_k`` columns."""
    return [(slice(r, min(m, r + cfg["max_batch"])), slice(c, min(k, c + cfg["max_k"])))
            for r in range(0, m, cfg["max_batch"]) for c in range(0, k, cfg["max_k"])]


def _words(values):
    return b"".join(int(v).to_bytes(2, "little") for v in values)


def _chunks(beat_counts, rows_per_tile, cfg):
    """Consecutive runs of tiles whose beats fit the staging FIFO and rows the result FIFO."""
    out, cur, beats = [], [], 0
    for t, n in enumerate(beat_counts):
        if n > cfg["stage_depth"]:
            raise ValueError(f"a weight tile's block of {n} beats does not fit the staging FIFO's "
                             f"{cfg['stage_depth']} beats")
        if cur and (beats + n > cfg["stage_depth"] or (len(cur) + 1) * rows_per_tile > cfg["result_depth"]):
            out.append(cur)
            cur, beats = [], 0
        cur.append(t)
        beats += n
    return out + [cur]


def weight_frames(beats, format_lanes):
    """``LOAD_WEIGHTS`` payloads of a weight tile's beats (one unit of chained blocks): a flag byte
    (1: the frame's first beat starts a block), then beats. A frame never spans two blocks: the
    flag byte is the only ``first`` mark a frame carries."""
    per = (MAX_PAYLOAD - 1) // (2 * format_lanes)
    starts = [i for i, b in enumerate(beats) if b.first or i == 0] + [len(beats)]
    return [bytes([int(beats[i].first)]) + b"".join(_words(b.words) for b in beats[i:min(i + per, end)])
            for start, end in zip(starts, starts[1:], strict=False) for i in range(start, end, per)]


def _engine_gemm(driver, cfg, x, w, mode, act_unsigned, stats, table_frame_words):
    """One engine GEMM (``x``: at most ``max_batch x max_k``, ``K`` a multiple of 4): its result
    ``M x N`` (int64)."""
    rows, cols, fl = cfg["rows"], cfg["cols"], cfg["lanes"] * cfg["contexts"]
    m, k = x.shape
    n = w.shape[0]
    row_tiles, groups, tiles = -(-m // rows), k // gemm_spec.GROUP, -(-n // cols)
    syms = weight_tiles(w, mode, cols)
    table, blocks = compress_tiles(syms, format_lanes=fl, max_len=cfg["max_len"],
                                   max_drift=huff_spec.max_drift(ENGINE_FIFO_DEPTH))
    per = table_frame_words
    driver.pipeline([(Cmd.LOAD_HUFFMAN, bytes([int(i == 0)]) + _words(table[i:i + per]))
                     for i in range(0, len(table), per)])
    driver.command(Cmd.GEMM_START, bytes([mac_spec.mode_code(mode), int(act_unsigned), row_tiles])
                   + groups.to_bytes(START_BYTES - 3, "little"))
    word_bytes = rows * gemm_spec.GROUP
    acts = [a.to_bytes(word_bytes, "little") for a in act_words(x, rows)]
    per = MAX_PAYLOAD // word_bytes
    driver.pipeline([(Cmd.GEMM_ACTS, b"".join(acts[i:i + per])) for i in range(0, len(acts), per)])
    y = np.zeros((row_tiles * rows, tiles * cols), dtype=np.int64)
    rows_per_tile = row_tiles * rows
    for chunk in _chunks([len(b) for b in blocks], rows_per_tile, cfg):
        frames = [f for t in chunk for f in weight_frames(blocks[t], fl)]
        driver.pipeline([(Cmd.LOAD_WEIGHTS, f) for f in frames])
        reply = driver.command(Cmd.GEMM_RUN, len(chunk).to_bytes(2, "little"))
        stats["cycles"] += int.from_bytes(reply[0:4], "little")
        stats["beats"] += int.from_bytes(reply[4:8], "little")
        stats["runs"] += 1
        stats["sent_bytes"] += sum(map(len, frames))
        got = []
        want = len(chunk) * rows_per_tile
        step = max_read_rows(cols)
        for i in range(0, want, step):
            part = driver.command(Cmd.GEMM_READ, min(step, want - i).to_bytes(2, "little"))
            got += [[int.from_bytes(part[j:j + RESULT_BYTES], "little", signed=True)
                     for j in range(r, r + cols * RESULT_BYTES, RESULT_BYTES)]
                    for r in range(0, len(part), cols * RESULT_BYTES)]
        for i, t in enumerate(chunk):
            y[:, t * cols:(t + 1) * cols] = got[i * rows_per_tile:(i + 1) * rows_per_tile]
    stats["code_bits"] += sum(len(b) for b in blocks) * fl * 16
    stats["engine_gemms"] += 1
    return y[:m, :n]


def run_gemm(driver, cfg, x, w, mode, *, act_unsigned=False, table_frame_words=(MAX_PAYLOAD - 1) // 2):
    """``Y = X · Wᵀ`` on the engine (``x``: ``M x K`` int8 or uint8, ``w``: ``N x K`` in ``mode``'s
    range). Returns ``(y, stats)``: ``y`` ``M x N`` int64 (the K slices' results added), ``stats``
    with ``cycles`` and ``beats`` (the runs'), ``runs``, ``engine_gemms``, ``sent_bytes`` (weight
    payload bytes) and ``code_bits`` (the blocks' beats, padding included). ``table_frame_words``:
    code table words per ``LOAD_HUFFMAN`` frame."""
    code = mac_spec.mode_code(mode)
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must be M x K and N x K matrices, not {x.shape} and {w.shape}")
    lo, hi = mac_spec.WEIGHT_RANGE[code]
    if w.min() < lo or w.max() > hi:
        raise ValueError(f"w must be {mode} weights ({lo}..{hi})")
    m, k = x.shape
    pad = -k % gemm_spec.GROUP
    x = np.pad(x, ((0, 0), (0, pad)))
    w = np.pad(w, ((0, 0), (0, pad)))
    y = np.zeros((m, w.shape[0]), dtype=np.int64)
    stats = {"cycles": 0, "beats": 0, "runs": 0, "engine_gemms": 0, "sent_bytes": 0, "code_bits": 0}
    for rs, ks in split(m, k + pad, cfg):
        y[rs] += _engine_gemm(driver, cfg, x[rs, ks], w[:, ks], code, act_unsigned, stats, table_frame_words)
    return y, stats
