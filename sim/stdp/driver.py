"""Run a network on :class:`hw.stdp.STDPCore` in Amaranth's simulator: load, step, read back.

The host testbench loads the memory image through ``i_cfg``, then sends each step's events and the
end-of-step marker on ``i_aer``; a second testbench takes ``o_aer`` (each with its own random
stalls). After the last step the host reads back the synapse memory (and, if asked, the neuron
states). Used by the tests, the experiments, the demo and the bench.
"""

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from hw.stdp import STDPCore, spec
from hw.stdp.core import PHASE_WALK
from sim.streams import stream_get, stream_put

__all__ = ["CoreRun", "run_core"]


@dataclass
class CoreRun:
    spikes: list                  # per step, the ascending list of spiking neurons (from o_aer)
    rows: list = None             # read-back weights, shaped like the effective rows
    states: list = None           # read-back neuron states (NeuronState)
    image: dict = None            # raw read-back words {mem: [words]}
    err: dict = field(default_factory=dict)
    cycles: int = 0               # cycles from the first end-of-step marker to the last output marker
    walk_cycles: int = 0          # cycles spent in PHASE_WALK


def _cmd(write, mem, addr, data=0):
    return {"write": write, "mem": mem, "addr": addr, "data": data}


def run_core(cfg, rows, steps, *, stall_in=0.0, stall_out=0.0, seed=0, readback=True, states=False,
             extra_cfg=(), count_cycles=False, dut=None):
    """Simulate ``steps`` (a list of per-step event lists) on a core built from ``cfg``.

    Parameters
    ----------
    cfg : hw.stdp.spec.STDPConfig
    rows : list
        The network (see :func:`hw.stdp.spec.build_image`).
    steps : list of list of int
        Input events of each step (any int; indices outside the network test the error flag).
    stall_in, stall_out : float
        Probability of a stall cycle before each transfer on ``i_aer`` / ``o_aer``.
    readback, states : bool
        Read back the synapse memory / the neuron states after the run.
    extra_cfg : sequence of dict
        Raw configuration commands sent after loading (for error-flag tests); reads among them are
        answered and returned in ``image["extra"]``.
    count_cycles : bool
        Count cycles (slower: one more testbench that ticks every cycle).
    """
    dut = dut or STDPCore(primitives=False, **{k: getattr(cfg, k) for k in cfg.__dataclass_fields__})
    image = spec.build_image(cfg, rows)
    template = spec.effective_rows(cfg, rows)
    out = CoreRun(spikes=[])
    done = {"load": False, "steps": False, "all": False}
    rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
    n_steps = len(steps)

    async def host(ctx):
        for mem in (spec.MEM_SYN, spec.MEM_ROW, spec.MEM_BMP):
            for addr, word in enumerate(image[mem]):
                await stream_put(ctx, dut.i_cfg, _cmd(1, mem, addr, word))
        extra = []
        for cmd in extra_cfg:
            await stream_put(ctx, dut.i_cfg, cmd)
            if not cmd["write"]:
                extra.append(await stream_get(ctx, dut.o_rdata))
        done["load"] = True
        for events in steps:
            for e in events:
                await stream_put(ctx, dut.i_aer, {"neuron": e, "eos": 0}, rng=rng_in, stall=stall_in)
            await stream_put(ctx, dut.i_aer, {"neuron": 0, "eos": 1}, rng=rng_in, stall=stall_in)
        while not done["steps"]:
            await ctx.tick()
        back = {"extra": extra}
        if readback:
            back[spec.MEM_SYN] = []
            for addr in range(len(image[spec.MEM_SYN])):
                await stream_put(ctx, dut.i_cfg, _cmd(0, spec.MEM_SYN, addr))
                back[spec.MEM_SYN].append(await stream_get(ctx, dut.o_rdata))
            out.rows = spec.image_rows(cfg, back, template)
        if states:
            out.states = []
            for addr in range(cfg.n_neurons):
                await stream_put(ctx, dut.i_cfg, _cmd(0, spec.MEM_STATE, addr))
                out.states.append(spec.unpack_state(cfg, await stream_get(ctx, dut.o_rdata)))
        out.image = back
        out.err = {"bad_event": ctx.get(dut.o_err.bad_event), "bad_cfg": ctx.get(dut.o_err.bad_cfg)}
        done["all"] = True

    async def sink(ctx):
        cur = []
        while len(out.spikes) < n_steps:
            p = await stream_get(ctx, dut.o_aer, rng=rng_out, stall=stall_out)
            if p.eos:
                out.spikes.append(cur)
                cur = []
            else:
                cur.append(p.neuron)
        done["steps"] = True

    async def counter(ctx):
        started = False
        async for _, _, phase in ctx.tick().sample(dut.o_phase):
            if phase != 0:
                started = True
            if started:
                out.cycles += 1
                out.walk_cycles += phase == PHASE_WALK
            if done["steps"] or done["all"]:
                return

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(sink)
    if count_cycles:
        sim.add_testbench(counter, background=True)
    sim.run()
    assert done["all"], "simulation ended before the host finished"
    return out
