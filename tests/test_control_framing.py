"""The controller's frame parser against the golden parser (:mod:`sim.control.golden`).

No byte inside a refused frame (bad CRC, oversize, truncated) may be executed, whatever the length
field says; commands without a payload refuse one with ``ERR_LENGTH``. The controller runs alone at
the byte-stream level (one byte per cycle, no UART), with the real system handler on group 0 and a
recording handler on group 1.
"""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from firmware.driver import CommandError, Driver
from firmware.transport import SimTransport
from hw.control import protocol as P
from hw.control.controller import Controller
from hw.control.handler import HandlerSignature
from hw.control.system import SystemHandler
from sim.board.amaranth_board import SimBoard, make_sim_core
from sim.control.golden import Execute, FrameParser, Refuse
from sim.streams import stream_put

TIMEOUT = 32
GAP = object()            # the line idles for longer than the controller's timeout
NO_PAYLOAD = (P.Cmd.STATUS, P.Cmd.RESET, P.Cmd.CLEAR_ERRORS)


class _SumHandler(wiring.Component):
    """Group 1: takes the whole payload, replies its length and byte sum (low bytes), status OK."""
    bus: Out(HandlerSignature())

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        count, total = Signal(16), Signal(8)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(bus.start):
                    m.d.sync += [count.eq(0), total.eq(0)]
                    m.next = "TAKE"
            with m.State("TAKE"):
                with m.If(count == bus.length):
                    m.next = "LEN"
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(bus.i_data.valid):
                        m.d.sync += [count.eq(count + 1), total.eq(total + bus.i_data.payload)]
            for state, value, nxt in (("LEN", bus.length[:8], "SUM"), ("SUM", total, "DONE")):
                with m.State(state):
                    m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(value)]
                    with m.If(bus.o_data.ready):
                        m.next = nxt
            with m.State("DONE"):
                m.d.comb += [bus.done.eq(1), bus.status.eq(P.Status.OK)]
                m.next = "IDLE"
        return m


def expected_reply(event):
    """The reply bytes the harness's handlers give for one golden event."""
    seq = event.seq
    if isinstance(event, Refuse):
        return P.encode_reply(event[0], event[1], seq=seq)
    cmd, payload = event
    if cmd >> 4 == 1:
        return P.encode_reply(cmd, P.Status.OK, bytes([len(payload) & 0xFF, sum(payload) & 0xFF]), seq=seq)
    if cmd == P.Cmd.PING:
        return P.encode_reply(cmd, P.Status.OK, payload, seq=seq)
    if cmd in NO_PAYLOAD and payload:
        return P.encode_reply(cmd, P.Status.ERR_LENGTH, seq=seq)
    raise AssertionError(f"no reply model for {event!r}")


def run_controller(items):
    """Feed ``items`` (bytes objects and ``GAP``) to the controller; return (started, replies).

    ``started``: ``(cmd, length)`` of every handler start; ``replies``: every byte sent.
    """
    dut = Module()
    dut.submodules.ctrl = ctrl = Controller((0, 1), timeout=TIMEOUT, watchdog=1 << 12)
    dut.submodules.system = system = SystemHandler(groups_mask=3, clk_hz=12_000_000, divisor=4,
                                                   max_payload=P.MAX_PAYLOAD)
    dut.submodules.sum = summer = _SumHandler()
    wiring.connect(dut, ctrl.h0, system.bus)
    wiring.connect(dut, ctrl.h1, summer.bus)
    dut.d.comb += [system.i_flags.eq(ctrl.o_flags), system.i_frames.eq(ctrl.o_frames),
                   system.i_errors.eq(ctrl.o_errors), ctrl.i_clear.eq(system.o_clear)]
    started, replies, finished = [], bytearray(), []

    async def drive(ctx):
        for item in items:
            if item is GAP:
                await ctx.tick().repeat(3 * TIMEOUT)
            else:
                for b in item:
                    await stream_put(ctx, ctrl.i_rx, b)
        await ctx.tick().repeat(3 * TIMEOUT)
        await ctx.tick().until(~ctrl.o_busy)
        finished.append(True)

    async def watch(ctx):
        ctx.set(ctrl.o_tx.ready, 1)
        async for _, _, tx_valid, tx_byte, s0, c0, l0, s1, c1, l1 in ctx.tick().sample(
                ctrl.o_tx.valid, ctrl.o_tx.payload, ctrl.h0.start, ctrl.h0.cmd, ctrl.h0.length,
                ctrl.h1.start, ctrl.h1.cmd, ctrl.h1.length):
            if tx_valid:
                replies.append(tx_byte)
            for start, cmd, length in ((s0, c0, l0), (s1, c1, l1)):
                if start:
                    started.append((cmd, length))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.add_testbench(watch, background=True)
    sim.run()
    assert finished
    return started, bytes(replies)


def golden(items, groups=(0, 1)):
    parser = FrameParser(groups)
    for item in items:
        parser.gap() if item is GAP else parser.feed(item)
    parser.gap()
    return parser.events


