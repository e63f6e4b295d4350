"""iCE40UP5K single-port RAM: ``SB_SPRAM256KA`` (16384 words of 16 bits; the UP5K has four).

* :class:`SPRAMCell`: a behavioural model of one ``SB_SPRAM256KA`` (the ports the designs use), for
  simulators that cannot run the primitive. It follows Yosys' own model (``share/ice40/cells_sim.v``)
  cycle for cycle.
* :class:`SPRAM`: a ``depth`` x ``width`` single-port RAM built from 1 to 4 SPRAMs (side by side for
  width, stacked for depth), with the primitive's nibble write mask and a sticky error flag for an
  address beyond ``depth``.
* :class:`InterleavedSPRAM`: one read port and one write port on two single-port banks (even and odd
  addresses), for pipelines that read one word and write back another in the same cycle.

The primitive, as used here (``STANDBY = SLEEP = 0``, ``POWEROFF = 1``): with ``CHIPSELECT`` high,
``WREN`` low reads ``DATAOUT <= mem[ADDRESS]`` at the clock edge (one cycle of latency, like a block
RAM); ``WREN`` high writes the nibbles of ``DATAIN`` whose ``MASKWREN`` bit is set (bit ``k``:
bits ``4k .. 4k+3``) and leaves ``DATAOUT`` undefined; with ``CHIPSELECT`` low ``DATAOUT`` holds.
The memory's contents at power-up are undefined (the model starts at 0).
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import check_bool, check_int

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "SPRAM_COUNT", "SPRAMCell", "SPRAM", "InterleavedSPRAM",
           "spram_count", "POISON"]

SPRAM_DEPTH = 16384   # words per SB_SPRAM256KA
SPRAM_WIDTH = 16      # bits per word
SPRAM_COUNT = 4       # SB_SPRAM256KA on an iCE40UP5K
ADDR_BITS = 14
#: What the behavioural model's data output shows after a write (the primitive's is undefined), so
#: that a design which uses it fails its bit-exact tests instead of passing by luck.
POISON = 0xDEAD


def spram_count(depth, width):
    """SPRAMs a ``depth`` x ``width`` memory takes: ``ceil(depth / 16384) * ceil(width / 16)``."""
    return -(-depth // SPRAM_DEPTH) * -(-width // SPRAM_WIDTH)


class SPRAMCell(wiring.Component):
    """Behavioural model of one ``SB_SPRAM256KA`` (``STANDBY = SLEEP = 0``, ``POWEROFF = 1``).

    Cycle behaviour (Yosys' ``cells_sim.v``): at a clock edge with ``cs`` high, ``we`` low:
    ``rdata <= mem[addr]``; ``we`` high: the nibbles of ``wdata`` selected by ``mask`` are written
    and ``rdata`` becomes undefined (here :data:`POISON`); with ``cs`` low ``rdata`` holds.

    Members
    -------
    addr : In(14)
    wdata : In(16)
    mask : In(4)
        Nibble write enables (bit ``k``: ``wdata[4k:4k+4]``).
    we, cs : In(1)
    rdata : Out(16)
    """

    addr: In(ADDR_BITS)
    wdata: In(SPRAM_WIDTH)
    mask: In(SPRAM_WIDTH // 4)
    we: In(1)
    cs: In(1)
    rdata: Out(SPRAM_WIDTH)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=SPRAM_WIDTH, depth=SPRAM_DEPTH, init=[])
        wr = mem.write_port(granularity=4)
        rd = mem.read_port()   # holds its data while en is low, as DATAOUT does without CHIPSELECT
        m.d.comb += [
            wr.addr.eq(self.addr), wr.data.eq(self.wdata),
            wr.en.eq(Mux(self.cs & self.we, self.mask, 0)),
            rd.addr.eq(self.addr), rd.en.eq(self.cs & ~self.we),
        ]
        wrote = Signal()   # the last access was a write: the output is undefined
        with m.If(self.cs):
            m.d.sync += wrote.eq(self.we)
        m.d.comb += self.rdata.eq(Mux(wrote, POISON, rd.data))
        return m


def _cell(m, name, primitives, addr, wdata, mask, we, cs):
    """One SPRAM (the primitive or :class:`SPRAMCell`); its 16-bit data output."""
    rdata = Signal(SPRAM_WIDTH, name=f"{name}_rdata")
    if primitives:
        m.submodules[name] = Instance(
            "SB_SPRAM256KA",
            i_ADDRESS=addr, i_DATAIN=wdata, i_MASKWREN=mask, i_WREN=we, i_CHIPSELECT=cs,
            i_CLOCK=ClockSignal(), i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
            o_DATAOUT=rdata,
        )
    else:
        m.submodules[name] = cell = SPRAMCell()
        m.d.comb += [cell.addr.eq(addr), cell.wdata.eq(wdata), cell.mask.eq(mask), cell.we.eq(we),
                     cell.cs.eq(cs), rdata.eq(cell.rdata)]
    return rdata


class SPRAM(wiring.Component):
    """A ``depth`` x ``width`` single-port RAM on iCE40UP5K SPRAMs.

    ``ceil(width / 16)`` SPRAMs side by side times ``ceil(depth / 16384)`` stacked, at most the
    UP5K's 4. One access per cycle, the primitive's: with ``en`` high at a clock edge, ``we`` low
    reads (``rdata`` is ``mem[addr]`` from the next cycle on, until the next access); ``we`` high
    writes the nibbles of ``wdata`` whose ``mask`` bit is set (bit ``k``: bits ``4k .. 4k+3``; a
    byte is two mask bits) and leaves ``rdata`` undefined until the next read. With ``en`` low
    ``rdata`` holds.

    An access with ``addr >= depth`` is not done: ``err`` is set (sticky until ``err_clear``), a
    write changes nothing and a read gives ``rdata = 0``.

    Parameters
    ----------
    depth : int
        Words, 1 to ``16384 * (4 // ceil(width / 16))``.
    width : int
        Bits per word, 1 to 64.
    addr_bits : int or None
        Width of ``addr`` (default: the fewest bits that address ``depth`` words); wider, addresses
        beyond ``depth`` reach the error flag.
    primitives : bool
        ``True``: instantiate ``SB_SPRAM256KA`` (synthesis; simulate with Yosys' ``cells_sim.v``);
        ``False``: :class:`SPRAMCell` behavioural models.

    Members
    -------
    addr : In(addr_bits)
    wdata : In(width)
    mask : In(ceil(width / 4))
    we, en : In(1)
    rdata : Out(width)
    err : Out(1)
    err_clear : In(1)

    Raises
    ------
    ValueError
        If ``width`` or ``depth`` is out of range (the message names the parameter and its range),
        or ``addr_bits`` cannot address ``depth`` words.
    """

    def __init__(self, depth, width=SPRAM_WIDTH, *, addr_bits=None, primitives=True):
        check_int("width", width, 1, SPRAM_COUNT * SPRAM_WIDTH)
        cols = -(-width // SPRAM_WIDTH)
        check_int(f"depth (width={width}: {cols} SPRAM(s) per word)", depth, 1,
                  SPRAM_DEPTH * (SPRAM_COUNT // cols))
        need = max(1, (depth - 1).bit_length())
        if addr_bits is None:
            addr_bits = need
        check_int(f"addr_bits (depth={depth})", addr_bits, need, 32)
        self.depth, self.width, self.addr_bits = depth, width, addr_bits
        self.cols, self.rows = cols, -(-depth // SPRAM_DEPTH)
        self._primitives = check_bool("primitives", primitives)
        super().__init__({
            "addr": In(addr_bits), "wdata": In(width), "mask": In(-(-width // 4)),
            "we": In(1), "en": In(1), "rdata": Out(width), "err": Out(1), "err_clear": In(1),
        })

    @property
    def count(self):
        """SPRAMs this memory takes."""
        return self.cols * self.rows

    def elaborate(self, platform):
        m = Module()
        pad = self.cols * SPRAM_WIDTH
        wdata = Signal(pad)
        mask = Signal(pad // 4)
        m.d.comb += [wdata.eq(self.wdata), mask.eq(self.mask)]
        if (1 << self.addr_bits) > self.depth:
            bad = self.addr >= self.depth
        else:
            bad = Const(0)
        go = self.en & ~bad
        addr = Signal(ADDR_BITS)
        m.d.comb += addr.eq(self.addr[:ADDR_BITS])
        row = self.addr[ADDR_BITS:] if self.rows > 1 else Const(0)
        # Which row the last read came from, and whether it was refused (it then reads as 0).
        rd_row = Signal(range(max(2, self.rows)))
        rd_bad = Signal()
        with m.If(self.en & ~self.we):
            m.d.sync += [rd_row.eq(row), rd_bad.eq(bad)]
        with m.If(self.err_clear):
            m.d.sync += self.err.eq(0)
        with m.If(self.en & bad):
            m.d.sync += self.err.eq(1)
        row_data = []
        for r in range(self.rows):
            cs = go & (row == r) if self.rows > 1 else go
            words = [_cell(m, f"spram_{r}_{c}", self._primitives, addr,
                           wdata[SPRAM_WIDTH * c: SPRAM_WIDTH * (c + 1)], mask[4 * c: 4 * (c + 1)],
                           self.we, cs)
                     for c in range(self.cols)]
            row_data.append(Cat(*words))
        data = row_data[0]
        for r in range(1, self.rows):
            data = Mux(rd_row == r, row_data[r], data)
        m.d.comb += self.rdata.eq(Mux(rd_bad, 0, data[:self.width]))
        return m


class InterleavedSPRAM(wiring.Component):
    """One read and one write port on two :class:`SPRAM` banks: even addresses in one, odd in the other.

    Every cycle the read port reads ``raddr`` (``rdata`` is ``mem[raddr]`` in the next cycle) unless
    the write port writes the same bank in that cycle (``we`` and ``waddr`` of the same parity):
    the write is done and that cycle's read data is undefined (``wbank_busy``, combinational,
    says so). A pipeline whose write-back trails its reads by an odd number of cycles never meets
    it within a run of consecutive addresses. Addresses ``>= depth`` are the caller's to avoid
    (no error flag: a pipeline that reads every cycle reads don't-care addresses too).

    Parameters
    ----------
    depth : int
        Words (both banks), 2 to 65536 (each bank ``ceil(depth / 2)`` words, at most two SPRAMs).
    width : int
        Bits per word, 1 to 16 (one SPRAM column per bank).
    primitives : bool
        As in :class:`SPRAM`.

    Members
    -------
    raddr, waddr : In(range(depth))
    rdata : Out(width)
    wdata : In(width)
    we : In(1)
    wbank_busy : Out(1)
        ``we`` and ``waddr`` and ``raddr`` have the same parity (this cycle's read is lost).

    Raises
    ------
    ValueError
        If ``depth`` or ``width`` is out of range.
    """

    def __init__(self, depth, width=SPRAM_WIDTH, *, primitives=True):
        check_int("width", width, 1, SPRAM_WIDTH)
        check_int("depth", depth, 2, SPRAM_COUNT * SPRAM_DEPTH)
        self.depth, self.width = depth, width
        self._primitives = check_bool("primitives", primitives)
        self.banks = [SPRAM(-(-depth // 2) if b == 0 else depth // 2, width, primitives=primitives)
                      for b in range(2)]
        bits = max(1, (depth - 1).bit_length())
        super().__init__({
            "raddr": In(bits), "rdata": Out(width), "waddr": In(bits), "wdata": In(width),
            "we": In(1), "wbank_busy": Out(1),
        })

    @property
    def count(self):
        """SPRAMs this memory takes."""
        return sum(b.count for b in self.banks)

    def elaborate(self, platform):
        m = Module()
        rbank = Signal()
        m.d.sync += rbank.eq(self.raddr[0])
        m.d.comb += self.wbank_busy.eq(self.we & (self.waddr[0] == self.raddr[0]))
        for b, bank in enumerate(self.banks):
            m.submodules[f"bank{b}"] = bank
            write = self.we & (self.waddr[0] == b)
            m.d.comb += [
                bank.en.eq(write | (self.raddr[0] == b)),
                bank.we.eq(write),
                bank.addr.eq(Mux(write, self.waddr[1:], self.raddr[1:])),
                bank.wdata.eq(self.wdata),
                bank.mask.eq(-1),
            ]
        m.d.comb += self.rdata.eq(Mux(rbank, self.banks[1].rdata, self.banks[0].rdata))
        return m
