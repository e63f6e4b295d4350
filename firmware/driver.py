"""The host driver: commands and replies over a transport, with the shared protocol.

Framing, CRC and codes come from :mod:`hw.control.protocol` (the same module the gateware is built
from). :class:`Driver` sends one command, waits for its reply (stop-and-wait, as the protocol
requires) and returns the payload or raises :class:`CommandError`.

Link errors cost a resend, never a double execution (decision; the protocol has no sequence
number and needs none for this):

* The board answered the frame ``ERR_CRC``, ``ERR_TRUNCATED`` or ``ERR_OVERSIZE``
  (:data:`hw.control.protocol.NOT_EXECUTED`): the controller executes nothing of such a frame, so
  any command is resent.
* No valid reply within ``timeout`` (lost, or damaged on the way back): the board may have
  executed the command. :data:`hw.control.protocol.IDEMPOTENT` commands are resent. The others
  (``LOAD_WEIGHTS``, ``HDQT_STEP``, ``INJECT_SPIKES``) are resent only if ``STATUS`` proves they did
  not run: the driver follows the board's count of frames executed OK (``STATUS.frames``: learnt
  by one ``STATUS`` before the first such command after a reset, then counted from the OK
  replies); an unchanged count with the block and watchdog flags clear means the frame never ran
  (e.g. a stray sync byte swallowed it). Otherwise :class:`LinkError` says the command ran (or may
  have) and its reply is lost, since running it twice would corrupt the job silently.
* A reply for another command is an answer to bytes that were not this frame (line noise that
  began with a sync byte): it is ignored and the wait goes on.

Before a resend the driver waits until the line has been silent for ``transport.quiet`` (longer
than the board's frame timeout), so the board has ended whatever frame it was in and hunts for a
sync byte again; a valid reply for the command that arrives during that wait is taken as its
answer. After ``attempts`` sends, :class:`LinkError` names the command, the attempts and why each
failed.
"""

from hw.control import protocol
from hw.control.protocol import (
    FLAG_BITS,
    IDEMPOTENT,
    MAX_PAYLOAD,
    NOT_EXECUTED,
    Cmd,
    ProtocolError,
    Status,
    cmd_name,
    status_name,
)

__all__ = ["Driver", "CommandError", "LinkError", "ProtocolError"]


class CommandError(Exception):
    """The board answered a command with an error status."""

    def __init__(self, cmd, status):
        self.cmd = cmd
        self.status = status
        super().__init__(f"command 0x{cmd:02x} failed: {status_name(status)}")


class LinkError(ProtocolError):
    """A command got no valid reply after its allowed attempts (one line: command, attempts, why)."""


