"""HDQT layer controller: one training step of a linear layer out of on-chip buffers, on the MAC array."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..mac import spec as mac_spec
from ..mac.array import MacArray, cmd_layout
from ..params import check_bool, check_choice, check_int, check_pow2
from . import spec
from .fwht import FWHT
from .quantizer import QUANT_LATENCY, bit_length, quantize_pipeline

__all__ = ["HdqtLayer", "Phase", "load_layout", "res_layout", "BUF_X", "BUF_W", "BUF_DY",
           "KIND_Y", "KIND_DX"]

BUF_X, BUF_W, BUF_DY = 0, 1, 2
KIND_Y, KIND_DX = 0, 1


def load_layout():
    return data.StructLayout({"buf": 2, "addr": 16, "data": signed(spec.W_BITS)})


def res_layout(cols, acc_width):
    return data.StructLayout({"data": data.ArrayLayout(signed(acc_width), cols), "kind": 1, "last": 1})


class Phase(enum.Enum, shape=4):
    """Controller phases, in step order (the order fixes the LFSR words, see :mod:`sim.hdqt.golden`)."""
    IDLE = 0
    Q_X = 1       # X -> Xq (round to nearest; unsigned when i_x_unsigned) into operand buffer A
    Q_W = 2       # W -> Wq (round to nearest) into operand buffer B
    MM_Y = 3      # Y = Xq Wq^T on the MAC array, results out on o_res (kind Y)
    H_W = 4       # T = H_O W (per column of W), max|T| tracked
    Q_WH = 5      # T -> W'q^T (round to nearest) into B
    H_DY1 = 6     # T = dY H_O (per row of dY)
    Q_DY1 = 7     # T -> dY'q (stochastic) into A
    MM_DX = 8     # dX = dY'q W'q, out on o_res (kind dX)
    H_DY2 = 9     # T = H_B dY (per column)
    Q_DY2 = 10    # T -> dY''q^T (stochastic) into A
    H_X = 11      # T = H_B X (per column)
    Q_XH = 12     # T -> X''q^T (stochastic) into B
    MM_DW = 13    # dW = dY''q^T X''q, each result updates W in place


class HdqtLayer(wiring.Component):
    """One HDQT training step of ``Y = X W^T`` (X: B x K, W: O x K), bit-exact with
    :func:`sim.hdqt.golden.ref_layer_step` (4-bit operands, the MAC array's tile-saturating int4 mode).

    Organisation: three tensor buffers (``X`` B x K, master weights ``W`` O x K in Q2.13 by default,
    ``dY`` B x O; 16-bit, row-major), a Hadamard scratch buffer ``T`` (the widest transformed tensor),
    two 4-bit operand buffers laid out as the MAC array's beats (``A``: ``rows`` activation rows x 2
    lanes per word; ``B``: ``cols`` packed int4 bytes per word, so one word of each is one beat), one
    or two :class:`~hw.hdqt.FWHT` (block sizes ``n_O`` and ``n_B``), the quantizer arithmetic
    (:func:`~hw.hdqt.quantizer.quantize_element`) with its LFSR, and a :class:`~hw.mac.MacArray`.
    The step runs the phases of :class:`Phase` one after the other; each pass streams one element per
    cycle, each matmul streams one beat per cycle into the array.

    Cost (measured, ``bench/bench_hdqt.py``): a 64 x 64 step at batch 32 on a 4 x 4 array takes about
    41.3k cycles: 14.4k in the three matmuls (1.17 x their MAC-count bound of 12.3k) and 26.9k in the ten
    element-per-cycle passes (quantize X and W once each; FWHT + quantize of W, dY twice and X). The
    phases run one after the other; overlapping the passes with the matmuls (double-buffered operand
    buffers, a second scratch buffer) is what it would take to approach the MAC bound on arrays this
    large.

    Maxima: ``max|X|`` and ``max|W|`` are tracked while the tensors are loaded and (for W) while the
    update writes it, so the forward quantizations need one pass; ``max|T|`` is tracked while an FWHT
    pass writes ``T``.

    Host protocol: load tensors on ``i_load`` while idle (a load of element 0 of X or W restarts that
    tensor's maximum: load whole tensors, element 0 first); set ``i_x_unsigned`` and ``i_exp_base``;
    pulse ``i_start``. ``o_res`` then carries Y (B/rows x O/cols tiles, ``rows`` rows each, row-major
    tile order) and dX (B x K likewise), each row ``cols`` accumulators; W is updated in place (read it
    back with ``i_rd``/``o_rd``). ``o_busy`` falls when the step is done. ``o_shifts`` holds the six
    quantizer shifts of the step (x, w, w', dy', dy'', x'') so the host can form exponents; the update
    shift is ``clamp(i_exp_base + shift_dy'' + shift_x'', -acc_width, 16)`` with
    ``i_exp_base = dy_exp + x_exp - lr_shift + w_frac - log2 n_B``.

    The stochastic-rounding LFSR starts from :data:`~hw.hdqt.spec.LFSR_SEED` at reset and carries its state
    from step to step; ``i_lfsr_load`` (while idle) loads ``i_lfsr_seed`` into it (0 loads 1), e.g. to
    replay a recorded step.

    Sticky flags (cleared by ``i_clear``): ``o_w_saturated`` (an update saturated a master weight),
    ``o_mac_overflow`` (the array's wide accumulator saturated).

    Parameters
    ----------
    batch, k_dim, o_dim : int
        B, K, O: powers of two from ``2*max(rows, cols)`` to 256 (B and O also set the FWHT sizes).
    had_cap : int
        Largest Hadamard block, a power of two 2..128.
    rows, cols : int
        MAC array size, powers of two 1..16.
    acc_width, tile_bits : int
        MAC array accumulator and tile-accumulator widths (tile_k is 32).
    backend : str
        MAC array arithmetic backend ("lut", "ice40", "ecp5").
    primitives : bool
        With a DSP backend: vendor primitives (synthesis) or behavioural models (simulation).

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, batch=32, k_dim=64, o_dim=64, had_cap=64, rows=4, cols=4, acc_width=24, tile_bits=8,
                 backend="lut", primitives=True):
        self._r = check_pow2("rows", rows, 1, 16)
        self._c = check_pow2("cols", cols, 1, 16)
        lo = 2 * max(rows, cols)
        self._b = check_pow2("batch", batch, lo, 256)
        self._k = check_pow2("k_dim", k_dim, lo, 256)
        self._o = check_pow2("o_dim", o_dim, lo, 256)
        self._cap = check_pow2("had_cap", had_cap, spec.MIN_FWHT, spec.MAX_FWHT)
        self._acc = check_int("acc_width", acc_width, mac_spec.MIN_ACC_WIDTH, mac_spec.MAX_ACC_WIDTH)
        self._tile_bits = check_int("tile_bits", tile_bits, 2, min(16, acc_width - 1))
        self._backend = check_choice("backend", backend, ("lut", "ice40", "ecp5"))
        self._primitives = check_bool("primitives", primitives)
        self.n_o = spec.hadamard_block(o_dim, had_cap)
        self.n_b = spec.hadamard_block(batch, had_cap)
        super().__init__({
            "i_load": In(stream.Signature(load_layout())),
            "i_rd": In(stream.Signature(16)),
            "o_rd": Out(stream.Signature(signed(spec.W_BITS))),
            "i_start": In(1),
            "i_x_unsigned": In(1),
            "i_exp_base": In(signed(16)),
            "o_res": Out(stream.Signature(res_layout(cols, acc_width))),
            "o_busy": Out(1),
            "o_phase": Out(Phase),
            "o_shifts": Out(data.ArrayLayout(6, 6)),
            "i_lfsr_seed": In(spec.RND_BITS),
            "i_lfsr_load": In(1),
            "i_clear": In(1),
            "o_w_saturated": Out(1),
            "o_mac_overflow": Out(1),
        })

    def mac_macs(self):
        """MACs of one step (three B x K x O matmuls) and the array's peak MACs per cycle (int4)."""
        return 3 * self._b * self._k * self._o, self._r * self._c * 2

    def elaborate(self, platform):  # noqa: C901 - one state machine, kept in one place on purpose
        m = Module()
        B, K, O, R, C = self._b, self._k, self._o, self._r, self._c
        log_r, log_c = spec.log2(R), spec.log2(C)
        tw = spec.W_BITS + spec.log2(max(self.n_o, self.n_b))  # T element width

        m.submodules.mac = mac = MacArray(rows=R, cols=C, acc_width=self._acc, tile_k=32,
                                          tile_bits=self._tile_bits, count_bits=8, backend=self._backend,
                                          primitives=self._primitives)
        fw_o = FWHT(n=self.n_o, width=spec.W_BITS)
        m.submodules.fwht_o = fw_o
        if self.n_b == self.n_o:
            fw_b = fw_o
        else:
            fw_b = FWHT(n=self.n_b, width=spec.W_BITS)
            m.submodules.fwht_b = fw_b
        from ..lfsr import GaloisLFSR
        m.submodules.lfsr = lfsr = GaloisLFSR(width=spec.RND_BITS, seed=spec.LFSR_SEED)

        def mem(name, shape, depth):
            mm = Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mm
            return mm

        mx = mem("buf_x", signed(16), B * K)
        mw = mem("buf_w", signed(16), O * K)
        mdy = mem("buf_dy", signed(16), B * O)
        mt = mem("buf_t", signed(tw), max(B * K, O * K, B * O))
        depth_a = max(B // R * K // 2, B // R * O // 2, O // R * B // 2)
        depth_b = max(O // C * K // 2, K // C * O // 2, K // C * B // 2)
        ma = mem("op_a", R * 16, depth_a)
        mb = mem("op_b", C * 8, depth_b)
        x_rd, x_wr = mx.read_port(), mx.write_port()
        w_rd, w_wr = mw.read_port(), mw.write_port()
        dy_rd, dy_wr = mdy.read_port(), mdy.write_port()
        t_rd, t_wr = mt.read_port(), mt.write_port()
        a_rd, a_wr = ma.read_port(), ma.write_port(granularity=8)
        b_rd, b_wr = mb.read_port(), mb.write_port(granularity=4)
        # A read port's enable defaults to 1: hold every read register unless a phase reads.
        m.d.comb += [p.en.eq(0) for p in (x_rd, w_rd, dy_rd, t_rd, a_rd, b_rd)]

        phase = Signal(Phase)
        m.d.comb += [lfsr.i_seed.eq(self.i_lfsr_seed),
                     lfsr.i_load.eq(self.i_lfsr_load & (phase == Phase.IDLE))]
        m.d.comb += [self.o_phase.eq(phase), self.o_busy.eq(phase != Phase.IDLE)]
        shifts = Signal(data.ArrayLayout(6, 6))
        m.d.comb += self.o_shifts.eq(shifts)
        x_uns = Signal()
        exp_base = Signal(signed(16))

        max_x = Signal(16)
        max_w = Signal(16)
        max_w_next = Signal(16)
        max_t = Signal(tw)

        def absval(v, width, name):
            a = Signal(width, name=name)
            m.d.comb += a.eq(Mux(v[-1], -v, v))
            return a

        # ---- loads and read-back (idle only) -------------------------------------------------------
        idle = phase == Phase.IDLE
        ld = self.i_load.payload
        m.d.comb += self.i_load.ready.eq(idle)
        ld_abs = absval(ld.data, 16, "ld_abs")
        ld_abs_x = Signal(16)
        m.d.comb += ld_abs_x.eq(Mux(ld.data[-1] & self.i_x_unsigned, 0, ld_abs))
        with m.If(self.i_load.valid & idle):
            with m.Switch(ld.buf):
                with m.Case(BUF_X):
                    m.d.comb += [x_wr.en.eq(1), x_wr.addr.eq(ld.addr), x_wr.data.eq(ld.data)]
                    m.d.sync += max_x.eq(Mux((ld.addr == 0) | (ld_abs_x > max_x), ld_abs_x, max_x))
                with m.Case(BUF_W):
                    m.d.comb += [w_wr.en.eq(1), w_wr.addr.eq(ld.addr), w_wr.data.eq(ld.data)]
                    m.d.sync += max_w.eq(Mux((ld.addr == 0) | (ld_abs > max_w), ld_abs, max_w))
                with m.Case(BUF_DY):
                    m.d.comb += [dy_wr.en.eq(1), dy_wr.addr.eq(ld.addr), dy_wr.data.eq(ld.data)]

        rd_v = Signal()
        m.d.comb += [self.i_rd.ready.eq(idle & (~rd_v | self.o_rd.ready)),
                     self.o_rd.valid.eq(idle & rd_v), self.o_rd.payload.eq(w_rd.data)]
        with m.If(idle):
            m.d.comb += [w_rd.addr.eq(self.i_rd.payload), w_rd.en.eq(~rd_v | self.o_rd.ready)]
            with m.If(~rd_v | self.o_rd.ready):
                m.d.sync += rd_v.eq(self.i_rd.valid)

        # ---- pass counters: element (i, j) of a rows x cols source, e-th element --------------------
        i = Signal(9)
        j = Signal(9)
        cnt = Signal(range(max(B * K, O * K, B * O) + 1))   # elements issued
        done_cnt = Signal.like(cnt)                          # elements written
        pass_rows = Signal(9)
        pass_cols = Signal(9)
        colwise = Signal()
        # All dimensions are powers of two: addresses are shifts by a registered log2, never products
        # (generic multipliers would not fit the iCE40).
        cols_log = Signal(4)
        total = Signal.like(cnt)                             # set per pass (a constant of the phase)
        src_addr = Signal(16)
        m.d.comb += src_addr.eq((i << cols_log) + j)

        def step_ij():
            """Advance (i, j) in row-major (or, for colwise, column-major) order."""
            with m.If(colwise):
                with m.If(i == pass_rows - 1):
                    m.d.sync += [i.eq(0), j.eq(j + 1)]
                with m.Else():
                    m.d.sync += i.eq(i + 1)
            with m.Else():
                with m.If(j == pass_cols - 1):
                    m.d.sync += [j.eq(0), i.eq(i + 1)]
                with m.Else():
                    m.d.sync += j.eq(j + 1)

        # second (i, j) for the write side of FWHT passes (same traversal, advanced per output)
        wi = Signal(9)
        wj = Signal(9)
        w_addr = Signal(16)
        m.d.comb += w_addr.eq((wi << cols_log) + wj)

        def step_wij():
            with m.If(colwise):
                with m.If(wi == pass_rows - 1):
                    m.d.sync += [wi.eq(0), wj.eq(wj + 1)]
                with m.Else():
                    m.d.sync += wi.eq(wi + 1)
            with m.Else():
                with m.If(wj == pass_cols - 1):
                    m.d.sync += [wj.eq(0), wi.eq(wi + 1)]
                with m.Else():
                    m.d.sync += wj.eq(wj + 1)

        # ---- FWHT passes: source -> FWHT -> T, max|T| ---------------------------------------------
        h_phase = Signal()
        m.d.comb += h_phase.eq(phase.as_value().matches(Phase.H_W, Phase.H_DY1, Phase.H_DY2, Phase.H_X))
        use_b = Signal()
        m.d.comb += use_b.eq(phase.as_value().matches(Phase.H_DY2, Phase.H_X))
        fv = Signal()                   # the read register holds an element for the FWHT
        f_in_ready = Mux(use_b, fw_b.i_data.ready, fw_o.i_data.ready)
        f_adv = Signal()
        m.d.comb += f_adv.eq(h_phase & (~fv | f_in_ready))
        src_data = Signal(signed(16))
        with m.Switch(phase):
            with m.Case(Phase.H_W, Phase.Q_W):
                m.d.comb += src_data.eq(w_rd.data)
            with m.Case(Phase.H_DY1, Phase.H_DY2):
                m.d.comb += src_data.eq(dy_rd.data)
            with m.Default():
                m.d.comb += src_data.eq(x_rd.data)
        fw_list = [fw_o] if fw_b is fw_o else [fw_o, fw_b]
        for fw in fw_list:
            sel = 1 if fw_b is fw_o else (use_b if fw is fw_b else ~use_b)
            m.d.comb += [fw.i_data.valid.eq(h_phase & fv & sel), fw.i_data.payload.eq(src_data)]
        f_out = Signal(signed(tw))
        f_out_v = Signal()
        if fw_b is fw_o:
            m.d.comb += [f_out.eq(fw_o.o_data.payload), f_out_v.eq(fw_o.o_data.valid),
                         fw_o.o_data.ready.eq(h_phase)]
        else:
            m.d.comb += [f_out.eq(Mux(use_b, fw_b.o_data.payload, fw_o.o_data.payload)),
                         f_out_v.eq(Mux(use_b, fw_b.o_data.valid, fw_o.o_data.valid)),
                         fw_o.o_data.ready.eq(h_phase & ~use_b), fw_b.o_data.ready.eq(h_phase & use_b)]
        with m.If(f_adv):
            m.d.comb += [x_rd.addr.eq(src_addr), w_rd.addr.eq(src_addr), dy_rd.addr.eq(src_addr),
                         x_rd.en.eq(1), w_rd.en.eq(1), dy_rd.en.eq(1)]
            with m.If(cnt < total):
                m.d.sync += [fv.eq(1), cnt.eq(cnt + 1)]
                step_ij()
            with m.Else():
                m.d.sync += fv.eq(0)
        f_abs = absval(f_out, tw, "f_abs")
        with m.If(h_phase & f_out_v):
            m.d.comb += [t_wr.en.eq(1), t_wr.addr.eq(w_addr), t_wr.data.eq(f_out)]
            m.d.sync += [done_cnt.eq(done_cnt + 1), max_t.eq(Mux(f_abs > max_t, f_abs, max_t))]
            step_wij()

        # ---- quantize passes: source (X, W or T) -> 4-bit operand buffer ---------------------------
        q_phase = Signal()
        m.d.comb += q_phase.eq(phase.as_value().matches(Phase.Q_X, Phase.Q_W, Phase.Q_WH, Phase.Q_DY1,
                                                        Phase.Q_DY2, Phase.Q_XH))
        q_v = Signal()
        qi = Signal(9)
        qj = Signal(9)
        with m.If(q_phase):
            m.d.comb += [x_rd.addr.eq(src_addr), w_rd.addr.eq(src_addr), t_rd.addr.eq(src_addr),
                         x_rd.en.eq(1), w_rd.en.eq(1), t_rd.en.eq(1)]
            m.d.sync += [q_v.eq(cnt < total), qi.eq(i), qj.eq(j)]
            with m.If(cnt < total):
                m.d.sync += cnt.eq(cnt + 1)
                step_ij()
        q_src = Signal(signed(tw))
        q_max = Signal(tw)
        stochastic = Signal()
        unsigned = Signal()
        with m.Switch(phase):
            with m.Case(Phase.Q_X):
                m.d.comb += [q_src.eq(x_rd.data), q_max.eq(max_x), unsigned.eq(x_uns)]
            with m.Case(Phase.Q_W):
                m.d.comb += [q_src.eq(w_rd.data), q_max.eq(max_w)]
            with m.Default():
                m.d.comb += [q_src.eq(t_rd.data), q_max.eq(max_t),
                             stochastic.eq(phase.as_value().matches(Phase.Q_DY1, Phase.Q_DY2, Phase.Q_XH))]
        blen = bit_length(m, q_max, "q_bitlen")
        qb = Mux(unsigned, spec.qbits(4, True), spec.qbits(4, False))
        q_shift = Signal(6)
        m.d.comb += q_shift.eq(Mux(blen > qb, blen - qb, 0))
        # The quantizer's register stages run freely (a pass never stalls); the element's coordinates
        # and valid bit travel alongside. The LFSR word is taken as the element enters the first stage.
        q = quantize_pipeline(m, 1, q_src, q_shift, lfsr.o_random.payload, stochastic, unsigned, 4)
        m.d.comb += lfsr.o_random.ready.eq(q_phase & q_v & stochastic)
        q_wv = q_v
        for _ in range(QUANT_LATENCY):
            nv, ni, nj = Signal(), Signal(9), Signal(9)
            m.d.sync += [nv.eq(q_wv & q_phase), ni.eq(qi), nj.eq(qj)]
            q_wv, qi, qj = nv, ni, nj

        # destination: (m_idx, kr) of the operand matrix, transposed for the Hadamard-along-batch passes
        transpose = Signal()
        m.d.comb += transpose.eq(phase.as_value().matches(Phase.Q_WH, Phase.Q_DY2, Phase.Q_XH))
        to_b = Signal()
        m.d.comb += to_b.eq(phase.as_value().matches(Phase.Q_W, Phase.Q_WH, Phase.Q_XH))
        m_idx = Mux(transpose, qj, qi)
        kr = Mux(transpose, qi, qj)
        red_log = Signal(4)   # log2 of the reduction length of the destination matmul, minus 1 (beats)
        with m.Switch(phase):
            with m.Case(Phase.Q_X, Phase.Q_W):
                m.d.comb += red_log.eq(spec.log2(K) - 1)
            with m.Case(Phase.Q_WH, Phase.Q_DY1):
                m.d.comb += red_log.eq(spec.log2(O) - 1)
            with m.Default():
                m.d.comb += red_log.eq(spec.log2(B) - 1)
        byte = Signal(8)
        m.d.comb += byte.eq(q.as_signed())
        a_word = Signal(16)
        b_word = Signal(16)
        m.d.comb += [a_word.eq(((m_idx >> log_r) << red_log) + (kr >> 1)),
                     b_word.eq(((m_idx >> log_c) << red_log) + (kr >> 1))]
        a_lane = Signal(range(2 * R))
        b_lane = Signal(range(2 * C))
        m.d.comb += [a_lane.eq(Cat(kr[0], m_idx[:log_r])), b_lane.eq(Cat(kr[0], m_idx[:log_c]))]
        with m.If(q_phase & q_wv):
            m.d.sync += done_cnt.eq(done_cnt + 1)
            with m.If(to_b):
                m.d.comb += [b_wr.addr.eq(b_word), b_wr.data.eq(Cat(*[byte[:4]] * (2 * C))),
                             b_wr.en.eq(1 << b_lane)]
            with m.Else():
                m.d.comb += [a_wr.addr.eq(a_word), a_wr.data.eq(Cat(*[byte] * (2 * R))),
                             a_wr.en.eq(1 << a_lane)]

        # ---- matmuls on the MAC array --------------------------------------------------------------
        mm_phase = Signal()
        m.d.comb += mm_phase.eq(phase.as_value().matches(Phase.MM_Y, Phase.MM_DX, Phase.MM_DW))
        # per matmul: (M, N, K) -> tile counts and beats, all constants of the phase
        n_mb = Signal(9)
        n_nb = Signal(9)
        beats = Signal(9)
        beats_log = Signal(4)
        tiles = Signal(17)
        for ph, (mm_m, mm_n, mm_k) in ((Phase.MM_Y, (B, O, K)), (Phase.MM_DX, (B, K, O)),
                                       (Phase.MM_DW, (O, K, B))):
            with m.If(phase == ph):
                m.d.comb += [n_mb.eq(mm_m // R), n_nb.eq(mm_n // C), beats.eq(mm_k // 2),
                             beats_log.eq(spec.log2(mm_k) - 1), tiles.eq((mm_m // R) * (mm_n // C))]

        cmd_sent = Signal(16)
        cmd = Signal(cmd_layout(8))
        m.d.comb += [cmd.mode.eq(mac_spec.MODE_INT4), cmd.act_unsigned.eq((phase == Phase.MM_Y) & x_uns),
                     cmd.tile_sat.eq(1), cmd.beats_m1.eq(beats - 1),
                     mac.i_cmd.valid.eq(mm_phase & (cmd_sent < tiles)), mac.i_cmd.payload.eq(cmd)]
        with m.If(mac.i_cmd.valid & mac.i_cmd.ready):
            m.d.sync += cmd_sent.eq(cmd_sent + 1)

        # beats: tile (tb_m, tb_n), beat bj; operand words read one cycle ahead into the beat register
        tb_m = Signal(9)
        tb_n = Signal(9)
        bj = Signal(9)
        beat_v = Signal()
        beats_left = Signal()
        m.d.comb += beats_left.eq(tb_m < n_mb)
        take = mac.i_act.valid & mac.i_act.ready
        b_adv = Signal()
        m.d.comb += b_adv.eq(mm_phase & (~beat_v | take))
        with m.If(b_adv):
            m.d.comb += [a_rd.addr.eq((tb_m << beats_log) + bj), b_rd.addr.eq((tb_n << beats_log) + bj),
                         a_rd.en.eq(1), b_rd.en.eq(1)]
            m.d.sync += beat_v.eq(beats_left)
            with m.If(beats_left):
                with m.If(bj == beats - 1):
                    m.d.sync += bj.eq(0)
                    with m.If(tb_n == n_nb - 1):
                        m.d.sync += [tb_n.eq(0), tb_m.eq(tb_m + 1)]
                    with m.Else():
                        m.d.sync += tb_n.eq(tb_n + 1)
                with m.Else():
                    m.d.sync += bj.eq(bj + 1)
        act = Signal(R * 32)
        for r in range(R):
            m.d.comb += act[32 * r:32 * r + 16].eq(a_rd.data[16 * r:16 * r + 16])
        m.d.comb += [mac.i_act.valid.eq(mm_phase & beat_v), mac.i_wgt.valid.eq(mm_phase & beat_v),
                     mac.i_act.payload.eq(act), mac.i_wgt.payload.eq(b_rd.data)]

        # results: tile (rm, rn), row rr; Y and dX go out, dW updates W
        rm = Signal(9)
        rn = Signal(9)
        rows_got = Signal(16)
        res = mac.o_res.payload
        upd = Signal()                          # a dW row is being applied
        upd_c = Signal(range(C + 1))
        upd_row = Signal(data.ArrayLayout(signed(self._acc), C))
        upd_o = Signal(9)
        upd_k = Signal(9)
        out_phase = phase.as_value().matches(Phase.MM_Y, Phase.MM_DX)
        m.d.comb += [self.o_res.valid.eq(out_phase & mac.o_res.valid),
                     self.o_res.payload.data.eq(res.data),
                     self.o_res.payload.kind.eq(phase == Phase.MM_DX),
                     self.o_res.payload.last.eq(rows_got == (tiles << log_r) - 1)]
        with m.If(out_phase):
            m.d.comb += mac.o_res.ready.eq(self.o_res.ready)
        with m.Elif(phase == Phase.MM_DW):
            m.d.comb += mac.o_res.ready.eq(~upd)
        res_take = mac.o_res.valid & mac.o_res.ready
        with m.If(res_take):
            m.d.sync += rows_got.eq(rows_got + 1)
            with m.If(res.last):
                with m.If(rn == n_nb - 1):
                    m.d.sync += [rn.eq(0), rm.eq(rm + 1)]
                with m.Else():
                    m.d.sync += rn.eq(rn + 1)
            with m.If(phase == Phase.MM_DW):
                m.d.sync += [upd.eq(1), upd_c.eq(0), upd_row.eq(res.data),
                             upd_o.eq((rm << log_r) | res.row),
                             upd_k.eq(rn << log_c)]

        # the update: read W[o, k + c] (cycle 1), write it back updated (cycle 2), pipelined over c
        u_shift = Signal(signed(8))
        u_raw = Signal(signed(8))
        m.d.comb += u_raw.eq(exp_base + shifts[4] + shifts[5])
        m.d.comb += u_shift.eq(Mux(u_raw > spec.W_BITS, spec.W_BITS,
                                   Mux(u_raw < -self._acc, -self._acc, u_raw)))
        wr_v = Signal()
        wr_c = Signal(range(C))
        with m.If(phase == Phase.MM_DW):
            m.d.comb += [w_rd.addr.eq(upd_o * K + upd_k + upd_c), w_rd.en.eq(1)]
            m.d.sync += [wr_v.eq(upd & (upd_c < C)), wr_c.eq(upd_c)]
            with m.If(upd):
                with m.If(upd_c < C):
                    m.d.sync += upd_c.eq(upd_c + 1)
                with m.Else():
                    m.d.sync += upd.eq(0)
        dw = Signal(signed(self._acc))
        m.d.comb += dw.eq(upd_row[wr_c])
        dw_abs = Signal(self._acc)
        m.d.comb += dw_abs.eq(Mux(dw < 0, -dw, dw))
        r_sh = Signal(6)
        m.d.comb += r_sh.eq(-u_shift)
        dmag = Signal(self._acc + spec.W_BITS + 1)
        with m.If(u_shift >= 0):
            m.d.comb += dmag.eq(dw_abs << u_shift[:5])
        with m.Else():
            m.d.comb += dmag.eq((dw_abs + ((1 << r_sh) >> 1)) >> r_sh)
        delta = Signal(signed(self._acc + spec.W_BITS + 2))
        m.d.comb += delta.eq(Mux(dw < 0, -dmag, dmag))
        new_w = Signal(signed(self._acc + spec.W_BITS + 3))
        m.d.comb += new_w.eq(w_rd.data - delta)
        lim = spec.acc_limit(spec.W_BITS)
        sat_w = Signal(signed(16))
        clipped = Signal()
        m.d.comb += [clipped.eq((new_w > lim) | (new_w < -lim)),
                     sat_w.eq(Mux(new_w > lim, lim, Mux(new_w < -lim, -lim, new_w)))]
        sat_abs = absval(sat_w, 16, "sat_abs")
        with m.If((phase == Phase.MM_DW) & wr_v):
            m.d.comb += [w_wr.en.eq(1), w_wr.addr.eq(upd_o * K + upd_k + wr_c), w_wr.data.eq(sat_w)]
            m.d.sync += max_w_next.eq(Mux(sat_abs > max_w_next, sat_abs, max_w_next))
            with m.If(clipped):
                m.d.sync += self.o_w_saturated.eq(1)

        with m.If(mac.o_overflow):
            m.d.sync += self.o_mac_overflow.eq(1)
        with m.If(self.i_clear):
            m.d.sync += [self.o_w_saturated.eq(0), self.o_mac_overflow.eq(0)]
        m.d.comb += mac.i_clear.eq(self.i_clear)

        # ---- phase sequencing ----------------------------------------------------------------------
        def start(ph, rows_, cols_, col=False):
            m.d.sync += [phase.eq(ph), i.eq(0), j.eq(0), wi.eq(0), wj.eq(0), cnt.eq(0), done_cnt.eq(0),
                         pass_rows.eq(rows_), pass_cols.eq(cols_), colwise.eq(col), q_v.eq(0), fv.eq(0),
                         cols_log.eq(spec.log2(cols_)), total.eq(rows_ * cols_)]
            if ph in (Phase.H_W, Phase.H_DY1, Phase.H_DY2, Phase.H_X):
                m.d.sync += max_t.eq(0)

        def start_mm(ph):
            m.d.sync += [phase.eq(ph), cmd_sent.eq(0), tb_m.eq(0), tb_n.eq(0), bj.eq(0), beat_v.eq(0),
                         rm.eq(0), rn.eq(0), rows_got.eq(0)]

        pass_done = done_cnt == total
        mm_done = (rows_got == (tiles << log_r)) & ~upd & ~wr_v
        with m.Switch(phase):
            with m.Case(Phase.IDLE):
                with m.If(self.i_start):
                    m.d.sync += [x_uns.eq(self.i_x_unsigned), exp_base.eq(self.i_exp_base)]
                    start(Phase.Q_X, B, K)
            with m.Case(Phase.Q_X):
                with m.If(pass_done):
                    m.d.sync += shifts[0].eq(q_shift)
                    start(Phase.Q_W, O, K)
            with m.Case(Phase.Q_W):
                with m.If(pass_done):
                    m.d.sync += shifts[1].eq(q_shift)
                    start_mm(Phase.MM_Y)
            with m.Case(Phase.MM_Y):
                with m.If(mm_done):
                    start(Phase.H_W, O, K, col=True)
            with m.Case(Phase.H_W):
                with m.If(pass_done):
                    start(Phase.Q_WH, O, K)
            with m.Case(Phase.Q_WH):
                with m.If(pass_done):
                    m.d.sync += shifts[2].eq(q_shift)
                    start(Phase.H_DY1, B, O)
            with m.Case(Phase.H_DY1):
                with m.If(pass_done):
                    start(Phase.Q_DY1, B, O)
            with m.Case(Phase.Q_DY1):
                with m.If(pass_done):
                    m.d.sync += shifts[3].eq(q_shift)
                    start_mm(Phase.MM_DX)
            with m.Case(Phase.MM_DX):
                with m.If(mm_done):
                    start(Phase.H_DY2, B, O, col=True)
            with m.Case(Phase.H_DY2):
                with m.If(pass_done):
                    start(Phase.Q_DY2, B, O)
            with m.Case(Phase.Q_DY2):
                with m.If(pass_done):
                    m.d.sync += shifts[4].eq(q_shift)
                    start(Phase.H_X, B, K, col=True)
            with m.Case(Phase.H_X):
                with m.If(pass_done):
                    start(Phase.Q_XH, B, K)
            with m.Case(Phase.Q_XH):
                with m.If(pass_done):
                    m.d.sync += shifts[5].eq(q_shift)
                    start_mm(Phase.MM_DW)
                    m.d.sync += max_w_next.eq(0)
            with m.Case(Phase.MM_DW):
                with m.If(mm_done):
                    m.d.sync += [phase.eq(Phase.IDLE), max_w.eq(max_w_next)]
        return m
