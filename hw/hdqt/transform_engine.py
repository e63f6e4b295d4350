"""The transform engine of the HDQT layer: tensors through the FWHT into the Hadamard scratch buffers."""

from typing import NamedTuple

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..lib.stream import skid_buffer
from ..params import check_int, check_pow2
from . import spec
from .fwht import FWHT
from .host_port import lane
from .jobs import bit_length_of, by_job, element_word, engine_ports, ij, write_signature
from .update import absval

__all__ = ["TransformEngine", "TransformJob"]


class TransformJob(NamedTuple):
    """A job of the transform engine: ``dst = H src`` (or ``src H``) through the FWHT."""
    src: str          # a key of the engine's sources
    rows: int
    cols: int
    colwise: bool     # elements in column-major order (the transform runs along the rows)
    use_nb: bool      # the FWHT of size n_b (else n_o)
    dst: str          # a key of the engine's destinations


class TransformEngine(wiring.Component):
    """Walsh-Hadamard transforms of whole tensors, one element per cycle, bit-exact with
    :func:`sim.hdqt.golden.ref_fwht` (block size ``n_o`` or ``n_b``) along the order the job reads.

    A job reads ``src`` (rows x cols, row-major in its buffer) in row-major or, with ``colwise``,
    column-major order, streams it through an :class:`~hw.hdqt.FWHT` and writes each output element
    back to the same (i, j) of ``dst`` (rows x cols, row-major); the OR of the written magnitudes is
    ``o_<dst>_max`` (cleared at the job's ``ctl.start``, final when the job finishes).

    Ports: ``ctl`` (:func:`~hw.hdqt.jobs.job_signature`; ``ctl.finish`` once the last element and its
    magnitude are written), ``<src>_rd`` per source (:func:`~hw.hdqt.jobs.read_signature`),
    ``<dst>_wr`` per destination (:func:`~hw.hdqt.jobs.write_signature`, all with the same address
    and data, ``en`` for the job's destination) and ``o_<dst>_max``.

    Parameters
    ----------
    sources : dict of str to TensorSource
        (``W_BITS``-bit elements)
    dsts : dict of str to int
        Destination buffers and their address bits.
    jobs : sequence of TransformJob
    n_o, n_b : int
        The FWHT block sizes (one FWHT when equal).
    """

    def __init__(self, *, sources, dsts, jobs, n_o, n_b):
        self._jobs, ports = engine_ports(jobs, TransformJob, sources)
        if any(s.width != spec.W_BITS for s in sources.values()):
            raise ValueError(f"sources must have width {spec.W_BITS}, not {sources!r}")
        if not isinstance(dsts, dict):
            raise TypeError(f"dsts must be a dict of address widths, not {dsts!r}")
        for j in self._jobs:
            if j.dst not in dsts:
                raise ValueError(f"job destination must be one of {sorted(dsts)}, not {j.dst!r}")
        self._n_o = check_pow2("n_o", n_o, spec.MIN_FWHT, spec.MAX_FWHT)
        self._n_b = check_pow2("n_b", n_b, spec.MIN_FWHT, spec.MAX_FWHT)
        self._src, self._dst = dict(sources), {d: check_int("dsts", a, 1, 24) for d, a in dsts.items()}
        self.out_width = spec.W_BITS + spec.log2(max(n_o, n_b))
        for name, abits in self._dst.items():
            ports[f"{name}_wr"] = Out(write_signature(abits, signed(self.out_width)))
            ports[f"o_{name}_max"] = Out(self.out_width)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        jobs, fe, tw = self._jobs, self.ctl, self.out_width
        fw_o = FWHT(n=self._n_o, width=spec.W_BITS)
        m.submodules.fwht_o = fw_o
        if self._n_b == self._n_o:
            fw_b = fw_o
        else:
            fw_b = FWHT(n=self._n_b, width=spec.W_BITS)
            m.submodules.fwht_b = fw_b
        # element counters of the read and the write side (see ij): negative while elements are left
        f_rc = Signal(signed(bit_length_of(max(j.rows * j.cols for j in jobs)) + 1), name="rc")
        f_wc = Signal.like(f_rc, name="wc")
        fv = Signal(name="fv")                  # the read register holds an element for the FWHT
        lane_sel = {s: Signal(range(src.lanes), name=f"{s}_lane") for s, src in self._src.items()
                    if src.lanes > 1}
        use_b = Signal(name="use_b")
        # final long before the job runs (start, setup cycles)
        m.d.sync += use_b.eq(by_job(fe.job, {jj: int(j.use_nb) for jj, j in enumerate(jobs)}))
        f_in_ready = Mux(use_b, fw_b.i_data.ready, fw_o.i_data.ready)
        # the element read goes through a two-entry skid buffer before the FWHT: the memory's output
        # does not feed the FWHT's first adder in the same cycle, and the FWHT's ready does not reach
        # the address counters
        f_src = Signal(signed(spec.W_BITS), name="src")
        # (fv, the skid buffer and the FWHTs hold no element outside a job's run: a job finishes only
        # when all its elements are written, so `run` is not on these handshakes (its fan-out was on
        # the critical path); the FWHTs' outputs are always taken, the write stage never stalls)
        fs_ready, fs_valid, fs_data = skid_buffer(m, "fsk", signed(spec.W_BITS), fv, f_src, f_in_ready)
        f_adv = Signal(name="adv")
        m.d.comb += f_adv.eq(fe.run & (~fv | fs_ready))
        # read addresses per source (the job's order), the source data by the job (see by_job)
        f_addr = {s: {} for s in self._src}
        f_data = {}
        for jj, job in enumerate(jobs):
            lanes_ = self._src[job.src].lanes
            f_addr[job.src][jj] = element_word(*ij(f_rc, job.rows, job.cols, job.colwise),
                                               job.rows, job.cols, lanes_)[0]
            port = getattr(self, f"{job.src}_rd")
            f_data[jj] = lane(port.data, lane_sel[job.src], lanes_) if lanes_ > 1 else port.data
        for s, table in f_addr.items():
            if table:
                m.d.comb += getattr(self, f"{s}_rd").addr.eq(by_job(fe.job, table))
        m.d.comb += f_src.eq(by_job(fe.job, f_data))
        with m.If(fe.run), m.Switch(fe.job):
            for jj, job in enumerate(jobs):
                with m.Case(jj):
                    with m.If(f_adv):
                        m.d.comb += getattr(self, f"{job.src}_rd").en.eq(1)
                        lanes_ = self._src[job.src].lanes
                        if lanes_ > 1:
                            m.d.sync += lane_sel[job.src].eq(element_word(
                                *ij(f_rc, job.rows, job.cols, job.colwise), job.rows, job.cols, lanes_)[1])
        with m.If(f_adv):
            with m.If(f_rc[-1]):
                m.d.sync += [fv.eq(1), f_rc.eq(f_rc + 1)]
            with m.Else():
                m.d.sync += fv.eq(0)
        for fw in [fw_o] if fw_b is fw_o else [fw_o, fw_b]:
            sel = 1 if fw_b is fw_o else (use_b if fw is fw_b else ~use_b)
            m.d.comb += [fw.i_data.valid.eq(fs_valid & sel), fw.i_data.payload.eq(fs_data),
                         fw.o_data.ready.eq(1)]
        f_out = Signal(signed(tw), name="out")
        f_out_v = Signal(name="out_v")
        if fw_b is fw_o:
            m.d.comb += [f_out.eq(fw_o.o_data.payload), f_out_v.eq(fw_o.o_data.valid)]
        else:
            m.d.comb += [f_out.eq(Mux(use_b, fw_b.o_data.payload, fw_o.o_data.payload)),
                         f_out_v.eq(Mux(use_b, fw_b.o_data.valid, fw_o.o_data.valid))]
        # registered write stage: T[(i, j)] <- out, OR |out| into the destination's max
        fo_v, fo_d, fo_a = Signal(name="fo_v"), Signal(signed(tw), name="fo_d"), Signal(16, name="fo_a")
        m.d.sync += [fo_v.eq(f_out_v), fo_d.eq(f_out)]
        m.d.sync += fo_a.eq(by_job(fe.job, {jj: Cat(*reversed(ij(f_wc, j.rows, j.cols, j.colwise)))
                                            for jj, j in enumerate(jobs)}))
        with m.If(f_out_v):
            m.d.sync += f_wc.eq(f_wc + 1)
        # |out| registered before it is ORed into the maximum (the finish waits for it)
        fo_abs = Signal(tw, name="fo_abs")
        fo_v2 = Signal(name="fo_v2")
        m.d.sync += [fo_abs.eq(absval(m, fo_d, tw, "fo_abs_c")), fo_v2.eq(fo_v)]
        with m.Switch(fe.job):
            for jj, job in enumerate(jobs):
                with m.Case(jj):
                    mreg = getattr(self, f"o_{job.dst}_max")
                    m.d.comb += getattr(self, f"{job.dst}_wr").en.eq(fo_v)
                    with m.If(fo_v2):
                        m.d.sync += mreg.eq(mreg | fo_abs)
                    with m.If(fe.start):
                        m.d.sync += mreg.eq(0)
        for d in self._dst:
            port = getattr(self, f"{d}_wr")
            m.d.comb += [port.addr.eq(fo_a), port.data.eq(fo_d)]
        m.d.comb += fe.finish.eq(~f_wc[-1] & ~fo_v & ~fo_v2)
        with m.If(fe.start):
            m.d.sync += fv.eq(0)
            with m.Switch(fe.job):
                for jj, job in enumerate(jobs):
                    with m.Case(jj):
                        m.d.sync += [f_rc.eq(-job.rows * job.cols), f_wc.eq(-job.rows * job.cols)]
        return m