def check_against_golden(items):
    events = golden(items)
    started, replies = run_controller(items)
    assert started == [(cmd, len(payload)) for cmd, payload in (e for e in events if isinstance(e, Execute))]
    assert replies == b"".join(expected_reply(e) for e in events)
    return events


def header(cmd, length):
    return bytes([P.SYNC_CMD, cmd]) + length.to_bytes(2, "little")


@pytest.mark.parametrize("length", [P.MAX_PAYLOAD + 1, 0x7FFF, 0xFFFD, 0xFFFE, 0xFFFF])
def test_oversize_frame_content_never_executes(length):
    # The declared payload holds complete valid frames; the line then goes idle (the frame ends).
    inner = P.encode_command(0x11, b"inner") + P.encode_command(P.Cmd.PING, b"ping")
    items = [header(0x10, length), inner * 3, bytes(range(40)), GAP,
             P.encode_command(0x12, b"after")]
    events = check_against_golden(items)
    assert events == [Refuse(0x10, P.Status.ERR_OVERSIZE), Execute(0x12, b"after")]


def test_oversize_frame_is_skipped_exactly():
    # Without a gap the controller skips exactly len + 2 bytes; the next byte starts hunting.
    length = P.MAX_PAYLOAD + 3
    body = bytes((7 * i) % 256 for i in range(length - 1)).replace(bytes([P.SYNC_CMD]), b"\x00")
    filler = P.encode_command(0x11, b"x")[:1] + body  # a sync byte inside, as the first skipped byte
    # Sync bytes as the last two skipped (the CRC's place), so a drain one byte short starts a
    # frame in them, and one byte long swallows the next frame's sync byte.
    items = [header(0x10, length), filler + bytes([P.SYNC_CMD] * 2), P.encode_command(0x13, b"next")]
    events = check_against_golden(items)
    assert events == [Refuse(0x10, P.Status.ERR_OVERSIZE), Execute(0x13, b"next")]


def test_truncated_before_cmd_names_no_command():
    # A sync byte and silence: the reply must not carry the previous frame's command code.
    items = [P.encode_command(0x11, b"a"), bytes([P.SYNC_CMD]), GAP]
    assert check_against_golden(items) == [Execute(0x11, b"a"), Refuse(P.SYNC_CMD, P.Status.ERR_TRUNCATED)]


@pytest.mark.parametrize("cmd", NO_PAYLOAD)
def test_no_payload_command_with_payload_is_a_length_error(cmd):
    items = [P.encode_command(cmd, b"\x01\x02"), P.encode_command(cmd, b"z")]
    started, replies = run_controller(items)
    assert replies == P.encode_reply(cmd, P.Status.ERR_LENGTH) * 2
    assert started == [(cmd, 2), (cmd, 1)]


def _random_items(rng, n):
    """A mix of valid, corrupted, truncated, oversize and unknown frames and line garbage; half
    the frames sequenced, mostly with the seq the board expects (followed by a golden parser)."""
    items, model = [], FrameParser((0, 1))

    def add(*new):
        for item in new:
            items.append(item)
            model.gap() if item is GAP else model.feed(item)

    for _ in range(n):
        kind = rng.randrange(8)
        payload = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 2, rng.randrange(60)))))
        cmd = rng.choice((P.Cmd.PING, 0x10 + rng.randrange(16)))
        seq = None
        if rng.random() < 0.5:
            seq = model.seq if rng.random() < 0.75 else rng.randrange(256)
        frame = P.encode_command(cmd, payload, seq=seq)
        if kind == 0:
            add(frame)
        elif kind == 1:                                      # one bit flipped anywhere after sync
            bad = bytearray(frame)
            bad[rng.randrange(1, len(bad))] ^= 1 << rng.randrange(8)
            add(bytes(bad))
        elif kind == 2:                                      # truncated
            add(frame[:rng.randrange(1, len(frame))], GAP)
        elif kind == 3:                                      # oversize, valid frames inside
            length = rng.choice((P.MAX_PAYLOAD + 1, rng.randrange(P.MAX_PAYLOAD + 1, 1 << 16),
                                 0xFFFE, 0xFFFF))
            add(header(rng.randrange(256), length), frame * rng.randrange(1, 4), GAP)
        elif kind == 4:                                      # garbage, sync bytes likely
            n = rng.randrange(1, 12)
            add(bytes(rng.choice((P.SYNC_CMD, P.SYNC_SEQ_CMD, rng.randrange(256))) for _ in range(n)))
        elif kind == 5:                                      # a group that is not there
            add(P.encode_command(0x20 + rng.randrange(0xE0), payload, seq=seq))
        elif kind == 6:                                      # payload for a command that takes none
            add(P.encode_command(rng.choice(NO_PAYLOAD), payload or b"\x00", seq=seq))
        else:                                                # a stray byte before a frame
            add(bytes([rng.randrange(256)]), frame)
        if rng.random() < 0.2:
            add(GAP)
    return items


