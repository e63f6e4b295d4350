"""Command group 2: one HDQT training step of a linear layer (:class:`hw.hdqt.layer.HdqtLayer`).

The layer's sizes (batch ``B``, inputs ``K``, outputs ``O``) and its MAC array are fixed when the
design is built (:mod:`boards.config`); a step trains ``Y = X W^T`` with X: B x K, W: O x K (master
weights, 16-bit fixed point) and the output gradient dY: B x O, all 16-bit signed, row-major.

Commands (multi-byte fields little-endian):

* ``HDQT_LOAD`` (0x20): ``sel`` (1 byte: bits 1:0 the tensor, 0 = X, 1 = W, 2 = dY; bit 7 =
  ``x_unsigned``, latched by every load: X is a non-negative tensor, quantized unsigned), ``addr``
  (2 bytes), then int16 elements written to ``addr``, ``addr + 1``, ... A load of element 0 of X or
  W restarts that tensor's running maximum (the layer tracks ``max|.|`` while loading), so load whole
  tensors, element 0 first. Bad tensor, odd element bytes or elements beyond the tensor:
  ``ERR_LENGTH`` with nothing written.
* ``HDQT_STEP`` (0x21): ``exp_base`` (int16: ``dy_exp + x_exp - lr_shift + w_frac - log2 n_B``,
  :func:`sim.hdqt.golden.ref_exp_base`). Clears the layer's flags, runs one training step (forward,
  input gradient, weight gradient, SGD update of W in place). Reply (11 bytes): the six quantizer
  shifts (x, w, w', dy', dy'', x''; one byte each), flags (bit 0 a master weight saturated, bit 1 the
  MAC array's wide accumulator saturated), the step's cycles (u32). Payload not 2 bytes:
  ``ERR_LENGTH``.
* ``HDQT_READ`` (0x22): ``what`` (1 byte: 0 = results, 1 = W), ``addr`` (2), ``count`` (2). Results
  (int32 each, at most 128 per reply) are the MAC array's result rows in the order the layer produced
  them: Y's ``B*O/cols`` rows of ``cols`` accumulators (tiles of ``rows`` rows, tile-row-major), then
  dX's ``B*K/cols`` rows; the host reorders them (:func:`result_order`). W: int16 each (at most 256
  per reply). Out of range: ``ERR_LENGTH``.

Decision: results are kept in an on-chip result memory in arrival order rather than streamed into
the reply, because Y and dX together exceed one reply frame at every useful size and the layer
produces them in the middle of the step (the layer waits while a result is being stored, so
nothing is lost). A MAC-array overflow during a step also sets the group's sticky ``error`` (block
flag 2 in ``STATUS``) until ``RESET``; a saturated master weight is ordinary training behaviour
(weights clip at the Q2.13 rails) and only reported in the step's reply.

Cycle cost: a command's first header byte is taken two cycles after its start (``DISPATCH``
registers its header checks), and the header is checked three cycles after its last byte (the
range a LOAD or READ touches is summed into a register, then compared with its limit); a load
takes one cycle per element; the step takes the layer's cycles
(:meth:`hw.hdqt.layer.HdqtLayer.mac_macs` MACs at up to ``2*rows*cols`` per cycle, plus the FWHT and
quantizer passes at one element per cycle) plus ``cols - 1`` cycles per result row; its reply
offers a byte every other cycle at most (the byte comes from a register).

Timing: the states are one-hot (:class:`hw.control.onehot.OneHotFSM`), and no compare of a
counter or of the command lies between a handshake and a state or enable (docs/control.md).
"""

from typing import NamedTuple

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import enum
from amaranth.lib.memory import Memory

from ..hdqt.layer import HdqtLayer
from ..hdqt.spec import LayerConfig
from ..lib.logic import above_pow2, below_const
from .handler import Handler, capture_bytes, send_low_byte
from .onehot import OneHotFSM
from .protocol import MAX_PAYLOAD, Cmd, Status

__all__ = ["HDQTHandler", "Tensor", "ReadSource", "StepFlag", "ResultSlot", "TensorSizes",
           "result_order", "load_select", "MAX_READ_RESULTS", "MAX_READ_WEIGHTS", "STEP_REPLY_BYTES"]

