"""The iCEBreaker's GEMM group (SPRAM store, compact decoder, SB_MAC16 array) on the board's own core
in Verilator: the mlp job and a layer of pruned beside full-range outputs through the host driver,
equal to the golden model."""

import numpy as np
import pytest

from boards.groups import carried_groups, config_for_groups
from firmware import spram_gemm
from firmware.jobs import _open, run_job
from hw.control.boards import board_handlers
from hw.control.protocol import GROUP_GEMM
from hw.control.spram_gemm_handler import SpramGEMMHandler, max_drift


def test_icebreaker_gemm_selection_builds_the_spram_handler():
    cfg = config_for_groups("icebreaker", "system,gemm")
    assert carried_groups(cfg) == ("gemm",)
    h = board_handlers("icebreaker", cfg, primitives=False)[GROUP_GEMM]()
    assert isinstance(h, SpramGEMMHandler) and h.store_depth * 16 * h.contexts <= 2 * 16384 * 16, \
        "the store must leave the STDP group's two SPRAMs"
    # the host cuts layers at the drift the board's decoder takes (one fifo_depth for both)
    assert h.contexts == 2 and h.max_drift == max_drift(cfg.gemm) == h.fifo_depth // 2
    with pytest.raises(ValueError, match="groups needs a board"):
        run_job("mlp", groups="gemm")


@pytest.mark.slow
def test_mlp_on_the_icebreaker_gemm_core_equals_golden():
    rows = dict(run_job("mlp", board="icebreaker", sim=True, groups="gemm"))
    assert rows["board == golden"] == "yes", rows
    assert rows["logits"].startswith("160/160")
    # Per-image time on the board: compute cycles at the board clock plus the link at its baud.
    assert float(rows["compute_us"]) > 0 and float(rows["link_us"]) > 0
    assert abs(float(rows["total_us"]) - float(rows["compute_us"]) - float(rows["link_us"])) < 0.2


@pytest.mark.slow
def test_pruned_beside_full_range_outputs_on_the_icebreaker_gemm_core():
    """A 128 x 128 int8 layer whose even outputs are pruned (zero) and odd ones full-range (its two
    decoder contexts' lanes drift apart by about a thousand words as one block) beside a Gaussian
    one, through the host driver on the board's own core: every GEMV equals numpy."""
    rng = np.random.default_rng(23)
    w = rng.integers(-128, 128, (128, 128))
    w[0::2] = 0
    w2 = rng.normal(0, 30, (64, 128)).round().clip(-128, 127).astype(int)
    acc, _ = _open("icebreaker", None, True, "gemm")
    try:
        acc.reset()
        loaded = spram_gemm.load_model(acc.driver, acc.config.gemm, [(w, "int8"), (w2, "int8")])
        assert loaded["chained"] > 2
        for _ in range(2):
            x = rng.integers(-128, 128, 128)
            assert spram_gemm.gemv(acc.driver, loaded["blocks"][0], x, 128) == [int(v) for v in w @ x]
            assert spram_gemm.gemv(acc.driver, loaded["blocks"][1], x, 64) == [int(v) for v in w2 @ x]
    finally:
        acc.close()
