"""Benchmark of the HDQT datapath (issue 5): FWHT throughput, training-step cycles, resources and Fmax.

Run: ``python -m bench.bench_hdqt`` (``--no-synth`` skips synthesis; ``--quick`` synthesizes only the
FWHT and quantizer; ``--seeds 1,2,3`` places the UP5K layer with each nextpnr seed; ``--only-layer``
synthesizes only the layers).

1. FWHT throughput, measured in the Amaranth simulator: elements per cycle of 16 back-to-back vectors
   (always-valid input, always-ready output) for n = 16..128, sustained (first to last output) and
   including the pipeline fill; and with 30 % random stalls on both sides (the rate then follows the
   stalls). Work per vector: ``n log2 n`` add/sub in ``n`` cycles on ``log2 n`` adders, against the
   ``n**2`` MACs of multiplying by the dense Hadamard matrix (the baseline).
2. Training-step cycles of a 64 x 64 layer at batch 32, measured in Verilator (cocotb, no stalls) on
   :class:`hw.hdqt.layer.HdqtLayer` with a 4 x 4 and a 2 x 2 MAC array, against the MAC-count bound
   ``3 * B * K * O / (rows * cols * 2)`` (three matmuls, int4 mode retires 2 products per PE per cycle).
   ``o_phase`` splits the step into the array's matmuls (``MM_*``) and the time it waits for operands
   (``WAIT_*``); the transform and quantize passes run alongside. Baseline in the same script: the
   sum of the passes' element counts, i.e. the step if they ran one after the other (as before).
3. Synthesis + place-and-route via :func:`boards.synth.synthesize` on iCE40UP5K and ECP5-85F: the
   blocks themselves in its register wrapper, the same path (and figure) as ``edgelearn synth``.
"""

import argparse
import random

import numpy as np

from boards.synth import ToolError, format_table, synthesize
from hw.hdqt import FWHT, HdqtLayer, ShiftQuantizer
from sim.hdqt.demo import REPLAY_PARAMS, replay_on_rtl
from sim.streams import simulate


def fwht_rate(n, vectors=16, stall=0.0, seed=0):
    """(sustained elements/cycle, elements/cycle including fill) for ``vectors`` back-to-back vectors."""
    dut = FWHT(n=n, width=16)
    total = n * vectors
    data = np.random.default_rng(n).integers(-2 ** 15, 2 ** 15, total)
    times = []

    async def tb(ctx):
        rng = random.Random(seed)
        i = t = 0
        while len(times) < total:
            offer = i < total and rng.random() >= stall
            ready = rng.random() >= stall
            ctx.set(dut.i_data.valid, offer)
            ctx.set(dut.i_data.payload, int(data[min(i, total - 1)]))
            ctx.set(dut.o_data.ready, ready)
            if offer and ctx.get(dut.i_data.ready):
                i += 1
            if ready and ctx.get(dut.o_data.valid):
                times.append(t)
            await ctx.tick()
            t += 1

    simulate(dut, tb)
    return total / (times[-1] - times[0] + 1), total / (times[-1] + 1)


