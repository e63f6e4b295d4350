"""GEMM engine (:class:`hw.gemm.GemmEngine`) in Amaranth's simulator vs the golden model.

A 2 x 4 systolic array (behavioural multipliers) behind the Huffman decoder and the block-RAM
buffers: every precision per weight tile, int8 and uint8 activations, batches that do not fill a
row tile, GEMV, extremes that saturate, random stalls on all streams, the decoder in its own clock
domain (slower and faster than the array's), back-to-back GEMMs with a table switch, and bad data:
an undefined precision, a corrupt block, blocks of the wrong size, a command without activations —
each must set its sticky flag and let the engine finish (never hang).
"""

import numpy as np
import pytest

from hw.gemm import GemmEngine, spec
from hw.gemm.engine import ERR_DECODE, ERR_MODE, ERR_TILE
from hw.mac import spec as mac_spec
from hw.params import ParameterTypeError
from sim.gemm.golden import compress_tiles, concat_jobs, gemm_job, tile_symbols
from sim.gemm.harness import run_engine, run_engine_phases
from sim.gemm.model import engine_cycles
from sim.huffman.golden import Beat, table_stream
from sim.mac.golden import random_acts, random_weights

MODES = list(mac_spec.MODES)


def make_dut(**kw):
    params = {"rows": 2, "cols": 4, "max_k": 32, "max_batch": 6, "lanes": 2, "max_len": 12,
              "acc_width": 24, "primitives": False}
    params.update(kw)
    return GemmEngine(**params)


def job_for(dut, x, w, modes, **kw):
    return gemm_job(x, w, modes, rows=dut.rows, cols=dut.cols, format_lanes=dut.lanes * dut.contexts,
                    max_len=12, row_tile_bits=dut.row_tile_bits, group_bits=dut.group_bits,
                    max_drift=dut.max_drift, acc_width=dut.acc_width, **kw)


def random_gemm(rng, m, k, modes, cols=4, unsigned=False):
    x = random_acts(rng, (m, k), unsigned=unsigned)
    w = np.concatenate([random_weights(rng, (cols, k), mode) for mode in modes])
    return x, w


def run(dut, job, **kw):
    """:func:`run_engine` with a cycle budget far above these jobs' (a hang fails in seconds)."""
    return run_engine(dut, job, **{"max_cycles": 20_000, **kw})


def check(res, job, errors=0):
    assert res["finished"], f"{len(res['rows'])} of {len(job['rows'])} rows before the timeout"
    assert res["rows"] == job["rows"]
    assert res["extra"] == 0
    assert res["errors"] == errors
    assert res["idle"]


@pytest.mark.parametrize("prefetch", [False, True])
@pytest.mark.parametrize("seed, unsigned, stall", [(1, False, 0.0), (2, True, 0.4)])
def test_every_mode_per_weight_tile(seed, unsigned, stall, prefetch):
    """Four weight tiles, one per precision, against a batch of 5 rows (3 row tiles, the last half
    empty), K = 20; the activations are loaded once and reused by every weight tile."""
    rng = np.random.default_rng(seed)
    dut = make_dut(prefetch=prefetch)
    x, w = random_gemm(rng, 5, 20, MODES, unsigned=unsigned)
    job = job_for(dut, x, w, MODES, act_unsigned=unsigned)
    check(run(dut, job, stall=stall, seed=seed), job)


@pytest.mark.parametrize("decode_period, stall_out", [(10e-9, 0.3), (3e-9, 0.7)])
def test_decoder_in_its_own_clock_domain(decode_period, stall_out):
    """The decoder at 100 MHz (slower than the 125 MHz array: the ECP5 case) and at 333 MHz with a
    slow result consumer (then the decoder runs ahead and waits for a free bank); the AsyncFIFO
    carries the symbols across, with stalls on every stream."""
    rng = np.random.default_rng(3)
    dut = make_dut(decode_domain="dec", contexts=2, lanes=1)
    modes = ["int4", "int8", "int2", "ternary"]
    x, w = random_gemm(rng, 6, 24, modes)
    job = job_for(dut, x, w, modes)
    check(run(dut, job, stall=0.3, stall_out=stall_out, seed=3, period=8e-9,
              decode_period=decode_period), job)


@pytest.mark.parametrize("prefetch", [False, True])
def test_array_backed_up_by_a_slow_result_consumer(prefetch):
    """The consumer takes a result row about one cycle in twenty: the array's result buffer fills
    and it holds a tile's last beat (``last_ok``) for many cycles, while the sequencer's output
    register (or its prefetch queue, with a block-RAM read in flight) fills behind it: eight short
    weight tiles against three row tiles. Results exact, in order."""
    rng = np.random.default_rng(12)
    dut = make_dut(prefetch=prefetch)
    modes = ["int2", "ternary", "int8", "int2", "int4", "int2", "ternary", "int2"]
    x, w = random_gemm(rng, 6, 16, modes)
    job = job_for(dut, x, w, modes)
    check(run(dut, job, stall_out=0.95, seed=12, max_cycles=40_000), job)

