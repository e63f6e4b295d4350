"""Link robustness: a damaged frame or reply costs a resend, never a job or a double execution.

A fake board (the golden frame parser of :mod:`sim.control.golden` plus a small command model)
sits behind a transport that damages chosen frames in either direction; one test runs the real
controller (the simulated board in Amaranth) with stray bytes on its line.
"""

import dataclasses
import random

import pytest

from firmware.api import Accelerator, BlockMissing
from firmware.driver import CommandError, Driver, LinkError
from firmware.transport import SimTransport
from hw.control import protocol as P
from hw.control.boards import BOARD_CONFIGS
from hw.control.core import EdgeLearnCore
from hw.uart.baud import link_baud
from sim.board.amaranth_board import SimBoard
from sim.control.golden import Execute, FrameParser

STEP = P.Cmd.INJECT_SPIKES      # a non-idempotent command: each run advances a step counter


class FakeBoard:
    """A transport to a model board; ``to_board[k]`` / ``to_host[k]`` damage the k-th frame/reply.

    A read that finds nothing stands for the line going idle past the board's frame timeout.
    """

    name = "fake board"
    quiet = 0.0

    def __init__(self, to_board=None, to_host=None, rx_fifo=0):
        self.parser = FrameParser(groups=(0, 3))
        self.to_board = dict(to_board or {})
        self.to_host = dict(to_host or {})
        self.frames_in = 0
        self.replies_out = 0
        self.out = bytearray()
        self.executed = []
        self.steps = 0
        self.frames_ok = 0
        self.rx_fifo = rx_fifo          # reported in STATUS (0: a version-1 board, stop-and-wait)
        self.max_inflight = 0           # most frames written and not answered (replies unread)
        self._seen = 0

    def write(self, data):
        self.max_inflight = max(self.max_inflight, 1 + self._unread_replies())
        damage = self.to_board.pop(self.frames_in, None)
        self.frames_in += 1
        self.parser.feed(damage(bytes(data)) if damage else data)
        self._answer()

    def read(self, n, timeout=1.0):
        if not self.out:
            self.parser.gap()
            self._answer()
        chunk, self.out = bytes(self.out[:n]), self.out[n:]
        return chunk

    def _unread_replies(self):
        parser = P.ReplyParser(strict=False)
        parser.feed(bytes(self.out))
        return len(parser.frames)

    def close(self):
        pass

    def _answer(self):
        for event in self.parser.events[self._seen:]:
            reply = self._execute(event) if isinstance(event, Execute) else \
                P.encode_reply(*event, seq=event.seq)
            damage = self.to_host.pop(self.replies_out, None)
            self.replies_out += 1
            self.out += damage(reply) if damage else reply
        self._seen = len(self.parser.events)

    def _execute(self, event):
        cmd, payload = event
        self.executed.append((cmd, payload))
        if cmd == P.Cmd.PING:
            reply = payload
        elif cmd == P.Cmd.STATUS:
            if self.rx_fifo:
                reply = P.pack_status(frames=self.frames_ok, version=2, groups=0b1001,
                                      rx_fifo=self.rx_fifo, seq=self.parser.seq)
            else:
                reply = P.pack_status(frames=self.frames_ok, groups=0b1001)[:P.STATUS_V1_BYTES]
        elif cmd == STEP:
            self.steps += 1
            reply = self.steps.to_bytes(2, "little")
        else:
            return P.encode_reply(cmd, P.Status.ERR_UNKNOWN_CMD, seq=event.seq)
        self.frames_ok += 1
        return P.encode_reply(cmd, P.Status.OK, reply, seq=event.seq)

    def ran(self, cmd):
        return [p for c, p in self.executed if c == cmd]


def insert(pos, byte):
    return lambda b: b[:pos] + bytes([byte]) + b[pos:]


def flip(pos):
    return lambda b: b[:pos] + bytes([b[pos] ^ 0x10]) + b[pos + 1:]


def drop():
    return lambda b: b""


# Damage toward the board: the board refuses the frame or never sees it; every command is resent.
TO_BOARD = {
    "stray byte inside": insert(5, 0x33),
    "bit flip in payload": flip(6),
    "last byte lost": lambda b: b[:-1],
    "sync byte lost": lambda b: b[1:],
    "stray sync before": insert(0, P.SYNC_CMD),
    "stray header before": lambda b: bytes([P.SYNC_CMD, 0x00, 0xFF, 0xFF]) + b,
    "frame lost": drop(),
}
# Damage toward the host: the board ran the command, the reply is garbled or lost.
TO_HOST = {
    "bit flip in reply": flip(6),
    "stray byte in reply": insert(4, 0x17),
    "stray sync before reply": insert(0, P.SYNC_REPLY),
    "reply lost": drop(),
}


