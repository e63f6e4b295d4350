"""Yosys cells (ECP5-85F, no place and route) of the ULX3S GEMM crossing's two registered stages
against the paths they replace, at the board's sizes (``hw/control/boards.py``'s ULX3S ``gemm``).

Run: ``python -m bench.bench_async_queue`` (three Yosys runs, one at a time, a few minutes).

1. The staging crossing (``stage_depth`` data beats): the library
   ``AsyncFIFO`` with a two-entry ``SkidBuffer`` behind it (the read side before) against
   ``hw.lib.async_queue.AsyncQueue`` (block-RAM banks with their own read-address and read-data
   registers, four prefetch registers; the skid buffer is not needed behind it).
2. The result rows' ``SkidBuffer`` in front of their crossing FIFO (the cells it adds).
3. ``--crossing``: the board's whole ``EngineCrossing`` (engine and crossings, every domain
   ``sync``; one more Yosys run, several minutes).

Both domains of a crossing are ``sync`` here; the block sits in the synthesis wrapper's registers
(:func:`boards.synth.yosys_cells`). The synchronizers are flip-flops either way, but with the
block RAMs' write and read ports on one clock Yosys adds fabric that emulates their read-before-write
behaviour (``emulate_transparency`` in its log); ``--pnr`` (two clocks, as on the board) has none.

``--pnr SEEDS`` (e.g. ``1,2``), instead of the table: the staging ``AsyncQueue`` alone at the
board's size placed and routed on the ECP5-85F (CABGA381) at each nextpnr seed, with its two
domains on two clocks (each from its own clock-capable pin, constrained to 125 MHz; the crossing's
synchronized paths are between unrelated clocks, not timed): the write and the read clock's Fmax,
the endpoints of each clock's worst path, and the queue's cells. One Yosys run and one nextpnr run
per seed (several minutes each; ``--timeout`` bounds each).

``--pnr-crossing SEEDS``, instead of the table: the board's whole ``EngineCrossing`` placed and
routed the same way on two clocks: ``sync`` (the handler's side and, here, the array) and ``dec``
(the decoder's side, with the staging queue's read side): the ``dec`` clock's Fmax in the whole
crossing. The board's array domain ``gemm`` is ``sync`` here (a third clock pin is not set up).
One Yosys run (two if ABC9 fails) and one nextpnr run per seed (tens of minutes each).
"""

import argparse
import hashlib
import inspect
import json

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

from boards.synth import (
    DEVICES,
    DUT_MODULE,
    RegisterWrapper,
    count_cells,
    module_cells,
    yosys_cached,
    yosys_cells,
)
from boards.toolchain import run_tool
from hw.control.boards import check_board
from hw.gemm import GemmEngine
from hw.gemm.crossing import EngineCrossing
from hw.huffman.block_parser import beat_layout
from hw.lib.async_queue import AsyncQueue
from hw.lib.stream import SkidBuffer
from hw.mac.array import res_layout
from hw.paths import build_root


class FifoThenSkid(wiring.Component):
    """``amaranth.lib.fifo.AsyncFIFO`` read into a two-entry skid buffer (the staging read side
    before ``AsyncQueue``), behind the queue's stream interface."""

    def __init__(self, shape, depth):
        self._shape, self._depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "w_level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        width = len(self.i.payload.as_value())
        m.submodules.fifo = f = AsyncFIFO(width=width, depth=self._depth, w_domain="sync", r_domain="sync")
        m.submodules.skid = skid = SkidBuffer(self._shape)
        m.d.comb += [f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid), self.i.ready.eq(f.w_rdy),
                     self.w_level.eq(f.w_level),
                     skid.i.payload.eq(f.r_data), skid.i.valid.eq(f.r_rdy), f.r_en.eq(skid.i.ready)]
        wiring.connect(m, skid.o, wiring.flipped(self.o))
        return m


class TwoClockWrapper(wiring.Component):
    """Registers around every port of a queue (``i``, ``o``, ``w_level``) whose write domain is
    ``wr`` and read domain ``rd``: per domain, a shift register (from pin ``sin_w``/``sin_r``)
    drives the domain's inputs and a capture register (``load_w``/``load_r``, out on
    ``sout_w``/``sout_r``) takes its outputs, so every path of the queue starts and ends at a
    flip-flop of its own clock (:class:`boards.synth.RegisterWrapper` with two clocks)."""

    sin_w: In(1)
    load_w: In(1)
    sout_w: Out(1)
    sin_r: In(1)
    load_r: In(1)
    sout_r: Out(1)

    def __init__(self, dut):
        self._dut = dut
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        sides = {"wr": ([dut.i.payload, dut.i.valid], [dut.i.ready, dut.w_level], self.sin_w,
                        self.load_w, self.sout_w),
                 "rd": ([dut.o.ready], [dut.o.payload, dut.o.valid], self.sin_r, self.load_r,
                        self.sout_r)}
        for domain, (ins, outs, sin, load, sout) in sides.items():
            ins, outs = Cat(*map(Value.cast, ins)), Cat(*map(Value.cast, outs))
            chain, capture = Signal(len(ins)), Signal(len(outs))
            m.d[domain] += chain.eq(Cat(sin, chain[:-1]))
            m.d.comb += ins.eq(chain)
            with m.If(load):
                m.d[domain] += capture.eq(outs)
            with m.Else():
                m.d[domain] += capture.eq(capture >> 1)
            m.d.comb += sout.eq(capture[0])
        return m


