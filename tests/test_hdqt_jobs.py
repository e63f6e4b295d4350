"""The engines' job sequencer (hw/hdqt/jobs.py) against a cycle model of its documented behaviour, in the
Amaranth simulator."""

import random

import pytest

from hw.hdqt.jobs import SETUP_CYCLES, JobSequencer
from sim.streams import simulate

PREREQS = [[], [0, 3], [5], [1, 2]]
FLAGS = 6


class SequencerModel:
    """The JobSequencer's docstring as a cycle model: ``step(inputs)`` returns the outputs of the cycle
    and advances to the next."""

    def __init__(self, prereqs):
        self.pre, self.job, self.act, self.setup, self.run, self.start = prereqs, 0, 0, 0, 0, 0
        self.done = [0] * len(prereqs)

    def outputs(self):
        return {"job": self.job, "start": self.start, "act": self.act,
                "setup_end": int(self.act and self.setup == 1), "run": self.run, "done": list(self.done)}

    def step(self, running, load_busy, done_in, finish, reset):
        out = self.outputs()
        can = self.job < len(self.pre) and all(done_in[f] for f in self.pre[self.job])
        nxt = dict(start=int(running and not load_busy and not self.act and not self.start and can),
                   act=self.act, setup=self.setup, run=self.run, job=self.job)
        done = list(self.done)
        if self.start:                          # start -> SETUP_CYCLES setup cycles
            nxt.update(act=1, setup=SETUP_CYCLES)
        if self.act and self.setup:
            nxt["setup"] = self.setup - 1
            if self.setup == 1:                 # -> run
                nxt["run"] = 1
        if self.run and finish:                 # -> the job's done flag, the next job
            nxt.update(act=0, run=0, job=self.job + 1)
            done[self.job] = 1
        if reset:
            nxt.update(job=0, act=0, setup=0, run=0)
            done = [0] * len(self.pre)
        for k, v in nxt.items():
            setattr(self, k, v)
        self.done = done
        return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sequencer_matches_model(seed):
    rng = random.Random(seed)
    dut = JobSequencer(prereqs=PREREQS, flags=FLAGS)
    model = SequencerModel(PREREQS)
    seen = {"finished": set(), "mismatch": []}

    async def tb(ctx):
        done_in = [0] * FLAGS
        for cycle in range(3000):
            if rng.random() < 0.05:
                done_in[rng.randrange(FLAGS)] ^= 1
            ins = dict(running=int(rng.random() < 0.9), load_busy=int(rng.random() < 0.1),
                       done_in=list(done_in), finish=int(rng.random() < 0.3), reset=int(rng.random() < 0.003))
            ctx.set(dut.i_running, ins["running"])
            ctx.set(dut.i_load_busy, ins["load_busy"])
            ctx.set(dut.i_done, sum(b << i for i, b in enumerate(done_in)))
            ctx.set(dut.ctl.finish, ins["finish"])
            ctx.set(dut.i_reset, ins["reset"])
            want = model.step(**ins)
            got = {"job": ctx.get(dut.ctl.job), "start": ctx.get(dut.ctl.start), "act": ctx.get(dut.ctl.act),
                   "setup_end": ctx.get(dut.ctl.setup_end), "run": ctx.get(dut.ctl.run),
                   "done": [(ctx.get(dut.o_done) >> j) & 1 for j in range(len(PREREQS))]}
            if got != want:
                seen["mismatch"].append((cycle, got, want))
                return
            if want["run"] and ins["finish"]:
                seen["finished"].add(want["job"])
            await ctx.tick()

    simulate(dut, tb)
    assert not seen["mismatch"], seen["mismatch"][0]
    assert seen["finished"] == set(range(len(PREREQS)))     # the random inputs finish every job


def test_sequencer_rejects_bad_parameters():
    with pytest.raises(ValueError, match="prereqs flag"):
        JobSequencer(prereqs=[[6]], flags=6)
    with pytest.raises(TypeError, match="prereqs"):
        JobSequencer(prereqs=[1, 2], flags=6)
