"""The board command protocol: the one definition shared by the gateware and the host driver.

Pure Python (no Amaranth, no numpy): :mod:`hw.control.controller` builds its parser and CRC from
these constants, and :mod:`firmware` encodes and decodes frames with the functions below.

Frames
------
A command (host to board)::

    SYNC_CMD  cmd  len_lo len_hi  payload[len]  crc_lo crc_hi

A reply (board to host), exactly one per command frame the board saw::

    SYNC_REPLY  cmd  status  len_lo len_hi  payload[len]  crc_lo crc_hi

``crc`` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
XOR) over every byte after the sync byte and before the CRC. Lengths and CRC are little-endian.
A command payload is at most :data:`MAX_PAYLOAD` bytes and a reply payload at most
:data:`MAX_REPLY` bytes; bulk data is split into several frames.

Link rules (decisions the issue left open):

* The host waits for each reply before sending the next command (stop-and-wait). With
  :data:`MAX_PAYLOAD`-byte frames the framing costs 13 bytes per 512, so bulk loads can reach about
  97 % of the line rate.
* A frame is executed only after its CRC checked out, so a corrupted frame has no effect.
* Errors get a reply with a non-zero ``status`` and an empty payload, and the board returns to
  waiting for a sync byte: ``ERR_CRC`` (bad CRC), ``ERR_UNKNOWN_CMD``, ``ERR_OVERSIZE`` (``len``
  above :data:`MAX_PAYLOAD`; sent right after the header, then the board discards ``len + 2``
  bytes), ``ERR_TRUNCATED`` (the line went idle for the board's timeout in the middle of a frame;
  before its ``cmd`` byte arrived, the reply's ``cmd`` is ``SYNC_CMD``, no command's code).
  Bytes outside a frame that are not ``SYNC_CMD`` are ignored.
* Where a frame ends: after the ``len + 2`` bytes its header declares (any ``len`` up to 0xFFFF),
  or when the line goes idle for the board's timeout, whichever comes first. No byte inside a
  frame, refused or not, is ever parsed as the start of another frame; a refused frame (CRC,
  oversize, truncated, unknown) executes nothing. After an error the host waits for the line to
  be idle longer than the board's timeout before it sends again (:mod:`firmware.driver`), so the
  board is hunting for a sync byte whatever it made of the bytes before.
* ``ERR_LENGTH``: the payload length does not fit the command (a command that takes no payload,
  ``STATUS``, ``RESET``, ``CLEAR_ERRORS``, refuses a non-empty one); nothing is executed, but it is
  not a link error: the frame checked out, so resending it gets the same answer.
  ``ERR_TIMEOUT``: a block did not finish within the board's watchdog time (it is then reset);
  ``ERR_REPLY_OVERSIZE``: a command would produce more than :data:`MAX_REPLY` bytes (the reply is
  dropped); ``ERR_BLOCK``: the block flagged bad run-time data (details in ``STATUS``).

Command groups
--------------
The high nibble of ``cmd`` selects a command group, each served by one handler in the
controller (see :mod:`hw.control.handler`): ``0x0_`` system, ``0x1_`` Huffman-compressed GEMM
(MAC array), ``0x2_`` HDQT training, ``0x3_`` STDP synapses. Each group's payload formats are in
its handler's module (e.g. :mod:`hw.control.stdp_handler`). A board built without a group answers
its commands with ``ERR_UNKNOWN_CMD``.
"""

from ..lib import crc as crc_spec
from ..lib.crc import CRC16_INIT, CRC16_POLY

__all__ = [
    "SYNC_CMD", "SYNC_REPLY", "MAX_PAYLOAD", "MAX_REPLY", "CRC_POLY", "CRC_INIT", "PROTOCOL_VERSION",
    "Status", "Cmd", "GROUP_SYSTEM", "GROUP_GEMM", "GROUP_HDQT", "GROUP_STDP", "GROUP_NAMES",
    "crc16", "crc16_update", "encode_command", "encode_reply", "ReplyParser", "ProtocolError",
    "status_name", "STATUS_FIELDS", "pack_status", "unpack_status", "cmd_name", "IDEMPOTENT",
    "NOT_EXECUTED",
]

SYNC_CMD = 0xA5
SYNC_REPLY = 0x5A
#: Largest command payload (the controller's receive buffer, one iCE40 block RAM).
MAX_PAYLOAD = 512
#: Largest reply payload (the controller's transmit buffer).
MAX_REPLY = 512
CRC_POLY = CRC16_POLY
CRC_INIT = CRC16_INIT
PROTOCOL_VERSION = 1

