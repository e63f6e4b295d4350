"""The HDQT layer's engines and their job sequencing: the job port, the sequencer, the port signatures of the
buffers, and the element-order and job-table helpers the engines share."""

from typing import NamedTuple

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_int
from . import spec

__all__ = ["JobSequencer", "TensorSource", "job_signature", "read_signature", "write_signature",
           "engine_ports", "SETUP_CYCLES", "by_job", "ij", "element_word", "bit_length_of", "check_jobs"]

#: Cycles from a job's ``start`` to its ``run``: the job's parameters (and the quantizer's shift, three
#: registers from its maximum) settle in them.
SETUP_CYCLES = 4


def bit_length_of(n):
    return max(1, int(n).bit_length())


def job_signature(jobs):
    """The job port of an engine with ``jobs`` jobs, from the sequencer's side.

    ``job``: the current job (``jobs`` once all are done); ``start``: a one-cycle pulse opening a job;
    ``act``: from the cycle after ``start`` until the job ends; ``setup_end``: the last of the
    :data:`SETUP_CYCLES` setup cycles (the job's parameters are final); ``run``: the engine works on
    the job; ``finish`` (from the engine): the job is done, read while ``run``.
    """
    return wiring.Signature({
        "job": Out(range(jobs + 1)),
        "start": Out(1),
        "act": Out(1),
        "setup_end": Out(1),
        "run": Out(1),
        "finish": In(1),
    })


def read_signature(addr_bits, shape):
    """A synchronous RAM read port from the reader's side (:class:`~hw.hdqt.ram.Ram`): ``data`` is the
    word of ``addr`` presented with ``en`` high a cycle earlier, held while ``en`` is low."""
    return wiring.Signature({"addr": Out(addr_bits), "en": Out(1), "data": In(shape)})


def write_signature(addr_bits, shape, lanes=1):
    """A RAM write port from the writer's side: ``en`` has one bit per write lane."""
    return wiring.Signature({"addr": Out(addr_bits), "data": Out(shape), "en": Out(lanes)})


class TensorSource(NamedTuple):
    """A tensor buffer an engine reads: ``lanes`` signed ``width``-bit elements per word, words addressed
    by ``addr_bits`` bits."""
    addr_bits: int
    width: int = spec.W_BITS
    lanes: int = 1


def engine_ports(jobs, job_type, sources):
    """``(jobs, ports)`` of an engine that reads ``sources`` (a dict of :class:`TensorSource`): ``jobs``
    checked (:func:`check_jobs`) as a tuple, and the ports ``ctl`` (:func:`job_signature`) and
    ``<name>_rd`` per source, after checking that every job's ``src`` is one of them."""
    jobs = check_jobs("jobs", jobs, job_type)
    if not isinstance(sources, dict) or not all(isinstance(s, TensorSource) for s in sources.values()):
        raise TypeError(f"sources must be a dict of TensorSource, not {sources!r}")
    for j in jobs:
        if j.src not in sources:
            raise ValueError(f"job source must be one of {sorted(sources)}, not {j.src!r}")
    ports = {"ctl": In(job_signature(len(jobs)))}
    for name, s in sources.items():
        shape = data.ArrayLayout(signed(s.width), s.lanes) if s.lanes > 1 else signed(s.width)
        ports[f"{name}_rd"] = Out(read_signature(s.addr_bits, shape))
    return jobs, ports


def check_jobs(name, jobs, job_type):
    """``jobs`` as a tuple of ``job_type``; TypeError naming ``name`` otherwise."""
    jobs = tuple(jobs) if isinstance(jobs, (list, tuple)) else None
    if not jobs or not all(isinstance(j, job_type) for j in jobs):
        raise TypeError(f"{name} must be a non-empty sequence of {job_type.__name__}, not {jobs!r}")
    return jobs


def by_job(job, table):
    """``table[jj]`` while ``job == jj``, a multiplexer tree on the job counter's bits (flip-flops);
    any value for a job number not in ``table``.

    RAM addresses, write data and operand sources are assigned this way, unconditionally: only
    the enables look at `run` and the job, so no address or data bit is gated to zero (an AND
    per bit in front of every block RAM port) when its port is idle."""
    def tree(keys, bit):
        if len(keys) == 1:
            return table[keys[0]]
        ones = [k for k in keys if (k >> bit) & 1]
        zeros = [k for k in keys if not (k >> bit) & 1]
        if not ones or not zeros:
            return tree(keys, bit - 1)
        return Mux(job[bit], tree(ones, bit - 1), tree(zeros, bit - 1))
    return tree(sorted(table), len(job) - 1)


