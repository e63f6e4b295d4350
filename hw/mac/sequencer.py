"""Tile sequencing shared by the MAC arrays: commands, beat counting and each beat's tags.

:class:`TileSequencer` takes the ``i_cmd`` stream and decides, cycle by cycle, whether the beat
offered on ``i_act`` / ``i_wgt`` is taken; it tags each taken beat with its place in the tile and in
its tile-saturation group (:mod:`hw.mac.spec`), drops the beats of tiles with an undefined mode
(setting the sticky ``mode_error``), and hands the running tile's mode to the array.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import spec

__all__ = ["TileSequencer", "beat_tags_layout"]


def beat_tags_layout():
    """Tags of a beat: it belongs to a defined tile (``valid``); first / last beat of the tile;
    tile-saturating tile; the beat starts / ends a group (plain tiles: both always 1)."""
    return data.StructLayout({"valid": 1, "first": 1, "last": 1, "tsat": 1, "gstart": 1, "gend": 1})


class TileSequencer(wiring.Component):
    """Commands and beat handshakes of a MAC array.

    Cycle behaviour: the next command waits in a register, so ``i_cmd.ready`` is a flip-flop and a
    tile starts in the cycle after the previous one's last beat is taken. A beat is taken
    (``take``, which the array drives both beat streams' ``ready`` with) when a tile is running,
    both beat streams are valid and either the tile is dropped or ``en`` is high and the beat is not
    the tile's last or ``last_ok`` is high.

    Parameters
    ----------
    count_bits : int
        Width of the command's beat count.
    tile_k : int
        Group size of the tile-saturating option (0: none; ``tile_sat`` commands run plain).

    Members
    -------
    i_cmd : In(stream.Signature(cmd_layout(count_bits)))
    beat_valid : In(1)
        Both beat streams are valid.
    en, last_ok : In(1)
        A beat of a defined tile may be taken; the last one only with ``last_ok`` as well.
    take : Out(1)
    tags : Out(beat_tags_layout())
        Tags of the beat taken in this cycle (``valid = take`` and the tile is defined).
    take_last : Out(1)
        ``tags.valid & tags.last``: a defined tile's last beat is taken, from the inputs and
        registers without ``take`` (``beat_valid & en & last_ok`` and the state register
        ``gated``).
    mode : Out(2), act_unsigned : Out(1)
        The running tile's mode (a defined code) and activation format.
    i_clear : In(1), o_mode_error : Out(1)
        Sticky: a command had an undefined mode (cleared by ``i_clear``, which wins).
    busy : Out(1)
        A tile is running or a command waits.
    """

    def __init__(self, count_bits, tile_k):
        self._count_bits, self._tile_k = count_bits, tile_k
        super().__init__({
            "i_cmd": In(stream.Signature(data.StructLayout(dict(spec.cmd_layout_fields(count_bits))))),
            "beat_valid": In(1), "en": In(1), "last_ok": In(1),
            "take": Out(1), "tags": Out(beat_tags_layout()), "take_last": Out(1),
            "mode": Out(2), "act_unsigned": Out(1),
            "i_clear": In(1), "o_mode_error": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        active, drop, tsat = Signal(), Signal(), Signal()
        mode = self.mode
        left = Signal(self._count_bits)    # beats of the tile after the next one
        last_beat, first_beat = Signal(), Signal()   # registered: the next beat is the last / first
        kbits = max(1, (self._tile_k - 1).bit_length()) if self._tile_k else 1
        kpos = Signal(kbits)       # products of the current group so far (mod tile_k)
        cmd = self.i_cmd.payload
        nxt_valid = Signal()
        # ``left == 1`` as a register set a beat ahead: the take picks the next last-beat flag
        # (and through it ``free`` / ``gated``) from registers, with no compare of ``left`` in
        # between (9.13-9.27 ns into free / gated, the 8 x 16 ULX3S board aimed at 125 MHz).
        left_is1 = Signal()
        nxt = Signal.like(cmd, name="nxt")
        take, start = self.take, Signal()
        # The take is active & beat_valid & (drop | (en & (~last_beat | last_ok))), from two
        # registers set with the state a cycle ahead: ``free`` (a beat may go in without
        # ``last_ok``: a running tile, dropped or not at its last beat) and ``gated`` (a defined
        # tile's last beat, which waits for ``last_ok``). With ``en`` constant (the systolic
        # array) the take is one LUT4 of beat_valid, free, gated and last_ok; from the state
        # registers themselves it was a LUT4 and a mux in front of the long route to the GEMM
        # sequencer's prefetch queue (9.7 ns, the 8 x 16 board aimed at 125 MHz, seed 2).
        free, gated = Signal(), Signal()
        # The next state for either value of the take, from registers alone (``nxt_drop`` and
        # ``nxt_last`` are the waiting command's compares, registered with it); the take picks
        # between the two: one multiplexer behind the take, whose net reaches the prefetch queue
        # (the take -> start -> the next state -> free / gated was 9.13-9.27 ns on the 8 x 16 ULX3S
        # board aimed at 125 MHz).
        nxt_drop, nxt_last = Signal(), Signal()
        m.d.comb += [
            take.eq(self.beat_valid & ((free & (self.en | drop)) | (gated & self.en & self.last_ok))),
            self.take_last.eq(self.beat_valid & gated & self.en & self.last_ok),
            self.i_cmd.ready.eq(~nxt_valid),
            start.eq(nxt_valid & (~active | (take & last_beat))),
            self.busy.eq(active | nxt_valid),
        ]
        # Per value of the take: (active, drop, last beat) after this cycle. A taken last beat
        # ends the tile; a start (no tile running, or a taken last beat, and a command waiting)
        # loads the waiting command's; a taken beat steps the last-beat flag.
        free_if = [Signal(name=f"free_if{t}") for t in (0, 1)]
        gated_if = [Signal(name=f"gated_if{t}") for t in (0, 1)]
        after = []
        for t in (0, 1):
            starts = nxt_valid & (~active | (last_beat if t else 0))
            a_n = Mux(starts, 1, active & ~(last_beat if t else 0))
            d_n = Mux(starts, nxt_drop, drop)
            l_n = Mux(starts, nxt_last, left_is1 if t else last_beat)
            m.d.comb += [free_if[t].eq(a_n & (d_n | ~l_n)), gated_if[t].eq(a_n & ~d_n & l_n)]
            after.append((a_n, d_n, l_n))
        for reg, if0, if1 in zip((active, drop, last_beat), *after):
            m.d.sync += reg.eq(Mux(take, if1, if0))
        m.d.sync += [free.eq(Mux(take, free_if[1], free_if[0])),
                     gated.eq(Mux(take, gated_if[1], gated_if[0]))]
        lanes = Signal(3)
        m.d.comb += lanes.eq(Mux(mode == spec.MODE_INT8, 1, Mux(mode == spec.MODE_INT4, 2, 4)))

        with m.If(take):
            m.d.sync += [left.eq(left - 1), left_is1.eq(left == 2), first_beat.eq(0), kpos.eq(kpos + lanes)]
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [nxt.eq(cmd), nxt_valid.eq(1), nxt_drop.eq(cmd.mode >= len(spec.LANES)),
                         nxt_last.eq(cmd.beats_m1 == 0)]
            with m.If(cmd.mode >= len(spec.LANES)):
                m.d.sync += self.o_mode_error.eq(1)
        with m.If(self.i_clear):
            m.d.sync += self.o_mode_error.eq(0)
        with m.If(start):
            m.d.sync += [
                nxt_valid.eq(0),
                mode.eq(nxt.mode[:2]),
                self.act_unsigned.eq(nxt.act_unsigned), tsat.eq(nxt.tile_sat if self._tile_k else 0),
                left.eq(nxt.beats_m1), left_is1.eq(nxt.beats_m1 == 1), first_beat.eq(1), kpos.eq(0),
            ]

        # Tags of the beat being taken: its place in the tile and in its group.
        if self._tile_k:
            gstart = ~tsat | (kpos == 0)
            gend = ~tsat | last_beat | ((kpos + lanes)[:kbits] == 0)
        else:
            gstart = gend = 1
        t = self.tags
        m.d.comb += [t.valid.eq(take & ~drop), t.first.eq(first_beat), t.last.eq(last_beat),
                     t.tsat.eq(tsat), t.gstart.eq(gstart), t.gend.eq(gend)]
        return m
