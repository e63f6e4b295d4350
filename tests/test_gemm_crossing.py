"""The GEMM engine behind its clock-domain crossings (:class:`hw.gemm.crossing.EngineCrossing`) in
Amaranth's simulator, driven from ``sync`` as the ULX3S's handler drives it, against the golden model.

Both clocks run at unrelated periods, the controller's slower (40 ns against 7.9 ns, the board's
25 MHz against 125 MHz being 5:1) and faster than the array's, the decoder in a third domain;
random stalls on every stream; results bit-exact; the run's cycles are the array's (the same count
whatever the controller's clock); a flush after a run that cannot finish recovers.
"""

import sys

import numpy as np
import pytest

import hw.gemm.crossing
from hw.gemm import spec
from hw.gemm.crossing import EngineCrossing
from hw.gemm.engine import ERR_DECODE, ERR_TILE
from hw.mac import spec as mac_spec
from hw.params import ParameterTypeError
from sim.formal.harness import mutated
from sim.gemm.golden import gemm_job
from sim.gemm.harness import run_crossing
from sim.mac.golden import random_acts, random_weights

# prefetch: the sequencer's queue, as on the ULX3S
SMALL = {"rows": 2, "cols": 4, "max_k": 32, "max_batch": 6, "lanes": 2, "max_len": 12, "prefetch": True}


def make(array="gemm", decode="dec", **kw):
    return EngineCrossing(array_domain=array, decode_domain=decode, stage_depth=64, **{**SMALL, **kw})


def job_for(dut, rng, m, k, modes):
    e = dut.engine
    x = random_acts(rng, (m, k))
    w = np.concatenate([random_weights(rng, (e.cols, k), mode) for mode in modes])
    return gemm_job(x, w, modes, rows=e.rows, cols=e.cols, format_lanes=e.lanes * e.contexts,
                    max_len=12, row_tile_bits=e.row_tile_bits, group_bits=e.group_bits, max_drift=e.max_drift)


