"""The host driver: commands and replies over a transport, with the shared protocol.

Framing, CRC and codes come from :mod:`hw.control.protocol` (the same module the gateware is built
from). :meth:`Driver.command` sends one plain frame, waits for its reply (stop-and-wait) and
returns the payload or raises :class:`CommandError`; :meth:`Driver.pipeline` (and
:meth:`Driver.bulk`) keeps several sequenced frames in flight (see "Windowed" below).

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

Windowed (:meth:`Driver.pipeline`): sequenced frames go out, whole, while the bytes of the frames
after the oldest unanswered one stay within the board's receive FIFO (``STATUS.rx_fifo``; the
oldest one is in the controller's buffer or on its way there), and the first frame of a call
goes alone until the board accepted its ``seq`` (a stale ``seq`` is never pipelined); replies come
back in order, each echoing its frame's ``seq``. The board runs a sequenced frame only with the
``seq`` it expects, so a frame lost or refused in the window stops every later one (they are
answered ``ERR_SEQUENCE``) and nothing runs twice or out of order. On the first reply that is not
the expected answer to the oldest frame in flight (a link error, ``ERR_SEQUENCE``, a skipped or
missing reply) the driver stops sending, collects the replies still coming, waits for a quiet
line and asks ``STATUS`` for the board's expected ``seq``: the frames before it ran, the others
did not. Those that did not run are resent in order (a frame that failed ``attempts`` times ends
in :class:`LinkError`); one that ran with its reply lost is resent only if it is idempotent and
the last one that ran (re-running it after a later frame would reorder them), else
:class:`LinkError` says it ran and its reply is lost. A board of protocol version 1 or without a
FIFO gets the frames stop-and-wait.

A command whose group the board does not carry is answered ``ERR_UNKNOWN_CMD`` at once;
:class:`CommandError` then says which groups the bitstream has (from ``STATUS.groups``).
"""

import collections

