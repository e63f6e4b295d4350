"""The compact ("table") decode lane with two contexts (C-slow): the first-level table lookup of
:class:`~hw.huffman.lane_table.TableLaneDecoder` in a decode loop cut in two at the table's block
RAM, serving two format lanes alternately (``HuffmanDecoder(impl="table", contexts=2)``)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.hdl._ast import Assign  # (not exported by amaranth.hdl in 0.5: the statement class)
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.logic import or_tree
from ..lib.ram import registered_read_port
from ..lib.sections import elaborate_sections
from ..params import check_bool, check_choice
from . import lane_step, spec
from .block_parser import descriptor_layout
from .lane import lane_members
from .lane_cslow import _QDEPTH, CSlowLaneDecoder
from .lane_table import CompactTableLoader, TableFiller


def wide_table_bits(max_len):
    """Bits ``k`` that index this lane's first-level table: ``min(9, L - 1)``. Its entries are 4
    bits (the length alone), so both banks of ``2**9`` entries are one 1024 x 4 block RAM: one
    long length fewer to compare than :func:`~hw.huffman.lane_table.table_bits` (8), in the same
    block RAM."""
    return min(9, max_len - 1)

__all__ = ["TableCSlowLaneDecoder", "CSlowTableLoader", "window_shift", "ESCAPE_CHECKS", "FILL_STEPS",
           "STAGE1_COMPARES", "WINDOW_COMPARES"]

#: ``TableCSlowLaneDecoder(escape_check=...)``: which part checks that a table's escape is the last
#: symbol of its length.
ESCAPE_CHECKS = ("loader", "filler")
#: ``TableCSlowLaneDecoder(stage1_compare=...)``: stage 1's bit-count compares in stage 1 from the
#: registered count, or in stage A1 registered.
STAGE1_COMPARES = ("late", "a1")
#: ``TableCSlowLaneDecoder(window_compare=...)``: the compares of the window with the bank's
#: registers (the long-code boundary compares, the escape's masked compare) in stage B from the
#: window register, or in stage A from the window as it is cut, registered.
WINDOW_COMPARES = ("b", "a")
#: ``TableCSlowLaneDecoder(fill_step=...)``: stage B's fill after the step from candidates per length
#: or from one subtraction of the decided length, or from candidates per length for each escape choice
#: with the escape chosen last.
FILL_STEPS = ("candidates", "subtract", "escape_last")


class CSlowTableLoader(CompactTableLoader):
    """The table loader of the two-context table lanes: :class:`~hw.huffman.lane_table.CompactTableLoader`
    with the escape's placement check registered (``_registered_placement``: the escape's index
    + 1 kept from its word, "placed" registered in CHECK), so its compares are not on the path
    into the verdict. Same verdicts, in the same cycles; parameters and members as the base, and

    ``placement`` (default True): False leaves the escape's placement check to the lane's filler
    (``TableCSlowLaneDecoder(escape_check="filler")``): the loader then passes a table whose escape
    is not the last symbol of its length (it still fails a second escape).

    ``end_offset`` (default False): True writes ``offset[L + 1]`` too (a cycle more per table; for
    ``TableFiller(end_offset=True)``, which then finds the symbol count as length L's end like every
    other length's; L up to 14: the offsets' address has 4 bits for the length)."""

    _registered_placement = True

    def __init__(self, max_len=16, escape=False, placement=True, end_offset=False):
        self._placement = check_bool("placement", placement)
        self._end_offset = check_bool("end_offset", end_offset)
        if self._end_offset and not (isinstance(max_len, int) and max_len <= 14):
            raise ValueError(f"end_offset: only with max_len up to 14, not {max_len!r}")
        super().__init__(max_len=max_len, escape=escape)
        self._K = wide_table_bits(self._L)

    def _limit_words(self, m, wr, wr_end):
        """For the long lengths ``l`` (``k + 1 .. L``) what the lane's stage B needs, not the code
        end: its low ``l - k`` bits (the end's place within its prefix, ``lim_lo``) and, above them
        from ``k + 2`` on, whether code ends ``l - 1`` and ``l`` lie in the same prefix (their top
        ``k + 1`` bits are equal: ``same``), compared here as the ends are written (in length
        order: the end before is a register) instead of in the lane from both banks' full ends.
        Other lengths: 0 (no reader)."""
        K = self._K
        prev_end = Signal.like(wr_end, name="prev_end")
        with m.If(wr):
            m.d.sync += prev_end.eq(wr_end)
        words = []
        for ln in range(self._L + 1):
            if ln <= K:
                words.append(Const(0, ln + 1))
            elif ln == K + 1:
                words.append(wr_end[:ln - K])
            else:
                words.append(Cat(wr_end[:ln - K], wr_end[ln - K:ln + 1] == prev_end[ln - 1 - K:ln]))
        return words

#: Per-context counters kept in block RAM (see ``TableCSlowLaneDecoder._context_rams``): read only
#: as the current context's (``cur``), written by the logic as ``nxt``.
_RAM_COUNTERS = ("n_left", "words_left", "own_left", "crc")


class _CombWrites:
    """A stand-in for a module ``m`` whose ``d.sync`` statements that assign one of ``targets``
    (``(signal, flag)`` pairs) go to ``m.d.comb`` instead (in the same control-flow context), with
    ``flag.eq(1)`` beside them: the lane's shared block logic (:mod:`~hw.huffman.lane_step`)
    writes a rotating pair's ``nxt`` register with ``m.d.sync``; for a value kept in block RAM
    ``nxt`` is the RAM's write data and ``flag`` its write enable (both combinational, 0 unless
    assigned). Everything else is ``m``'s."""

    def __init__(self, m, targets):
        self._m = m
        self.d = _CombWriteDomains(m, targets)

    def __getattr__(self, name):
        return getattr(self._m, name)


