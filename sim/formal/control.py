"""Formal harnesses for the command controller (:class:`hw.control.controller.Controller`, one
handler group, ``timeout=64``, ``watchdog=16``; its parts are :mod:`hw.control.receiver`,
:mod:`hw.control.executor`, :mod:`hw.control.transmitter` and :mod:`hw.control.flags`).

The harness holds a monitor of the frame rules of :mod:`hw.control.protocol`, written from the
protocol and not from the controller: it follows the bytes the controller takes from ``i_rx``
(hunting for ``SYNC_CMD`` or ``SYNC_SEQ_CMD``; a sequenced frame's ``seq``; header; ``len`` payload
bytes; two CRC bytes; an oversize ``len`` discards ``len + 2`` bytes), keeps its own count of the
``seq`` the next sequenced frame must carry, and follows the reply frames the controller sends on
``o_tx``. The handler's
outputs, the line and ``o_tx.ready`` are free. The CRC is the gateware's CRC-16 step
(:func:`hw.control.crc.crc16_next`, tested against :func:`hw.control.protocol.crc16_update`
elsewhere): these properties are about which frames run, not about CRC arithmetic.

The checks are bounded: a frame with a payload is longer than any depth that finishes in seconds,
so the bound covers zero-length frames, CRC and unknown-command errors, oversize headers (whose
discard outlasts the bound unless the length count wraps) and the replies, with the line's idle
timeout (64 cycles) longer than the bound, so no frame is truncated within it. A discard count
that wraps (16 bits for ``len + 2``) would show only after the oversize reply went out, beyond
such a bound; tests/test_control_framing.py checks it with frames declaring 0xFFFE and 0xFFFF.
"""

from amaranth.hdl import Assert, Assume, Cat, Fragment, Module, Mux, Signal

from hw.control import controller, receiver, transmitter
from hw.control.controller import Controller
from hw.control.crc import crc16_next
from hw.control.protocol import CRC_INIT, SYNC_CMD, SYNC_REPLY, SYNC_SEQ_CMD, SYNC_SEQ_REPLY
from hw.lib.stream import HalfRateBuffer

from .harness import Harness, Patched, StreamRulesHarness, internals, mutated
from .runner import Property
from .sticky import StickyHarness

__all__ = ["PROPERTIES"]

TIMEOUT, WATCHDOG = 64, 16
# the protocol's buffer limits scaled down (the controller's buffers and the oversize threshold),
# so that frames with a payload and oversize headers both fit in the bound
SMALL_PAYLOAD = 4
PARAMS = f"groups=(0,) timeout={TIMEOUT} watchdog={WATCHDOG} MAX_PAYLOAD=MAX_REPLY={SMALL_PAYLOAD}"


def _receiver_signals(frag):
    """The signals of the controller's receiver (its fragment within the controller's ``frag``)
    by name: the running CRC and the parser's state, which the properties read."""
    for sub, name, _src in frag.subfragments:
        if name == "receiver":
            return internals(sub)[1]
    raise KeyError("the controller has no submodule 'receiver'")


