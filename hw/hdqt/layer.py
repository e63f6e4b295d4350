"""HDQT layer controller: one training step of a linear layer out of on-chip buffers, on the MAC array."""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..lfsr import GaloisLFSR
from ..lib.sections import elaborate_sections
from ..lib.stream import skid_buffer
from ..mac import spec as mac_spec
from ..mac.array import MacArray, cmd_layout
from ..mac.array import res_layout as mac_res_layout
from . import spec
from .fwht import FWHT
from .host_port import BUF_DY, BUF_W, BUF_X, HostPort, lane, load_layout
from .quantizer import QUANT_LATENCY, quantize_pipeline
from .ram import Ram
from .shift import TensorShift
from .update import WeightUpdater, absval

__all__ = ["HdqtLayer", "Phase", "load_layout", "res_layout", "BUF_X", "BUF_W", "BUF_DY",
           "KIND_Y", "KIND_DX"]

KIND_Y, KIND_DX = 0, 1


def bit_length_of(n):
    return max(1, int(n).bit_length())


def res_layout(cols, acc_width):
    return data.StructLayout({"data": data.ArrayLayout(signed(acc_width), cols), "kind": 1, "last": 1})


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


# Completion flags of the engines' jobs (bits of `done`).
F_HW, F_HDY1, F_HDY2, F_HX = 0, 1, 2, 3
QA_X, QA_DY1, QA_DY2 = 4, 5, 6
QB_W, QB_WH, QB_XH = 7, 8, 9
M_Y, M_DX, M_DW = 10, 11, 12
N_FLAGS = 13
SETUP_CYCLES = 4


class TransformJob(NamedTuple):
    """A job of the F engine: ``dst = H src`` (or ``src H``) through the FWHT."""
    src: str          # "w", "dy" or "x"
    rows: int
    cols: int
    colwise: bool     # elements in column-major order (the transform runs along the rows)
    use_nb: bool      # the FWHT of size n_B (else n_O)
    dst: str          # "tw", "td1" or "td2"


class QuantJob(NamedTuple):
    """A job of a quantizer engine (QA or QB): ``src`` -> 4-bit operand buffer bank."""
    src: str          # "x", "w", "tw", "td1" or "td2"
    rows: int
    cols: int
    max: object       # the register holding the OR of |src| (its leading one sets the shift)
    stochastic: bool  # stochastic rounding (else round to nearest)
    unsigned: bool    # X's signedness from i_x_unsigned (else signed)
    transpose: bool
    reduction: int    # length of the matmul's reduction dimension
    bank: int         # operand buffer bank
    shift: int        # index of the shift in o_shifts


class MatmulJob(NamedTuple):
    """A job of the M engine: an (m x k) @ (k x n) matmul on the MAC array from one operand bank."""
    m: int
    n: int
    k: int
    bank: int


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