def ij(c, rows_, cols_, colwise):
    """(i, j) of element number ``c[:log2(rows*cols)]`` in row-major (or column-major) order of a
    rows x cols tensor: bit fields, as both are powers of two.

    The passes count elements on one counter per side, started at ``-rows*cols`` and counted up:
    its low bits are the element number (rows*cols is a power of two), its sign bit (a flip-flop)
    says "elements left". No end-of-row comparators, no (i, j) pair to step."""
    lr, lc = spec.log2(rows_), spec.log2(cols_)
    if colwise:
        return c[:lr], c[lr:lr + lc]
    return c[lc:lc + lr], c[:lc]


def element_word(i, j, rows_, cols_, lanes):
    """``(word, lane)`` of element (i, j) of a row-major rows x cols tensor stored ``lanes`` elements
    per word (bit fields)."""
    log_lanes = spec.log2(lanes)
    return Cat(j[log_lanes:spec.log2(cols_)], i[:spec.log2(rows_)]), j[:log_lanes]


class JobSequencer(wiring.Component):
    """Job sequencing of one engine: WAIT (for its prerequisites) -> SETUP -> RUN -> next job.

    ``prereqs[j]`` lists the bits of ``i_done`` (the done flags of all engines) that job ``j`` waits
    for; ``o_done[j]`` (a flip-flop) rises in the cycle after the engine drives ``ctl.finish`` during
    job ``j``'s run. ``ctl.start`` (a flip-flop) pulses a cycle after the prerequisites are met while
    ``i_running`` and no host load is in flight (``i_load_busy``); ``ctl.run`` (a flip-flop) rises
    :data:`SETUP_CYCLES` cycles later. No path runs from the done flags into the engine's counters.
    ``i_reset`` returns to job 0 and clears ``o_done``.
    """

    def __init__(self, *, prereqs, flags):
        check_int("flags", flags, 1, 64)
        if (not isinstance(prereqs, (list, tuple)) or not prereqs
                or not all(isinstance(p, (list, tuple)) for p in prereqs)):
            raise TypeError(f"prereqs must be a non-empty sequence of flag lists, not {prereqs!r}")
        for pre in prereqs:
            for f in pre:
                check_int("prereqs flag", f, 0, flags - 1)
        self._prereqs = tuple(tuple(p) for p in prereqs)
        super().__init__({
            "i_running": In(1),
            "i_load_busy": In(1),
            "i_done": In(flags),
            "i_reset": In(1),
            "o_done": Out(len(prereqs)),
            "ctl": Out(job_signature(len(prereqs))),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self._prereqs)
        job = Signal(range(n + 1), name="job")
        act, start, run = Signal(name="act"), Signal(name="start"), Signal(name="run")
        setup = Signal(range(SETUP_CYCLES + 1), name="setup")
        can = Signal(name="can")
        with m.Switch(job):
            for jj, pre in enumerate(self._prereqs):
                with m.Case(jj):
                    m.d.comb += can.eq(Cat(*[self.i_done[f] for f in pre]).all() if pre else 1)
        # `act` is high until the job counter has moved on, so `can` always looks at the current job
        m.d.sync += start.eq(self.i_running & ~self.i_load_busy & ~act & ~start & can)
        with m.If(start):
            m.d.sync += [act.eq(1), setup.eq(SETUP_CYCLES)]
        with m.If(act & (setup != 0)):
            m.d.sync += setup.eq(setup - 1)
            with m.If(setup == 1):
                m.d.sync += run.eq(1)
        with m.If(run & self.ctl.finish):
            m.d.sync += [act.eq(0), run.eq(0), job.eq(job + 1)]
            with m.Switch(job):
                for jj in range(n):
                    with m.Case(jj):
                        m.d.sync += self.o_done[jj].eq(1)
        with m.If(self.i_reset):
            m.d.sync += [job.eq(0), act.eq(0), setup.eq(0), run.eq(0), self.o_done.eq(0)]
        m.d.comb += [self.ctl.job.eq(job), self.ctl.start.eq(start), self.ctl.act.eq(act),
                     self.ctl.setup_end.eq(act & (setup == 1)), self.ctl.run.eq(run)]
        return m
