"""UART receiver and transmitter: loopback with stalls, framing errors, overrun, baud arithmetic."""

import random

import pytest
from amaranth.hdl import Module

from hw.uart import UARTRx, UARTTx, divisor_for
from sim.streams import run_streams, simulate


def _loopback(divisor, data, *, stall, seed):
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.i_rx.eq(tx.o_tx)
    # The receiver cannot be stalled for long (a UART has no flow control), but it holds one byte
    # for up to a byte time: stall briefly.
    got, = run_streams(m, [(tx.i_data, data)], [(rx.o_data, len(data))], stall=stall, seed=seed)
    return got


@pytest.mark.parametrize("divisor", [4, 5, 12])
def test_loopback_with_stalls(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80] + [rng.randrange(256) for _ in range(40)]
    assert _loopback(divisor, data, stall=0.3, seed=divisor) == data


def _rx_bits(divisor, bits, *, hold=False):
    """Drive raw line bits (one per bit time) into a receiver; return (bytes, frame errors, overruns)."""
    dut = UARTRx(divisor)
    got, errors, overruns = [], [0], [0]

    async def driver(ctx):
        for bit in [1, 1] + bits + [1] * 3:
            ctx.set(dut.i_rx, bit)
            for _ in range(divisor):
                await ctx.tick()
                errors[0] += ctx.get(dut.o_frame_error)
                overruns[0] += ctx.get(dut.o_overrun)
                if not hold and ctx.get(dut.o_data.valid):
                    got.append(ctx.get(dut.o_data.payload))
                    ctx.set(dut.o_data.ready, 1)
                else:
                    ctx.set(dut.o_data.ready, 0)

    simulate(dut, driver)
    return got, errors[0], overruns[0]


def _frame(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def test_framing_error_drops_byte_and_recovers():
    got, errors, _ = _rx_bits(6, _frame(0x3C, stop=0) + [1, 1] + _frame(0xC3))
    assert got == [0xC3]
    assert errors == 1


def test_overrun_is_flagged():
    _, _, overruns = _rx_bits(6, _frame(0x11) + _frame(0x22), hold=True)
    assert overruns == 1


def test_start_glitch_is_ignored():
    dut = UARTRx(8)
    seen = []

    async def driver(ctx):
        ctx.set(dut.i_rx, 0)
        await ctx.tick().repeat(2)  # shorter than half a bit
        ctx.set(dut.i_rx, 1)
        for _ in range(200):
            await ctx.tick()
            seen.append(ctx.get(dut.o_data.valid) or ctx.get(dut.o_frame_error))

    simulate(dut, driver)
    assert not any(seen)


def test_divisor_for():
    assert divisor_for(12_000_000, 1_000_000) == 12
    assert divisor_for(25_000_000, 1_000_000) == 25
    with pytest.raises(ValueError, match="baud must be an integer from 12 to 3000000 at 12 MHz, not 6000000"):
        divisor_for(12_000_000, 6_000_000)
    with pytest.raises(ValueError, match="baud must be within 2%"):
        divisor_for(25_000_000, 3_000_000)
    with pytest.raises(ValueError, match="baud must be an integer from 12 to 3000000 at 12 MHz, not 0"):
        divisor_for(12_000_000, 0)
    # Below the lowest rate the divisor can count (the core's STATUS field holds 16 bits).
    with pytest.raises(ValueError, match="baud must be an integer from 184 to 3000000 at 12 MHz, not 7"):
        divisor_for(12_000_000, 7, max_divisor=0xFFFF)


@pytest.mark.parametrize("cls", [UARTRx, UARTTx])
def test_bad_divisor(cls):
    with pytest.raises(ValueError, match="divisor must be an integer from 4 to 1048576, not 3"):
        cls(3)