def layer_step_cycles(rows=4, cols=4):
    """Measured cycles of one random 64 x 64, batch-32 step (Verilator), per phase."""
    rng = np.random.default_rng(0)
    rec = {"w": rng.integers(-4000, 4000, (64, 64)), "x": rng.integers(0, 17, (32, 64)), "x_exp": -4,
           "dy": rng.integers(-20000, 20000, (32, 64)), "dy_exp": -20, "lfsr_index": 0}
    return replay_on_rtl([rec], {**REPLAY_PARAMS, "rows": rows, "cols": cols})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only-layer", action="store_true", help="skip the FWHT and quantizer syntheses")
    ap.add_argument("--seeds", default="1", help="nextpnr seeds for the UP5K layer, e.g. 1,2,3")
    args = ap.parse_args(argv)

    seeds = [int(x) for x in args.seeds.split(",")]
    print("== FWHT throughput (Amaranth sim, 16 vectors, width 16) ==")
    print(f"{'n':>4s} {'sustained el/cyc':>17s} {'incl. fill':>11s} {'30% stalls':>11s} "
          f"{'add/cyc':>8s} {'dense MACs / FWHT adds':>23s}")
    for n in (16, 32, 64, 128):
        sus, fill = fwht_rate(n)
        _, stalled = fwht_rate(n, stall=0.3, seed=1)
        lg = n.bit_length() - 1
        print(f"{n:4d} {sus:17.3f} {fill:11.3f} {stalled:11.3f} {lg * sus:8.2f} {n / lg:23.1f}")

    b_, k_, o_ = 32, 64, 64
    macs = 3 * b_ * k_ * o_
    # element passes of a step: quantize X, W; FWHT + quantize of W (along O), dY twice, X (along B)
    passes = b_ * k_ + o_ * k_ + 2 * o_ * k_ + 4 * b_ * o_ + 2 * b_ * k_
    fwht_work = o_ * k_ + 2 * b_ * o_ + b_ * k_
    for r, c in ((4, 4), (2, 2)):
        print(f"\n== HDQT training step, 64x64 layer, batch 32, {r}x{c} MAC array (Verilator, measured) ==")
        res = layer_step_cycles(r, c)
        cycles, phases = res["cycles"][0], res["phase_cycles"]
        bound = macs // (r * c * 2)
        mm = sum(v for k, v in phases.items() if k.startswith("MM_"))
        print("  " + ", ".join(f"{k} {v}" for k, v in phases.items()))
        print(f"  total {cycles} cycles; MAC-count bound {bound} (={macs} MACs / {r * c * 2} per cycle); "
              f"ratio {cycles / bound:.2f} (target <= 1.5)")
        print(f"  matmuls {mm} cycles ({mm / bound:.3f} x bound), array waiting {cycles - mm} cycles; "
              f"baseline (passes one after the other, matmuls at the bound): {passes + bound} "
              f"({(passes + bound) / bound:.2f} x)")
        floor = fwht_work + b_ * k_ + bound // 3
        print(f"  floor with one FWHT stream (1 element/cycle): {fwht_work} transform cycles + the last "
              f"quantize ({b_ * k_}) + the last matmul ({bound // 3}) = {floor} ({floor / bound:.2f} x)")

    if args.no_synth:
        return
    # (row label, synthesize's name (its cache directory), factory, devices, nextpnr seeds)
    designs = []
    if not args.only_layer:
        designs += [("fwht_n64", "fwht_n64", lambda: FWHT(n=64, width=16), ("up5k", "ecp5-85f"), [1]),
                    ("fwht_n128", "fwht_n128", lambda: FWHT(n=128, width=16), ("up5k", "ecp5-85f"), [1]),
                    ("hdqt_quantizer", "hdqt_quantizer", lambda: ShiftQuantizer(width=24, bits=4, depth=2048),
                     ("up5k", "ecp5-85f"), [1])]
    if not args.quick:
        designs += [
            # the largest layer found to fit the UP5K (a 2 x 2 array needs 108 % of its logic cells;
            # 32 x 32 x 32 needs about 37 block RAMs by its buffer sizes, the UP5K has 30); synthesized
            # under the CLI's name, so `edgelearn synth hdqt_layer` with the demo's parameters
            # (hw/hdqt/__init__.py synth_params) finds the same build
            ("hdqt_layer_16x32x32_1x2_h16", "hdqt_layer",
             lambda: HdqtLayer(batch=16, k_dim=32, o_dim=32, had_cap=16, rows=1, cols=2, backend="ice40"),
             ("up5k",), seeds),
            ("hdqt_layer_32x64x64_4x4", "hdqt_layer_32x64x64_4x4",
             lambda: HdqtLayer(batch=32, k_dim=64, o_dim=64, rows=4, cols=4, backend="ecp5"),
             ("ecp5-85f",), [1]),
        ]
    rows = []
    for label, name, make, devices, dseeds in designs:
        for dev in devices:
            for seed in dseeds:
                row_name = label if dseeds == [1] else f"{label} seed {seed}"
                try:
                    # the block itself under boards.synth's RegisterWrapper: the path of `edgelearn synth`
                    r = synthesize(make(), device=dev, name=name, seed=seed,
                                   progress=lambda msg: print("  ..", msg, flush=True))
                    rows.append({**r, "name": row_name})
                    cells = f"{r['lc']} LCs" if "lc" in r else f"{r.get('slices')} slices"
                    print(f"  {row_name} on {dev}: Fmax {r['fmax_mhz']} MHz, {cells}, "
                          f"Yosys mapping {r['abc9']}", flush=True)
                except ToolError as e:
                    # a design that misses the clock is reported, not raised: this is a failed tool
                    # run or a design that does not fit (DoesNotFit names the resource)
                    print(f"  {row_name} on {dev}: {str(e).splitlines()[0][:300]}", flush=True)
    print("\n== Synthesis (out of context, I/O registered) ==")
    print(format_table(rows))


if __name__ == "__main__":
    main()
