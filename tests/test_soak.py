"""Stall soaks (:mod:`sim.tb_soak`): every stream of every block carries ``EDGELEARN_SOAK_TRANSFERS``
transfers or more (default 10**4; the slow run 10**5) with random stalls on both sides, checked
against the golden models."""

import os

import pytest

from hw.huffman.decoder import HuffmanDecoder
from hw.mac import MacArray
from sim.runner import run_cocotb

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


SOAKS = {"mac": soak_mac, "huffman": soak_huffman}


@pytest.mark.parametrize("block", sorted(SOAKS))
def test_soak(block):
    SOAKS[block](DEFAULT_TRANSFERS)


@pytest.mark.slow
@pytest.mark.parametrize("block", sorted(SOAKS))
def test_soak_100k(block):
    SOAKS[block](SLOW_TRANSFERS)
