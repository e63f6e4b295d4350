"""Command controller at the UART pins: the protocol's golden encoder vs the gateware, bad frames."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from firmware.driver import CommandError, Driver
from firmware.transport import SimTransport
from hw.control import protocol as P
from hw.control.boards import check_board
from hw.control.controller import Controller
from hw.control.core import EdgeLearnCore
from hw.control.handler import HandlerSignature
from sim.board.amaranth_board import SimBoard, make_sim_core


def test_crc_check_value():
    # The published check value of CRC-16/CCITT-FALSE.
    assert P.crc16(b"123456789") == 0x29B1


def test_reply_parser_roundtrip_and_crc_error():
    frames = [(0x01, 0, b""), (0x12, 0, bytes(range(200))), (0x30, P.Status.ERR_BLOCK, b"")]
    stream = b"\x00\xff" + b"".join(P.encode_reply(*f) for f in frames)
    parser = P.ReplyParser()
    for i in range(0, len(stream), 7):
        parser.feed(stream[i:i + 7])
    assert parser.frames == frames and parser.skipped == 2
    bad = bytearray(P.encode_reply(1, 0, b"abc"))
    bad[6] ^= 1
    with pytest.raises(P.ProtocolError, match="CRC"):
        P.ReplyParser().feed(bytes(bad))


@pytest.fixture(scope="module")
def board():
    return SimBoard(make_sim_core("icebreaker"))


@pytest.fixture
def drv(board):
    d = Driver(SimTransport(sim_board=board))
    d.reset()
    return d


def test_ping_reply_is_the_golden_frame(board):
    payload = bytes(random.Random(1).randrange(256) for _ in range(40))
    board.write(P.encode_command(P.Cmd.PING, payload))
    expect = P.encode_reply(P.Cmd.PING, P.Status.OK, payload)
    assert board.read(len(expect)) == expect


def test_status_and_counters(drv):
    st = drv.status()
    assert st["version"] == P.PROTOCOL_VERSION and st["groups"] & 1
    assert st["max_payload"] == P.MAX_PAYLOAD and st["clk_khz"] == check_board("icebreaker").clk_hz // 1000 \
        and st["divisor"] == 4
    assert st["flags"] == 0 and st["errors"] == 0
    frames = st["frames"]
    drv.ping(b"x")
    assert drv.status()["frames"] == frames + 2
    # STATUS right after STATUS: its table starts again at its first byte
    again = drv.status()
    assert again["version"] == P.PROTOCOL_VERSION and again["frames"] == frames + 3


def test_sink_full_payload(drv):
    data = bytes(random.Random(2).randrange(256) for _ in range(P.MAX_PAYLOAD))
    assert drv.sink(data) == (len(data), sum(data) & 0xFFFF)
    assert drv.sink(b"") == (0, 0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_short_payloads(drv, n):
    # The system handler's count of the payload's last bytes (registered a byte ahead)
    data = bytes(range(0xF0, 0xF0 + n))
    assert drv.ping(data) == data
    assert drv.sink(data) == (n, sum(data))


def _expect_error_then_working(drv, status, flag):
    cmd, got, payload = drv.receive()
    assert (got, payload) == (status, b"")
    st = drv.status()
    assert st["flags"] & (1 << P.FLAG_BITS[flag]) and st["errors"] >= 1
    assert drv.ping(b"still alive") == b"still alive"
    drv.clear_errors()
    assert drv.status()["flags"] == 0


def test_crc_error(drv):
    frame = bytearray(P.encode_command(P.Cmd.PING, b"abcdef"))
    frame[6] ^= 0x40
    drv.send_raw(frame)
    _expect_error_then_working(drv, P.Status.ERR_CRC, "crc")


def test_unknown_command_in_missing_group(drv):
    drv.send_raw(P.encode_command(0x7E, b"zz"))
    _expect_error_then_working(drv, P.Status.ERR_UNKNOWN_CMD, "unknown")


def test_unknown_command_in_system_group(drv):
    with pytest.raises(CommandError, match="ERR_UNKNOWN_CMD"):
        drv.command(0x0F)
    assert drv.ping(b"ok") == b"ok"


def test_truncated_frame(drv):
    drv.send_raw(P.encode_command(P.Cmd.PING, b"0123456789")[:9])
    _expect_error_then_working(drv, P.Status.ERR_TRUNCATED, "truncated")


def test_oversize_payload_is_drained(drv):
    # A frame longer than MAX_PAYLOAD: answered right after its header, the rest discarded (it
    # contains a would-be sync byte and a valid-looking frame, which must not be executed).
    inner = P.encode_command(P.Cmd.RESET)
    drv.send_raw(P.encode_command(P.Cmd.SINK, inner + bytes(P.MAX_PAYLOAD + 1 - len(inner))))
    _expect_error_then_working(drv, P.Status.ERR_OVERSIZE, "oversize")


def test_garbage_between_frames_is_ignored(drv):
    drv.send_raw(b"\x00\x13\x37")
    assert drv.ping(b"after garbage") == b"after garbage"


class _HangHandler(wiring.Component):
    """A command group whose command 0x10 never finishes and 0x11 echoes the length."""
    bus: Out(HandlerSignature())

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        with m.FSM():
            with m.State("IDLE"):
                with m.If(bus.start):
                    m.next = "DISPATCH"  # 0x10 then waits here forever
            with m.State("DISPATCH"):
                with m.If(bus.cmd == 0x11):
                    m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(bus.length[:8])]
                    with m.If(bus.o_data.ready):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += bus.done.eq(1)
                m.next = "IDLE"
        return m


def test_watchdog_resets_a_hung_block():
    core = EdgeLearnCore(clk_hz=12_000_000, baud=3_000_000, timeout=500, watchdog=3000,
                         handlers={1: _HangHandler})
    drv = Driver(SimTransport(sim_board=SimBoard(core)))
    assert drv.command(0x11, b"abc") == b"\x03"
    with pytest.raises(CommandError, match="ERR_TIMEOUT"):
        drv.command(0x10)
    assert drv.status()["flags"] & (1 << P.FLAG_BITS["timeout"])
    assert drv.command(0x11, b"abcde") == b"\x05"  # the block was reset and works


@pytest.mark.parametrize("kwargs,message", [
    ({"groups": ()}, "groups must be distinct integers from 0 to 15"),
    ({"groups": (0, 16)}, "groups must be an integer from 0 to 15, not 16"),
    ({"timeout": 3}, "timeout must be an integer from 16"),
    ({"watchdog": 0}, "watchdog must be an integer from 16"),
])
def test_controller_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Controller(**kwargs)


def test_core_bad_parameters():
    with pytest.raises(ValueError, match="baud must be within 2%"):
        EdgeLearnCore(clk_hz=25_000_000, baud=3_000_000)
    with pytest.raises(ValueError, match="handlers must not contain group 0"):
        EdgeLearnCore(handlers={0: _HangHandler})