class _CombWriteDomains:
    def __init__(self, m, targets):
        object.__setattr__(self, "_m", m)
        object.__setattr__(self, "_targets", targets)

    def __getattr__(self, name):
        if name == "sync":
            return _SyncSplitter(self._m, self._targets)
        return getattr(self._m.d, name)

    def __setattr__(self, name, value):
        if not isinstance(value, _SyncSplitter):
            setattr(self._m.d, name, value)


class _SyncSplitter:
    def __init__(self, m, targets):
        self._m, self._targets = m, targets

    def __iadd__(self, stmts):
        for stmt in stmts if isinstance(stmts, (list, tuple)) else [stmts]:
            flags = [f for t, f in self._targets if isinstance(stmt, Assign) and stmt.lhs is t]
            if flags:
                self._m.d.comb += [stmt, flags[0].eq(1)]
            else:
                self._m.d.sync += stmt
        return self


def window_shift(x, amount, width):
    """``(x >> amount)[:width]`` as a logarithmic shifter that takes the largest step first (the
    amount's top bit): each level keeps only the bits the levels below it can still reach, so the
    first level is ``width + 2**(n-1) - 1`` multiplexers wide and the last ``width`` (``$shr``
    shifts by the low bit first, every level as wide as the input: about 320 LUTs instead of 230 at
    ``width`` 28, a 6-bit amount). Bits past the top of ``x`` read 0. Combinational."""
    n = len(amount)
    bits = [x[i] for i in range(len(x))]
    for j in reversed(range(n)):
        step = 1 << j
        keep = width + step - 1        # the bits the lower levels (steps < 2**j) can reach
        zero = Const(0, 1)
        bits = [Mux(amount[j], bits[i + step] if i + step < len(bits) else zero,
                    bits[i] if i < len(bits) else zero) for i in range(keep)]
    return Cat(*bits[:width])


def after_less_entry(base, v, after):
    """``after(base - v)`` for ``v`` (``n`` bits, the table's read data; ``base`` signed, wider)
    without a carry chain from ``v``: the low ``n`` bits of the difference and their borrow as
    logic (a LUT or two from ``v`` at ``n`` = 4), and the upper bits and the sign picked by the
    borrow between ``base`` and ``base - 2**n`` (both from registers, beside the table's read).
    ``after`` clamps a signed value at 0 (the fill). Combinational."""
    n = len(v)
    lo, diff, borrow = base[:n], [], Const(0, 1)
    for i in range(n):
        diff.append(lo[i] ^ v[i] ^ borrow)
        borrow = (~lo[i] & v[i]) | (~(lo[i] ^ v[i]) & borrow)
    below = base - (1 << n)                           # one bit wider than base
    upper = Mux(borrow, below[n:], Cat(base[n:], base[-1]))
    return after(Cat(*diff, upper).as_signed())


def _less(a, b):
    """``a < b`` (unsigned, equal widths) as logic, not a carry chain: these compares are 1 to
    ``L - k`` bits wide (3 at L = 12), a LUT or two, where a carry chain costs a route in and out."""
    lt = Const(0, 1)
    for i in range(len(a)):
        lt = (~a[i] & b[i]) | (~(a[i] ^ b[i]) & lt)
    return lt


