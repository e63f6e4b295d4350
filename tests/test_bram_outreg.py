"""boards/bram_outreg.py: registers behind ``DP16KD`` read data moved into the RAM's output register.

Small Amaranth designs through Yosys's ``synth_ecp5`` (YoWASP), then the step on the JSON netlist:
a register that only takes the RAM's read data moves (the port's ``REGMODE`` becomes ``OUTREG``, the
RAM's read-data bits drive what the register drove, the flip-flops are gone); a register with an
enable, a reset, another clock, or read data that also drives logic stays.
"""

import json

import pytest
from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib.memory import Memory

from boards.bram_outreg import absorb_output_registers, main
from boards.toolchain import run_yosys
from hw.lib.ram import registered_read_port
from hw.lib.reset import KEEP_REGISTERS


def _ram(m, wa, wd, we, ra):
    """A 512 x 16 RAM read as the GEMM buffers read theirs (``registered_read_port``: a block RAM
    read port with no read-during-write logic behind it); its read port."""
    m.submodules.ram = ram = Memory(shape=16, depth=512, init=[], attrs={"no_rw_check": 1})
    wr, rd = ram.write_port(), registered_read_port(m, ram, name="rd")
    m.d.comb += [wr.addr.eq(wa), wr.data.eq(wd), wr.en.eq(we), rd.addr.eq(ra)]
    return rd


def _design(kind):
    """A 512 x 16 RAM, written from ports, read synchronously, its data into register ``q`` (``kind``
    varies how: ``"plain"``, ``"unmarked"`` (without the ``bram_outreg`` attribute), ``"enable"``,
    ``"also-logic"``, ``"other-clock"``; ``"reset"`` is
    :func:`_reset_design`) driving the output ``o`` (and ``o2`` for ``"also-logic"``)."""
    m = Module()
    m.domains.sync = ClockDomain("sync", reset_less=True)
    if kind == "other-clock":
        m.domains.other = ClockDomain("other", reset_less=True)
    wa, wd, we, ra, en = Signal(9), Signal(16), Signal(), Signal(9), Signal()
    o, o2 = Signal(16), Signal(16)
    rd = _ram(m, wa, wd, we, ra)
    q = Signal(16, reset_less=True, attrs={} if kind == "unmarked" else {"bram_outreg": 1})
    domain = "other" if kind == "other-clock" else "sync"
    if kind == "enable":
        with m.If(en):
            m.d.sync += q.eq(rd.data)
    else:
        m.d[domain] += q.eq(rd.data)
    m.d.comb += o.eq(q)
    ports = [ClockSignal("sync"), wa, wd, we, ra, en, o]
    if kind == "also-logic":
        m.d.comb += o2.eq(rd.data ^ 0x5A5A)
        ports.append(o2)
    if kind == "other-clock":
        ports.append(ClockSignal("other"))
    return m, ports


def _netlist(tmp_path, kind):
    m, ports = _design(kind) if kind != "reset" else _reset_design()
    (tmp_path / "t.il").write_text(rtlil.convert(m, name="top", ports=ports))
    script = f"read_rtlil t.il\n{KEEP_REGISTERS}\nsynth_ecp5 -top top -json t.json\n"
    run_yosys(script, log=tmp_path / "yosys.log", cwd=tmp_path)
    return json.loads((tmp_path / "t.json").read_text())


def _reset_design():
    m = Module()
    m.domains.sync = ClockDomain("sync")
    wa, wd, we, ra, o = Signal(9), Signal(16), Signal(), Signal(9), Signal(16)
    rd = _ram(m, wa, wd, we, ra)
    q = Signal(16, attrs={"bram_outreg": 1})
    m.d.sync += q.eq(rd.data)
    m.d.comb += o.eq(q)
    return m, [ClockSignal("sync"), ResetSignal("sync"), wa, wd, we, ra, o]


def _cells(netlist):
    (top,) = [mod for mod in netlist["modules"].values() if mod.get("attributes", {}).get("top")]
    return top["cells"]


def test_a_register_of_read_data_moves_into_the_ram(tmp_path):
    netlist = _netlist(tmp_path, "plain")
    cells = _cells(netlist)
    (ram,) = [c for c in cells.values() if c["type"] == "DP16KD"]
    ffs = sum(c["type"] == "TRELLIS_FF" for c in cells.values())
    assert ffs == 16 and {ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"]} == {"NOREG"}
    q_bits = sorted(b for c in cells.values() if c["type"] == "TRELLIS_FF" for b in c["connections"]["Q"])
    assert absorb_output_registers(netlist) == 16
    assert sum(c["type"] == "TRELLIS_FF" for c in cells.values()) == 0
    modes = {ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"]}
    assert modes == {"NOREG", "OUTREG"}
    port = "A" if ram["parameters"]["REGMODE_A"] == "OUTREG" else "B"
    driven = sorted(ram["connections"][f"DO{port}{i}"][0] for i in range(18)
                    if ram["connections"][f"DO{port}{i}"][0] in q_bits)
    assert driven == q_bits          # the RAM's read data now drives what the registers drove
    assert absorb_output_registers(netlist) == 0      # a second run finds nothing more


@pytest.mark.parametrize("kind", ["unmarked", "enable", "reset", "also-logic", "other-clock"])
def test_other_registers_stay(tmp_path, kind):
    netlist = _netlist(tmp_path, kind)
    cells = _cells(netlist)
    (ram,) = [c for c in cells.values() if c["type"] == "DP16KD"]
    read_bits = {b for pin, bits in ram["connections"].items() if pin.startswith("DO") for b in bits}
    behind = [c for c in cells.values()
              if c["type"] == "TRELLIS_FF" and c["connections"]["DI"][0] in read_bits]
    assert len(behind) == 16            # the register is there, right behind the RAM
    before = json.dumps(netlist, sort_keys=True)
    assert absorb_output_registers(netlist) == 0
    assert json.dumps(netlist, sort_keys=True) == before


def test_command_line_rewrites_the_file(tmp_path, capsys):
    netlist = _netlist(tmp_path, "plain")
    path = tmp_path / "n.json"
    path.write_text(json.dumps(netlist))
    assert main([str(path)]) == 0
    assert "16 flip-flops moved" in capsys.readouterr().out
    assert not any(c["type"] == "TRELLIS_FF" for c in _cells(json.loads(path.read_text())).values())
    assert main([]) == 2


def test_the_board_build_runs_it_between_yosys_and_nextpnr(tmp_path):
    from boards.build import _insert_after_synthesis
    script = tmp_path / "build_top.sh"
    script.write_text('set -e\n"$YOSYS" -q -l top.rpt top.ys\n"$NEXTPNR_ECP5" --json top.json\n')
    _insert_after_synthesis(script, "top")
    lines = script.read_text().splitlines()
    assert lines[1].startswith('"$YOSYS"') and lines[3].startswith('"$NEXTPNR_ECP5"')
    assert lines[2].endswith("-m boards.bram_outreg top.json")
