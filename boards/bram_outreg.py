"""ECP5 block RAM output registers: move a register behind a ``DP16KD``'s read data into the RAM.

A ``DP16KD`` read without its output register (``REGMODE = "NOREG"``, the only mode Yosys's ECP5
memory mapping uses) delivers its data 5.83 ns after the clock in nextpnr-ecp5's timing model
(speed 6); with it (``"OUTREG"``), 0.96 ns, one cycle later. A design that registers a RAM's read
data at once, with nothing else reading it (the GEMM engine's sequencer registers every buffer
word it reads: ``ram_q``), pays the 5.83 ns plus the route to wherever the placer put that
register; on the 8 x 16 ULX3S board aimed at 125 MHz those paths reached 8.3 ns. The circuit is
the same with the register inside the RAM, so this step, run on Yosys's JSON netlist before
nextpnr, moves it there.

Only registers the design asks for move: a flip-flop whose output is a bit of a wire with the
``bram_outreg`` attribute (:data:`ATTR`; e.g. ``Signal(..., attrs={"bram_outreg": 1})``). Moving
every such register is not always better: a register by the logic it feeds takes the long route
from a RAM far away in a cycle of its own, while the RAM's output register leaves that route to
the logic's cycle (the staging queue's 60 DP16KDs into its output ring, moved: the ``dec``
domain's worst path, 15.31 ns at 65 MHz on the ULX3S, seed 2).

A port's register moves when every read-data bit of the port that is used drives one flip-flop's
data input and nothing else, and each such flip-flop carries the attribute, is clocked by the
port's clock (same polarity), always enabled, never reset (its ``LSR`` a constant 0) and starts
at 0 (``REGSET = RESET``); the port's own output enable is 1 and its reset a constant 0, and
neither port is 36 bits wide (then both read-data buses belong to one port). The RAM's
``REGMODE`` of that port becomes ``"OUTREG"``, its read-data bits take the flip-flops' outputs,
and the flip-flops go.
Anything else is left as it is.

``python -m boards.bram_outreg NETLIST.json``: rewrites the file and prints how many registers
moved (the board build runs it between Yosys and nextpnr for the ECP5 boards).
"""

import collections
import json
import sys

__all__ = ["absorb_output_registers", "ATTR"]

#: The wire attribute that asks for a register to move into the block RAM it reads.
ATTR = "bram_outreg"

_BITS = range(18)


def _param(cell, name):
    return str(cell["parameters"].get(name, "")).strip()


def _width(cell, port):
    value = _param(cell, f"DATA_WIDTH_{port}")
    return int(value, 2) if value and set(value) <= {"0", "1"} else int(value or 18)


def _absorbable(cells, cell, port, loads, port_bits, marked):
    """The flip-flops behind ``cell``'s read port ``port`` (``{bit index: ff name}``), or None."""
    conn = cell["connections"]
    if _param(cell, f"REGMODE_{port}") != "NOREG" or _param(cell, f"CLK{port}MUX") != f"CLK{port}":
        return None
    if conn.get(f"OCE{port}") != ["1"] or conn.get(f"RST{port}") != ["0"]:
        return None
    clock = conn.get(f"CLK{port}")
    found = {}
    for i in _BITS:
        bits = conn.get(f"DO{port}{i}", [])
        if not bits or not isinstance(bits[0], int):
            continue
        bit = bits[0]
        users = loads.get(bit, [])
        if not users:
            continue
        if bit in port_bits or len(users) != 1:
            return None
        name, pin = users[0]
        ff = cells[name]
        fc = ff["connections"]
        if (ff["type"] != "TRELLIS_FF" or pin != "DI" or fc.get("CLK") != clock
                or _param(ff, "CLKMUX") != "CLK" or _param(ff, "CEMUX") != "1"
                or fc.get("LSR", ["0"]) != ["0"] or _param(ff, "REGSET") != "RESET"
                or not set(fc["Q"]) <= marked):
            return None
        found[i] = name
    return found or None


def absorb_output_registers(netlist):
    """Move the registers behind ``DP16KD`` read ports into the RAMs' output registers (see the
    module docstring) in ``netlist`` (Yosys's JSON, as a dict; changed in place). Returns the
    number of flip-flops moved."""
    moved = 0
    for module in netlist["modules"].values():
        cells = module.get("cells", {})
        loads = collections.defaultdict(list)
        for name, cell in cells.items():
            for pin, bits in cell["connections"].items():
                if cell.get("port_directions", {}).get(pin) == "input":
                    for bit in bits:
                        if isinstance(bit, int):
                            loads[bit].append((name, pin))
        port_bits = {bit for port in module.get("ports", {}).values() for bit in port["bits"]
                     if isinstance(bit, int)}
        marked = {bit for net in module.get("netnames", {}).values()
                  if ATTR in net.get("attributes", {}) for bit in net["bits"] if isinstance(bit, int)}
        for cell in list(cells.values()):
            if cell["type"] != "DP16KD" or max(_width(cell, "A"), _width(cell, "B")) > 18:
                continue
            for port in ("A", "B"):
                found = _absorbable(cells, cell, port, loads, port_bits, marked)
                if found is None:
                    continue
                cell["parameters"][f"REGMODE_{port}"] = "OUTREG"
                for i, name in found.items():
                    cell["connections"][f"DO{port}{i}"] = list(cells[name]["connections"]["Q"])
                    del cells[name]
                moved += len(found)
    return moved


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m boards.bram_outreg NETLIST.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        netlist = json.load(f)
    moved = absorb_output_registers(netlist)
    with open(argv[0], "w") as f:
        json.dump(netlist, f)
    print(f"bram_outreg: {moved} flip-flops moved into DP16KD output registers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
