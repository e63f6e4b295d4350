"""cocotb testbench of :class:`hw.mac.products.ProductGrid` with real vendor primitive models.

Used by ``tests/test_mac_primitives.py`` (slow): the ``ice40`` backend with ``primitives=True`` is
simulated together with Yosys' own simulation model of ``SB_MAC16`` (``share/ice40/cells_sim.v``), so
the block's configuration (dual 8x8, signedness, register and output selects, the C/D correction
path) is checked bit-exactly against the spec, not only the behavioural model the other tests use.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from hw.mac import spec
from sim.runner import tb_params


def expected_beat(acts, byte, mode, unsigned):
    ws = spec.unpack_weight_byte(byte, mode)
    return sum(spec.act_value(acts[l], unsigned) * ws[l] for l in range(spec.lanes(mode)))


@cocotb.test()
async def test_every_byte_every_mode(dut):
    p = tb_params()
    rows, cols = p["rows"], p["cols"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.en.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    rng = random.Random(1)
    cases = []
    for mode in spec.MODES.values():
        for unsigned in (0, 1):
            for b0 in range(0, 256, cols):
                acts = [[rng.choice([0x80, 0x7F, 0xFF, 0, 1]) if rng.random() < .5 else rng.randrange(256)
                         for _ in range(4)] for _ in range(rows)]
                cases.append((mode, unsigned, acts, [(b0 + 37 * c) % 256 for c in range(cols)]))
    got = []
    # Inputs written at a falling edge enter S0 at the next rising edge if ``en`` is high then;
    # the beat sums of the inputs taken at the n-th enabled edge are visible after the (n+2)-th.
    # ``en`` is low at random edges (with other inputs meanwhile, which must not be taken): every
    # register of the grid, the blocks' included, holds.
    taken = 0           # enabled edges that took inputs written here
    en = 0
    pending = iter(cases)
    while len(got) < len(cases):
        await FallingEdge(dut.clk)
        taken += en
        if en and taken >= 3:
            word = int(dut.beat.value)
            got.append([[_signed(word >> (17 * (r * cols + c)), 17) for c in range(cols)]
                        for r in range(rows)])
        en = int(rng.random() < 0.75)
        dut.en.value = en
        case = next(pending, None) if en else None
        if case is None:
            case = (rng.randrange(4), rng.randrange(2),
                    [[rng.randrange(256) for _ in range(4)] for _ in range(rows)],
                    [rng.randrange(256) for _ in range(cols)])
        mode, unsigned, acts, wb = case
        dut.mode.value = mode
        dut.act_unsigned.value = unsigned
        dut.act.value = spec.pack_act_beat(acts)
        dut.wgt.value = spec.pack_wgt_beat(wb)
    assert len(got) == len(cases)
    for (mode, unsigned, acts, wb), beat in zip(cases, got):
        exp = [[expected_beat(acts[r], wb[c], mode, unsigned) for c in range(cols)] for r in range(rows)]
        assert beat == exp, (spec.MODE_NAMES[mode], unsigned, acts, wb)


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v
