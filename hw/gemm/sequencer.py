"""The GEMM engine's sequencer: commands, activation loads, and the beats read from the buffers
into the MAC array."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.logic import ring_next
from ..mac import spec as mac_spec
from ..mac.array import cmd_layout
from ..params import check_bool
from . import spec

__all__ = ["GemmSequencer", "gemm_cmd_layout", "PREFETCH"]

#: Beats the sequencer's prefetch queue holds with the beats read and not yet in it
#: (:class:`GemmSequencer`): enough for one beat per cycle around the loop read -> the buffers'
#: address registers -> RAM data -> register -> queue -> taken -> count -> read.
PREFETCH = 6

#: Cycles from a prefetching sequencer's read address to the buffers' read data (their address
#: registers and the block RAMs' own: ``addr_reg`` of :mod:`hw.gemm.buffers`).
READ_LATENCY = 2

#: Bits of the prefetch queue's word per copy of its slot registers (:class:`GemmSequencer`): each
#: copy drives the LUT-RAM addresses of this many bits of the beat.
SLICE = 64


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
    may already be full (then its first beat follows after two cycles: the command and the check).

    Without ``prefetch`` (default): one output register, the RAMs' own. Block-RAM reads have one
    cycle of latency: the read is issued when the output register is empty or its beat is taken,
    so the array can take a beat every cycle.

    With ``prefetch`` (the ULX3S build), reads and the array are decoupled by a prefetch queue of
    :data:`PREFETCH` beats: a beat is read (``act_rd_addr`` / ``wgt_rd_addr`` step) while the
    queue, counting the beats read in the three cycles before, has room (``o_idle`` waits for it to
    be empty), a decision from registers only; the buffers register the address beside their
    block RAMs (``addr_reg``: one copy per RAM column, a cycle of route from the sequencer's
    address registers to them; one address register drove the address pins of sixteen DP16KD,
    12.95 ns on the 8 x 16 board, docs/boards.md), its data is on the RAMs' outputs
    :data:`READ_LATENCY` cycles after the read, and is registered as it is (no logic between:
    an ECP5 DP16KD's output without its own register takes 5.8 ns from the clock, which left no
    time for a route and a LUT behind it,
    the ``gemm`` domain's worst path of the 4 × 8 board at 107 MHz) and enters the queue in the
    cycle after, and ``o_act`` / ``o_wgt`` are the queue's head: LUT RAM read at a registered slot,
    with a registered valid, so the array's take loads no data register (``_queue``). The RAMs read
    every cycle (``act_rd_en`` / ``wgt_rd_en`` are constant): the array's ``ready`` reaches only
    the queue, not the block RAMs' enables or the read counters (on the
    ULX3S, the array's ready and the sequencer's state through a clock-enable LUT to some twenty
    DP16KD were the array domain's worst paths). The queue keeps the array fed every cycle; a
    tile's first beat reaches ``o_act`` four cycles after its read. The bank is released once
    its last beat is read (its beats may still wait in the queue). It is off by default: on the
    UP5K its flip-flops (no LUT RAM there) do not fit beside the registry's ``gemm_engine``.

    Sticky ``o_tile_error`` (cleared by ``i_clear``): the bank's beat count differs from the
    command's, the bank is bad (:class:`~hw.gemm.buffers.WeightTileBuffer`), or the command
    uses activations of a different shape than loaded (or none); it rises two cycles after the
    cycle the sequencer takes the full bank (the check runs on registered terms). The tile runs
    anyway, so the streams keep their order and nothing waits forever.
    """

    def __init__(self, rows, cols, max_row_tiles, max_groups, count_bits, *, prefetch=False):
        check_bool("prefetch", prefetch)
        self._rows, self._cols, self._prefetch = rows, cols, prefetch
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
        groups, row_tiles = cmd.groups_m1 + 1, cmd.row_tiles_m1 + 1
        beats = Signal(range(self._wgt_depth + 1))
        shift = Signal(2)               # log2(4 / lanes): activation word of beat j is j >> shift
        loaded = Signal.like(cmd)       # the shape of the activations in the buffer
        have_acts = Signal()
        # The next beat read: its beat j in the tile, whether that is the tile's last (j_last), and
        # whether its row tile is the command's last (t_last); both flags registers set a beat
        # ahead, so a read steps the counters and ends the tile from registers alone (the compare
        # of j with beats - 1 and of the row tile with the command's, in front of the counters'
        # enables, were sequencer endpoints over 8 ns of the 8 x 16 board aimed at 125 MHz).
        j = Signal.like(beats)
        j_last, t_last = Signal(), Signal()
        tiles_left = Signal(self._rt_bits)  # row tiles after the next beat's
        beats_m2 = Signal.like(beats)   # beats - 2: j_last's next value is j == beats_m2
        beats_is1 = Signal()
        # The activation word of the next beat read, t * groups + (j >> shift), kept as a register
        # that steps with j: the sum and shift in front of the block RAM's address were the array
        # domain's worst path in the 4 x 8 ULX3S board (14.4 ns, 12.7 of them routing to the
        # DP16KD), and a register there leaves only the route. It steps by one after the last beat
        # of each word (j's low `shift` bits all ones); a tile's last beat, beats - 1 =
        # (groups << shift) - 1, is one, so it steps on to the next row tile's first word too.
        act_addr = Signal.like(self.act_rd_addr)
        done_reading = Signal()
        cmds_left = Signal(self._rt_bits + 1)
        error = self.o_tile_error
        check = Signal()                # WAIT took a full bank in the cycle before (see the end)
        m.d.sync += check.eq(0)

        m.d.comb += [
            self.o_row_tiles.eq(row_tiles), self.o_groups.eq(groups),
            self.o_acmd.payload.mode.eq(cmd.mode), self.o_acmd.payload.act_unsigned.eq(cmd.act_unsigned),
            self.o_acmd.payload.beats_m1.eq(beats - 1),
        ]
        # The next beat read is its activation word's last (j's low `shift` bits all ones): a
        # register set a beat ahead, act_addr's increment (from j and shift, in front of the
        # adder: 8.14 ns, the 8 x 16 board aimed at 125 MHz, seed 2).
        word_last = Signal()
        counters = SimpleNamespace(j=j, j_last=j_last, beats_m2=beats_m2, beats_is1=beats_is1,
                                   tiles_left=tiles_left, t_last=t_last, act_addr=act_addr, shift=shift,
                                   word_last=word_last, done_reading=done_reading)

        def step():
            self._step(m, counters)

        byte_off = Mux(shift == 2, j[:2], Mux(shift == 1, Cat(0, j[0]), 0))   # of beat j's lanes
        if self._prefetch:
            issue, inflight, inflight_off, queued, room = self._queue(m, act_addr, j)
            # "RUN and not done_reading" as a register of its own: the read decision and the
            # counters' enables are one LUT of it and room, with no state decode (the state and
            # done_reading through two LUTs to j's and done_reading's enables: 8.06-8.57 ns, the
            # 8 x 16 board aimed at 125 MHz).
            reading = Signal()
            m.d.comb += issue.eq(reading & room)
            with m.If(issue):
                step()
                with m.If(j_last & t_last):
                    m.d.sync += reading.eq(0)
            # The byte offset of the beat read, beside ``issue`` in the pipeline (data: used only
            # with its in-flight flag, so it loads every cycle).
            m.d.sync += inflight_off.eq(byte_off)
        else:
            out_valid = Signal()
            off = Signal(2)             # byte offset of the beat's lanes in the activation word read
            m.d.comb += [self.o_act.valid.eq(out_valid), self.o_wgt.valid.eq(out_valid),
                         self.o_wgt.payload.eq(self.i_wgt_data)]
            self._act_payload(m, self.i_act_data, off)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.i_cmd.ready.eq(1), self.o_idle.eq(queued == 0 if self._prefetch else 1)]
                with m.If(self.i_cmd.valid):
                    pay = self.i_cmd.payload
                    sh = Mux(pay.mode == mac_spec.MODE_INT8, 2, Mux(pay.mode == mac_spec.MODE_INT4, 1, 0))
                    n_beats = (pay.groups_m1 + 1) << sh
                    m.d.sync += [cmd.eq(pay), shift.eq(sh), beats.eq(n_beats)]
                    m.next = "START"
            with m.State("START"):
                # From the beat count's register, a cycle after it (the command's fields, shift and
                # sum, then these differences in one cycle: 8.16-8.46 ns, the 8 x 16 board aimed
                # at 125 MHz, seed 2); read from WAIT on.
                m.d.sync += [beats_m2.eq(beats - 2), beats_is1.eq(beats == 1)]
                m.d.comb += self.o_load.eq(cmd.load_acts)
                with m.If(cmd.load_acts):
                    m.d.sync += [loaded.eq(cmd), have_acts.eq(1)]
                m.next = "LOAD"
            with m.State("LOAD"):
                with m.If(~self.i_loading):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.i_full):
                    m.d.sync += [check.eq(1), j.eq(0), j_last.eq(beats_is1), tiles_left.eq(cmd.row_tiles_m1),
                                 t_last.eq(cmd.row_tiles_m1 == 0), act_addr.eq(0), done_reading.eq(0),
                                 word_last.eq(shift == 0), cmds_left.eq(row_tiles)]
                    if self._prefetch:
                        m.d.sync += reading.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.o_acmd.valid.eq(cmds_left != 0)
                with m.If(self.o_acmd.valid & self.o_acmd.ready):
                    m.d.sync += cmds_left.eq(cmds_left - 1)
                if self._prefetch:
                    # The read itself is above (``reading``; ``room`` counts the queue's beats and
                    # the three read before, a register: not the array's ready, as a beat taken
                    # now frees its place a cycle later).
                    drained = ~inflight.any()
                else:
                    advance = ~out_valid | self.o_act.ready
                    m.d.comb += [self.act_rd_en.eq(advance), self.wgt_rd_en.eq(advance),
                                 self.act_rd_addr.eq(act_addr), self.wgt_rd_addr.eq(j)]
                    with m.If(advance):
                        m.d.sync += [out_valid.eq(~done_reading), off.eq(byte_off)]
                        with m.If(~done_reading):
                            step()
                    drained = ~out_valid
                with m.If(done_reading & drained & (cmds_left == 0)):
                    m.d.comb += self.o_release.eq(1)
                    m.next = "IDLE"
        # The tile's check, a cycle after WAIT takes the full bank: its three terms are registers
        # (``check`` marks the cycle after the take). The compare of the bank's count with the
        # command's and the shapes' compares, ANDed with the state and ``i_full`` into the
        # error's enable, were the `gemm` worst path of the 8 x 16 GEMM board aimed at 125 MHz
        # (9.17 ns, seed 1, 78a7d32). The error is sticky and the tile runs anyway, so a cycle
        # later changes nothing else.
        shape_ok = have_acts & (loaded.groups_m1 == cmd.groups_m1) & (loaded.row_tiles_m1 == cmd.row_tiles_m1)
        beats_ne, bank_bad, shape_bad = Signal(), Signal(), Signal()
        m.d.sync += [beats_ne.eq(self.i_beats != beats), bank_bad.eq(self.i_bad), shape_bad.eq(~shape_ok)]
        with m.If(check & (beats_ne | bank_bad | shape_bad)):
            m.d.sync += error.eq(1)
        with m.If(self.i_clear):
            m.d.sync += error.eq(0)
        return m

    @staticmethod
    def _step(m, c):
        """A beat is read: step the counters and flags ``c`` (a namespace) to the next one."""
        m.d.sync += c.act_addr.eq(c.act_addr + c.word_last)
        with m.If(c.j_last):
            m.d.sync += [c.j.eq(0), c.j_last.eq(c.beats_is1), c.word_last.eq(c.shift == 0),
                         c.tiles_left.eq(c.tiles_left - 1), c.t_last.eq(c.tiles_left == 1)]
            with m.If(c.t_last):
                m.d.sync += c.done_reading.eq(1)
        with m.Else():
            # word_last's next value: j + 1's low `shift` bits all ones.
            m.d.sync += [c.j.eq(c.j + 1), c.j_last.eq(c.j == c.beats_m2),
                         c.word_last.eq(Mux(c.shift == 2, c.j[:2] == 2, Mux(c.shift == 1, ~c.j[0], 1)))]

    def _act_payload(self, m, data, off):
        """``o_act`` from the activation words ``data``: each row's bytes shifted by ``off``."""
        act_bytes = mac_spec.MAX_LANES * mac_spec.ACT_BITS
        for r in range(self._rows):
            word = data[r * act_bytes:(r + 1) * act_bytes]
            m.d.comb += self.o_act.payload[r * act_bytes:(r + 1) * act_bytes].eq(word >> (off * 8))

    def _queue(self, m, act_addr, j):
        """The prefetch queue: the RAMs read ``act_addr`` / ``j`` every cycle; the beat read in a
        cycle with ``issue`` (driven by the caller) is on the RAMs' outputs :data:`READ_LATENCY`
        cycles later, registered there, and written into the queue in the cycle after; ``o_act``
        / ``o_wgt`` are the queue's head, valid from the cycle after. Returns ``(issue, inflight,
        inflight_off, queued, room)``: the beats read ``k + 1`` cycles before (``inflight[k]``; the
        last one's data in the register), the byte offset of a beat read (set by the caller with
        ``issue``), the beats queued, and whether those and the beats in flight leave room for one
        more (a register: computed a cycle ahead from the next count and in-flight flags, so
        the read decision is one LUT; the sum and compare in front of it reached the read
        counters' enables, 10.4 ns in the ULX3S build at 100 MHz, docs/boards.md).

        The queue is :data:`PREFETCH` words of LUT RAM read asynchronously at the head's slot, in
        slices (one per array row, its activation bytes already shifted by the beat's byte offset;
        the weights in slices of at most :data:`SLICE` bits), each with its own copy of the write
        slot, the write enable and the head slot (``keep`` registers). The array's take
        (``o_act.ready``, which follows the array's tile sequencer) advances only the head slot,
        its copies, the count and the valid register: no data register loads with it (a buffered
        FIFO's output register, the whole beat, loaded with the take: 12.67 ns, one route 8.28 ns,
        the `gemm` worst path of the 8 x 16 board at 93aa947)."""
        act_width, wgt_width = len(self.i_act_data), len(self.i_wgt_data)
        act_bytes = mac_spec.MAX_LANES * mac_spec.ACT_BITS
        L = READ_LATENCY
        issue, inflight, inflight_off = Signal(), Signal(L + 1), Signal(2)
        queued = Signal(range(PREFETCH + 1))
        nonempty = Signal()             # queued != 0, a register: the beat's valid
        take = Signal()
        # The RAM words as they are: data (a word counts only with its inflight bit), no reset.
        # ``bram_outreg``: on the ECP5 this register becomes the block RAMs' own output register
        # (boards/bram_outreg.py; 0.96 ns from the clock instead of 5.83 plus the route to it).
        ram_q = Signal(act_width + wgt_width, reset_less=True, attrs={"bram_outreg": 1})
        # The byte offset of each beat in flight, beside it, and with ram_q one copy per array
        # row (``keep``: each drives the shift of its own row's bytes).
        offs = [inflight_off] + [Signal(2, reset_less=True, name=f"off_d{k}") for k in range(1, L)]
        off_q = [Signal(2, reset_less=True, name=f"off_q{r}", attrs={"keep": 1}) for r in range(self._rows)]
        m.d.sync += [ram_q.eq(Cat(self.i_act_data, self.i_wgt_data)), *(o.eq(offs[-1]) for o in off_q),
                     *(b.eq(a) for a, b in zip(offs, offs[1:]))]
        # One slice per array row, its activation bytes shifted by the beat's byte offset before
        # they enter the queue (from registers: ram_q and off_q), so that the head goes to the
        # array with no logic behind the LUT RAM (the shift behind it, one offset selecting every
        # activation bit, fed the array's per-row beat registers: the most of the `gemm`
        # endpoints over 8 ns in the ULX3S builds aimed at 125 MHz, docs/boards.md); the weights
        # in slices of at most SLICE bits.
        parts = [ram_q[r * act_bytes:(r + 1) * act_bytes] >> (off_q[r] * 8) for r in range(self._rows)]
        n = -(-wgt_width // SLICE)
        size = -(-wgt_width // n)
        parts += [ram_q[act_width + lo:act_width + min(lo + size, wgt_width)]
                  for lo in range(0, wgt_width, size)]
        heads = []
        for s, part in enumerate(parts):
            m.submodules[f"prefetch{s}"] = sl = _PrefetchSlice(len(part))
            m.d.comb += [sl.i_data.eq(part), sl.i_write.eq(inflight[L - 1]),
                         sl.i_take.eq(take)]
            heads.append(sl.o_data)
        queued_next = Signal.like(queued)
        m.d.comb += [
            self.act_rd_en.eq(1), self.wgt_rd_en.eq(1),
            self.act_rd_addr.eq(act_addr), self.wgt_rd_addr.eq(j),
            self.o_act.valid.eq(nonempty), self.o_wgt.valid.eq(nonempty),
            take.eq(nonempty & self.o_act.ready),
            self.o_wgt.payload.eq(Cat(*heads[self._rows:])),
            queued_next.eq(queued + inflight[L] - take),
        ]
        m.d.comb += self.o_act.payload.eq(Cat(*heads[:self._rows]))
        room = Signal(init=1)
        m.d.sync += [inflight.eq(Cat(issue, inflight[:L])), queued.eq(queued_next),
                     nonempty.eq(queued_next != 0),
                     room.eq(queued_next + issue + sum(inflight[k] for k in range(L)) < PREFETCH)]
        return issue, inflight, inflight_off, queued, room


class _PrefetchSlice(wiring.Component):
    """One slice of the prefetch queue (:meth:`GemmSequencer._queue`): :data:`PREFETCH` words of
    ``width`` bits of LUT RAM with its own write enable, write slot and head slot registers.

    ``i_write``: ``i_data`` is written in the next cycle (into the write register of the enable;
    the write slot steps with that register, so a word written in a cycle goes into the slot after);
    ``i_take``: the head word
    leaves (the head slot steps). ``o_data``: the word at the head slot (LUT RAM read
    asynchronously). The slots start at 0 and step around the ring; every slice's copies step
    together, each with its own LUT (a shared next-slot LUT fanned out to every copy: the array's
    take -> that LUT -> the head slot copies, 9.38 ns on the ULX3S build at 95 MHz,
    docs/boards.md). A component of its own so that a reset tree gives each slice its own copy of
    the sequencer's clear (one clear register into every slice's slot registers: 9.06 ns, the
    8 x 16 board aimed at 125 MHz, seed 2).
    """

    def __init__(self, width):
        self._width = width
        super().__init__({"i_data": In(width), "i_write": In(1), "i_take": In(1),
                          "o_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._width, depth=PREFETCH, init=[])
        w_port, r_port = mem.write_port(), mem.read_port(domain="comb")
        # ``keep``: Yosys would merge the slices' equal registers back into one.
        w_en = Signal(name="w_en", attrs={"keep": 1})
        w_slot = Signal(range(PREFETCH), name="w_slot", attrs={"keep": 1})
        # The head slot is ``r_slot`` (the slot before the last cycle's take) stepped by ``took``
        # (that take, a register of the slice): the array's take reaches each slice's flip-flop
        # with no LUT in front of it, and the step is a multiplexer on the LUT RAM's read address
        # (the take -> each slice's next-slot LUT -> its head slot: 8.4-9.6 ns, the full 8 x 16
        # board aimed at 125 MHz).
        r_slot = Signal(range(PREFETCH), name="r_slot", attrs={"keep": 1})
        took = Signal(name="took", attrs={"keep": 1})
        head = Mux(took, ring_next(r_slot, PREFETCH), r_slot)
        m.d.sync += [w_en.eq(self.i_write), took.eq(self.i_take),
                     # Stepped by the slice's own write enable register, which equals the
                     # sequencer's ``inflight[L]`` in every cycle: that one register into every
                     # slice's write slot enables was 8.57-8.69 ns (the 8 x 16 board aimed at
                     # 125 MHz, seeds 1 and 2).
                     w_slot.eq(Mux(w_en, ring_next(w_slot, PREFETCH), w_slot)),
                     r_slot.eq(head)]
        m.d.comb += [w_port.addr.eq(w_slot), w_port.data.eq(self.i_data), w_port.en.eq(w_en),
                     r_port.addr.eq(head), self.o_data.eq(r_port.data)]
        return m


