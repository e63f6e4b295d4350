"""A clock-domain-crossing FIFO whose write side is registers only."""

from amaranth.hdl import Cat, Module, Mux, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import AsyncFFSynchronizer, FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import check_bool, check_int, check_pow2
from .async_queue import SLICE, _gray, _ungray

__all__ = ["RegisteredWriteAsyncFIFO"]


class RegisteredWriteAsyncFIFO(wiring.Component):
    """First-in first-out queue of ``depth`` words of ``width`` bits from ``w_domain`` to
    ``r_domain`` (unrelated clocks) whose memory is written from registers only.

    ``amaranth.lib.fifo.AsyncFIFO``'s crossing and read side (Gray-coded pointers through two-flop
    synchronizers; reset only from the write side), with another write side. The library FIFO
    writes its memory with ``w_en & w_rdy``, ``w_rdy`` a compare of the write pointer with the
    synchronized read pointer: that compare reaches the write enable of every memory cell, and for
    a wide word in distributed RAM (the GEMM engine's result rows: about 100 LUT-RAM cells at
    8 x 16) it was the ULX3S ``gemm`` domain's worst path (12.7-13.8 ns, mostly the route to the
    cells). Here a word taken on ``i`` goes into a write register (data loaded every cycle, no
    enable) and into the memory in the next cycle, whose write enable is that register's valid
    flag alone; nothing has to check for room there, because ``i.ready`` is itself a register that
    counts it: "the words in the memory as the writer sees them (``w_level``), the word in the
    write register and the word taken now leave room for one more". The synchronized read pointer
    lags the reader, so the count is never too low. The memory is in slices of
    :data:`~hw.lib.async_queue.SLICE` bits, each written through its own copy of the write address
    and write enable registers (``keep``): one register drove the write address of every cell
    (9.4 ns at 125 MHz for the result rows' 100 cells on the 8 x 16 ULX3S board, docs/boards.md).

    Interface contract: ``i`` in ``w_domain``, ``o`` in ``r_domain``; every word taken on ``i``
    leaves ``o`` once, in order. ``i.ready`` is a register (it does not depend on ``i.valid``).
    ``o`` is the library FIFO's read side: ``o.valid`` is "not empty" (a compare of the read
    pointer with the synchronized write pointer), ``o.payload`` the memory's read data.
    ``w_level`` (``w_domain``, a register) counts the words in the memory not yet read, as the
    writer sees them.

    Cycle behaviour: a word taken on ``i`` at a ``w_domain`` edge is written into the memory at the
    next edge and counted in ``w_level`` from then on (as the library FIFO counts a word from the
    edge after the one that wrote it); the reader sees it after the two-flop synchronizer, as with
    the library FIFO, so one ``w_domain`` cycle later than there. ``i.ready`` falls in the cycle
    after the word that fills the memory is taken. With both sides ready and room, one word per
    cycle; ``i.ready`` stays high with up to ``depth - 2`` words seen in the memory.

    With ``registered_read``, ``o`` is an output register instead: the memory is read
    asynchronously (distributed RAM) at the read pointer's register (one ``keep`` copy per slice),
    and the word loads into ``o.payload`` when the memory holds one and the register is empty or
    taken. The library's read side addresses a synchronous read port with the next pointer,
    ``consume + (o.ready & ~empty)``, so the empty compare, the reader's ready and the increment
    met the RAM's read in one cycle (9.66 ns, the decoder crossing's read side, the ULX3S ``gemm``
    domain's worst path at 95 MHz, docs/boards.md); here the RAM's read starts at a register and
    ends at one. Same order, one word per cycle with ``o.ready`` held, one ``r_domain`` cycle more
    latency; ``o.valid`` is a register. :attr:`r_idle` (``r_domain``) is "nothing to offer, now
    or in the next cycle": the memory empty as the reader sees it and no word in the register
    (without ``registered_read``: ``~o.valid``).

    Reset: the library FIFO's, from ``w_domain`` only (it empties the queue on both sides; the
    read side through an asynchronous-assert, synchronous-release synchronizer). Write nothing in
    the cycles the read side is still in reset: ``i.ready`` is low for one ``w_domain`` cycle
    after the reset only (the read side leaves it three ``r_domain`` cycles after the reset ends).

    Parameters
    ----------
    width : int
        Bits of a word, at least 1.
    depth : int
        A power of two, 4..65536.
    w_domain, r_domain : str
        The writer's and the reader's clock domains.
    registered_read : bool
        ``o`` from an output register, the memory read at a registered pointer (above).
    room_ahead : bool
        Add ``w_room_ahead`` (``w_domain``, a register) for a writer that offers a word only in
        a cycle after one with ``w_room_ahead`` high: then ``i.ready`` is high whenever it offers
        one. Such a writer registers ``w_room_ahead`` where its ready logic is (as many copies as
        it likes: the GEMM engine's result slices), and ``i.ready`` reaches nothing. Its next
        value is "the words counted after this cycle (as for ``i.ready``) and the word the writer
        may offer in the next cycle (``w_room_ahead`` now) leave room for one more": so the
        memory fills to ``depth`` words, and one word per cycle with room.
    """

    def __init__(self, width, depth, *, w_domain="sync", r_domain="sync", registered_read=False,
                 room_ahead=False):
        self.width = check_int("width", width, 1)
        self.depth = check_pow2("depth", depth, 4, 65536)
        self.registered_read = check_bool("registered_read", registered_read)
        self.room_ahead = check_bool("room_ahead", room_ahead)
        self._w, self._r = w_domain, r_domain
        ahead = {"w_room_ahead": Out(1)} if room_ahead else {}
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width)),
                          "w_level": Out(range(depth + 1)), **ahead})
        #: The memory's write enable (``w_domain``; the write register's valid flag): an
        #: attribute for the tests.
        self.writing = Signal()
        #: Nothing to offer on ``o`` now or in the next cycle (``r_domain``).
        self.r_idle = Signal()

    def elaborate(self, platform):
        m = Module()
        W, R = self._w, self._r
        bits = self.depth.bit_length()         # log2(depth) + 1: one bit more than the address
        slices = [(lo, min(lo + SLICE, self.width)) for lo in range(0, self.width, SLICE)]
        ports = []
        read_domain = "comb" if self.registered_read else R
        for k, (lo, hi) in enumerate(slices):
            name = "storage" if len(slices) == 1 else f"storage{k}"
            m.submodules[name] = storage = Memory(shape=hi - lo, depth=self.depth, init=[])
            ports.append((storage.write_port(domain=W), storage.read_port(domain=read_domain)))

        # Write side: registers only in front of the memory and behind ``i.ready``.
        room = Signal()
        taking, w_valid = Signal(), Signal()
        w_data = Signal(self.width, reset_less=True)
        produce, produce_gry = Signal(bits), Signal(bits)
        consume_w_gry, consume_w = Signal(bits), Signal(bits)
        produce_next = Signal(bits)
        writing = self.writing
        # ``produce + 1`` as a register (``produce_p1``): the next write pointer is a select of
        # two registers, with no carry chain in front of the address copies, the Gray code and
        # ``w_level`` (produce -> the adder -> the result rows' address copies: 8.21 ns, the 8 x 16
        # board aimed at 125 MHz).
        produce_p1 = Signal(bits, init=1)
        m.d.comb += [
            self.i.ready.eq(room), taking.eq(self.i.valid & room),
            writing.eq(w_valid), produce_next.eq(Mux(writing, produce_p1, produce)),
        ]
        m.d[W] += produce_p1.eq(Mux(writing, produce_p1 + 1, produce_p1))
        # Each slice's write address and enable: copies of produce[:-1] and w_valid, loaded with
        # what those load, so equal to them in every cycle (reset with them).
        for k, ((lo, hi), (w_port, _)) in enumerate(zip(slices, ports)):
            w_addr = Signal(bits - 1, name=f"w_addr{k}", attrs={"keep": 1})
            w_en = Signal(name=f"w_en{k}", attrs={"keep": 1})
            m.d[W] += [w_addr.eq(produce_next[:-1]), w_en.eq(taking)]
            m.d.comb += [w_port.data.eq(w_data[lo:hi]), w_port.addr.eq(w_addr), w_port.en.eq(w_en)]
        consume_w_bin, eqs = _ungray(consume_w_gry)
        m.d.comb += eqs
        # ``w_level`` is the memory's words as of this cycle's writes (``produce_next``) less the
        # words read as the writer last saw them; the room after this cycle counts the word in the
        # write register and the one taken now on top of it.
        # The room's next value for either ``taking``, each from registers, picked by it: the
        # writer's valid reaches the room register through one LUT, not through the sum and
        # compare (the GEMM engine's result rows into this FIFO: 10.20 ns, the default ULX3S
        # build's one `gemm` endpoint past the 5 % margin at 95 MHz, seed 1).
        room_if = [self.w_level + w_valid + take < self.depth for take in (0, 1)]
        m.d[W] += [
            w_valid.eq(taking), w_data.eq(self.i.payload),
            produce.eq(produce_next), produce_gry.eq(_gray(produce_next)),
            consume_w.eq(consume_w_bin), self.w_level.eq(produce_next - consume_w),
            room.eq(Mux(taking, room_if[1], room_if[0])),
        ]
        if self.room_ahead:
            # The sum's compare for each count of the words taken now and offered next (0, 1, 2),
            # from registers, then picked by ``taking`` and the room ahead: the rows' valid (from
            # across the array) reaches the register through one LUT, not the sum (8.16-8.60 ns,
            # the 8 x 16 board aimed at 125 MHz).
            ahead = self.w_room_ahead
            fits = [*room_if, self.w_level + w_valid + 2 < self.depth]
            m.d[W] += self.w_room_ahead.eq(
                Mux(taking, Mux(ahead, fits[2], fits[1]), Mux(ahead, fits[1], fits[0])))

        # Read side, as the library FIFO's. Its two pointers are reset only through the write
        # side's reset (a reset of the read side alone would break the Gray code they carry).
        # (``consume_back_gry``: the read pointer the writer sees; ``consume_gry`` but with
        # ``registered_read``.)
        consume, consume_gry = Signal(bits, reset_less=True), Signal(bits, reset_less=True)
        consume_back_gry = Signal(bits, reset_less=True) if self.registered_read else consume_gry
        produce_r_gry = Signal(bits)
        m.submodules.produce_cdc = FFSynchronizer(produce_gry, produce_r_gry, o_domain=R)
        m.submodules.consume_cdc = FFSynchronizer(consume_back_gry, consume_w_gry, o_domain=W)
        empty, consume_next = Signal(), Signal(bits)
        # The read side takes the synchronized write pointer as its own while ``r_rst`` is high.
        # The write pointer is reset at a ``w_domain`` edge within the reset, and reaches the read
        # side two ``r_domain`` edges later; with the library's two stages, ``r_rst`` could end at
        # that same edge (a reset that ends within one ``r_domain`` cycle of that edge) and the
        # read side keep the old pointer, offering a lap of stale words: three stages end it a
        # cycle after the reset pointer has arrived.
        r_rst = Signal()
        m.submodules.rst_cdc = AsyncFFSynchronizer(ResetSignal(W, allow_reset_less=True), r_rst,
                                                   o_domain=R, stages=3)
        m.d.comb += empty.eq((consume_gry == produce_r_gry) | r_rst)
        if self.registered_read:
            # The output register loads the word at ``consume`` when there is one and the
            # register is free or taken now; each slice reads at its own copy of ``consume``.
            load, out_valid = Signal(), Signal(reset_less=True)
            out_data = Signal(self.width, reset_less=True)
            m.d.comb += [
                load.eq(~empty & (~out_valid | self.o.ready)),
                consume_next.eq(consume + load),
                self.o.payload.eq(out_data), self.o.valid.eq(out_valid),
                self.r_idle.eq(empty & ~out_valid),
            ]
            # The writer sees the words taken from ``o`` (``released``): a word in the output
            # register keeps its memory slot and its count in ``w_level`` until it leaves.
            released = Signal(bits, reset_less=True)
            released_next = Signal(bits)
            m.d.comb += released_next.eq(released + (out_valid & self.o.ready))
            m.d[R] += [released.eq(released_next), consume_back_gry.eq(_gray(released_next))]
            r_addrs = []
            for k, (_, r_port) in enumerate(ports):
                r_addr = Signal(bits - 1, name=f"r_addr{k}", attrs={"keep": 1}, reset_less=True)
                r_addrs.append(r_addr)
                m.d[R] += r_addr.eq(consume_next[:-1])
                m.d.comb += r_port.addr.eq(r_addr)
            with m.If(load):
                m.d[R] += [out_data.eq(Cat(r_port.data for _, r_port in ports)), out_valid.eq(1)]
            with m.Elif(self.o.ready):
                m.d[R] += out_valid.eq(0)
        else:
            m.d.comb += [
                consume_next.eq(consume + (self.o.ready & ~empty)),
                self.o.payload.eq(Cat(r_port.data for _, r_port in ports)),
                self.o.valid.eq(~empty), self.r_idle.eq(empty),
            ]
            m.d.comb += [r_port.addr.eq(consume_next[:-1]) for _, r_port in ports]
        m.d[R] += [consume.eq(consume_next), consume_gry.eq(_gray(consume_next))]
        produce_r_bin, eqs = _ungray(produce_r_gry)
        m.d.comb += eqs
        with m.If(r_rst):
            m.d[R] += [consume.eq(produce_r_bin), consume_gry.eq(produce_r_gry)]
            if self.registered_read:
                m.d[R] += [out_valid.eq(0), released.eq(produce_r_bin), consume_back_gry.eq(produce_r_gry),
                           *(a.eq(produce_r_bin[:-1]) for a in r_addrs)]
        return m
