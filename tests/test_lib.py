"""hw/lib: the CRC-16 spec and its gateware, the skid buffer, the one-entry buffer and the queue, the
registered read port (in simulation, and its block RAM mapping on the iCE40)."""

import json
import random

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from boards.toolchain import run_yosys
from hw.lib.crc import crc16, crc16_next, crc16_update
from hw.lib.ram import registered_read_port
from hw.lib.reset import KEEP_REGISTERS
from hw.lib.sections import Shared, elaborate_sections
from hw.lib.stream import HalfRateBuffer, Queue, SkidBuffer
from sim.formal.harness import mutated
from sim.streams import simulate


def test_crc_spec_check_values():
    # Published check values of CRC-16/CCITT-FALSE (init 0xFFFF, poly 0x1021, no reflection/XOR).
    assert crc16(b"123456789", 8) == 0x29B1
    assert crc16(b"", 8) == 0xFFFF


def test_crc_byte_and_word_wide_agree():
    rng = random.Random(1)
    data = bytes(rng.randrange(256) for _ in range(64))
    words = [data[i] << 8 | data[i + 1] for i in range(0, len(data), 2)]
    assert crc16(data, 8) == crc16(words, 16)
    # appending the CRC gives 0 (the stream formats' check)
    assert crc16(words + [crc16(words, 16)], 16) == 0


@pytest.mark.parametrize("width,n_words", [(8, 1), (16, 1), (16, 2), (5, 3)])
def test_crc_gateware_matches_spec(width, n_words):
    m = Module()
    crc = Signal(16)
    words = [Signal(width, name=f"w{i}") for i in range(n_words)]
    out = Signal(16)
    m.d.comb += out.eq(crc16_next(crc, words, width=width))
    rng = random.Random(width * 10 + n_words)
    cases = [(0xFFFF, [0] * n_words), (0, [(1 << width) - 1] * n_words)]
    cases += [(rng.randrange(1 << 16), [rng.randrange(1 << width) for _ in range(n_words)])
              for _ in range(200)]
    bad = []

    async def tb(ctx):
        for c, ws in cases:
            ctx.set(crc, c)
            for s, v in zip(words, ws):
                ctx.set(s, v)
            want = c
            for v in ws:
                want = crc16_update(want, v, width)
            if ctx.get(out) != want:
                bad.append((c, ws))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert not bad


def test_crc_gateware_rejects_bad_width():
    with pytest.raises(TypeError, match="width must be an integer"):
        crc16_next(Signal(16), [Signal(8)], width="8")
    with pytest.raises(ValueError, match="width must be at least 1"):
        crc16_next(Signal(16), [Signal(8)], width=0)


def _run_stream(dut, payloads, *, seed, stall):
    """Payloads through ``dut`` with random stalls on both sides, within a cycle budget (a lost
    payload shows as a short result, not a hang): what came out, in order."""
    rng = random.Random(seed)
    got = []

    async def tb(ctx):
        k = 0
        for _ in range(4 * len(payloads) + 20):
            offer = k < len(payloads) and rng.random() >= stall
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, payloads[k])
            take = rng.random() >= stall
            ctx.set(dut.o.ready, take)
            if offer and ctx.get(dut.i.ready):
                k += 1
            if take and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()

    simulate(dut, tb)
    return got


@pytest.mark.parametrize("make", [lambda: SkidBuffer(8), lambda: SkidBuffer(8, free_load=True),
                                  lambda: HalfRateBuffer(8), lambda: Queue(8, 4), lambda: Queue(8, 1)])
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_streams_keep_every_payload_in_order(make, stall):
    rng = random.Random(7)
    payloads = [rng.randrange(256) for _ in range(150)]
    assert _run_stream(make(), payloads, seed=3, stall=stall) == payloads


async def _ready_with_a_withdrawn_consumer(ctx, dut, cycles, seen):
    """Offer ``cycles`` transfers; in each cycle record ``i.ready`` before and while ``o.ready`` is
    offered, then withdraw it in the same cycle (so nothing leaves)."""
    ctx.set(dut.i.valid, 1)
    for k in range(cycles):
        ctx.set(dut.i.payload, k)
        seen.append(ctx.get(dut.i.ready))
        ctx.set(dut.o.ready, 1)
        seen.append(ctx.get(dut.i.ready))
        ctx.set(dut.o.ready, 0)
        await ctx.tick()