class Driver:
    """Talks to a board (or the simulated board) through ``transport``.

    Parameters
    ----------
    transport : object
        See :mod:`firmware.transport`.
    timeout : float
        Seconds (board time for the simulated board) to wait for a reply.
    attempts : int
        Sends of one command at most (see the module docstring for which are resent).

    Attributes
    ----------
    resends : int
        Frames sent again after a link error, since the driver was made.
    """

    def __init__(self, transport, *, timeout=2.0, attempts=3):
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ValueError(f"attempts must be an integer >= 1, not {attempts!r}")
        self.transport = transport
        self.timeout = timeout
        self.attempts = attempts
        self.quiet = getattr(transport, "quiet", 0.05)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.resends = 0
        self._frames = None          # the board's STATUS.frames as of now, when known

    def send_raw(self, data):
        """Put raw bytes on the line (for tests of bad frames)."""
        self.transport.write(data)
        self.bytes_sent += len(data)

    def receive(self):
        """Wait for one reply frame; return ``(cmd, status, payload)``."""
        parser = protocol.ReplyParser()
        while not parser.frames:
            chunk = self.transport.read(parser.needed(), self.timeout)
            if not chunk:
                raise TimeoutError(f"no reply from {self.transport.name} within {self.timeout} s")
            self.bytes_received += len(chunk)
            parser.feed(chunk)
        return parser.frames[0]

    def command(self, cmd, payload=b"", *, check=True):
        """Send a command and return its reply payload (``check``: raise on an error status).

        Raises
        ------
        CommandError
            The board answered with an error status other than a link error (``check`` only).
        LinkError
            No valid answer (see the module docstring for what is resent and how often).
        """
        frame = protocol.encode_command(cmd, payload)
        name = cmd_name(cmd)
        # A frame above MAX_PAYLOAD is refused ERR_OVERSIZE by construction, not by the link.
        resend_on = NOT_EXECUTED if len(payload) <= MAX_PAYLOAD else NOT_EXECUTED - {Status.ERR_OVERSIZE}
        if cmd not in IDEMPOTENT and self._frames is None:
            self.status()            # the executed-frame count, to tell later whether a lost reply ran
        failures, answer = [], None
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self.resends += 1
                answer = self._quiet_line(cmd)
                if answer is not None:
                    break
            before = self._frames
            self.send_raw(frame)
            answer = self._answer(cmd)
            if answer is None:
                failures.append(f"no valid reply within {self.timeout} s")
                if cmd in IDEMPOTENT:
                    self._frames = None  # it may have run: the count is unknown until the next STATUS
                    continue
                answer = self._lost_reply(cmd, before, attempt)
                if answer is None:
                    failures[-1] += " (STATUS: not executed)"
                    continue
            if answer[0] in resend_on:
                failures.append(f"board answered {status_name(answer[0])}")
                answer = None
                continue
            break
        if answer is None:
            raise LinkError(f"{name} failed after {self.attempts} attempts on {self.transport.name}: "
                            f"{'; '.join(failures)}")
        status, reply = answer
        self._count(cmd, status, reply)
        if check and status != Status.OK:
            raise CommandError(cmd, status)
        return reply if check else (status, reply)

    def _count(self, cmd, status, reply):
        """Follow the board's count of frames executed OK (``STATUS.frames``) from the answers."""
        if status != Status.OK:
            return
        if cmd == Cmd.STATUS:
            self._frames = (protocol.unpack_status(reply)["frames"] + 1) & 0xFFFF  # + this STATUS
        elif cmd in (Cmd.RESET, Cmd.CLEAR_ERRORS):
            self._frames = None      # the board clears its counters
        elif self._frames is not None:
            self._frames = (self._frames + 1) & 0xFFFF

    def _lost_reply(self, cmd, before, attempt):
        """A non-idempotent command got no reply: its late answer, None if it surely did not run.

        It did not run if the board's executed-frame count is unchanged and no block error or
        watchdog flag went up (a command that ran and failed raises one of them); otherwise the
        outcome (or its reply) is lost and :class:`LinkError` says so.
        """
        late = self._quiet_line(cmd)
        if late is not None:
            return late
        name = cmd_name(cmd)
        st = self.status()
        ran = (st["frames"] - before) & 0xFFFF
        failed = st["flags"] & ((1 << FLAG_BITS["block"]) | (1 << FLAG_BITS["timeout"]))
        if ran == 0 and not failed:
            return None
        what = "ran (the board counts it)" if ran else "may have run (a block or watchdog flag is set)"
        raise LinkError(f"{name} got no valid reply from {self.transport.name} within {self.timeout} s "
                        f"(attempt {attempt}) and {what}; not resent, since {name} is not idempotent "
                        f"(reset and reload the board's state)")

    def _answer(self, cmd):
        """``(status, payload)`` of the first valid reply for ``cmd``, or None after ``timeout``."""
        parser = protocol.ReplyParser(strict=False)
        while True:
            for rcmd, status, reply in parser.frames:
                if rcmd == cmd:
                    return status, reply
            parser.frames.clear()    # replies to line noise
            chunk = self.transport.read(parser.needed(), self.timeout)
            self.bytes_received += len(chunk)
            if chunk:
                parser.feed(chunk)
                continue
            if not parser.pending():
                return None
            parser.give_up()         # a stray sync byte may hold a shorter reply behind it

    def _quiet_line(self, cmd):
        """Read until the line is silent for ``quiet``; return a valid answer for ``cmd`` seen meanwhile."""
        parser = protocol.ReplyParser(strict=False)
        while True:
            chunk = self.transport.read(1 << 12, self.quiet)
            self.bytes_received += len(chunk)
            if not chunk:
                break
            parser.feed(chunk)
        while parser.pending():
            parser.give_up()
        for rcmd, status, reply in parser.frames:
            if rcmd == cmd and status not in NOT_EXECUTED:
                return status, reply
        return None

    def bulk(self, cmd, data, *, chunk=MAX_PAYLOAD):
        """Send ``data`` as consecutive ``cmd`` frames of at most ``chunk`` bytes; return the replies."""
        data = bytes(data)
        return [self.command(cmd, data[i:i + chunk]) for i in range(0, len(data), chunk)] or \
            [self.command(cmd, b"")]

    # System group.
    def ping(self, payload=b""):
        return self.command(Cmd.PING, payload)

    def status(self):
        return protocol.unpack_status(self.command(Cmd.STATUS))

    def reset(self):
        self.command(Cmd.RESET)

    def clear_errors(self):
        self.command(Cmd.CLEAR_ERRORS)

    def sink(self, data):
        reply = self.command(Cmd.SINK, data)
        return int.from_bytes(reply[:2], "little"), int.from_bytes(reply[2:4], "little")

    def close(self):
        self.transport.close()
