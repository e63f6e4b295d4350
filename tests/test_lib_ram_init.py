"""registered_read_port in synthesis: its data register has no initial value (UNDEFINED_INIT), so
Yosys maps it into the iCE40 block RAM without emulating an initial 0 (a flop set after the first
cycle and a LUT gating each read bit)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from boards import synth
from hw.lib.ram import UNDEFINED_INIT, registered_read_port


class _ReadPort(wiring.Component):
    """A 256 x 8 memory, one write port and one registered read port (enabled in every cycle)."""

    raddr: In(8)
    waddr: In(8)
    wdata: In(8)
    we: In(1)
    rdata: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=8, depth=256, init=[], attrs={"no_rw_check": 1})
        wp = mem.write_port()
        rp = registered_read_port(m, mem, name="rd")
        m.d.comb += [wp.addr.eq(self.waddr), wp.data.eq(self.wdata), wp.en.eq(self.we),
                     rp.addr.eq(self.raddr), self.rdata.eq(rp.data)]
        return m


def test_undefined_init_is_a_yosys_setattr_on_the_attribute():
    assert UNDEFINED_INIT == "setattr -unset init a:undefined_init"


def test_registered_read_port_maps_into_block_ram_without_logic(tmp_path):
    cells = synth.yosys_cells(_ReadPort(), device="up5k", name="rdport", build_dir=tmp_path,
                              use_cache=False)
    assert cells["bram"] == 1
    # the read register is the block RAM's: no flip-flop, no LUT (with an initial value: 8 LUTs
    # and a flip-flop)
    assert cells["lut4"] == 0 and cells["ff"] == 0, cells