def test_skid_buffer_ready_does_not_follow_the_consumer():
    # The consumer never takes: exactly two entries go in, and i.ready stays low afterwards whatever
    # o.ready does combinationally (it is a register's inverse).
    dut = SkidBuffer(8)
    seen = []

    async def tb(ctx):
        await _ready_with_a_withdrawn_consumer(ctx, dut, 5, seen)

    simulate(dut, tb)
    assert seen == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]


def _skid_trace(dut, seed=11, cycles=400):
    """Random offers (a new payload every cycle, offered or not) and random consumer stalls: per
    cycle ``(i.ready, o.valid, o.payload if valid)``."""
    trace = []

    async def tb(ctx):
        rng = random.Random(seed)
        for _ in range(cycles):
            ctx.set(dut.i.payload, rng.randrange(256))
            ctx.set(dut.i.valid, rng.random() < 0.6)
            ctx.set(dut.o.ready, rng.random() < 0.5)
            valid = ctx.get(dut.o.valid)
            trace.append((ctx.get(dut.i.ready), valid, ctx.get(dut.o.payload) if valid else None))
            await ctx.tick()

    simulate(dut, tb)
    return trace


def test_skid_buffer_free_load_is_cycle_exact():
    """The second entry loaded whenever it is free (``free_load``) gives the same handshakes and
    payloads, cycle for cycle, as loaded only with a transfer that cannot pass."""
    assert _skid_trace(SkidBuffer(8, free_load=True)) == _skid_trace(SkidBuffer(8))


def test_mutant_skid_buffer_loading_its_occupied_second_entry_is_caught():
    """Loading the second entry while it holds a transfer overwrites it: the trace differs."""
    Mutant = mutated("hw.lib.stream", "SkidBuffer", "with m.If(~v1):", "with m.If(1):")
    assert _skid_trace(Mutant(8, free_load=True)) != _skid_trace(SkidBuffer(8))


def test_half_rate_buffer_ready_is_the_entry_free_and_rate_is_half():
    # The consumer's ready never reaches i.ready in its cycle; with the consumer always ready and a
    # producer always offering, one transfer every two cycles.
    dut = HalfRateBuffer(8)
    seen, taken = [], []

    async def tb(ctx):
        await _ready_with_a_withdrawn_consumer(ctx, dut, 3, seen)
        ctx.set(dut.o.ready, 1)
        for cycle in range(20):
            ctx.set(dut.i.payload, 100 + cycle)
            if ctx.get(dut.o.valid):
                taken.append(ctx.get(dut.o.payload))
            await ctx.tick()

    simulate(dut, tb)
    assert seen == [1, 1, 0, 0, 0, 0]      # the first payload held while nobody takes it
    assert taken == [0] + [101 + 2 * j for j in range(9)]


def test_half_rate_buffer_load_copies_are_cycle_exact():
    """The data loaded by a copy of "the entry is free" per slice (``load_slice``, 3 bits of 8: a
    last slice narrower) gives the same handshakes and payloads, cycle for cycle."""
    assert _skid_trace(HalfRateBuffer(8, load_slice=3)) == _skid_trace(HalfRateBuffer(8))
    assert _skid_trace(HalfRateBuffer(8, load_slice=8)) == _skid_trace(HalfRateBuffer(8))


def test_mutant_half_rate_buffer_slice_loading_while_full_is_caught():
    """A slice's copy that loads while the entry holds a transfer overwrites it: the trace differs."""
    Mutant = mutated("hw.lib.stream", "HalfRateBuffer", "m.d.sync += free.eq(~valid_next)",
                     "m.d.sync += free.eq(~valid_next | (k == 1))")
    assert _skid_trace(Mutant(8, load_slice=3)) != _skid_trace(HalfRateBuffer(8))


@pytest.mark.parametrize("load_slice,exc", [(0, ValueError), (True, TypeError), (2.0, TypeError)])
def test_half_rate_buffer_rejects_bad_load_slice(load_slice, exc):
    with pytest.raises(exc, match="load_slice"):
        HalfRateBuffer(8, load_slice=load_slice)


