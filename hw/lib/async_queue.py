"""A clock-domain-crossing stream queue whose block-RAM read address is a register."""

from amaranth.hdl import (
    Array,
    Const,
    DomainRenamer,
    Module,
    Mux,
    ResetInserter,
    ResetSignal,
    Shape,
    Signal,
    Value,
)
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import AsyncFFSynchronizer, FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import check_bool, check_int, check_pow2
from .logic import ring_next
from .stream import skid_buffer

__all__ = ["AsyncQueue", "SLICE"]

#: Bits of the read side's word per copy of its slot load flags and head pointer: each copy drives
#: the enables, or the head selects, of this many flip-flops.
SLICE = 64


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
    the memory holds one not yet fetched and the buffer has room for it counting the words in
    flight, decided from registers only (the synchronized write pointer, decoded into a register,
    the fetch pointer, the buffer's count, the in-flight flags). The buffer is a ring: a word
    stays in the slot it arrived in until it leaves, each slot loads only when a word arrives into
    it (load flags registered a cycle ahead, one copy per :data:`SLICE` bits), and the head is
    selected by a slot register (one copy per slice). ``o.ready`` reaches only the head slot
    registers, the buffer's count and the read pointer returned to the writer: no data register's
    enable.

    The memory is in banks of ``bank_depth`` entries (one bank if ``depth`` is not more). Each bank
    has its own copy of the read-address register (one register would fan out to the address pins
    of every block RAM) and its own read-data register, fed by the RAM's data alone; the bank of
    the word is selected from those registers (by a registered bank index) a cycle later, into the
    buffer. A RAM's clock-to-out thus never meets the bank select in one cycle.

    Interface contract: ``i`` in ``w_domain``, ``o`` and the buffer in ``r_domain``; every word
    taken on ``i`` leaves ``o`` once, in order. ``i.ready`` is ``not full`` from registers of
    ``w_domain``; ``o.valid`` is the buffer's count (a register) non-zero, ``o.payload`` its head
    slot, selected by a register (with ``out_skid``: the skid buffer's head, both registers). ``w_level``
    (``w_domain``, a register) counts the words written and not yet taken from ``o`` as the
    writer sees it (never too low: words in the buffer count until they leave
    ``o``); ``0`` means the queue, buffer included, is empty. ``depth`` words in all: the buffer's
    words keep their memory slots until they leave ``o``.

    Cycle behaviour: a word written at a ``w_domain`` edge is seen by the reader after the two-flop
    synchronizer and one decode register (three ``r_domain`` edges), compared with the fetch
    pointer into the ``more`` register at the next, fetched in the cycle after (the bank read at
    its end), in its bank's data register one cycle later and selected into the buffer the cycle
    after (``o.valid`` about seven ``r_domain`` cycles after the write). With
    ``o.ready`` held and words waiting, one word per ``r_domain`` cycle (four registers cover the
    fetch loop: a word taken frees its slot for the fetch decision of the next cycle, whose word
    reaches the buffer two cycles after). A word taken is seen by the writer after the read side's
    Gray register, two-flop synchronizer and decode register.

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
    bank_depth : int
        Entries of a memory bank: a power of two, 4..65536 (default 2048: a bank of 2048 words of
        up to 9 bits is one ECP5 DP16KD, a wider word takes a column of them).
    w_domain, r_domain : str
        The writer's and the reader's clock domains.
    addr_slice : int or None
        Bits of the word per copy of a bank's read-address register (``None``, default: one copy
        per bank). Each bank is then a column of memories this wide, each with its own copy: for
        a wide word in distributed RAM, one address register reached every cell of the word (the
        activations' queue of the 8 x 16 ULX3S board, 256 bits: its address register -> the
        LUT-RAM cells -> the read register, 9.6 ns aimed at 125 MHz, seed 2).
    out_skid : bool
        ``o`` leaves through a two-entry skid buffer (:func:`hw.lib.stream.skid_buffer`, in
        ``r_domain``, emptied with the read side by the write side's reset): ``o.ready`` then
        reaches only the skid buffer's registers, and ``o.payload`` is a register (not the
        selection of the buffer's head slot), whose head moves with the skid's registered ready.
        For a reader whose ready depends on the word it is offered and is far from the queue's
        memory (the GEMM engine's decoder: its
        parser's ready, through the buffer's take, to ``4 x 128`` flip-flop enables was the ULX3S
        decoder domain's worst path). One cycle more latency, still one word per cycle; words in
        the skid buffer keep their memory slots and count in ``w_level`` until they leave ``o``.
    """

    #: Words the read side's buffer holds: the fewest that keep one word per cycle.
    PREFETCH = 4

    def __init__(self, shape, depth, *, bank_depth=2048, w_domain="sync", r_domain="sync", out_skid=False,
                 addr_slice=None):
        self.depth = check_pow2("depth", depth, 4, 65536)
        self.out_skid = check_bool("out_skid", out_skid)
        if addr_slice is not None:
            check_int("addr_slice", addr_slice, 1)
        self.addr_slice = addr_slice
        #: Entries of a memory bank (``depth`` if that is fewer).
        self.bank_depth = min(check_pow2("bank_depth", bank_depth, 4, 65536), depth)
        self._shape, self._w, self._r = shape, w_domain, r_domain
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "w_level": Out(range(depth + 1))})
        bits = depth.bit_length()          # log2(depth) + 1: one bit more than the address
        #: The memory's read address (``r_domain``, a register) and whether a word is fetched this
        #: cycle (from registers only): attributes for the tests.
        self.fetch = Signal(bits, reset_less=True)
        self.fetching = Signal()
        #: The buffer's head moves on this cycle (``r_domain``; with ``out_skid``, into the skid
        #: buffer): an attribute for the tests.
        self.take = Signal()
        #: The read side's buffer, a ring of ``PREFETCH`` word registers (``r_domain``): an
        #: attribute for the tests (a slot changes only when a word arrives into it).
        self.slots = [Signal(Shape.cast(shape).width, name=f"buf{k}", reset_less=True)
                      for k in range(self.PREFETCH)]

    def elaborate(self, platform):
        m = Module()
        W, R, P = self._w, self._r, self.PREFETCH
        bits = len(self.fetch)
        width = Shape.cast(self._shape).width
        low = self.bank_depth.bit_length() - 1         # address bits within a bank
        banks = self.depth >> low

        # The memory in banks of ``bank_depth`` entries: the word at pointer ``p`` is in bank
        # ``p[low:-1]`` at ``p[:low]``.
        # Each bank in columns of ``addr_slice`` bits (one column without it), each a memory of
        # its own: w_ports / r_ports per bank, a list of (port, lo, hi) per column.
        step = self.addr_slice or width
        columns = [(lo, min(lo + step, width)) for lo in range(0, width, step)]
        w_ports, r_ports = [], []
        for k in range(banks):
            w_ports.append([])
            r_ports.append([])
            for c, (lo, hi) in enumerate(columns):
                name = f"bank{k}" if len(columns) == 1 else f"bank{k}_{c}"
                m.submodules[name] = bank = Memory(shape=hi - lo, depth=self.bank_depth, init=[])
                w_ports[k].append((bank.write_port(domain=W), lo, hi))
                r_ports[k].append((bank.read_port(domain=R), lo, hi))

        # Write side, as the library FIFO's: binary and Gray pointers, full from registers.
        produce, produce_gry = Signal(bits), Signal(bits)
        taken_w_gry, taken_w = Signal(bits), Signal(bits)
        full, do_write = Signal(), Signal()
        m.d.comb += [
            full.eq((produce_gry[-1] != taken_w_gry[-1]) & (produce_gry[-2] != taken_w_gry[-2])
                    & (produce_gry[:-2] == taken_w_gry[:-2])),
            do_write.eq(self.i.valid & ~full), self.i.ready.eq(~full),
        ]
        for k, bank_ports in enumerate(w_ports):
            for w_port, lo, hi in bank_ports:
                part = self.i.payload if hi - lo == width else Value.cast(self.i.payload)[lo:hi]
                m.d.comb += [w_port.addr.eq(produce[:low]), w_port.data.eq(part),
                             w_port.en.eq(do_write & (produce[low:-1] == k))]
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
        # A word fetched in cycle t is read from its bank at the end of t, in the bank's data
        # register at the end of t + 1 (``read``: r_ports' data are words) and selected into the
        # buffer at the end of t + 2 (``arriving``: the bank data registers hold a word).
        read, arriving = Signal(reset_less=True), Signal(reset_less=True)
        read_bank = Signal(range(banks), reset_less=True)       # the bank of the word read
        arriving_bank = Signal(range(banks), reset_less=True)   # and of the word arriving
        buf = self.slots
        r_rst = Signal()
        m.submodules.rst_cdc = AsyncFFSynchronizer(ResetSignal(W, allow_reset_less=True), r_rst,
                                                   o_domain=R)

        fetch, fetching, take = self.fetch, self.fetching, self.take
        fetch_next = Signal(bits)
        # ``fetch + 1`` and "the memory holds a word not yet fetched" as registers: the next fetch
        # address is a select of two registers, with no adder or pointer compare in front of the
        # address copies (fetch -> compare -> carry chain -> the copies of a 256-bit queue:
        # 9.80 ns, the 8 x 16 board aimed at 125 MHz, seed 2). ``more`` compares with the
        # previous cycle's ``written`` (a word is fetched a cycle later than it could be; the
        # write pointer only moves on, so a stale one never fetches a word not written).
        # Neither the fetch decision nor the address copies see the read side's reset: every
        # register the decision drives is set by that reset, which also clears ``more``, so the
        # first cycle after it fetches nothing and the copies take ``fetch`` (the reset's value).
        # ``fetch_p1`` is ``fetch + 1`` after every cycle but a reset's, which leaves it alone (its
        # reset value, the decoded write pointer plus one, was the Gray decode and a carry chain
        # in front of it: 9.26 ns, the 8 x 16 board aimed at 125 MHz, seed 2): the first cycle
        # after the reset fetches nothing and sets it.
        fetch_p1 = Signal(bits, reset_less=True)
        more = Signal(reset_less=True)
        head_valid, leave = Signal(), Signal()   # the head slot holds a word; a word leaves ``o``
        head = Signal(width)                     # the head slot's word (a selection, below)
        loads, head_slots = [], []
        m.d.comb += [
            fetching.eq(more & (count + read + arriving < P)),
            fetch_next.eq(Mux(fetching, fetch_p1, fetch)),
            leave.eq(self.o.valid & self.o.ready),
        ]
        m.d[R] += [fetch_p1.eq(Mux(fetching, fetch_p1 + 1, fetch + 1)),
                   more.eq(Mux(fetching, written != fetch_p1, written != fetch))]
        # Without the skid buffer ``o.valid`` is the head's: low while the read side is in reset.
        # With it, the skid buffer is held empty by that reset (``o.valid`` low), and a word taken
        # into it meanwhile is dropped there, as the buffer's are (``count`` is cleared below): the
        # reset synchronizer need not reach the take, and through it the buffer's load enables
        # (12.66 ns, the `gemm` worst path of the 8 x 16 board at 3b05258, activations' queue).
        # (``count != 0`` as a register of its own: with the skid buffer it is the skid's input
        # valid, in front of its second register's load enables; without, ``o.valid``, which the
        # GEMM engine's activation buffer ANDs into its load enables, 10.45 ns at 100 MHz.)
        count_next = Signal.like(count)
        nonempty = Signal(reset_less=True)
        m.d.comb += count_next.eq(count + arriving - take)
        m.d[R] += nonempty.eq(count_next != 0)
        m.d.comb += head_valid.eq(nonempty if self.out_skid else nonempty & ~r_rst)
        if self.out_skid:
            skid = Module()
            # Its second register loads whenever it is free (``free_load``): the reader's ready
            # reaches the first register's enable only.
            skid_ready, skid_valid, skid_word = skid_buffer(skid, "skid", width, head_valid, head,
                                                            self.o.ready, free_load=True)
            m.submodules.skid = DomainRenamer(R)(ResetInserter(r_rst)(skid))
            m.d.comb += [take.eq(head_valid & skid_ready),
                         self.o.valid.eq(skid_valid), self.o.payload.eq(skid_word)]
        else:
            m.d.comb += [take.eq(leave), self.o.valid.eq(head_valid), self.o.payload.eq(head)]
        # Each bank has its own copy of the read address (``keep``: Yosys would merge identical
        # registers back into one, whose fan-out to every block RAM's address pins is the path
        # this avoids) and its own data register, fed by nothing but the RAM's data: the RAM's
        # clock-to-out and the route to that register are all of its path. The bank select
        # (a registered bank index) is in the next cycle, in front of the buffer.
        # With ``addr_slice``, each column of a bank has its own copy.
        data = []
        for k, bank_ports in enumerate(r_ports):
            word = Signal(width, name=f"data{k}", reset_less=True)
            for c, (r_port, lo, hi) in enumerate(bank_ports):
                name = f"addr{k}" if len(bank_ports) == 1 else f"addr{k}_{c}"
                addr = Signal(low, name=name, reset_less=True, attrs={"keep": 1})
                m.d.comb += [r_port.addr.eq(addr), r_port.en.eq(Const(1))]
                target = word if hi - lo == width else word[lo:hi]
                m.d[R] += [addr.eq(fetch_next[:low]), target.eq(r_port.data)]
            data.append(word)
        arriving_word = Signal(width)
        m.d.comb += arriving_word.eq(Array(data)[arriving_bank] if banks > 1 else data[0])
        m.d[R] += [written.eq(produce_r_bin), fetch.eq(fetch_next), read.eq(fetching),
                   arriving.eq(read), read_bank.eq(fetch[low:-1]), arriving_bank.eq(read_bank),
                   taken.eq(taken + leave), taken_gry.eq(_gray(taken)),
                   count.eq(count_next)]
        # The buffer is a ring of P slots, not a shift register: a word stays in the slot it
        # arrived in until it leaves, and the head is selected by a slot pointer. So no slot's
        # load enable depends on the reader's take (with the skid buffer, its registered ready; the
        # take into a shifting buffer enabled all P x width flip-flops: 13.30 ns, 11+ of routing,
        # the `gemm` worst path of the 8 x 16 board at adf563d, the activations' queue). A slot
        # loads when a word arrives into it, decided a cycle ahead (the word read in cycle t
        # arrives at t + 1 into the slot after the words arriving until then) into a register per
        # slot and per slice of SLICE bits (``keep``: one register per slot would drive the
        # enables of the whole word). The take advances only the head pointer and its copies,
        # one per slice (each selects its slice of the head word).
        slices = [(lo, min(lo + SLICE, width)) for lo in range(0, width, SLICE)]
        wslot = Signal(range(P), reset_less=True)      # the slot the next arriving word goes to
        rslot = Signal(range(P), reset_less=True)      # the head's slot
        wslot_next, rslot_next = Signal.like(wslot), Signal.like(rslot)
        m.d.comb += [wslot_next.eq(Mux(arriving, ring_next(wslot, P), wslot)),
                     rslot_next.eq(Mux(take, ring_next(rslot, P), rslot))]
        m.d[R] += [wslot.eq(wslot_next), rslot.eq(rslot_next)]
        for s, (lo, hi) in enumerate(slices):
            head_slot = Signal(range(P), name=f"head_slot{s}", reset_less=True, attrs={"keep": 1})
            m.d[R] += head_slot.eq(rslot_next)
            head_slots.append(head_slot)
            m.d.comb += head[lo:hi].eq(Array(b[lo:hi] for b in buf)[head_slot])
            for k in range(P):
                load = Signal(name=f"load{k}_{s}", reset_less=True, attrs={"keep": 1})
                m.d[R] += load.eq(read & (wslot_next == k))
                with m.If(load):
                    m.d[R] += buf[k][lo:hi].eq(arriving_word[lo:hi])
                loads.append(load)
        with m.If(r_rst):
            m.d[R] += [written.eq(produce_r_bin), fetch.eq(produce_r_bin), taken.eq(produce_r_bin),
                       more.eq(0),
                       taken_gry.eq(produce_r_gry), count.eq(0), nonempty.eq(0), read.eq(0), arriving.eq(0),
                       wslot.eq(0), rslot.eq(0), *(load.eq(0) for load in loads),
                       *(head_slot.eq(0) for head_slot in head_slots)]
        return m
