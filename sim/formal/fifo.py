"""Formal harnesses for :class:`hw.huffman.fifo.RegisteredFlagFIFO` (width 2, depth 4: a 3-word
memory and the head register; the decoder's queues differ only in depth and width)."""

from amaranth.hdl import Assert, Module, Signal
from amaranth.lib.fifo import SyncFIFOBuffered

from hw.huffman.fifo import RegisteredFlagFIFO

from .harness import Harness, internals, mutated
from .runner import Property

__all__ = ["PROPERTIES"]

WIDTH, DEPTH = 2, 4
PARAMS = f"width={WIDTH} depth={DEPTH}"


class _FIFOHarness(Harness):
    """Free ``w_en``, ``w_data`` and ``r_en``, driven into every FIFO :meth:`add_fifo` adds."""

    def __init__(self, fifo_class=RegisteredFlagFIFO):
        super().__init__()
        self.fifo_class = fifo_class
        self.w_en, self.r_en = self.free(1, "w_en"), self.free(1, "r_en")
        self.w_data = self.free(WIDTH, "w_data")

    def add_fifo(self, m, name, fifo):
        """Add ``fifo`` as submodule ``name`` on the free inputs; returns its internal signals."""
        frag, sig = internals(fifo)
        m.submodules[name] = frag
        m.d.comb += [fifo.w_en.eq(self.w_en), fifo.w_data.eq(self.w_data), fifo.r_en.eq(self.r_en)]
        return sig


class FIFOEquivalence(_FIFOHarness):
    """Both FIFOs get the same free ``w_en``, ``w_data`` and ``r_en`` every cycle.

    ``flags``: ``w_rdy``, ``r_rdy`` and ``level`` are equal every cycle (k-induction, with the two
    FIFOs' pointers and memory levels equal and ``inner_nz`` equal to a non-zero memory level as
    the inductive strengthening). ``data``: ``r_data`` is equal whenever ``r_rdy`` (bounded: the
    induction step would start from memories whose words differ, which no reset state reaches)."""

    def __init__(self, *, data, fifo_class=RegisteredFlagFIFO, ref_depth=DEPTH):
        super().__init__(fifo_class)
        self.data = data
        self.ref_depth = ref_depth

    def elaborate(self, platform):
        m = Module()
        self.begin(m)
        dut = self.fifo_class(width=WIDTH, depth=DEPTH)
        ref = SyncFIFOBuffered(width=WIDTH, depth=self.ref_depth)
        dut_sig = self.add_fifo(m, "dut", dut)
        ref_sig = self.add_fifo(m, "ref", ref)
        m.d.comb += [
            Assert(dut.w_rdy == ref.w_rdy),
            Assert(dut.r_rdy == ref.r_rdy),
            Assert(dut.level == ref.level),
        ]
        if self.data:
            with m.If(dut.r_rdy):
                m.d.comb += Assert(dut.r_data == ref.r_data)
        else:
            # inductive strengthening: the same pointers and memory level, and the registered flag
            for name in ("inner_level", "produce", "consume"):
                m.d.comb += Assert(dut_sig[name] == ref_sig[name])
            m.d.comb += Assert(dut_sig["inner_nz"] == (dut_sig["inner_level"] != 0))
        return m


class _OneFIFO(_FIFOHarness):
    """One FIFO on the free inputs; a subclass states its checks in ``check(m, fifo,
    internal_signals)``."""

    def elaborate(self, platform):
        m = Module()
        self.begin(m)
        fifo = self.fifo_class(width=WIDTH, depth=DEPTH)
        self.check(m, fifo, self.add_fifo(m, "fifo", fifo))
        return m


class FIFOBounds(_OneFIFO):
    """No overflow, no underflow: a shadow count of the words taken in (``w_en & w_rdy``) minus those
    read (``r_en & r_rdy``) always equals ``level`` and never exceeds ``depth``; ``r_rdy`` only when a
    word is held, ``w_rdy`` whenever the memory has room."""

    def check(self, m, fifo, sig):
        count = Signal(range(DEPTH + 2), name="count")
        m.d.sync += count.eq(count + (self.w_en & fifo.w_rdy) - (self.r_en & fifo.r_rdy))
        inner = sig["inner_level"]
        m.d.comb += [
            Assert(count == fifo.level),
            Assert(count <= DEPTH),
            Assert(~fifo.r_rdy | (count >= 1)),
            Assert(fifo.w_rdy == (inner < DEPTH - 1)),
            Assert(sig["inner_nz"] == (inner != 0)),
        ]


class FIFOReadStream(_OneFIFO):
    """The read side as a stream (``r_rdy`` valid, ``r_en`` ready): a word offered and not taken
    stays, unchanged, in the next cycle."""

    def check(self, m, fifo, sig):
        held = self.started & self.past(m, fifo.r_rdy & ~fifo.r_en, "held")
        data_before = self.past(m, fifo.r_data, "data_before")
        with m.If(held):
            m.d.comb += [Assert(fifo.r_rdy), Assert(fifo.r_data == data_before)]
        m.d.comb += Assert(sig["inner_nz"] == (sig["inner_level"] != 0))


def _broken_fifo():
    # the memory is taken as empty when it holds one word that stays (a word is lost)
    return mutated("hw.huffman.fifo", "RegisteredFlagFIFO",
                   "(inner_level > 1) | (inner_nz & self.r_rdy & ~self.r_en)", "(inner_level > 1)")


PROPERTIES = [
    Property("fifo.equal_flags", "RegisteredFlagFIFO's w_rdy, r_rdy and level equal SyncFIFOBuffered's "
             "every cycle", lambda: FIFOEquivalence(data=False), "prove", 4, PARAMS,
             mutant=lambda: FIFOEquivalence(data=False, fifo_class=_broken_fifo()),
             mutation="inner_nz update drops 'one word that stays'"),
    Property("fifo.equal_data", "RegisteredFlagFIFO's r_data equals SyncFIFOBuffered's whenever r_rdy",
             lambda: FIFOEquivalence(data=True), "bmc", 16, PARAMS,
             fast=False, mutant=lambda: FIFOEquivalence(data=True, ref_depth=DEPTH + 1),
             mutation="reference FIFO one word deeper"),
    Property("fifo.no_overflow", "level equals words taken minus words read, never above depth; "
             "r_rdy only with a word held", FIFOBounds, "prove", 4, PARAMS,
             mutant=lambda: FIFOBounds(_broken_fifo()),
             mutation="inner_nz update drops 'one word that stays'"),
    Property("fifo.read_stream", "the read side keeps the stream rules: an offered word stays, "
             "unchanged, until r_en", FIFOReadStream, "bmc", 12, PARAMS,
             mutant=lambda: FIFOReadStream(mutated(
                 "hw.huffman.fifo", "RegisteredFlagFIFO",
                 "do_inner_read.eq(inner_nz & (~self.r_rdy | self.r_en))", "do_inner_read.eq(inner_nz)")),
             mutation="memory read while the head waits"),
]