def test_skid_buffer_full_rate():
    dut = SkidBuffer(8)
    cycles = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        taken = 0
        for cycle in range(40):
            ctx.set(dut.i.payload, cycle)
            if ctx.get(dut.o.valid):
                taken += 1
            await ctx.tick()
        cycles.append(taken)

    simulate(dut, tb)
    assert cycles == [39]     # one cycle of latency, then one transfer per cycle


def test_queue_holds_depth_entries():
    dut = Queue(8, 5)
    accepted = []

    async def tb(ctx):
        ctx.set(dut.i.valid, 1)
        n = 0
        for _ in range(12):
            if ctx.get(dut.i.ready):
                n += 1
            await ctx.tick()
        accepted.append(n)

    simulate(dut, tb)
    assert accepted == [5]


def test_queue_checks_depth():
    with pytest.raises(TypeError, match="depth must be an integer"):
        Queue(8, 2.0)
    with pytest.raises(ValueError, match="depth must be at least 1"):
        Queue(8, 0)


def test_sections_share_by_name_in_order():
    order = []

    def first(m, ns):
        a, b = 1, 2
        order.append("first")
        ns.keep(locals(), "a b")

    def second(m, ns):
        order.append(ns.get("b a"))

    m = Module()
    assert elaborate_sections(m, first, second) is m
    assert order == ["first", (2, 1)]
    with pytest.raises(AttributeError):
        Shared().get("missing")


def test_registered_read_port_reads_as_read_port_does():
    # Same memory contents, same writes, same read addresses and enables (with reads of the
    # address being written, and enables low): the registered asynchronous read gives the
    # synchronous read port's data in every cycle.
    m = Module()
    mems = [Memory(shape=8, depth=16, init=range(16), attrs={"no_rw_check": 1}) for _ in range(2)]
    m.submodules.sync_mem, m.submodules.reg_mem = mems
    ref = mems[0].read_port()
    dut = registered_read_port(m, mems[1], name="dut")
    addr, en, wa, wd, we = Signal(4), Signal(), Signal(4), Signal(8), Signal()
    for mem, port in zip(mems, (ref, dut)):
        wr = mem.write_port()
        m.d.comb += [port.addr.eq(addr), port.en.eq(en), wr.addr.eq(wa), wr.data.eq(wd), wr.en.eq(we)]
    rng = random.Random(11)

    async def tb(ctx):
        for _ in range(300):
            a = rng.randrange(16)
            ctx.set(addr, a)
            ctx.set(en, rng.random() < 0.7)
            ctx.set(wa, a if rng.random() < 0.3 else rng.randrange(16))
            ctx.set(wd, rng.randrange(256))
            ctx.set(we, rng.random() < 0.5)
            await ctx.tick()
            assert ctx.get(dut.data) == ctx.get(ref.data)

    simulate(m, tb)


def test_registered_read_port_is_the_block_ram_alone_on_the_ice40(tmp_path):
    # With the library's pre-synthesis step (KEEP_REGISTERS, which holds UNDEFINED_INIT), the port's
    # register merges into the SB_RAM40_4K without logic; without it, Yosys keeps the register's
    # initial value until the first read (a flag flip-flop and an AND per data bit).
    class Top(wiring.Component):
        waddr: In(9)
        wdata: In(8)
        wen: In(1)
        raddr: In(9)
        ren: In(1)
        rdata: Out(8)

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = Memory(shape=8, depth=512, init=[], attrs={"no_rw_check": 1})
            wr = mem.write_port()
            rd = registered_read_port(m, mem, name="rd")
            m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.wen),
                         rd.addr.eq(self.raddr), rd.en.eq(self.ren), self.rdata.eq(rd.data)]
            return m

    (tmp_path / "t.il").write_text(rtlil.convert(Top(), name="top"))

    def cells(steps):
        script = ["read_rtlil t.il", *steps, "synth_ice40 -top top", "tee -q -o stat.json stat -json"]
        run_yosys("\n".join(script) + "\n", log=tmp_path / "yosys.log", cwd=tmp_path)
        return json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]

    assert cells([KEEP_REGISTERS]) == {"SB_RAM40_4K": 1}
    without = cells([])
    assert without["SB_RAM40_4K"] == 1 and without["SB_LUT4"] == 8
