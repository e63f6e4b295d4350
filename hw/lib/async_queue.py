"""A clock-domain-crossing stream queue whose block-RAM read address is a register."""

from amaranth.hdl import Const, Module, ResetSignal, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import AsyncFFSynchronizer, FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import check_pow2

__all__ = ["AsyncQueue"]


def _gray(value):
    return value ^ value[1:]


def _ungray(value):
    """Binary of the Gray code ``value`` (a prefix XOR from the top bit)."""
    bits = [value[-1]]
    for k in reversed(range(len(value) - 1)):
        bits.insert(0, bits[0] ^ value[k])
    out = Signal(len(value))
    return out, [out[k].eq(b) for k, b in enumerate(bits)]


class AsyncQueue(wiring.Component):
    """First-in first-out queue of ``depth`` entries of ``shape`` from ``w_domain`` to ``r_domain``
    (unrelated clocks), whose memory's read address is a register.

    ``amaranth.lib.fifo.AsyncFIFO``'s crossing (Gray-coded pointers through two-flop synchronizers;
    reset only from the write side), with another read side. The library FIFO addresses its memory
    with the next read pointer, ``consume + (r_en & ~empty)``: the synchronized write pointer's
    empty compare and the reader's ready reach the address of every block RAM of the memory in one
    cycle (for a deep, wide memory, RAMs spread over the die). Here the read side fetches ahead into
    a buffer of :data:`PREFETCH` registers: a word is fetched (its address register advanced) when
    the memory holds one not yet fetched and the buffer has room for it counting the word in flight,
    decided from registers only (the synchronized write pointer, decoded into a register, the fetch
    pointer, the buffer's count, the in-flight flag). ``o.ready`` reaches only the buffer's
    registers, its count and the read pointer returned to the writer.

    Interface contract: ``i`` in ``w_domain``, ``o`` and the buffer in ``r_domain``; every word
    taken on ``i`` leaves ``o`` once, in order. ``i.ready`` is ``not full`` from registers of
    ``w_domain``; ``o.valid`` is the buffer's count (a register) non-zero, ``o.payload`` its head
    register. ``w_level`` (``w_domain``, a register) counts the words written and not yet taken
    from ``o`` as the writer sees it (never too low: words in the buffer count until they leave
    ``o``); ``0`` means the queue, buffer included, is empty. ``depth`` words in all: the buffer's
    words keep their memory slots until they leave ``o``.

    Cycle behaviour: a word written at a ``w_domain`` edge is seen by the reader after the two-flop
    synchronizer and one decode register (three ``r_domain`` edges), fetched in the next cycle
    and in the buffer one cycle later (``o.valid`` about five ``r_domain`` cycles after the write).
    With ``o.ready`` held and words waiting, one word per ``r_domain`` cycle (three registers cover
    the fetch loop: a word taken frees its slot for the fetch decision of the next cycle, whose word
    arrives in the cycle after). A word taken is seen by the writer after the read side's Gray
    register, two-flop synchronizer and decode register.

    Reset: as the library FIFO's, from ``w_domain`` only: its reset empties the queue on both sides
    (the read side through an asynchronous-assert, synchronous-release synchronizer, holding
    ``o.valid`` low while it lasts, and taking the synchronized write pointer as its own); write
    nothing until the read side is out of reset (three ``r_domain`` cycles after ``w_domain``'s
    reset ends): a word written while the read side takes the write pointer as its own is lost.
    ``r_domain``'s own reset does not touch the queue.

    Parameters
    ----------
    shape : shape of a word
    depth : int
        A power of two, 4..65536.
    w_domain, r_domain : str
        The writer's and the reader's clock domains.
    """

    #: Words the read side's buffer holds: the fewest that keep one word per cycle.
    PREFETCH = 3

    def __init__(self, shape, depth, *, w_domain="sync", r_domain="sync"):
        self.depth = check_pow2("depth", depth, 4, 65536)
        self._shape, self._w, self._r = shape, w_domain, r_domain
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "w_level": Out(range(depth + 1))})
        bits = depth.bit_length()          # log2(depth) + 1: one bit more than the address
        #: The memory's read address (``r_domain``, a register) and whether a word is fetched this
        #: cycle (from registers only): attributes for the tests.
        self.fetch = Signal(bits, reset_less=True)
        self.fetching = Signal()

    def elaborate(self, platform):
        m = Module()
        W, R, P = self._w, self._r, self.PREFETCH
        bits = len(self.fetch)
        width = Shape.cast(self._shape).width
        m.submodules.storage = storage = Memory(shape=width, depth=self.depth, init=[])
        w_port = storage.write_port(domain=W)
        r_port = storage.read_port(domain=R)

        # Write side, as the library FIFO's: binary and Gray pointers, full from registers.
        produce, produce_gry = Signal(bits), Signal(bits)
        taken_w_gry, taken_w = Signal(bits), Signal(bits)
        full, do_write = Signal(), Signal()
        m.d.comb += [
            full.eq((produce_gry[-1] != taken_w_gry[-1]) & (produce_gry[-2] != taken_w_gry[-2])
                    & (produce_gry[:-2] == taken_w_gry[:-2])),
            do_write.eq(self.i.valid & ~full), self.i.ready.eq(~full),
            w_port.addr.eq(produce[:-1]), w_port.data.eq(self.i.payload), w_port.en.eq(do_write),
        ]
        produce_next = Signal(bits)
        m.d.comb += produce_next.eq(produce + do_write)
        m.d[W] += [produce.eq(produce_next), produce_gry.eq(_gray(produce_next))]
        taken_w_bin, eqs = _ungray(taken_w_gry)
        m.d.comb += eqs
        m.d[W] += [taken_w.eq(taken_w_bin), self.w_level.eq(produce - taken_w)]

        # Read side. Every register here is reset only from the write side (r_rst), as the library
        # FIFO's read pointer: a reset of the read side alone would drop buffered words whose
        # slots the pointers count as taken.
        produce_r_gry = Signal(bits)
        m.submodules.produce_cdc = FFSynchronizer(produce_gry, produce_r_gry, o_domain=R)
        produce_r_bin, eqs = _ungray(produce_r_gry)
        m.d.comb += eqs
        written = Signal(bits, reset_less=True)        # the write pointer, decoded: a register
        taken, taken_gry = Signal(bits, reset_less=True), Signal(bits, reset_less=True)
        m.submodules.taken_cdc = FFSynchronizer(taken_gry, taken_w_gry, o_domain=W)
        count = Signal(range(P + 1), reset_less=True)   # words in the buffer
        arriving = Signal(reset_less=True)              # fetched last cycle: r_port.data is a word
        buf = [Signal(width, name=f"buf{k}", reset_less=True) for k in range(P)]
        r_rst = Signal()
        m.submodules.rst_cdc = AsyncFFSynchronizer(ResetSignal(W, allow_reset_less=True), r_rst,
                                                   o_domain=R)

        fetch, fetching, take = self.fetch, self.fetching, Signal()
        m.d.comb += [
            fetching.eq((written != fetch) & (count + arriving < P) & ~r_rst),
            r_port.addr.eq(fetch[:-1]), r_port.en.eq(Const(1)),
            self.o.valid.eq((count != 0) & ~r_rst), self.o.payload.eq(buf[0]),
            take.eq(self.o.valid & self.o.ready),
        ]
        m.d[R] += [written.eq(produce_r_bin), fetch.eq(fetch + fetching), arriving.eq(fetching),
                   taken.eq(taken + take), taken_gry.eq(_gray(taken)),
                   count.eq(count + arriving - take)]
        # The buffer shifts towards buf[0] as words leave; an arriving word goes behind the last.
        for k, behind in enumerate(buf[1:] + buf[-1:]):     # (count > P never: the last never shifts)
            with m.If(take & (count > k + 1)):
                m.d[R] += buf[k].eq(behind)
            with m.Elif(arriving & (count - take == k)):
                m.d[R] += buf[k].eq(r_port.data)
        with m.If(r_rst):
            m.d[R] += [written.eq(produce_r_bin), fetch.eq(produce_r_bin), taken.eq(produce_r_bin),
                       taken_gry.eq(produce_r_gry), count.eq(0), arriving.eq(0)]
        return m
