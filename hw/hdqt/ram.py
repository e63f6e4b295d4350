"""Simple dual-port RAM of the HDQT layer: explicit iCE40 block RAMs, or a behavioural model.

Why not :class:`amaranth.lib.memory.Memory` on the iCE40: Amaranth declares every read port's
read-during-write behaviour as defined (old data, Yosys ``COLLISION_X_MASK = 0``), and the iCE40's
``SB_RAM40_4K`` leaves it undefined, so Yosys emulates it around every block RAM (``emulate_read_first``:
the write delayed a cycle through registers, an address comparator and a bypass multiplexer on the
read data). On the UP5K that logic cost logic cells and sat on the layer's critical path (the operand
buffer's read). The HDQT controller never reads a word in the cycle it writes it, so :class:`Ram`
declares that case undefined: with ``ice40=True`` it instantiates ``SB_RAM40_4K`` directly (no
emulation); otherwise it is a ``Memory`` whose read port returns the *complement* of the word read
when the same address was written in the same cycle, so that any reliance on it breaks the
bit-exact tests.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, ClockSignal, Const, Elaboratable, Instance, Module, Mux, Shape, Signal
from amaranth.lib.memory import Memory

from ..params import check_bool, check_int

__all__ = ["Ram", "ice40_tiling"]


def ice40_tiling(width, depth, granularity):
    """``(mode, columns, banks)`` of ``SB_RAM40_4K`` for a ``width`` x ``depth`` RAM with write lanes of
    ``granularity`` bits: mode m is 256<<m words of 16>>m bits; the fewest blocks, then the fewest
    banks (the read multiplexer). Modes 1..3 have no bit mask, so there a column must not span lanes."""
    best = None
    for mode in range(4):
        bits = 16 >> mode
        if mode and granularity % bits and granularity != width:
            continue
        cols = -(-width // bits)
        banks = -(-depth // (256 << mode))
        key = (cols * banks, banks)
        if best is None or key < best[0]:
            best = (key, (mode, cols, banks))
    return best[1]


class Ram(Elaboratable):
    """``depth`` words of ``shape``; one write port (``wr.addr``, ``wr.data``, ``wr.en``: one bit per
    lane of ``granularity`` bits) and ``read_ports`` synchronous read ports (``rd[i].addr``, ``rd[i].en``,
    ``rd[i].data``: the word of the address presented with ``en`` high, held while ``en`` is low).

    Reading the address being written in the same cycle is undefined (see the module docstring).

    Parameters
    ----------
    shape : shape-like
        Word shape (a layout gives ``rd[i].data`` / ``wr.data`` as views).
    depth : int
        Words.
    granularity : int or None
        Write lane width in bits (None: the whole word).
    read_ports : int
        Read ports (each a copy of the RAM on the iCE40).
    ice40 : bool
        Instantiate ``SB_RAM40_4K`` (synthesis for the iCE40) instead of the behavioural model.
    check : bool
        Behavioural model: return the complement on a read during a write of the same address (for
        simulation; False gives a plain ``Memory``, e.g. for ECP5 synthesis, where the check's
        multiplexer would sit behind the block RAM's output).
    """

    def __init__(self, shape, depth, *, granularity=None, read_ports=1, ice40=False, check=True, name="ram"):
        self._shape = shape
        self._width = Shape.cast(shape).width
        self._depth = check_int("depth", depth, 1)
        gran = self._width if granularity is None else granularity
        self._gran = check_int("granularity", gran, 1, self._width)
        if self._width % self._gran:
            raise ValueError(f"granularity must divide the word width {self._width}, not {gran!r}")
        self._nrd = check_int("read_ports", read_ports, 1, 4)
        self._ice40 = check_bool("ice40", ice40)
        self._check = check_bool("check", check)
        self._name = name
        abits = max(1, (depth - 1).bit_length())
        lanes = self._width // self._gran
        self.wr = SimpleNamespace(addr=Signal(abits, name=f"{name}_waddr"),
                                  data=Signal(shape, name=f"{name}_wdata"),
                                  en=Signal(lanes, name=f"{name}_wen"))
        self.rd = [SimpleNamespace(addr=Signal(abits, name=f"{name}_raddr{i}"),
                                   en=Signal(name=f"{name}_ren{i}"),
                                   data=Signal(shape, name=f"{name}_rdata{i}"))
                   for i in range(read_ports)]

    def elaborate(self, platform):
        m = Module()
        if self._ice40:
            for i, rd in enumerate(self.rd):
                self._ice40_copy(m, i, rd)
            return m
        mem = Memory(shape=self._width, depth=self._depth, init=[])
        m.submodules.mem = mem
        wp = mem.write_port(granularity=self._gran)
        w = self.wr
        m.d.comb += [wp.addr.eq(w.addr), wp.data.eq(w.data), wp.en.eq(w.en)]
        for rd in self.rd:
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(rd.addr), rp.en.eq(rd.en)]
            if not self._check:
                m.d.comb += rd.data.eq(rp.data)
                continue
            coll = Signal()
            with m.If(rd.en):
                m.d.sync += coll.eq(w.en.any() & (w.addr == rd.addr))
            m.d.comb += rd.data.eq(Mux(coll, ~rp.data, rp.data))
        return m

    def _ice40_copy(self, m, idx, rd):
        width, gran = self._width, self._gran
        mode, cols, banks = ice40_tiling(width, self._depth, gran)
        bits = 16 >> mode
        # data bit i of a block sits at pin position pos(i) in modes 1..3 (Yosys' SB_RAM40_4K model)
        pos = [i if mode == 0 else (2 * i, 4 * i + 1, 8 * i + 3)[mode - 1] for i in range(bits)]
        wbits = Cat(self.wr.data)
        lbits = 8 + mode   # address bits inside one block
        w_lo, r_lo = self.wr.addr[:lbits], rd.addr[:lbits]
        w_bank, r_bank = self.wr.addr[lbits:], rd.addr[lbits:]
        r_bank_q = Signal(max(1, len(r_bank)), name=f"{self._name}_rbank{idx}")
        if banks > 1:
            with m.If(rd.en):
                m.d.sync += r_bank_q.eq(r_bank)
        bank_out = []
        for b in range(banks):
            col_out = []
            for c in range(cols):
                lo = c * bits
                n = min(bits, width - lo)
                wdata = [Const(0, 1)] * 16
                mask = [Const(1, 1)] * 16
                for i in range(n):
                    wdata[pos[i]] = wbits[lo + i]
                    mask[pos[i]] = ~self.wr.en[(lo + i) // gran]
                if mode == 0:
                    we = Cat(*[self.wr.en[(lo + i) // gran] for i in range(n)]).any()
                else:
                    we = self.wr.en[lo // gran]
                if banks > 1:
                    we = we & (w_bank == b)
                rdata = Signal(16, name=f"{self._name}_r{idx}_b{b}_c{c}")
                m.submodules[f"{self._name}_r{idx}_b{b}_c{c}"] = Instance(
                    "SB_RAM40_4K",
                    p_READ_MODE=mode, p_WRITE_MODE=mode,
                    o_RDATA=rdata,
                    i_RCLK=ClockSignal(), i_RCLKE=rd.en, i_RE=1, i_RADDR=Cat(r_lo, Const(0, 11 - len(r_lo))),
                    i_WCLK=ClockSignal(), i_WCLKE=we, i_WE=1, i_WADDR=Cat(w_lo, Const(0, 11 - len(w_lo))),
                    i_MASK=Cat(*mask) if mode == 0 else Const(0, 16), i_WDATA=Cat(*wdata))
                col_out.append(Cat(*[rdata[pos[i]] for i in range(n)]))
            bank_out.append(Cat(*col_out))
        if banks == 1:
            m.d.comb += rd.data.eq(bank_out[0])
        else:
            with m.Switch(r_bank_q):
                for b in range(banks):
                    with m.Case(b):
                        m.d.comb += rd.data.eq(bank_out[b])
