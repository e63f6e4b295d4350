"""Simulated board cores (``edgelearn run JOB --sim --board B``): argument routing, the board-time
arithmetic, and (slow) each board's own core in Verilator against the golden models."""

import random

import pytest

import firmware.jobs as jobs
from edgelearn import cli
from firmware.driver import Driver
from firmware.jobs import BlockMissing, board_time, gemm_shape, run_job
from firmware.transport import SimTransport
from hw.control.boards import SIM_CONFIG, check_board
from hw.control.protocol import GROUP_GEMM, Cmd, Status
from hw.stdp.spec import STDPConfig
from sim.board import board_config, sim_clock_periods
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows
from sim.stdp.tb_job import run_verilator_job

# --- fast: where a job runs -------------------------------------------------------------------


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def fake_run_job(name, **kwargs):
        seen.append((name, kwargs))
        return [("target", "fake")]

    monkeypatch.setattr(jobs, "run_job", fake_run_job)
    return seen


def routed(board=None, port=None, sim=True, groups=None, gemm_array=None, clocks=None):
    """The keyword arguments ``edgelearn run`` should hand to :func:`run_job`."""
    return {"board": board, "port": port, "sim": sim, "groups": groups, "gemm_array": gemm_array,
            "clocks": clocks}


@pytest.mark.parametrize("argv,kwargs", [
    (["run", "snn"], routed()),
    (["run", "snn", "--sim"], routed()),
    (["run", "snn", "--sim", "--board", "icebreaker"], routed(board="icebreaker")),
    (["run", "mlp", "--sim", "--board", "icebreaker", "--groups", "system,gemm"],
     routed(board="icebreaker", groups="system,gemm")),
    (["run", "gemm", "--board", "ulx3s", "--sim"], routed(board="ulx3s")),
    (["run", "gemm", "--board", "ulx3s", "--sim", "--gemm-array", "8x16"],
     routed(board="ulx3s", gemm_array="8x16")),
    (["run", "gemm", "--board", "ulx3s", "--port", "/dev/ttyUSB0"],
     routed(board="ulx3s", port="/dev/ttyUSB0", sim=False)),
    (["run", "gemm", "--board", "ulx3s", "--sim", "--clock", "gemm=125"],
     routed(board="ulx3s", clocks={"gemm": 125_000_000})),
])
def test_run_routes_to_the_right_board(argv, kwargs, calls, capsys):
    assert cli.main(argv) == 0
    assert calls == [(argv[1], kwargs)]
    assert "fake" in capsys.readouterr().out


def test_missing_group_is_one_error_line(monkeypatch, capsys):
    def missing(name, **kwargs):
        raise BlockMissing("the gemm group is not in this bitstream (icebreaker carries: stdp)")

    monkeypatch.setattr(jobs, "run_job", missing)
    assert cli.main(["run", "gemm", "--sim", "--board", "icebreaker"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == ("edgelearn: error: BlockMissing: the gemm group is not in this "
                                   "bitstream (icebreaker carries: stdp)")


def test_port_with_simulated_board_is_refused_by_run_job():
    with pytest.raises(ValueError, match="port must be None on a simulated board"):
        run_job("status", board="icebreaker", port="/dev/ttyUSB1", sim=True)


def test_simulated_board_configs():
    assert board_config() is SIM_CONFIG
    assert board_config("icebreaker") is check_board("icebreaker")
    with pytest.raises(ValueError, match="board must be one of icebreaker, ulx3s, not 'de10'"):
        board_config("de10")


# --- fast: the time arithmetic ----------------------------------------------------------------


def test_board_time_splits_line_and_board_cycles():
    # iCEBreaker: 48 MHz, 3 Mbaud, 16 cycles per bit. 100 bytes on the line = 16 000 cycles.
    t = board_time(16_000 + 4_800, 100, 48_000_000, 3_000_000, 16)
    assert t["compute_cycles"] == 4_800
    assert t["clock_mhz"] == 48
    assert t["compute_us"] == pytest.approx(100.0)
    assert t["link_us"] == pytest.approx(100 * 10 / 3e6 * 1e6)
    assert t["total_us"] == pytest.approx(t["compute_us"] + t["link_us"])
    # ULX3S: 25 MHz, 1 Mbaud, 25 cycles per bit.
    t = board_time(2_500 + 25, 10, 25_000_000, 1_000_000, 25)
    assert t["compute_cycles"] == 25
    assert (t["compute_us"], t["link_us"]) == (pytest.approx(1.0), pytest.approx(100.0))


def test_board_time_refuses_fewer_cycles_than_the_line_needs():
    with pytest.raises(ValueError, match="cycles must cover the line time of nbytes"):
        board_time(159, 1, 48_000_000, 3_000_000, 16)


def test_gemm_shape_follows_the_board_config():
    assert gemm_shape({"max_weights": 16384, "max_k": 1024}) == (128, 128)   # 16384 weights: all of them
    assert gemm_shape(SIM_CONFIG.gemm) == (32, 128)                  # 4096 weights
    assert gemm_shape({"max_weights": 65536, "max_k": 64}) == (128, 64)


# --- slow: the boards' own cores in Verilator -------------------------------------------------


@pytest.mark.slow
def test_snn_on_icebreaker_core_equals_golden():
    rows = dict(run_job("snn", board="icebreaker", sim=True))
    cfg = check_board("icebreaker").stdp
    assert f"{cfg['max_synapses']} synapses (CSR, spram" in rows["network"], rows
    assert rows["board == golden"] == "yes", rows
    assert rows["clock_mhz"].startswith("48 "), rows
    assert float(rows["link_us"]) > 0 and float(rows["compute_us"]) > 0, rows


@pytest.mark.slow
def test_gemm_on_icebreaker_core_is_not_in_this_bitstream():
    with pytest.raises(BlockMissing, match=r"the gemm group is not in this bitstream \(icebreaker carries: "
                                           r"stdp, system\)"):
        run_job("gemm", board="icebreaker", sim=True)
    # The board itself: STATUS lists no GEMM group, and a GEMM command sent anyway is answered at once.
    drv = Driver(SimTransport(board="icebreaker"))
    assert not drv.status()["groups"] >> GROUP_GEMM & 1
    status, reply = drv.command(Cmd.GEMM, bytes([1, 0, 1, 0, 0, 0, 5]), check=False)
    assert (status, reply) == (Status.ERR_UNKNOWN_CMD, b"")
    drv.close()


@pytest.mark.slow
def test_stdp_verilator_job_runs_the_icebreaker_spram_network():
    # The fast path of the experiments (the STDP core alone, no UART) on the iCEBreaker's network.
    cfg = STDPConfig(**check_board("icebreaker").stdp)
    rng = random.Random(5)
    rows = random_rows(rng, cfg.n_neurons, None, cfg.w_bits, fanout=cfg.max_synapses // cfg.n_neurons)
    steps = poisson_events(rng, 6, range(cfg.n_neurons), 8 / cfg.n_neurons)
    spikes, back = run_verilator_job(cfg, rows, steps)
    net = ForwardSTDPNetwork(cfg, rows)
    assert spikes == [net.step(ev)[0] for ev in steps]
    assert sum(map(len, back)) == cfg.max_synapses == 32768
    assert back == net.weights()


def test_simulated_engine_clocks_keep_the_boards_ratio_in_even_picoseconds():
    # cocotb's clock needs an even period in steps; the ULX3S's 95 / 65 MHz make 6400 / 9353.8 ps
    periods = sim_clock_periods(check_board("ulx3s"))
    assert periods == {"gemm": 6400, "dec": 9354}
    assert all(p % 2 == 0 for p in periods.values())
