"""The board command protocol: the one definition shared by the gateware and the host driver.

Pure Python (no Amaranth, no numpy): :mod:`hw.control.controller` builds its parser and CRC from
these constants, and :mod:`firmware` encodes and decodes frames with the functions below.

Frames
------
A command (host to board), plain or sequenced::

    SYNC_CMD      cmd  len_lo len_hi  payload[len]  crc_lo crc_hi
    SYNC_SEQ_CMD  seq  cmd  len_lo len_hi  payload[len]  crc_lo crc_hi

A reply (board to host), exactly one per command frame the board saw, of the command's kind::

    SYNC_REPLY      cmd  status  len_lo len_hi  payload[len]  crc_lo crc_hi
    SYNC_SEQ_REPLY  seq  cmd  status  len_lo len_hi  payload[len]  crc_lo crc_hi

``crc`` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
XOR) over every byte after the sync byte and before the CRC. Lengths and CRC are little-endian.
A command payload is at most :data:`MAX_PAYLOAD` bytes and a reply payload at most
:data:`MAX_REPLY` bytes; bulk data is split into several frames. A sequenced reply echoes the
``seq`` of the frame it answers.

Link rules (decisions the issue left open):

* Plain frames are stop-and-wait: the host waits for each reply before it sends the next command
  (protocol version 1 knows only these, and a version-2 board still takes them unchanged).
* Sequenced frames may be pipelined: the host keeps sending while replies are outstanding, with
  the bytes of frames after the oldest unanswered one at most ``STATUS.rx_fifo`` (the board's
  receive FIFO in front of the controller, which takes the next frame only once the previous one's
  reply is out). The board executes a sequenced frame only if its ``seq`` is the one it expects
  (``STATUS.seq``), and then expects ``seq + 1`` (mod 256) whatever the command's status; any
  other ``seq`` is answered ``ERR_SEQUENCE`` and executes nothing. So a frame lost or refused in
  the middle of a window stops every later one until the host resends from it, and a resent frame
  that already ran is refused: nothing runs twice or out of order. Plain frames neither check nor
  advance the sequence.
* A frame is executed only after its CRC checked out, so a corrupted frame has no effect.
* Errors get a reply with a non-zero ``status`` and an empty payload, and the board returns to
  waiting for a sync byte: ``ERR_CRC`` (bad CRC), ``ERR_UNKNOWN_CMD``, ``ERR_OVERSIZE`` (``len``
  above :data:`MAX_PAYLOAD`; sent right after the header, then the board discards ``len + 2``
  bytes), ``ERR_TRUNCATED`` (the line went idle for the board's timeout in the middle of a frame;
  before its ``cmd`` byte arrived, the reply's ``cmd`` is ``SYNC_CMD``, no command's code),
  ``ERR_SEQUENCE`` (a sequenced frame with another ``seq`` than expected).
  Bytes outside a frame that are neither sync byte are ignored.
* Where a frame ends: after the ``len + 2`` bytes its header declares (any ``len`` up to 0xFFFF),
  or when the line goes idle for the board's timeout, whichever comes first. No byte inside a
  frame, refused or not, is ever parsed as the start of another frame; a refused frame (CRC,
  oversize, truncated, unknown, sequence) executes nothing. After an error the host waits for the
  line to be idle longer than the board's timeout before it sends again (:mod:`firmware.driver`),
  so the board is hunting for a sync byte whatever it made of the bytes before.
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
its commands with ``ERR_UNKNOWN_CMD`` (``STATUS.groups`` says which groups the bitstream carries).
"""

import binascii

from ..lib import crc as crc_spec
from ..lib.crc import CRC16_INIT, CRC16_POLY

__all__ = [
    "SYNC_CMD", "SYNC_REPLY", "SYNC_SEQ_CMD", "SYNC_SEQ_REPLY", "Reply", "MAX_PAYLOAD", "MAX_REPLY",
    "CRC_POLY", "CRC_INIT", "PROTOCOL_VERSION", "Status", "Cmd", "GROUP_SYSTEM", "GROUP_GEMM",
    "GROUP_HDQT", "GROUP_STDP", "GROUP_NAMES", "crc16", "crc16_update", "encode_command",
    "encode_reply", "ReplyParser", "ProtocolError", "status_name", "STATUS_FIELDS", "STATUS_V1_BYTES",
    "pack_status", "unpack_status", "cmd_name", "IDEMPOTENT", "NOT_EXECUTED",
]

SYNC_CMD = 0xA5
SYNC_REPLY = 0x5A
#: Sync bytes of sequenced frames (one ``seq`` byte after the sync byte).
SYNC_SEQ_CMD = 0xA6
SYNC_SEQ_REPLY = 0x5B
#: Largest command payload (the controller's receive buffer, one iCE40 block RAM).
MAX_PAYLOAD = 512
#: Largest reply payload (the controller's transmit buffer).
MAX_REPLY = 512
CRC_POLY = CRC16_POLY
CRC_INIT = CRC16_INIT
#: 2: sequenced frames, and ``rx_fifo``/``seq`` at the end of the ``STATUS`` record.
PROTOCOL_VERSION = 2

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
    ERR_SEQUENCE = 0x09


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
    # GEMM group served by the GEMM engine (hw.control.engine_handler; LOAD_HUFFMAN and
    # LOAD_WEIGHTS there: the table, and compressed weight beats staged for GEMM_RUN).
    GEMM_START = 0x13     # payload: precision, activation sign, row tiles, groups
    GEMM_ACTS = 0x14      # payload: activation words
    GEMM_RUN = 0x15       # payload: weight tiles staged; reply: cycles, beats, rows, flags
    GEMM_READ = 0x16      # payload: result rows; reply: their values
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
#: frame's bytes were damaged, or, ``ERR_SEQUENCE``, a frame before it was): resending is safe.
NOT_EXECUTED = frozenset({Status.ERR_CRC, Status.ERR_TRUNCATED, Status.ERR_OVERSIZE, Status.ERR_SEQUENCE})


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
    ("rx_fifo", 2),        # bytes of the receive FIFO: the window of sequenced frames (version 2)
    ("seq", 1),            # the seq the next sequenced frame must carry (version 2)
)
#: Length of a version-1 STATUS record (without the version-2 fields, which then read 0).
STATUS_V1_BYTES = sum(size for _, size in STATUS_FIELDS[:-2])