def beats_of(job, modes, m, k, rows):
    return sum(spec.beats(mac_spec.MODES[mode], k // spec.GROUP) for mode in modes) * -(-m // rows)


@pytest.mark.parametrize("periods", [(40e-9, 7.9e-9, 10.1e-9), (7.9e-9, 40e-9, 51e-9)],
                         ids=["controller-slow", "controller-fast"])
def test_two_gemms_exact_across_the_clocks(periods):
    """Two GEMMs with a flush between them, every precision, 30 % stalls on every stream."""
    rng = np.random.default_rng(1)
    dut = make()
    modes = [["int8", "int4"], ["int2", "ternary", "int8"]]
    shapes = [(5, 16), (6, 12)]
    jobs = [job_for(dut, rng, m, k, md) for (m, k), md in zip(shapes, modes)]
    outs = run_crossing(dut, jobs, periods=periods, stall=0.3, seed=2, max_cycles=20_000)
    for out, job, md, (m, k) in zip(outs, jobs, modes, shapes):
        assert out["finished"]
        assert out["rows"] == job["rows"]
        assert out["errors"] == 0
        assert out["beats"] == beats_of(job, md, m, k, 2)


def test_cycles_are_the_arrays_whatever_the_controllers_clock():
    """The same run takes the same number of array cycles (within the synchronizers' few cycles of
    start-up) with the controller 5x slower and 5x faster than the array (decoder in the array's
    domain): the count is made in the array's domain, not the controller's."""
    rng = np.random.default_rng(3)
    dut = make(decode="gemm")
    job = job_for(dut, rng, 6, 32, ["int8", "int4"])
    cycles = []
    for periods in [(40e-9, 8e-9, 8e-9), (8e-9, 40e-9, 40e-9), (13e-9, 13e-9, 13e-9)]:
        out, = run_crossing(dut, [job], periods=periods, max_cycles=20_000)
        assert out["finished"] and out["rows"] == job["rows"]
        cycles.append(out["cycles"])
    assert max(cycles) - min(cycles) <= 4, cycles
    assert cycles[0] >= beats_of(job, ["int8", "int4"], 6, 32, 2), cycles


def test_flush_discards_stale_state():
    """The first GEMM's second block is corrupt (flags), one more block than its commands is
    decoded into a bank, and after its run beats are staged that no run takes: the flush clears the
    flags and the engine and empties the staging crossing; the next GEMM is exact."""
    rng = np.random.default_rng(4)
    dut = make()
    bad = job_for(dut, rng, 4, 16, ["int4", "int8", "int4"])
    beat = bad["blocks"][1][-1]
    bad["blocks"][1][-1] = type(beat)([beat.words[0] ^ 0x0100, *beat.words[1:]], beat.first)
    bad["blocks"].append(bad["blocks"][2])
    bad["stale_beats"] = bad["blocks"][0]
    good = job_for(dut, rng, 6, 16, ["int4", "int8"])
    first, second = run_crossing(dut, [bad, good], periods=(40e-9, 7.9e-9, 10.1e-9), stall=0.2,
                                 max_cycles=5000)
    assert first["errors"] == ERR_DECODE | ERR_TILE
    assert second["finished"] and second["rows"] == good["rows"] and second["errors"] == 0


@pytest.mark.parametrize("kw, exc, name", [
    ({"array_domain": 3}, ParameterTypeError, "array_domain"),
    ({"decode_domain": "a b"}, ParameterTypeError, "decode_domain"),
    ({"stage_depth": 100}, ValueError, "stage_depth"),
    ({"cdc_depth": 2}, ValueError, "cdc_depth"),
    ({"decode_domain": "dec", "lanes": 3}, ValueError, "lanes"),
])
def test_parameters_are_checked(kw, exc, name):
    params = {"array_domain": "gemm", "stage_depth": 64, **SMALL, **kw}
    with pytest.raises(exc, match=name):
        EngineCrossing(**params)



def test_flush_after_a_stuck_decode():
    """A GEMM staged with more blocks than its commands take stops with both weight banks and the
    decoder's queues full and its input (the staging queue's output registers) holding beats; the
    flush must drop everything on the way, or it would start the next GEMM's stream."""
    rng = np.random.default_rng(5)
    dut = EngineCrossing(array_domain="gemm", decode_domain="dec", stage_depth=256, fifo_depth=4, **SMALL)
    stuck = job_for(dut, rng, 2, 16, ["int8"])
    stuck["blocks"] += [stuck["blocks"][0]] * 8
    good = job_for(dut, rng, 4, 16, ["int4", "int8"])
    first, second = run_crossing(dut, [stuck, good], periods=(40e-9, 7.9e-9, 10.1e-9), max_cycles=400)
    assert not first["finished"] and first["stage_level"] > 0
    assert second["finished"] and second["rows"] == good["rows"] and second["errors"] == 0


def test_rows_in_the_result_path_are_awaited_and_flushed():
    """Result rows back up in the ``gemm`` domain. Four rows fill the 4-deep result crossing FIFO
    (through its write register): the engine hands them all over and goes idle, and untaken they
    are counted (``o_rows`` is the rows the engine handed over). Six rows: four in the FIFO, two
    left in the engine's output registers; at a flush all are dropped (the engine's handed over
    and not written) and the next GEMM is exact."""
    rng = np.random.default_rng(6)
    dut = make(cdc_depth=4)
    held = {**job_for(dut, rng, 4, 16, ["int8"]), "hold_results": True}
    stuck = {**job_for(dut, rng, 6, 16, ["int4"]), "hold_results": "never", "max_cycles": 300}
    good = job_for(dut, rng, 5, 12, ["int2", "int8"])
    assert len(held["rows"]) == 4 and len(stuck["rows"]) == 6
    a, b, c = run_crossing(dut, [held, stuck, good], periods=(40e-9, 7.9e-9, 10.1e-9), max_cycles=5000)
    assert a["rows_at_idle"] == 4 and a["finished"] and a["rows"] == held["rows"]
    assert not b["finished"] and b["rows"] == []
    assert c["finished"] and c["rows"] == good["rows"] and c["errors"] == 0


def test_rows_held_past_the_result_fifo_arrive_in_order():
    """Eight rows against the 4-deep result crossing FIFO, none taken for 400 cycles: the FIFO fills
    (through its write register) and the rest wait in the engine's output registers and the array;
    then every row arrives, in order, exact."""
    rng = np.random.default_rng(7)
    dut = make(cdc_depth=4)
    job = {**job_for(dut, rng, 4, 16, ["int8", "int4"]), "hold_results": 400}
    assert len(job["rows"]) == 8
    (out,) = run_crossing(dut, [job], periods=(40e-9, 7.9e-9, 10.1e-9), max_cycles=5000)
    assert out["finished"] and out["rows"] == job["rows"] and out["errors"] == 0


# The engine offers rows on the FIFO's room a cycle ahead (``res_credit``), so its ready is not
# read: these are mutants of that room. (The room without the word in the write register loses a
# word only when one is taken two cycles after the word that fills the memory; the engine's rows
# come further apart than that in these scenarios, so that mutant is left to
# tests/test_lib_async_fifo.py.)
@pytest.mark.parametrize("old, new", [
    # the room ahead without the word taken now: a row is written over one not yet read
    ("Mux(taking, Mux(ahead, fits[2], fits[1]), Mux(ahead, fits[1], fits[0]))",
     "Mux(ahead, fits[1], fits[0])"),
    # the room ahead without the word the writer may offer next
    ("Mux(ahead, fits[2], fits[1]), Mux(ahead, fits[1], fits[0])", "fits[1], fits[0]"),
    # no room at all: rows written whatever the FIFO holds
    ("Mux(taking, Mux(ahead, fits[2], fits[1]), Mux(ahead, fits[1], fits[0]))",
     "1"),
], ids=["ahead-ignores-word-taken", "ahead-ignores-next-word", "no-room"])
def test_result_path_mutants_fail(old, new, monkeypatch):
    monkeypatch.setattr(hw.gemm.crossing, "RegisteredWriteAsyncFIFO",
                        mutated("hw.lib.async_fifo", "RegisteredWriteAsyncFIFO", old, new))
    with pytest.raises(AssertionError):
        test_rows_in_the_result_path_are_awaited_and_flushed()
        test_rows_held_past_the_result_fifo_arrive_in_order()


def test_snapshot_capture_mutant_fails(monkeypatch):
    """The status snapshot's capture registers never set: the handler's counters stay stale (the
    rows the engine handed over are never seen, nor the engine idle: ``rows_at_idle`` is never
    recorded)."""
    monkeypatch.setattr(sys.modules[__name__], "EngineCrossing",
                        mutated("hw.gemm.crossing", "EngineCrossing",
                                "cap[name].eq((req_a != ack_a) & ~cap[name])", "cap[name].eq(0)"))
    with pytest.raises((AssertionError, KeyError)):
        test_rows_in_the_result_path_are_awaited_and_flushed()
