"""The matmul engine of the HDQT layer: int4 matmuls out of the operand buffer banks on the MAC array."""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lib.stream import skid_buffer
from ..mac import spec as mac_spec
from ..mac.array import cmd_layout
from ..mac.array import res_layout as mac_res_layout
from ..params import check_int, check_pow2
from . import spec
from .jobs import bit_length_of, check_jobs, job_signature, read_signature
from .update import dw_row_layout

__all__ = ["MatmulEngine", "MatmulJob", "res_layout", "KIND_Y", "KIND_DX"]

KIND_Y, KIND_DX = 0, 1


def res_layout(cols, acc_width):
    """A result row on the layer's ``o_res``: ``cols`` accumulators, the kind (:data:`KIND_Y` or
    :data:`KIND_DX`) and ``last`` on the matmul's last row."""
    return data.StructLayout({"data": data.ArrayLayout(signed(acc_width), cols), "kind": 1, "last": 1})


class MatmulJob(NamedTuple):
    """A job of the matmul engine: an (m x k) @ (k x n) matmul on the MAC array from one operand bank."""
    m: int
    n: int
    k: int
    bank: int
    result: str       # "y" or "dx" (rows out on o_res, that kind) or "dw" (rows to the update on o_dw)
    x_act: bool = False   # the A operand is Xq (its signedness is i_x_unsigned)


