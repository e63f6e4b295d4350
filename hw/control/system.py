from amaranth.hdl import Module, Mux, Signal
from amaranth.lib.wiring import In, Out

from ..lib.logic import index_mux
from ..params import check_int
from .handler import Handler
from .onehot import OneHotFSM
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
        Reported largest command payload; ``bus.length`` is at most this (the controller refuses
        longer payloads), so the handler's byte counters are as wide as it needs.
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

        # The payload is counted down: ``left`` is loaded with the length at the start and counts
        # the bytes taken. ``more`` (bytes remain) is registered, so PING/SINK decide on it without
        # a compare in the path from the payload stream's valid to their registers; its next value
        # is chosen, not compared, behind a byte taken: at1 / at2 are left == 1 / left == 2 of the
        # cycle before (registered in every cycle, against constants) and `took` says whether that
        # cycle took a byte, so left == 1 now is Mux(took, at2, at1). left is loaded with the
        # start, so both are fresh in PING and SINK.
        nbits = self._max_payload.bit_length()
        length = bus.length[:nbits]      # at most max_payload
        left = Signal(nbits)
        more = Signal()
        has_payload = Signal()           # the length is not 0 (registered in every cycle)
        at1, at2, took, take = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [at1.eq(left == 1), at2.eq(left == 2), took.eq(take), has_payload.eq(length != 0)]
        last_now = Mux(took, at2, at1)
        total = Signal(16)  # SINK: byte sum
        index = Signal(range(len(status_bytes) + 1))

        # The pulses are registered (two cycles after the start): they fan out to every block's
        # reset and the controller's flags, and stay out of the command's decode path.
        m.d.sync += [self.o_reset_blocks.eq(0), self.o_clear.eq(0)]
        # One flip-flop per state: the PING/SINK handshakes decode no state bits.
        fsm = OneHotFSM(m, ("IDLE", "DISPATCH", "PING", "STATUS", "SINK", "SINK_REPLY", "OK", "LENGTH",
                            "UNKNOWN"), prefix="sys")
        # The command's decode, registered at the start (one flag per command).
        is_cmd = {c: Signal(name=f"is_{c.lower()}")
                  for c in ("PING", "STATUS", "RESET", "CLEAR_ERRORS", "SINK")}
        with fsm.state("IDLE"):
            # Only the command's own fields and the count are registered with the start (a wide
            # fan-out); the rest starts in DISPATCH.
            with m.If(bus.start):
                m.d.sync += left.eq(length)
                m.d.sync += [flag.eq(bus.cmd == getattr(Cmd, c)) for c, flag in is_cmd.items()]
                fsm.goto("DISPATCH")
        with fsm.state("DISPATCH"):
            # The cycle after the start: the command's flags and the count are registered.
            m.d.sync += more.eq(has_payload)
            with m.If(is_cmd["PING"]):
                fsm.goto("PING")
            # Commands without a payload refuse one (and then do nothing).
            with m.Elif(is_cmd["STATUS"] | is_cmd["RESET"] | is_cmd["CLEAR_ERRORS"]):
                with m.If(has_payload):
                    fsm.goto("LENGTH")
                with m.Elif(is_cmd["STATUS"]):
                    fsm.goto("STATUS")
                with m.Elif(is_cmd["RESET"]):
                    m.d.sync += [self.o_reset_blocks.eq(1), self.o_clear.eq(1)]
                    fsm.goto("OK")
                with m.Else():
                    m.d.sync += self.o_clear.eq(1)
                    fsm.goto("OK")
            with m.Elif(is_cmd["SINK"]):
                fsm.goto("SINK")
            with m.Else():
                fsm.goto("UNKNOWN")
        with fsm.state("PING"):
            with m.If(~more):
                fsm.goto("OK")
            with m.Else():
                m.d.comb += [
                    bus.o_data.payload.eq(bus.i_data.payload),
                    bus.o_data.valid.eq(bus.i_data.valid),
                    bus.i_data.ready.eq(bus.o_data.ready),
                ]
                m.d.comb += take.eq(bus.i_data.valid & bus.o_data.ready)
        # STATUS and SINK_REPLY send the bytes of a table, one per index: the byte at index is
        # selected into registers in two steps, each a cycle behind the one before (a quad of
        # four bytes by index[:2], then the quad by index[2:]), so neither multiplexer is in the
        # handshake's path nor more than a few LUT levels deep; the byte is offered once both
        # steps have followed index (table_fresh). SINK keeps them stale (its sum changes), so
        # SINK_REPLY waits for both steps too. SINK's count is the length (it takes every byte).
        sink_reply = [length[:8], length[8:], total[:8], total[8:]]
        table = [Mux(is_cmd["SINK"], sink_reply[i], b) if i < len(sink_reply) else b
                 for i, b in enumerate(status_bytes)]
        # (no reset: they are loaded in every cycle, and their flip-flops' reset pins are then free
        # for the constant bytes of the table)
        quads = [Signal(8, name=f"table_quad{j}", reset_less=True) for j in range(-(-len(table) // 4))]
        table_byte = Signal(8, reset_less=True)
        quad_fresh, table_fresh = Signal(), Signal()
        table_end = Signal()    # index == the table's length, registered with index's step
        m.d.sync += [quad_fresh.eq(1), table_fresh.eq(quad_fresh)]
        with m.If(fsm.bit("DISPATCH") | fsm.bit("SINK")):
            # index starts at 0 in DISPATCH; its byte follows two cycles later
            m.d.sync += [quad_fresh.eq(0), table_fresh.eq(0), table_end.eq(0)]
        # Binary multiplexer trees (index_mux): an index past the table selects some byte of it,
        # which is never sent, so the high indices need no decode (the last quad may be short).
        for j, quad in enumerate(quads):
            m.d.sync += quad.eq(index_mux(index[:2], table[4 * j:4 * j + 4]))
        m.d.sync += table_byte.eq(index_mux(index[2:], quads))

        def send_table(n):
            with m.If(table_end):
                fsm.goto("OK")
            with m.Else():
                m.d.comb += [bus.o_data.valid.eq(table_fresh), bus.o_data.payload.eq(table_byte)]
                with m.If(bus.o_data.ready & table_fresh):
                    m.d.sync += [index.eq(index + 1), quad_fresh.eq(0), table_fresh.eq(0),
                                 table_end.eq(index == n - 1)]

        with fsm.state("STATUS"):
            send_table(len(status_bytes))
        with fsm.state("SINK"):
            with m.If(~more):
                fsm.goto("SINK_REPLY")
            with m.Else():
                m.d.comb += [bus.i_data.ready.eq(1), take.eq(bus.i_data.valid)]
                with m.If(take):
                    m.d.sync += total.eq(total + bus.i_data.payload)
        with fsm.state("SINK_REPLY"):
            send_table(len(sink_reply))
        with fsm.state("OK"):
            m.d.comb += [bus.done.eq(1), bus.status.eq(Status.OK)]
            fsm.goto("IDLE")
        with fsm.state("LENGTH"):
            m.d.comb += [bus.done.eq(1), bus.status.eq(Status.ERR_LENGTH)]
            fsm.goto("IDLE")
        with fsm.state("UNKNOWN"):
            m.d.comb += [bus.done.eq(1), bus.status.eq(Status.ERR_UNKNOWN_CMD)]
            fsm.goto("IDLE")
        # PING and SINK count the bytes they take in one place (not a copy of the counter's
        # logic per state; `take` is high in those states only).
        with m.If(take):
            m.d.sync += [left.eq(left - 1), more.eq(~last_now)]
        # The sum and the table's index start at 0 in DISPATCH: after the states' statements, so
        # that they are synchronous resets of their flip-flops (no multiplexer before the sum).
        with m.If(fsm.bit("DISPATCH")):
            m.d.sync += [total.eq(0), index.eq(0)]
        return m
