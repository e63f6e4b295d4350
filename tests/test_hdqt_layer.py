"""HDQT layer controller: whole training steps bit-exact against the golden model (Amaranth sim, cocotb)."""


import numpy as np
import pytest

from hw.hdqt.layer import HdqtLayer
from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_exp_base, ref_layer_step
from sim.hdqt.layer_driver import amaranth_layer_step
from sim.runner import cocotb_testcases, run_cocotb


def random_steps(rng, b, k, o, count, *, w_range=4000, unsigned=True):
    w = rng.integers(-w_range, w_range, (o, k))
    steps = []
    for _ in range(count):
        x = rng.integers(0 if unsigned else -200, 200, (b, k))
        dy = rng.integers(-20000, 20000, (b, o))
        steps.append({"w": w if not steps else None, "x": x, "dy": dy, "x_exp": -6, "dy_exp": -22})
    return steps


def check_steps(dut_kw, cfg, steps, *, x_unsigned=True, res_stall=0.0):
    b = dut_kw["batch"]
    for st in steps:
        st["exp_base"] = ref_exp_base(cfg, st["x_exp"], st["dy_exp"], b)
    got = amaranth_layer_step(HdqtLayer(**dut_kw), steps, x_unsigned=x_unsigned, res_stall=res_stall)
    lfsr, w = LfsrStream(), steps[0]["w"]
    for st, g in zip(steps, got):
        r = ref_layer_step(cfg, w, st["x"], st["x_exp"], st["dy"], st["dy_exp"], lfsr, x_unsigned=x_unsigned)
        assert g["shifts"] == r["shifts"]
        assert (g["y"] == r["y"]).all()
        assert (g["dx"] == r["dx"]).all()
        assert (g["w"] == r["w"]).all()
        assert g["w_saturated"] == r["w_saturated"]
        w = r["w"]
    return got


def test_two_steps_bit_exact_with_result_stalls():
    # the second step uses the updated W, its max tracked by the update, and the LFSR carried over
    kw = dict(batch=8, k_dim=16, o_dim=8, had_cap=8, rows=2, cols=2)
    cfg = HdqtConfig(had_cap=8, lr_shift=3)
    check_steps(kw, cfg, random_steps(np.random.default_rng(1), 8, 16, 8, 2), res_stall=0.3)


def test_different_hadamard_sizes_signed_input():
    # n_O = 4 and n_B = 16: two FWHT instances; a signed layer input
    kw = dict(batch=16, k_dim=8, o_dim=4, had_cap=16, rows=2, cols=2)
    cfg = HdqtConfig(had_cap=16, lr_shift=2)
    steps = random_steps(np.random.default_rng(2), 16, 8, 4, 1, unsigned=False)
    check_steps(kw, cfg, steps, x_unsigned=False)


def test_update_saturation_sets_sticky_flag():
    kw = dict(batch=4, k_dim=4, o_dim=4, had_cap=4, rows=1, cols=2)
    cfg = HdqtConfig(had_cap=4, lr_shift=0)
    rng = np.random.default_rng(3)
    steps = random_steps(rng, 4, 4, 4, 1, w_range=32000)
    steps[0]["x_exp"], steps[0]["dy_exp"] = 4, 4   # huge update: W runs into the rail
    got = check_steps(kw, cfg, steps)
    assert got[0]["w_saturated"]


def test_icebreaker_configuration_on_lane_dsps():
    # The iCEBreaker's HDQT group (boards/groups.py): 1 x 2 array with every activation lane on the
    # SB_MAC16 model (no fabric partial products), one FWHT (n_O = n_B = 8), one update lane.
    kw = dict(batch=16, k_dim=16, o_dim=16, had_cap=8, rows=1, cols=2, backend="ice40", primitives=False,
              lane_dsps=True)
    cfg = HdqtConfig(had_cap=8, lr_shift=3)
    check_steps(kw, cfg, random_steps(np.random.default_rng(4), 16, 16, 16, 2), res_stall=0.2)


@pytest.mark.parametrize("backend", ["lut", "ecp5"])
def test_lane_dsps_only_with_ice40(backend):
    with pytest.raises(ValueError, match="lane_dsps is for backend 'ice40'"):
        HdqtLayer(batch=8, k_dim=8, o_dim=8, had_cap=8, rows=1, cols=2, backend=backend, lane_dsps=True)


LAYER_TB = {"batch": 8, "k_dim": 16, "o_dim": 8, "had_cap": 8, "rows": 2, "cols": 2}


@pytest.mark.parametrize("testcase", cocotb_testcases("sim.hdqt.tb_layer"))
def test_layer_cocotb(testcase):
    run_cocotb(HdqtLayer(**LAYER_TB), toplevel="hdqt_layer", test_module="sim.hdqt.tb_layer",
               testcase=testcase, params={**LAYER_TB, "lr_shift": 3})


@pytest.mark.slow
def test_rtl_replays_digits_training_steps():
    """Steps of the class-incremental digits run (hidden layer, 64 x 64, batch 32) replayed on the RTL in
    Verilator: Y, dX, the updated W and the shifts match the golden model bit for bit."""
    from sim.hdqt.demo import replay_on_rtl
    from sim.hdqt.experiment import run_cil
    models = []
    run_cil("hdqt", epochs=2, record=(5, 40, 80), model_out=models)
    assert len(models[0].records) == 3
    res = replay_on_rtl(models[0].records)
    assert len(res["cycles"]) == 3
