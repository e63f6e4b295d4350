"""The host driver: commands and replies over a transport, with the shared protocol.

Framing, CRC and codes come from :mod:`hw.control.protocol` (the same module the gateware is built
from). :class:`Driver` sends one command, waits for its reply (stop-and-wait, as the protocol
requires) and returns the payload or raises :class:`CommandError`.
"""

from hw.control import protocol
from hw.control.protocol import MAX_PAYLOAD, Cmd, ProtocolError, Status, status_name

__all__ = ["Driver", "CommandError", "ProtocolError"]


class CommandError(Exception):
    """The board answered a command with an error status."""

    def __init__(self, cmd, status):
        self.cmd = cmd
        self.status = status
        super().__init__(f"command 0x{cmd:02x} failed: {status_name(status)}")


class Driver:
    """Talks to a board (or the simulated board) through ``transport``.

    Parameters
    ----------
    transport : object
        See :mod:`firmware.transport`.
    timeout : float
        Seconds (board time for the simulated board) to wait for a reply.
    """

    def __init__(self, transport, *, timeout=2.0):
        self.transport = transport
        self.timeout = timeout
        self.bytes_sent = 0
        self.bytes_received = 0

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
        """Send a command and return its reply payload (``check``: raise on an error status)."""
        self.send_raw(protocol.encode_command(cmd, payload))
        rcmd, status, reply = self.receive()
        if rcmd != cmd:
            raise ProtocolError(f"reply is for command 0x{rcmd:02x}, expected 0x{cmd:02x}")
        if check and status != Status.OK:
            raise CommandError(cmd, status)
        return reply if check else (status, reply)

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