MAX_READ_RESULTS = 128   # 4-byte results in a 512-byte reply
MAX_READ_WEIGHTS = 256   # 2-byte weights in a 512-byte reply
STEP_REPLY_BYTES = 11
X_UNSIGNED_BIT = 7       # of HDQT_LOAD's ``sel`` byte
#: Header bytes of each command (the payload's first bytes)
HEADER_BYTES = {Cmd.HDQT_LOAD: 3, Cmd.HDQT_STEP: 2, Cmd.HDQT_READ: 5}
STATES = ("IDLE", "DISPATCH", "HDR", "SUMS", "VERDICT", "CHECK", "LOAD", "START", "RUN", "STEP_REPLY",
          "R_FETCH", "R_LATCH", "W_REQ", "W_WAIT", "SEND", "DONE")


class Tensor(enum.Enum, shape=2):
    """``HDQT_LOAD``'s tensor (``sel`` bits 1:0)."""
    X = 0
    W = 1
    DY = 2


class ReadSource(enum.Enum, shape=1):
    """``HDQT_READ``'s ``what`` byte (bits 7:1 must be 0)."""
    RESULTS = 0
    W = 1


class StepFlag(enum.Flag, shape=2):
    """The flags byte of ``HDQT_STEP``'s reply."""
    W_SATURATED = 1     # a master weight saturated (ordinary training behaviour)
    MAC_OVERFLOW = 2    # the MAC array's wide accumulator saturated (also sets ``error``)


class TensorSizes(NamedTuple):
    """Elements of each loadable tensor."""
    x: int
    w: int
    dy: int


class ResultSlot(NamedTuple):
    """Where one stored result goes: ``tensor`` 0 = Y, 1 = dX; ``row``, ``col`` within it."""
    tensor: int
    row: int
    col: int


def load_select(tensor, x_unsigned):
    """``HDQT_LOAD``'s ``sel`` byte for a :class:`Tensor` and the ``x_unsigned`` flag."""
    return Tensor(tensor).value | (int(bool(x_unsigned)) << X_UNSIGNED_BIT)


