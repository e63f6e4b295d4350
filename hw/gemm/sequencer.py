"""The GEMM engine's sequencer: commands, activation loads, and the beats read from the buffers
into the MAC array."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mac import spec as mac_spec
from ..mac.array import cmd_layout
from . import spec

__all__ = ["GemmSequencer", "gemm_cmd_layout"]


def gemm_cmd_layout(row_tile_bits, group_bits):
    """The engine's ``i_cmd`` payload layout (:func:`hw.gemm.spec.cmd_layout_fields`)."""
    return data.StructLayout(dict(spec.cmd_layout_fields(row_tile_bits, group_bits)))


class GemmSequencer(wiring.Component):
    """Runs one weight tile per command against the batch of row tiles in the activation buffer.

    Per command (``i_cmd``, :func:`hw.gemm.spec.cmd_layout_fields`): with ``load_acts``, start a
    load of ``row_tiles * groups`` words into the activation buffer and wait for it; wait until the
    weight bank is full; then send ``row_tiles`` array commands (``o_acmd``) and
    ``row_tiles * beats`` beats (``o_act`` / ``o_wgt``, valid together, taken together: the array's
    ``ready`` of both is the same), reading weight beat ``j`` of the bank and activation word
    ``t * groups + j // (4 / lanes)`` of row tile ``t``, whose bytes are shifted so that the beat's
    lanes come first. When the last beat is taken the bank is released; the next command's bank
    may already be full (then its first beat follows after three cycles: the command, the check and
    the read).

    Block-RAM reads have one cycle of latency and go into a queue of ``QUEUE`` beats whose head
    drives ``o_act`` / ``o_wgt``: the block RAMs' outputs reach only flip-flops (the byte select of
    the activation word runs from the queue's head, not from the RAM), and the read decision and
    the read counters' enables come from registers (``room``: the queue has space for the read
    counting the one in flight), never from the array's ``ready``. Three entries keep one beat per
    cycle. A tile's first beat is offered three cycles after its bank is seen full, one more than
    a read straight into the array would take, but the array takes its tile's command in the same
    cycles, so the engine's cycle counts do not change (``sim.gemm.model.SWITCH``).

    Sticky ``o_tile_error`` (cleared by ``i_clear``): the bank's beat count differs from the
    command's, the bank is bad (:class:`~hw.gemm.buffers.WeightTileBuffer`), or the command
    uses activations of a different shape than loaded (or none). The tile runs anyway, so the
    streams keep their order and nothing waits forever.
    """

    #: Beats between the block RAMs and the array: with the read decided from the queue's count and
    #: the read in flight (not from this cycle's ``ready``), two would allow one beat every other cycle.
    QUEUE = 3

    def __init__(self, rows, cols, max_row_tiles, max_groups, count_bits):
        self._rows, self._cols = rows, cols
        self._rt_bits = max(1, (max_row_tiles - 1).bit_length())
        self._g_bits = max(1, (max_groups - 1).bit_length())
        self._act_depth = max_row_tiles * max_groups
        self._wgt_depth = max_groups * spec.GROUP
        act_width = rows * mac_spec.MAX_LANES * mac_spec.ACT_BITS
        super().__init__({
            "i_cmd": In(stream.Signature(gemm_cmd_layout(self._rt_bits, self._g_bits))),
            "o_load": Out(1), "o_row_tiles": Out(range(max_row_tiles + 1)),
            "o_groups": Out(range(max_groups + 1)), "i_loading": In(1),
            "act_rd_en": Out(1), "act_rd_addr": Out(range(self._act_depth)), "i_act_data": In(act_width),
            "i_full": In(1), "i_beats": In(range(self._wgt_depth + 1)), "i_bad": In(1), "o_release": Out(1),
            "wgt_rd_en": Out(1), "wgt_rd_addr": Out(range(self._wgt_depth)),
            "i_wgt_data": In(cols * mac_spec.WORD_BITS),
            "o_acmd": Out(stream.Signature(cmd_layout(count_bits))),
            "o_act": Out(stream.Signature(act_width)),
            "o_wgt": Out(stream.Signature(cols * mac_spec.WORD_BITS)),
            "o_tile_error": Out(1), "i_clear": In(1), "o_idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cmd = Signal.like(self.i_cmd.payload, name="cmd")
        row_tiles = cmd.row_tiles_m1 + 1
        beats = Signal(range(self._wgt_depth + 1))
        shift = Signal(2)               # log2(4 / lanes): activation word of beat j is j >> shift
        loaded = Signal.like(cmd)       # the shape of the activations in the buffer
        have_acts = Signal()
        # The next read: beat j of row tile t, activation word `addr` (= t * groups + j >> shift,
        # counted, not computed: the block-RAM addresses come straight from registers), and the
        # decisions about it kept in registers so that no compare chain drives the enables.
        j = Signal(range(self._wgt_depth))
        t = Signal(self._rt_bits)
        addr = Signal.like(self.act_rd_addr)
        j_last, t_last = Signal(), Signal()     # j is its row tile's last beat; t the last row tile
        done_reading = Signal()
        cmds_left = Signal(self._rt_bits + 1)
        issue = Signal()                # a read of both block RAMs this cycle
        error = self.o_tile_error

        m.d.comb += [
            self.o_row_tiles.eq(row_tiles), self.o_groups.eq(cmd.groups_m1 + 1),
            self.o_acmd.payload.mode.eq(cmd.mode), self.o_acmd.payload.act_unsigned.eq(cmd.act_unsigned),
            self.o_acmd.payload.beats_m1.eq(beats - 1),
            self.act_rd_en.eq(issue), self.wgt_rd_en.eq(issue),
            self.act_rd_addr.eq(addr), self.wgt_rd_addr.eq(j),
        ]
        # Byte offset of the beat's lanes in its activation word: byte j mod 4 (int8), 2 (j mod 2) (int4).
        off = Mux(shift == 2, j[:2], Mux(shift == 1, Cat(0, j[0]), 0))
        room, busy = self._queue(m, issue, off)
        # The activation word changes after its last beat: every beat (int2), every 2nd, every 4th.
        word_done = Mux(shift == 2, j[:2] == 3, Mux(shift == 1, j[0], 1))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.i_cmd.ready.eq(1), self.o_idle.eq(1)]
                with m.If(self.i_cmd.valid):
                    pay = self.i_cmd.payload
                    sh = Mux(pay.mode == mac_spec.MODE_INT8, 2, Mux(pay.mode == mac_spec.MODE_INT4, 1, 0))
                    m.d.sync += [cmd.eq(pay), shift.eq(sh), beats.eq((pay.groups_m1 + 1) << sh)]
                    m.next = "START"
            with m.State("START"):
                m.d.comb += self.o_load.eq(cmd.load_acts)
                with m.If(cmd.load_acts):
                    m.d.sync += [loaded.eq(cmd), have_acts.eq(1)]
                m.next = "LOAD"
            with m.State("LOAD"):
                with m.If(~self.i_loading):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.i_full):
                    shape_ok = have_acts & (loaded.groups_m1 == cmd.groups_m1) & \
                        (loaded.row_tiles_m1 == cmd.row_tiles_m1)
                    with m.If((self.i_beats != beats) | self.i_bad | ~shape_ok):
                        m.d.sync += error.eq(1)
                    m.d.sync += [j.eq(0), t.eq(0), addr.eq(0), j_last.eq(beats == 1),
                                 t_last.eq(cmd.row_tiles_m1 == 0), done_reading.eq(0),
                                 cmds_left.eq(row_tiles)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.o_acmd.valid.eq(cmds_left != 0)
                with m.If(self.o_acmd.valid & self.o_acmd.ready):
                    m.d.sync += cmds_left.eq(cmds_left - 1)
                m.d.comb += issue.eq(room & ~done_reading)
                with m.If(issue):
                    with m.If(word_done):
                        m.d.sync += addr.eq(addr + 1)
                    with m.If(j_last):
                        m.d.sync += [j.eq(0), j_last.eq(beats == 1), t.eq(t + 1),
                                     t_last.eq(t + 1 == cmd.row_tiles_m1), done_reading.eq(t_last)]
                    with m.Else():
                        m.d.sync += [j.eq(j + 1), j_last.eq(j + 2 == beats)]
                with m.If(done_reading & ~busy & (cmds_left == 0)):
                    m.d.comb += self.o_release.eq(1)
                    m.next = "IDLE"
        with m.If(self.i_clear):
            m.d.sync += error.eq(0)
        return m

    def _queue(self, m, issue, off):
        """The beat queue between the block RAMs and the array (``QUEUE`` entries of an activation
        word, its byte offset and a weight beat). A read issued in one cycle is written into entry
        ``wp`` in the next straight from the block RAMs' outputs; the head (entry ``rp``) goes to
        ``o_act`` / ``o_wgt``, its lanes shifted to the front. Returns ``(room, busy)``: ``room``, a
        register, a read may be issued; ``busy``, a read is in flight or a beat queued."""
        D = self.QUEUE
        entries = [(Signal(len(self.i_act_data), name=f"q_act{i}", reset_less=True),
                    Signal(len(self.i_wgt_data), name=f"q_wgt{i}", reset_less=True),
                    Signal(2, name=f"q_off{i}", reset_less=True)) for i in range(D)]
        in_flight, in_off = Signal(), Signal(2)
        wp, rp = Signal(range(D)), Signal(range(D))
        count = Signal(range(D + 1))
        nonempty = Signal()
        room = Signal(init=1)           # count + in_flight < D
        pop = Signal()
        m.d.sync += [in_flight.eq(issue), in_off.eq(off)]
        with m.If(in_flight):
            for i, (q_act, q_wgt, q_off) in enumerate(entries):
                with m.If(wp == i):
                    m.d.sync += [q_act.eq(self.i_act_data), q_wgt.eq(self.i_wgt_data), q_off.eq(in_off)]
            m.d.sync += wp.eq(Mux(wp == D - 1, 0, wp + 1))
        m.d.comb += pop.eq(nonempty & self.o_act.ready)
        with m.If(pop):
            m.d.sync += rp.eq(Mux(rp == D - 1, 0, rp + 1))
        count_n = count + in_flight - pop
        m.d.sync += [count.eq(count_n), nonempty.eq(count_n != 0), room.eq(count_n + issue < D)]

        head_act = Array(e[0] for e in entries)[rp]
        head_off = Array(e[2] for e in entries)[rp]
        act_bytes = mac_spec.MAX_LANES * mac_spec.ACT_BITS
        for r in range(self._rows):
            word = head_act[r * act_bytes:(r + 1) * act_bytes]
            m.d.comb += self.o_act.payload[r * act_bytes:(r + 1) * act_bytes].eq(word >> (head_off * 8))
        m.d.comb += [self.o_wgt.payload.eq(Array(e[1] for e in entries)[rp]),
                     self.o_act.valid.eq(nonempty), self.o_wgt.valid.eq(nonempty)]
        return room, in_flight | nonempty
