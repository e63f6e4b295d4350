"""The GEMM engine as the ULX3S's GEMM group (:mod:`hw.control.engine_handler`, :mod:`firmware.engine`):
the ULX3S core (its clock, UART divisor and handler) in Verilator, driven at its UART pins.

The default tests run the core with a small engine (2 x 4 array, K <= 32, batch <= 4, a 64-beat
staging FIFO) so that the host's splits (batches, K slices, chunks of tiles) all happen on a small
GEMM; the slow test runs the board's own core on the 512 x 512 layer of ``edgelearn run gemm``.
"""

import dataclasses

import numpy as np
import pytest

import firmware.jobs as jobs
from firmware.api import Accelerator
from firmware.driver import CommandError, Driver
from firmware.engine import LANE_RATE, default_batch, engine_config, run_gemm, split, weight_frames
from firmware.jobs import run_job
from firmware.transport import SimTransport
from hw.control.boards import check_board, make_core
from hw.control.engine_handler import START_BYTES
from hw.control.protocol import GROUP_GEMM, Cmd, Status
from hw.gemm import GemmEngine
from sim.board import sim_clock_periods
from sim.board.verilator_board import VerilatorBoard
from sim.gemm.golden import compress_tiles, gemm_job, tile_symbols
from sim.gemm.model import busy_fraction
from sim.mac.golden import random_weights, ref_gemm

# The ULX3S's clock domains (the array's, the decoder's, the controller's), simulated at unrelated
# periods (sim.board.sim_clock_periods).
SMALL = {"handler": "engine", "rows": 2, "cols": 4, "max_k": 32, "max_batch": 4, "lanes": 2,
         "max_len": 12, "stage_depth": 64, "result_depth": 16, "array_domain": "gemm", "decode_domain": "dec"}


def _small_board(divisor):
    """The ULX3S's clock and GEMM handler with the small engine, the UART at ``divisor`` cycles per bit."""
    cfg = dataclasses.replace(check_board("ulx3s"), gemm=SMALL, hdqt={}, stdp={}, baud=25_000_000 // divisor)
    core = make_core("ulx3s", config=cfg, primitives=False)
    board = VerilatorBoard(core, toplevel="edgelearn_ulx3s_small_gemm", clocks=sim_clock_periods(cfg))
    return Accelerator(Driver(SimTransport(board)), "ulx3s", config=cfg)


@pytest.fixture(scope="module")
def acc():
    # The UART at 4 cycles per bit (as the simulated ULX3S's) so that the link does not take most of
    # the test's time.
    a = _small_board(4)
    yield a
    a.close()


def _golden(x, w, mode, cfg):
    """The engine's split as the golden model computes it: K slices saturate on their own."""
    slices = sorted({(ks.start, ks.stop) for _, ks in split(*x.shape, cfg)})
    return sum(ref_gemm(x[:, a:b], w[:, a:b], mode, acc_width=cfg["acc_width"])[0] for a, b in slices)


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_split_gemm_equals_numpy(acc, mode):
    """M = 7 rows (two batches, the last row tile part empty), K = 42 (two K slices, padded to a
    multiple of 4), N = 10 (three weight tiles, the last part empty; several staging chunks)."""
    cfg = engine_config(acc.config.gemm)
    rng = np.random.default_rng(1 if mode == "int8" else 2)
    x = rng.integers(-128, 128, (7, 42))
    w = random_weights(rng, (10, 42), mode)
    acc.reset()
    y, st = run_gemm(acc.driver, cfg, x, w, mode, table_frame_words=16)   # tables in several frames
    assert (y == x @ w.T).all()
    assert (y == _golden(x, w, mode, cfg)).all()
    # int8 tiles (~36 beats) do not all fit the 64-beat staging FIFO: more runs than engine GEMMs.
    assert st["engine_gemms"] == 4 and st["runs"] >= st["engine_gemms"] + (mode == "int8")
    # Every beat the array took is counted: row tiles x beats per tile x tiles per engine GEMM.
    beats_per_tile = {"int8": 32, "int4": 16}[mode] + {"int8": 12, "int4": 6}[mode]   # K slices 32 + 12
    assert st["beats"] == 2 * 3 * (2 * beats_per_tile)
    assert 0 < st["beats"] <= st["cycles"]
    assert acc.status()["block_flags"] == 0


def _raw_gemm(acc, mode_code):
    """One engine GEMM sent command by command (a 2 x 16 batch, one weight tile at ``mode_code``;
    an undefined code's tile is coded as int2 weights, as the golden model does)."""
    cfg = engine_config(acc.config.gemm)
    e = GemmEngine(**{k: cfg[k] for k in ("rows", "cols", "max_k", "max_batch", "lanes")})
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2, 16))
    w = random_weights(rng, (4, 16), "int2")
    job = gemm_job(x, w, [mode_code], rows=2, cols=4, format_lanes=2, max_len=cfg["max_len"],
                   row_tile_bits=e.row_tile_bits, group_bits=e.group_bits, max_drift=e.max_drift)
    acc.driver.command(Cmd.LOAD_HUFFMAN, b"\x01" + b"".join(v.to_bytes(2, "little") for v, _ in job["table"]))
    acc.driver.command(Cmd.GEMM_START, bytes([mode_code, 0, 1]) + (4).to_bytes(START_BYTES - 3, "little"))
    acc.driver.command(Cmd.GEMM_ACTS, b"".join(a.to_bytes(8, "little") for a in job["acts"]))
    for frame in weight_frames(job["blocks"][0], 2):
        acc.driver.command(Cmd.LOAD_WEIGHTS, frame)
    return acc.driver.command(Cmd.GEMM_RUN, (1).to_bytes(2, "little")), job