def result_order(batch, k_dim, o_dim, rows, cols):
    """Where each stored result goes: a :class:`ResultSlot` per result-memory address, following the
    layer's output order (tiles ``rows x cols``, tile-row-major over the output, ``rows`` result
    rows per tile)."""
    order = []
    for tensor, n_cols in ((0, o_dim), (1, k_dim)):
        for mb in range(batch // rows):
            for nb in range(n_cols // cols):
                for r in range(rows):
                    for c in range(cols):
                        order.append(ResultSlot(tensor, mb * rows + r, nb * cols + c))
    return order


class _Registers:
    """The handler's registers: the command's fields, counters and the step's outcome."""

    def __init__(self, n_results, cols, acc_width):
        self.status = Signal(8)
        self.count = Signal(range(MAX_PAYLOAD + 1))  # payload bytes taken
        self.rep = Signal(4)                    # STEP's reply bytes sent
        self.rep_byte = Signal(8)               # STEP's reply byte `rep`, when `rep_fresh`
        self.rep_fresh = Signal()
        self.sel = Signal(8)                    # LOAD: tensor and x_unsigned; READ: what
        self.addr = Signal(16)
        self.num = Signal(16)
        self.lo = Signal(8)
        self.x_uns = Signal()
        self.exp_base = Signal(signed(16))
        self.cycles = Signal(32)
        self.res_ptr = Signal(range(n_results + 1))
        self.res_c = Signal(range(cols))
        self.err = Signal()
        self.flags = Signal(2)                  # StepFlag bits
        # value being sent, low byte first; signed, so that the byte shifts sign-extend it to the
        # reply's 4-byte results
        self.out = Signal(signed(max(acc_width, 16)))
        self.nbyte = Signal(3)
        self.width = Signal(3)                  # bytes per value being read back
        self.byte_last = Signal()               # SEND: the byte offered is the value's last
        # Registered a step ahead, so that no adder or wide compare lies between a byte taken (or
        # the command's fields) and the status or the state: the command, the header's length and
        # whether the payload is shorter (at the start); the end of the range a LOAD or READ
        # touches, its limit and the other reasons to refuse it (SUMS); the verdict (VERDICT).
        # the header's length, set in DISPATCH; never 0 (not at reset either), so that eq_hdr
        # registered in DISPATCH from the previous command's is false (test_control_hdqt fails
        # with a reset value of 0)
        self.hdr_len = Signal(3, init=HEADER_BYTES[Cmd.HDQT_READ])
        self.hdr_short = Signal()
        self.eq_hdr, self.eq_hdr_m1 = Signal(), Signal()
        self.is_load, self.is_step = Signal(), Signal()   # the command (neither: READ)
        self.unknown = Signal()                 # not a command of this group
        self.last_value = Signal()              # READ: num == 0, a cycle late
        self.hdr_open = Signal()                # HDR takes bytes: a known command, not short
        self.shorter = {n: Signal(name=f"shorter_{n}") for n in sorted(set(HEADER_BYTES.values()))}
        self.end = Signal(17)
        self.limit = Signal(16)
        self.bad = Signal()
        self.length_m1 = Signal(16)             # the payload's length - 1 (mod 2**16)
        self.bad_num = Signal()                 # READ: a count of 0 or above the limit
        self.len_is = {n: Signal(name=f"len_is_{n}") for n in (2, 5)}   # length == n, at the start
        self.refuse = Signal()


class HDQTHandler(Handler):
    """The HDQT command group (see the module docstring).

    Parameters
    ----------
    **params
        :class:`hw.hdqt.layer.HdqtLayer` parameters (``batch``, ``k_dim``, ``o_dim``, ``had_cap``,
        ``rows``, ``cols``, ``acc_width``, ``tile_bits``, ``backend``, ``primitives``,
        ``lane_dsps``); a bad one raises the layer config's ``ValueError``.
    """

    def __init__(self, **params):
        self._params = dict(params)
        # Bad parameters raise here, with the layer config's message.
        self.config = cfg = LayerConfig(**params)
        self.batch, self.k_dim, self.o_dim = cfg.batch, cfg.k_dim, cfg.o_dim
        self.rows, self.cols, self.acc_width = cfg.rows, cfg.cols, cfg.acc_width
        self.sizes = TensorSizes(x=self.batch * self.k_dim, w=self.o_dim * self.k_dim,
                                 dy=self.batch * self.o_dim)
        self.n_results = self.batch * (self.o_dim + self.k_dim)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.layer = layer = HdqtLayer(**self._params)
        m.submodules.results = rmem = Memory(shape=signed(self.acc_width), depth=self.n_results, init=[])
        r_wr, r_rd = rmem.write_port(), rmem.read_port()
        bus = self.bus
        r = _Registers(self.n_results, self.cols, self.acc_width)

        m.d.comb += [bus.error.eq(r.err), layer.i_x_unsigned.eq(r.x_uns), layer.i_exp_base.eq(r.exp_base)]
        with m.If(layer.o_mac_overflow):
            m.d.sync += r.err.eq(1)
        self._store_results(m, layer, r_wr, r)
        # LOAD's `count == length` is chosen, not compared, behind a byte taken: eq_len / eq_len_m1
        # are count == length / count + 1 == length of the cycle before (registered in every
        # cycle, outside the states) and `took` says whether that cycle took a byte (and so
        # counted it), so the payload's ready does not wait for a compare of the count. LOAD is
        # entered after SUMS and CHECK, which take no byte, so both are fresh in its first cycle.
        # HDR's `count == hdr_len` likewise (see DISPATCH for its first cycle).
        # (`count + 1 == n` as `count == n - 1`, with n - 1 registered: no adder before the compare;
        # the length - 1 of a length of 0 wraps to a value the count never reaches)
        eq_len, eq_len_m1, took = Signal(), Signal(), Signal()
        m.d.sync += [eq_len.eq(r.count == bus.length), eq_len_m1.eq(r.count == r.length_m1),
                     r.eq_hdr.eq(r.count == r.hdr_len), r.eq_hdr_m1.eq(r.count == r.hdr_len - 1),
                     took.eq(bus.i_data.valid & bus.i_data.ready)]
        # READ counts the values left down in `num`; the last one, registered: `num` changes only
        # before a value's SEND, which lasts at least two cycles (``width`` >= 2), so the compare
        # is fresh at its last byte.
        m.d.sync += r.last_value.eq(r.num == 0)
        r.load_end = Mux(took, eq_len_m1, eq_len)
        r.hdr_end = Mux(took, r.eq_hdr_m1, r.eq_hdr)

        fsm = OneHotFSM(m, STATES, prefix="hq")
        with fsm.state("IDLE"):
            with m.If(bus.start):
                # The command's decode and "is the payload shorter than each header" registered
                # with the start; DISPATCH picks the command's, so neither the command nor the
                # length reaches `hdr_open` through more than a register.
                cmd = bus.cmd
                m.d.sync += [r.count.eq(0), r.status.eq(Status.OK),
                             r.is_load.eq(cmd == Cmd.HDQT_LOAD), r.is_step.eq(cmd == Cmd.HDQT_STEP),
                             r.unknown.eq(~cmd.matches(*HEADER_BYTES))]
                m.d.sync += [r.shorter[n].eq(below_const(bus.length, n)) for n in r.shorter]
                m.d.sync += [r.len_is[n].eq(bus.length == n) for n in r.len_is]
                m.d.sync += r.length_m1.eq(bus.length - 1)
                fsm.goto("DISPATCH")
        with fsm.state("DISPATCH"):
            # count is 0 and hdr_len not 0 (the previous command's header length, or its reset
            # value), so eq_hdr registered here is false, and no byte is taken here, so HDR's
            # first cycle reads eq_hdr: not the header's end, as it needs. This command's header
            # length is set here from the registered decode (from the command at the start, the
            # controller's command decode reached its enable).
            def by_cmd(values):
                return Mux(r.is_load, values[Cmd.HDQT_LOAD], Mux(r.is_step, values[Cmd.HDQT_STEP],
                                                                 values[Cmd.HDQT_READ]))
            short = by_cmd({c: r.shorter[n] for c, n in HEADER_BYTES.items()})
            m.d.sync += [r.hdr_short.eq(short), r.hdr_open.eq(~r.unknown & ~short),
                         r.hdr_len.eq(by_cmd(HEADER_BYTES))]
            fsm.goto("HDR")
        with fsm.state("HDR"):
            self._header(m, fsm, r)
        with fsm.state("SUMS"):
            self._sums(m, r)
            fsm.goto("VERDICT")
        with fsm.state("VERDICT"):
            # the range's compare, registered: CHECK's actions (the layer's clear among them)
            # follow a flip-flop, not a carry chain
            m.d.sync += r.refuse.eq(r.bad | r.bad_num | (r.end > r.limit))
            fsm.goto("CHECK")
        with fsm.state("CHECK"):
            self._check(m, fsm, layer, r)
        with fsm.state("LOAD"):
            self._load(m, fsm, layer, r)
        self._step(m, fsm, layer, r)
        self._read_back(m, fsm, layer, r_rd, r)
        with fsm.state("DONE"):
            m.d.comb += [bus.done.eq(1), bus.status.eq(r.status)]
            fsm.goto("IDLE")
        return m

    def _store_results(self, m, layer, r_wr, r):
        """Result rows into the result memory, one accumulator per cycle; the layer waits meanwhile."""
        C = self.cols
        row = layer.o_res.payload.data
        m.d.comb += [r_wr.addr.eq(r.res_ptr), r_wr.data.eq(row[0])]
        for c in range(1, C):
            with m.If(r.res_c == c):
                m.d.comb += r_wr.data.eq(row[c])
        with m.If(layer.o_res.valid & (r.res_ptr < self.n_results)):
            m.d.comb += r_wr.en.eq(1)
            m.d.sync += r.res_ptr.eq(r.res_ptr + 1)
            with m.If(r.res_c == C - 1):
                m.d.comb += layer.o_res.ready.eq(1)
                m.d.sync += r.res_c.eq(0)
            with m.Else():
                m.d.sync += r.res_c.eq(r.res_c + 1)

    def _header(self, m, fsm, r):
        """``HDR``: header bytes: LOAD sel, addr (3); STEP exp_base (2); READ what, addr, count (5).
        An unknown command answers ``ERR_UNKNOWN_CMD`` here, having taken nothing."""
        bus = self.bus
        with m.If(r.unknown):
            m.d.sync += r.status.eq(Status.ERR_UNKNOWN_CMD)
            fsm.goto("DONE")
        with m.Elif(r.hdr_end):
            m.d.sync += r.hdr_open.eq(0)
            fsm.goto("SUMS")
        with m.Elif(r.hdr_short):
            m.d.sync += r.status.eq(Status.ERR_LENGTH)
            fsm.goto("DONE")
        # `hdr_open` holds from the start to the header's end (never for a command refused here),
        # so the ready is one LUT of registers
        m.d.comb += bus.i_data.ready.eq(r.hdr_open & ~r.hdr_end)
        with m.If(bus.i_data.valid & bus.i_data.ready):
            m.d.sync += r.count.eq(r.count + 1)
        # The byte offered is written into its place whether or not it is taken, so the header
        # registers' enables do not wait for the ready's decisions: the count is below 5 here (its
        # low 3 bits place the byte), and a byte offered but not taken is at the header's end
        # (LOAD: `num`, STEP: `addr`, READ: no place, none of which that command reads) or in a
        # command refused unknown or short, whose fields nothing reads.
        with m.If(bus.i_data.valid):
            capture_bytes(m, r.count[:3], bus.i_data.payload,
                          [[r.sel, r.exp_base[:8]], [r.addr[:8], r.exp_base[8:]], [r.addr[8:]],
                           [r.num[:8]], [r.num[8:]]])

    def _sums(self, m, r):
        """``SUMS``: the parts of the header's verdict, registered for ``CHECK``: the end of the range a
        LOAD or READ touches (the element after its last) and the limit it must not pass, and every
        other reason to refuse the command (``bad``, and READ's count in ``bad_num``)."""
        bus = self.bus
        tensor = r.sel[:2]
        reads_w = r.sel[0]              # ReadSource.W
        # READ: `num` above the limit as bit tests (the limits are powers of two), not a carry chain
        too_many = Mux(reads_w, above_pow2(r.num, MAX_READ_WEIGHTS), above_pow2(r.num, MAX_READ_RESULTS))
        with m.If(r.is_load):
            # a known tensor, whole elements, all within the tensor
            m.d.sync += [r.end.eq(r.addr + ((bus.length - 3) >> 1)),
                         r.bad.eq((tensor == 3) | ~bus.length[0])]
            with m.Switch(tensor):
                for t in Tensor:
                    with m.Case(t):
                        m.d.sync += r.limit.eq(self.sizes[t.value])
        with m.Elif(r.is_step):
            # a 2-byte payload (the header); nothing to range-check
            m.d.sync += [r.end.eq(0), r.limit.eq(0), r.bad.eq(~r.len_is[2])]
        with m.Else():
            # a 5-byte payload, a known source, 1..per values within it (the count: bad_num)
            m.d.sync += [r.end.eq(r.addr + r.num),
                         r.limit.eq(Mux(reads_w, self.sizes.w, self.n_results)),
                         r.bad.eq(~r.len_is[5] | (r.sel[1:] != 0))]
        # READ's count verdict in a register of its own (ORed in VERDICT), so that the count's
        # compares are not behind the other reasons' logic (seed 2's worst path at 48 MHz)
        m.d.sync += r.bad_num.eq(~r.is_load & ~r.is_step & ((r.num == 0) | too_many))

    def _check(self, m, fsm, layer, r):
        """``CHECK``: refuse the command (``ERR_LENGTH``, VERDICT's ``refuse``) or start it. A LOAD
        latches ``x_unsigned``; a STEP clears the layer's flags and the result pointer; a READ sets
        its value width."""
        with m.If(r.refuse):
            m.d.sync += r.status.eq(Status.ERR_LENGTH)
            fsm.goto("DONE")
        with m.Elif(r.is_load):
            m.d.sync += r.x_uns.eq(r.sel[X_UNSIGNED_BIT])
            fsm.goto("LOAD")
        with m.Elif(r.is_step):
            m.d.comb += layer.i_clear.eq(1)
            m.d.sync += [r.res_ptr.eq(0), r.res_c.eq(0), r.cycles.eq(0)]
            fsm.goto("START")
        with m.Else():
            reads_w = r.sel[0]
            m.d.sync += r.width.eq(4 - 2 * reads_w)
            with m.If(reads_w):
                fsm.goto("W_REQ")
            with m.Else():
                fsm.goto("R_FETCH")

    def _load(self, m, fsm, layer, r):
        """``LOAD``: int16 elements (low byte first) into the layer, one per cycle at most."""
        bus = self.bus
        take = bus.i_data.valid & bus.i_data.ready
        with m.If(r.load_end):
            fsm.goto("DONE")
        with m.Elif(r.count[0]):
            # First byte of an element (the 3-byte header leaves odd offsets first).
            m.d.comb += bus.i_data.ready.eq(1)
            with m.If(take):
                m.d.sync += [r.lo.eq(bus.i_data.payload), r.count.eq(r.count + 1)]
        with m.Else():
            m.d.comb += [layer.i_load.valid.eq(bus.i_data.valid),
                         layer.i_load.payload.buf.eq(r.sel[:2]),
                         layer.i_load.payload.addr.eq(r.addr),
                         layer.i_load.payload.data.eq(r.lo | (bus.i_data.payload << 8)),
                         bus.i_data.ready.eq(layer.i_load.ready)]
            with m.If(take):
                m.d.sync += [r.count.eq(r.count + 1), r.addr.eq(r.addr + 1)]

    def _step(self, m, fsm, layer, r):
        """``START``, ``RUN``, ``STEP_REPLY``: run the layer, count its cycles, send the reply."""
        bus = self.bus
        with fsm.state("START"):
            m.d.comb += layer.i_start.eq(1)
            fsm.goto("RUN")
        with fsm.state("RUN"):
            m.d.sync += r.cycles.eq(r.cycles + 1)
            with m.If(~layer.o_busy):
                m.d.sync += [r.flags.eq(layer.o_w_saturated | (layer.o_mac_overflow << 1)),
                             r.rep.eq(0), r.rep_fresh.eq(0)]
                fsm.goto("STEP_REPLY")
        with fsm.state("STEP_REPLY"):
            # 6 shift bytes, the flags byte, 4 cycle-count bytes. The layer's shifts are read as they
            # are: they change only while a step runs. The byte is offered from a register loaded
            # from the selection in every cycle, so the selection is not in the reply's path; after
            # a byte is taken the register is stale for a cycle (`rep_fresh` low: 11 cycles a step).
            byte = Signal(8)
            shifts = layer.o_shifts.as_value()
            for i in range(6):
                with m.If(r.rep == i):
                    m.d.comb += byte.eq(shifts[6 * i:6 * i + 6])
            with m.If(r.rep == 6):
                m.d.comb += byte.eq(r.flags)
            for i in range(4):
                with m.If(r.rep == 7 + i):
                    m.d.comb += byte.eq(r.cycles[8 * i:8 * i + 8])
            m.d.sync += r.rep_byte.eq(byte)
            with m.If(r.rep == STEP_REPLY_BYTES):
                fsm.goto("DONE")
            with m.Else():
                m.d.comb += [bus.o_data.valid.eq(r.rep_fresh), bus.o_data.payload.eq(r.rep_byte)]
                with m.If(r.rep_fresh & bus.o_data.ready):
                    m.d.sync += [r.rep.eq(r.rep + 1), r.rep_fresh.eq(0)]
                with m.Else():
                    m.d.sync += r.rep_fresh.eq(1)

    def _read_back(self, m, fsm, layer, r_rd, r):
        """``R_FETCH``, ``R_LATCH`` (results: a memory read, one cycle), ``W_REQ``, ``W_WAIT`` (W
        through the layer's read stream, idle only), then ``SEND`` each value's bytes."""
        with fsm.state("R_FETCH"):
            m.d.comb += r_rd.addr.eq(r.addr)
            fsm.goto("R_LATCH")
        with fsm.state("R_LATCH"):
            m.d.sync += [r.out.eq(r_rd.data), r.nbyte.eq(0), r.byte_last.eq(0), r.addr.eq(r.addr + 1),
                         r.num.eq(r.num - 1)]
            fsm.goto("SEND")
        with fsm.state("W_REQ"):
            m.d.comb += [layer.i_rd.valid.eq(1), layer.i_rd.payload.eq(r.addr)]
            with m.If(layer.i_rd.ready):
                m.d.sync += [r.addr.eq(r.addr + 1), r.num.eq(r.num - 1)]
                fsm.goto("W_WAIT")
        with fsm.state("W_WAIT"):
            m.d.comb += layer.o_rd.ready.eq(1)
            with m.If(layer.o_rd.valid):
                m.d.sync += [r.out.eq(layer.o_rd.payload), r.nbyte.eq(0), r.byte_last.eq(0)]
                fsm.goto("SEND")
        with fsm.state("SEND"):
            # `byte_last` registered with each byte taken (a value is 2 or 4 bytes, so its first
            # is never its last), so the transmitter's ready reaches the next state through no
            # compare of the byte count
            with send_low_byte(m, self.bus, r.out, r.nbyte):
                m.d.sync += r.byte_last.eq(r.nbyte + 2 == r.width)
                with m.If(r.byte_last):
                    with m.If(r.last_value):
                        fsm.goto("DONE")
                    with m.Elif(r.sel[0]):
                        fsm.goto("W_REQ")
                    with m.Else():
                        fsm.goto("R_FETCH")