class MatmulEngine(wiring.Component):
    """Drives the :class:`~hw.mac.MacArray`: per job one int4 tile-saturating command per result tile
    (``o_cmd``, ``k/2`` beats each), the beats out of the A and B operand banks (``a_rd``, ``b_rd``;
    a beat is read a cycle ahead and passes a two-entry skid buffer to ``o_act``/``o_wgt``, which share
    ``o_act``'s ready), and the result rows (``i_res``, through a two-entry skid buffer) to ``o_res``
    (Y, dX) or ``o_dw`` (dW: result row ``o``, tile column ``rn``, as ``word = o*(n/cols) + rn``: the W
    word of weight (o, rn*cols) without the updater's chunk bits).

    Operand layout (as :class:`~hw.hdqt.quant_engine.QuantEngine` writes it): for a tile of ``rows``
    A rows starting at row ``tm*rows`` and ``cols`` B columns at ``tn*cols``, beat ``b`` is A word
    ``tm*k/2 + b`` of the bank and B word ``tn*k/2 + b``; tiles run row-major over (tm, tn).

    ``ctl`` (:func:`~hw.hdqt.jobs.job_signature`): ``ctl.finish`` once all the job's result rows are
    taken and ``i_update_busy`` is low.
    """

    def __init__(self, *, rows, cols, acc_width, jobs, a_bits, b_bits, dw_word_bits):
        self._r = check_pow2("rows", rows, 1, 16)
        self._c = check_pow2("cols", cols, 1, 16)
        self._acc = check_int("acc_width", acc_width, mac_spec.MIN_ACC_WIDTH, mac_spec.MAX_ACC_WIDTH)
        self._jobs = check_jobs("jobs", jobs, MatmulJob)
        for j in self._jobs:
            if j.result not in ("y", "dx", "dw"):
                raise ValueError(f"job result must be one of 'y', 'dx', 'dw', not {j.result!r}")
        self._a_bits, self._b_bits = check_int("a_bits", a_bits, 1, 16), check_int("b_bits", b_bits, 1, 16)
        super().__init__({
            "ctl": In(job_signature(len(self._jobs))),
            "a_rd": Out(read_signature(a_bits + 1, rows * 16)),
            "b_rd": Out(read_signature(b_bits + 1, cols * 8)),
            "o_cmd": Out(stream.Signature(cmd_layout(8))),
            "o_act": Out(stream.Signature(rows * 32)),
            "o_wgt": Out(stream.Signature(cols * 8)),
            "i_res": In(stream.Signature(mac_res_layout(rows, cols, acc_width))),
            "o_res": Out(stream.Signature(res_layout(cols, acc_width))),
            "o_dw": Out(stream.Signature(dw_row_layout(cols, acc_width, dw_word_bits))),
            "i_x_unsigned": In(1),
            "i_update_busy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        R, C, me, jobs = self._r, self._c, self.ctl, self._jobs
        m_bank = Signal(name="bank")
        rn_c = Signal(signed(10), name="rn_c")        # result tile columns left in the tile row - 1
        beats_m1 = Signal(8, name="beats_m1")
        # tile commands still to send - 1, counted down through zero: its sign bit (a flip-flop) is
        # "none left", so no compare sits in o_cmd.valid (the MAC sequencer's command register enable)
        cmd_c = Signal(signed(bit_length_of(max(j.m // R * j.n // C for j in jobs)) + 1), name="cmd_c",
                       init=-1)
        rows_left = Signal(range(max(j.m * j.n // C for j in jobs) + 1), name="rows_left")
        # tile-column and beat counters count down through zero: their sign bit (a flip-flop) is the
        # "last" flag, no comparator on the counters' enables
        tb_c, bj_c = Signal(signed(10), name="tb_c"), Signal(signed(9), name="bj_c")
        n_nb_m2 = Signal(signed(10), name="n_nb_m2")     # tile columns - 2
        beats_m2 = Signal(signed(9), name="beats_m2")    # beats per tile - 2
        a_ptr, a_row, b_ptr = Signal(self._a_bits), Signal(self._a_bits), Signal(self._b_bits)
        # beats still to read - 1 (negative: none left)
        # (-1 from reset too: no beat is read outside a job, without `run` in the reader's enable)
        beats_c = Signal(signed(bit_length_of(max(j.m * j.n * j.k // (2 * R * C) for j in jobs)) + 1),
                         name="beats_c", init=-1)
        dw_job, out_job = Signal(name="dw_job"), Signal(name="out_job")
        with m.If(me.start):
            m.d.sync += [a_ptr.eq(0), a_row.eq(0), b_ptr.eq(0)]
            with m.Switch(me.job):
                for jj, job in enumerate(jobs):
                    with m.Case(jj):
                        tiles = (job.m // R) * (job.n // C)
                        m.d.sync += [m_bank.eq(job.bank), beats_m1.eq(job.k // 2 - 1),
                                     n_nb_m2.eq(job.n // C - 2), beats_m2.eq(job.k // 2 - 2),
                                     tb_c.eq(job.n // C - 2), bj_c.eq(job.k // 2 - 2),
                                     rn_c.eq(job.n // C - 2),
                                     cmd_c.eq(tiles - 1), rows_left.eq(tiles * R),
                                     beats_c.eq(tiles * (job.k // 2) - 1),
                                     dw_job.eq(job.result == "dw"), out_job.eq(job.result != "dw")]

        def is_any(pred):
            return Cat(*[me.job == jj for jj, j in enumerate(jobs) if pred(j)], Const(0, 1)).any()

        cmd = Signal(cmd_layout(8), name="cmd")
        m.d.comb += [cmd.mode.eq(mac_spec.MODE_INT4), cmd.act_unsigned.eq(is_any(lambda j: j.x_act)
                                                                         & self.i_x_unsigned),
                     cmd.tile_sat.eq(1), cmd.beats_m1.eq(beats_m1),
                     self.o_cmd.valid.eq(me.run & ~cmd_c[-1]), self.o_cmd.payload.eq(cmd)]
        with m.If(self.o_cmd.valid & self.o_cmd.ready):
            m.d.sync += cmd_c.eq(cmd_c - 1)

        # beats: operand words read one cycle ahead into the read registers (the beat register), then
        # through a two-entry skid buffer into the array, so that no path runs from the array's
        # pipeline enable (its i_act.ready) into the address counters
        beat_v = Signal(name="beat_v")
        act = Signal(R * 32, name="act")
        for r in range(R):
            m.d.comb += act[32 * r:32 * r + 16].eq(self.a_rd.data[16 * r:16 * r + 16])
        # (beat_v and the skid buffer are empty outside a matmul's run: a job ends only once all its
        # results are taken)
        bs_ready, bs_valid, bs_data = skid_buffer(m, "beat", R * 32 + C * 8, beat_v,
                                                  Cat(act, self.b_rd.data), self.o_act.ready)
        # The reader advances whenever the beat register is free; beats_c stops it outside a job.
        # Not gated by `run`: the job's beats may be read in its setup cycles (its bank and
        # counters are set at its start, the banks it reads were written by the jobs before, which
        # have finished); the array takes none before the job's first tile command, which waits
        # for `run`. (With `run` in it, the sequencer's run flip-flop, across the die, was the
        # start of the iCEBreaker HDQT bitstream's worst path at seed 1.)
        b_adv = Signal(name="b_adv")
        m.d.comb += b_adv.eq(~beat_v | bs_ready)
        m.d.comb += [self.a_rd.addr.eq(Cat(a_ptr, m_bank)), self.b_rd.addr.eq(Cat(b_ptr, m_bank))]
        with m.If(b_adv):
            m.d.comb += [self.a_rd.en.eq(1), self.b_rd.en.eq(1)]
            m.d.sync += beat_v.eq(~beats_c[-1])
        # the counters' next values from flip-flops only (the loop flags are sign bits), the advance only
        # as their common enable (nested conditions had put it in front of the data inputs)
        beat_adv = Signal(name="beat_adv")
        a_next = Signal.like(a_ptr, name="a_next")
        m.d.comb += [beat_adv.eq(b_adv & ~beats_c[-1]), a_next.eq(a_ptr + 1)]
        with m.If(beat_adv):
            m.d.sync += [beats_c.eq(beats_c - 1),
                         bj_c.eq(Mux(bj_c[-1], beats_m2, bj_c - 1)),
                         a_ptr.eq(Mux(bj_c[-1] & ~tb_c[-1], a_row, a_next)),
                         b_ptr.eq(Mux(bj_c[-1] & tb_c[-1], 0, b_ptr + 1))]
            with m.If(bj_c[-1]):
                m.d.sync += tb_c.eq(Mux(tb_c[-1], n_nb_m2, tb_c - 1))
                with m.If(tb_c[-1]):
                    m.d.sync += a_row.eq(a_next)
        m.d.comb += [self.o_act.valid.eq(bs_valid), self.o_wgt.valid.eq(bs_valid),
                     self.o_act.payload.eq(bs_data[:R * 32]), self.o_wgt.payload.eq(bs_data[R * 32:])]

        # results: the array's rows pass a two-entry skid buffer, so no path runs from the consumers
        # (host, update) into the array's pipeline enable (its o_res.ready is a flip-flop's inverse)
        res_take = Signal(name="res_take")    # a consumer takes `res`
        res_in_ready, rv0, res = skid_buffer(m, "res", mac_res_layout(R, C, self._acc),
                                             self.i_res.valid & me.run, self.i_res.payload, res_take)
        m.d.comb += self.i_res.ready.eq(me.run & res_in_ready)
        m.d.comb += [self.o_res.valid.eq(me.run & out_job & rv0),
                     self.o_res.payload.data.eq(res.data),
                     self.o_res.payload.kind.eq(is_any(lambda j: j.result == "dx")),
                     self.o_res.payload.last.eq(rows_left == 1)]
        # a dW row's W word: o * n/U + rn * C/U, with o = rm * R + row (the updater adds the chunk)
        rm, rn = Signal(9, name="rm"), Signal(9, name="rn")
        dw_n = max((j.n for j in jobs if j.result == "dw"), default=C)
        m.d.comb += [self.o_dw.valid.eq(me.run & dw_job & rv0), self.o_dw.payload.data.eq(res.data),
                     self.o_dw.payload.word.eq(Cat(rn[:spec.log2(dw_n // C)], res.row[:spec.log2(R)], rm)),
                     res_take.eq(me.run & rv0 & Mux(dw_job, self.o_dw.ready, self.o_res.ready))]
        with m.If(me.start):
            m.d.sync += [rm.eq(0), rn.eq(0)]
        with m.If(res_take):
            m.d.sync += rows_left.eq(rows_left - 1)
            with m.If(res.last):
                with m.If(rn_c[-1]):     # the tile row's last column
                    m.d.sync += [rn.eq(0), rm.eq(rm + 1), rn_c.eq(n_nb_m2)]
                with m.Else():
                    m.d.sync += [rn.eq(rn + 1), rn_c.eq(rn_c - 1)]
        m.d.comb += me.finish.eq((rows_left == 0) & ~self.i_update_busy)
        return m
