"""Stall soaks (:mod:`sim.tb_soak`): every stream of every block carries ``EDGELEARN_SOAK_TRANSFERS``
transfers or more (default 10**4; the slow run 10**5) with random stalls on both sides, checked
against the golden models."""

import os

import pytest

from hw.blocks import get_block
from hw.hdqt.layer import HdqtLayer
from hw.huffman.decoder import HuffmanDecoder
from hw.mac import MacArray
from sim.runner import run_cocotb
from sim.soak_tops import ControllerStreams, UartLoop

TB = "sim.tb_soak"
DEFAULT_TRANSFERS = int(os.environ.get("EDGELEARN_SOAK_TRANSFERS", "10000"))
SLOW_TRANSFERS = 100_000

MAC = {"rows": 2, "cols": 4, "acc_width": 24, "tile_k": 32, "tile_bits": 8, "count_bits": 12}


def soak_mac(transfers):
    run_cocotb(MacArray(**MAC, backend="lut", primitives=False), toplevel="mac_array", test_module=TB,
               testcase="soak_mac", params={**MAC, "transfers": transfers})


HUFFMAN = {"max_len": 8, "lanes": 2, "raw_bits": 8, "fifo_depth": 16}


def soak_huffman(transfers):
    run_cocotb(HuffmanDecoder(**HUFFMAN), toplevel="huffman_decoder_soak", test_module=TB,
               testcase="soak_huffman", params={**HUFFMAN, "transfers": transfers})


def soak_stdp(transfers):
    block = get_block("stdp_core")
    run_cocotb(block.build(**block.smoke_params), toplevel="stdp_core", test_module=TB, testcase="soak_stdp",
               params={**block.defaults(), **block.smoke_params, "transfers": transfers})


HDQT = {"batch": 8, "k_dim": 16, "o_dim": 8, "had_cap": 8, "rows": 2, "cols": 2}


def soak_hdqt(transfers):
    run_cocotb(HdqtLayer(**HDQT), toplevel="hdqt_layer", test_module=TB, testcase="soak_hdqt",
               params={**HDQT, "acc_width": 24, "lr_shift": 3, "transfers": transfers})


def soak_control(transfers):
    run_cocotb(ControllerStreams(), toplevel="controller_streams", test_module=TB, testcase="soak_control",
               params={"transfers": transfers})


def soak_uart(transfers):
    run_cocotb(UartLoop(divisor=4), toplevel="uart_loop", test_module=TB, testcase="soak_uart",
               params={"transfers": transfers})


SOAKS = {"mac": soak_mac, "huffman": soak_huffman, "stdp": soak_stdp, "hdqt": soak_hdqt,
         "control": soak_control, "uart": soak_uart}


@pytest.mark.parametrize("block", sorted(SOAKS))
def test_soak(block):
    SOAKS[block](DEFAULT_TRANSFERS)


@pytest.mark.slow
@pytest.mark.parametrize("block", sorted(SOAKS))
def test_soak_100k(block):
    SOAKS[block](SLOW_TRANSFERS)
