"""HDQT layer controller: one training step of a linear layer out of on-chip buffers, on the MAC array."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lfsr import GaloisLFSR
from ..lib.sections import elaborate_sections
from ..mac.array import MacArray
from . import spec
from .host_port import HostPort, load_layout
from .jobs import JobSequencer, TensorSource
from .matmul_engine import MatmulEngine, MatmulJob, res_layout
from .quant_engine import QuantEngine, QuantJob
from .ram import Ram
from .transform_engine import TransformEngine, TransformJob
from .update import WeightUpdater

__all__ = ["HdqtLayer", "Phase"]


class Phase(enum.Enum, shape=3):
    """What the MAC array is doing (``o_phase``). The transform and quantize passes run alongside, see
    :class:`HdqtLayer`; a ``WAIT_*`` phase is time the array waits for its operands."""
    IDLE = 0
    WAIT_Y = 1    # waiting for Xq (A bank 0) and Wq (B bank 0)
    MM_Y = 2      # Y = Xq Wq^T, results out on o_res (kind Y)
    WAIT_DX = 3   # waiting for dY'q (A bank 1) and W'q^T (B bank 1)
    MM_DX = 4     # dX = dY'q W'q, out on o_res (kind dX)
    WAIT_DW = 5   # waiting for dY''q^T (A bank 0) and X''q^T (B bank 0)
    MM_DW = 6     # dW = dY''q^T X''q, each result row updates W in place


# Completion flags of the engines' jobs (bits of the done vector, each engine's o_done in turn).
F_HW, F_HDY1, F_HDY2, F_HX = 0, 1, 2, 3
QA_X, QA_DY1, QA_DY2 = 4, 5, 6
QB_W, QB_WH, QB_XH = 7, 8, 9
M_Y, M_DX, M_DW = 10, 11, 12
N_FLAGS = 13


class HdqtLayer(wiring.Component):
    """One HDQT training step of ``Y = X W^T`` (X: B x K, W: O x K), bit-exact with
    :func:`sim.hdqt.golden.ref_layer_step` (4-bit operands, the MAC array's tile-saturating int4 mode).

    Organisation: three tensor buffers (``X`` B x K and ``dY`` B x O, 16-bit, row-major; master weights
    ``W`` O x K in Q2.13 by default, ``U`` weights per word, see the update below), three Hadamard scratch
    buffers (``TW``: H_O W then H_B X; ``TD1``: dY H_O; ``TD2``: H_B dY),
    two double-banked 4-bit operand buffers laid out as the MAC array's beats (``A``: ``rows`` activation
    rows x 2 lanes per word; ``B``: ``cols`` packed int4 bytes per word), one or two :class:`~hw.hdqt.FWHT`
    (block sizes ``n_O`` and ``n_B``), two quantizer pipelines with one LFSR, and a
    :class:`~hw.mac.MacArray`.

    Four engines run concurrently, each through its own job list, a job starting as soon as the jobs
    it depends on are done (flags, no fixed schedule, no dependence on any pipeline latency):

    * F (FWHT, one element per cycle): ``H_O W`` -> TW, ``dY H_O`` -> TD1, ``H_B dY`` -> TD2,
      ``H_B X`` -> TW (after QB has read TW); ``max|T|`` tracked as each is written.
    * QA (quantizer into A): ``X`` -> Xq (bank 0), TD1 -> dY'q (bank 1, stochastic),
      TD2 -> dY''q^T (bank 0, stochastic, after MM_Y).
    * QB (quantizer into B): ``W`` -> Wq (bank 0), TW -> W'q^T (bank 1), TW -> X''q^T (bank 0,
      stochastic, after QA's dY''q so the LFSR words keep the golden model's order, and after MM_Y).
    * M (the array, one beat per cycle): MM_Y on bank 0, MM_DX on bank 1, MM_DW on bank 0 with the
      update of W.

    The update is an 8-stage pipeline applying ``U`` results per cycle (``U`` the smallest power of
    two, at most ``cols``, such that a dW tile's ``rows*cols`` results take at most half of its ``B/2``
    beats: ``U = 2`` for 4 x 4 at B = 32, 1 for small arrays), so it never holds up the array. One right
    shifter serves both shift directions, and the shifted update is clamped to 17 bits (any larger
    update saturates a 16-bit weight whatever its value, so no result changes).

    So the quantize and transform passes stream while the array computes; the array waits only for
    the first operands (Xq and Wq, quantized in parallel) and wherever a pass chain is longer than
    the matmul it hides behind. ``o_phase`` tells what the array does (:class:`Phase`).

    Maxima: only the leading one of ``max|x|`` matters (the shift), and it is the leading one of the
    OR of all ``|x|``; the controller ORs magnitudes (no comparators): X and W while loaded (and W
    while the update writes it), T while an FWHT pass writes it.

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
    lane_dsps : bool
        Backend ``"ice40"`` only: every activation lane on SB_MAC16s of its own (no fabric partial
        products; ``4 * rows * ceil(cols / 2)`` blocks).

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, batch=32, k_dim=64, o_dim=64, had_cap=64, rows=4, cols=4, acc_width=24, tile_bits=8,
                 backend="lut", primitives=True, lane_dsps=False):
        self.config = cfg = spec.LayerConfig(
            batch=batch, k_dim=k_dim, o_dim=o_dim, had_cap=had_cap, rows=rows, cols=cols,
            acc_width=acc_width, tile_bits=tile_bits, backend=backend, primitives=primitives,
            lane_dsps=lane_dsps)
        self._r, self._c, self._b, self._k, self._o = cfg.rows, cfg.cols, cfg.batch, cfg.k_dim, cfg.o_dim
        self._cap, self._acc, self._tile_bits = cfg.had_cap, cfg.acc_width, cfg.tile_bits
        self._backend, self._primitives, self._lane_dsps = cfg.backend, cfg.primitives, cfg.lane_dsps
        self._u = cfg.update_lanes
        self.n_o, self.n_b = cfg.n_o, cfg.n_b
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
        return self.config.macs()


    def elaborate(self, platform):
        return elaborate_sections(
            Module(),
            self._build_buffers,
            self._build_io,
            self._build_sequencers,
            self._build_f_engine,
            self._build_q_engines,
            self._build_m_engine,
            self._build_update,
            self._build_sequencing,
        )

    def _build_buffers(self, m, ns):
        """The MAC array, the LFSR, the buffers and the registers every section shares."""
        B, K, O, R, C, U = self._b, self._k, self._o, self._r, self._c, self._u
        lg = spec.log2
        tw = spec.W_BITS + lg(max(self.n_o, self.n_b))  # T element width

        m.submodules.mac = mac = MacArray(rows=R, cols=C, acc_width=self._acc, tile_k=spec.TILE_K,
                                          tile_bits=self._tile_bits, count_bits=8, backend=self._backend,
                                          primitives=self._primitives, lane_dsps=self._lane_dsps)
        m.submodules.lfsr = lfsr = GaloisLFSR(width=spec.RND_BITS, seed=spec.LFSR_SEED)

        # RAMs (hw/hdqt/ram.py): SB_RAM40_4K instances on the ice40 backend with primitives; a plain
        # Memory on the ecp5 backend with primitives (synthesis); otherwise (lut backend, behavioural
        # models: the simulations) the model that garbles a read during a write of the same word
        ice40 = self._backend == "ice40" and self._primitives
        check = not (self._primitives and self._backend in ("ice40", "ecp5"))

        def mem(name, shape, depth, granularity=None, read_ports=1):
            mm = Ram(shape, depth, granularity=granularity, read_ports=read_ports, ice40=ice40, check=check,
                     name=name)
            m.submodules[name] = mm
            return mm

        mx = mem("buf_x", signed(16), B * K)
        mw = mem("buf_w", data.ArrayLayout(signed(16), U), O * K // U, granularity=16, read_ports=2)
        mdy = mem("buf_dy", signed(16), B * O)
        mtw = mem("buf_tw", signed(tw), max(O, B) * K)
        mtd1 = mem("buf_td1", signed(tw), B * O)
        mtd2 = mem("buf_td2", signed(tw), B * O)
        # per bank; all dimensions are powers of two, so these are too
        depth_a = max(B // R * K // 2, B // R * O // 2, O // R * B // 2)
        depth_b = max(O // C * K // 2, K // C * O // 2, K // C * B // 2)
        la, lb = lg(depth_a), lg(depth_b)
        ma = mem("op_a", R * 16, 2 * depth_a, granularity=8)
        mb = mem("op_b", C * 8, 2 * depth_b, granularity=4)
        x_rd, x_wr = mx.rd[0], mx.wr
        w_rd, w_rd2, w_wr = mw.rd[0], mw.rd[1], mw.wr
        dy_rd, dy_wr = mdy.rd[0], mdy.wr
        tw_rd, tw_wr = mtw.rd[0], mtw.wr
        td1_rd, td1_wr = mtd1.rd[0], mtd1.wr
        td2_rd, td2_wr = mtd2.rd[0], mtd2.wr
        a_rd, a_wr = ma.rd[0], ma.wr
        b_rd, b_wr = mb.rd[0], mb.wr

        running = Signal()
        load_busy = Signal()     # a host load is still in the load pipeline
        m.d.comb += [lfsr.i_seed.eq(self.i_lfsr_seed), lfsr.i_load.eq(self.i_lfsr_load & ~running)]
        m.d.comb += self.o_busy.eq(running)
        x_uns = Signal()
        exp_base = Signal(signed(16))
        max_w_next = Signal(16)  # OR of the updated W's magnitudes: the next step's maximum of W
        ns.keep(locals(), (
            "B C K O R U a_rd a_wr b_rd b_wr dy_rd dy_wr exp_base la lb lfsr load_busy mac "
            "max_w_next running td1_rd td1_wr td2_rd td2_wr tw tw_rd tw_wr w_rd w_rd2 w_wr x_rd x_uns x_wr"))

    def _build_io(self, m, ns):
        """The host port (:class:`~hw.hdqt.host_port.HostPort`): loads and W's read-back, idle only."""
        (U, dy_wr, load_busy, running, w_rd, w_wr, x_wr) = ns.get(
            "U dy_wr load_busy running w_rd w_wr x_wr")
        m.submodules.host = host = HostPort(lanes=U)
        wiring.connect(m, wiring.flipped(self.i_load), host.i_load)
        wiring.connect(m, wiring.flipped(self.i_rd), host.i_rd)
        wiring.connect(m, host.o_rd, wiring.flipped(self.o_rd))
        m.d.comb += [host.i_idle.eq(~running), host.i_x_unsigned.eq(self.i_x_unsigned),
                     load_busy.eq(host.o_busy), host.i_w_rd_data.eq(w_rd.data)]
        # (W's write address and data: see the update, which shares the port)
        m.d.comb += [x_wr.addr.eq(host.o_wr_addr), x_wr.data.eq(host.o_wr_data), x_wr.en.eq(host.o_x_wr_en),
                     dy_wr.addr.eq(host.o_wr_addr), dy_wr.data.eq(host.o_wr_data),
                     dy_wr.en.eq(host.o_dy_wr_en), w_wr.en.eq(host.o_w_wr_en)]
        ns.keep(locals(), "host")

    def _build_sequencers(self, m, ns):
        """One :class:`~hw.hdqt.jobs.JobSequencer` per engine; the done flags they share; ``o_phase``."""
        load_busy, running = ns.get("load_busy running")
        # each job's prerequisites (see the class docstring)
        prereqs = {"f": [[], [], [], [QB_WH, QA_X]],
                   "qa": [[], [F_HDY1], [F_HDY2, M_Y]],
                   "qb": [[], [F_HW], [F_HX, QA_DY2, M_Y]],
                   "m": [[QA_X, QB_W], [QA_DY1, QB_WH], [QA_DY2, QB_XH]]}
        seq = {}
        for name, pre in prereqs.items():
            m.submodules[f"{name}_seq"] = seq[name] = JobSequencer(prereqs=pre, flags=N_FLAGS)
        done = Signal(N_FLAGS)
        m.d.comb += done.eq(Cat(*[s.o_done for s in seq.values()]))
        for s in seq.values():
            m.d.comb += [s.i_running.eq(running), s.i_load_busy.eq(load_busy), s.i_done.eq(done),
                         s.i_reset.eq(~running & self.i_start)]
        me = seq["m"].ctl
        m.d.comb += self.o_phase.eq(Mux(running, Phase.MM_DW, Phase.IDLE))
        with m.Switch(me.job):
            for jj, ph in enumerate(((Phase.WAIT_Y, Phase.MM_Y), (Phase.WAIT_DX, Phase.MM_DX),
                                     (Phase.WAIT_DW, Phase.MM_DW))):
                with m.Case(jj):
                    m.d.comb += self.o_phase.eq(Mux(me.act, ph[1], ph[0]))
        ns.keep(locals(), "done seq")

    def _build_f_engine(self, m, ns):
        """F engine (:class:`~hw.hdqt.transform_engine.TransformEngine`): H_O W, dY H_O, H_B dY, H_B X."""
        B, K, O, U, dy_rd, seq, td1_wr, td2_wr, tw_wr, w_rd, x_rd = ns.get(
            "B K O U dy_rd seq td1_wr td2_wr tw_wr w_rd x_rd")
        jobs = [TransformJob("w", O, K, colwise=True, use_nb=False, dst="tw"),
                TransformJob("dy", B, O, colwise=False, use_nb=False, dst="td1"),
                TransformJob("dy", B, O, colwise=True, use_nb=True, dst="td2"),
                TransformJob("x", B, K, colwise=True, use_nb=True, dst="tw")]
        sources = {"w": TensorSource(len(w_rd.addr), lanes=U), "dy": TensorSource(len(dy_rd.addr)),
                   "x": TensorSource(len(x_rd.addr))}
        dsts = {"tw": len(tw_wr.addr), "td1": len(td1_wr.addr), "td2": len(td2_wr.addr)}
        m.submodules.f_engine = fe = TransformEngine(sources=sources, dsts=dsts, jobs=jobs,
                                                     n_o=self.n_o, n_b=self.n_b)
        wiring.connect(m, seq["f"].ctl, fe.ctl)
        # W's and X's read ports are shared (with the update and read-back, and with QA): see below
        m.d.comb += [fe.w_rd.data.eq(w_rd.data), fe.x_rd.data.eq(x_rd.data),
                     dy_rd.addr.eq(fe.dy_rd.addr), dy_rd.en.eq(fe.dy_rd.en), fe.dy_rd.data.eq(dy_rd.data)]
        for port, wr in ((fe.tw_wr, tw_wr), (fe.td1_wr, td1_wr), (fe.td2_wr, td2_wr)):
            m.d.comb += [wr.addr.eq(port.addr), wr.data.eq(port.data), wr.en.eq(port.en)]
        ns.keep(locals(), "fe")

    def _build_q_engines(self, m, ns):
        """QA / QB engines (:class:`~hw.hdqt.quant_engine.QuantEngine`): X, W or T -> operand banks."""
        (B, C, K, O, R, U, a_wr, b_wr, fe, host, la, lb, lfsr, seq, td1_rd, td2_rd, tw, tw_rd, w_rd2,
         x_rd, x_uns) = ns.get(
            "B C K O R U a_wr b_wr fe host la lb lfsr seq td1_rd td2_rd tw tw_rd w_rd2 x_rd x_uns")
        # QuantJob(source, rows, cols, stochastic, unsigned, transpose, reduction, bank)
        qa_jobs = [QuantJob("x", B, K, False, True, False, K, bank=0),
                   QuantJob("td1", B, O, True, False, False, O, bank=1),
                   QuantJob("td2", B, O, True, False, True, B, bank=0)]
        qb_jobs = [QuantJob("w", O, K, False, False, False, K, bank=0),
                   QuantJob("tw", O, K, False, False, True, O, bank=1),
                   QuantJob("tw", B, K, True, False, True, B, bank=0)]
        ports = {"x": x_rd, "w": w_rd2, "tw": tw_rd, "td1": td1_rd, "td2": td2_rd}
        maxima = {"x": host.o_max_x, "w": host.o_max_w, "tw": fe.o_tw_max, "td1": fe.o_td1_max,
                  "td2": fe.o_td2_max}
        eng = {}
        for name, jobs, wr, lanes, lane_bits, bank_bits in (("qa", qa_jobs, a_wr, 2 * R, 8, la),
                                                            ("qb", qb_jobs, b_wr, 2 * C, 4, lb)):
            sources = {j.src: TensorSource(len(ports[j.src].addr), tw if j.src[0] == "t" else spec.W_BITS,
                                           U if j.src == "w" else 1) for j in jobs}
            m.submodules[f"{name}_engine"] = q = eng[name] = QuantEngine(
                sources=sources, jobs=jobs, width=tw, dst_lanes=lanes, lane_bits=lane_bits,
                bank_bits=bank_bits)
            wiring.connect(m, seq[name].ctl, q.ctl)
            for s in sources:
                port = getattr(q, f"{s}_rd")
                m.d.comb += [port.data.eq(ports[s].data), getattr(q, f"i_{s}_max").eq(maxima[s])]
                if s != "x":
                    m.d.comb += [ports[s].addr.eq(port.addr), ports[s].en.eq(port.en)]
            m.d.comb += [wr.addr.eq(q.wr.addr), wr.data.eq(q.wr.data), wr.en.eq(q.wr.en),
                         q.i_rnd.eq(lfsr.o_random.payload), q.i_x_unsigned.eq(x_uns)]
        qa, qb = eng["qa"], eng["qb"]
        m.d.comb += lfsr.o_random.ready.eq(qa.o_rnd_take | qb.o_rnd_take)
        # X's read port: QA's job 0, else the F engine's last job (H_B X), which runs after it
        qa_x = Signal()
        m.d.sync += qa_x.eq(seq["qa"].ctl.job == 0)
        m.d.comb += [x_rd.addr.eq(Mux(qa_x, qa.x_rd.addr, fe.x_rd.addr)), x_rd.en.eq(qa.x_rd.en | fe.x_rd.en)]
        # the six shifts in the order of o_shifts: x, w, w', dy', dy'', x''
        shifts = [qa.o_shifts[0], qb.o_shifts[0], qb.o_shifts[1],
                  qa.o_shifts[1], qa.o_shifts[2], qb.o_shifts[2]]
        m.d.comb += self.o_shifts.eq(Cat(*shifts))
        ns.keep(locals(), "shifts")

    def _build_m_engine(self, m, ns):
        """M engine (:class:`~hw.hdqt.matmul_engine.MatmulEngine`): Y, dX and dW on the MAC array."""
        (B, C, K, O, R, U, a_rd, b_rd, la, lb, mac, seq, x_uns) = ns.get(
            "B C K O R U a_rd b_rd la lb mac seq x_uns")
        jobs = [MatmulJob(B, O, K, bank=0, result="y", x_act=True), MatmulJob(B, K, O, bank=1, result="dx"),
                MatmulJob(O, K, B, bank=0, result="dw")]
        m.submodules.m_engine = me = MatmulEngine(
            rows=R, cols=C, acc_width=self._acc, jobs=jobs, a_bits=la, b_bits=lb,
            dw_word_bits=spec.log2(O * K // U) - spec.log2(C // U))
        wiring.connect(m, seq["m"].ctl, me.ctl)
        wiring.connect(m, me.o_cmd, mac.i_cmd)
        wiring.connect(m, me.o_act, mac.i_act)
        wiring.connect(m, me.o_wgt, mac.i_wgt)
        wiring.connect(m, mac.o_res, me.i_res)
        wiring.connect(m, me.o_res, wiring.flipped(self.o_res))
        for port, rd in ((me.a_rd, a_rd), (me.b_rd, b_rd)):
            m.d.comb += [rd.addr.eq(port.addr), rd.en.eq(port.en), port.data.eq(rd.data)]
        m.d.comb += me.i_x_unsigned.eq(x_uns)
        ns.keep(locals(), "me")

    def _build_update(self, m, ns):
        """The weight updater (:class:`~hw.hdqt.update.WeightUpdater`) on W's ports; the sticky flags."""
        (C, K, O, U, exp_base, fe, host, mac, max_w_next, me, running, shifts, w_rd, w_wr) = ns.get(
            "C K O U exp_base fe host mac max_w_next me running shifts w_rd w_wr")
        m.submodules.update = upd = WeightUpdater(cols=C, lanes=U, acc_width=self._acc, words=O * K // U)
        # u's inputs are final long before MM_DW starts (the shifts of dY'' and X'')
        m.d.comb += [upd.i_exp_base.eq(exp_base), upd.i_shift_dy.eq(shifts[4]), upd.i_shift_x.eq(shifts[5])]
        wiring.connect(m, me.o_dw, upd.i_dw)
        m.d.comb += me.i_update_busy.eq(upd.o_busy)
        # W's read port: the update, else the F engine while running, else the host's read-back
        m.d.comb += [w_rd.addr.eq(Mux(upd.o_w_rd_en, upd.o_w_rd_addr,
                                      Mux(running, fe.w_rd.addr, host.o_w_rd_addr))),
                     w_rd.en.eq(upd.o_w_rd_en | fe.w_rd.en | host.o_w_rd_en),
                     upd.i_w_rd_data.eq(w_rd.data)]
        # W's write port: the update, else a host load
        m.d.comb += [w_wr.addr.eq(Mux(upd.o_w_wr_en, upd.o_w_wr_addr, host.o_wr_addr >> spec.log2(U))),
                     w_wr.data.eq(Mux(upd.o_w_wr_en, upd.o_w_wr_data, Cat(*[host.o_wr_data] * U)))]
        with m.If(upd.o_w_wr_en):
            m.d.comb += w_wr.en.eq((1 << U) - 1)
        with m.If(upd.o_clip):
            m.d.sync += self.o_w_saturated.eq(1)
        with m.If(upd.o_w_abs_valid):
            m.d.sync += max_w_next.eq(max_w_next | upd.o_w_abs)

        with m.If(mac.o_overflow):
            m.d.sync += self.o_mac_overflow.eq(1)
        with m.If(self.i_clear):
            m.d.sync += [self.o_w_saturated.eq(0), self.o_mac_overflow.eq(0)]
        m.d.comb += mac.i_clear.eq(self.i_clear)

    def _build_sequencing(self, m, ns):
        """Step start and end (the engines' sequencers reset themselves on the start); the next step's
        maximum of W."""
        (done, exp_base, host, max_w_next, running, x_uns) = ns.get(
            "done exp_base host max_w_next running x_uns")
        with m.If(~running & self.i_start):
            m.d.sync += [running.eq(1), x_uns.eq(self.i_x_unsigned), exp_base.eq(self.i_exp_base),
                         max_w_next.eq(0)]
        with m.If(running & done[M_DW]):
            m.d.sync += running.eq(0)
        # the updated W's maximum is the next step's
        m.d.comb += [host.i_max_w_load.eq(running & done[M_DW]), host.i_max_w.eq(max_w_next)]