@pytest.mark.parametrize("fault", TO_BOARD)
@pytest.mark.parametrize("cmd", [P.Cmd.PING, STEP])
def test_damaged_frame_is_resent_and_runs_once(fault, cmd):
    board = FakeBoard()
    drv = Driver(board, timeout=0.01)
    drv.status()                                   # the driver learns the frame count up front
    board.to_board[board.frames_in] = TO_BOARD[fault]
    payload = b"spikes!!" if cmd == STEP else b"hello there"
    reply = drv.command(cmd, payload)
    assert reply == (b"\x01\x00" if cmd == STEP else payload)
    assert len(board.ran(cmd)) == 1 and drv.resends >= 1
    assert drv.ping(b"next") == b"next" and board.steps == (cmd == STEP)


@pytest.mark.parametrize("fault", TO_HOST)
def test_damaged_reply_of_idempotent_command_is_resent(fault):
    board = FakeBoard(to_host={0: TO_HOST[fault]})
    drv = Driver(board, timeout=0.01)
    assert drv.ping(b"payload") == b"payload"
    assert drv.ping(b"again") == b"again"


@pytest.mark.parametrize("fault", ["stray sync before reply"])
def test_stray_byte_before_reply_costs_nothing(fault):
    board = FakeBoard(to_host={1: TO_HOST[fault]})
    drv = Driver(board, timeout=0.01)
    drv.status()
    assert drv.command(STEP, b"") == b"\x01\x00"
    assert drv.resends == 0 and board.steps == 1


@pytest.mark.parametrize("fault", ["bit flip in reply", "reply lost"])
def test_lost_reply_of_executed_step_is_not_resent(fault):
    board = FakeBoard()
    drv = Driver(board, timeout=0.01)
    drv.status()
    board.to_host[board.replies_out] = TO_HOST[fault]
    with pytest.raises(LinkError, match=r"INJECT_SPIKES got no valid reply from fake board .* and ran "
                                        r"\(the board counts it\); not resent"):
        drv.command(STEP, b"")
    assert board.steps == 1                        # never run twice


def test_bounded_attempts_then_one_clear_error():
    board = FakeBoard(to_board={k: flip(4) for k in range(10)})
    drv = Driver(board, timeout=0.01, attempts=4)
    with pytest.raises(LinkError, match="^PING failed after 4 attempts on fake board: board answered "
                                        "ERR_CRC; board answered ERR_CRC; board answered ERR_CRC; "
                                        "board answered ERR_CRC$"):
        drv.ping(b"x")
    assert board.executed == [] and board.frames_in == 4


def test_driver_without_resends_fails_on_the_same_faults():
    # The tests above can fail: with one attempt, a stray byte costs the command.
    board = FakeBoard(to_board={0: TO_BOARD["stray byte inside"]})
    with pytest.raises(LinkError, match="PING failed after 1 attempts"):
        Driver(board, timeout=0.01, attempts=1).ping(b"hello there")


class _StrayByte:
    """A transport whose next write gets ``byte`` inserted at ``at``."""

    def __init__(self, inner):
        self.inner, self.name, self.quiet, self.pending = inner, inner.name, inner.quiet, None

    def write(self, data):
        if self.pending is not None:
            byte, at = self.pending
            data, self.pending = data[:at] + bytes([byte]) + data[at:], None
        self.inner.write(data)

    def read(self, n, timeout=1.0):
        return self.inner.read(n, timeout)


def test_real_controller_with_stray_bytes_on_its_line():
    # The real controller behind its UART (system group only, in Amaranth): stray bytes before and
    # inside frames, including sync bytes that start a frame of their own.
    core = EdgeLearnCore(clk_hz=12_000_000, baud=3_000_000, timeout=300)
    transport = _StrayByte(SimTransport(sim_board=SimBoard(core)))
    drv = Driver(transport, timeout=0.0005)
    drv.status()
    drv.ping(b"a")
    # The driver's count of frames executed OK follows the controller's (what a lost reply is judged by).
    counted = drv._frames
    frames = drv.status()["frames"]
    assert frames == counted
    for stray in [(0x33, 5), (P.SYNC_CMD, 0), (P.SYNC_CMD, 7), (0x00, 3)]:
        transport.pending = stray
        assert drv.ping(b"through noise") == b"through noise"
    assert drv.resends >= 4
    # Four PINGs and one STATUS ran since the first STATUS (which counts itself once it is done).
    assert drv.status()["frames"] == frames + 1 + 4


# Windowed: several sequenced frames in flight (Driver.pipeline), against the model board.

def _window_commands(cmd, n=6):
    return [(cmd, bytes([k]) * (8 + k)) for k in range(n)]