#: Clock-capable pins for two clocks: the ULX3S oscillator's (G2, as :data:`boards.synth.DEVICES`)
#: and its neighbour (H2).
CLOCK_SITES = ("G2", "H2")


def place_two_clocks(wrapper, clocks, *, seed, name, freq_mhz=125, timeout=None, abc9=None,
                     router=None):
    """Yosys and nextpnr (ECP5-85F) on ``wrapper`` (a block as submodule ``dut`` in registers, whose
    top-level clock pins are ``clocks``' values, on :data:`CLOCK_SITES`): ``{key: Fmax}`` (MHz) and
    ``key + "_path"`` (the endpoints of that clock's worst path) for each key of ``clocks``, and the
    block's cells; cached in ``build/synth/<name>-twoclk-<hash>/`` like
    :func:`boards.synth.synthesize`. ``abc9``: Yosys' LUT mapping (an entry of
    :data:`boards.toolchain.ABC9_OPTIONS`); None: the first of them that runs, as ``synthesize``.
    ``router``: nextpnr's (None: its default, router1)."""
    dev = DEVICES["ecp5-85f"]
    lpf = "".join(f'LOCATE COMP "{clk}" SITE "{site}";\nIOBUF PORT "{clk}" IO_TYPE=LVCMOS33;\n'
                  for clk, site in zip(clocks.values(), CLOCK_SITES, strict=True))
    text = rtlil.convert(wrapper, name="top")
    build = build_root() / "synth"
    digest = hashlib.sha256(f"{freq_mhz}\n{seed}\n{abc9}\n{router}\n{lpf}{text}".encode()).hexdigest()[:16]
    work = build / f"{name}-twoclk-{digest}"
    if (work / "result.json").exists():
        return json.loads((work / "result.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.il").write_text(text)
    yosys_cached(text, "ecp5-85f", name, work, build, True, print, timeout,
                 options=None if abc9 is None else (abc9,))
    stat = json.loads((work / "stat.json").read_text())
    cells = count_cells(module_cells(stat, DUT_MODULE), "ecp5")
    (work / "clocks.lpf").write_text(lpf)
    print(f"nextpnr: {name}, seed {seed}")
    run_tool(dev["nextpnr"], ["--85k", "--package", "CABGA381", "--lpf", "clocks.lpf",
                              "--lpf-allow-unconstrained", "--json", "synth.json", "--freq", str(freq_mhz),
                              "--seed", str(seed), "--timing-allow-fail", "--report", "report.json",
                              *(["--router", router] if router else []), "-q", "-l", "pnr.log"],
             log=work / "pnr.log", cwd=work, timeout=timeout)
    report = json.loads((work / "report.json").read_text())
    result = {"seed": seed, **cells, "dir": str(work)}
    for key, clk in clocks.items():
        net = f"${clk}$"        # nextpnr's clock net: $glbnet$<pin>$TRELLIS_IO_IN
        fmax = [v["achieved"] for k, v in report.get("fmax", {}).items() if net in k]
        result[key] = round(fmax[0], 2) if fmax else None
        paths = [p for p in report.get("critical_paths", [])
                 if net in p.get("from", "") and net in p.get("to", "")]
        steps = paths[0]["path"] if paths else []
        result[f"{key}_path"] = (f"{steps[0]['from']['cell']} -> {steps[-1]['to']['cell']}"
                                 if steps else None)
    (work / "result.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crossing", action="store_true",
                    help="also the board's whole EngineCrossing, every domain sync (several minutes)")
    ap.add_argument("--pnr", metavar="SEEDS",
                    help="instead of the table: place and route the staging AsyncQueue with two clocks "
                         "at these nextpnr seeds, e.g. 1,2")
    ap.add_argument("--pnr-crossing", metavar="SEEDS",
                    help="instead of the table: place and route the board's EngineCrossing (array in sync, "
                         "decoder in dec: two clocks) at these nextpnr seeds")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds each Yosys and nextpnr run may take")
    args = ap.parse_args(argv)
    g = check_board("ulx3s").gemm
    # The payloads as EngineCrossing builds them from the board's engine (its defaults for what the
    # board does not set).
    defaults = {k: p.default for k, p in inspect.signature(GemmEngine).parameters.items()}
    g = {**defaults, **g}
    beat, depth = beat_layout(g["lanes"] * g["contexts"]), g["stage_depth"]
    res = res_layout(g["rows"], g["cols"], g["acc_width"])
    if args.pnr:
        seeds = [int(x) for x in args.pnr.split(",")]
        print(f"# ULX3S staging AsyncQueue ({beat.size} bits x {depth}), ECP5-85F, write clock wr, "
              f"read clock rd, 125 MHz constraint\n")
        keys = ("lut4", "carry", "ff", "bram")
        print(f"{'seed':>4}{'wr MHz':>9}{'rd MHz':>9}" + "".join(f"{k:>7}" for k in keys))
        results = []
        for seed in seeds:
            queue = AsyncQueue(beat, depth, w_domain="wr", r_domain="rd")
            r = place_two_clocks(TwoClockWrapper(queue), {"wr": "wr_clk", "rd": "rd_clk"}, seed=seed,
                                 name="staging_queue", timeout=args.timeout)
            results.append(r)
            print(f"{seed:>4}{r['wr']:>9}{r['rd']:>9}" + "".join(f"{r.get(k, 0):>7}" for k in keys))
        for r in results:
            print(f"seed {r['seed']} worst paths: wr {r['wr_path']}; rd {r['rd_path']}")
        return
    if args.pnr_crossing:
        # The board's EngineCrossing with its array in sync (two clocks: sync, the handler's side
        # and the array; dec, the decoder's side and the staging queue's read side).
        params = {k: v for k, v in check_board("ulx3s").gemm.items() if k not in ("handler", "result_depth")}
        print("# ULX3S EngineCrossing, array in sync, decoder in dec, ECP5-85F, 125 MHz constraint\n")
        keys = ("lut4", "carry", "ff", "bram", "dsp")
        print(f"{'seed':>4}{'sync MHz':>10}{'dec MHz':>9}" + "".join(f"{k:>7}" for k in keys))
        results = []
        for seed in [int(x) for x in args.pnr_crossing.split(",")]:
            crossing = EngineCrossing(**{**params, "array_domain": "sync", "decode_domain": "dec"})
            # Classic ABC and router2, as the board build: YoWASP Yosys 0.70's abc9 maps this
            # netlist with a flip-flop output driven twice (nextpnr refuses it); router1 rips up
            # for over 20 minutes without converging.
            r = place_two_clocks(RegisterWrapper(crossing), {"sync": "clk", "dec": "dec_clk"}, seed=seed,
                                 name="ulx3s_engine_crossing", timeout=args.timeout, abc9="-noabc9",
                                 router="router2")
            results.append(r)
            print(f"{seed:>4}{r['sync']:>10}{r['dec']:>9}" + "".join(f"{r.get(k, 0):>7}" for k in keys))
        for r in results:
            print(f"seed {r['seed']} worst paths: sync {r['sync_path']}; dec {r['dec_path']}")
        return
    rows = [
        ("staging: AsyncFIFO + SkidBuffer", FifoThenSkid(beat, depth)),
        ("staging: AsyncQueue", AsyncQueue(beat, depth)),
        ("result: SkidBuffer", SkidBuffer(res)),
    ]
    print(f"# ULX3S GEMM crossing stages, Yosys synth_ecp5 cells (beat {beat.size} bits x {depth}, "
          f"result row {res.size} bits)\n")
    keys = ("lut4", "carry", "ff", "bram", "lutram")
    print(f"{'block':<34}" + "".join(f"{k:>8}" for k in keys))
    for name, block in rows:
        cells = yosys_cells(block, device="ecp5-85f", name=name.split(":")[0] + "_" + type(block).__name__)
        print(f"{name:<34}" + "".join(f"{cells.get(k, 0):>8}" for k in keys))
    if args.crossing:
        params = {k: v for k, v in check_board("ulx3s").gemm.items() if k not in ("handler", "result_depth")}
        crossing = EngineCrossing(**{**params, "array_domain": "sync", "decode_domain": "sync"})
        cells = yosys_cells(crossing, device="ecp5-85f", name="ulx3s_engine_crossing")
        print(f"{'EngineCrossing (board, one clock)':<34}" + "".join(f"{cells.get(k, 0):>8}" for k in keys))


if __name__ == "__main__":
    main()
