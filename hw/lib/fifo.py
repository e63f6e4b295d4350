"""A first-word-fall-through FIFO whose read side starts from registers."""

from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib.fifo import FIFOInterface
from amaranth.lib.memory import Memory
from amaranth.utils import ceil_log2

from ..params import check_bool
from .ram import registered_read_port

__all__ = ["RegisteredFlagFIFO"]


class RegisteredFlagFIFO(FIFOInterface, Elaboratable):
    """:class:`~amaranth.lib.fifo.SyncFIFOBuffered` with the same interface and behaviour (a
    ``depth - 1`` entry memory, which may be a block RAM, and an output register that holds the head,
    so ``r_data`` comes from a register), built so that a late ``r_en`` meets few LUT levels.

    The difference is internal: whether the memory holds a word is a register of its own
    (``inner_nz``, kept with the level), not a compare of the level, and so is ``w_rdy`` (the memory
    is not full); ``r_rdy`` is written every cycle (``inner_nz | (r_rdy & ~r_en)``), not through an
    enable. So ``r_en`` reaches the read enable, the read pointer and ``r_rdy`` through one LUT each,
    and ``w_en`` the write enables through one. (With ``bram`` and more than 16 words the memory has
    the next power of two of words, so that its pointers wrap without a compare; it still holds at
    most ``depth - 1``.) In the Huffman decoder the readers'
    ``r_en`` is their own handshake logic, and the library FIFO's compare, OR and enable behind it
    were the critical paths on the UP5K.

    Cycle behaviour, as the library FIFO's: a word written into an empty FIFO is readable two cycles
    later; with ``r_en`` held, one word per cycle; ``w_rdy`` is ``level < depth`` as the memory
    sees it (``depth - 1`` words in the memory).

    Parameters
    ----------
    width : int
    depth : int
        At least 2.
    bram : bool
        Default False. True: the memory is asked for block RAM (``ram_style``, so that Yosys maps
        even a few entries there instead of flip-flops) and carries ``no_rw_check``, read through
        :func:`hw.lib.ram.registered_read_port` (the same cycle behaviour): the FIFO never reads
        the entry it writes in the same cycle (a read needs a word in the memory, a write room in
        it, and the pointers are equal only when it is empty or full), so Yosys' read/write
        collision logic (an address compare and a bypass register of the width) is dead weight.
        ``collision`` is then a signal that is 1 in a cycle that would read the entry being
        written (for tests: it must stay 0; nothing in the design reads it).

    Raises
    ------
    ValueError
        If ``depth`` is less than 2.
    TypeError
        If ``bram`` is not a bool.
    """

    def __init__(self, *, width, depth, bram=False):
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an integer of at least 2, not {depth!r}")
        super().__init__(width=width, depth=depth)
        self._bram = check_bool("bram", bram)
        if self._bram:
            self.collision = Signal()
        self.w_rdy = Signal(init=1)    # a register here: an empty FIFO is writable out of reset
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform):
        m = Module()
        inner_depth = self.depth - 1
        inner_level = Signal(range(inner_depth + 1))
        inner_nz = Signal()            # inner_level != 0
        attrs = {"ram_style": "block", "no_rw_check": 1} if self._bram else None
        # In block RAM a memory of more than 16 words has the next power of two of words (a block
        # RAM's depth is one anyway), so the pointers wrap by themselves instead of through a
        # compare with the last address (a LUT per bit and the compare's); the level still stops at
        # inner_depth words. (Narrower pointers wrap within a LUT each, and an incrementer would
        # take a carry chain.)
        mem_depth = 1 << ceil_log2(inner_depth) if self._bram and inner_depth > 16 else inner_depth
        storage = Memory(shape=self.width, depth=mem_depth, init=[], attrs=attrs)
        m.submodules.storage = storage
        w_port = storage.write_port()
        if self._bram:
            r_port = registered_read_port(m, storage, name="storage_rd")
        else:
            r_port = storage.read_port(domain="sync")
        produce = Signal(range(mem_depth))
        consume = Signal(range(mem_depth))

        do_write = Signal()
        do_inner_read = Signal()
        m.d.comb += [
            do_write.eq(self.w_rdy & self.w_en),
            do_inner_read.eq(inner_nz & (~self.r_rdy | self.r_en)),
            w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(do_write),
            r_port.addr.eq(consume), r_port.en.eq(do_inner_read), self.r_data.eq(r_port.data),
            self.level.eq(inner_level + self.r_rdy),
            self.w_level.eq(self.level), self.r_level.eq(self.level),
        ]

        if self._bram:
            m.d.comb += self.collision.eq(do_write & do_inner_read & (produce == consume))

        def incr(ptr):
            if mem_depth & (mem_depth - 1) == 0:      # a power of two: the pointer wraps by itself
                return ptr + 1
            return Mux(ptr == mem_depth - 1, 0, ptr + 1)

        with m.If(do_write):
            m.d.sync += produce.eq(incr(produce))
        with m.If(do_inner_read):
            m.d.sync += consume.eq(incr(consume))
        m.d.sync += [
            inner_level.eq(inner_level + do_write - do_inner_read),
            # non-zero after this cycle: a write, two or more words, or one word that stays
            inner_nz.eq(do_write | (inner_level > 1) | (inner_nz & self.r_rdy & ~self.r_en)),
            # the memory is not full after this cycle: it was not, or a word leaves, unless a word
            # comes in that fills it
            self.w_rdy.eq(~(((inner_level == inner_depth) | ((inner_level == inner_depth - 1) & do_write))
                            & ~do_inner_read)),
            # the head register holds a word after this cycle: one moves in (the memory has one and
            # the head is free or leaving), or the head stays
            self.r_rdy.eq(inner_nz | (self.r_rdy & ~self.r_en)),
        ]
        return m