def test_undefined_precision_sets_the_sticky_flag_then_reset_recovers(acc):
    acc.reset()
    with pytest.raises(CommandError, match="ERR_BLOCK") as e:
        _raw_gemm(acc, 5)
    assert e.value.status == Status.ERR_BLOCK
    assert acc.status()["block_flags"] == 1 << GROUP_GEMM
    acc.reset()
    assert acc.status()["block_flags"] == 0
    reply, job = _raw_gemm(acc, 2)          # int2: the same streams with a defined precision
    assert int.from_bytes(reply[8:10], "little") == len(job["rows"]) and reply[10] == 0
    rows = acc.driver.command(Cmd.GEMM_READ, len(job["rows"]).to_bytes(2, "little"))
    got = [int.from_bytes(rows[i:i + 3], "little", signed=True) for i in range(0, len(rows), 3)]
    assert got == [v for values, _ in job["rows"] for v in values]


@pytest.mark.parametrize("reset", [False, True], ids=["next-gemm", "reset"])
def test_a_run_without_its_second_block_then_the_next_gemm_is_exact(acc, reset):
    """A GEMM of two weight tiles whose second block is never staged: ``GEMM_RUN 2`` takes the
    first tile and waits for the second until the run stalls (``ERR_BLOCK``, the group's flag).
    The host then runs a GEMM as usual (its ``LOAD_HUFFMAN`` clears the engine), after a ``RESET``
    or without one: exact, no flag raised by it, no re-flash."""
    cfg = engine_config(acc.config.gemm)
    e = GemmEngine(**{k: cfg[k] for k in ("rows", "cols", "max_k", "max_batch", "lanes")})
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (4, 16))
    w = random_weights(rng, (8, 16), "int8")
    job = gemm_job(x, w, ["int8", "int8"], rows=2, cols=4, format_lanes=2, max_len=cfg["max_len"],
                   row_tile_bits=e.row_tile_bits, group_bits=e.group_bits, max_drift=e.max_drift)
    acc.reset()
    acc.driver.command(Cmd.LOAD_HUFFMAN, b"\x01" + b"".join(v.to_bytes(2, "little") for v, _ in job["table"]))
    acc.driver.command(Cmd.GEMM_START, bytes([0, 0, 2]) + (4).to_bytes(START_BYTES - 3, "little"))
    acc.driver.command(Cmd.GEMM_ACTS, b"".join(a.to_bytes(8, "little") for a in job["acts"]))
    for frame in weight_frames(job["blocks"][0], 2):
        acc.driver.command(Cmd.LOAD_WEIGHTS, frame)
    with pytest.raises(CommandError, match="ERR_BLOCK"):
        acc.driver.command(Cmd.GEMM_RUN, (2).to_bytes(2, "little"))
    assert acc.status()["block_flags"] == 1 << GROUP_GEMM
    if reset:
        acc.reset()
    x2 = rng.integers(-128, 128, (3, 20))
    w2 = random_weights(rng, (6, 20), "int4")
    y, st = run_gemm(acc.driver, cfg, x2, w2, "int4")
    assert (y == x2 @ w2.T).all()
    assert st["beats"] == 2 * 2 * 10                  # two weight tiles x two row tiles x 10 beats
    assert acc.status()["block_flags"] == (0 if reset else 1 << GROUP_GEMM)   # the stall's, sticky


