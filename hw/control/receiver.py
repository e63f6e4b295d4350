"""The controller's receive side: frame parser, payload buffer writer, frame checks, skip of refused
frames, idle timeout (see :class:`hw.control.controller.Controller` for the frame rules)."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..params import check_int
from . import protocol
from .crc import crc16_next
from .onehot import OneHotFSM
from .protocol import FLAG_BITS, SYNC_CMD, SYNC_SEQ_CMD, Status

__all__ = ["IdleTimer", "ReplyRequest", "FrameReceiver"]


class ReplyRequest(wiring.Signature):
    """A reply to send, from the side that decides it: ``go`` pulses for one cycle with the reply's
    ``status`` and payload ``length`` (both 0 while ``go`` is low, so that two requesters can be
    merged with an OR). Sent only while the transmitter is idle (the receiver waits for that)."""

    def __init__(self):
        super().__init__({"go": Out(1), "status": Out(8), "length": Out(16)})


class IdleTimer(wiring.Component):
    """Counts the cycles since the last ``i_activity``, saturating at ``timeout``.

    ``o_timed_out`` is high from the ``timeout``-th cycle without activity on, and low in the
    cycle after an activity; it is a function of two flip-flops (the count runs out at its top bit,
    so no compare of the count is in its users' paths or in front of the count's own enable).

    With ``watchdog`` the same count is also a command's watchdog (the receiver's idle timeout
    and the executor's watchdog never run at once, so one counter serves both): ``i_start``
    loads it so that ``o_expired`` (its top bit) is high once ``watchdog`` cycles, counted from
    the one after the start's, have passed, and while ``i_hold`` activities are ignored (the
    command executes).
    ``o_timed_out`` is meaningful only ``timeout`` cycles after an activity outside ``i_hold``.
    """

    def __init__(self, timeout, watchdog=None):
        self._timeout = check_int("timeout", timeout, 2, 1 << 30)
        self._watchdog = None if watchdog is None else check_int("watchdog", watchdog, 2, 1 << 30)
        members = {"i_activity": In(1), "o_timed_out": Out(1)}
        if watchdog is not None:
            members.update({"i_start": In(1), "i_hold": In(1), "o_expired": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        # The activity is registered first (it comes from a handshake, the count's reset and
        # enable reach many flip-flops); the count starts a cycle later. It counts up from
        # 2**k - (timeout - 1) and stops when its top bit (the timeout) is set, timeout - 1 counts
        # after the activity's register fell. The watchdog's start loads 2**k - watchdog.
        activity = Signal()
        k = ceil_log2(max(self._timeout - 1, self._watchdog or 1, 1))
        # A long count (k = 24 for a 48 MHz board's watchdog) is two counters, so no carry
        # chain runs through all of it: the low `split` bits count, and their carry out is
        # registered into the high part a cycle later. The top bit (the only one read) then rises
        # one cycle late, which starting one count higher makes up for; that needs at least two
        # counts to go (timeout >= 3).
        split = min(8, k // 2) if k >= 4 and self._timeout >= 3 else 0
        start = (1 << k) - (self._timeout - 1) + bool(split)
        # Reset-less: the count is read only after an activity or a start has loaded it (see
        # above), and with a reset the domain's reset net, from its one flip-flop, went through a
        # LUT into the count's enable (reset over enable is not an iCE40 flip-flop's own): the
        # iCEBreaker HDQT bitstream's worst path at seed 1.
        idle = Signal(k + 1, init=start, reset_less=True)
        carry = Signal(reset_less=True)
        timed_out = idle[k]
        m.d.sync += activity.eq(self.i_activity)
        reload = activity if self._watchdog is None else activity & ~self.i_hold
        with m.If(reload):
            m.d.sync += [idle.eq(start), carry.eq(0)]
        with m.Elif(~timed_out):
            if split:
                m.d.sync += [Cat(idle[:split], carry).eq(idle[:split] + 1),
                             idle[split:].eq(idle[split:] + carry)]
            else:
                m.d.sync += idle.eq(idle + 1)
        if self._watchdog is not None:
            # last, so that it is the count's synchronous load
            with m.If(self.i_start):
                m.d.sync += [idle.eq((1 << k) - self._watchdog + bool(split)), carry.eq(0)]
            m.d.comb += self.o_expired.eq(timed_out)
        m.d.comb += self.o_timed_out.eq(timed_out & ~activity)
        return m


class FrameReceiver(wiring.Component):
    """Parses frames from ``i_rx``, writes their payload into the payload buffer and decides each
    frame: refused (a reply request on ``o_reply``) or executed (``o_start``).

    Cycle behaviour: one byte every other cycle while hunting (the parser decides on a registered
    compare of each byte), one byte per cycle inside a frame, except for one cycle without a byte
    after the length (a registered compare too); payload byte ``i`` is written to buffer address
    ``(i + 1) mod 2**ceil_log2(max_payload)`` in the cycle it is taken (so a buffer of that many
    words; from address 1, so that the reader's address ends at the length itself). The cycle
    after the second CRC byte the frame is checked (CRC, then ``seq``, then ``i_present``; the
    CRC and ``seq`` compares were registered while the bytes arrived) and either refused, with a
    reply request, or started.
    Reply requests and ``o_start`` are registered: they are high in the cycle after the decision;
    ``o_executing`` is high from the cycle of ``o_start`` until ``i_exec_done``. An oversize header
    is refused at once and its ``len + 2`` bytes are then taken and discarded. After any reply
    request the receiver takes no byte until the transmitter is idle again (``i_tx_idle`` and no
    request pending in ``i_reply_go``), then hunts for the next sync byte. ``i_rx.ready`` is a
    function of the parser's state and registered flags only.

    Members
    -------
    i_rx : In(stream.Signature(8))
        Bytes from the line.
    i_rx_busy : In(1)
        The UART is inside a byte (keeps the idle timeout from firing).
    payload_buf : In(WritePort.Signature)
        Write port of the ``max_payload``-byte payload buffer.
    o_cmd, o_length, o_seq, o_sequenced : Out
        The frame's header: ``cmd`` (``SYNC_CMD`` until the cmd byte arrives), ``len``, ``seq`` and
        whether it began with ``SYNC_SEQ_CMD``. ``o_length`` is ``len`` for a frame that is not
        oversize (it keeps only the bits of ``max_payload``; the others are 0).
    o_expected_seq : Out(8)
        The seq the next sequenced frame must carry; counts up when one passed its CRC and seq
        checks.
    i_present : In(1)
        ``o_cmd``'s group exists.
    o_start : Out(1)
        The frame checked out: execute it.
    o_executing : Out(1)
        From the cycle after ``o_start`` until ``i_exec_done``.
    i_exec_done : In(1)
        The executor has requested the command's reply.
    o_reply : Out(ReplyRequest())
        Replies for refused frames (payload length 0).
    i_tx_idle : In(1)
        The transmitter is idle.
    i_reply_go : In(1)
        A reply is requested in this cycle (by anyone).
    o_events : Out(8)
        One-hot flag bits (:data:`hw.control.protocol.FLAG_BITS`) raised in this cycle.
    o_watchdog : Out(1)
        With ``watchdog``: the executor's watchdog expired (high once ``watchdog`` cycles,
        counted from the one after ``o_start``'s, have passed), from the idle timer's count.
    """

    #: the states in which a byte is taken (in IDLE and DRAIN, unless the flag says otherwise)
    _STATES = ("IDLE", "SEQ", "CMD", "LEN0", "LEN1", "LENGTH", "PAYLOAD", "CRC0", "CRC1", "CHECK", "EXEC",
               "DRAIN", "WAIT_TX")
    _TAKING = frozenset({"IDLE", "SEQ", "CMD", "LEN0", "LEN1", "PAYLOAD", "CRC0", "CRC1", "DRAIN"})
    #: the states inside a frame, in which an idle line truncates it (all of them take a byte)
    _CHECKED = ("SEQ", "CMD", "LEN0", "LEN1", "PAYLOAD", "CRC0", "CRC1")

    def __init__(self, *, timeout, max_payload, watchdog=None):
        self._timeout = check_int("timeout", timeout, 16, 1 << 30)
        self._max_payload = check_int("max_payload", max_payload, 1, 0xFFFF)
        self._watchdog = None if watchdog is None else check_int("watchdog", watchdog, 16, 1 << 30)
        extra = {} if watchdog is None else {"o_watchdog": Out(1)}
        super().__init__({
            **extra,
            "i_rx": In(stream.Signature(8)),
            "i_rx_busy": In(1),
            "payload_buf": In(WritePort.Signature(addr_width=ceil_log2(max_payload), shape=8)),
            "o_cmd": Out(8),
            "o_length": Out(16),
            "o_seq": Out(8),
            "o_sequenced": Out(1),
            "o_expected_seq": Out(8),
            "i_present": In(1),
            "o_start": Out(1),
            "o_executing": Out(1),
            "i_exec_done": In(1),
            "o_reply": Out(ReplyRequest()),
            "i_tx_idle": In(1),
            "i_reply_go": In(1),
            "o_events": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.idle_timer = timer = IdleTimer(self._timeout, self._watchdog)

        cmd, seq, sequenced = Signal(8, reset_less=True), self.o_seq, self.o_sequenced
        m.d.comb += self.o_cmd.eq(cmd)
        # The frame's len as far as it is executed (at most max_payload, so its low bits; o_length's
        # higher bits are 0, and so constants for the executor and the handlers).
        length = Signal(self._max_payload.bit_length())
        m.d.comb += self.o_length.eq(length)
        # Payload bytes received (the payload buffer's write address), and a down counter of the
        # frame's bytes: loaded with len from the length bytes, it counts the payload bytes down
        # to 0, or, draining an oversize frame, the len + 2 bytes down to -2. 17 bits, as an
        # oversize frame declares up to 0xFFFF payload bytes plus 2 CRC bytes, which must not wrap
        # to a short drain.
        count = Signal(range(self._max_payload + 2))
        left = Signal(17)
        # running CRC of the incoming frame: set to its initial value in every IDLE cycle (below),
        # so it needs no reset
        crc = Signal(16, reset_less=True)
        # Registered decisions, computed a cycle ahead so that no compare of a counter or of the
        # CRC lies between the byte taken and the parser's next state.
        payload_last = Signal()       # PAYLOAD: the byte taken now is the last one (left == 1)
        # payload_last's next value is chosen, not compared, behind the take: at2 / at3 are
        # left == 2 / left == 3 of the cycle before, registered in every cycle (no enable; against
        # constants, on the bits a payload's count uses), and `took` says whether that cycle took
        # a byte, so left == 2 now is Mux(took, at3, at2). LENGTH takes no byte, so in PAYLOAD's
        # first cycle at2 is len == 2.
        at2, at3, took = Signal(), Signal(), Signal()
        len_is1 = Signal()            # LENGTH: len == 1
        drain_done = Signal()         # DRAIN: the drain is out (left == -2)
        crc_ok = Signal()             # CHECK: the received CRC equals the running one
        seq_ok = Signal()             # CHECK: plain, or the seq is the expected one
        sync_seen = Signal()          # IDLE: the byte taken in the cycle before was a sync byte
        oversize = Signal()           # LENGTH: len > max_payload
        empty = Signal()              # LENGTH: len == 0

        byte = self.i_rx.payload
        take = self.i_rx.valid & self.i_rx.ready
        # The CRC takes each byte a cycle after it was taken (from a register, with a registered
        # step flag), so the receive FIFO's block RAM output does not feed its XOR network. It is
        # read at the second CRC byte, two takes after the last byte it covers. The register holds
        # the last byte taken, so at the second CRC byte it is the first one.
        crc_byte, crc_step = Signal(8, name="crc_byte"), Signal(name="crc_step")
        m.d.sync += crc_step.eq(0)
        with m.If(take):
            m.d.sync += crc_byte.eq(byte)
        crc_next = crc16_next(m, crc, crc_byte, name="crc_rx")
        with m.If(crc_step):
            m.d.sync += crc.eq(crc_next)
        m.d.comb += timer.i_activity.eq(take | self.i_rx_busy)
        m.d.sync += [at2.eq(left[:len(count)] == 2), at3.eq(left[:len(count)] == 3), took.eq(take)]
        timed_out = timer.o_timed_out

        # Requests and the start pulse are registered: they leave the cycle after the decision.
        m.d.sync += [self.o_reply.go.eq(0), self.o_reply.status.eq(0), self.o_start.eq(0)]

        # i_rx.ready is a register, set with each transition for the state entered (so the
        # handshake and everything it enables start at a flip-flop); the states are one-hot.
        rx_ready = Signal(init=1)
        m.d.comb += self.i_rx.ready.eq(rx_ready)

        def post(status):
            m.d.sync += [self.o_reply.go.eq(1), self.o_reply.status.eq(status)]

        is_sync = (byte == SYNC_CMD) | (byte == SYNC_SEQ_CMD)
        fsm = OneHotFSM(m, self._STATES, prefix="rx",
                        on_goto=lambda state: [rx_ready.eq(state in self._TAKING)])
        goto = fsm.goto
        # `checked`: the state in the cycle before was one of _CHECKED (registered in every cycle),
        # so the truncation check is one term of four flip-flops and the valid, not of seven state
        # bits, the timer's two and the take. A cycle late is early enough: a _CHECKED state is
        # left only by a take (or by the truncation, which clears `checked`), and the cycle after
        # a take is not timed out.
        checked = Signal()
        m.d.sync += checked.eq(Cat(fsm.bit(state) for state in self._CHECKED).any())
        with fsm.state("IDLE"):
            # Hunting: a sync byte is recognised in the cycle after it was taken (sync_seen),
            # when no byte is taken, so the byte's compare is not in the parser's next state.
            with m.If(sync_seen):
                m.d.sync += sync_seen.eq(0)
                goto("CMD")
                with m.If(sequenced):
                    goto("SEQ")
            with m.Elif(take):
                # No byte is taken in the next cycle, sync byte or not, so the byte's compare
                # reaches sync_seen and sequenced only (not the ready flip-flop).
                m.d.sync += [sync_seen.eq(is_sync), rx_ready.eq(0),
                             sequenced.eq(byte == SYNC_SEQ_CMD)]
            with m.Else():
                m.d.sync += rx_ready.eq(1)
        for state, field, nxt in (("SEQ", seq, "CMD"), ("CMD", cmd, "LEN0"),
                                  ("LEN0", left[:8], "LEN1")):
            with fsm.state(state):
                with m.If(take):
                    m.d.sync += [field.eq(byte), crc_step.eq(1)]
                    goto(nxt)
        with fsm.state("LEN1"):
            full = Cat(left[:8], byte)
            with m.If(take):
                m.d.sync += [left[8:].eq(byte), length.eq(full), crc_step.eq(1),
                             oversize.eq(full > self._max_payload), empty.eq(full == 0),
                             len_is1.eq(full == 1), drain_done.eq(0),
                             seq_ok.eq(~sequenced | (seq == self.o_expected_seq))]
                goto("LENGTH")
        with fsm.state("LENGTH"):
            # The length's compares were registered with its second byte; no byte is taken.
            with m.If(oversize):
                post(Status.ERR_OVERSIZE)
                m.d.comb += self.o_events[FLAG_BITS["oversize"]].eq(1)
                goto("DRAIN")
            with m.Elif(empty):
                goto("CRC0")
            with m.Else():
                m.d.sync += payload_last.eq(len_is1)
                goto("PAYLOAD")
        # The payload buffer's address and data are the count and the byte in every state (its
        # enable says when they are written), so no state decode sits in front of them.
        m.d.comb += [
            self.payload_buf.addr.eq(count),
            self.payload_buf.data.eq(byte),
            self.payload_buf.en.eq(take & fsm.bit("PAYLOAD")),
        ]
        with fsm.state("PAYLOAD"):
            with m.If(take):
                m.d.sync += [crc_step.eq(1), count.eq(count + 1),
                             payload_last.eq(Mux(took, at3, at2))]
                with m.If(payload_last):
                    goto("CRC0")
        with fsm.state("CRC0"):
            with m.If(take):
                goto("CRC1")
        with fsm.state("CRC1"):
            with m.If(take):
                # crc_byte holds the first CRC byte (the last byte taken)
                m.d.sync += crc_ok.eq(Cat(crc_byte, byte) == crc)
                goto("CHECK")
        with fsm.state("CHECK"):
            with m.If(~crc_ok):
                post(Status.ERR_CRC)
                m.d.comb += self.o_events[FLAG_BITS["crc"]].eq(1)
                goto("WAIT_TX")
            with m.Elif(~seq_ok):
                # out of order (a frame before it was lost or refused) or a resent frame that
                # already ran: refused, and the expected seq stays
                post(Status.ERR_SEQUENCE)
                goto("WAIT_TX")
            with m.Elif(~self.i_present):
                # a group this bitstream does not carry: answered, and its seq is used up
                m.d.sync += self.o_expected_seq.eq(self.o_expected_seq + sequenced)
                post(Status.ERR_UNKNOWN_CMD)
                m.d.comb += self.o_events[FLAG_BITS["unknown"]].eq(1)
                goto("WAIT_TX")
            with m.Else():
                m.d.sync += [self.o_start.eq(1),
                             self.o_expected_seq.eq(self.o_expected_seq + sequenced)]
                goto("EXEC")
        with fsm.state("EXEC"):
            m.d.comb += self.o_executing.eq(1)
            with m.If(self.i_exec_done):
                goto("WAIT_TX")
        with fsm.state("DRAIN"):
            # Not ready once the drain is out: the next byte belongs to no refused frame.
            # left counts from len (< 2**16) down to -2: the (len + 2)-th byte is taken at
            # left == -1, the first value with the sign bit left[16] set (-2 is never taken), so
            # the sign bit alone tells it, and no 17-bit compare lies behind the take.
            with m.If(drain_done):
                goto("WAIT_TX")
            with m.Elif(take):
                m.d.sync += [drain_done.eq(left[16]), rx_ready.eq(~left[16])]
            with m.Elif(timed_out):
                goto("WAIT_TX")
        with fsm.state("WAIT_TX"):
            # i_reply_go: a request made in the cycle before has not reached the transmitter yet
            with m.If(self.i_tx_idle & ~self.i_reply_go):
                goto("IDLE")
        # Truncation: a frame that stops in the middle is answered once the line has been idle long
        # enough. After the states' statements, so that it wins; in a _CHECKED state rx_ready is
        # high, so no byte valid is no byte taken (and none of the state's statements applies);
        # entered a cycle late (`checked`), the line was not idle in the state before.
        with m.If(checked & timed_out & ~self.i_rx.valid):
            post(Status.ERR_TRUNCATED)
            m.d.comb += self.o_events[FLAG_BITS["truncated"]].eq(1)
            m.d.sync += [*(fsm.bit(state).eq(0) for state in self._CHECKED), fsm.bit("WAIT_TX").eq(1),
                         rx_ready.eq(0), checked.eq(0)]
        if self._watchdog is not None:
            # The idle timer is the executor's watchdog while a command executes (o_start is the
            # executor's i_start; EXEC lasts until the executor's reply request).
            m.d.comb += [timer.i_start.eq(self.o_start), timer.i_hold.eq(fsm.bit("EXEC")),
                         self.o_watchdog.eq(timer.o_expired)]
        # The count starts at 1 for each frame (byte i goes to address i + 1, so the executor's
        # read address ends at the length itself); a load after the states' statements, so that
        # it is a synchronous set/reset of the count's flip-flops (no multiplexer before them).
        # cmd reads SYNC_CMD (no command's code) from IDLE until the cmd byte arrives, so a frame
        # truncated before it is never answered in the name of the previous command (nothing
        # reads cmd in IDLE: the reply before was sent); set here, it is the flip-flops' set/reset.
        # One decrement of the frame's down counter for PAYLOAD and DRAIN (not a copy per state).
        with m.If(take & (fsm.bit("PAYLOAD") | fsm.bit("DRAIN"))):
            m.d.sync += left.eq(left - 1)
        with m.If(fsm.bit("IDLE")):
            m.d.sync += [count.eq(1), cmd.eq(SYNC_CMD), crc.eq(protocol.CRC_INIT)]
        return m
