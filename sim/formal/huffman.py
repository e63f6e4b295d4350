"""Formal harnesses for the Huffman decoder (``max_len=8``, the smallest L).

``huffman.loader_verdict``: :class:`hw.huffman.table_loader.TableLoader` is offered one table whose
words are free (header, count words, symbol words, check word), with at most two symbols so the
table fits the bound; a monitor in the harness computes the verdict of
:func:`hw.huffman.spec.check_table_words` from the words taken (marker, maxlen 1..L, Kraft sum in
wide arithmetic, counts summing to nsyms, symbol words < 256, check word), and the loader's
``o_ok`` must equal it once the table is counted, within 6 cycles of the table's last word. The
count words are unconstrained 16-bit values, so every count vector at L=8 is covered. The CRC-16
step is replaced by a rotate-and-XOR checksum in loader and monitor alike (the solver cannot invert
the CRC quickly; the CRC itself is tested in simulation against the spec's).

``huffman.no_hang``: one lane (:class:`LaneNoHangHarness`): after a block's last word, its last
value leaves within ``HANG_BOUND`` cycles.

``huffman.sticky_errors``: the whole decoder (``lanes=1``, ``fifo_depth=4``): ``o_errors`` sticky
until ``i_clear``. (The stream rules of the decoder's ``o_data`` are not checked on the whole
decoder: its first value needs a loaded table and a block header, deeper than a tractable bound of
the whole decoder; its queues are :class:`~hw.lib.fifo.RegisteredFlagFIFO`, whose read side
keeps the rules by ``fifo.read_stream``.)
"""

from amaranth.hdl import Assert, Assume, Cat, Const, Module, Signal, Value

from hw.huffman import lane_step, spec
from hw.huffman.decoder import HuffmanDecoder
from hw.huffman.lane import LaneDecoder
from hw.huffman.table_loader import TableLoader

from .harness import DutHarness, Harness, Patched, add_stream_rules, mutated
from .runner import Property
from .sticky import StickyHarness

__all__ = ["PROPERTIES"]

L = 8
MAX_SYMS = 2
VERDICT_BOUND = 6
DECODER_PARAMS = dict(max_len=L, lanes=1, raw_bits=8, fifo_depth=4, contexts=1)


def checksum_words(crc, words):
    """The check of the proofs, in :func:`hw.huffman.crc.crc16_next`'s form: each word XORed into
    the register rotated by one bit."""
    crc = Const(crc, 16) if isinstance(crc, int) else crc
    for w in words:
        crc = Cat(crc[15], crc[:15]) ^ w
    return crc


class LoaderVerdictHarness(Harness):
    def __init__(self, loader_class=TableLoader):
        super().__init__()
        self.dut = loader_class(max_len=L)
        self.word = self.free(16, "word")

    def elaborate(self, platform):
        m = Module()
        self.begin(m)
        dut = self.dut
        m.submodules.dut = dut
        m.d.comb += dut.i_permit.eq(1)

        # the table: the free word offered every cycle until the table's words are all taken
        index = Signal(range(2 + L + MAX_SYMS + 1), name="index")
        over = Signal(name="over")
        m.d.comb += [dut.i_table.valid.eq(~over), dut.i_table.payload.data.eq(self.word),
                     dut.i_table.payload.first.eq(index == 0)]
        take = dut.i_table.valid & dut.i_table.ready
        word = self.word

        maxlen = Signal(5, name="spec_maxlen")
        nsyms = Signal(9, name="spec_nsyms")
        code = Signal(24, name="spec_code")
        total = Signal(24, name="spec_total")
        crc = Signal(16, name="spec_crc")
        bad = Signal(name="spec_bad")
        done_at = Signal(range(VERDICT_BOUND + 2), name="cycles_since_last")
        head_maxlen = word[8:13]
        with m.If(index == 0):
            m.d.comb += Assume(word[:8] < MAX_SYMS)
        with m.If(take):
            m.d.sync += [index.eq(index + 1), crc.eq(checksum_words(crc, [word]))]
            last = Signal(name="last_word")
            with m.If(index == 0):
                head_bad = (word[13:16] != spec.TABLE_MARK) | (head_maxlen < 1) | (head_maxlen > L)
                m.d.sync += [maxlen.eq(head_maxlen), nsyms.eq(word[:8] + 1), code.eq(0), total.eq(0),
                             bad.eq(head_bad), crc.eq(checksum_words(spec.CRC_INIT, [word]))]
                m.d.comb += last.eq(head_bad)
            with m.Elif(index <= maxlen):
                length = index           # count word of this code length
                m.d.sync += [code.eq((code + word) << 1), total.eq(total + word)]
                with m.If(code + word > (Const(1, 24) << length)):
                    m.d.sync += bad.eq(1)
            with m.Elif(index <= maxlen + nsyms):
                with m.If(word[8:].any()):
                    m.d.sync += bad.eq(1)
            with m.Else():
                m.d.comb += last.eq(1)
            with m.If(last):
                m.d.sync += over.eq(1)
        ok = Signal(name="spec_ok")
        m.d.comb += ok.eq(~bad & (total == nsyms) & (crc == 0))
        with m.If(over & (done_at <= VERDICT_BOUND)):
            m.d.sync += done_at.eq(done_at + 1)
        # the table is counted within the bound, and then the bank's verdict is the spec's
        with m.If(over & (done_at == VERDICT_BOUND)):
            m.d.comb += Assert(dut.o_count == 1)
        with m.If(dut.o_count == 1):
            m.d.comb += [Assert(over), Assert(dut.o_ok[0] == ok)]
        return m


