"""HDQT group at the UART pins: driver <-> simulated board, training steps bit-exact vs the golden model."""

import numpy as np
import pytest

from boards.config import SIM_CONFIG
from firmware.api import Accelerator
from firmware.driver import CommandError, Driver
from firmware.transport import SimTransport
from hw.control.hdqt_handler import HDQTHandler, result_order
from hw.control.protocol import Cmd
from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_exp_base, ref_layer_step

LAYER = SIM_CONFIG.hdqt


@pytest.fixture(scope="module")
def acc():
    # The shared simulated board (every command group, Verilator); RESET gives each module a clean one.
    a = Accelerator(Driver(SimTransport()), "sim", SIM_CONFIG)
    a.reset()
    return a


def test_result_order_covers_every_output_once():
    order = result_order(8, 16, 4, 2, 2)
    assert len(order) == len(set(order)) == 8 * 4 + 8 * 16
    assert order[:5] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 0, 2)]


def test_bad_layer_parameters():
    with pytest.raises(ValueError, match="batch must be a power of two"):
        HDQTHandler(batch=12)


def test_two_training_steps_match_golden(acc):
    rng = np.random.default_rng(5)
    B, K, O = LAYER["batch"], LAYER["k_dim"], LAYER["o_dim"]
    cfg = HdqtConfig(had_cap=8, lr_shift=3)
    w = rng.integers(-4000, 4000, (O, K))
    lfsr = LfsrStream()
    for step in range(2):
        x = rng.integers(0, 200, (B, K))
        dy = rng.integers(-20000, 20000, (B, O))
        base = ref_exp_base(cfg, -6, -22, B)
        got = acc.hdqt_step(x, dy, base, w=w if step == 0 else None)
        ref = ref_layer_step(cfg, w, x, -6, dy, -22, lfsr)
        assert got["shifts"] == tuple(ref["shifts"])
        assert (np.array(got["y"]) == ref["y"]).all()
        assert (np.array(got["dx"]) == ref["dx"]).all()
        assert (np.array(got["w"]) == ref["w"]).all()
        assert got["w_saturated"] == ref["w_saturated"]
        assert not got["mac_overflow"] and got["cycles"] > 0
        w = ref["w"]


def test_bad_sizes_get_errors_and_board_keeps_working(acc):
    with pytest.raises(CommandError, match="ERR_LENGTH"):        # elements beyond dY (8 x 8)
        acc.driver.command(Cmd.HDQT_LOAD, bytes([2]) + (60).to_bytes(2, "little") + bytes(2 * 5))
    with pytest.raises(CommandError, match="ERR_LENGTH"):        # tensor 3 does not exist
        acc.driver.command(Cmd.HDQT_LOAD, bytes([3, 0, 0, 1, 0]))
    with pytest.raises(CommandError, match="ERR_LENGTH"):        # half an element
        acc.driver.command(Cmd.HDQT_LOAD, bytes([0, 0, 0, 1]))
    with pytest.raises(CommandError, match="ERR_LENGTH"):        # step needs exactly 2 bytes
        acc.driver.command(Cmd.HDQT_STEP, b"\x00")
    with pytest.raises(CommandError, match="ERR_LENGTH"):        # more than 128 results per read
        acc.driver.command(Cmd.HDQT_READ, bytes([0, 0, 0]) + (129).to_bytes(2, "little"))
    with pytest.raises(CommandError, match="ERR_LENGTH"):        # beyond W (8 x 16)
        acc.driver.command(Cmd.HDQT_READ, bytes([1, 120, 0, 9, 0]))
    with pytest.raises(CommandError, match="ERR_UNKNOWN_CMD"):
        acc.driver.command(0x2F)
    w = list(range(-64, 64))
    acc.hdqt_load("w", w)
    assert acc.hdqt_read("w", 128) == w
    assert acc.status()["flags"] & 0x02   # the unknown command is remembered; nothing else broke


def test_header_verdict_boundaries(acc):
    # Each refusal of the header's verdict beside the request one step inside it, which is taken.
    B, K, O = LAYER["batch"], LAYER["k_dim"], LAYER["o_dim"]
    n_results = B * (O + K)
    dy_end = B * O

    def load_dy(addr, n):
        return acc.driver.command(Cmd.HDQT_LOAD, bytes([2]) + addr.to_bytes(2, "little") + bytes(2 * n))

    def read(what, addr, n):
        return acc.driver.command(Cmd.HDQT_READ, bytes([what]) + addr.to_bytes(2, "little")
                                  + n.to_bytes(2, "little"))

    load_dy(dy_end - 3, 3)                                       # ends at dY's last element
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        load_dy(dy_end - 2, 3)                                   # one beyond
    assert len(read(0, n_results - 2, 2)) == 8                   # the last two results
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        read(0, n_results - 1, 2)
    assert len(read(1, O * K - 1, 1)) == 2                       # W's last element
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        read(1, O * K, 1)
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        read(0, 0, 0)                                            # no value
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        read(2, 0, 1)                                            # no such source
    assert n_results >= 129
    assert len(read(0, 0, 128)) == 512                           # the most results per reply
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        read(0, 0, 129)
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        acc.driver.command(Cmd.HDQT_STEP, b"\x00\x00\x00")       # step: exactly 2 bytes
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        acc.driver.command(Cmd.HDQT_READ, bytes([0, 0, 0, 1, 0, 0]))   # read: exactly 5 bytes
    # payloads one byte shorter than each command's header
    for cmd, payload in ((Cmd.HDQT_LOAD, bytes([2, 0])), (Cmd.HDQT_STEP, b"\x00"),
                         (Cmd.HDQT_READ, bytes([0, 0, 0, 1]))):
        with pytest.raises(CommandError, match="ERR_LENGTH"):
            acc.driver.command(cmd, payload)
