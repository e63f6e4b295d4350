"""The HDQT weight updater: SGD on the master weights, ``W -= round(dW * 2**u)``, U weights per cycle."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mac import spec as mac_spec
from ..params import check_int, check_pow2
from . import spec

__all__ = ["WeightUpdater", "UPDATE_LATENCY", "dw_row_layout", "absval"]

UPDATE_LATENCY = 8   # pipeline stages, from a chunk's cycle to the cycle it updates the W maximum


def absval(m, v, width, name):
    """``|v|`` as a ``width``-bit signal ``name`` (combinational)."""
    a = Signal(width, name=name)
    m.d.comb += a.eq(Mux(v[-1], -v, v))
    return a


def dw_row_layout(cols, acc_width, word_bits):
    """A row of ``cols`` dW results and the W word index of its first ``U`` weights, without the chunk
    bits (the updater appends the chunk number below it)."""
    return data.StructLayout({"data": data.ArrayLayout(signed(acc_width), cols), "word": word_bits})


class WeightUpdater(wiring.Component):
    """``W[w] <- sat(W[w] - rshift_rtn(dW, -u))`` for a row of ``cols`` dW results, ``lanes`` (U) weights
    per cycle, bit-exact with :func:`hw.hdqt.spec.rshift_rtn` / :func:`hw.hdqt.spec.sat` and the update of
    :func:`sim.hdqt.golden.ref_layer_step`.

    ``u = clamp(i_exp_base + i_shift_dy + i_shift_x, -acc_width, W_BITS)`` is formed in free-running
    registers (three cycles from the inputs to the shift amounts; the inputs must be steady by then).
    One right shifter serves both directions (``|dW| << u == (|dW| << 16) >> (16 - u)``), and the
    shifted update is clamped to 17 bits (a larger one saturates a 16-bit weight whatever its value).

    Interface:

    * ``i_dw`` (stream of :func:`dw_row_layout`): a row of ``cols`` results, leaving in ``cols / lanes``
      chunks of ``lanes`` results, one chunk per cycle while ``valid``; ``ready`` is high in the cycle of
      the last chunk (it does not look at ``valid``). Chunk ``s`` updates the W word
      ``Cat(s, payload.word)``. The chunk's results are registered from the payload every cycle.
    * W read port: the chunk's W word is read in stage 2 (``o_w_rd_en``/``o_w_rd_addr``) and its data
      (``i_w_rd_data``, ``lanes`` weights, the read port's output a cycle later) registered in stage 3.
    * W write port: stage 7 writes the saturated word (``o_w_wr_en``, ``o_w_wr_addr``, ``o_w_wr_data``);
      ``o_clip`` is high with it when any of its weights saturated.
    * ``o_w_abs`` with ``o_w_abs_valid`` (stage 8): the OR of the written weights' magnitudes, for the
      maximum of W that sets the next step's shift.
    * ``o_busy``: a chunk is in the pipeline.

    The caller must not read a W word that a chunk in stages 3..7 is updating (each word is updated once
    per step, so reading it a stage early reads the same value).
    """

    def __init__(self, *, cols, lanes, acc_width, words):
        check_pow2("cols", cols, 1, 16)
        check_pow2("lanes", lanes, 1, cols)
        check_int("acc_width", acc_width, mac_spec.MIN_ACC_WIDTH, mac_spec.MAX_ACC_WIDTH)
        check_pow2("words", words, cols // lanes)
        self._c, self._u, self._acc = cols, lanes, acc_width
        self._wbits = spec.log2(words)
        self.n_sub = cols // lanes
        w_word = data.ArrayLayout(signed(spec.W_BITS), lanes)
        super().__init__({
            "i_exp_base": In(signed(16)),
            "i_shift_dy": In(6),
            "i_shift_x": In(6),
            "i_dw": In(stream.Signature(dw_row_layout(cols, acc_width, self._wbits - spec.log2(self.n_sub)))),
            "o_w_rd_en": Out(1),
            "o_w_rd_addr": Out(self._wbits),
            "i_w_rd_data": In(w_word),
            "o_w_wr_en": Out(1),
            "o_w_wr_addr": Out(self._wbits),
            "o_w_wr_data": Out(w_word),
            "o_clip": Out(1),
            "o_w_abs": Out(16),
            "o_w_abs_valid": Out(1),
            "o_busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        U, acc, n_sub, wbits = self._u, self._acc, self.n_sub, self._wbits
        # u from free-running registers. One right shifter for both directions:
        # |dW| << u == (|dW| << 16) >> (16 - u), and (|dW| + half) >> r == ((|dW| + half) << 16) >> (16 + r).
        u_raw = Signal(signed(8))
        u_sh = Signal(signed(8))
        u_amt = Signal(7)
        u_half = Signal(acc)
        u_rsh = Signal(6)        # -u when u < 0 (the right shift), else 0
        m.d.sync += [u_raw.eq(self.i_exp_base + self.i_shift_dy + self.i_shift_x),
                     u_sh.eq(Mux(u_raw > spec.W_BITS, spec.W_BITS, Mux(u_raw < -acc, -acc, u_raw))),
                     u_amt.eq(spec.W_BITS - u_sh),
                     u_rsh.eq(Mux(u_sh[-1], (-u_sh)[:6], 0)),
                     u_half.eq((1 << u_rsh) >> 1)]
        # the row stays on i_dw while it leaves in n_sub chunks of U lanes (taken with the last chunk)
        usub = Signal(range(n_sub))
        m.d.comb += self.i_dw.ready.eq(usub == n_sub - 1)
        # Only the valid bits and the sub-word count are reset: every data register below is read
        # only behind its valid bit, so a reset need not reach it (the group's reset then drives
        # fewer flip-flops: it was the iCEBreaker HDQT build's worst path, and reset-less
        # flip-flops pack with any logic cell)
        upd_v = [Signal(name=f"upd_v{s}") for s in range(UPDATE_LATENCY)]
        upd_a = [Signal(wbits, name=f"upd_a{s}", reset_less=True) for s in range(UPDATE_LATENCY)]
        # the chunk's results as sign and one's-complement magnitude (dw ^ sign): stage 1 then needs one
        # adder, |dw| + half = (dw ^ sign) + half + sign, the sign entering as the carry
        chunk_n = [Signal(name=f"u_chunk_n{lu}", reset_less=True) for lu in range(U)]
        chunk_x = [Signal(acc, name=f"u_chunk_x{lu}", reset_less=True) for lu in range(U)]
        with m.Switch(usub):
            for sub in range(n_sub):
                with m.Case(sub):
                    for lu in range(U):
                        dw = self.i_dw.payload.data[sub * U + lu]
                        m.d.sync += [chunk_n[lu].eq(dw[-1]),
                                     chunk_x[lu].eq(dw.as_unsigned() ^ dw[-1].replicate(acc))]
        m.d.sync += [upd_v[0].eq(self.i_dw.valid), upd_a[0].eq(Cat(usub, self.i_dw.payload.word))]
        with m.If(self.i_dw.valid):
            m.d.sync += usub.eq(Mux(usub == n_sub - 1, 0, usub + 1))
        for s in range(1, UPDATE_LATENCY):
            m.d.sync += [upd_v[s].eq(upd_v[s - 1]), upd_a[s].eq(upd_a[s - 1])]
        lim = spec.acc_limit(spec.W_BITS)
        dmax = (1 << (spec.W_BITS + 1)) - 1   # a larger |delta| saturates W whatever its value
        # the W word is read in stage 2 and its data registered (w_q) in stage 3, so the block RAM's
        # clock-to-out is not in front of stage 5's subtraction
        m.d.comb += [self.o_w_rd_en.eq(upd_v[2]), self.o_w_rd_addr.eq(upd_a[2])]
        w_q = Signal.like(self.i_w_rd_data, name="u_w_q", reset_less=True)
        m.d.sync += w_q.eq(self.i_w_rd_data)
        clipped_any = []
        sat_row = []
        for c in range(U):
            # stage 1: the rounded magnitude before the shift: |dw| + half, one carry chain: the sign is
            # the carry into bit 0, entered as a bit below both operands (s + s carries s)
            neg1 = Signal(name=f"u_neg1_{c}", reset_less=True)
            mag1 = Signal(acc + 1, name=f"u_mag1_{c}", reset_less=True)
            mag_sum = Signal(acc + 2, name=f"u_magsum_{c}")
            m.d.comb += mag_sum.eq(Cat(chunk_n[c], chunk_x[c]) + Cat(chunk_n[c], u_half))
            m.d.sync += [neg1.eq(chunk_n[c]), mag1.eq(mag_sum[1:])]
            # stages 2 to 4: the shift (by a multiple of 8, then by 0..7), clamped to 17 bits (an update
            # that large saturates W either way)
            sw = acc + 1 + spec.W_BITS
            neg2 = Signal(name=f"u_neg2_{c}", reset_less=True)
            big2 = Signal(name=f"u_big2_{c}", reset_less=True)
            sh2 = Signal(spec.W_BITS + 8, name=f"u_sh2_{c}", reset_less=True)
            coarse = Signal(sw, name=f"u_coarse_{c}")
            m.d.comb += coarse.eq(Cat(Signal(spec.W_BITS), mag1) >> Cat(Signal(3), u_amt[3:]))
            # bits at 24 and above stay at 17 and above after a shift by at most 7
            m.d.sync += [neg2.eq(neg1), sh2.eq(coarse[:spec.W_BITS + 8]),
                         big2.eq(coarse[spec.W_BITS + 8:].any())]
            fine = Signal(spec.W_BITS + 8, name=f"u_fine_{c}", reset_less=True)
            neg3 = Signal(name=f"u_neg3_{c}", reset_less=True)
            big3 = Signal(name=f"u_big3_{c}", reset_less=True)
            m.d.sync += [fine.eq(sh2 >> u_amt[:3]), neg3.eq(neg2), big3.eq(big2)]
            neg4 = Signal(name=f"u_neg4_{c}", reset_less=True)
            mag4 = Signal(spec.W_BITS + 1, name=f"u_mag4_{c}", reset_less=True)
            m.d.sync += [neg4.eq(neg3),
                         mag4.eq(Mux(big3 | fine[spec.W_BITS + 1:].any(), dmax, fine[:spec.W_BITS + 1]))]
            # stage 5: W - delta (W read in stage 2, registered in stage 3)
            neww = Signal(signed(spec.W_BITS + 3), name=f"u_new_{c}", reset_less=True)
            m.d.sync += neww.eq(Mux(neg4, w_q[c] + mag4, w_q[c] - mag4))
            # stage 6: saturate
            sat4 = Signal(signed(16), name=f"u_sat_{c}", reset_less=True)
            clip4 = Signal(name=f"u_clip_{c}", reset_less=True)
            m.d.sync += [clip4.eq((neww > lim) | (neww < -lim)),
                         sat4.eq(Mux(neww > lim, lim, Mux(neww < -lim, -lim, neww)))]
            clipped_any.append(clip4)
            sat_row.append(sat4)
        # stage 7 (upd_v[6]): write back; stage 8: OR of |W| for the next step's quantization
        m.d.comb += [self.o_w_wr_en.eq(upd_v[6]), self.o_w_wr_addr.eq(upd_a[6]),
                     self.o_w_wr_data.eq(Cat(*sat_row)),
                     self.o_clip.eq(upd_v[6] & Cat(*clipped_any).any())]
        abs5 = [Signal(16, name=f"u_abs5_{c}", reset_less=True) for c in range(U)]
        m.d.sync += [a5.eq(absval(m, s4, 16, f"u_abs_{c}")) for c, (a5, s4) in enumerate(zip(abs5, sat_row))]
        or5 = 0
        for c in range(U):
            or5 = or5 | abs5[c]
        m.d.comb += [self.o_w_abs.eq(or5), self.o_w_abs_valid.eq(upd_v[7]),
                     self.o_busy.eq(Cat(*upd_v).any())]
        return m
