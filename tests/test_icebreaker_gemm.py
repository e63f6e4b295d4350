"""The iCEBreaker's GEMM group (SPRAM store, compact decoder, SB_MAC16 array) on the board's own core
in Verilator: the mlp job through the host driver, equal to the golden model."""

import pytest

from boards.groups import carried_groups, config_for_groups
from firmware.jobs import run_job
from hw.control.boards import board_handlers
from hw.control.protocol import GROUP_GEMM
from hw.control.spram_gemm_handler import SpramGEMMHandler


def test_icebreaker_gemm_selection_builds_the_spram_handler():
    cfg = config_for_groups("icebreaker", "system,gemm")
    assert carried_groups(cfg) == ("gemm",)
    h = board_handlers("icebreaker", cfg, primitives=False)[GROUP_GEMM]()
    assert isinstance(h, SpramGEMMHandler) and h.store_depth * 16 * h.contexts <= 2 * 16384 * 16, \
        "the store must leave the STDP group's two SPRAMs"
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
