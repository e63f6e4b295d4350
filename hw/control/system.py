from amaranth.hdl import Module, Signal
from amaranth.lib.wiring import In, Out

from ..params import check_int
from .handler import Handler, finish_command
from .protocol import PROTOCOL_VERSION, STATUS_FIELDS, Cmd, Status

__all__ = ["SystemHandler"]


class SystemHandler(Handler):
    """Command group 0: ``PING``, ``STATUS``, ``RESET``, ``CLEAR_ERRORS``, ``SINK``.

    * ``PING`` passes its payload through to the reply, byte for byte (one byte per cycle).
    * ``STATUS`` replies with the record :data:`hw.control.protocol.STATUS_FIELDS`, built from
      the inputs below and the constant parameters.
    * ``RESET`` pulses ``o_reset_blocks`` (the core resets every block handler) and ``o_clear``.
    * ``CLEAR_ERRORS`` pulses ``o_clear`` only.
    * ``STATUS``, ``RESET`` and ``CLEAR_ERRORS`` take no payload: with a non-empty one they answer
      ``ERR_LENGTH`` and do nothing (the payload is discarded by the controller).
    * ``SINK`` takes the payload and replies with its length and the 16-bit sum of its bytes: a
      bulk-load path with no block behind it, for throughput measurements and link tests.

    Parameters
    ----------
    groups_mask : int
        Bit ``g`` set for each command group on the board (reported in ``STATUS``).
    clk_hz : int
        System clock frequency (reported in kHz).
    divisor : int
        UART clock cycles per bit (reported).
    max_payload : int
        Reported largest command payload.
    rx_fifo : int
        Reported bytes of the receive FIFO (the host's window for sequenced frames; 0: none).

    Members
    -------
    bus : Out(HandlerSignature())
        The controller side connects here.
    i_flags, i_block_flags : In(8)
    i_frames, i_errors : In(16)
    i_seq : In(8)
        Live values for ``STATUS``.
    o_reset_blocks, o_clear : Out(1)
        One-cycle pulses.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    i_flags: In(8)
    i_block_flags: In(8)
    i_frames: In(16)
    i_errors: In(16)
    i_seq: In(8)
    o_reset_blocks: Out(1)
    o_clear: Out(1)

    def __init__(self, *, groups_mask, clk_hz, divisor, max_payload, rx_fifo=0):
        self._groups_mask = check_int("groups_mask", groups_mask, 0, 255)
        self._clk_khz = check_int("clk_hz", clk_hz, 1000, 1 << 31) // 1000
        self._divisor = check_int("divisor", divisor, 1, 0xFFFF)
        self._max_payload = check_int("max_payload", max_payload, 1, 0xFFFF)
        self._rx_fifo = check_int("rx_fifo", rx_fifo, 0, 0xFFFF)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        values = {
            "version": PROTOCOL_VERSION,
            "groups": self._groups_mask,
            "max_payload": self._max_payload,
            "clk_khz": self._clk_khz,
            "divisor": self._divisor,
            "flags": self.i_flags,
            "block_flags": self.i_block_flags,
            "frames": self.i_frames,
            "errors": self.i_errors,
            "rx_fifo": self._rx_fifo,
            "seq": self.i_seq,
        }
        status_bytes = []
        for name, size in STATUS_FIELDS:
            value = values[name]
            for i in range(size):
                if isinstance(value, int):
                    status_bytes.append((value >> (8 * i)) & 0xFF)
                else:
                    status_bytes.append(value[8 * i:8 * i + 8])

        count = Signal(16)
        total = Signal(16)  # SINK: byte sum
        index = Signal(range(len(status_bytes) + 1))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(bus.start):
                    m.d.sync += [count.eq(0), total.eq(0), index.eq(0)]
                    with m.Switch(bus.cmd):
                        with m.Case(Cmd.PING):
                            m.next = "PING"
                        # Commands without a payload refuse one (and then do nothing).
                        with m.Case(Cmd.STATUS, Cmd.RESET, Cmd.CLEAR_ERRORS):
                            with m.If(bus.length != 0):
                                m.next = "LENGTH"
                            with m.Elif(bus.cmd == Cmd.STATUS):
                                m.next = "STATUS"
                            with m.Elif(bus.cmd == Cmd.RESET):
                                m.d.comb += [self.o_reset_blocks.eq(1), self.o_clear.eq(1)]
                                m.next = "OK"
                            with m.Else():
                                m.d.comb += self.o_clear.eq(1)
                                m.next = "OK"
                        with m.Case(Cmd.SINK):
                            m.next = "SINK"
                        with m.Default():
                            m.next = "UNKNOWN"
            with m.State("PING"):
                with m.If(count == bus.length):
                    m.next = "OK"
                with m.Else():
                    m.d.comb += [
                        bus.o_data.payload.eq(bus.i_data.payload),
                        bus.o_data.valid.eq(bus.i_data.valid),
                        bus.i_data.ready.eq(bus.o_data.ready),
                    ]
                    with m.If(bus.i_data.valid & bus.o_data.ready):
                        m.d.sync += count.eq(count + 1)
            with m.State("STATUS"):
                with m.If(index == len(status_bytes)):
                    m.next = "OK"
                with m.Else():
                    m.d.comb += bus.o_data.valid.eq(1)
                    with m.Switch(index):
                        for i, b in enumerate(status_bytes):
                            with m.Case(i):
                                m.d.comb += bus.o_data.payload.eq(b)
                    with m.If(bus.o_data.ready):
                        m.d.sync += index.eq(index + 1)
            with m.State("SINK"):
                with m.If(count == bus.length):
                    m.next = "SINK_REPLY"
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(bus.i_data.valid):
                        m.d.sync += [count.eq(count + 1), total.eq(total + bus.i_data.payload)]
            with m.State("SINK_REPLY"):
                reply = [count[:8], count[8:], total[:8], total[8:]]
                with m.If(index == len(reply)):
                    m.next = "OK"
                with m.Else():
                    m.d.comb += bus.o_data.valid.eq(1)
                    with m.Switch(index):
                        for i, b in enumerate(reply):
                            with m.Case(i):
                                m.d.comb += bus.o_data.payload.eq(b)
                    with m.If(bus.o_data.ready):
                        m.d.sync += index.eq(index + 1)
            with m.State("OK"):
                finish_command(m, bus, Status.OK)
            with m.State("LENGTH"):
                finish_command(m, bus, Status.ERR_LENGTH)
            with m.State("UNKNOWN"):
                finish_command(m, bus, Status.ERR_UNKNOWN_CMD)
        return m