def test_extremes_saturate_and_flag_overflow():
    """17-bit accumulators: 255 x -8 and 255 x 7 (int4, uint8 activations) over K = 64 and
    -128 x -128 (int8) over K = 32 saturate; the overflow bit of each row and the sticky flag come
    out as the golden model's."""
    dut = make_dut(acc_width=17, max_k=64)
    x = np.full((2, 64), 255)
    x[1, :] = np.arange(64) % 5
    w = np.concatenate([np.full((4, 64), -8), np.full((4, 64), 7)])
    w[1::2] = 3
    job = job_for(dut, x, w, ["int4", "int4"], act_unsigned=True)
    assert any(ovf for _, ovf in job["rows"]) and not all(ovf for _, ovf in job["rows"])
    res = run(dut, job)
    check(res, job)
    assert res["overflow"]
    x8 = np.full((3, 32), -128)
    w8 = np.full((4, 32), -128)
    job8 = job_for(dut, x8, w8, ["int8"])
    check(run(dut, job8), job8)


def test_gemv_then_a_second_gemm_with_a_new_table():
    """M = 1 (GEMV, one row tile), then a 4 x 12 batch with new weights coded with the next table
    (parity 1): the second command loads the new activations; the decoder switches tables."""
    rng = np.random.default_rng(4)
    dut = make_dut()
    x1, w1 = random_gemm(rng, 1, 16, ["int8", "ternary"])
    x2, w2 = random_gemm(rng, 4, 12, ["int2", "int4", "int8"])
    job = concat_jobs(job_for(dut, x1, w1, ["int8", "ternary"]),
                      job_for(dut, x2, w2, ["int2", "int4", "int8"], parity=1))
    check(run(dut, job, stall=0.2, seed=4), job)


def test_table_lookup_decoder_lanes():
    """The compact decoder lane (block-RAM lookup table, the UP5K's) behind the same buffers."""
    rng = np.random.default_rng(12)
    dut = make_dut(impl="table", lanes=1)
    x, w = random_gemm(rng, 3, 12, ["int4", "int8"])
    job = job_for(dut, x, w, ["int4", "int8"])
    check(run(dut, job, stall=0.2, seed=12), job)


def test_undefined_mode_is_flagged_and_skipped():
    """A weight tile with precision code 5: the array drops it (no rows) and sets the flag; the
    tiles before and after are exact."""
    rng = np.random.default_rng(5)
    dut = make_dut()
    x = random_acts(rng, (2, 16))
    w = np.concatenate([random_weights(rng, (4, 16), m) for m in ("int8", "int2", "int4")])
    job = job_for(dut, x, w, ["int8", 5, "int4"])
    assert len(job["rows"]) == 4
    check(run(dut, job, stall=0.2), job, errors=ERR_MODE)


def corrupt_payload(blocks, tile):
    """Flip one payload bit of ``tile``'s block (after its header beats)."""
    beats = list(blocks[tile])
    words = list(beats[-1].words)
    words[0] ^= 0x0100
    beats[-1] = Beat(words, beats[-1].first)
    return blocks[:tile] + [beats] + blocks[tile + 1:]


def test_corrupt_block_sets_flags_and_the_next_tile_is_exact():
    rng = np.random.default_rng(6)
    dut = make_dut()
    x, w = random_gemm(rng, 2, 16, ["int8", "int8"])
    job = job_for(dut, x, w, ["int8", "int8"])
    job["blocks"] = corrupt_payload(job["blocks"], 0)
    res = run(dut, job, stall=0.2)
    assert res["finished"] and res["idle"]
    assert res["errors"] == ERR_DECODE | ERR_TILE
    assert res["rows"][2:] == job["rows"][2:]


@pytest.mark.parametrize("k_block", [8, 40])
def test_block_of_the_wrong_size_is_flagged(k_block):
    """The first weight tile's block holds K = 8 (too few beats) or K = 40 (more than the bank's
    32): the tile is flagged and run; the second tile is exact; nothing hangs."""
    rng = np.random.default_rng(7)
    dut = make_dut()
    x, w = random_gemm(rng, 2, 16, ["int8", "int8"])
    job = job_for(dut, x, w, ["int8", "int8"])
    wrong = tile_symbols(np.concatenate([w[:4]] * 3, axis=1)[:, :k_block], "int8", 4)
    table, job["blocks"] = compress_tiles([wrong, tile_symbols(w[4:8], "int8", 4)],
                                          format_lanes=dut.lanes, max_len=12, max_drift=dut.max_drift)
    job["table"] = table_stream([table])
    res = run(dut, job, stall=0.2)
    assert res["finished"] and res["idle"]
    assert res["errors"] == ERR_TILE
    assert res["rows"][2:] == job["rows"][2:]


def test_command_without_activations_is_flagged():
    rng = np.random.default_rng(8)
    dut = make_dut()
    x, w = random_gemm(rng, 2, 8, ["int4"])
    job = job_for(dut, x, w, ["int4"])
    job["cmds"] = [spec.pack_cmd(mode="int4", row_tiles=1, groups=2, row_tile_bits=dut.row_tile_bits,
                                 group_bits=dut.group_bits)]
    job["acts"] = []
    res = run(dut, job)
    assert res["finished"] and res["idle"]
    assert res["errors"] == ERR_TILE