@pytest.mark.parametrize("cmd,payload", ids=["table", "short", "rows", "run", "read", "beat", "room", "acts"],
                         argvalues=[
    (Cmd.LOAD_HUFFMAN, bytes([1, 0, 0, 0])),                  # not whole words after the flag byte
    (Cmd.GEMM_START, bytes(START_BYTES - 1)),                 # short header
    (Cmd.GEMM_START, bytes([0, 0, 3, 1, 0])),                 # 3 row tiles > max_batch / rows = 2
    (Cmd.GEMM_RUN, (1).to_bytes(2, "little")),                # no GEMM started
    (Cmd.GEMM_READ, (1).to_bytes(2, "little")),               # no result stored
    (Cmd.LOAD_WEIGHTS, bytes(1 + 3)),                         # not whole beats (4 bytes each)
    (Cmd.LOAD_WEIGHTS, bytes(1 + 4 * 65)),                    # 65 beats > the 64-beat staging FIFO
    (Cmd.GEMM_ACTS, bytes(8)),                                # no activations expected
])
def test_bad_sizes_answer_err_length(acc, cmd, payload):
    acc.reset()
    assert acc.driver.command(cmd, payload, check=False) == (Status.ERR_LENGTH, b"")


def test_gemm_job_rows(acc):
    """The engine's ``gemm`` job on the small core: a 12 x 40 x 40 layer per precision (two batches,
    two K slices) equal to numpy, with MAC/cycle and the link's bytes reported."""
    rows = dict(jobs._job_gemm_engine(acc, "small ULX3S core", size=40, batch=12))
    assert rows["board == golden"] == "yes", rows
    for mode in ("int8", "int4"):
        assert f"{12 * 40}/{12 * 40} equal to numpy" in rows[f"{mode} result"], rows
        per_cycle = float(rows[f"{mode} MAC/cycle"].split()[0])
        assert 0 < per_cycle <= 8 * (1 + (mode == "int4")), rows      # the 2 x 4 array's peak
        assert "B on the line both ways" in rows[f"{mode} link"], rows
    assert rows["line"].startswith("simulated at 4 cycles/bit"), rows


def test_default_batch_is_the_smallest_the_model_keeps_busy_at_the_clocks():
    """The gemm job's default batch follows the engine's clocks: the smallest multiple of the
    array's rows that the cycle model keeps >= 90 % busy at both precisions (the step below it is
    under 90 %), max_batch when none is."""
    cfg = engine_config(check_board("ulx3s").gemm)
    mhz = 1_000_000
    got = {f: default_batch(cfg, f * mhz, 65 * mhz) for f in (95, 110, 125, 200)}
    assert got == {95: 48, 110: 56, 125: 64, 200: 64}

    def busy(m, f):
        return min(busy_fraction(m, 512, 512, lanes, rows=8, cols=16, rate=4 * LANE_RATE * 65 / f,
                                 table_words=64, clock_ratio=f / 65)[1] for lanes in (1, 2))
    for f, m in got.items():
        if f < 200:
            assert busy(m, f) >= 0.9 > busy(m - 8, f), (f, m)
    assert busy(64, 200) < 0.9


def test_gemm_job_default_batch_is_the_clocks(monkeypatch, acc):
    """Without ``batch`` the job takes :func:`default_batch` at its engine's clocks and says so."""
    seen = []

    def fake_run(driver, cfg, x, w, mode):
        seen.append(x.shape[0])
        raise Reached
    monkeypatch.setattr(jobs, "run_gemm", fake_run)
    monkeypatch.setattr(jobs, "default_batch", lambda cfg, a, d, size: (a, d, size) == (
        acc.config.clocks["gemm"], acc.config.clocks["dec"], 40) and 6)
    with pytest.raises(Reached):
        jobs._job_gemm_engine(acc, "small ULX3S core", size=40)
    assert seen == [6]