class TableCSlowLaneDecoder(CSlowLaneDecoder):
    """Decodes two format lanes (contexts 0 and 1) of each block, one symbol per cycle in total, with
    the first-level lookup table of :class:`~hw.huffman.lane_table.TableLaneDecoder`.

    The per-context registers, the word intake, stage 1 (bit-length checks, errors), the symbol
    lookup (code + the length's offset from a block RAM of the lane's own), the output queues and
    the block control are :class:`~hw.huffman.lane_cslow.CSlowLaneDecoder`'s: every per-context
    register is a rotating pair, context ``ph`` is current in a cycle, and a context decodes every
    second cycle. What differs is the decode loop, cut at the table's block RAM:

    * stage A (reads ``x_n``: the context current in the next cycle): the window, the ``L`` bits
      below the fill level of the buffer and the ``E + R`` bits above it (one shifter by
      ``fill``), goes to the window register ``win_q`` and, in the same cycle, the top ``k`` bits
      of its code part with the bank to the table's read address; "may decode" (``step_q``) and
      the fill after the staged word less the block's raw bits (and less the escaped symbol's
      bits: ``fr_q``, ``fre_q``) are registered;
    * stage B (reads ``x``): the code length from the table entry (the read data: the length of
      every code of at most ``k`` bits, and of every prefix of long codes of one length,
      :class:`~hw.huffman.lane_table.TableFiller` ``long_lengths``; at the few *boundary*
      prefixes, a first length and 1 to ``L - k``-bit compares of the window's bits below the
      prefix against registered low bits of the code ends: ``_boundary``), the escape's masked
      compare; the fill after the step is one of candidates computed beside them (per length
      and escape choice, clamped at 0: the lane's last bits), picked by one AND-OR; the staged
      word enters the buffer at the bottom (a 2:1 multiplexer per bit).

    The bits above the fill level are the previous symbol's escaped symbol and raw field: stage 1
    of a symbol runs in the stage B of the context's next window, cut at the fill after that
    symbol, so they are read there at fixed places (``_raw_field``, ``_escaped_symbol``).

    The block RAM's read latency is the cycle between a context's stage A and stage B, which the
    other context's stage B fills. A step's outcome (length, invalid code, escape) is known in
    stage B, where the base class has its stage-A registers (``oh_q``, ``esc_q``, ``invalid_q``,
    ``emit``, ``out_q``): here they are combinational and registered in stage 1's registers,
    except that a value goes out at every step (``out_q`` from registers): an invalid code's is a
    zero. An invalid code is an entry 0 (no window under the prefix is a code) or, at a boundary
    prefix, a window past code end L.

    Tables: the filler (:class:`~hw.huffman.lane_table.TableFiller`) builds each table's
    first-level table after the loader (:class:`~hw.huffman.lane_table.CompactTableLoader`)
    counted it; a context takes a table when it is built (``o_filled``).

    Parameters and members: as :class:`~hw.huffman.lane_cslow.CSlowLaneDecoder` (the table bus of
    :class:`~hw.huffman.lane_table.CompactTableLoader`, with its offset write port), and

    escape_check : str
        ``"loader"`` (default): the loader checks the escape's placement (``i_ok`` is the verdict).
        ``"filler"`` (with ``escape`` only, L up to 14; the loader is
        ``CSlowTableLoader(placement=False, end_offset=True)``, the filler's ``end_offset`` too):
        the filler checks it in its walk (:class:`~hw.huffman.lane_table.TableFiller`
        ``escape_check``), the lane reads the filler's per-bank verdict instead of ``i_ok``, and
        ``o_err_table`` (Out(1)) pulses when a table fails it (as the filler counts it: the
        decoder's ``ERR_TABLE`` then rises a table walk later than the loader's verdict; a lane
        takes a table only once it is built, so no block decodes with it meanwhile).
    fill_step : str
        ``"candidates"`` (default): stage B's fill after the step is picked among fills computed
        beside the length decision (per long length and escape choice). ``"subtract"``: the fill
        less the decided length, once per escape choice (area: two subtractions instead of eight;
        the length decision then comes before the subtraction on stage B's path). ``"escape_last"``
        (with ``escape`` only): the candidates per length, one AND-OR per escape choice, each
        with the raw-mode and no-step choices, and the escape's masked compare picks between the
        two last (one 2:1 multiplexer per fill bit after it, where ``"candidates"`` has it in
        every candidate's select: the compare is three LUT levels from the window register).
        Same fill.
    stage1_compare : str
        Stage 1's checks "the symbol's bits are within the lane's bits left" and "it ends exactly at
        the last bit" (6-bit compares of the bits left with the symbol's bit count): ``"late"``
        (default) in stage 1 from the registered count; ``"a1"``: in stage A1 from the count's
        input, registered (two flip-flops more; the compares leave stage 1's path into the error
        flags). Same verdicts in the same cycles.
    window_compare : str
        The compares of the window with the bank's registers: at a boundary prefix the window's
        ``l - k`` bits below the prefix against the low bits of code end ``l`` (per long length
        ``l``), and the escape's masked compare. ``"b"`` (default): in stage B from the window
        register ``win_q`` and the registered low bits, mask and code. ``"a"``: in stage A from the
        window as the shifter cuts it (``nwin``) and the next context's bank, registered: one
        flip-flop per long length (instead of the low bits' ``1 + .. + (L - k)``) and, with
        ``escape``, one per code bit, "matches the escape's code or lies below its length" (``L``
        instead of the mask's and code's ``2 L``), so stage B's boundary logic and escape compare
        (an AND of flip-flops) start from flip-flops; stage A's path into them is the window
        shifter and a LUT or two. Same lengths and escapes in the same cycles.
    """

    # a table's bank (symbols, offsets, first-level entries) is written only while no context
    # decodes with it: a read of it then is never used, so no read/write collision logic
    _rw_check = False
    # the output queues in block RAM (area: the UP5K's block RAMs are spare, its logic cells not)
    _queue_bram = True
    # stage 1's bit-length checks as two 6-bit compares in stage 1 (not 13 lengths x raw / escape
    # choices of constant compares in stage A1, about 150 LUTs): an equality is two LUT levels, as
    # deep as the OR of the 13 registered terms it replaces
    _checks_in_stage1 = True
    # two-bit table numbers (``count - tab`` is 1 or 2: see the base class): the rotating pair, the
    # ``o_tab`` registers, the "next table loaded" subtraction and the decoder's permit compares
    # shrink from 8 bits
    table_number_bits = 2
    # stage 2 a cycle earlier: no registered copy of the symbol memory's read data and of the
    # stage-2 registers (the block RAM's read data through the escape multiplexer and the value's
    # placement into the queue's block RAM: a few LUT levels)
    _early_stage2 = True

    def __init__(self, max_len=12, raw_bits=8, escape=False, escape_check="loader", fill_step="candidates",
                 stage1_compare="late", window_compare="b"):
        params = lane_step.lane_parameters(max_len, raw_bits, escape)
        self._L, self._R, self._escape, self._E, self._B = params
        self._S = self._L + self._E + self._R                  # largest shift amount
        self._filler_check = check_choice("escape_check", escape_check, ESCAPE_CHECKS) == "filler"
        if self._filler_check and not (self._escape and self._L <= 14):
            raise ValueError("escape_check: 'filler' only with escape=True (no escape to place) and "
                             "max_len up to 14")
        self._fill_step = check_choice("fill_step", fill_step, FILL_STEPS)
        self._subtract = self._fill_step == "subtract"
        if self._fill_step == "escape_last" and not self._escape:
            raise ValueError("fill_step: 'escape_last' only with escape=True (no escape to choose)")
        self._stage1_compare_a1 = check_choice("stage1_compare", stage1_compare, STAGE1_COMPARES) == "a1"
        self._window_a = check_choice("window_compare", window_compare, WINDOW_COMPARES) == "a"
        members = lane_members(self._L, self._R, contexts=2, escape=self._escape)
        if self._filler_check:
            members["o_err_table"] = Out(1)
        wiring.Component.__init__(self, members)
        self._K = wide_table_bits(self._L)
        # the window shifter selects among fill = 0 .. B: a buffer of 2**n - 1 bits (if that still
        # leaves 32 bits of slack beside a symbol) takes a select bit, a multiplexer level, less
        top = (1 << self._B.bit_length() - 1) - 1
        if top >= self._S + 32:
            self._B = top

    def elaborate(self, platform):
        return elaborate_sections(Module(), self._registers, self._context_rams, self._filler,
                                  self._output, self._limits, self._stage_a, self._stage_b, self._intake,
                                  self._stage1, self._lookup, self._block_control,
                                  self._context_ram_writes)

    def _intake(self, m, ns):
        super()._intake(_CombWrites(m, ns.ram_writes), ns)

    def _block_control(self, m, ns):
        super()._block_control(_CombWrites(m, ns.ram_writes), ns)

    def _context_rams(self, m, ns):
        """Per-context values that the logic reads only in the context's own turn (``cur``, never
        ``nxt``) and that change only at known events, in block RAM instead of a rotating pair of
        registers: the staged word (``stage``, written when a word is staged, read in stage B only
        when ``staged``) and the descriptor fields the block still needs (``d.crc``, ``d.mode``,
        ``d.ebits``: written when the context takes its descriptor). Each is a two-entry memory
        (address = context), written in the context's turn (address ``ph``) and read in every
        cycle for the context of the next one (address ``~ph``): its registered read data is the
        current context's value, which is what ``cur.x`` of the pair held (a write reaches the
        context's next turn, two cycles later, as ``nxt.x`` did). A cycle never reads the entry it
        writes, hence no collision logic. The pair's registers, read by nothing then, go.

        The counters ``n_left``, ``words_left``, ``own_left`` and ``crc`` too (read only as
        ``cur``; the block CRC compare reads ``cur``: ``_crc_equal``): one memory written in every
        cycle that changes them (address ``ph``; a write enable per counter, the RAM's bit mask)
        with ``nxt.x``, here a combinational signal that the block logic assigns where it
        assigned the pair's register (``_CombWrites`` in ``_intake`` and ``_block_control``): an
        unchanged counter is not written, so no multiplexer holds it."""
        ph = ns.ph
        self._ctx_mems = {}
        d_layout = data.StructLayout({"crc": 16, "mode": 2, "ebits": 4})
        for name, shape in (("stage", spec.WORD), ("d", d_layout)):
            mem = Memory(shape=shape, depth=2, init=[], attrs={"ram_style": "block", "no_rw_check": 1})
            m.submodules[f"{name}_mem"] = mem
            rport = registered_read_port(m, mem, name=f"{name}_mem_rd")
            m.d.comb += rport.addr.eq(~ph)
            self._ctx_mems[name] = mem.write_port()
            setattr(ns.cur, name, rport.data)
        widths = [len(getattr(ns.cur, name)) for name in _RAM_COUNTERS]
        mem = Memory(shape=sum(widths), depth=2, init=[], attrs={"ram_style": "block", "no_rw_check": 1})
        m.submodules.counters_mem = mem
        rport = registered_read_port(m, mem, name="counters_mem_rd")
        assert len(set(widths)) == 1          # (one write-enable bit per counter)
        wport = mem.write_port(granularity=widths[0])
        m.d.comb += [rport.addr.eq(~ph), wport.addr.eq(ph)]
        writes, at = [], 0
        for k, (name, width) in enumerate(zip(_RAM_COUNTERS, widths)):
            x, x_n = Signal(width, name=f"{name}_ram"), Signal(width, name=f"{name}_ram_n")
            m.d.comb += [x.eq(rport.data[at:at + width]), wport.data[at:at + width].eq(x_n)]
            setattr(ns.cur, name, x)
            setattr(ns.nxt, name, x_n)
            writes.append((x_n, wport.en[k]))
            at += width
        ns.ram_writes = writes

    def _context_ram_writes(self, m, ns):
        """The context RAMs' writes (see ``_context_rams``): a staged word; a taken descriptor."""
        ph, wp = ns.ph, self._ctx_mems
        m.d.comb += [wp["stage"].en.eq(ns.pop_buf), wp["stage"].addr.eq(ph),
                     wp["stage"].data.eq(ns.words[:spec.WORD])]
        desc = Signal(descriptor_layout)          # the current context's (as the block control's)
        m.d.comb += desc.eq(Mux(ph, self.i_desc[1].payload, self.i_desc[0].payload))
        take = self.i_desc[0].ready | self.i_desc[1].ready       # (only the current context's is set)
        m.d.comb += [wp["d"].en.eq(take), wp["d"].addr.eq(ph),
                     wp["d"].data.eq(Cat(desc.crc, desc.mode, desc.ebits))]

    def _crc_equal(self, m, ns):
        # stage B's compare with the descriptor's CRC from its block RAM (the block's end check only)
        eq = Signal()
        m.d.comb += eq.eq(ns.cur.crc == ns.cur.d.crc)
        return eq

    def _filler(self, m, ns):
        """The first-level table builder, fed by the loader's bus."""
        m.submodules.filler = filler = TableFiller(self._L, self._escape, index=False, rw_check=False,
                                                     bits=self._K, long_lengths=True,
                                                     escape_check=self._filler_check,
                                                     end_offset=self._filler_check)
        for name, port in filler.signature.members.items():
            if port.flow is In and name != "i_raddr":
                m.d.comb += getattr(filler, name).eq(getattr(self, name))
        if self._filler_check:
            m.d.comb += self.o_err_table.eq(filler.o_err)
        ns.filler = filler

    def _tables_ok(self, ns):
        return ns.filler.o_ok if self._filler_check else self.i_ok

    def _limits(self, m, ns):
        """What stage B needs of the bank beside the table entry: per long length ``l`` (``k+1 ..
        L``) the low ``l - k`` bits of its code end (``lim_lo``: the end's position within its
        prefix) and whether the code ends of ``l - 1`` and ``l`` lie in the same prefix (``same``:
        their top ``k + 1`` bits are equal); and the escape code. From the next context's bank
        (``bank_n``), registered, so they are flip-flops in stage B. A turn late only after a table
        switch, and that turn is LIMITS, which decodes nothing."""
        L, K, bank = self._L, self._K, ns.nxt.bank
        # (the next context's: stage A's compares read them so, stage B's registered)
        lim_lo_n = {ln: Mux(bank, self.i_limit[1][ln][:ln - K], self.i_limit[0][ln][:ln - K])
                    for ln in range(K + 1, L + 1)}
        lim_lo = {}
        if not self._window_a:
            for ln in lim_lo_n:
                lim_lo[ln] = Signal(ln - K, name=f"lim_lo{ln}")
                m.d.sync += lim_lo[ln].eq(lim_lo_n[ln])

        # (``same`` compared by the loader as it writes the ends: ``CSlowTableLoader``)
        same = {ln: Signal(name=f"same{ln}") for ln in range(K + 2, L + 1)}
        for ln in same:
            m.d.sync += same[ln].eq(Mux(bank, self.i_limit[1][ln][ln - K], self.i_limit[0][ln][ln - K]))
        ns.esc = None
        if self._E:
            esc_on, esc_mask, esc_code = Signal(), Signal(L), Signal(L)
            if self._filler_check:
                # the mask from the escape's length (the filler keeps no mask): ``len`` ones from the top
                esc_len = Mux(bank, ns.filler.o_esc_len[1], ns.filler.o_esc_len[0])
                mask_n = Cat(*(esc_len >= L - i for i in range(L)))
            else:
                mask_n = Mux(bank, ns.filler.o_esc_mask[1], ns.filler.o_esc_mask[0])
            code_n = Mux(bank, ns.filler.o_esc_code[1], ns.filler.o_esc_code[0])
            if self._window_a:
                # (stage A compares the window with the next context's mask and code: ``_stage_a``)
                m.d.sync += esc_on.eq(self.i_esc_on.bit_select(bank, 1))
                ns.esc_n = (mask_n, code_n)
            else:
                m.d.sync += [esc_on.eq(self.i_esc_on.bit_select(bank, 1)),
                             esc_mask.eq(mask_n),
                             esc_code.eq(code_n)]
            ns.esc = (esc_on, esc_mask, esc_code)
        ns.lim_lo, ns.lim_lo_n, ns.same = lim_lo, lim_lo_n, same

    def _stage_a(self, m, ns):
        """Stage A, from the next context's registers: the window into ``win_q`` and the table's
        read address; the step decision and the fill's operands, registered. ``run_q`` and
        ``space_q`` as in the base class."""
        L, R, E, K, W, nxt = self._L, self._R, self._E, self._K, spec.WORD, ns.nxt
        WX = L + E + R
        run_q = Signal()
        run_next = Signal()
        space_q = Signal()
        m.d.sync += [run_q.eq(run_next),
                     space_q.eq(Mux(ns.ph, ns.inflight_next[1], ns.inflight_next[0]) < _QDEPTH)]
        # the window: the L bits below the fill level (missing bits, once all are in, read 0) and
        # the E + R bits above it, the previous symbol's escaped symbol and raw field (stage 1 of
        # that symbol is in this window's stage B: see ``_raw_field``)
        nwin = Signal(WX)
        m.d.comb += nwin.eq(window_shift(Cat(Const(0, L), nxt.buf, Const(0, E + R)), nxt.fill, WX))
        win_q = Signal(WX)
        m.d.sync += win_q.eq(nwin)
        m.d.comb += ns.filler.i_raddr.eq(Cat(nwin[L - K:L], nxt.bank))
        ready_a = lane_step.holds_symbol(nxt.fill, nxt.rsel, L + E, R) | lane_step.all_bits_in(nxt)
        can_a, emit_zero_a = lane_step.decode_turn(nxt, run_q, space_q)
        step_q = Signal()
        emit_zero_q = Signal()
        fill_p = nxt.fill + Mux(nxt.staged, W, 0)
        fill_p_q = Signal(range(self._B + W + 1))
        # the fill less the block's raw bits (fr_q) and less the escaped symbol's too (fre_q): stage
        # B subtracts only the code length
        fr_q = Signal(signed(len(fill_p_q) + 1))
        fre_q = Signal(signed(len(fill_p_q) + 1))
        fr_a = fill_p - Mux(nxt.rsel, R, 0)
        m.d.sync += [step_q.eq(can_a & ready_a), emit_zero_q.eq(emit_zero_a), fill_p_q.eq(fill_p),
                     fr_q.eq(fr_a), fre_q.eq(fr_a - E)]
        # ``window_compare="a"``: per long length, "the window's bits below the prefix are below
        # code end l's low bits", from the window as it is cut and the next context's bank: what
        # stage B would compare from ``win_q`` and ``lim_lo`` a cycle later (both registered from
        # these), so stage B's boundary logic starts from flip-flops
        ns.lo_q = ns.esc_match_q = None
        if self._window_a:
            ns.lo_q = {}
            for ln, lim in ns.lim_lo_n.items():
                ns.lo_q[ln] = Signal(name=f"lo_lt{ln}_q")
                m.d.sync += ns.lo_q[ln].eq(_less(nwin[L - ln:L - K], lim))
            if E:
                # and per code bit, "it matches the escape's code or is below the escape's length"
                # (one LUT with the shifter's last level): stage B's escape compare is an AND of
                # flip-flops
                mask_n, code_n = ns.esc_n
                ns.esc_match_q = Signal(L, name="esc_match_q")
                m.d.sync += ns.esc_match_q.eq(~mask_n | ~(nwin[:L] ^ code_n))
        ns.keep(locals(), "run_q run_next win_q step_q emit_zero_q fill_p_q fr_q fre_q")

    def _stage_b(self, m, ns):
        """Stage B (the current context): the code length from the table entry (or, at a boundary
        prefix, short compares below the prefix), the fill after the step, the staged word into the
        buffer."""
        L, E, K, B, W, cur, nxt = self._L, self._E, self._K, self._B, spec.WORD, ns.cur, ns.nxt
        win, v = ns.win_q[:L], ns.filler.o_rdata.length
        longs = range(K + 1, L + 1)
        direct = Signal()              # every window with this prefix has a code of length v
        m.d.comb += direct.eq((v != 0) & (v <= L))
        length_sel, bad = self._boundary(m, ns, win, v)
        length = Signal(5)
        m.d.comb += length.eq(Mux(cur.raw_mode, 0, Mux(direct, v, or_tree(
            [Mux(length_sel[ln], ln, 0) for ln in longs]))))
        invalid = Signal()
        m.d.comb += invalid.eq(~cur.raw_mode & ((v == 0) | bad))
        esc_hit = Signal()
        if E:
            esc_on, mask, code = ns.esc
            if ns.esc_match_q is not None:
                m.d.comb += esc_hit.eq(~cur.raw_mode & esc_on & ns.esc_match_q.all())
            else:
                m.d.comb += esc_hit.eq(~cur.raw_mode & esc_on & ((win & mask) == code))
        emit = ns.step_q & ~invalid
        # a value goes out at every step, an invalid code's as a zero: the block is zeroed from
        # there on anyway, so the values are those of a turn later's zero; "a value goes out" (the
        # symbol count, the queue credit, stage 1's valid) is then registers only and the long
        # compare reaches none of it. (The invalid code's stage 1 has no length: ``dec`` and
        # ``within`` are 0, so it checks nothing and its value is zero.)
        m.d.comb += [ns.emit.eq(emit), ns.out_q.eq(ns.step_q | ns.emit_zero_q)]
        # the fill after the step per candidate length and escape, each from registers or the
        # table's read data, beside the length decision: the entry's length, each long length (a
        # boundary prefix) and length 0 (raw mode); one AND-OR picks it (an invalid code picks
        # none: the block is zeroed, its words are dropped, the fill is not read again)
        def after(x):                  # clamped at 0: the missing bits of the lane's last symbol
            return Mux(x < 0, 0, x)[:len(nxt.fill)]
        plain = ~cur.raw_mode
        if self._fill_step == "escape_last":
            # per escape choice: the step's fill among the lengths (no raw-mode or escape term in
            # the selects), then raw mode and "no step"; the escape compare (``esc_hit`` is 0 in
            # raw mode) picks between the two last
            fills = []
            for base in (ns.fr_q, ns.fre_q):
                picks = [(direct, after_less_entry(base, v, after))]
                picks += [(length_sel[ln], after(base - ln)) for ln in longs]
                coded = or_tree([Mux(sel, x, 0) for sel, x in picks])
                fills.append(Mux(ns.step_q, Mux(cur.raw_mode, after(ns.fr_q), coded), ns.fill_p_q))
            m.d.sync += nxt.fill.eq(Mux(esc_hit, fills[1], fills[0]))
        else:
            picks = [(cur.raw_mode, after(ns.fr_q))]
            for hit, base in ((~esc_hit, ns.fr_q), (esc_hit, ns.fre_q)) if E else ((Const(1, 1), ns.fr_q),):
                if self._subtract:
                    # (an invalid code's length is 0: its fill is not read again either)
                    picks.append((plain & hit, after(base - length)))
                    continue
                picks.append((plain & direct & hit, after(base - v)))
                picks += [(plain & length_sel[ln] & hit, after(base - ln)) for ln in longs]
            fill_step = or_tree([Mux(sel, x, 0) for sel, x in picks])
            m.d.sync += nxt.fill.eq(Mux(ns.step_q, fill_step, ns.fill_p_q))
        m.d.sync += nxt.buf.eq(Mux(cur.staged, Cat(cur.stage, cur.buf[:B - W]), cur.buf))
        # what stage 1 and the lookup take from the step (the base class's stage-A registers)
        oh = Signal(L + 1)
        m.d.comb += oh.eq(Mux(emit, Cat(*(length == ln for ln in range(L + 1))), 0))
        ns.oh_q, ns.esc_q, ns.invalid_q, ns.length = oh, ns.step_q & esc_hit, invalid, length

    def _boundary(self, m, ns, win, v):
        """At a boundary prefix (entry ``L - k + l0``: its windows start with codes of length
        ``l0`` and longer, or with no code): per long length ``l``, whether the window's code has
        it (``sel[l]``), and ``bad``, whether it has none. Code end ``l`` is above the window if it
        lies past this prefix (not in the prefix of ``l0``'s end: a chain of ``same``) or the
        window's bits below the prefix are below its low bits (``lim_lo``): ``l - k``-bit
        compares from registers."""
        L, K = self._L, self._K
        longs = range(K + 1, L + 1)
        if ns.lo_q is not None:
            lo = ns.lo_q
        else:
            lo = {ln: Signal(name=f"lo_lt{ln}") for ln in longs}
            for ln in longs:
                m.d.comb += lo[ln].eq(_less(win[L - ln:L - K], ns.lim_lo[ln]))
        sel = {ln: [] for ln in longs}
        bad = []
        for l0 in longs:
            at = Signal(name=f"boundary{l0}")
            m.d.comb += at.eq(v == L - K + l0)
            chain = Const(1, 1)        # code ends l0 .. l in one prefix
            below = Const(0, 1)        # the window is below code end l - 1
            for ln in range(l0, L + 1):
                if ln > l0:
                    chain = chain & ns.same[ln]
                lt = ~chain | lo[ln]
                # (length L: any window past code end L - 1; an invalid one as well, which changes
                # nothing: no fill is read after it. So the widest compare only reaches ``bad``.)
                sel[ln].append(at & (lt if ln < L else 1) & ~below)
                below = below | lt
            bad.append(at & ~below)
        length_sel = {}
        for ln in longs:
            length_sel[ln] = Signal(name=f"long_sel{ln}")
            m.d.comb += length_sel[ln].eq(or_tree(sel[ln]))
        return length_sel, or_tree(bad)

    def _stage1_window(self, ns):
        # the code at the top (the escaped symbol and raw field come from the next window)
        return Cat(Const(0, self._E + self._R), ns.win_q[:self._L])

    def _raw_field(self, m, ns):
        # stage 1 of a symbol is the stage B of the context's next window, which was cut at the
        # fill after the symbol: its raw field is the R bits above that fill
        L = self._L
        return ns.win_q[L:L + self._R]

    def _escaped_symbol(self, m, ns):
        # the E bits above the raw field, if the block has one
        L, R, E = self._L, self._R, self._E
        return Mux(ns.cur.s1.rsel, ns.win_q[L + R:L + R + E], ns.win_q[L:L + E])

    def _offset_length(self, ns):
        return ns.length[:4]

    def _tables_in(self, ns):
        return ns.filler.o_filled