class ControllerHarness(Harness):
    """``check`` is one of ``"exec"``, ``"order"``, ``"reply"``, ``"hunt"``."""

    def __init__(self, check, controller_class=Controller, depth=None):
        super().__init__()
        self.check = check
        self.dut = controller_class(groups=(0,), timeout=TIMEOUT, watchdog=WATCHDOG)
        self.bind_inputs(self.dut)

    def elaborate(self, platform):
        m = Module()
        self.begin(m)
        dut = self.dut
        frag = Fragment.get(dut, platform)
        internal = _receiver_signals(frag)
        m.submodules.dut = frag
        m.d.comb += Assume(~dut.i_rx_busy)

        # --- receive monitor: where the protocol says each taken byte belongs --------------------
        take = dut.i_rx.valid & dut.i_rx.ready
        byte = dut.i_rx.payload
        mon = Signal(range(10), name="mon")     # HUNT CMD LEN0 LEN1 PAY CRC0 CRC1 DONE DISCARD SEQ
        HUNT, CMD, LEN0, LEN1, PAY, CRC0, CRC1, DONE, DISCARD, SEQ = range(10)
        sequenced = Signal(name="mon_sequenced")
        seq = Signal(8, name="mon_seq")         # the frame's seq byte
        expected = Signal(8, name="mon_expected")  # the seq the next sequenced frame must carry
        seq_ok = Signal(name="mon_seq_ok")      # the frame is plain or carries the expected seq
        length = Signal(16, name="mon_len")
        count = Signal(17, name="mon_count")
        crc = Signal(16, name="mon_crc")
        crc_rx = Signal(8, name="mon_crc_lo")
        frame_ok = Signal(name="mon_frame_ok")
        executed = Signal(name="mon_executed")
        frames = Signal(4, name="mon_frames")   # frames ended (each must get one reply)
        crc_next = crc16_next(m, crc, byte, name="mon_crc_step")
        full = Cat(length[:8], byte)
        with m.If(take):
            with m.Switch(mon):
                with m.Case(HUNT, DONE):
                    with m.If((byte == SYNC_CMD) | (byte == SYNC_SEQ_CMD)):
                        m.d.sync += [mon.eq(Mux(byte == SYNC_SEQ_CMD, SEQ, CMD)), crc.eq(CRC_INIT),
                                     executed.eq(0), frame_ok.eq(0), sequenced.eq(byte == SYNC_SEQ_CMD)]
                    with m.Else():
                        m.d.sync += mon.eq(HUNT)
                with m.Case(SEQ):
                    m.d.sync += [mon.eq(CMD), crc.eq(crc_next), seq.eq(byte)]
                with m.Case(CMD):
                    m.d.sync += [mon.eq(LEN0), crc.eq(crc_next)]
                with m.Case(LEN0):
                    m.d.sync += [mon.eq(LEN1), crc.eq(crc_next), length[:8].eq(byte)]
                with m.Case(LEN1):
                    m.d.sync += [crc.eq(crc_next), length[8:].eq(byte), count.eq(0)]
                    with m.If(full > SMALL_PAYLOAD):
                        m.d.sync += [mon.eq(DISCARD), count.eq(full + 2), frames.eq(frames + 1)]
                    with m.Elif(full == 0):
                        m.d.sync += mon.eq(CRC0)
                    with m.Else():
                        m.d.sync += mon.eq(PAY)
                with m.Case(PAY):
                    m.d.sync += [crc.eq(crc_next), count.eq(count + 1)]
                    with m.If(count + 1 == length):
                        m.d.sync += mon.eq(CRC0)
                with m.Case(CRC0):
                    m.d.sync += [mon.eq(CRC1), crc_rx.eq(byte)]
                with m.Case(CRC1):
                    crc_ok = Cat(crc_rx, byte) == crc
                    in_order = ~sequenced | (seq == expected)
                    m.d.sync += [mon.eq(DONE), frames.eq(frames + 1), frame_ok.eq(crc_ok),
                                 seq_ok.eq(in_order)]
                    with m.If(crc_ok & sequenced & in_order):
                        m.d.sync += expected.eq(expected + 1)
                with m.Case(DISCARD):
                    m.d.sync += count.eq(count - 1)
                    with m.If(count == 1):
                        m.d.sync += mon.eq(HUNT)
        with m.If((mon == DISCARD) & (count == 0)):
            m.d.sync += mon.eq(HUNT)

        # --- transmit monitor: reply frames begun and finished -------------------------------------
        sent = dut.o_tx.valid & dut.o_tx.ready
        tx_pos = Signal(range(7), name="tx_pos")   # 0 SYNC, 6 seq, 1 cmd, 2 status, 3 len0, 4 len1, 5 body
        tx_left = Signal(17, name="tx_left")       # payload + CRC bytes still to come
        tx_len = Signal(8, name="tx_len_lo")
        begun = Signal(4, name="replies_begun")
        done = Signal(4, name="replies_done")
        with m.If(sent):
            with m.Switch(tx_pos):
                with m.Case(0):
                    seq_reply = dut.o_tx.payload == SYNC_SEQ_REPLY
                    m.d.comb += Assert((dut.o_tx.payload == SYNC_REPLY) | seq_reply)
                    m.d.sync += [tx_pos.eq(Mux(seq_reply, 6, 1)), begun.eq(begun + 1)]
                    if self.check == "reply":
                        # a reply has its frame's kind
                        m.d.comb += Assert(seq_reply == sequenced)
                with m.Case(6):
                    m.d.sync += tx_pos.eq(1)
                    if self.check == "reply":
                        # and echoes its seq
                        m.d.comb += Assert(dut.o_tx.payload == seq)
                with m.Case(1, 2):
                    m.d.sync += tx_pos.eq(tx_pos + 1)
                with m.Case(3):
                    m.d.sync += [tx_pos.eq(4), tx_len.eq(dut.o_tx.payload)]
                with m.Case(4):
                    m.d.sync += [tx_pos.eq(5), tx_left.eq(Cat(tx_len, dut.o_tx.payload) + 2)]
                with m.Case(5):
                    m.d.sync += tx_left.eq(tx_left - 1)
                    with m.If(tx_left == 1):
                        m.d.sync += [tx_pos.eq(0), done.eq(done + 1)]

        # lemma (checked, then used by the solver in later steps): inside a frame the controller's
        # running CRC is the monitor's, so the solver need not rediscover the CRC's equivalence
        # (the receiver steps its CRC a cycle after the byte: with that step pending, its CRC
        # stepped with the registered byte)
        rx_crc_stepped = crc16_next(m, internal["crc"], internal["crc_byte"], name="mon_rx_crc_step")
        rx_crc = Mux(internal["crc_step"], rx_crc_stepped, internal["crc"])
        with m.If(((mon >= LEN0) & (mon <= CRC1)) | (mon == CMD)):
            m.d.comb += Assert(rx_crc == crc)

        if self.check == "exec":
            # a command starts only for a complete frame whose length and CRC checked, once
            with m.If(dut.h0.start):
                m.d.comb += Assert((mon == DONE) & frame_ok & ~executed)
                m.d.sync += executed.eq(1)
        elif self.check == "order":
            # and, if the frame is sequenced, only with the seq the protocol expects
            with m.If(dut.h0.start):
                m.d.comb += Assert(seq_ok)
        elif self.check == "reply":
            # never more replies than frames; a new frame begins only after the last one's reply
            m.d.comb += Assert((frames - begun)[:4] <= 1)
            with m.If(take & ((mon == HUNT) | (mon == DONE)) & (byte == SYNC_CMD)):
                m.d.comb += Assert(done == frames)
        elif self.check == "hunt":
            # the controller hunts only where the protocol does; after an error (any frame, once its
            # reply is out) it is hunting again within two cycles
            # hunting: in IDLE, and not in the cycle after a sync byte (which is decided then)
            idle = internal["rx_IDLE"] & ~internal["sync_seen"]
            at_rest = ((mon == HUNT) | (mon == DONE)) & (done == frames) & (tx_pos == 0)
            with m.If(idle):
                m.d.comb += Assert((mon == HUNT) | ((mon == DONE) & (done == frames)))
            rest_1 = self.past(m, at_rest, "at_rest_1")
            rest_2 = self.past(m, rest_1, "at_rest_2")
            with m.If(at_rest & rest_1 & rest_2 & self.started):
                m.d.comb += Assert(idle)
        else:
            raise ValueError(f"check must be 'exec', 'order', 'reply' or 'hunt', not {self.check!r}")
        return m


