"""Block-RAM buffers of the GEMM engine: the double-buffered decoded weight tile and the batch of
activations."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.ram import registered_read_port
from ..mac import spec as mac_spec
from ..params import check_bool, check_domain

__all__ = ["WeightTileBuffer", "ActivationBuffer", "symbol_layout"]


def symbol_layout(lanes):
    """A beat of decoded weight symbols: ``lanes`` packed bytes (block symbols in order), the
    block's last beat, and ``err`` (the block or this beat's values are bad)."""
    return data.StructLayout({"bytes": data.ArrayLayout(8, lanes), "last": 1, "err": 1})


class WeightTileBuffer(wiring.Component):
    """Two banks of one decoded weight tile each (``depth`` beats of ``cols`` packed bytes).

    Write side: ``i_sym`` beats fill bank ``wb`` in block order, ``lanes`` bytes per beat into one
    block-RAM word with byte enables (``lanes`` divides ``cols``). A beat with ``last`` closes the
    bank: it becomes *full* with its beat count and its ``bad`` flag (a beat had ``err``, the block
    overran ``depth`` beats — those writes are dropped — or it ended inside a beat), and the writer
    moves to the other bank. ``i_sym.ready`` is low while bank ``wb`` is full, so the decoder writes
    the next tile while the array reads the current one.

    Read side: ``o_full`` (bank ``rb`` is full), ``o_beats``, ``o_bad``; ``rd_en`` / ``rd_addr``
    read beat ``rd_addr`` of bank ``rb`` into ``rd_data`` in the next cycle (``rd_data`` holds while
    ``rd_en`` is low). ``i_release`` (one cycle) empties bank ``rb`` and moves the reader on.
    ``i_clear`` empties both banks.

    With ``addr_reg`` (the ULX3S's prefetching sequencer): the memory is one block RAM column per
    lane group of ``lanes`` bytes (a beat writes one of them), each with its own copy of the read
    address register (``keep``) in front of it, so that the reader's address register drives
    only those copies, one cycle of route, and each copy only its own RAMs: ``rd_data`` is the beat
    that ``rd_addr`` and ``rb`` named two cycles before. The RAMs read every cycle (``rd_en`` is
    not used).

    With ``w_domain`` other than ``"sync"`` the write side (``i_sym`` and the RAMs' write ports)
    runs in that clock domain, the read side in ``sync``: the block RAMs are the crossing (their
    ports have clocks of their own), so no symbol FIFO stands between the writer and the RAMs.
    A bank is handed over by two toggles per bank: the writer flips ``fill[b]`` when it closes
    bank ``b`` (in the same cycle as it writes the bank's beat count and ``bad`` flag), the reader
    flips ``rel[b]`` when it releases it; each crosses through a two-flop synchronizer. The
    reader sees bank ``b`` full while its copy of ``fill[b]`` differs from ``rel[b]``, the writer
    sees it free while ``fill[b]`` equals its copy of ``rel[b]``. So the reader reads a bank, its
    count and its flag only two or more of its cycles after the writer stopped writing them, and
    the writer writes a bank again only after the reader let go of it: no multi-bit value is
    sampled while it changes. Handing a bank over costs about two cycles of the receiving
    clock. ``i_sym.ready`` is a register (the next cycle's "bank ``wb`` is free", from the
    writer's next state and the synchronized ``rel``, so a release reaches it a cycle later).
    ``i_clear`` clears the read side only; the write side is cleared by resetting ``w_domain``
    (:class:`~amaranth.hdl.ResetInserter`), and both must be cleared, in any order, before the
    buffer is used again (the synchronizers are not reset: they settle within two cycles of
    their clock).
    """

    def __init__(self, cols, lanes, depth, *, addr_reg=False, w_domain="sync"):
        self._cols, self._lanes, self._depth = cols, lanes, depth
        self._addr_reg = check_bool("addr_reg", addr_reg)
        self._wd = check_domain("w_domain", w_domain)
        super().__init__({
            "i_sym": In(stream.Signature(symbol_layout(lanes))),
            "o_full": Out(1), "o_beats": Out(range(depth + 1)), "o_bad": Out(1),
            "rd_en": In(1), "rd_addr": In(range(depth)), "rd_data": Out(cols * mac_spec.WORD_BITS),
            "i_release": In(1), "i_clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        C, N, D = self._cols, self._lanes, self._depth
        wd = self._wd
        slots = C // N

        if wd == "sync":
            full = Signal(2)
        count = [Signal(range(D + 1), name=f"beats{b}") for b in range(2)]
        bad = Signal(2)
        wb, rb = Signal(), Signal()
        beat = Signal(range(D + 1))       # beat being written in bank wb
        slot = Signal(range(slots))       # its next lane group
        err = Signal()                    # the block so far is bad
        sym = self.i_sym.payload
        take = Signal()
        if wd == "sync":
            m.d.comb += [self.i_sym.ready.eq(~full.bit_select(wb, 1)),
                         take.eq(self.i_sym.valid & self.i_sym.ready)]
        else:
            m.d.comb += take.eq(self.i_sym.valid & self.i_sym.ready)

        inside = beat < D
        rd_addr = Mux(rb, D + self.rd_addr, self.rd_addr)
        if self._addr_reg:
            words = []
            for s in range(slots):
                m.submodules[f"ram{s}"] = ram = Memory(shape=N * 8, depth=2 * D, init=[])
                wr, rd = ram.write_port(domain=wd), ram.read_port(transparent_for=())
                addr = Signal(range(2 * D), name=f"rd_addr{s}", reset_less=True, attrs={"keep": 1})
                m.d.sync += addr.eq(rd_addr)
                m.d.comb += [wr.addr.eq(Mux(wb, D + beat, beat)), wr.data.eq(sym.bytes),
                             wr.en.eq(take & inside & (slot == s)), rd.addr.eq(addr)]
                words.append(rd.data)
            m.d.comb += self.rd_data.eq(Cat(*words))
        else:
            m.submodules.ram = ram = Memory(shape=C * 8, depth=2 * D, init=[])
            wr = ram.write_port(granularity=8, domain=wd)
            rd = ram.read_port(transparent_for=())
            m.d.comb += [
                wr.addr.eq(Mux(wb, D + beat, beat)),
                wr.data.eq(Cat(*[sym.bytes.as_value()] * slots)),
                rd.en.eq(self.rd_en), rd.addr.eq(rd_addr), self.rd_data.eq(rd.data),
            ]
            for s in range(slots):
                m.d.comb += wr.en[s * N:(s + 1) * N].eq(Mux(take & inside & (slot == s), (1 << N) - 1, 0))

        block_bad = err | sym.err | ~inside
        close = take & sym.last
        with m.If(take):
            with m.If(sym.last):
                m.d[wd] += [beat.eq(0), slot.eq(0), err.eq(0), wb.eq(~wb)]
                if wd == "sync":
                    m.d.sync += full.bit_select(wb, 1).eq(1)
                for b in range(2):
                    with m.If(wb == b):
                        m.d[wd] += [count[b].eq(Mux(inside, beat + 1, D)),
                                    bad[b].eq(block_bad | (slot != slots - 1))]
            with m.Else():
                m.d[wd] += err.eq(block_bad)
                with m.If(slot == slots - 1):
                    m.d[wd] += [slot.eq(0), beat.eq(Mux(inside, beat + 1, beat))]
                with m.Else():
                    m.d[wd] += slot.eq(slot + 1)

        if wd == "sync":
            m.d.comb += self.o_full.eq(full.bit_select(rb, 1))
        m.d.comb += [self.o_beats.eq(Mux(rb, count[1], count[0])), self.o_bad.eq(bad.bit_select(rb, 1))]
        with m.If(self.i_release):
            m.d.sync += rb.eq(~rb)
            if wd == "sync":
                m.d.sync += full.bit_select(rb, 1).eq(0)
        if wd == "sync":
            with m.If(self.i_clear):
                m.d.sync += [full.eq(0), wb.eq(0), rb.eq(0), beat.eq(0), slot.eq(0), err.eq(0)]
        else:
            self._hand_over(m, wd, wb, rb, close)
        return m

    def _hand_over(self, m, wd, wb, rb, close):
        """The banks' toggles between a write side in ``wd`` and the read side (see the class
        docstring)."""
        fill, rel = Signal(2), Signal(2)            # the writer's and the reader's toggles
        fill_r, rel_w = Signal(2), Signal(2)        # each as the other side sees it
        m.submodules.fill_sync = FFSynchronizer(fill, fill_r, o_domain="sync")
        m.submodules.rel_sync = FFSynchronizer(rel, rel_w, o_domain=wd)
        ready = Signal(init=1)
        fill_n = Signal(2)
        m.d.comb += [fill_n.eq(fill ^ Mux(close, Mux(wb, 0b10, 0b01), 0)),
                     self.i_sym.ready.eq(ready), self.o_full.eq((fill_r ^ rel).bit_select(rb, 1))]
        m.d[wd] += [fill.eq(fill_n), ready.eq(~(fill_n ^ rel_w).bit_select(Mux(close, ~wb, wb), 1))]
        with m.If(self.i_release):
            m.d.sync += rel.eq(rel ^ Mux(rb, 0b10, 0b01))
        with m.If(self.i_clear):
            m.d.sync += [rel.eq(0), rb.eq(0)]


class ActivationBuffer(wiring.Component):
    """The batch's activations: ``depth`` words of ``rows * 4`` bytes in block RAM.

    ``i_load`` (one cycle, with ``i_row_tiles`` and ``i_groups``, each at least 1) starts a load: the
    next ``i_row_tiles * i_groups`` words of ``i_act`` go to addresses 0, 1, ...; ``o_loading`` is
    high until the last one is written. (Two counters, not a product: a multiplier here would take
    one of the DSPs the array needs.) ``i_act.ready``
    is high only while loading; it and ``o_loading`` are a register of their own, not a compare of
    the tile counter: the ready reaches the enables of the activation queue's skid registers (a
    wide word, far away on the ULX3S), and a compare of the counter in front of it was on the
    engine clock's worst path. ``rd_en`` / ``rd_addr`` / ``rd_data`` as :class:`WeightTileBuffer`;
    with ``addr_reg`` one block RAM column per array row, each with its own read address register
    (``rd_data`` two cycles after ``rd_addr``, ``rd_en`` not used), as there; each also writes a
    word a cycle after taking it (its write lands at the end of the first cycle with ``o_loading``
    low), and a word read in the cycle its address is written is undefined on the FPGA (the old
    word in simulation): ``rd_addr`` may name a loaded word from the first cycle with
    ``o_loading`` low (its RAM read, behind the address register, is a cycle after the write).

    With ``w_domain`` other than ``"sync"`` the write side (``i_act``, the load counters and the
    RAMs' write ports) runs in that clock domain, the read side (``i_load``, ``o_loading``, the
    read ports) in ``sync``: the block RAMs are the crossing, as in :class:`WeightTileBuffer`
    (the ULX3S: the controller writes the activations, a byte per cycle, straight into the
    array's RAMs; no queue in the array's domain). A load is a four-phase handshake: ``i_load``
    raises ``req`` (with the shape in registers that hold until the next load); the writer,
    seeing it through a two-flop synchronizer while idle, starts the load, and raises ``done``
    a cycle after its last word's write; the reader drops ``req`` when it sees ``done``, the
    writer drops ``done`` when it sees ``req`` fall. ``o_loading`` is ``req | done`` as the reader
    sees it, so it falls after the whole handshake (about two cycles of each clock after the last
    word), when the writer is idle again: the RAMs are read only long after their last write,
    and a next ``i_load`` finds the writer idle. ``i_clear`` drops ``req`` (the writer abandons a
    load when it sees that); ``i_w_clear`` (the write domain, a level) holds the writer idle and
    ignoring ``req``: hold it from before ``i_clear`` until ``req`` has been low two write cycles
    (:class:`~hw.gemm.crossing.EngineCrossing`'s flush does), so that no request from before the
    clear starts a load after it.
    """

    def __init__(self, rows, max_row_tiles, max_groups, *, addr_reg=False, w_domain="sync"):
        self._rows, self._addr_reg = rows, check_bool("addr_reg", addr_reg)
        self._wd = check_domain("w_domain", w_domain)
        self._width = rows * mac_spec.MAX_LANES * mac_spec.ACT_BITS
        self._depth = depth = max_row_tiles * max_groups
        super().__init__({
            "i_act": In(stream.Signature(self._width)),
            "i_load": In(1), "i_row_tiles": In(range(max_row_tiles + 1)),
            "i_groups": In(range(max_groups + 1)),
            "o_loading": Out(1),
            "rd_en": In(1), "rd_addr": In(range(depth)), "rd_data": Out(self._width),
            "i_clear": In(1),
            **({"i_w_clear": In(1)} if self._wd != "sync" else {}),
        })

    def elaborate(self, platform):
        m = Module()
        wd = self._wd
        addr = Signal(range(self._depth))
        tiles_left = Signal.like(self.i_row_tiles)
        groups = Signal.like(self.i_groups)
        groups_left = Signal.like(self.i_groups)
        take = Signal()
        loading = Signal()          # tiles_left != 0, as a register
        # ``group_last`` (groups_left == 1) as a register set a word ahead: the take steps the
        # counters with no compare in front of their enables (the take and that compare into
        # groups_left's enables: 8.95 ns, the 8 x 16 board aimed at 125 MHz, seed 2).
        group_last = Signal()
        if wd == "sync":        # first: the register keeps the name o_loading in the netlist
            m.d.comb += self.o_loading.eq(loading)
        m.d.comb += [self.i_act.ready.eq(loading), take.eq(self.i_act.valid & loading)]
        if wd == "sync":
            start, tiles_in, groups_in, clear = self.i_load, self.i_row_tiles, self.i_groups, self.i_clear
        else:
            start, tiles_in, groups_in, clear = self._request(
                m, loading, take & group_last & (tiles_left == 1))
        self._rams(m, take, addr)
        d = m.d[wd]
        with m.If(start):
            d += [addr.eq(0), tiles_left.eq(tiles_in), groups.eq(groups_in),
                  groups_left.eq(groups_in), loading.eq(tiles_in != 0),
                  group_last.eq(groups_in == 1)]
        with m.Elif(take):
            d += addr.eq(addr + 1)
            with m.If(group_last):
                d += [groups_left.eq(groups), tiles_left.eq(tiles_left - 1),
                      loading.eq(tiles_left != 1), group_last.eq(groups == 1)]
            with m.Else():
                d += [groups_left.eq(groups_left - 1), group_last.eq(groups_left == 2)]
        with m.If(clear):
            d += [tiles_left.eq(0), loading.eq(0)]
        return m

    def _request(self, m, loading, last):
        """The load's four-phase handshake (class docstring), ``last`` the writer's take of a
        load's last word; returns the writer's ``(start, row tiles, groups, stop)``."""
        wd = self._wd
        req, done, req_w, done_r = Signal(), Signal(), Signal(), Signal()
        tiles, groups = Signal.like(self.i_row_tiles), Signal.like(self.i_groups)
        m.submodules.req_sync = FFSynchronizer(req, req_w, o_domain=wd)
        m.submodules.done_sync = FFSynchronizer(done, done_r, o_domain="sync")
        with m.If(self.i_load):
            m.d.sync += [req.eq(1), tiles.eq(self.i_row_tiles), groups.eq(self.i_groups)]
        with m.Elif(done_r):
            m.d.sync += req.eq(0)
        with m.If(self.i_clear):
            m.d.sync += req.eq(0)
        m.d.comb += self.o_loading.eq(req | done_r)
        # The writer: ``landing`` in the cycle after its last take (with ``addr_reg`` the last
        # word's write is then in flight), ``done`` from the cycle after that. ``tiles`` and
        # ``groups`` are read two or more write cycles after the reader set them (with ``req``),
        # and hold until ``o_loading`` has fallen.
        landing, start, stop = Signal(), Signal(), Signal()
        m.d.comb += [stop.eq(~req_w | self.i_w_clear),
                     start.eq(~stop & ~loading & ~landing & ~done)]
        m.d[wd] += [landing.eq(start & (tiles == 0) | last), done.eq(done | landing)]
        with m.If(stop):
            m.d[wd] += [landing.eq(0), done.eq(0)]
        return start, tiles, groups, stop

    def _rams(self, m, take, addr):
        """The block RAMs: written with the words taken (at ``addr``), read by ``rd_*``."""
        wd = self._wd
        if self._addr_reg:
            # The sequencer reads only after a load has ended (and its last write has landed: see
            # below), so no word is read in the cycle it is written: the RAMs carry no_rw_check and
            # are read through registered_read_port, without Yosys's read-during-write compare and
            # bypass behind them (a LUT between a DP16KD's output, 5.8 ns from the clock, and the
            # sequencer's register: 9.37 ns, the 8 x 16 board aimed at 125 MHz, seed 1). Each RAM
            # writes a cycle after the take from registers of its own (address, word, enable:
            # ``keep`` copies), so neither the take nor the address counter is routed to every RAM.
            row_bits, words = self._width // self._rows, []
            for r in range(self._rows):
                m.submodules[f"ram{r}"] = ram = Memory(shape=row_bits, depth=self._depth, init=[],
                                                       attrs={"no_rw_check": 1})
                wr, rd = ram.write_port(domain=wd), registered_read_port(m, ram, name=f"ram{r}_rd")
                rd_addr = Signal.like(self.rd_addr, name=f"rd_addr{r}", reset_less=True, attrs={"keep": 1})
                wr_addr = Signal.like(addr, name=f"wr_addr{r}", reset_less=True, attrs={"keep": 1})
                wr_data = Signal(row_bits, name=f"wr_data{r}", reset_less=True)
                wr_en = Signal(name=f"wr_en{r}", attrs={"keep": 1})
                row = self.i_act.payload[r * row_bits:(r + 1) * row_bits]
                if wd == "sync":
                    m.d.sync += [rd_addr.eq(self.rd_addr), wr_addr.eq(addr), wr_data.eq(row), wr_en.eq(take)]
                else:
                    m.d.sync += rd_addr.eq(self.rd_addr)
                    m.d[wd] += [wr_addr.eq(addr), wr_data.eq(row), wr_en.eq(take)]
                m.d.comb += [wr.addr.eq(wr_addr), wr.data.eq(wr_data), wr.en.eq(wr_en), rd.addr.eq(rd_addr)]
                words.append(rd.data)
            m.d.comb += self.rd_data.eq(Cat(*words))
        else:
            m.submodules.ram = ram = Memory(shape=self._width, depth=self._depth, init=[])
            wr = ram.write_port(domain=wd)
            rd = ram.read_port(transparent_for=())
            m.d.comb += [wr.addr.eq(addr), wr.data.eq(self.i_act.payload), wr.en.eq(take),
                         rd.en.eq(self.rd_en), rd.addr.eq(self.rd_addr), self.rd_data.eq(rd.data)]