from hw.control import protocol
from hw.control.protocol import (
    FLAG_BITS,
    GROUP_NAMES,
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
    """The board answered a command with an error status (``groups``: the board's group mask, if
    known, to name a group the bitstream lacks)."""

    def __init__(self, cmd, status, groups=None):
        self.cmd = cmd
        self.status = status
        group = cmd >> 4
        if status == Status.ERR_UNKNOWN_CMD and groups is not None and not groups >> group & 1:
            carried = ", ".join(name for g, name in GROUP_NAMES.items() if groups >> g & 1)
            what = GROUP_NAMES.get(group, f"0x{group:x}")
            message = (f"{cmd_name(cmd)} (0x{cmd:02x}): command group {what} is not in this bitstream "
                       f"(it carries: {carried})")
        else:
            message = f"command 0x{cmd:02x} failed: {status_name(status)}"
        super().__init__(message)


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
        self._groups = None          # the board's STATUS.groups (a bitstream constant), when known
        self._window = None          # the board's STATUS.rx_fifo (0: stop-and-wait only), when known
        self._seq = None             # the seq the board expects next, when known

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
            raise self._error(cmd, status)
        return reply if check else (status, reply)

    def _error(self, cmd, status):
        if status == Status.ERR_UNKNOWN_CMD and self._groups is None and cmd >> 4:
            self.status()            # which groups the bitstream carries, for the message
        return CommandError(cmd, status, self._groups)

    def _count(self, cmd, status, reply):
        """Follow the board's count of frames executed OK (``STATUS.frames``) from the answers."""
        if status != Status.OK:
            return
        if cmd == Cmd.STATUS:
            st = protocol.unpack_status(reply)
            self._frames = (st["frames"] + 1) & 0xFFFF  # + this STATUS
            self._groups = st["groups"]
            self._window = st["rx_fifo"] if st["version"] >= 2 else 0
            self._seq = st["seq"]
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

    #: Bytes a sequenced frame adds to its payload.
    FRAME_BYTES = 7

    def window_payload(self):
        """The largest payload whose frame fits the board's receive FIFO whole, so that it can go
        out behind another frame (``MAX_PAYLOAD`` if the board has no FIFO)."""
        if self._window is None:
            self.status()
        if not self._window:
            return MAX_PAYLOAD
        return max(1, min(MAX_PAYLOAD, self._window - self.FRAME_BYTES))

    def bulk(self, cmd, data, *, chunk=None, window=True):
        """Send ``data`` as consecutive ``cmd`` frames of at most ``chunk`` bytes (default: the
        largest that pipelines, :meth:`window_payload`); return the replies (``window=False``:
        stop-and-wait, default chunk ``MAX_PAYLOAD``)."""
        data = bytes(data)
        if chunk is None:
            chunk = self.window_payload() if window else MAX_PAYLOAD
        payloads = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
        if not window:
            return [self.command(cmd, p) for p in payloads]
        return self.pipeline([(cmd, p) for p in payloads])

    def pipeline(self, commands, *, check=True):
        """Run ``(cmd, payload)`` pairs in order, several sequenced frames in flight; return the
        reply payloads (``check=False``: ``(status, payload)`` pairs) in the same order.

        Raises
        ------
        CommandError
            (``check`` only) for the first command answered with an error status, once the frames
            in flight behind it are answered (they ran: the board does not know of the error).
        LinkError
            See the module docstring.
        ValueError
            If a payload is longer than ``MAX_PAYLOAD``.
        """
        commands = [(int(cmd), bytes(payload)) for cmd, payload in commands]
        for cmd, payload in commands:
            if len(payload) > MAX_PAYLOAD:
                raise ValueError(f"payload of {cmd_name(cmd)} must be at most {MAX_PAYLOAD} bytes, "
                                 f"not {len(payload)}")
        if self._window is None or self._seq is None:
            self.status()
        if not self._window:
            return [self.command(cmd, payload, check=check) for cmd, payload in commands]
        answers = _Window(self, commands).run()
        seq = self._seq
        for (cmd, _), (status, reply) in zip(commands, answers):
            self._count(cmd, status, reply)
        self._seq = seq              # a STATUS in the window reported the seq of its own time
        if check:
            for (cmd, _), (status, _) in zip(commands, answers):
                if status != Status.OK:
                    raise self._error(cmd, status)
            return [reply for _, reply in answers]
        return answers

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


class _Window:
    """One :meth:`Driver.pipeline` call: the frames in flight, the replies, the recovery."""

    def __init__(self, driver, commands):
        self.drv = driver
        self.commands = commands
        self.answers = [None] * len(commands)
        self.todo = collections.deque(range(len(commands)))
        self.inflight = collections.deque()     # (index, seq, frame bytes), oldest first
        self.failures = [[] for _ in commands]
        self.parser = protocol.ReplyParser(strict=False)
        self.stop = False                        # a command failed: send nothing more
        self.refused = set()                     # frames in flight answered with a refusal
        # The driver's seq is confirmed once the board accepted a frame with it (or STATUS gave it):
        # until then one frame goes alone, since a stale seq that happened to match a later frame
        # would run that frame before the refused ones.
        self.confirmed = False

    def run(self):
        drv = self.drv
        while self.todo or self.inflight:
            self._send()
            reply = self._next_reply()
            index, seq, _ = self.inflight[0]
            cmd = self.commands[index][0]
            if reply is not None and reply.seq == seq and reply[0] == cmd and reply[1] not in NOT_EXECUTED:
                self.inflight.popleft()
                self.answers[index] = (reply[1], reply[2])
                self.confirmed = True
                if reply[1] != Status.OK:
                    self.stop = True             # answer the frames in flight, send no more
                    self.todo.clear()
                continue
            if reply is not None:
                self._collect(reply)             # a later frame's answer stays valid; a refusal noted
                why = (f"board answered {status_name(reply[1])}" if reply.seq == seq and reply[0] == cmd
                       else "its reply was skipped (a later frame's came first)")
            else:
                why = f"no valid reply within {drv.timeout} s"
            self._recover(why)
        # After a failed command, frames behind it that did not run read as refused ERR_SEQUENCE.
        return [a if a is not None else (Status.ERR_SEQUENCE, b"") for a in self.answers]

    def _send(self):
        drv = self.drv
        while self.todo and not self.stop:
            index = self.todo[0]
            cmd, payload = self.commands[index]
            frame = protocol.encode_command(cmd, payload, seq=drv._seq)
            behind = sum(len(f) for _, _, f in list(self.inflight)[1:])
            if self.inflight and (behind + len(frame) > drv._window or not self.confirmed):
                return
            self.todo.popleft()
            drv.send_raw(frame)
            self.inflight.append((index, drv._seq, frame))
            drv._seq = (drv._seq + 1) & 0xFF

    def _next_reply(self):
        """The next sequenced reply from the board, or None after ``timeout`` without one."""
        drv = self.drv
        while True:
            while self.parser.frames:
                reply = self.parser.frames.pop(0)
                if reply.seq is not None:        # a plain reply answers line noise
                    return reply
            chunk = drv.transport.read(self.parser.needed(), drv.timeout)
            drv.bytes_received += len(chunk)
            if chunk:
                self.parser.feed(chunk)
                continue
            if not self.parser.pending():
                return None
            self.parser.give_up()

    def _collect(self, reply):
        """Keep ``reply`` if it answers a frame in flight (refusals in :attr:`refused`)."""
        for index, seq, _ in self.inflight:
            if reply.seq == seq and reply[0] == self.commands[index][0]:
                if reply[1] in NOT_EXECUTED:
                    self.refused.add(index)
                else:
                    self.answers[index] = (reply[1], reply[2])

    def _recover(self, why):
        """The oldest frame in flight got no valid answer: find out from the board what ran, then
        queue the frames that did not run (in order) and those that may run again."""
        drv = self.drv
        first = self.inflight[0][0]
        self.failures[first].append(why)
        # Replies still on their way, then a quiet line: the board is hunting for a sync byte.
        while (reply := self._next_reply()) is not None:
            self._collect(reply)
        while True:
            chunk = drv.transport.read(1 << 12, drv.quiet)
            drv.bytes_received += len(chunk)
            if not chunk:
                break
            self.parser.feed(chunk)
        while self.parser.pending():
            self.parser.give_up()
        for reply in self.parser.frames:
            if reply.seq is not None:
                self._collect(reply)
        self.parser.frames.clear()
        expected = drv.status()["seq"]
        base = self.inflight[0][1]
        ran = (expected - base) & 0xFF
        if not self.confirmed:
            # One frame in flight with a seq the board may not have expected: it ran only if the
            # board answered nothing else and counted exactly it.
            ran = int(ran == 1 and first not in self.refused)
        self.confirmed = True
        if ran > len(self.inflight) or any(self.inflight[k][0] in self.refused for k in range(ran)):
            raise LinkError(f"the board expects seq {expected}, which does not follow from the frames "
                            f"{base}..{(base + len(self.inflight) - 1) & 0xFF} it answered "
                            f"(another host on {drv.transport.name}?)")
        inflight = list(self.inflight)
        self.inflight.clear()
        self.refused.clear()
        if self.stop:
            return                               # a command failed: what did not run stays unrun
        again = []
        for k, (index, _, _) in enumerate(inflight):
            cmd = self.commands[index][0]
            if k >= ran:
                again.append(index)              # did not run
            elif self.answers[index] is None:
                if k == ran - 1 and cmd in IDEMPOTENT:
                    again.append(index)          # ran, reply lost, nothing ran after it
                    continue
                name = cmd_name(cmd)
                reason = f"{name} is not idempotent" if cmd not in IDEMPOTENT else "frames after it ran"
                raise LinkError(f"{name} ran on {drv.transport.name} but its reply was lost ({why}); "
                                f"not resent, since {reason} (reset and reload the board's state)")
        for index in again:
            if len(self.failures[index]) >= drv.attempts:
                raise LinkError(f"{cmd_name(self.commands[index][0])} failed after {drv.attempts} attempts "
                                f"on {drv.transport.name}: {'; '.join(self.failures[index])}")
        drv.resends += len(again)
        self.todo.extendleft(reversed(again))
