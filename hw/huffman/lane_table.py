"""The compact ("table") decode lane for small FPGAs: a first-level lookup table in block RAM
instead of per-length comparators, and a bit buffer that takes words at a fixed place and reads its
window at the fill level, instead of shifting the whole buffer (``HuffmanDecoder(impl="table")``)."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.logic import or_tree
from ..lib.ram import registered_read_port
from ..params import check_bool, check_int
from . import lane_step, spec
from .block_parser import descriptor_layout
from .crc import crc16_next
from .lane import buffer_bits, compose_parts, lane_members, lane_output_layout, place_symbol, symbol_memory
from .table_loader import TableLoader, table_bus

__all__ = ["CompactTableLoader", "TableFiller", "TableLaneDecoder", "entry_layout", "long_entry",
           "long_entry_bits", "table_bits"]

#: One entry of the first-level table: the code length (0: not a code of at most ``table_bits``
#: bits: a longer code, or no code) and the symbol index of the code.
entry_layout = data.StructLayout({"length": 4, "index": 8})



def table_bits(max_len):
    """Bits ``k`` that index the first-level table: ``min(8, L - 1)`` (a 256-entry bank is one
    block RAM; codes longer than ``k`` are found by ``L - k`` comparators)."""
    return min(8, max_len - 1)


def long_entry_bits(max_len, bits):
    """Width of a first-level entry with ``long_lengths`` (:func:`long_entry`): 4 up to L = 12
    at ``k = 9``."""
    return (2 * max_len - bits).bit_length()


def long_entry(max_len, bits, first_len, boundary):
    """The first-level entry of a prefix of long codes (``TableFiller(long_lengths=True)``): the
    length itself if every window with that prefix starts with a code of ``first_len`` bits;
    ``L - k + first_len`` (past every length) for a *boundary* prefix, one whose windows start with
    codes of ``first_len`` and longer lengths, or end past the last code."""
    return Mux(boundary, first_len + (max_len - bits), first_len)


class CompactTableLoader(TableLoader):
    """:class:`~hw.huffman.table_loader.TableLoader` with an escape check that needs no per-length
    registers, for :class:`TableLaneDecoder`.

    The verdict is the base loader's (the format's :func:`~hw.huffman.spec.check_table_words`); only
    "the escape, if any, is the last symbol of its length" is computed differently: the index after
    the last symbol of each length ``l < L`` is ``E_l = (2 offset[l] - offset[l+1]) mod 512`` (from
    ``offset[l] = base[l] - first[l]`` and ``first[l+1] = 2 (first[l] + count[l])``), taken from the
    offsets as the loader writes them (``o_off_*``, lengths in order) into a shift register; the
    escape is placed right if its index + 1 is one of them or the symbol count (length L, or the
    last symbol). Exact for every table that passes the other checks (``E_l <= 256``).

    The escape port carries what the table lane needs, not the comparator lanes' mask and code:
    ``o_esc_on[b]``, the table in bank ``b`` has an escape, and ``o_esc_code[b]`` (low 8 bits) its
    symbol index; ``o_esc_mask`` stays 0. So the limits and offsets of the short lengths have no
    reader, and synthesis removes them.

    A subclass with ``_registered_placement`` keeps the escape's index + 1 in a register (taken
    with the escape) and registers "placed" in every cycle: VERDICT reads its value of CHECK, when
    the ends, the escape and the symbol count are final (the compares are then not on the
    verdict's path).
    """

    #: See the class docstring.
    _registered_placement = False
    #: False: no placement check here (:class:`TableFiller` ``escape_check`` does it).
    _placement = True

    def _escape_check(self, m, st, word, take, bank, index):
        L = self._L
        esc_seen = Signal()
        esc_index = Signal(8)
        second = Signal()
        if not self._placement:
            # only "at most one escape" and the escape's index for the filler
            with m.If(st["IDLE"]):
                m.d.sync += [esc_seen.eq(0), second.eq(0)]
            with m.If(st["SYMS"] & take & (word == spec.ESCAPE)):
                m.d.sync += [esc_seen.eq(1), esc_index.eq(index[:8]), second.eq(esc_seen)]
            with m.If(st["VERDICT"]):
                m.d.sync += [self.o_esc_on.bit_select(bank, 1).eq(esc_seen),
                             self.o_esc_code[bank].eq(esc_index)]
            return ~second
        prev = Signal(9)               # the offset written before (length l - 1)
        have_prev = Signal()
        ends = [Signal(9, name=f"end{i}") for i in range(L - 1)]
        with m.If(st["IDLE"]):
            m.d.sync += [esc_seen.eq(0), second.eq(0), have_prev.eq(0)]
        with m.If(st["SYMS"] & take & (word == spec.ESCAPE)):
            m.d.sync += [esc_seen.eq(1), esc_index.eq(index[:8]), second.eq(esc_seen)]
        with m.If(self.o_off_en):
            m.d.sync += [prev.eq(self.o_off_data), have_prev.eq(1)]
            with m.If(have_prev):
                m.d.sync += [ends[0].eq(((prev << 1) - self.o_off_data)[:9]),
                             *(ends[i].eq(ends[i - 1]) for i in range(1, L - 1))]
        after = Signal(9)
        if self._registered_placement:
            with m.If(st["SYMS"] & take & (word == spec.ESCAPE)):
                m.d.sync += after.eq(index[:8] + 1)
        else:
            m.d.comb += after.eq(esc_index + 1)
        placed = Cat(after == index, *(e == after for e in ends)).any()
        if self._registered_placement:
            placed_q = Signal()
            m.d.sync += placed_q.eq(placed)
            placed = placed_q
        with m.If(st["VERDICT"]):
            m.d.sync += [self.o_esc_on.bit_select(bank, 1).eq(esc_seen),
                         self.o_esc_code[bank].eq(esc_index)]
        return ~second & (~esc_seen | placed)


class TableFiller(wiring.Component):
    """Builds the first-level table of each loaded table, and the escape's mask and code.

    Table ``t`` (bank ``t % 2``) is built once the loader has counted it (``i_count``) and if it
    passed (``i_ok``): the lengths 1..L are walked in canonical order (from the offsets the loader
    writes, kept in a small block RAM: length ``l`` ends at symbol index ``2 offset[l] -
    offset[l+1]``, length ``L`` at the symbol count, counted from the symbol writes); each code of
    length ``l <= k`` writes its ``2**(k-l)`` entries ``(l, index)`` (one per cycle); the entries
    past the short codes are written 0 (a longer code or none). Meanwhile the escape's code (the
    index given by :class:`CompactTableLoader`) is kept left-aligned in L bits with its mask, as
    the comparator lanes' loader gives them. ``o_filled`` counts the tables done (or skipped: a
    failed table is not built; a lane never decodes with it). A table takes at most
    ``2**k + 2 nsyms + 3 L + 4`` cycles; lanes wait for it (``o_filled``).

    The loader cannot overwrite a bank before the lanes have moved past its table, and the lanes
    wait for this filler, so the bank being built is never the one being read.

    Parameters
    ----------
    max_len : int
        L, 8 to 16.
    escape : bool
        The table bus has the escape (compute its left-aligned code and mask).
    index : bool
        Entries hold the symbol index (:data:`entry_layout`); without it only the length (4 bits,
        for a lane that finds the index as code + offset: the table takes one block RAM).
    long_lengths : bool
        (Only without ``index``.) The entries past the short codes name long lengths too: a prefix
        whose windows all start with a long code of one length holds that length; a *boundary*
        prefix (codes of several lengths, or the end of the code space, under it) holds
        :func:`long_entry` ``L - k + l0``, ``l0`` the length of its first window; a prefix with no
        code holds 0. Entries are :func:`long_entry_bits` wide (4 up to L = 12 at ``k = 9``).
        A long code takes two cycles of the walk.
    rw_check : bool
        False: the table's and the offsets' block RAMs carry ``no_rw_check`` and registered
        asynchronous read ports (:func:`hw.lib.ram.registered_read_port`: no read/write collision
        logic; the same cycle behaviour). For a lane that never uses an entry of the bank being
        written (a bank is rebuilt only when no lane decodes with it).
    escape_check : bool
        (Only with ``escape``.) The filler, not the loader, checks that the escape is the last
        symbol of its length (:class:`CompactTableLoader` ``placement=False`` leaves it out): the
        walk already has each length's end index, so "the escape's index + 1 is its length's end"
        is one compare where the walk passes the escape (no register per length). Its verdict is
        the table's: ``o_ok`` per bank (the loader's ``i_ok`` and this check, set as ``o_filled``
        counts the table; lanes read it instead of the loader's), ``o_err`` pulses for a misplaced
        escape as ``o_filled`` counts the table (``ERR_TABLE``, a walk later than the loader's).
        The escape's mask is then given as its length (``o_esc_len`` per bank instead of
        ``o_esc_mask``: the reader makes the mask; the walk keeps no mask register).
    end_offset : bool
        The loader writes ``offset[L + 1]`` (``CSlowTableLoader(end_offset=True)``): length L ends
        at ``2 offset[L] - offset[L + 1]`` like the others, so no symbol count per bank is kept
        here (``i_sym_*`` unread). L up to 14.

    Members
    -------
    (table bus inputs) i_count, i_ok, i_off_*, i_sym_en, i_sym_addr, i_esc_on, i_esc_code
    i_raddr : In(k + 1)
        Read address (bank << k | prefix); ``o_rdata`` is the entry a cycle later.
    o_rdata : Out(entry_layout, or the length alone without ``index``)
    o_filled : Out(8)
    o_esc_mask, o_esc_code : Out(ArrayLayout(L, 2))
    o_ok : Out(2), o_err : Out(1), o_esc_len : Out(ArrayLayout(range(L + 1), 2))
        With ``escape_check`` only (then no ``o_esc_mask``).
    """

    def __init__(self, max_len, escape, index=True, rw_check=True, bits=None, long_lengths=False,
                 escape_check=False, end_offset=False):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        self._rw_check = check_bool("rw_check", rw_check)
        self._escape = check_bool("escape", escape)
        self._check = check_bool("escape_check", escape_check)
        self._end_offset = check_bool("end_offset", end_offset)
        if self._end_offset and self._L > 14:
            raise ValueError(f"end_offset: only with max_len up to 14, not {self._L}")
        if self._check and not self._escape:
            raise ValueError("escape_check: True only with escape=True (no escape to place)")
        self._K = table_bits(self._L) if bits is None else check_int("bits", bits, 1, self._L - 1)
        self._index = check_bool("index", index)
        self._long = check_bool("long_lengths", long_lengths)
        if self._long and self._index:
            raise ValueError("long_lengths: True only with index=False (the entry holds no index)")
        width = long_entry_bits(self._L, self._K) if self._long else 4
        self._entry = entry_layout if index else data.StructLayout({"length": width})
        bus = table_bus(self._L, offset_port=True, escape=escape)
        names = ["count", "ok", "off_en", "off_addr", "off_data", "sym_en", "sym_addr"]
        if escape:
            names += ["esc_on", "esc_code"]
        members = {f"i_{n}": In(bus[n]) for n in names}
        members.update({
            "i_raddr": In(self._K + 1),
            "o_rdata": Out(self._entry),
            "o_filled": Out(8),
        })
        if escape and not self._check:
            members.update({"o_esc_mask": Out(bus["esc_mask"]), "o_esc_code": Out(bus["esc_code"])})
        if self._check:
            members.update({"o_ok": Out(2), "o_err": Out(1), "o_esc_code": Out(bus["esc_code"]),
                            "o_esc_len": Out(data.ArrayLayout(range(self._L + 1), 2))})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        L, K = self._L, self._K

        rw = None if self._rw_check else {"no_rw_check": 1}
        tmem = Memory(shape=self._entry, depth=2 << K, init=[], attrs=rw)
        m.submodules.tmem = tmem
        twport = tmem.write_port()
        trport = tmem.read_port() if self._rw_check else registered_read_port(m, tmem, name="tmem_rd")
        m.d.comb += [trport.addr.eq(self.i_raddr), trport.en.eq(1), self.o_rdata.eq(trport.data)]
        # 256 deep: a block RAM, not flip-flops
        offmem = Memory(shape=9, depth=256, init=[], attrs=rw)
        m.submodules.offmem = offmem
        owport = offmem.write_port()
        orport = offmem.read_port() if self._rw_check else registered_read_port(m, offmem, name="offmem_rd")
        m.d.comb += [owport.en.eq(self.i_off_en), owport.addr.eq(self.i_off_addr),
                     owport.data.eq(self.i_off_data), orport.en.eq(1)]
        if not self._end_offset:
            nsyms = [Signal(9, name=f"nsyms{b}") for b in range(2)]       # per bank: symbols written
            for b in range(2):
                with m.If(self.i_sym_en & (self.i_sym_addr[8] == b)):
                    m.d.sync += nsyms[b].eq(self.i_sym_addr[:8] + 1)

        bank = Signal()
        length = Signal(range(L + 2))
        index = Signal(9)              # symbol index of the current code
        end = Signal(9)                # index after the current length's last code
        # index == end: with ``long_lengths`` a register of its own (set in AT_END, kept at every
        # step of the index), so the walk's decisions start from flip-flops
        at_end = Signal() if self._long else (index == end)
        off = Signal(9)                # offset[length]
        prefix = Signal(K + 1)         # next table entry
        rep = Signal(K)                # entries of the current code still to write, minus one
        rep_init = Signal(K)           # 2**(k - length) - 1
        unit = Signal(L + 1)           # 1 << (L - length)
        mask = Signal(L)               # length ones, left-aligned
        code = Signal(L + 1)           # the current code, left-aligned in L bits
        m.d.comb += orport.addr.eq(Cat(length[:4], bank))
        m.d.comb += [twport.addr.eq(Cat(prefix[:K], bank)), twport.data.length.eq(length)]
        if self._index:
            m.d.comb += twport.data.index.eq(index[:8])
        nxt = Signal(9)                # offset[length + 1]
        if self._long:
            # the prefix of the long codes being walked: entry not yet written
            open_prefix = Signal()
            first_len = Signal(range(L + 1))   # the length of its first code
            boundary = Signal()                # it holds codes of another length too
            # the code's prefix is past the open one, as a register (a long code takes two cycles:
            # the compare, then the step that uses it)
            new_prefix = Signal()
            settled = Signal()
            m.d.sync += new_prefix.eq(code[L - K:] != prefix)

        def read_offset(ln):
            m.d.comb += orport.addr.eq(Cat(ln[:4], bank))

        if self._check:
            placed = Signal()          # the walk passed the escape at its length's last index
            m.d.sync += self.o_err.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.i_count != self.o_filled):
                    with m.If(self.i_ok.bit_select(self.o_filled[0], 1)):
                        m.d.sync += bank.eq(self.o_filled[0])
                        m.next = "START"
                    with m.Else():
                        m.d.sync += self.o_filled.eq(self.o_filled + 1)
                        if self._check:
                            m.d.sync += self.o_ok.bit_select(self.o_filled[0], 1).eq(0)
            with m.State("START"):     # read offset[1]
                read_offset(Const(1, 4))
                if self._check:
                    m.d.sync += placed.eq(0)
                if self._long:
                    m.d.sync += open_prefix.eq(0)
                m.d.sync += [length.eq(1), index.eq(0), prefix.eq(0), code.eq(0),
                             unit.eq(1 << (L - 1)), mask.eq(1 << (L - 1)),
                             rep.eq((1 << (K - 1)) - 1), rep_init.eq((1 << (K - 1)) - 1)]
                m.next = "OFF"
            with m.State("OFF"):       # offset[1] is in; read offset[2]
                m.d.sync += off.eq(orport.data)
                read_offset(length + 1)
                m.next = "END"
            with m.State("END"):       # offset[length + 1] is in: where this length ends
                if self._end_offset:    # (offset[L + 1] written by the loader: length L alike)
                    m.d.sync += [nxt.eq(orport.data), end.eq(((off << 1) - orport.data)[:9])]
                else:
                    m.d.sync += [nxt.eq(orport.data),
                                 end.eq(Mux(length == L, Mux(bank, nsyms[1], nsyms[0]),
                                            ((off << 1) - orport.data)[:9]))]
                m.next = "AT_END" if self._long else "CODES"
            if self._long:
                with m.State("AT_END"):
                    m.d.sync += at_end.eq(index == end)
                    m.next = "CODES"
            with m.State("CODES"):
                if self._escape:
                    # the escape's code, left-aligned, and its length's mask (``code`` is the
                    # current index's code)
                    with m.If(self.i_esc_on.bit_select(bank, 1) & (~at_end if self._long else index != end)
                              & (index[:8] == self.i_esc_code[bank][:8])):
                        if self._check:
                            # (the mask as the length; ``end``: the index after this length's last code)
                            m.d.sync += [self.o_esc_code[bank].eq(code[:L]), self.o_esc_len[bank].eq(length),
                                         placed.eq(index + 1 == end)]
                        else:
                            m.d.sync += [self.o_esc_code[bank].eq(code[:L]), self.o_esc_mask[bank].eq(mask)]
                with m.If(at_end):
                    with m.If(length == L):
                        m.next = "MARK"
                    with m.Else():
                        m.d.sync += [length.eq(length + 1), off.eq(nxt), unit.eq(unit >> 1),
                                     mask.eq((mask >> 1) | (1 << (L - 1))), rep_init.eq(rep_init >> 1),
                                     rep.eq(rep_init >> 1)]
                        read_offset(length + 2)
                        m.next = "END"
                with m.Elif(length <= K):
                    m.d.comb += twport.en.eq(1)
                    m.d.sync += prefix.eq(prefix + 1)
                    with m.If(rep == 0):
                        m.d.sync += [index.eq(index + 1), code.eq(code + unit), rep.eq(rep_init)]
                        if self._long:
                            m.d.sync += at_end.eq(index + 1 == end)
                    with m.Else():
                        m.d.sync += rep.eq(rep - 1)
                with m.Elif(settled) if self._long else m.Else():
                    m.d.sync += [index.eq(index + 1), code.eq(code + unit)]
                    if self._long:
                        m.d.sync += [at_end.eq(index + 1 == end), settled.eq(0)]
                        self._long_code(m, twport, new_prefix, prefix, length, open_prefix, first_len,
                                        boundary)
                if self._long:
                    with m.If(~settled):
                        m.d.sync += settled.eq(1)
            with m.State("MARK"):      # the entries past the codes: no code (past the short codes,
                with m.If(~prefix[K]):                               # without ``long_lengths``)
                    m.d.comb += [twport.en.eq(1), twport.data.length.eq(0)]
                    if self._long:
                        # the prefix of the last long codes first: a boundary also if the codes end
                        # inside it (its last windows are no code)
                        with m.If(open_prefix):
                            m.d.comb += twport.data.length.eq(
                                long_entry(L, K, first_len, boundary | code[:L - K].any()))
                            m.d.sync += open_prefix.eq(0)
                    m.d.sync += prefix.eq(prefix + 1)
                with m.Else():
                    m.d.sync += self.o_filled.eq(self.o_filled + 1)
                    if self._check:
                        ok = ~self.i_esc_on.bit_select(bank, 1) | placed
                        m.d.sync += [self.o_ok.bit_select(bank, 1).eq(ok), self.o_err.eq(~ok)]
                    m.next = "IDLE"
        return m

    def _long_code(self, m, twport, new_prefix, prefix, length, open_prefix, first_len, boundary):
        """The walk at a long code (``length > k``, one per cycle; each lies within one prefix, and
        the codes are contiguous, so its prefix is the open one or the next): a code in a new
        prefix writes the open prefix's entry and opens the next; one of another length in the
        open prefix makes it a boundary."""
        L, K = self._L, self._K
        with m.If(~open_prefix):
            m.d.sync += [open_prefix.eq(1), first_len.eq(length), boundary.eq(0)]
        with m.Elif(new_prefix):
            m.d.comb += [twport.en.eq(1), twport.data.length.eq(long_entry(L, K, first_len, boundary))]
            m.d.sync += [prefix.eq(prefix + 1), first_len.eq(length), boundary.eq(0)]
        with m.Elif(length != first_len):
            m.d.sync += boundary.eq(1)


class TableLaneDecoder(wiring.Component):
    """Decodes one lane of each block at up to one symbol per cycle, with the block behaviour,
    checks, errors and outputs of :class:`~hw.huffman.lane.LaneDecoder` (read its docstring), in
    less logic:

    * **Code length by table.** The lane's window (the next ``L + E + R`` stream bits, E = 8 with
      escape codes) is a register ``win``; its top ``k`` bits (:func:`table_bits`) address a
      first-level table in block RAM (:class:`TableFiller`: per prefix, the length and symbol index
      of a code of at most ``k`` bits), read in the same cycle as ``win`` is written, so the entry
      and the window arrive together. Codes longer than ``k`` are found by ``L - k`` comparators
      (the loader's limits of those lengths only) and their index from the loader's offsets, a
      cycle later. The escape code is a masked compare beside them.
    * **Words in at a fixed place, a window read at a variable one.** The bit buffer ``buf``
      (:func:`~hw.huffman.lane.buffer_bits` wide, as the comparator lane's) takes a word by
      shifting up 16 bits (the word enters at the bottom: a 2:1 multiplexer per bit), and holds
      ``fill`` valid bits below the top of the valid region; a symbol of ``a`` bits only lowers
      ``fill``. The next window is the ``L + E + R`` bits below ``fill``: one shifter, written
      into ``win`` and the table's address (the comparator lane instead shifts the whole buffer
      by the code length and places each word behind the valid bits: two wide multiplexers).
    * The raw field and the escaped symbol are cut from the registered window after the loop.

    The decode loop is: table entry (and the long comparators, the escape compare) -> length ->
    ``fill - a`` -> window shifter -> table address. A taken word waits a cycle in a staging
    register; a symbol is decoded when the window holds ``L + E + r`` valid bits (or all the lane's
    bits are in: missing bits read as 0). Latency 3 cycles from decode to ``o_sym``; a 4-entry
    output queue with credits keeps the consumer's ready out of the loop.

    Table selection: as :class:`~hw.huffman.lane.LaneDecoder`, but a lane starts a table only when
    the filler has built it (``o_filled``), a few hundred cycles after the loader counted it.

    Parameters
    ----------
    max_len, raw_bits : int
        L (8 to 16) and R (0 to 8), as for the other lanes.
    escape : bool
        Decode escape codes (the table bus of :class:`CompactTableLoader`).

    Members: as :class:`~hw.huffman.lane.LaneDecoder`, plus the loader's offset write port
    (``i_off_*``).
    """

    def __init__(self, max_len=12, raw_bits=8, escape=False):
        self._L = check_int("max_len", max_len, spec.MIN_MAX_LEN, spec.MAX_MAX_LEN)
        self._R = check_int("raw_bits", raw_bits, 0, 8)
        self._escape = check_bool("escape", escape)
        members = lane_members(self._L, self._R, escape=self._escape)
        bus = table_bus(self._L, offset_port=True, escape=self._escape)
        members.update({f"i_{n}": In(bus[n]) for n in ("off_en", "off_addr", "off_data")})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        L, R, W = self._L, self._R, spec.WORD
        E = spec.ESCAPE_BITS if self._escape else 0
        K = table_bits(L)
        WX = L + E + R                 # window: code, escaped symbol, raw field
        QDEPTH = 4

        m.submodules.filler = filler = TableFiller(self._L, self._escape)
        for name in ("count", "ok", "off_en", "off_addr", "off_data", "sym_en", "sym_addr"):
            m.d.comb += getattr(filler, f"i_{name}").eq(getattr(self, f"i_{name}"))
        if E:
            m.d.comb += [filler.i_esc_on.eq(self.i_esc_on), filler.i_esc_code.eq(self.i_esc_code)]
        rport = symbol_memory(m, self)

        # ---- block state (as LaneDecoder)
        d = Signal(descriptor_layout)
        st = {name: Signal(name=name) for name in (
            "nleft_nz", "words_nz", "own_nz", "check_crc", "blk_err", "zeroing", "is_first", "bank",
            "has_tab", "final_err", "released", "rsel", "raw_mode", "late", "running", "load")}
        n_left = Signal(16)
        words_left = Signal(16)
        own_left = Signal(16)
        bits_left = Signal(21)
        crc = Signal(16)

        # ---- output side: as LaneDecoder (two stages that never stall, a queue with credits)
        item_layout = lane_output_layout(R)
        queue = SyncFIFO(width=item_layout.size, depth=QDEPTH)
        m.submodules.queue = queue
        head = item_layout(queue.r_data)
        out_hold = head.last & ~st["released"]
        m.d.comb += [
            self.o_sym.valid.eq(queue.r_rdy & ~out_hold),
            self.o_sym.payload.eq(head),
            self.o_sym.payload.err.eq(head.last & st["final_err"]),
            queue.r_en.eq(self.o_sym.ready & ~out_hold),
        ]
        out_take = self.o_sym.valid & self.o_sym.ready
        inflight = Signal(range(QDEPTH + 1))
        space = Signal()
        m.d.comb += space.eq(inflight < QDEPTH)

        # ---- word intake: the buffer (valid bits: buf[fill - 1] down to buf[0]), staged word
        B = buffer_bits(L, R, self._escape)
        buf = Signal(B)
        fill = Signal(range(B + 1))
        stage = Signal(W)
        staged = Signal()
        pop = Signal()
        pop_buf = Signal()
        room = Mux(staged, fill <= B - 2 * W, fill <= B - W)    # fits even if the symbol takes nothing
        m.d.comb += [
            pop.eq(st["running"] & self.i_words.valid & st["words_nz"]
                   & (st["zeroing"] | ~st["own_nz"] | ~st["nleft_nz"] | room)),
            pop_buf.eq(pop & ~st["zeroing"] & st["own_nz"] & st["nleft_nz"]),
            self.i_words.ready.eq(pop),
        ]
        m.d.sync += [stage.eq(self.i_words.payload[:W]), staged.eq(pop_buf)]
        with m.If(pop):
            m.d.sync += [crc.eq(crc16_next(crc, [self.i_words.payload[:W]])), words_left.eq(words_left - 1),
                         st["words_nz"].eq(words_left != 1)]
            with m.If(self.i_words.payload[W]):
                m.d.sync += st["blk_err"].eq(1)
            with m.If(st["own_nz"]):
                m.d.sync += [own_left.eq(own_left - 1), st["own_nz"].eq(own_left != 1)]

        # ---- the decode loop
        win = Signal(WX)               # the window below the fill level (code at the top)
        entry = filler.o_rdata         # the table entry of win's top K bits
        # the bank's long code ends and escape code as registers (from ``bank``, a cycle late: the
        # bank moves in TABLE, and LIMITS decodes nothing)
        lim = {ln: Signal(ln + 1, name=f"lim{ln}") for ln in range(K + 1, L + 1)}
        for ln in lim:
            m.d.sync += lim[ln].eq(Mux(st["bank"], self.i_limit[1][ln], self.i_limit[0][ln])[:ln + 1])
        lt = {K: Const(0, 1)}
        for ln in range(K + 1, L + 1):
            lt[ln] = Signal(name=f"lt{ln}")
            m.d.comb += lt[ln].eq(win[WX - ln:] < lim[ln])
        short = entry.length != 0
        long_len = Signal(5)           # the first long length whose code end is above the window
        m.d.comb += long_len.eq(or_tree([Mux(lt[ln] & ~lt[ln - 1], ln, 0) for ln in range(K + 1, L + 1)]))
        length = Signal(5)
        m.d.comb += length.eq(Mux(st["raw_mode"], 0, Mux(short, entry.length, long_len)))
        invalid = ~st["raw_mode"] & ~short & ~lt[L]
        esc_hit = Signal()
        if E:
            esc_on, mask, code = Signal(), Signal(L), Signal(L)
            m.d.sync += [esc_on.eq(self.i_esc_on.bit_select(st["bank"], 1)),
                         mask.eq(filler.o_esc_mask[st["bank"]]), code.eq(filler.o_esc_code[st["bank"]])]
            m.d.comb += esc_hit.eq(~st["raw_mode"] & esc_on
                                   & ((win[WX - L:] & mask) == code))
        amount = Signal(6)             # bits of this symbol: code, escaped symbol, raw field
        m.d.comb += amount.eq(length + Mux(esc_hit, E, 0) + Mux(st["rsel"], R, 0))

        ready = Signal()
        m.d.comb += ready.eq(Mux(st["rsel"], fill >= L + E + R, fill >= L + E) | (~st["own_nz"] & ~staged))
        can = st["running"] & ~st["zeroing"] & st["nleft_nz"] & space
        step = Signal()
        m.d.comb += step.eq(can & ready)
        emit = Signal()
        m.d.comb += emit.eq(step & ~invalid)
        emit_zero = st["running"] & st["zeroing"] & st["nleft_nz"] & space

        # next buffer, fill and window: the staged word enters at the bottom; the symbol's bits
        # leave at the top of the valid region (past the lane's bits, in the all-in case: none left)
        buf_n = Signal(B)
        m.d.comb += buf_n.eq(Mux(staged, Cat(stage, buf[:B - W]), buf))
        fill_p = Signal(range(B + W + 1))
        m.d.comb += fill_p.eq(fill + Mux(staged, W, 0))
        fill_n = Signal(range(B + 1))
        m.d.comb += fill_n.eq(Mux(step, Mux(fill_p >= amount, fill_p - amount, 0), fill_p))
        m.d.sync += [buf.eq(buf_n), fill.eq(fill_n)]
        nwin = Signal(WX)
        m.d.comb += nwin.eq((Cat(Const(0, WX), buf_n) >> fill_n)[:WX])
        with m.If(st["load"]):
            m.d.comb += nwin.eq(0)
        m.d.sync += win.eq(nwin)
        m.d.comb += filler.i_raddr.eq(Cat(nwin[WX - K:], st["bank"]))

        m.d.sync += [self.o_err_invalid.eq(0), self.o_err_trunc.eq(0), self.o_err_mismatch.eq(0),
                     self.o_err_crc.eq(0)]
        with m.If(emit | emit_zero):
            m.d.sync += [n_left.eq(n_left - 1), st["nleft_nz"].eq(n_left != 1), st["is_first"].eq(0)]
        with m.If(step & invalid):
            m.d.sync += [st["zeroing"].eq(1), st["blk_err"].eq(1)]

        s1 = self._stage1(m, rport, st, d, bits_left, n_left, win, length, short, entry, esc_hit, amount,
                          emit, emit_zero, step, invalid, E, K, WX)
        m.d.sync += inflight.eq(inflight + (emit | emit_zero) - out_take)
        self._stage2(m, rport, queue, s1, item_layout, E)
        self._block_control(m, filler, st, d, n_left, words_left, own_left, bits_left, crc, out_take,
                            head, s1["valid"], fill, staged)
        return m

    def _stage1(self, m, rport, st, d, bits_left, n_left, win, length, short, entry, esc_hit, amount,
                emit, emit_zero, step, invalid, E, K, WX):
        """Registered window and length: the bit-length checks, the symbol index (the table's, or
        code + offset of a long code) and the symbol memory read; the raw field and the escaped
        symbol cut from the window."""
        L, R = self._L, self._R
        s1 = {"valid": Signal(name="s1_valid")}
        s1_layout = data.StructLayout({
            "win": WX, "length": 5, "short": 1, "index": 8, "esc": 1, "cons": 6, "mode": 2, "rsel": 1,
            "ebits": 4, "bank": 1, "zero": 1, "dec": 1, "first": 1, "last": 1})
        s1r = Signal(s1_layout)
        s1["reg"] = s1r
        m.d.sync += [
            s1["valid"].eq(emit | emit_zero),
            s1r.win.eq(win), s1r.length.eq(length), s1r.short.eq(short), s1r.index.eq(entry.index),
            s1r.esc.eq(esc_hit), s1r.cons.eq(amount),
            s1r.mode.eq(d.mode), s1r.rsel.eq(st["rsel"]), s1r.ebits.eq(d.ebits),
            s1r.bank.eq(st["bank"]), s1r.zero.eq(emit_zero), s1r.dec.eq(emit), s1r.first.eq(st["is_first"]),
            s1r.last.eq(n_left == 1),
        ]
        within = Signal()
        exact = Signal()
        m.d.comb += [within.eq(bits_left >= s1r.cons), exact.eq(bits_left == s1r.cons)]
        checked = s1["valid"] & s1r.dec & ~st["late"]
        trunc = Signal()
        fire = Signal()
        m.d.comb += [trunc.eq(checked & ~within), fire.eq(checked & within), self.o_fire.eq(fire)]
        with m.If(fire):
            m.d.sync += bits_left.eq(bits_left - s1r.cons)
        with m.If(trunc):
            m.d.sync += [st["late"].eq(1), st["zeroing"].eq(1), st["blk_err"].eq(1), self.o_err_trunc.eq(1)]
        with m.If(fire & s1r.last & ~exact):
            m.d.sync += [st["blk_err"].eq(1), self.o_err_mismatch.eq(1)]
        with m.If(step & invalid):
            m.d.sync += self.o_err_invalid.eq(~trunc)
        s1["zero"] = s1r.zero | st["late"] | ~within
        # symbol index: the table's, or (a long code) the window's top ``length`` bits + offset
        # (only the low 8 bits of the code and the offset matter: the index is modulo 256 here)
        top = s1r.win[WX - L:]
        code = Signal(8)
        offset = Signal(8)
        longs = range(K + 1, L + 1)
        m.d.comb += [
            code.eq(or_tree([Mux(s1r.length == ln, top[L - ln:L - ln + 8], 0) for ln in longs])),
            offset.eq(or_tree([Mux(s1r.length == ln, Mux(s1r.bank, self.i_offset[1][ln],
                                                          self.i_offset[0][ln]), 0) for ln in longs])),
        ]
        index = Signal(8)
        m.d.comb += index.eq(Mux(s1r.short, s1r.index, code + offset))
        m.d.comb += [rport.addr.eq(Cat(index, s1r.bank)), rport.en.eq(1)]
        # the bits after the code: the escaped symbol, then the raw field
        tail = Signal(WX)
        m.d.comb += tail.eq(s1r.win << s1r.length)
        s1["esym"] = tail[WX - E:] if E else None
        if R:
            raw = tail[WX - R:]
            if E:
                raw = Mux(s1r.esc, tail[WX - E - R:WX - E], raw)
            s1["raw"] = raw
        return s1

    def _stage2(self, m, rport, queue, s1, item_layout, E):
        """Registered symbol read; the value composed into the queue."""
        R = self._R
        s1r = s1["reg"]
        s2_valid = Signal()
        s2 = Signal(data.StructLayout({
            "raw": max(R, 1), "mode": 2, "r": 4, "ebits": 4, "zero": 1, "first": 1, "last": 1,
            "esc": 1, "esym": 8}))
        m.d.sync += [
            s2_valid.eq(s1["valid"]),
            s2.raw.eq(s1["raw"] if R else 0),
            s2.mode.eq(s1r.mode), s2.r.eq(Mux(s1r.rsel, R, 0)), s2.ebits.eq(s1r.ebits),
            s2.zero.eq(s1["zero"]), s2.first.eq(s1r.first), s2.last.eq(s1r.last),
        ]
        if E:
            m.d.sync += [s2.esc.eq(s1r.esc), s2.esym.eq(s1["esym"])]
        sym = Mux(s2.esc, s2.esym, rport.data) if E else rport.data
        value = place_symbol(sym, *compose_parts(m, s2.r == 0, s2.mode, s2.raw, s2.ebits, R), R)
        item = Signal(item_layout)
        m.d.comb += [
            item.value.eq(Mux(s2.zero, 0, value)), item.first.eq(s2.first), item.last.eq(s2.last),
            queue.w_data.eq(item), queue.w_en.eq(s2_valid),
        ]

    def _block_control(self, m, filler, st, d, n_left, words_left, own_left, bits_left, crc, out_take,
                       head, s1_valid, fill, staged):
        """Descriptor, table selection and block end (:func:`~hw.huffman.lane_step.block_control`),
        with "the next table is loaded" meaning built by the filler."""
        next_tab, loaded = lane_step.next_table_loaded(m, filler.o_filled, self.o_tab)
        # the lane_step helpers read a lane's registers as attributes
        regs = SimpleNamespace(**st, d=d, n_left=n_left, words_left=words_left, own_left=own_left,
                               bits_left=bits_left, crc=crc, fill=fill, staged=staged)

        def load(desc, own):
            m.d.comb += st["load"].eq(1)
            m.d.sync += lane_step.load_descriptor(
                regs, desc, nonzero=(desc.n != 0, desc.m != 0, own != 0), own=own,
                after_staged=[st["released"].eq(0)], clear_buf=False)

        lane_step.block_control(m, self, regs, load=load, next_tab=next_tab, loaded=loaded,
                                running=st["running"], stage1_valid=s1_valid, final_err=st["final_err"],
                                released=st["released"], out_last=out_take & head.last)