GROUP_SYSTEM = 0x0
GROUP_GEMM = 0x1
GROUP_HDQT = 0x2
GROUP_STDP = 0x3
GROUP_NAMES = {GROUP_SYSTEM: "system", GROUP_GEMM: "gemm", GROUP_HDQT: "hdqt", GROUP_STDP: "stdp"}


class Status:
    """Reply status codes."""
    OK = 0x00
    ERR_CRC = 0x01
    ERR_UNKNOWN_CMD = 0x02
    ERR_TRUNCATED = 0x03
    ERR_OVERSIZE = 0x04
    ERR_LENGTH = 0x05
    ERR_TIMEOUT = 0x06
    ERR_REPLY_OVERSIZE = 0x07
    ERR_BLOCK = 0x08


_STATUS_NAMES = {v: k for k, v in vars(Status).items() if not k.startswith("_")}


def status_name(code):
    return _STATUS_NAMES.get(code, f"0x{code:02x}")


class Cmd:
    """Command codes (high nibble: group)."""
    # System group.
    PING = 0x00           # reply: the payload, unchanged
    STATUS = 0x01         # reply: the status record (see STATUS_FIELDS)
    RESET = 0x02          # reset every block and clear all error flags and counters
    CLEAR_ERRORS = 0x03   # clear the sticky error flags and counters only
    SINK = 0x04           # consume the payload; reply: byte count (u16) and byte sum (u16)
    # GEMM group (Huffman decoder + MAC array).
    LOAD_HUFFMAN = 0x10   # payload: code table (see the group's handler)
    LOAD_WEIGHTS = 0x11   # payload: Huffman-compressed weight bits, appended
    GEMM = 0x12           # payload: activations; reply: results
    # HDQT group (one layer's training step).
    HDQT_LOAD = 0x20      # payload: tensor select, address, int16 elements
    HDQT_STEP = 0x21      # payload: exponent base; reply: shifts, flags, cycles
    HDQT_READ = 0x22      # payload: what, address, count; reply: results or weights
    # STDP group.
    LOAD_SYNAPSES = 0x30  # write synapse / row / bitmap / neuron-state memory words
    INJECT_SPIKES = 0x31  # one time step: input events in, the step's output spikes out
    READ_WEIGHTS = 0x33   # read memory words back (learned weights, neuron states)


_CMD_NAMES = {v: k for k, v in vars(Cmd).items() if not k.startswith("_")}


def cmd_name(code):
    return _CMD_NAMES.get(code, f"command 0x{code:02x}")


#: Commands whose second execution leaves the board as the first did (and replies the same), so
#: the host may resend one whose reply it never got. Not in the set: ``LOAD_WEIGHTS`` (appends),
#: ``HDQT_STEP`` (updates the weights), ``INJECT_SPIKES`` (advances the network one step).
IDEMPOTENT = frozenset({
    Cmd.PING, Cmd.STATUS, Cmd.RESET, Cmd.CLEAR_ERRORS, Cmd.SINK,
    Cmd.LOAD_HUFFMAN, Cmd.GEMM,          # LOAD_HUFFMAN restarts the model; GEMM only reads
    Cmd.HDQT_LOAD, Cmd.HDQT_READ,        # writes to / reads from given addresses
    Cmd.LOAD_SYNAPSES, Cmd.READ_WEIGHTS,
})

#: Error replies the controller sends for a frame it did not execute because of the link (the
#: frame's bytes were damaged): resending the frame is always safe.
NOT_EXECUTED = frozenset({Status.ERR_CRC, Status.ERR_TRUNCATED, Status.ERR_OVERSIZE})


#: The STATUS reply: (name, bytes) fields, little-endian, in order.
STATUS_FIELDS = (
    ("version", 1),        # PROTOCOL_VERSION
    ("groups", 1),         # bit g set: command group g is present
    ("max_payload", 2),
    ("clk_khz", 4),        # system clock
    ("divisor", 2),        # UART clock cycles per bit
    ("flags", 1),          # sticky link errors: bit0 CRC, bit1 unknown, bit2 truncated,
                           # bit3 oversize, bit4 timeout, bit5 framing, bit6 overrun, bit7 block
    ("block_flags", 1),    # bit g: command group g's block raised its error flag
    ("frames", 2),         # frames executed OK since the last reset (wraps)
    ("errors", 2),         # error replies since the last reset (wraps)
)