def _loader(loader_class=TableLoader):
    namespace = loader_class.elaborate.__globals__
    return Patched(lambda: LoaderVerdictHarness(loader_class), [(namespace, "crc16_next", checksum_words)])


def _no_big_count_check():
    # the defect the big-count check fixes: count words of 2**(L+2)k wrap the Kraft arithmetic
    return mutated("hw.huffman.table_loader", "TableLoader", "big_q.eq(need & word[L + 1:].any())",
                   "big_q.eq(0)")


def _decoder():
    return HuffmanDecoder(**DECODER_PARAMS)


PARAMS = " ".join(f"{k}={v}" for k, v in DECODER_PARAMS.items())

PROPERTIES = [
    Property("huffman.loader_verdict", "the table loader accepts a table exactly when the spec's check "
             f"does (any count words, up to {MAX_SYMS} symbols), within {VERDICT_BOUND} cycles of its "
             "last word", _loader, "bmc", 2 + L + MAX_SYMS + VERDICT_BOUND + 2, f"max_len={L}",
             mutant=lambda: _loader(_no_big_count_check()), mutation="count-word range check removed"),
]
PROPERTIES += [
    Property("huffman.sticky_errors", "o_errors bits stay set until i_clear",
             lambda: StickyHarness(_decoder, ["o_errors"], "i_clear"), "prove", 1, PARAMS,
             fast=False, mutant=lambda: StickyHarness(lambda: mutated(
                 "hw.huffman.decoder", "HuffmanDecoder", "self.o_errors.eq(self.o_errors | errs)",
                 "self.o_errors.eq(errs)")(**DECODER_PARAMS), ["o_errors"], "i_clear"),
             mutation="o_errors not OR-ed with itself", mutant_depth=12),
]


MAX_N, MAX_M, HANG_BOUND = 3, 2, 12


class LaneNoHangHarness(DutHarness):
    """One :class:`hw.huffman.lane.LaneDecoder` (L=8, R=8) with a loaded, unchanging table (two
    tables completed, banks' code ends, offsets and verdicts free but constant), a free descriptor
    (``n`` 1..3 symbols, as the format's ``n >= 1``; ``m`` 1..2 words; a bit length within the
    words unless ``skip``, as the block parser guarantees; every other field free) and free words;
    the consumer is always ready. After the block's last word is taken, the block's last value
    (``last``; ``err`` set on any error) leaves within ``HANG_BOUND`` cycles."""

    def __init__(self, lane_class=LaneDecoder):
        super().__init__(lane_class(max_len=L, raw_bits=8))

    def check(self, m, dut):
        add_stream_rules(m, self, dut, asserts=False)
        m.d.comb += [Assume(dut.o_sym.ready), Assume(~dut.i_sym_en), Assume(dut.i_count == 2)]
        for port in (dut.i_limit, dut.i_offset, dut.i_ok):
            value = Value.cast(port)
            before = self.past(m, value)
            with m.If(self.started):
                m.d.comb += Assume(value == before)
        desc = dut.i_desc.payload
        with m.If(dut.i_desc.valid):
            m.d.comb += Assume((desc.n >= 1) & (desc.n <= MAX_N) & (desc.m >= 1) & (desc.m <= MAX_M))
            # the block parser's guarantee: a lane whose bit length overruns its words is skipped
            m.d.comb += Assume(desc.skip | (desc.bitlen <= desc.m * 16))

        stage = Signal(2, name="block_stage")     # 0 no block, 1 words coming, 2 words in, 3 done
        words = Signal(range(MAX_M + 1), name="words_taken")
        m_words = Signal(range(MAX_M + 1), name="block_words")
        waited = Signal(range(HANG_BOUND + 2), name="cycles_after_last_word")
        with m.Switch(stage):
            with m.Case(0):
                with m.If(dut.i_desc.valid & dut.i_desc.ready):
                    m.d.sync += [stage.eq(1), words.eq(0), m_words.eq(desc.m)]
            with m.Case(1):
                with m.If(dut.i_words.valid & dut.i_words.ready):
                    m.d.sync += words.eq(words + 1)
                    with m.If(words + 1 == m_words):
                        m.d.sync += [stage.eq(2), waited.eq(0)]
            with m.Case(2):
                m.d.sync += waited.eq(waited + 1)
                with m.If(dut.o_sym.valid & dut.o_sym.payload.last):
                    m.d.sync += stage.eq(3)
                m.d.comb += Assert(waited <= HANG_BOUND)
        return m


def _lane_stuck_without_raw():
    # The one-cycle lanes' block control lives in lane_step.block_control; the lane calls it through
    # the module, so the mutant is patched in there while the harness is built and elaborated.
    return Patched(LaneNoHangHarness, [(vars(lane_step), "block_control", mutated(
        "hw.huffman.lane_step", "block_control",
        "with m.If(~regs.nleft_nz & ~regs.words_nz & ~stage1_valid):",
        "with m.If(~regs.nleft_nz & ~regs.words_nz & ~stage1_valid & regs.rsel):"))])


PROPERTIES += [
    Property("huffman.no_hang", f"after a block's last word, a lane emits its last value (err set on any "
             f"error) within {HANG_BOUND} cycles", LaneNoHangHarness, "bmc", 22,
             f"lane max_len={L} raw_bits=8, n<={MAX_N}, m<={MAX_M}", fast=False,
             mutant=_lane_stuck_without_raw,
             mutation="a block without raw bits never releases its last value"),
]