def _window_replies(cmd, commands):
    return [p if cmd == P.Cmd.PING else (k + 1).to_bytes(2, "little") for k, (_, p) in enumerate(commands)]


@pytest.mark.parametrize("fault", TO_BOARD)
@pytest.mark.parametrize("cmd", [P.Cmd.PING, STEP])
def test_window_damaged_frame_runs_once_and_in_order(fault, cmd):
    board = FakeBoard(rx_fifo=4096)
    drv = Driver(board, timeout=0.01)
    drv.status()
    board.to_board[board.frames_in + 2] = TO_BOARD[fault]      # the third frame of the window
    commands = _window_commands(cmd)
    assert drv.pipeline(commands) == _window_replies(cmd, commands)
    assert board.ran(cmd) == [p for _, p in commands]           # each once, in order
    assert drv.resends >= 1 and board.max_inflight >= 4
    assert drv.ping(b"next") == b"next"


def test_window_without_fifo_is_stop_and_wait():
    # A version-1 board (no rx_fifo in STATUS): one frame at a time, plain frames.
    board = FakeBoard()
    drv = Driver(board, timeout=0.01)
    commands = _window_commands(P.Cmd.PING)
    assert drv.pipeline(commands) == _window_replies(P.Cmd.PING, commands)
    assert board.max_inflight == 1 and board.parser.seq == 0


def test_window_respects_fifo_bytes():
    # Frames of 30 bytes, a FIFO of 70: the oldest unanswered frame plus two behind it.
    board = FakeBoard(rx_fifo=70)
    drv = Driver(board, timeout=0.01)
    commands = [(P.Cmd.PING, bytes(22))] * 8
    drv.pipeline(commands)
    assert board.max_inflight == 3


@pytest.mark.parametrize("fault", ["bit flip in reply", "reply lost"])
def test_window_lost_last_reply(fault):
    # The last frame's reply is lost: an idempotent PING runs again, a STEP is reported lost.
    for cmd in (P.Cmd.PING, STEP):
        board = FakeBoard(rx_fifo=4096)
        drv = Driver(board, timeout=0.01)
        drv.status()
        commands = _window_commands(cmd, 4)
        board.to_host[board.replies_out + 3] = TO_HOST[fault]
        if cmd == P.Cmd.PING:
            assert drv.pipeline(commands) == _window_replies(cmd, commands)
            assert board.ran(cmd) == [p for _, p in commands] + [commands[-1][1]]
        else:
            with pytest.raises(LinkError, match="INJECT_SPIKES ran on fake board but its reply was lost .*"
                                                "not idempotent"):
                drv.pipeline(commands)
            assert board.steps == 4


def test_window_lost_middle_reply_is_not_rerun_out_of_order():
    # A lost reply with later frames run after it: re-running it would reorder them.
    board = FakeBoard(rx_fifo=4096)
    drv = Driver(board, timeout=0.01)
    drv.status()
    board.to_host[board.replies_out + 1] = TO_HOST["reply lost"]
    with pytest.raises(LinkError, match="PING ran on fake board but its reply was lost .* frames after "):
        drv.pipeline(_window_commands(P.Cmd.PING, 4))
    assert len(board.ran(P.Cmd.PING)) == 4


def test_window_resyncs_with_a_board_another_host_used():
    # The driver's seq is stale (another driver ran sequenced frames): one ERR_SEQUENCE, then on.
    board = FakeBoard(rx_fifo=4096)
    first, second = Driver(board, timeout=0.01), Driver(board, timeout=0.01)
    first.status()
    second.pipeline(_window_commands(P.Cmd.PING, 2))
    commands = _window_commands(STEP, 4)
    assert first.pipeline(commands) == _window_replies(STEP, commands)
    assert board.ran(STEP) == [p for _, p in commands]          # the stale seq 2 ran nothing early


def _sink_board(rx_fifo):
    # The real core (system group) at 4 cycles per bit, in Amaranth's simulator.
    core = EdgeLearnCore(clk_hz=12_000_000, baud=3_000_000, timeout=300, rx_fifo=rx_fifo)
    return SimBoard(core)