def checksum_next(m, crc, byte, *, name="crc"):
    """The frame check of the proofs: a rotate-and-XOR of the bytes into 16 bits (the CRC's role,
    without its XOR network, which costs the solver minutes per step)."""
    step = Signal(16, name=f"{name}_rx")
    m.d.comb += step.eq(Cat(crc[8:], crc[:8]) ^ byte)
    return step


def _small(check, mutant=None):
    """The harness with the controller's payload and reply limits at ``SMALL_PAYLOAD`` and its
    CRC step replaced by :func:`checksum_next` (in the monitor too); ``mutant``: a
    ``(name, class)`` of the controller's module (one of its parts) replaced by a mutant."""
    namespace = vars(controller)
    patches = [(namespace, "MAX_PAYLOAD", SMALL_PAYLOAD), (namespace, "MAX_REPLY", SMALL_PAYLOAD),
               (vars(receiver), "crc16_next", checksum_next),
               (vars(transmitter), "crc16_next", checksum_next), (globals(), "crc16_next", checksum_next)]
    if mutant is not None:
        name, cls = mutant
        # the mutant's own module namespace takes the proofs' frame check too
        patches += [(namespace, name, cls), (cls.elaborate.__globals__, "crc16_next", checksum_next)]
    return Patched(lambda: ControllerHarness(check), patches)


