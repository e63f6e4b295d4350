"""GEMM group at the UART pins: Huffman-compressed weights + MAC array vs the golden dot products."""

import random

import pytest

from boards.config import SIM_CONFIG
from firmware.api import Accelerator
from firmware.driver import CommandError, Driver
from firmware.transport import SimTransport
from hw.control.protocol import Cmd


@pytest.fixture(scope="module")
def acc():
    # The shared simulated board (every command group, Verilator); RESET gives each module a clean one.
    a = Accelerator(Driver(SimTransport()), "sim", SIM_CONFIG)
    a.reset()
    return a


def _ref(x, W, n_out, k, wbase=0):
    return [sum(x[j] * W[wbase + n * k + j] for j in range(k)) for n in range(n_out)]


def test_gemv_with_compressed_weights_matches_golden(acc):
    rng = random.Random(11)
    n_out, k = 11, 24                     # n_out not a multiple of the 4 columns: a partial tile
    W = [max(-128, min(127, round(rng.gauss(0, 20)))) for _ in range(n_out * k)]
    W[:4] = [-128, 127, 0, -1]            # corners of the int8 range
    stats = acc.load_compressed_weights(W, block_n=64)
    assert stats["blocks"] == 5 and stats["code_bits"] < 8 * len(W), "weights must be compressed"
    x = [rng.randrange(-128, 128) for _ in range(k)]
    x[:2] = [-128, 127]
    assert acc.gemv(x, n_out) == _ref(x, W, n_out, k)
    # Same weights as a 3 x 56 matrix at an offset: wbase addressing.
    x2 = [rng.randrange(-128, 128) for _ in range(66)]
    assert acc.gemv(x2, 4, wbase=0) == _ref(x2, W, 4, 66)


def test_corrupted_block_and_bad_sizes_get_errors_then_work(acc):
    rng = random.Random(12)
    W = [rng.randrange(-8, 8) for _ in range(32)]
    acc.load_compressed_weights(W, block_n=32)
    x = [rng.randrange(-128, 128) for _ in range(8)]
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        acc.driver.command(Cmd.GEMM, (4).to_bytes(2, "little") + (9).to_bytes(2, "little") + bytes(8 + 2))
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        acc.driver.command(Cmd.LOAD_WEIGHTS, b"\x01\x02\x03")
    assert acc.gemv(x, 4) == _ref(x, W, 4, 8)
    # A payload word flipped: the block's lane CRC fails, the decoder flags it.
    from sim.huffman.golden import encode_stream
    tables, beats, _ = encode_stream([w & 0xFF for w in W], n_lanes=1, block_n=32, max_len=12,
                                     raw_bits=0, allow_raw=False)
    words = [b.words[0] for b in beats]
    words[-1] ^= 0x0100
    acc.driver.command(Cmd.LOAD_HUFFMAN, b"".join(w.to_bytes(2, "little") for w in tables[0]))
    with pytest.raises(CommandError, match="ERR_BLOCK"):
        acc.driver.command(Cmd.LOAD_WEIGHTS, b"".join(w.to_bytes(2, "little") for w in words))
    assert acc.status()["block_flags"] & (1 << 1)
    acc.reset()
    acc.load_compressed_weights(W, block_n=32)
    assert acc.gemv(x, 4) == _ref(x, W, 4, 8)
    assert acc.status()["block_flags"] == 0