def test_real_core_window_fills_the_line_without_overrun():
    # Eight 60-byte SINK frames with a USB-like reply latency of 30 byte times, through a 128-byte
    # FIFO: windowed, no byte is lost (no overrun flag) and the line from the host is busy far more
    # than stop-and-wait keeps it, which idles for every reply's round trip. (Both include the
    # first and last round trip of the load; the bench measures long loads.)
    sim = _sink_board(rx_fifo=128)
    drv = Driver(SimTransport(sim_board=sim, latency=1200 / 12e6), timeout=0.001)
    data = bytes((7 * i + 1) & 0xFF for i in range(480))
    expect = [(60, sum(data[i:i + 60]) & 0xFFFF) for i in range(0, 480, 60)]
    use = {}
    for window in (False, True):
        drv.status()
        c0, b0 = sim.cycles, sim.tx_busy_cycles
        replies = drv.bulk(P.Cmd.SINK, data, chunk=60, window=window)
        assert [(int.from_bytes(r[:2], "little"), int.from_bytes(r[2:4], "little"))
                for r in replies] == expect
        use[window] = (sim.tx_busy_cycles - b0) / (sim.cycles - c0)
    st = drv.status()
    assert st["flags"] == 0 and st["seq"] == 8 and st["rx_fifo"] == 128
    assert use[True] >= 0.8 and use[False] <= 0.65


def test_real_core_window_never_overruns_the_fifo():
    # STATUS replies are 4x longer than the commands: a host that sent without regard to the
    # 32-byte FIFO would overrun it while the board answers.
    sim = _sink_board(rx_fifo=32)
    drv = Driver(SimTransport(sim_board=sim), timeout=0.001)
    drv.clear_errors()
    replies = drv.pipeline([(P.Cmd.STATUS, b"")] * 24 + [(P.Cmd.PING, b"y")])
    assert [P.unpack_status(r)["seq"] for r in replies[:-1]] == list(range(1, 25))  # in order, once each
    assert drv.pipeline([(P.Cmd.PING, b"x")]) == [b"x"]
    assert drv.status()["flags"] == 0 and drv.resends == 0   # the driver's seq followed the window


def test_command_for_a_group_the_bitstream_lacks_is_one_clear_error():
    # The controller answers a group it does not carry at once (ERR_UNKNOWN_CMD, no hang); the
    # driver names the group and what the bitstream carries, plain and windowed.
    drv = Driver(SimTransport(sim_board=_sink_board(rx_fifo=64)), timeout=0.001)
    message = (r"^GEMM \(0x12\): command group gemm is not in this bitstream \(it carries: system\)$")
    with pytest.raises(CommandError, match=message):
        drv.command(P.Cmd.GEMM, b"\x01\x00")
    with pytest.raises(CommandError, match=message):
        drv.pipeline([(P.Cmd.PING, b"a"), (P.Cmd.GEMM, b"\x01\x00"), (P.Cmd.PING, b"b")])
    # An unknown command inside a group the board has stays a plain unknown-command error.
    with pytest.raises(CommandError, match="^command 0x0f failed: ERR_UNKNOWN_CMD$"):
        drv.command(0x0F)
    assert drv.ping(b"alive") == b"alive"
    # The API asks STATUS first and says the same in one line (a job prints it as "skipped").
    with pytest.raises(BlockMissing, match=r"^the gemm group is not in this bitstream \(icebreaker carries: "
                                           r"system\)$"):
        Accelerator(drv, "icebreaker").gemv([1, 2], 1)


def test_link_baud_follows_the_clock_and_the_bridge():
    # Highest rate <= 3 Mbaud that the bridge makes exactly and the clock divides into >= 8.
    assert link_baud(12_000_000, "FT2232H") == 1_500_000        # 8 cycles per bit
    assert link_baud(48_000_000, "FT2232H") == 3_000_000        # 16
    assert link_baud(25_000_000, "FT231X") == 1_000_000         # 25 MHz: no multiple of 3 or 1.5 MHz
    assert link_baud(50_000_000, "FT231X") == 2_000_000         # the FT231X's special 2/3 rate
    assert link_baud(49_999_999, "FT2232H") == 2_400_000        # no exact rate: 20.8 -> 21, 0.8 % off
    assert link_baud(96_000_000, "FT2232H", max_baud=12_000_000) == 12_000_000
    with pytest.raises(ValueError, match="usb_uart must be one of FT2232H, FT231X, not 'CH340'"):
        link_baud(48_000_000, "CH340")
    cfg = BOARD_CONFIGS["icebreaker"]
    assert cfg.baud == link_baud(cfg.clk_hz, "FT2232H")
    assert dataclasses.replace(cfg, clk_hz=48_000_000, baud=0).baud == 3_000_000
    assert BOARD_CONFIGS["ulx3s"].baud == link_baud(BOARD_CONFIGS["ulx3s"].clk_hz, "FT231X")


def test_host_crc_is_the_spec_crc():
    # The host's C CRC (binascii.crc_hqx) against the bitwise spec function the gateware is built from.
    rng = random.Random(5)
    for n in (0, 1, 7, 300):
        data = bytes(rng.randrange(256) for _ in range(n))
        spec = P.CRC_INIT
        for b in data:
            spec = P.crc16_update(spec, b)
        assert P.crc16(data) == spec
