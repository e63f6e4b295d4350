"""A quantizer engine of the HDQT layer: tensors out of their buffers into a 4-bit operand buffer bank."""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..params import check_int, check_pow2
from . import spec
from .host_port import lane
from .jobs import bit_length_of, by_job, element_word, engine_ports, ij, write_signature
from .quantizer import QUANT_LATENCY, quantize_pipeline
from .shift import TensorShift

__all__ = ["QuantEngine", "QuantJob", "QUANT_BITS"]

QUANT_BITS = 4


class QuantJob(NamedTuple):
    """A job of a quantizer engine: ``src`` (rows x cols, row-major) -> 4-bit operand buffer bank."""
    src: str          # a key of the engine's sources
    rows: int
    cols: int
    stochastic: bool  # stochastic rounding (else round to nearest)
    unsigned: bool    # unsigned levels when i_x_unsigned (else signed)
    transpose: bool   # the operand matrix is src^T
    reduction: int    # length of the matmul's reduction dimension (src's cols, or rows when transposed)
    bank: int         # operand buffer bank


class QuantEngine(wiring.Component):
    """Quantizes whole tensors, one element per cycle, into an operand buffer laid out as the MAC array's
    beats: bit-exact with :func:`hw.hdqt.spec.quantize` at the shift :func:`hw.hdqt.spec.shift_for` of
    the tensor's OR of magnitudes (:class:`~hw.hdqt.shift.TensorShift`).

    Ports:

    * ``ctl`` (:func:`~hw.hdqt.jobs.job_signature`): the job sequencer. The shift of job ``j``'s
      source maximum is taken at ``ctl.setup_end`` into ``o_shifts[j]`` (the maximum must be final
      four cycles before); during ``ctl.run`` the engine reads one element per cycle (row-major) and
      raises ``ctl.finish`` once the last is written.
    * ``<src>_rd`` per source (:func:`~hw.hdqt.jobs.read_signature`) and ``i_<src>_max`` (the OR of
      the source's magnitudes).
    * ``wr`` (:func:`~hw.hdqt.jobs.write_signature`): the operand bank; word ``Cat(word, bank)``,
      ``dst_lanes`` lanes of ``lane_bits`` bits, the element (operand row ``m``, reduction index
      ``k``) in word ``(k/2) + (m/(dst_lanes/2)) * (reduction/2)``, lane ``Cat(k[0], m % (dst_lanes/2))``;
      written ``QUANT_LATENCY + 2`` cycles after its read enable.
    * ``i_rnd``, ``o_rnd_take``: the LFSR word stream for stochastic rounding; a word is taken
      (``o_rnd_take``) for each element of a stochastic job, in element order, two cycles after its read.
    * ``i_x_unsigned``: the signedness of jobs with ``unsigned``.

    Parameters
    ----------
    sources : dict of str to TensorSource
    jobs : sequence of QuantJob
    width : int
        Element width of the quantizer (every source's elements and maxima fit it).
    dst_lanes, lane_bits : int
        Operand word: lanes and their width (8: bytes, 4: packed int4).
    bank_bits : int
        Word address bits of one bank.
    """

    def __init__(self, *, sources, jobs, width, dst_lanes, lane_bits, bank_bits):
        self._jobs, ports = engine_ports(jobs, QuantJob, sources)
        self._w = check_int("width", width, 3, 48)
        self._lanes = check_pow2("dst_lanes", dst_lanes, 2, 32)
        self._lane_bits = check_int("lane_bits", lane_bits, QUANT_BITS, 8)
        self._bank_bits = check_int("bank_bits", bank_bits, 1, 16)
        self._src = dict(sources)
        ports.update({f"i_{name}_max": In(width) for name in self._src})
        ports.update({
            "wr": Out(write_signature(bank_bits + 1, dst_lanes * lane_bits, dst_lanes)),
            "i_rnd": In(spec.RND_BITS),
            "o_rnd_take": Out(1),
            "i_x_unsigned": In(1),
            "o_shifts": Out(data.ArrayLayout(6, len(self._jobs))),
        })
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        jobs, ctl, tw = self._jobs, self.ctl, self._w
        log_lanes = spec.log2(self._lanes) - 1    # operand rows per word: lanes / 2 (two k per row)
        # element counters (see ij) of the issue side and of the write side (same order, advanced per
        # quantized element, so only the valid bit travels along the quantizer's pipeline)
        rc = Signal(signed(bit_length_of(max(j.rows * j.cols for j in jobs)) + 1), name="rc")
        wc = Signal.like(rc, name="wc")
        v = Signal(name="wv")
        issue = Signal(name="issue")
        m.d.comb += issue.eq(ctl.run & rc[-1])
        src = Signal(signed(tw), name="src")
        qmax = Signal(tw, name="max")
        stoch, uns = Signal(name="stoch"), Signal(name="uns")
        dst_word = Signal(self._bank_bits, name="word")
        dst_addr = Signal(self._bank_bits + 1, name="dst")
        dst_lane = Signal(log_lanes + 1, name="lane")
        lane_sel = {s: Signal(range(src_.lanes), name=f"{s}_lane") for s, src_ in self._src.items()
                    if src_.lanes > 1}
        # per job: source read address and data, the destination (see by_job)
        p_addr, p_lane, p_data, d_word, d_bank, d_lane = {}, {}, {}, {}, {}, {}
        for jj, job in enumerate(jobs):
            s, rows_, cols_, red = job.src, job.rows, job.cols, job.reduction
            port, lanes_ = getattr(self, f"{s}_rd"), self._src[s].lanes
            qi, qj = ij(rc, rows_, cols_, False)
            wi, wj = ij(wc, rows_, cols_, False)
            p_addr.setdefault(s, {})[jj], p_lane[jj] = element_word(qi, qj, rows_, cols_, lanes_)
            p_data[jj] = lane(port.data, lane_sel[s], lanes_) if lanes_ > 1 else port.data
            # destination: (m_idx, kr) of the operand matrix
            m_idx, kr = (wj, wi) if job.transpose else (wi, wj)
            m_bits = spec.log2(cols_ if job.transpose else rows_)
            d_word[jj] = Cat(kr[1:spec.log2(red)], m_idx[log_lanes:m_bits])
            d_bank[jj] = Const(job.bank, 1)
            d_lane[jj] = Cat(kr[0], m_idx[:log_lanes])
        for s, table in p_addr.items():
            m.d.comb += getattr(self, f"{s}_rd").addr.eq(by_job(ctl.job, table))
        m.d.comb += [src.eq(by_job(ctl.job, p_data)), dst_word.eq(by_job(ctl.job, d_word)),
                     dst_addr.eq(Cat(dst_word, by_job(ctl.job, d_bank))),
                     dst_lane.eq(by_job(ctl.job, d_lane))]
        with m.Switch(ctl.job):
            for jj, job in enumerate(jobs):
                with m.Case(jj):
                    port, lanes_ = getattr(self, f"{job.src}_rd"), self._src[job.src].lanes
                    if lanes_ > 1:
                        with m.If(issue):
                            m.d.sync += lane_sel[job.src].eq(p_lane[jj])
                    with m.If(ctl.run):
                        m.d.comb += port.en.eq(issue)
                    m.d.sync += [qmax.eq(getattr(self, f"i_{job.src}_max")), stoch.eq(job.stochastic),
                                 uns.eq(self.i_x_unsigned if job.unsigned else 0)]
        # the shift, from free-running registers: job's max -> shift, final after the setup cycles of a
        # job, before its first element (with the registered qmax four registers, within the start
        # flip-flop and the setup cycles)
        m.submodules.shift = tshift = TensorShift(width=tw, bits=QUANT_BITS)
        m.d.comb += [tshift.i_max.eq(qmax), tshift.i_unsigned.eq(uns)]
        shift = tshift.o_shift
        # the element read is registered (src_r, the cycle after the read data) before it enters the
        # quantizer's first stage, where it takes its LFSR word
        v1, v2 = Signal(name="v1"), Signal(name="v2")
        src_r = Signal.like(src, name="src_r")
        m.d.sync += [v1.eq(issue), v2.eq(v1), src_r.eq(src)]
        q = quantize_pipeline(m, 1, src_r, shift, self.i_rnd, stoch, uns, QUANT_BITS, name="qp")
        m.d.comb += self.o_rnd_take.eq(v2 & stoch)
        vk = issue
        for k in range(QUANT_LATENCY + 1):
            nv = Signal(name=f"v_{k}")
            m.d.sync += nv.eq(vk)
            vk = nv
        m.d.sync += v.eq(vk)
        byte = Signal(8, name="byte")
        m.d.comb += byte.eq(q.as_signed())
        m.d.comb += [self.wr.addr.eq(dst_addr), self.wr.data.eq(Cat(*[byte[:self._lane_bits]] * self._lanes)),
                     self.wr.en.eq(Mux(v, 1 << dst_lane, 0))]
        with m.If(v):
            m.d.sync += wc.eq(wc + 1)
        with m.If(issue):
            m.d.sync += rc.eq(rc + 1)
        m.d.comb += ctl.finish.eq(~wc[-1])
        with m.If(ctl.start):
            with m.Switch(ctl.job):
                for jj, job in enumerate(jobs):
                    with m.Case(jj):
                        m.d.sync += [rc.eq(-job.rows * job.cols), wc.eq(-job.rows * job.cols)]
        with m.If(ctl.setup_end):
            with m.Switch(ctl.job):
                for jj in range(len(jobs)):
                    with m.Case(jj):
                        m.d.sync += self.o_shifts[jj].eq(shift)
        return m