class Reached(Exception):
    pass


def test_weight_frames_start_every_chained_block():
    """A weight tile of chained blocks (a pruned channel beside full-range ones, cut at a small
    drift) goes out in frames that never span two blocks: each block's first beat opens a frame
    flagged 1, the other frames are flagged 0, and the frames carry the tile's beats in order."""
    rng = np.random.default_rng(4)
    w = random_weights(rng, (4, 256), "int8")
    w[0] = 0
    syms = tile_symbols(w, "int8", 4)
    _, (beats,) = compress_tiles([syms], format_lanes=2, max_len=12, max_drift=4)
    starts = [i for i, b in enumerate(beats) if b.first]
    assert len(starts) > 2
    frames = weight_frames(beats, 2)
    words, flagged = [], []
    for f in frames:
        if f[0]:
            flagged.append(len(words) // 2)
        words += [int.from_bytes(f[i:i + 2], "little") for i in range(1, len(f), 2)]
    assert words == [v for b in beats for v in b.words]
    assert flagged == starts


@pytest.mark.slow
def test_engine_cycles_do_not_depend_on_the_line(acc):
    """The runs' cycle and beat counts (what MAC/cycle is made of) are the same with the UART at 4
    and at 25 cycles per bit (the ULX3S's own 1 Mbaud), the cycles up to the clock-domain
    crossing's synchronizer (2 array cycles per run): the simulated board's faster line changes
    the link's time only."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (6, 40))
    cfg = engine_config(acc.config.gemm)
    counts = []
    for a in (acc, _small_board(25)):
        for mode in ("int8", "int4"):
            w = random_weights(np.random.default_rng(6), (12, 40), mode)
            a.reset()
            y, st = run_gemm(a.driver, cfg, x, w, mode)
            assert (y == x @ w.T).all()
            counts.append((mode, st["cycles"], st["beats"], st["runs"]))
        if a is not acc:
            a.close()
    # Beats and runs exactly; the array's cycles within 2 per run: a run starts when its level,
    # raised in the controller's domain, is seen in the array's (a two-flop synchronizer), and the
    # line changes the phase of the controller's clock against the array's at that moment.
    for (m1, c1, b1, r1), (m2, c2, b2, r2) in zip(counts[:2], counts[2:]):
        assert (m1, b1, r1) == (m2, b2, r2) and abs(c1 - c2) <= 2 * r1, counts
    assert all(c[1] > 0 for c in counts)


def _busy(row):
    """The fraction of the array's peak in a ``MAC/cycle`` row."""
    return float(row.split("% of the array's peak")[0].rsplit(" ", 1)[1]) / 100


@pytest.mark.slow
def test_ulx3s_gemm_job_512_equals_numpy():
    """The ULX3S's own core (its line at 4 cycles/bit, sim.board.SIM_LINE_DIVISORS) on the 512 x 512
    layer at the job's batch: equal to numpy, and the engine >= 90 % busy (12 row tiles of the 4 x 8
    array; the cycle model's figure for 4 lanes at 65 MHz against the array's 95 MHz at 6 row tiles
    of the 8 x 16 array is 96 % at int8, 95 % at int4)."""
    rows = dict(run_job("gemm", board="ulx3s", sim=True, size=512))
    batch = int(rows["batch"].split(":")[0])
    assert rows["board == golden"] == "yes", rows
    for mode in ("int8", "int4"):
        assert f"{batch * 512}/{batch * 512} equal to numpy" in rows[f"{mode} result"], rows
        assert _busy(rows[f"{mode} MAC/cycle"]) >= 0.9, rows


@pytest.mark.slow
def test_mlp_job_runs_on_the_engine(acc):
    """The digits MLP job on an engine board: each layer one GEMM of the 16 images (layer 1: K = 64,
    two K slices; four batches), logits equal to the golden pipeline's."""
    rows = dict(jobs._job_mlp(acc, "small ULX3S core"))
    assert rows["board == golden"] == "yes", rows
