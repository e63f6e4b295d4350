"""Stall soaks (:mod:`sim.tb_soak`): every stream of every block carries ``EDGELEARN_SOAK_TRANSFERS``
transfers or more (default 10**4; the slow run 10**5) with random stalls on both sides, checked
against the golden models."""

import os

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

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


MUTATIONS = {None: 0, "drop": 1, "dup": 2, "withdraw": 3}


class MutantQueue(wiring.Component):
    """A byte queue (``SyncFIFOBuffered``) with one of the faults the soak must catch, chosen at run
    time by ``i_mutation`` (:data:`MUTATIONS`, one design for all): ``"drop"`` (input byte 500 of
    every 1024 is taken but not queued), ``"dup"`` (output byte 500 of every 1024 is given twice),
    ``"withdraw"`` (``valid`` low for one cycle in every 64, even while a byte waits), or none."""

    i_data: In(stream.Signature(8))
    o_data: Out(stream.Signature(8))
    i_mutation: In(2)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=4)
        n_in, n_out, cycle = Signal(10), Signal(10), Signal(6)
        held = Signal()
        m.d.sync += cycle.eq(cycle + 1)
        drop = (n_in == 500) & (self.i_mutation == MUTATIONS["drop"])
        repeat = (n_out == 500) & ~held & (self.i_mutation == MUTATIONS["dup"])
        hole = (cycle == 0) & (self.i_mutation == MUTATIONS["withdraw"])
        m.d.comb += [
            self.i_data.ready.eq(fifo.w_rdy),
            fifo.w_en.eq(self.i_data.valid & ~drop),
            fifo.w_data.eq(self.i_data.payload),
            self.o_data.valid.eq(fifo.r_rdy & ~hole),
            self.o_data.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o_data.ready & ~hole & ~repeat),
        ]
        with m.If(self.i_data.valid & self.i_data.ready):
            m.d.sync += n_in.eq(n_in + 1)
        with m.If(self.o_data.valid & self.o_data.ready):
            m.d.sync += [n_out.eq(n_out + 1), held.eq(repeat)]
        return m


def run_queue(mutation):
    run_cocotb(MutantQueue(), toplevel="soak_queue", test_module=TB, testcase="soak_queue",
               params={"transfers": 3000, "mutation": MUTATIONS[mutation]})


def test_soak_passes_a_correct_queue():
    run_queue(None)


@pytest.mark.parametrize("mutation,message", [("drop", "streams stopped"),
                                              ("dup", "differs|gave more than expected"),
                                              ("withdraw", "valid withdrawn")])
def test_soak_fails_a_broken_queue(mutation, message):
    with pytest.raises(AssertionError, match=message):
        run_queue(mutation)
