"""The HDQT layer's RAM (hw/hdqt/ram.py): behavioural model, iCE40 tiling, and the whole layer with the
real iCE40 primitives (SB_RAM40_4K and SB_MAC16 simulated with Yosys' own models, slow)."""


import pytest

from hw.hdqt import HdqtLayer
from hw.hdqt.ram import Ram, ice40_tiling
from sim.runner import ice40_cell_models, run_cocotb
from sim.streams import simulate


def _set(ctx, port, **fields):
    """Drive the named fields of a memory port (``addr``, ``data``, ``en``)."""
    for name, value in fields.items():
        ctx.set(getattr(port, name), value)


def test_model_reads_holds_and_poisons_a_read_during_write():
    dut = Ram(16, 64, granularity=8)
    seen = {}

    async def tb(ctx):
        rd, wr = dut.rd[0], dut.wr
        for a in range(64):
            _set(ctx, wr, addr=a, data=0x1234 + 97 * a, en=0b11)
            await ctx.tick()
        _set(ctx, wr, addr=5, data=0xABCD, en=0b01)        # a write of the low lane only
        await ctx.tick()
        _set(ctx, wr, en=0)
        _set(ctx, rd, addr=5, en=1)
        await ctx.tick()
        seen["lane"] = ctx.get(rd.data)
        _set(ctx, rd, addr=6, en=0)                        # en low: the data holds
        await ctx.tick()
        seen["held"] = ctx.get(rd.data)
        # read and write of one address in one cycle: the model returns the complement
        _set(ctx, rd, addr=7, en=1)
        _set(ctx, wr, addr=7, data=0x5555, en=0b11)
        await ctx.tick()
        _set(ctx, wr, en=0)
        seen["collision"] = ctx.get(rd.data)
        # a different address in the same cycle is an ordinary read
        _set(ctx, rd, addr=7)
        _set(ctx, wr, addr=8, en=0b11)
        await ctx.tick()
        _set(ctx, wr, en=0)
        seen["after"] = ctx.get(rd.data)

    simulate(dut, tb)
    assert seen["lane"] == ((0x1234 + 97 * 5) & 0xFF00) | 0xCD
    assert seen["held"] == seen["lane"]
    assert seen["collision"] == (~(0x1234 + 97 * 7)) & 0xFFFF
    assert seen["after"] == 0x5555


def test_ice40_tiling_fewest_blocks_then_fewest_banks():
    assert ice40_tiling(16, 512, 16) == (1, 2, 1)    # 512 x 8 twice: no read multiplexer
    assert ice40_tiling(20, 1024, 20) == (2, 5, 1)   # 1024 x 4, five columns
    assert ice40_tiling(16, 512, 4) == (0, 1, 2)     # 4-bit lanes: 256 x 16 with the bit mask
    assert ice40_tiling(16, 512, 8) == (1, 2, 1)     # 8-bit lanes fit 512 x 8 columns



@pytest.mark.slow
@pytest.mark.parametrize("params", [
    # the largest layer that fits the UP5K alone (its RAMs use the 256 x 16 mode with a bit mask and
    # two banks, 512 x 8 and 1024 x 4)
    {"batch": 16, "k_dim": 32, "o_dim": 32, "had_cap": 16, "rows": 1, "cols": 2},
    # the iCEBreaker's HDQT group (boards/groups.py): every activation lane on an SB_MAC16
    {"batch": 16, "k_dim": 16, "o_dim": 16, "had_cap": 4, "rows": 1, "cols": 1, "acc_width": 17,
     "lane_dsps": True},
], ids=["up5k_largest", "icebreaker_group"])
def test_layer_with_ice40_primitives_bit_exact(params):
    """UP5K configurations with SB_RAM40_4K and SB_MAC16 as instantiated for synthesis: whole steps
    with stalls, bit-exact against the golden model (sim.hdqt.tb_layer)."""
    layer = HdqtLayer(**params, backend="ice40", primitives=True)
    tb_params = {k: v for k, v in params.items() if k != "lane_dsps"}
    run_cocotb(layer, toplevel="hdqt_layer", test_module="sim.hdqt.tb_layer",
               params={**tb_params, "lr_shift": 3},
               extra_verilog=ice40_cell_models("SB_RAM40_4K", "SB_MAC16"))


def test_model_without_check_is_a_plain_memory():
    """check=False (ECP5 synthesis): a read during a write of the same word returns the old word."""
    dut = Ram(8, 4, check=False)
    seen = {}

    async def tb(ctx):
        rd, wr = dut.rd[0], dut.wr
        _set(ctx, wr, addr=2, data=0x3C, en=1)
        await ctx.tick()
        _set(ctx, wr, data=0x55)
        _set(ctx, rd, addr=2, en=1)
        await ctx.tick()
        _set(ctx, wr, en=0)
        seen["collision"] = ctx.get(rd.data)
        await ctx.tick()
        seen["after"] = ctx.get(rd.data)

    simulate(dut, tb)
    assert seen == {"collision": 0x3C, "after": 0x55}