FLAG_BITS = {"crc": 0, "unknown": 1, "truncated": 2, "oversize": 3, "timeout": 4, "framing": 5,
             "overrun": 6, "block": 7}


def pack_status(**values):
    out = bytearray()
    for name, size in STATUS_FIELDS:
        out += int(values.get(name, 0)).to_bytes(size, "little")
    return bytes(out)


def unpack_status(payload):
    """The STATUS record as a dict; a version-1 board's shorter record gives 0 for the new fields."""
    expect = sum(size for _, size in STATUS_FIELDS)
    if len(payload) not in (expect, STATUS_V1_BYTES):
        raise ProtocolError(f"STATUS reply has {len(payload)} bytes, expected {expect}")
    payload = bytes(payload) + bytes(expect - len(payload))
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
    """CRC-16/CCITT-FALSE of ``data`` (``binascii.crc_hqx`` is this CRC, in C: the host encodes
    and checks frames at line rate; tests hold it to :func:`crc16_update`)."""
    return binascii.crc_hqx(bytes(data), crc)


def _check_seq(seq):
    if seq is not None and not (isinstance(seq, int) and 0 <= seq <= 0xFF):
        raise ValueError(f"seq must be None or an integer from 0 to 255, not {seq!r}")
    return b"" if seq is None else bytes([seq])


def encode_command(cmd, payload=b"", seq=None):
    """The bytes of a command frame: plain, or sequenced with ``seq`` (0..255)."""
    payload = bytes(payload)
    if not 0 <= cmd <= 0xFF:
        raise ValueError(f"cmd must be an integer from 0 to 255, not {cmd!r}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload must be at most 65535 bytes, not {len(payload)}")
    body = _check_seq(seq) + bytes([cmd]) + len(payload).to_bytes(2, "little") + payload
    sync = SYNC_CMD if seq is None else SYNC_SEQ_CMD
    return bytes([sync]) + body + crc16(body).to_bytes(2, "little")


def encode_reply(cmd, status, payload=b"", seq=None):
    """The bytes of a reply frame (the golden model of what the controller sends)."""
    payload = bytes(payload)
    body = _check_seq(seq) + bytes([cmd, status]) + len(payload).to_bytes(2, "little") + payload
    sync = SYNC_REPLY if seq is None else SYNC_SEQ_REPLY
    return bytes([sync]) + body + crc16(body).to_bytes(2, "little")


class Reply(tuple):
    """``(cmd, status, payload)`` of a reply, and :attr:`seq` (None for a plain reply)."""

    def __new__(cls, cmd, status, payload, seq=None):
        reply = super().__new__(cls, (cmd, status, bytes(payload)))
        reply.seq = seq
        return reply


class ReplyParser:
    """Incremental reply-frame parser: feed bytes, collect :class:`Reply` tuples (plain and sequenced).

    Bytes before a sync byte are counted in :attr:`skipped`. With ``strict`` (the default) a reply
    whose CRC does not match raises :class:`ProtocolError` from :meth:`feed`. Without it the parser
    resynchronises: a sync byte that does not start a valid reply (CRC mismatch, or a length above
    :data:`MAX_REPLY`, which no reply has) is skipped and the search goes on from the next byte, so
    a stray byte before or inside a reply does not hide the replies after it; :attr:`bad` counts
    the CRC mismatches.
    """

    _SYNCS = (SYNC_REPLY, SYNC_SEQ_REPLY)

    def __init__(self, strict=True):
        self._buf = bytearray()
        self.strict = strict
        self.skipped = 0
        self.bad = 0
        self.frames = []

    def _header(self):
        """Header bytes (sync to length) of the frame at the buffer's start."""
        return 6 if self._buf[0] == SYNC_SEQ_REPLY else 5

    def feed(self, data):
        self._buf += data
        while True:
            while self._buf and self._buf[0] not in self._SYNCS:
                del self._buf[0]
                self.skipped += 1
            if not self._buf:
                return self.frames
            head = self._header()
            if len(self._buf) < head:
                return self.frames
            length = int.from_bytes(self._buf[head - 2:head], "little")
            if length > MAX_REPLY and not self.strict:
                self._drop_sync()
                continue
            total = head + length + 2
            if len(self._buf) < total:
                return self.frames
            frame = bytes(self._buf[:total])
            body = frame[1:head + length]
            crc = int.from_bytes(frame[-2:], "little")
            if crc16(body) != crc:
                if self.strict:
                    del self._buf[:total]
                    raise ProtocolError(f"reply CRC mismatch (got 0x{crc:04x}, computed 0x{crc16(body):04x})")
                self.bad += 1
                self._drop_sync()
                continue
            del self._buf[:total]
            seq = frame[1] if head == 6 else None
            self.frames.append(Reply(frame[head - 4], frame[head - 3], frame[head:head + length], seq))

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
        if not self._buf:
            return 7
        head = self._header()
        if len(self._buf) < head:
            return head + 2 - len(self._buf)
        length = int.from_bytes(self._buf[head - 2:head], "little")
        return max(1, head + 2 + length - len(self._buf))
