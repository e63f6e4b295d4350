"""The command controller's parts on their own: reply transmitter against the protocol's reply
encoder, receiver against the protocol's command encoder, handler mux routing, idle timer and
status flags (the whole controller: tests/test_control_framing.py)."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from hw.control.executor import CommandExecutor, HandlerMux
from hw.control.flags import StatusFlags
from hw.control.protocol import FLAG_BITS, Status, encode_command, encode_reply
from hw.control.receiver import FrameReceiver, IdleTimer
from hw.control.transmitter import ReplyTransmitter
from sim.streams import simulate, stream_get, stream_put


@pytest.mark.parametrize("seq", [None, 0x3C])
@pytest.mark.parametrize("payload", [b"", b"\x01", bytes(range(7))])
def test_transmitter_sends_the_golden_reply(payload, seq):
    m = Module()
    m.submodules.buf = buf = Memory(shape=8, depth=8, init=list(payload) + [0] * (8 - len(payload)))
    m.submodules.tx = tx = ReplyTransmitter(max_reply=8)
    wiring.connect(m, tx.reply_buf, buf.read_port())
    expected = encode_reply(0x42, Status.OK if payload else Status.ERR_BLOCK, payload, seq=seq)
    rng = random.Random(len(payload))
    got = []

    async def tb(ctx):
        ctx.set(tx.i_cmd, 0x42)
        ctx.set(tx.i_seq, seq or 0)
        ctx.set(tx.i_sequenced, seq is not None)
        assert ctx.get(tx.o_idle)
        ctx.set(tx.i_reply.go, 1)
        ctx.set(tx.i_reply.status, Status.OK if payload else Status.ERR_BLOCK)
        ctx.set(tx.i_reply.length, len(payload))
        await ctx.tick()
        ctx.set(tx.i_reply.go, 0)
        ctx.set(tx.i_reply.status, 0)
        ctx.set(tx.i_reply.length, 0)
        while len(got) < len(expected):
            got.append(await stream_get(ctx, tx.o_tx, rng=rng, stall=0.5))
        for _ in range(4):
            await ctx.tick()
        assert ctx.get(tx.o_idle) and not ctx.get(tx.o_tx.valid)

    simulate(m, tb)
    assert bytes(got) == expected


def _receiver_bench(frame, *, present=True, expected_seq=0):
    """Feed ``frame`` to a receiver; return (start seen, reply statuses, payload buffer)."""
    m = Module()
    m.submodules.buf = buf = Memory(shape=8, depth=8, init=[])
    m.submodules.rx = rx = FrameReceiver(timeout=32, max_payload=8)
    wiring.connect(m, rx.payload_buf, buf.write_port())
    seen = {"start": 0, "replies": []}

    async def feed(ctx):
        ctx.set(rx.i_present, present)
        ctx.set(rx.i_tx_idle, 1)
        for b in frame:
            await stream_put(ctx, rx.i_rx, b)

    async def watch(ctx):
        executing_since = None
        for cycle in range(len(frame) * 2 + 80):
            start, executing, go, status = ctx.get(rx.o_start), ctx.get(rx.o_executing), \
                ctx.get(rx.o_reply.go), ctx.get(rx.o_reply.status)
            seen["start"] += start
            if go:
                seen["replies"].append(status)
            if executing and executing_since is None:
                executing_since = cycle
            # the executor finishes three cycles after it started
            ctx.set(rx.i_exec_done, executing_since is not None and cycle == executing_since + 3)
            await ctx.tick()
        seen["buf"] = [ctx.get(buf.data[i]) for i in range(8)]

    simulate(m, feed, watch)
    return seen


def test_receiver_starts_a_good_frame_with_its_payload_buffered():
    seen = _receiver_bench(encode_command(0x03, b"\x10\x20\x30"))
    assert seen["start"] == 1 and seen["replies"] == []
    assert seen["buf"][1:4] == [0x10, 0x20, 0x30]     # byte i at address i + 1


@pytest.mark.parametrize("frame, present, status", [
    (encode_command(0x03, b"\x10")[:-1] + b"\x00", True, Status.ERR_CRC),
    (encode_command(0x73, b"\x10"), False, Status.ERR_UNKNOWN_CMD),
    (encode_command(0x03, b"\x10", seq=1), True, Status.ERR_SEQUENCE),
    (encode_command(0x03, bytes(9))[:4], True, Status.ERR_OVERSIZE),
    (encode_command(0x03, b"\x10\x20")[:5], True, Status.ERR_TRUNCATED),
])
def test_receiver_refuses_bad_frames(frame, present, status):
    seen = _receiver_bench(frame, present=present)
    assert seen["start"] == 0 and seen["replies"] == [status]


def test_handler_mux_routes_by_group():
    mux = HandlerMux((0, 2))

    async def tb(ctx):
        for cmd, present in ((0x05, 1), (0x21, 1), (0x13, 0)):
            ctx.set(mux.bus.cmd, cmd)
            ctx.set(mux.bus.start, 1)
            ctx.set(mux.bus.i_data.valid, 1)
            ctx.set(mux.bus.i_data.payload, cmd)
            ctx.set(mux.i_reset, 1)
            ctx.set(mux.h2.done, 1)
            ctx.set(mux.h2.status, 7)
            await ctx.tick()          # the selection follows cmd a cycle later
            g = cmd >> 4
            assert ctx.get(mux.o_present) == present
            assert ctx.get(mux.h0.start) == (g == 0) and ctx.get(mux.h2.start) == (g == 2)
            assert ctx.get(mux.bus.i_data.ready) == present
            assert ctx.get(mux.o_handler_reset) == ((1 << g) if present else 0)
            assert ctx.get(mux.bus.done) == (g == 2) and ctx.get(mux.bus.status) == (7 if g == 2 else 0)
            # the payload byte reaches the selected handler only, through its skid buffer (a
            # cycle later; the buffers were emptied by start)
            assert not ctx.get(mux.h0.i_data.valid) and not ctx.get(mux.h2.i_data.valid)
            ctx.set(mux.bus.start, 0)
            await ctx.tick()
            assert ctx.get(mux.h0.i_data.valid) == (g == 0) and ctx.get(mux.h2.i_data.valid) == (g == 2)
            if present:
                assert ctx.get(getattr(mux, f"h{g}").i_data.payload) == cmd

    simulate(mux, tb)


def _executor_with_buffers(watchdog):
    """A CommandExecutor (8-byte payload and reply) with its payload and reply memories:
    ``(module, executor, reply memory)``."""
    ex = CommandExecutor(watchdog=watchdog, max_payload=8, max_reply=8)
    m = Module()
    m.submodules.ex = ex
    m.submodules.pay = pay = Memory(shape=8, depth=8, init=[])
    m.submodules.rep = rep = Memory(shape=8, depth=8, init=[])
    wiring.connect(m, ex.payload_buf, pay.read_port(transparent_for=()))
    wiring.connect(m, ex.reply_buf, rep.write_port())
    return m, ex, rep


@pytest.mark.parametrize("watchdog", [16, 23, 64])
def test_executor_watchdog_expires_after_exactly_watchdog_cycles(watchdog):
    # A handler that never finishes: ERR_TIMEOUT is requested (with the handler's reset pulse) in
    # the cycle after the watchdog's cycles, counted from the one after the start, ran out.
    m, ex, rep = _executor_with_buffers(watchdog)

    async def tb(ctx):
        for _ in range(2):        # twice: the start re-arms the watchdog
            ctx.set(ex.i_start, 1)
            await ctx.tick()
            ctx.set(ex.i_start, 0)
            for cycle in range(1, watchdog + 4):
                assert ctx.get(ex.o_handler_timeout) == (cycle == watchdog + 2), cycle
                assert ctx.get(ex.o_reply.go) == (cycle == watchdog + 2), cycle
                if cycle == watchdog + 2:
                    assert ctx.get(ex.o_reply.status) == Status.ERR_TIMEOUT
                await ctx.tick()

    simulate(m, tb)


@pytest.mark.parametrize("n", [0, 7, 8, 9, 20])
def test_executor_reply_of_max_reply_bytes_and_beyond(n):
    # A handler sending n reply bytes, one per cycle, then done: up to max_reply (8) bytes the
    # reply is OK with length n and the bytes in the reply buffer; one more is ERR_REPLY_OVERSIZE
    # (the reply count stops at max_reply: it is exactly as wide as that needs).
    m, ex, rep = _executor_with_buffers(1000)
    rd = rep.read_port(domain="comb")
    requests = []

    async def tb(ctx):
        ctx.set(ex.i_start, 1)
        await ctx.tick()
        ctx.set(ex.i_start, 0)
        sent = 0
        for _ in range(4 * n + 40):
            ctx.set(ex.bus.o_data.valid, sent < n)
            ctx.set(ex.bus.o_data.payload, 0xA0 + sent)
            ctx.set(ex.bus.done, sent == n)
            ctx.set(ex.bus.status, Status.OK)
            took = ctx.get(ex.bus.o_data.ready) and sent < n
            if ctx.get(ex.o_reply.go):
                requests.append((ctx.get(ex.o_reply.status), ctx.get(ex.o_reply.length)))
            await ctx.tick()
            if sent == n:
                ctx.set(ex.bus.done, 0)
                sent += 1
            elif took:
                sent += 1
        for i in range(min(n, 8)):
            ctx.set(rd.addr, i)
            assert ctx.get(rd.data) == 0xA0 + i

    simulate(m, tb)
    assert requests == ([(Status.OK, n)] if n <= 8 else [(Status.ERR_REPLY_OVERSIZE, 0)])


async def _expect_idle_timeout(ctx, timer, timeout):
    """One cycle of activity, then ``o_timed_out`` exactly from the ``timeout``-th idle cycle."""
    ctx.set(timer.i_activity, 1)
    await ctx.tick()
    ctx.set(timer.i_activity, 0)
    for cycle in range(1, timeout + 3):
        await ctx.tick()
        assert ctx.get(timer.o_timed_out) == (cycle >= timeout), cycle


@pytest.mark.parametrize("timeout", [3, 16, 23, 300])
def test_idle_timer_fires_after_exactly_timeout_idle_cycles(timeout):
    timer = IdleTimer(timeout)
    m = Module()
    m.submodules.timer = timer

    async def tb(ctx):
        await _expect_idle_timeout(ctx, timer, timeout)
        ctx.set(timer.i_activity, 1)
        await ctx.tick()
        ctx.set(timer.i_activity, 0)
        await ctx.tick()
        assert not ctx.get(timer.o_timed_out)

    simulate(m, tb)


@pytest.mark.parametrize("watchdog", [16, 45, 700])
def test_idle_timer_as_the_watchdog(watchdog):
    # The controller's one counter: loaded by the start, it expires once `watchdog` cycles,
    # counted from the one after the start's, have passed (as the executor's own watchdog, above),
    # whatever the activity while held; released, it is the idle timer again.
    timeout = 20
    timer = IdleTimer(timeout, watchdog)
    m = Module()
    m.submodules.timer = timer

    async def tb(ctx):
        for _ in range(2):
            ctx.set(timer.i_start, 1)
            ctx.set(timer.i_hold, 1)
            ctx.set(timer.i_activity, 1)
            await ctx.tick()
            ctx.set(timer.i_start, 0)
            for cycle in range(1, watchdog + 4):
                assert ctx.get(timer.o_expired) == (cycle > watchdog), cycle
                ctx.set(timer.i_activity, cycle % 3 == 0)
                await ctx.tick()
            ctx.set(timer.i_hold, 0)
            await _expect_idle_timeout(ctx, timer, timeout)

    simulate(m, tb)


def test_status_flags_are_sticky_and_count_replies():
    flags = StatusFlags((0, 1))
    m = Module()
    m.submodules.flags = flags

    async def tb(ctx):
        ctx.set(flags.i_events, 1 << FLAG_BITS["crc"])
        ctx.set(flags.i_reply, 1)
        await ctx.tick()
        ctx.set(flags.i_events, 0)
        ctx.set(flags.i_ok, 1)
        ctx.set(flags.i_block_errors, 1 << 5)     # group 5 does not exist: ignored
        await ctx.tick()
        ctx.set(flags.i_reply, 0)
        ctx.set(flags.i_ok, 0)
        ctx.set(flags.i_line_errors, 0b10)
        await ctx.tick()
        ctx.set(flags.i_line_errors, 0)
        ctx.set(flags.i_block_errors, 1 << 1)
        await ctx.tick()
        ctx.set(flags.i_block_errors, 0)
        await ctx.tick()
        assert ctx.get(flags.o_flags) == (1 << FLAG_BITS["crc"]) | (1 << FLAG_BITS["overrun"]) \
            | (1 << FLAG_BITS["block"])
        assert (ctx.get(flags.o_frames), ctx.get(flags.o_errors)) == (1, 1)
        ctx.set(flags.i_clear, 1)
        await ctx.tick()
        ctx.set(flags.i_clear, 0)
        await ctx.tick()
        assert (ctx.get(flags.o_flags), ctx.get(flags.o_frames), ctx.get(flags.o_errors)) == (0, 0, 0)

    simulate(m, tb)