class JobSequencer:
    """Job sequencing of one engine: WAIT (for its prerequisites) -> SETUP -> RUN -> next job.

    ``prereqs[j]`` lists the ``done`` flags job ``j`` waits for; ``flags[j]`` is the flag it raises when
    the engine drives ``finish`` during its run. ``start`` (a flip-flop) pulses a cycle after the
    prerequisites are met while ``running`` and no host load is in flight (``load_busy``); ``run`` (a
    flip-flop) rises :data:`SETUP_CYCLES` cycles later. No path runs from the done flags into the
    engine's counters.
    """

    def __init__(self, m, running, load_busy, done, name, prereqs, flags):
        self._m = m
        self.njobs = len(prereqs)
        self.job = Signal(range(self.njobs + 1), name=f"{name}_job")
        self.act = Signal(name=f"{name}_act")
        self.setup = Signal(range(SETUP_CYCLES + 1), name=f"{name}_setup")
        self.run = Signal(name=f"{name}_run")
        self.start = Signal(name=f"{name}_start")
        self.finish = Signal(name=f"{name}_finish")    # driven by the engine: its job is done
        self.flags = flags
        can = Signal(name=f"{name}_can")
        with m.Switch(self.job):
            for jj, pre in enumerate(prereqs):
                with m.Case(jj):
                    m.d.comb += can.eq(Cat(*[done[f] for f in pre]).all() if pre else 1)
        # `act` is high until the job counter has moved on, so `can` always looks at the current job
        m.d.sync += self.start.eq(running & ~load_busy & ~self.act & ~self.start & can)
        with m.If(self.start):
            m.d.sync += [self.act.eq(1), self.setup.eq(SETUP_CYCLES)]
        with m.If(self.act & (self.setup != 0)):
            m.d.sync += self.setup.eq(self.setup - 1)
            with m.If(self.setup == 1):
                m.d.sync += self.run.eq(1)
        with m.If(self.run & self.finish):
            m.d.sync += [self.act.eq(0), self.run.eq(0), self.job.eq(self.job + 1)]
            with m.Switch(self.job):
                for jj, f in enumerate(flags):
                    with m.Case(jj):
                        m.d.sync += done[f].eq(1)

    def is_job(self, jj):
        return self.job == jj

    def reset(self):
        self._m.d.sync += [self.job.eq(0), self.act.eq(0), self.setup.eq(0), self.run.eq(0)]


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

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, batch=32, k_dim=64, o_dim=64, had_cap=64, rows=4, cols=4, acc_width=24, tile_bits=8,
                 backend="lut", primitives=True):
        self.config = cfg = spec.LayerConfig(
            batch=batch, k_dim=k_dim, o_dim=o_dim, had_cap=had_cap, rows=rows, cols=cols,
            acc_width=acc_width, tile_bits=tile_bits, backend=backend, primitives=primitives)
        self._r, self._c, self._b, self._k, self._o = cfg.rows, cfg.cols, cfg.batch, cfg.k_dim, cfg.o_dim
        self._cap, self._acc, self._tile_bits = cfg.had_cap, cfg.acc_width, cfg.tile_bits
        self._backend, self._primitives = cfg.backend, cfg.primitives
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
            self._build_f_engine,
            self._build_q_engines,
            self._build_m_engine,
            self._build_update,
            self._build_sequencing,
        )

    def _build_buffers(self, m, ns):
        """The submodules (MAC array, FWHTs, LFSR), the buffers and the registers every section shares."""
        B, K, O, R, C = self._b, self._k, self._o, self._r, self._c
        lg = spec.log2
        log_r, log_c = lg(R), lg(C)
        U = self._u
        log_u = lg(U)
        lB, lK, lO = lg(B), lg(K), lg(O)
        tw = spec.W_BITS + lg(max(self.n_o, self.n_b))  # T element width
        acc = self._acc

        m.submodules.mac = mac = MacArray(rows=R, cols=C, acc_width=acc, tile_k=spec.TILE_K,
                                          tile_bits=self._tile_bits, count_bits=8, backend=self._backend,
                                          primitives=self._primitives)
        fw_o = FWHT(n=self.n_o, width=spec.W_BITS)
        m.submodules.fwht_o = fw_o
        if self.n_b == self.n_o:
            fw_b = fw_o
        else:
            fw_b = FWHT(n=self.n_b, width=spec.W_BITS)
            m.submodules.fwht_b = fw_b
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
        # hold every read register unless an engine reads
        m.d.comb += [p.en.eq(0) for p in (x_rd, w_rd, w_rd2, dy_rd, tw_rd, td1_rd, td2_rd, a_rd, b_rd)]

        running = Signal()
        load_busy = Signal()     # a host load is still in the load pipeline
        done = Signal(N_FLAGS)
        m.d.comb += [lfsr.i_seed.eq(self.i_lfsr_seed), lfsr.i_load.eq(self.i_lfsr_load & ~running)]
        m.d.comb += self.o_busy.eq(running)
        shifts = Signal(data.ArrayLayout(6, 6))
        m.d.comb += self.o_shifts.eq(shifts)
        x_uns = Signal()
        exp_base = Signal(signed(16))

        # "max" registers: OR of magnitudes (same leading one as the maximum); X's and W's are the
        # host port's
        max_w_next = Signal(16)
        max_tw = Signal(tw)
        max_td1 = Signal(tw)
        max_td2 = Signal(tw)
        ns.keep(locals(), (
            "B C K O R U a_rd a_wr acc b_rd b_wr done dy_rd dy_wr exp_base fw_b fw_o lB lK lO "
            "la lb lfsr lg load_busy log_c log_r log_u mac max_td1 max_td2 max_tw "
            "max_w_next running shifts td1_rd td1_wr td2_rd td2_wr tw tw_rd tw_wr w_rd "
            "w_rd2 w_wr x_rd x_uns x_wr"))

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
        with m.If(host.o_w_rd_en):
            m.d.comb += w_rd.en.eq(1)
        max_x, max_w = host.o_max_x, host.o_max_w
        ns.keep(locals(), "host max_w max_x")

    def _build_f_engine(self, m, ns):
        """F engine: source -> FWHT -> T buffer, OR of |T| into the destination's maximum."""
        (B, K, O, U, done, dy_rd, fw_b, fw_o, lB, lK, lO, load_busy, log_u, max_td1, max_td2, max_tw,
         running, td1_wr, td2_wr, tw, tw_wr, w_rd, x_rd) = ns.get(
            "B K O U done dy_rd fw_b fw_o lB lK lO load_busy log_u max_td1 max_td2 max_tw running "
            "td1_wr td2_wr tw tw_wr w_rd x_rd")
        # ---- F engine: source -> FWHT -> T, OR of |T| ---------------------------------------------
        f_jobs = [TransformJob("w", O, K, colwise=True, use_nb=False, dst="tw"),
                  TransformJob("dy", B, O, colwise=False, use_nb=False, dst="td1"),
                  TransformJob("dy", B, O, colwise=True, use_nb=True, dst="td2"),
                  TransformJob("x", B, K, colwise=True, use_nb=True, dst="tw")]
        fe = JobSequencer(m, running, load_busy, done, "f", [[], [], [], [QB_WH, QA_X]],
                          [F_HW, F_HDY1, F_HDY2, F_HX])
        # element counters of the read and the write side (see ij): negative while elements are left
        f_rc = Signal(signed(bit_length_of(max(B, O) * K) + 1))
        f_wc = Signal.like(f_rc)
        fv = Signal()                   # the read register holds an element for the FWHT
        f_lane = Signal(range(U))
        use_b = Signal()
        m.d.sync += use_b.eq(fe.job >= 2)     # final long before the job runs (start, setup cycles)
        f_in_ready = Mux(use_b, fw_b.i_data.ready, fw_o.i_data.ready)
        # the element read goes through a two-entry skid buffer before the FWHT: the memory's output
        # does not feed the FWHT's first adder in the same cycle, and the FWHT's ready does not reach
        # the address counters
        f_src = Signal(signed(16))
        # (fv, the skid buffer and the FWHTs hold no element outside a job's run: a job finishes only
        # when all its elements are written, so `run` is not on these handshakes (its fan-out was on
        # the critical path); the FWHTs' outputs are always taken, the write stage never stalls)
        fs_ready, fs_valid, fs_data = skid_buffer(m, "fsk", signed(16), fv, f_src, f_in_ready)
        f_adv = Signal()
        m.d.comb += f_adv.eq(fe.run & (~fv | fs_ready))
        # read addresses per source (the job's order), the source by the job (see by_job); W's and X's
        # read ports are shared with the update / read-back and with QA (w_rd.addr, x_rd.addr below)
        f_addr = {"w": {}, "dy": {}, "x": {}}
        for jj, job in enumerate(f_jobs):
            fi, fj = ij(f_rc, job.rows, job.cols, job.colwise)
            f_addr[job.src][jj] = {"w": Cat(fj[log_u:lK], fi[:lO]), "dy": Cat(fj[:lO], fi[:lB]),
                               "x": Cat(fj[:lK], fi[:lB])}[job.src]
        f_w_addr = Signal(len(w_rd.addr), name="f_w_addr")
        f_x_addr = Signal(len(x_rd.addr), name="f_x_addr")
        m.d.comb += [f_w_addr.eq(by_job(fe.job, f_addr["w"])), f_x_addr.eq(by_job(fe.job, f_addr["x"])),
                     dy_rd.addr.eq(by_job(fe.job, f_addr["dy"])),
                     f_src.eq(by_job(fe.job, {jj: {"w": lane(w_rd.data, f_lane, U), "dy": dy_rd.data,
                                                   "x": x_rd.data}[job.src]
                                              for jj, job in enumerate(f_jobs)}))]
        with m.If(fe.run), m.Switch(fe.job):
            for jj, job in enumerate(f_jobs):
                with m.Case(jj):
                    with m.If(f_adv):
                        m.d.comb += {"w": w_rd, "dy": dy_rd, "x": x_rd}[job.src].en.eq(1)
                        if job.src == "w":
                            m.d.sync += f_lane.eq(ij(f_rc, job.rows, job.cols, job.colwise)[1][:log_u])
        with m.If(f_adv):
            with m.If(f_rc[-1]):
                m.d.sync += [fv.eq(1), f_rc.eq(f_rc + 1)]
            with m.Else():
                m.d.sync += fv.eq(0)
        fw_list = [fw_o] if fw_b is fw_o else [fw_o, fw_b]
        for fw in fw_list:
            sel = 1 if fw_b is fw_o else (use_b if fw is fw_b else ~use_b)
            m.d.comb += [fw.i_data.valid.eq(fs_valid & sel), fw.i_data.payload.eq(fs_data),
                         fw.o_data.ready.eq(1)]
        f_out = Signal(signed(tw))
        f_out_v = Signal()
        if fw_b is fw_o:
            m.d.comb += [f_out.eq(fw_o.o_data.payload), f_out_v.eq(fw_o.o_data.valid)]
        else:
            m.d.comb += [f_out.eq(Mux(use_b, fw_b.o_data.payload, fw_o.o_data.payload)),
                         f_out_v.eq(Mux(use_b, fw_b.o_data.valid, fw_o.o_data.valid))]
        # registered write stage: T[(i, j)] <- out, OR |out| into the destination's max
        fo_v = Signal()
        fo_d = Signal(signed(tw))
        fo_a = Signal(16)
        m.d.sync += [fo_v.eq(f_out_v), fo_d.eq(f_out)]
        m.d.sync += fo_a.eq(by_job(fe.job, {jj: Cat(*reversed(ij(f_wc, j.rows, j.cols, j.colwise)))
                                            for jj, j in enumerate(f_jobs)}))
        with m.If(f_out_v):
            m.d.sync += f_wc.eq(f_wc + 1)
        # |out| registered before it is ORed into the maximum (the finish waits for it)
        fo_abs = Signal(tw)
        fo_v2 = Signal()
        m.d.sync += [fo_abs.eq(absval(m, fo_d, tw, "fo_abs_c")), fo_v2.eq(fo_v)]
        with m.Switch(fe.job):
            for jj, job in enumerate(f_jobs):
                with m.Case(jj):
                    port, mreg = {"tw": (tw_wr, max_tw), "td1": (td1_wr, max_td1),
                                  "td2": (td2_wr, max_td2)}[job.dst]
                    m.d.comb += port.en.eq(fo_v)
                    with m.If(fo_v2):
                        m.d.sync += mreg.eq(mreg | fo_abs)
                    with m.If(fe.start):
                        m.d.sync += mreg.eq(0)
        m.d.comb += [p.addr.eq(fo_a) for p in (tw_wr, td1_wr, td2_wr)]
        m.d.comb += [p.data.eq(fo_d) for p in (tw_wr, td1_wr, td2_wr)]
        m.d.comb += fe.finish.eq(~f_wc[-1] & ~fo_v & ~fo_v2)
        with m.If(fe.start):
            m.d.sync += fv.eq(0)
            with m.Switch(fe.job):
                for jj, job in enumerate(f_jobs):
                    with m.Case(jj):
                        m.d.sync += [f_rc.eq(-job.rows * job.cols), f_wc.eq(-job.rows * job.cols)]
        ns.keep(locals(), "f_w_addr f_x_addr fe")

    def _build_q_engines(self, m, ns):
        """QA / QB engines: source (X, W or T) -> shift from its maximum -> quantizer -> operand bank."""
        (B, C, K, O, R, U, a_wr, b_wr, done, f_x_addr, lK, lO, la, lb, lfsr, lg, load_busy, log_c, log_r,
         log_u, max_td1, max_td2, max_tw, max_w, max_x, running, shifts, td1_rd, td2_rd, tw, tw_rd,
         w_rd2, x_rd, x_uns) = ns.get(
            "B C K O R U a_wr b_wr done f_x_addr lK lO la lb lfsr lg load_busy log_c log_r log_u "
            "max_td1 max_td2 max_tw max_w max_x running shifts td1_rd td2_rd tw tw_rd w_rd2 x_rd x_uns")
        # ---- QA / QB engines: source (X, W or T) -> quantizer -> operand buffer bank -----------------
        # QuantJob(source, rows, cols, max, stochastic, unsigned, transpose, reduction, bank, shift index)
        qa_jobs = [QuantJob("x", B, K, max_x, False, True, False, K, bank=0, shift=0),
                   QuantJob("td1", B, O, max_td1, True, False, False, O, bank=1, shift=3),
                   QuantJob("td2", B, O, max_td2, True, False, True, B, bank=0, shift=4)]
        qb_jobs = [QuantJob("w", O, K, max_w, False, False, False, K, bank=0, shift=1),
                   QuantJob("tw", O, K, max_tw, False, False, True, O, bank=1, shift=2),
                   QuantJob("tw", B, K, max_tw, True, False, True, B, bank=0, shift=5)]
        qa = JobSequencer(m, running, load_busy, done, "qa", [[], [F_HDY1], [F_HDY2, M_Y]],
                          [QA_X, QA_DY1, QA_DY2])
        qb = JobSequencer(m, running, load_busy, done, "qb", [[], [F_HW], [F_HX, QA_DY2, M_Y]],
                          [QB_W, QB_WH, QB_XH])
        ports = {"x": x_rd, "w": w_rd2, "tw": tw_rd, "td1": td1_rd, "td2": td2_rd}
        rnd_take = []
        for name, eng, jobs, wr, log_lanes, lbank in (("qa", qa, qa_jobs, a_wr, log_r, la),
                                                      ("qb", qb, qb_jobs, b_wr, log_c, lb)):
            # element counters (see ij) of the issue side and of the write side (same order, advanced
            # per quantized element, so only the valid bit travels along the quantizer's pipeline)
            rc = Signal(signed(bit_length_of(max(B, O) * K) + 1), name=f"{name}_rc")
            wc = Signal.like(rc, name=f"{name}_wc")
            v = Signal(name=f"{name}_wv")
            issue = Signal(name=f"{name}_issue")
            m.d.comb += issue.eq(eng.run & rc[-1])
            src = Signal(signed(tw), name=f"{name}_src")
            qmax = Signal(tw, name=f"{name}_max")
            stoch = Signal(name=f"{name}_stoch")
            uns = Signal(name=f"{name}_uns")
            dst_addr = Signal(lbank + 1, name=f"{name}_dst")
            dst_lane = Signal(log_lanes + 1, name=f"{name}_lane")
            lane_src = Signal(range(U), name=f"{name}_wlane")
            dst_word = Signal(lbank, name=f"{name}_word")
            # per job: source port, its read address and data, the destination (see by_job)
            p_addr, p_data, d_word, d_bank, d_lane = {}, {}, {}, {}, {}
            for jj, job in enumerate(jobs):
                s, rows_, cols_, tr, red = job.src, job.rows, job.cols, job.transpose, job.reduction
                port = ports[s]
                qi, qj = ij(rc, rows_, cols_, False)
                wi, wj = ij(wc, rows_, cols_, False)
                if s == "w":
                    p_addr.setdefault(s, {})[jj] = Cat(qj[log_u:lK], qi[:lO])
                    p_data[jj] = lane(port.data, lane_src, U)
                else:
                    p_addr.setdefault(s, {})[jj] = Cat(qj[:lg(cols_)], qi[:lg(rows_)])
                    p_data[jj] = port.data
                # destination: (m_idx, kr) of the operand matrix
                m_idx, kr = (wj, wi) if tr else (wi, wj)
                m_bits = lg(cols_ if tr else rows_)
                d_word[jj] = Cat(kr[1:lg(red)], m_idx[log_lanes:m_bits])
                d_bank[jj] = Const(job.bank, 1)
                d_lane[jj] = Cat(kr[0], m_idx[:log_lanes])
            for s, table in p_addr.items():
                if s == "x":     # shared with the F engine's last job (H_B X), which runs after QA's job 0
                    qa_x = Signal(name="qa_x")
                    m.d.sync += qa_x.eq(eng.job == 0)
                    m.d.comb += x_rd.addr.eq(Mux(qa_x, by_job(eng.job, table), f_x_addr))
                else:
                    m.d.comb += ports[s].addr.eq(by_job(eng.job, table))
            m.d.comb += [src.eq(by_job(eng.job, p_data)), dst_word.eq(by_job(eng.job, d_word)),
                         dst_addr.eq(Cat(dst_word, by_job(eng.job, d_bank))),
                         dst_lane.eq(by_job(eng.job, d_lane))]
            with m.Switch(eng.job):
                for jj, job in enumerate(jobs):
                    with m.Case(jj):
                        port = ports[job.src]
                        if job.src == "w":
                            with m.If(issue):
                                m.d.sync += lane_src.eq(ij(rc, job.rows, job.cols, False)[1][:log_u])
                        with m.If(eng.run):
                            m.d.comb += port.en.eq(issue)
                        m.d.sync += [qmax.eq(job.max), stoch.eq(job.stochastic),
                                     uns.eq(x_uns if job.unsigned else 0)]
            # the shift (TensorShift), from free-running registers: job's max -> shift, final after the
            # SETUP_CYCLES of a job, before its first element (with the registered qmax four
            # registers, within the start flip-flop and the setup cycles)
            m.submodules[f"{name}_shift"] = tshift = TensorShift(width=tw, bits=4)
            m.d.comb += [tshift.i_max.eq(qmax), tshift.i_unsigned.eq(uns)]
            shift = tshift.o_shift
            # the element read is registered (src_r, the cycle after the read data) before it enters
            # the quantizer's first stage, where it takes its LFSR word
            v1 = Signal(name=f"{name}_v1")
            v2 = Signal(name=f"{name}_v2")
            src_r = Signal.like(src, name=f"{name}_src_r")
            m.d.sync += [v1.eq(issue), v2.eq(v1), src_r.eq(src)]
            q = quantize_pipeline(m, 1, src_r, shift, lfsr.o_random.payload, stoch, uns, 4, name=f"{name}_qp")
            rnd_take.append(v2 & stoch)
            vk = issue
            for k in range(QUANT_LATENCY + 1):
                nv = Signal(name=f"{name}_v_{k}")
                m.d.sync += nv.eq(vk)
                vk = nv
            m.d.sync += v.eq(vk)
            byte = Signal(8, name=f"{name}_byte")
            m.d.comb += byte.eq(q.as_signed())
            lanes = 2 * (R if name == "qa" else C)
            pack = byte if name == "qa" else byte[:4]
            m.d.comb += [wr.addr.eq(dst_addr), wr.data.eq(Cat(*[pack] * lanes)),
                         wr.en.eq(Mux(v, 1 << dst_lane, 0))]
            with m.If(v):
                m.d.sync += wc.eq(wc + 1)
            with m.If(issue):
                m.d.sync += rc.eq(rc + 1)
            m.d.comb += eng.finish.eq(~wc[-1])
            with m.If(eng.start):
                with m.Switch(eng.job):
                    for jj, job in enumerate(jobs):
                        with m.Case(jj):
                            m.d.sync += [rc.eq(-job.rows * job.cols), wc.eq(-job.rows * job.cols)]
            # the shift is final at the end of the setup cycles
            with m.If(eng.act & (eng.setup == 1)):
                with m.Switch(eng.job):
                    for jj, job in enumerate(jobs):
                        with m.Case(jj):
                            m.d.sync += shifts[job.shift].eq(shift)
        m.d.comb += lfsr.o_random.ready.eq(rnd_take[0] | rnd_take[1])
        ns.keep(locals(), "qa qb")

    def _build_m_engine(self, m, ns):
        """M engine: matmul commands and beats into the MAC array; results out (Y, dX) or to the update."""
        (B, C, K, O, R, a_rd, acc, b_rd, done, la, lb, load_busy, mac, running, x_uns) = ns.get(
            "B C K O R a_rd acc b_rd done la lb load_busy mac running x_uns")
        # ---- M engine: matmuls on the MAC array ----------------------------------------------------
        # job: (M, N, reduction, bank)
        mm_jobs = [MatmulJob(B, O, K, bank=0), MatmulJob(B, K, O, bank=1), MatmulJob(O, K, B, bank=0)]
        me = JobSequencer(m, running, load_busy, done, "m", [[QA_X, QB_W], [QA_DY1, QB_WH], [QA_DY2, QB_XH]],
                    [M_Y, M_DX, M_DW])
        m.d.comb += self.o_phase.eq(Mux(running, Phase.MM_DW, Phase.IDLE))
        with m.Switch(me.job):
            for jj, ph in enumerate(((Phase.WAIT_Y, Phase.MM_Y), (Phase.WAIT_DX, Phase.MM_DX),
                                     (Phase.WAIT_DW, Phase.MM_DW))):
                with m.Case(jj):
                    m.d.comb += self.o_phase.eq(Mux(me.act, ph[1], ph[0]))
        m_bank = Signal()
        rn_c = Signal(signed(10))        # result tile columns left in the tile row - 1
        beats_m1 = Signal(8)
        cmd_left = Signal(range(max(j.m // R * j.n // C for j in mm_jobs) + 1))
        rows_left = Signal(range(max(j.m * j.n // C for j in mm_jobs) + 1))
        # tile-column and beat counters count down through zero: their sign bit (a flip-flop) is the
        # "last" flag, no comparator on the counters' enables
        tb_c = Signal(signed(10))
        bj_c = Signal(signed(9))
        n_nb_m2 = Signal(signed(10))     # tile columns - 2
        beats_m2 = Signal(signed(9))     # beats per tile - 2
        a_ptr = Signal(la)
        a_row = Signal(la)
        b_ptr = Signal(lb)
        # beats still to read - 1 (negative: none left)
        beats_c = Signal(signed(bit_length_of(max(j.m * j.n * j.k // (2 * R * C) for j in mm_jobs)) + 1))
        dw_job = Signal()
        out_job = Signal()
        with m.If(me.start):
            m.d.sync += [a_ptr.eq(0), a_row.eq(0), b_ptr.eq(0)]
            with m.Switch(me.job):
                for jj, job in enumerate(mm_jobs):
                    with m.Case(jj):
                        tiles = (job.m // R) * (job.n // C)
                        m.d.sync += [m_bank.eq(job.bank), beats_m1.eq(job.k // 2 - 1),
                                     n_nb_m2.eq(job.n // C - 2), beats_m2.eq(job.k // 2 - 2),
                                     tb_c.eq(job.n // C - 2), bj_c.eq(job.k // 2 - 2),
                                     rn_c.eq(job.n // C - 2),
                                     cmd_left.eq(tiles), rows_left.eq(tiles * R),
                                     beats_c.eq(tiles * (job.k // 2) - 1),
                                     dw_job.eq(jj == 2), out_job.eq(jj != 2)]
        cmd = Signal(cmd_layout(8))
        m.d.comb += [cmd.mode.eq(mac_spec.MODE_INT4), cmd.act_unsigned.eq(me.is_job(0) & x_uns),
                     cmd.tile_sat.eq(1), cmd.beats_m1.eq(beats_m1),
                     mac.i_cmd.valid.eq(me.run & (cmd_left != 0)), mac.i_cmd.payload.eq(cmd)]
        with m.If(mac.i_cmd.valid & mac.i_cmd.ready):
            m.d.sync += cmd_left.eq(cmd_left - 1)

        # beats: operand words read one cycle ahead into the read registers (the beat register), then
        # through a two-entry skid buffer into the array, so that no path runs from the array's
        # pipeline enable (its i_act.ready) into the address counters
        beat_v = Signal()
        act = Signal(R * 32)
        for r in range(R):
            m.d.comb += act[32 * r:32 * r + 16].eq(a_rd.data[16 * r:16 * r + 16])
        # (beat_v and the skid buffer are empty outside a matmul's run, see the F engine's skid buffer)
        bs_ready, bs_valid, bs_data = skid_buffer(m, "beat", R * 32 + C * 8, beat_v, Cat(act, b_rd.data),
                                           mac.i_act.ready)
        b_adv = Signal()
        m.d.comb += b_adv.eq(me.run & (~beat_v | bs_ready))
        m.d.comb += [a_rd.addr.eq(Cat(a_ptr, m_bank)), b_rd.addr.eq(Cat(b_ptr, m_bank))]
        with m.If(b_adv):
            m.d.comb += [a_rd.en.eq(1), b_rd.en.eq(1)]
            m.d.sync += beat_v.eq(~beats_c[-1])
        # the counters' next values from flip-flops only (the loop flags are sign bits), the advance only
        # as their common enable (nested conditions had put it in front of the data inputs)
        beat_adv = Signal()
        a_next = Signal.like(a_ptr)
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
        m.d.comb += [mac.i_act.valid.eq(bs_valid), mac.i_wgt.valid.eq(bs_valid),
                     mac.i_act.payload.eq(bs_data[:R * 32]), mac.i_wgt.payload.eq(bs_data[R * 32:])]

        # results: Y and dX go out, each dW row updates C weights of W
        # The array's result rows pass a two-entry skid buffer (rv0/res, rv1/res1): the array's
        # o_res.ready is a flip-flop, so no path runs from the consumers (host, update) into the
        # array's pipeline enable.
        res = Signal(mac_res_layout(R, C, acc))
        res1 = Signal(mac_res_layout(R, C, acc))
        rv0, rv1 = Signal(), Signal()
        m.d.comb += mac.o_res.ready.eq(me.run & ~rv1)
        in_take = Signal()
        m.d.comb += in_take.eq(mac.o_res.valid & mac.o_res.ready)
        res_take = Signal()    # a consumer takes `res`
        with m.If(~rv0 | res_take):
            with m.If(rv1):
                m.d.sync += [res.eq(res1), rv0.eq(1), rv1.eq(0)]
            with m.Else():
                m.d.sync += [res.eq(mac.o_res.payload), rv0.eq(in_take)]
        with m.Elif(in_take):
            m.d.sync += [res1.eq(mac.o_res.payload), rv1.eq(1)]
        m.d.comb += [self.o_res.valid.eq(me.run & out_job & rv0),
                     self.o_res.payload.data.eq(res.data),
                     self.o_res.payload.kind.eq(me.is_job(1)),
                     self.o_res.payload.last.eq(rows_left == 1)]
        rm = Signal(9)
        rn = Signal(9)
        with m.If(me.start):
            m.d.sync += [rm.eq(0), rn.eq(0)]
        with m.If(res_take):
            m.d.sync += rows_left.eq(rows_left - 1)
            with m.If(res.last):
                with m.If(rn_c[-1]):     # the tile row's last column
                    m.d.sync += [rn.eq(0), rm.eq(rm + 1), rn_c.eq(n_nb_m2)]
                with m.Else():
                    m.d.sync += [rn.eq(rn + 1), rn_c.eq(rn_c - 1)]
        ns.keep(locals(), "dw_job me res res_take rm rn rows_left rv0")

    def _build_update(self, m, ns):
        """The weight updater (:class:`~hw.hdqt.update.WeightUpdater`) on W's ports; the sticky flags."""
        (C, K, O, U, acc, dw_job, exp_base, f_w_addr, host, lK, log_c, log_r, log_u, mac, max_w_next,
         me, res, res_take, rm, rn, rows_left, running, rv0, shifts, w_rd, w_wr) = ns.get(
            "C K O U acc dw_job exp_base f_w_addr host lK log_c log_r log_u mac max_w_next me res "
            "res_take rm rn rows_left running rv0 shifts w_rd w_wr")
        m.submodules.update = upd = WeightUpdater(cols=C, lanes=U, acc_width=acc, words=O * K // U)
        # u's inputs are final long before MM_DW starts (the shifts of dY'' and X'')
        m.d.comb += [upd.i_exp_base.eq(exp_base), upd.i_shift_dy.eq(shifts[4]), upd.i_shift_x.eq(shifts[5])]
        # a dW row at the result skid buffer's output; its first word of W[o, k]: o * K/U + k/U, with
        # o = rm * R + row and k = rn * C (the updater adds the chunk's k/U)
        m.d.comb += [upd.i_dw.valid.eq(me.run & dw_job & rv0), upd.i_dw.payload.data.eq(res.data),
                     upd.i_dw.payload.word.eq(Cat(rn[:lK - log_c], res.row[:log_r], rm)),
                     res_take.eq(me.run & rv0 & Mux(dw_job, upd.i_dw.ready, self.o_res.ready))]
        # W's read port: the update, else the F engine while running, else the host's read-back
        m.d.comb += [w_rd.addr.eq(Mux(upd.o_w_rd_en, upd.o_w_rd_addr,
                                      Mux(running, f_w_addr, host.o_w_rd_addr))),
                     upd.i_w_rd_data.eq(w_rd.data)]
        with m.If(upd.o_w_rd_en):
            m.d.comb += w_rd.en.eq(1)
        # W's write port: the update, else a host load
        m.d.comb += [w_wr.addr.eq(Mux(upd.o_w_wr_en, upd.o_w_wr_addr, host.o_wr_addr >> log_u)),
                     w_wr.data.eq(Mux(upd.o_w_wr_en, upd.o_w_wr_data, Cat(*[host.o_wr_data] * U)))]
        with m.If(upd.o_w_wr_en):
            m.d.comb += w_wr.en.eq((1 << U) - 1)
        with m.If(upd.o_clip):
            m.d.sync += self.o_w_saturated.eq(1)
        with m.If(upd.o_w_abs_valid):
            m.d.sync += max_w_next.eq(max_w_next | upd.o_w_abs)
        m.d.comb += me.finish.eq((rows_left == 0) & ~upd.o_busy)

        with m.If(mac.o_overflow):
            m.d.sync += self.o_mac_overflow.eq(1)
        with m.If(self.i_clear):
            m.d.sync += [self.o_w_saturated.eq(0), self.o_mac_overflow.eq(0)]
        m.d.comb += mac.i_clear.eq(self.i_clear)

    def _build_sequencing(self, m, ns):
        """Step start and end: engines reset, the next step's maximum of W."""
        (done, exp_base, fe, host, max_w_next, me, qa, qb, running, x_uns) = ns.get(
            "done exp_base fe host max_w_next me qa qb running x_uns")
        # ---- step sequencing -----------------------------------------------------------------------
        with m.If(~running & self.i_start):
            m.d.sync += [running.eq(1), done.eq(0), x_uns.eq(self.i_x_unsigned), exp_base.eq(self.i_exp_base),
                         max_w_next.eq(0)]
            for e in (fe, qa, qb, me):
                e.reset()
        with m.If(running & done[M_DW]):
            m.d.sync += running.eq(0)
        # the updated W's maximum is the next step's
        m.d.comb += [host.i_max_w_load.eq(running & done[M_DW]), host.i_max_w.eq(max_w_next)]