FLAG_BITS = {"crc": 0, "unknown": 1, "truncated": 2, "oversize": 3, "timeout": 4, "framing": 5,
             "overrun": 6, "block": 7}


def pack_status(**values):
    out = bytearray()
    for name, size in STATUS_FIELDS:
        out += int(values.get(name, 0)).to_bytes(size, "little")
    return bytes(out)


def unpack_status(payload):
    expect = sum(size for _, size in STATUS_FIELDS)
    if len(payload) != expect:
        raise ProtocolError(f"STATUS reply has {len(payload)} bytes, expected {expect}")
    values, pos = {}, 0
    for name, size in STATUS_FIELDS:
        values[name] = int.from_bytes(payload[pos:pos + size], "little")
        pos += size
    return values


class ProtocolError(Exception):
    """A malformed frame or an error reply."""


def crc16_update(crc, byte):
    """CRC-16/CCITT-FALSE after one more byte (MSB first, as the gateware computes it)."""
    return crc_spec.crc16_update(crc, byte, 8)


def crc16(data, crc=CRC_INIT):
    for b in data:
        crc = crc16_update(crc, b)
    return crc


def encode_command(cmd, payload=b""):
    """The bytes of a command frame."""
    payload = bytes(payload)
    if not 0 <= cmd <= 0xFF:
        raise ValueError(f"cmd must be an integer from 0 to 255, not {cmd!r}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload must be at most 65535 bytes, not {len(payload)}")
    body = bytes([cmd]) + len(payload).to_bytes(2, "little") + payload
    return bytes([SYNC_CMD]) + body + crc16(body).to_bytes(2, "little")


def encode_reply(cmd, status, payload=b""):
    """The bytes of a reply frame (the golden model of what the controller sends)."""
    payload = bytes(payload)
    body = bytes([cmd, status]) + len(payload).to_bytes(2, "little") + payload
    return bytes([SYNC_REPLY]) + body + crc16(body).to_bytes(2, "little")


class ReplyParser:
    """Incremental reply-frame parser: feed bytes, collect ``(cmd, status, payload)`` tuples.

    Bytes before a sync byte are counted in :attr:`skipped`. With ``strict`` (the default) a reply
    whose CRC does not match raises :class:`ProtocolError` from :meth:`feed`. Without it the parser
    resynchronises: a sync byte that does not start a valid reply (CRC mismatch, or a length above
    :data:`MAX_REPLY`, which no reply has) is skipped and the search goes on from the next byte, so
    a stray byte before or inside a reply does not hide the replies after it; :attr:`bad` counts
    the CRC mismatches.
    """

    def __init__(self, strict=True):
        self._buf = bytearray()
        self.strict = strict
        self.skipped = 0
        self.bad = 0
        self.frames = []

    def feed(self, data):
        self._buf += data
        while True:
            while self._buf and self._buf[0] != SYNC_REPLY:
                del self._buf[0]
                self.skipped += 1
            if len(self._buf) < 5:
                return self.frames
            length = int.from_bytes(self._buf[3:5], "little")
            if length > MAX_REPLY and not self.strict:
                self._drop_sync()
                continue
            total = 5 + length + 2
            if len(self._buf) < total:
                return self.frames
            frame = bytes(self._buf[:total])
            body = frame[1:5 + length]
            crc = int.from_bytes(frame[-2:], "little")
            if crc16(body) != crc:
                if self.strict:
                    del self._buf[:total]
                    raise ProtocolError(f"reply CRC mismatch (got 0x{crc:04x}, computed 0x{crc16(body):04x})")
                self.bad += 1
                self._drop_sync()
                continue
            del self._buf[:total]
            self.frames.append((frame[1], frame[2], frame[5:5 + length]))

    def _drop_sync(self):
        del self._buf[0]
        self.skipped += 1

    def give_up(self):
        """No more bytes are coming: drop the sync byte of an unfinished frame and search again.

        Returns :attr:`frames`. Call until :meth:`pending` is 0 to use every byte received.
        """
        if self._buf:
            self._drop_sync()
            self.feed(b"")
        return self.frames

    def pending(self):
        """Bytes held for an unfinished frame."""
        return len(self._buf)

    def needed(self):
        """A lower bound on the bytes still missing for the next frame."""
        if len(self._buf) < 5:
            return 7 - len(self._buf)
        length = int.from_bytes(self._buf[3:5], "little")
        return max(1, 7 + length - len(self._buf))