@pytest.mark.parametrize("seed", [1, 2])
def test_random_streams_execute_only_valid_frames(seed):
    events = check_against_golden(_random_items(random.Random(seed), 150))
    kinds = {type(e).__name__ + (f":{e[1]}" if isinstance(e, Refuse) else "")
             + ("/seq" if e.seq is not None else "") for e in events}
    # The mix reaches every outcome, plain and sequenced (otherwise the comparison proves little).
    for seq in ("", "/seq"):
        assert {"Execute" + seq, f"Refuse:{P.Status.ERR_CRC}" + seq, f"Refuse:{P.Status.ERR_TRUNCATED}" + seq,
                f"Refuse:{P.Status.ERR_UNKNOWN_CMD}" + seq} <= kinds
    assert {f"Refuse:{P.Status.ERR_OVERSIZE}", f"Refuse:{P.Status.ERR_SEQUENCE}/seq"} <= kinds


def test_sequenced_frames_run_in_order_and_once():
    # Frame 1 of 0..3 is damaged: 2 and 3 are refused (out of order); resent from 1, the duplicate
    # of 0 is refused (it ran), then 1, 2, 3 run in order.
    frames = [P.encode_command(0x11, bytes([k]) * (k + 1), seq=k) for k in range(4)]
    bad = frames[1][:-1] + bytes([frames[1][-1] ^ 1])
    events = check_against_golden([frames[0], bad, frames[2], frames[3], frames[0], *frames[1:]])
    seq_err, crc_err = P.Status.ERR_SEQUENCE, P.Status.ERR_CRC
    assert [(type(e).__name__, e[1] if isinstance(e, Refuse) else e[1][:1], e.seq) for e in events] == [
        ("Execute", b"\x00", 0), ("Refuse", crc_err, 1), ("Refuse", seq_err, 2), ("Refuse", seq_err, 3),
        ("Refuse", seq_err, 0), ("Execute", b"\x01", 1), ("Execute", b"\x02", 2), ("Execute", b"\x03", 3)]


def test_sequence_wraps_and_plain_frames_leave_it():
    # 300 sequenced frames (seq wraps at 256) with a plain frame between them, which neither needs
    # nor advances the seq; an unknown group uses its seq up.
    items, seq = [], 0
    for k in range(300):
        items.append(P.encode_command(0x10, bytes([k & 0xFF]), seq=seq))
        seq = (seq + 1) & 0xFF
        if k % 50 == 0:
            items.append(P.encode_command(P.Cmd.PING, b"plain"))
        if k % 97 == 0:
            items.append(P.encode_command(0x70, b"", seq=seq))
            seq = (seq + 1) & 0xFF
    events = check_against_golden(items)
    assert all(isinstance(e, Execute) or e[1] == P.Status.ERR_UNKNOWN_CMD for e in events)
    assert sum(isinstance(e, Execute) for e in events) == 300 + 6


def test_golden_parser_refuses_and_executes():
    # The golden parser itself, on hand-made cases.
    ok = P.encode_command(0x11, b"abc")
    assert golden([ok]) == [Execute(0x11, b"abc")]
    assert golden([ok[:-1] + bytes([ok[-1] ^ 1])]) == [Refuse(0x11, P.Status.ERR_CRC)]
    assert golden([ok[:4], GAP]) == [Refuse(0x11, P.Status.ERR_TRUNCATED)]
    assert golden([P.encode_command(0x51)]) == [Refuse(0x51, P.Status.ERR_UNKNOWN_CMD)]
    assert golden([header(0x11, 0xFFFF), ok]) == [Refuse(0x11, P.Status.ERR_OVERSIZE)]


# Through the UART of the whole core (the simulated board): the same rules as the host sees them.

@pytest.fixture(scope="module")
def drv():
    d = Driver(SimTransport(sim_board=SimBoard(make_sim_core("icebreaker"))))
    d.reset()
    return d


@pytest.mark.parametrize("length", [0xFFFE, 0xFFFF])
def test_board_oversize_near_ffff_executes_nothing_inside(drv, length):
    drv.clear_errors()
    # Inside the refused frame: a CLEAR_ERRORS (it would clear the oversize flag) and a PING.
    drv.send_raw(header(P.Cmd.SINK, length) + P.encode_command(P.Cmd.CLEAR_ERRORS)
                 + P.encode_command(P.Cmd.PING, b"inside"))
    assert drv.receive() == (P.Cmd.SINK, P.Status.ERR_OVERSIZE, b"")
    drv.transport.board.run_cycles(3 * 2000)            # the line idles: the refused frame ends
    assert drv.transport.board.pending() == 0           # no reply to anything inside
    st = drv.status()
    assert st["flags"] & (1 << P.FLAG_BITS["oversize"])
    assert drv.ping(b"after") == b"after"


@pytest.mark.parametrize("cmd", NO_PAYLOAD)
def test_board_no_payload_commands_refuse_a_payload(drv, cmd):
    drv.send_raw(P.encode_command(0x7E))                 # raise the "unknown" flag
    drv.receive()
    with pytest.raises(CommandError, match="ERR_LENGTH"):
        drv.command(cmd, b"\x00")
    # Refused means not executed: RESET and CLEAR_ERRORS left the flag alone.
    assert drv.status()["flags"] & (1 << P.FLAG_BITS["unknown"])
    drv.clear_errors()
