"""Link robustness: a damaged frame or reply costs a resend, never a job or a double execution.

A fake board (the golden frame parser of :mod:`sim.control.golden` plus a small command model)
sits behind a transport that damages chosen frames in either direction; one test runs the real
controller (the simulated board in Amaranth) with stray bytes on its line.
"""

import pytest

from firmware.driver import Driver, LinkError
from firmware.transport import SimTransport
from hw.control import protocol as P
from hw.control.core import EdgeLearnCore
from sim.board.amaranth_board import SimBoard
from sim.control.golden import Execute, FrameParser

STEP = P.Cmd.INJECT_SPIKES      # a non-idempotent command: each run advances a step counter


class FakeBoard:
    """A transport to a model board; ``to_board[k]`` / ``to_host[k]`` damage the k-th frame/reply.

    A read that finds nothing stands for the line going idle past the board's frame timeout.
    """

    name = "fake board"
    quiet = 0.0

    def __init__(self, to_board=None, to_host=None):
        self.parser = FrameParser(groups=(0, 3))
        self.to_board = dict(to_board or {})
        self.to_host = dict(to_host or {})
        self.frames_in = 0
        self.replies_out = 0
        self.out = bytearray()
        self.executed = []
        self.steps = 0
        self.frames_ok = 0
        self._seen = 0

    def write(self, data):
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

    def close(self):
        pass

    def _answer(self):
        for event in self.parser.events[self._seen:]:
            reply = self._execute(event) if isinstance(event, Execute) else P.encode_reply(*event)
            damage = self.to_host.pop(self.replies_out, None)
            self.replies_out += 1
            self.out += damage(reply) if damage else reply
        self._seen = len(self.parser.events)

    def _execute(self, event):
        cmd, payload = event
        self.executed.append(cmd)
        if cmd == P.Cmd.PING:
            reply = payload
        elif cmd == P.Cmd.STATUS:
            reply = P.pack_status(frames=self.frames_ok)
        elif cmd == STEP:
            self.steps += 1
            reply = self.steps.to_bytes(2, "little")
        else:
            return P.encode_reply(cmd, P.Status.ERR_UNKNOWN_CMD)
        self.frames_ok += 1
        return P.encode_reply(cmd, P.Status.OK, reply)


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
    assert board.executed.count(cmd) == 1 and drv.resends >= 1
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