@pytest.mark.parametrize("kw, exc, name", [
    ({"rows": 0}, ValueError, "rows"), ({"cols": 3}, ValueError, "cols"), ({"cols": 4.0}, TypeError, "cols"),
    ({"max_k": 30}, ValueError, "max_k"), ({"max_k": "32"}, TypeError, "max_k"),
    ({"max_batch": 5}, ValueError, "max_batch"), ({"lanes": 3}, ValueError, "lanes"),
    ({"contexts": 3}, ValueError, "contexts"), ({"decode_domain": 1}, TypeError, "decode_domain"),
    ({"primitives": 1}, TypeError, "primitives"),
    ({"max_len": 20}, ValueError, "max_len"), ({"impl": "rom"}, ValueError, "impl"),
    ({"impl": "table", "contexts": 2, "lanes": 1}, ValueError, "contexts"),
    ({"prefetch": 1}, TypeError, "prefetch"),
])
def test_parameters_are_checked(kw, exc, name):
    with pytest.raises(exc, match=name):
        make_dut(**kw)
    assert issubclass(ParameterTypeError, TypeError)


@pytest.mark.slow
def test_larger_engine_two_clocks():
    """4 x 8 array, 4 C-slow decoder lanes at 100 MHz against the array at 125 MHz, a 20 x 64 x 32
    GEMM in every precision, stalls on every stream."""
    rng = np.random.default_rng(9)
    dut = make_dut(rows=4, cols=8, max_k=64, max_batch=24, lanes=4, contexts=2, decode_domain="dec")
    modes = ["int8", "int4", "int2", "ternary"]
    x, w = random_gemm(rng, 20, 64, modes, cols=8, unsigned=True)
    job = job_for(dut, x, w, modes, act_unsigned=True)
    check(run(dut, job, stall=0.2, seed=9, period=8e-9, decode_period=10e-9, max_cycles=50_000), job)


@pytest.mark.parametrize("prefetch", [False, True])
def test_decoding_overlaps_computing(prefetch):
    """Double buffering: with a batch of 8 row tiles the array is the bottleneck, and the run takes
    the cycle model's time (:mod:`sim.gemm.model`: each tile's decode hidden behind the previous
    tile's compute) within 5 %; a single-buffered engine would add every tile's decode."""
    rng = np.random.default_rng(10)
    dut = make_dut(max_batch=16, prefetch=prefetch)
    modes = ["int8"] * 4
    x, w = random_gemm(rng, 16, 16, modes)
    job = job_for(dut, x, w, modes)
    res = run(dut, job)
    check(res, job)
    model = engine_cycles([16] * 4, 8, rows=2, cols=4, rate=2 * 0.9, table_words=len(job["table"]),
                          act_words=8 * 4)
    assert res["cycles"] <= 1.05 * model


@pytest.mark.parametrize("domain", ["sync", "dec"])
def test_clear_recovers_after_a_corrupt_block(domain):
    """A corrupt block sets the flags; ``i_clear`` (while idle) clears them and resets the decoder
    (in its own clock domain too), and the next GEMM, with its table sent again, is exact."""
    rng = np.random.default_rng(11)
    dut = make_dut(decode_domain=domain)
    x, w = random_gemm(rng, 2, 8, ["int8", "int4"])
    bad = job_for(dut, x, w, ["int8", "int4"])
    bad["blocks"] = corrupt_payload(bad["blocks"], 0)
    x2, w2 = random_gemm(rng, 3, 12, ["int2"])
    good = job_for(dut, x2, w2, ["int2"])
    first, second = run_engine_phases(dut, [bad, good], stall=0.2, max_cycles=20_000, period=8e-9,
                                      decode_period=10e-9)
    assert first["finished"] and first["errors"] == ERR_DECODE | ERR_TILE
    check(second, good)


def test_pruned_channels_beside_full_range_ones_decode():
    """Output channels 0 and 2 pruned (all zero), 1 and 3 full-range int8, with two format lanes:
    lane 0's codes are 1 bit, lane 1's about 8. As one block per tile the lanes' words drift
    apart by far more than the 8-word lane FIFOs hold and the decoder stops for good (no row);
    cut into chained blocks of at most the engine's ``max_drift`` (``compress_tiles``) the GEMM
    is exact."""
    rng = np.random.default_rng(11)
    dut = make_dut(contexts=2, lanes=1, fifo_depth=8, max_k=64)
    x = random_acts(rng, (2, 64))
    w = random_weights(rng, (4, 64), "int8")
    w[0::2] = 0
    job = job_for(dut, x, w, ["int8"])
    assert sum(b.first for b in job["blocks"][0]) > 1
    check(run(dut, job, stall=0.2), job)
    table, job["blocks"] = compress_tiles([tile_symbols(w, "int8", 4)], format_lanes=2, max_len=12,
                                          max_drift=10_000)
    assert sum(b.first for b in job["blocks"][0]) == 1
    stuck = run(dut, job, stall=0.2, max_cycles=5_000)
    assert not stuck["finished"] and stuck["rows"] == []