def _receiver_mutant(old, new):
    return "FrameReceiver", mutated("hw.control.receiver", "FrameReceiver", old, new)


def _sync_on_seven_bits():
    # 0xA4 starts a frame too: the parser leaves the hunt where the protocol does not
    return _receiver_mutant("is_sync = (byte == SYNC_CMD) | (byte == SYNC_SEQ_CMD)",
                            "is_sync = (byte[1:] == SYNC_CMD >> 1) | (byte == SYNC_SEQ_CMD)")


def _no_crc_check():
    return _receiver_mutant("crc_ok.eq(Cat(crc_lo, byte) == crc)",
                            "crc_ok.eq(Cat(crc_lo, byte)[:4] == crc[:4])")


def _seq_on_one_bit():
    return _receiver_mutant("seq_ok.eq(~sequenced | (seq == self.o_expected_seq))",
                            "seq_ok.eq(~sequenced | (seq[0] == self.o_expected_seq[0]))")


def _hunt_before_reply():
    return _receiver_mutant("with m.If(self.i_tx_idle & ~self.i_reply_go):", "with m.If(~self.i_reply_go):")


PROPERTIES = [
    Property("control.exec_checked", "a command starts only for a frame whose length and CRC checked, "
             "once", lambda: _small("exec"), "bmc", 12, PARAMS,
             fast=False, mutant=lambda: _small("exec", _no_crc_check()),
             mutation="CRC compare on 4 of 16 bits"),
    Property("control.exec_in_order", "a sequenced frame runs only with the expected seq (the "
             "monitor's own count)", lambda: _small("order"), "bmc", 12, PARAMS,
             fast=False, mutant=lambda: _small("order", _seq_on_one_bit()),
             mutation="seq compare on 1 of 8 bits"),
    Property("control.one_reply", "every frame gets exactly one reply, of its kind and with its seq, "
             "before the next frame",
             lambda: _small("reply"), "bmc", 12, PARAMS,
             fast=False, mutant=lambda: _small("reply", _hunt_before_reply()),
             mutation="receiver hunts again before the reply is sent"),
    Property("control.rehunt", "the parser hunts only between frames, and is hunting again after any "
             "error once the reply is out", lambda: _small("hunt"), "bmc", 15, PARAMS, fast=False,
             mutant=lambda: _small("hunt", _sync_on_seven_bits()),
             mutation="sync byte compared on 7 of 8 bits (0xA4 starts a frame)"),
]


def _flags_cleared_when_idle():
    mutant = mutated("hw.control.flags", "StatusFlags",
                     "with m.If(self.i_clear):\n            m.d.sync += [self.o_flags.eq(0)",
                     "with m.If(self.i_clear | ~self.i_reply):\n            m.d.sync += [self.o_flags.eq(0)")
    return Patched(lambda: StickyHarness(lambda: Controller(groups=(0,), timeout=TIMEOUT, watchdog=WATCHDOG),
                                         ["o_flags"], "i_clear"), [(vars(controller), "StatusFlags", mutant)])


PROPERTIES += [
    Property("control.sticky_flags", "o_flags bits stay set until i_clear",
             lambda: StickyHarness(lambda: Controller(groups=(0,), timeout=TIMEOUT, watchdog=WATCHDOG),
                                   ["o_flags"], "i_clear"), "prove", 1, PARAMS,
             mutant=_flags_cleared_when_idle,
             mutation="flags also cleared in every cycle without a reply request", mutant_depth=10),
]


PROPERTIES += [
    Property("control.payload_buffer", "a handler's payload buffer (HalfRateBuffer) holds valid and "
             "payload while its handler stalls (its input assumed to)",
             lambda: StreamRulesHarness(lambda: HalfRateBuffer(8)), "prove", 2, "shape=8",
             mutant=lambda: StreamRulesHarness(lambda: mutated(
                 "hw.lib.stream", "HalfRateBuffer", "with m.Elif(o.ready):", "with m.Else():")(8)),
             mutation="the entry freed whether or not the handler took it", mutant_depth=6),
]
