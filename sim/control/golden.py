"""Golden model of the command controller's receive side: which frames execute, which are refused.

:class:`FrameParser` follows the framing rules of :mod:`hw.control.protocol` and the resynchronisation
rule of :mod:`hw.control.controller` byte by byte, from the protocol module's own constants and CRC,
so a test can feed the same byte stream to both and compare what they execute and answer.

Sequenced frames (``SYNC_SEQ_CMD``) run only with the expected ``seq`` (:attr:`FrameParser.seq`),
which then counts up; every event carries the frame's ``seq`` (None for a plain frame), which its
reply echoes.

The input is a sequence of bytes and *gaps*: a gap stands for the line staying idle for at least the
controller's ``timeout`` cycles (the only timing the receive side depends on).
"""

from hw.control.protocol import MAX_PAYLOAD, SYNC_CMD, SYNC_SEQ_CMD, Status, crc16

__all__ = ["FrameParser", "Execute", "Refuse"]


class Execute(tuple):
    """``(cmd, payload)``: a frame whose length and CRC checked out, handed to its group's handler.
    ``seq``: the frame's (None: a plain frame; not part of equality)."""

    def __new__(cls, cmd, payload, seq=None):
        event = super().__new__(cls, (cmd, bytes(payload)))
        event.seq = seq
        return event

    def __repr__(self):
        return f"Execute(0x{self[0]:02x}, {len(self[1])} bytes)"


class Refuse(tuple):
    """``(cmd, status)``: an error reply from the controller itself; nothing was executed.
    ``seq``: the frame's (None: a plain frame; not part of equality)."""

    def __new__(cls, cmd, status, seq=None):
        event = super().__new__(cls, (cmd, status))
        event.seq = seq
        return event

    def __repr__(self):
        return f"Refuse(0x{self[0]:02x}, {self[1]})"


class FrameParser:
    """Incremental model of the controller's frame parser.

    Parameters
    ----------
    groups : iterable of int
        Command groups present (a frame for another group is refused ``ERR_UNKNOWN_CMD``).

    Attributes
    ----------
    events : list of Execute or Refuse
        In the order the controller produces them. An ``Execute`` is answered by its handler,
        a ``Refuse`` by the controller with an empty payload.
    seq : int
        The ``seq`` the next sequenced frame must carry.
    """

    def __init__(self, groups=(0,)):
        self.groups = frozenset(groups)
        self.events = []
        self._state = "HUNT"
        self._cmd = SYNC_CMD   # a frame truncated before its cmd byte is answered for SYNC_CMD
        self._length = 0
        self._payload = bytearray()
        self._crc_bytes = bytearray()
        self._drain = 0
        self.seq = 0
        self._sequenced = False
        self._seq = 0

    def feed(self, data):
        for b in bytes(data):
            self._byte(b)
        return self.events

    def gap(self):
        """The line idles for the controller's timeout: a frame in progress ends."""
        if self._state in ("SEQ", "CMD", "LEN0", "LEN1", "PAYLOAD", "CRC"):
            self._event(Refuse, Status.ERR_TRUNCATED)
        self._state = "HUNT"
        return self.events

    def _byte(self, b):
        state = self._state
        if state == "HUNT":
            if b in (SYNC_CMD, SYNC_SEQ_CMD):
                self._cmd = SYNC_CMD
                self._sequenced = b == SYNC_SEQ_CMD
                self._state = "SEQ" if self._sequenced else "CMD"
        elif state == "SEQ":
            self._seq = b
            self._state = "CMD"
        elif state == "CMD":
            self._cmd = b
            self._state = "LEN0"
        elif state == "LEN0":
            self._length = b
            self._state = "LEN1"
        elif state == "LEN1":
            self._length |= b << 8
            self._payload = bytearray()
            self._crc_bytes = bytearray()
            if self._length > MAX_PAYLOAD:
                # Refused at once; the declared payload and CRC are skipped unread.
                self._event(Refuse, Status.ERR_OVERSIZE)
                self._drain = self._length + 2
                self._state = "DRAIN"
            else:
                self._state = "PAYLOAD" if self._length else "CRC"
        elif state == "PAYLOAD":
            self._payload.append(b)
            if len(self._payload) == self._length:
                self._state = "CRC"
        elif state == "CRC":
            self._crc_bytes.append(b)
            if len(self._crc_bytes) == 2:
                self._check()
                self._state = "HUNT"
        elif state == "DRAIN":
            self._drain -= 1
            if self._drain == 0:
                self._state = "HUNT"

    def _event(self, kind, value):
        self.events.append(kind(self._cmd, value, self._seq if self._sequenced else None))

    def _check(self):
        head = bytes([self._seq]) if self._sequenced else b""
        body = head + bytes([self._cmd]) + self._length.to_bytes(2, "little") + bytes(self._payload)
        if int.from_bytes(self._crc_bytes, "little") != crc16(body):
            self._event(Refuse, Status.ERR_CRC)
            return
        if self._sequenced:
            if self._seq != self.seq:
                self._event(Refuse, Status.ERR_SEQUENCE)
                return
            self.seq = (self.seq + 1) & 0xFF
        if self._cmd >> 4 not in self.groups:
            self._event(Refuse, Status.ERR_UNKNOWN_CMD)
        else:
            self._event(Execute, self._payload)
