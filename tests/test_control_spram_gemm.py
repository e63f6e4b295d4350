"""SPRAM GEMM group (hw/control/spram_gemm_handler.py) in Amaranth's simulator: compressed blocks
stored in the SPRAM model, decoded by the compact decoder into the MAC array, vs the golden GEMM."""

import random

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.control.protocol import Cmd, Status
from hw.control.spram_gemm_handler import SpramGEMMHandler, _ActMemory
from hw.mac import spec as mac_spec
from sim.control.spram_gemm import beat_bytes, encode_model, layer_symbols
from sim.mac.golden import ref_gemm
from sim.runner import ice40_cell_models, run_cocotb
from sim.streams import simulate

COLS = 2


def _handler(**kw):
    p = {"store_depth": 256, "max_k": 16, "cols": COLS, "max_len": 12, "contexts": 1, "escape": True,
         "fifo_depth": 4, "backend": "ice40", "primitives": False}
    p.update(kw)
    return SpramGEMMHandler(**p)


def _encode_for(h, layers):
    """``encode_model`` of ``layers`` for handler ``h``: its columns, drift bound, contexts and code."""
    return encode_model(layers, cols=h.cols, max_drift=h.max_drift, contexts=h.contexts, max_len=h.max_len,
                        escape=True)


async def _command(ctx, h, cmd, payload, rng, max_cycles=20000):
    """One transaction on the handler bus (payload with random gaps); ``(status, reply)``."""
    bus = h.bus
    ctx.set(bus.cmd, cmd)
    ctx.set(bus.length, len(payload))
    ctx.set(bus.start, 1)
    await ctx.tick()
    ctx.set(bus.start, 0)
    ctx.set(bus.o_data.ready, 1)
    i, reply = 0, bytearray()
    for _ in range(max_cycles):
        offer = i < len(payload) and rng.random() < 0.8
        ctx.set(bus.i_data.valid, offer)
        if offer:
            ctx.set(bus.i_data.payload, payload[i])
        took, out_v, out_b, done, status = ctx.get(bus.i_data.ready), ctx.get(bus.o_data.valid), \
            ctx.get(bus.o_data.payload), ctx.get(bus.done), ctx.get(bus.status)
        await ctx.tick()
        if offer and took:
            i += 1
        if out_v:
            reply.append(out_b)
        if done:
            ctx.set(bus.i_data.valid, 0)
            return status, bytes(reply)
    raise AssertionError(f"command 0x{cmd:02x} did not finish in {max_cycles} cycles")


class _WithReset(Elaboratable):
    """The handler under a reset the testbench drives (the controller's RESET / watchdog reset)."""

    def __init__(self, h):
        self.h, self.rst = h, Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.h = ResetInserter(self.rst)(self.h)
        return m


def _gemm_payload(mode, n_out, x, start, beats):
    return (bytes([mac_spec.MODES[mode]]) + n_out.to_bytes(2, "little") + len(x).to_bytes(2, "little")
            + start.to_bytes(2, "little") + beats.to_bytes(2, "little") + bytes(int(v) & 0xFF for v in x))


def _results(reply):
    return [int.from_bytes(reply[i:i + 4], "little", signed=True) for i in range(0, len(reply), 4)]


def _model(rng):
    """Three layers in three precisions; odd n_out (a partial tile) and k not a multiple of lanes."""
    w8 = rng.normal(0, 30, (5, 12)).round().clip(-128, 127).astype(int)
    w8[0, :4] = [-128, 127, 0, -1]
    w4 = rng.integers(-8, 8, (3, 9))
    w2 = rng.integers(-1, 2, (4, 7))
    return [(w8, "int8"), (w4, "int4"), (w2, "ternary")]


@pytest.mark.parametrize("contexts,lane_dsps", [(1, False), (1, True), (2, False), (2, True)])
def test_spram_gemm_matches_golden(contexts, lane_dsps):
    rng = np.random.default_rng(5 + contexts)
    layers = _model(rng)
    h = _handler(contexts=contexts, lane_dsps=lane_dsps)
    table, blocks, stats = _encode_for(h, layers)
    prng = random.Random(contexts)
    got, want = [], []

    async def tb(ctx):
        table_bytes = b"".join(w.to_bytes(2, "little") for w in table)
        # The table in two frames (a flag byte each; bit 0: a new model).
        half = len(table_bytes) // 4 * 2
        for flag, part in ((1, table_bytes[:half]), (0, table_bytes[half:])):
            st, _ = await _command(ctx, h, Cmd.LOAD_HUFFMAN, bytes([flag]) + part, prng)
            assert st == Status.OK
        starts, at = [], 0
        for b in blocks:                       # one LOAD_WEIGHTS per block, appended
            st, _ = await _command(ctx, h, Cmd.LOAD_WEIGHTS, beat_bytes(b), prng)
            assert st == Status.OK
            starts.append(at)
            at += len(b)
        # Each layer twice (the store keeps the blocks between GEMMs), last layer first.
        for li in (2, 0, 1, 0):
            w, mode = layers[li]
            x = rng.integers(-128, 128, w.shape[1])
            x[:2] = [-128, 127]
            st, reply = await _command(ctx, h, Cmd.GEMM,
                                       _gemm_payload(mode, w.shape[0], x, starts[li], len(blocks[li])), prng)
            assert st == Status.OK, f"layer {li}: status {st}"
            got.append(_results(reply))
            want.append([int(v) for v in ref_gemm(x[None, :], w, mode, acc_width=24)[0][0]])
        assert not ctx.get(h.bus.error)

    simulate(h, tb)
    assert stats["code_bits"] < 8 * stats["symbols"]
    assert got == want


@pytest.mark.parametrize("contexts", [1, 2])
def test_spram_gemm_one_beat_tiles(contexts):
    """Tiles of one beat (k <= lanes) back to back, many tiles per GEMV: each tile's array command
    is issued as its previous tile's last beat is gathered, and no tile waits for one."""
    rng = np.random.default_rng(21)
    layers = [(rng.integers(-128, 128, (7, 1)), "int8"), (rng.integers(-1, 2, (10, 3)), "ternary"),
              (rng.integers(-8, 8, (5, 2)), "int4"), (rng.integers(-2, 2, (9, 4)), "int2")]
    h = _handler(contexts=contexts, lane_dsps=True)
    table, blocks, _ = _encode_for(h, layers)
    prng = random.Random(contexts)
    got, want = [], []

    async def tb(ctx):
        st, _ = await _command(ctx, h, Cmd.LOAD_HUFFMAN,
                               bytes([1]) + b"".join(w.to_bytes(2, "little") for w in table), prng)
        assert st == Status.OK
        starts, at = [], 0
        for b in blocks:
            st, _ = await _command(ctx, h, Cmd.LOAD_WEIGHTS, beat_bytes(b), prng)
            assert st == Status.OK
            starts.append(at)
            at += len(b)
        for li, (w, mode) in enumerate(layers):
            x = rng.integers(-128, 128, w.shape[1])
            st, reply = await _command(ctx, h, Cmd.GEMM,
                                       _gemm_payload(mode, w.shape[0], x, starts[li], len(blocks[li])), prng)
            assert st == Status.OK, f"layer {li}: status {st}"
            got.append(_results(reply))
            want.append([int(v) for v in ref_gemm(x[None, :], w, mode, acc_width=24)[0][0]])

    simulate(h, tb)
    assert got == want


@pytest.mark.parametrize("mode", list(mac_spec.MODES))
def test_layer_symbols_order(mode):
    """A block's symbols, read back by the handler's documented order (per tile of ``cols``
    outputs, per beat, the tile's ``cols`` bytes) with :func:`hw.mac.spec.unpack_weight_byte`,
    give the layer's weights zero-padded to whole tiles and beats, for ``k`` not a multiple of
    the lanes and ``n_out`` not a multiple of ``cols`` too."""
    rng = np.random.default_rng(11)
    lo, hi = mac_spec.WEIGHT_RANGE[mac_spec.mode_code(mode)]
    n = mac_spec.lanes(mode)
    for n_out, k, cols in ((5, 7, 2), (8, 4, 4), (1, 1, 4), (6, 13, 3)):
        w = rng.integers(lo, hi + 1, (n_out, k))
        syms = iter(layer_symbols(w, mode, cols))
        tiles, beats = -(-n_out // cols), -(-k // n)
        back = np.zeros((tiles * cols, beats * n), dtype=np.int64)
        for t in range(tiles):
            for j in range(beats):
                for c in range(cols):
                    back[t * cols + c, j * n:(j + 1) * n] = mac_spec.unpack_weight_byte(next(syms), mode)
        assert next(syms, None) is None, "more symbols than the tiles' beats"
        want = np.zeros_like(back)
        want[:n_out, :k] = w
        assert (back == want).all(), (n_out, k, cols)


def _one_block(seed):
    """A 4 x 8 int8 layer in one block: ``(table words as bytes, block, x, expected y)``."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 20, (4, 8)).round().astype(int)
    table, (block,), _ = _encode_for(_handler(), [(w, "int8")])
    x = rng.integers(-128, 128, 8)
    want = [int(v) for v in ref_gemm(x[None, :], w, "int8")[0][0]]
    return b"".join(v.to_bytes(2, "little") for v in table), block, x, want


def test_spram_gemm_bad_input_flags_and_recovers():
    words, block, x, want = _one_block(9)
    h = _handler(store_depth=256)
    prng = random.Random(3)
    table_bytes = b"\x01" + words
    n = len(block)

    async def tb(ctx):
        async def cmd(c, p):
            return await _command(ctx, h, c, p, prng)
        assert (await cmd(Cmd.LOAD_HUFFMAN, table_bytes))[0] == Status.OK
        assert (await cmd(Cmd.LOAD_WEIGHTS, beat_bytes(block)))[0] == Status.OK
        # Sizes: odd beat bytes, undefined precision, k != payload, n_out 0.
        assert (await cmd(Cmd.LOAD_WEIGHTS, b"\x01\x02\x03"))[0] == Status.ERR_LENGTH
        assert (await cmd(Cmd.LOAD_HUFFMAN, b"\x00\x01"))[0] == Status.ERR_LENGTH
        bad_mode = bytearray(_gemm_payload("int8", 4, x, 0, n))
        bad_mode[0] = 5
        assert (await cmd(Cmd.GEMM, bytes(bad_mode)))[0] == Status.ERR_LENGTH
        assert (await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n)[:-1]))[0] == Status.ERR_LENGTH
        assert (await cmd(Cmd.GEMM, _gemm_payload("int8", 0, x, 0, n)))[0] == Status.ERR_LENGTH
        assert not ctx.get(h.bus.error)
        # A range beyond the beats stored (store addresses out of range): ERR_BLOCK, error flag.
        assert (await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 1, n)))[0] == Status.ERR_BLOCK
        assert ctx.get(h.bus.error)
        st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n))
        assert st == Status.OK and _results(reply) == want
        # Fewer outputs than the block holds: the extra values are a block error (no hang).
        assert (await cmd(Cmd.GEMM, _gemm_payload("int8", 2, x, 0, n)))[0] == Status.ERR_BLOCK
        # More outputs than the block holds: missing values are zeros, a block error (no hang).
        assert (await cmd(Cmd.GEMM, _gemm_payload("int8", 6, x, 0, n)))[0] == Status.ERR_BLOCK
        st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n))
        assert st == Status.OK and _results(reply) == want
        # A corrupted payload word (lane CRC) in a second copy of the block.
        bad = [list(b) for b in block]
        bad[-1][0] ^= 0x0100
        assert (await cmd(Cmd.LOAD_WEIGHTS, beat_bytes(bad)))[0] == Status.OK
        assert (await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, n, n)))[0] == Status.ERR_BLOCK
        st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n))
        assert st == Status.OK and _results(reply) == want
        # The store full: the beats beyond it are dropped, ERR_BLOCK.
        filler = beat_bytes([(0,)] * (256 - 2 * n))
        for i in range(0, len(filler), 256):
            assert (await cmd(Cmd.LOAD_WEIGHTS, filler[i:i + 256]))[0] == Status.OK
        assert (await cmd(Cmd.LOAD_WEIGHTS, b"\x00\x00"))[0] == Status.ERR_BLOCK
        # RESET: the flag clears, the store stays; the table (cleared with the decoder) is reloaded
        # without emptying the store (flag bits 0 and 1) and the stored block decodes again.
        ctx.set(top.rst, 1)
        await ctx.tick()
        ctx.set(top.rst, 0)
        assert not ctx.get(h.bus.error)
        assert (await cmd(Cmd.LOAD_HUFFMAN, b"\x03" + table_bytes[1:]))[0] == Status.OK
        st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n))
        assert st == Status.OK and _results(reply) == want

    top = _WithReset(h)
    simulate(top, tb)


def test_spram_gemm_header_fields_beyond_their_registers():
    """The handler keeps each GEMM header field only as wide as its valid values (n_out 8 bits,
    k as max_k needs, the precision 2 bits): a field whose dropped bits are set is refused
    (ERR_LENGTH) although its kept bits would pass every check; start and beats keep 16 bits
    (a range with a high start is outside the store: ERR_BLOCK). A correct GEMV follows each."""
    words, block, x, want = _one_block(11)
    h = _handler(store_depth=256, max_k=16)
    prng = random.Random(5)
    n = len(block)

    def with_field(offset, value, size=2):
        p = bytearray(_gemm_payload("int8", 4, x, 0, n))
        p[offset:offset + size] = int(value).to_bytes(size, "little")
        return bytes(p)

    async def tb(ctx):
        async def cmd(c, p):
            return await _command(ctx, h, c, p, prng)

        async def good():
            st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n))
            assert st == Status.OK and _results(reply) == want
        assert (await cmd(Cmd.LOAD_HUFFMAN, b"\x01" + words))[0] == Status.OK
        assert (await cmd(Cmd.LOAD_WEIGHTS, beat_bytes(block)))[0] == Status.OK
        await good()
        for offset, value, size in [(0, 0x80, 1), (0, 0x04, 1),         # precision: 0x80 keeps 0
                                    (1, 0x104, 2), (1, 129, 2),          # n_out: 0x104 keeps 4
                                    (3, 8 + 32, 2), (3, 8 + 0x100, 2),   # k: bits above max_k's 5
                                    (3, 17, 2), (7, 0, 2)]:              # k > max_k, beats 0
            assert (await cmd(Cmd.GEMM, with_field(offset, value, size)))[0] == Status.ERR_LENGTH, \
                (offset, value)
            await good()
        assert not ctx.get(h.bus.error)
        # A payload of more or fewer activations than k (the handler counts k down to 0 as they
        # come: 32 more wrap its 5-bit count back to 0), alone and with a range outside the store
        # (the length's verdict first, no error flag).
        base = _gemm_payload("int8", 4, x, 0, n)
        for payload in (base + b"\x01", base + bytes(32), base + bytes(33), base[:-1],
                        with_field(3, len(x) - 1), with_field(3, len(x) + 1)):
            assert (await cmd(Cmd.GEMM, payload))[0] == Status.ERR_LENGTH, len(payload)
            await good()
        outside = with_field(5, 0x0100)
        for payload in (outside + b"\x01", outside[:-1]):
            assert (await cmd(Cmd.GEMM, payload))[0] == Status.ERR_LENGTH, len(payload)
        assert not ctx.get(h.bus.error)
        for start in (0x8000, 0x0100, 0xFFFF):
            assert (await cmd(Cmd.GEMM, with_field(5, start)))[0] == Status.ERR_BLOCK, start
            await good()
        assert (await cmd(Cmd.GEMM, with_field(7, 0xFFFF)))[0] == Status.ERR_BLOCK
        await good()

    simulate(h, tb)


def test_spram_gemm_truncated_block_then_group_reset_recovers():
    """A GEMM over a range that stops before its block's last beat: the decoder waits for a beat
    that never comes, mid-tile, and the command does not finish (the controller's watchdog answers
    ERR_TIMEOUT). The watchdog's reset of the group (here the testbench's), the table reloaded over
    the kept store (flag bits 0 and 1): the next GEMM is exact."""
    words, block, x, want = _one_block(10)
    h = _handler(store_depth=256)
    prng = random.Random(4)
    n = len(block)

    async def tb(ctx):
        async def cmd(c, p, max_cycles=3000):
            return await _command(ctx, h, c, p, prng, max_cycles=max_cycles)
        assert (await cmd(Cmd.LOAD_HUFFMAN, b"\x01" + words))[0] == Status.OK
        assert (await cmd(Cmd.LOAD_WEIGHTS, beat_bytes(block)))[0] == Status.OK
        with pytest.raises(AssertionError, match="did not finish"):
            await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n - 1), max_cycles=1000)
        ctx.set(h.bus.i_data.valid, 0)
        ctx.set(top.rst, 1)
        await ctx.tick()
        ctx.set(top.rst, 0)
        assert (await cmd(Cmd.LOAD_HUFFMAN, b"\x03" + words))[0] == Status.OK
        st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", 4, x, 0, n))
        assert st == Status.OK and _results(reply) == want

    top = _WithReset(h)
    simulate(top, tb)


@pytest.mark.parametrize("acc_width", [17, 19, 20])
def test_spram_gemm_extreme_sums_at_the_accumulator_bound(acc_width):
    """Every product -128 * -128 over k = max_k = 16: 2**18. The array's accumulators are plain
    (no saturation logic) only when max_k * 2**14 fits ``acc_width`` (20 bits); at 19 bits the sum
    is one above the rail and at 17 far above it: both saturate, as the golden model does."""
    h = _handler(max_k=16, acc_width=acc_width)
    w = np.full((3, 16), -128)
    table, (block,), _ = _encode_for(h, [(w, "int8")])
    x = np.full(16, -128)
    want = [int(v) for v in ref_gemm(x[None, :], w, "int8", acc_width=acc_width)[0][0]]
    assert want == [min(2 ** 18, 2 ** (acc_width - 1) - 1)] * 3
    prng = random.Random(acc_width)
    got = []

    async def tb(ctx):
        st, _ = await _command(ctx, h, Cmd.LOAD_HUFFMAN,
                               bytes([1]) + b"".join(v.to_bytes(2, "little") for v in table), prng)
        assert st == Status.OK
        st, _ = await _command(ctx, h, Cmd.LOAD_WEIGHTS, beat_bytes(block), prng)
        assert st == Status.OK
        st, reply = await _command(ctx, h, Cmd.GEMM, _gemm_payload("int8", 3, x, 0, len(block)), prng)
        assert st == Status.OK
        got.extend(_results(reply))

    simulate(h, tb)
    assert got == want


def test_spram_gemm_bad_parameters():
    with pytest.raises(ValueError, match="cols"):
        _handler(contexts=2, cols=1)
    with pytest.raises(ValueError, match="store_depth"):
        _handler(store_depth=300)
    with pytest.raises(ValueError, match="store_depth"):
        _handler(contexts=2, store_depth=65536)
    with pytest.raises(TypeError, match="escape"):
        _handler(escape=1)
    with pytest.raises(ValueError, match="lane_dsps"):
        _handler(backend="lut", lane_dsps=True)


class ActMemoryTop(wiring.Component):
    """The handler's activation memory with its ports as a component (cocotb)."""

    wr_addr: In(8)
    wr_data: In(32)
    wr_en: In(4)
    rd_addr: In(8)
    rd_en: In(1)
    rd_data: Out(32)

    def __init__(self, primitives):
        self._primitives = primitives
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = _ActMemory(256, self._primitives)
        m.d.comb += [mem.wr.addr.eq(self.wr_addr), mem.wr.data.eq(self.wr_data), mem.wr.en.eq(self.wr_en),
                     mem.rd.addr.eq(self.rd_addr), mem.rd.en.eq(self.rd_en), self.rd_data.eq(mem.rd.data)]
        return m


@pytest.mark.slow
@pytest.mark.parametrize("primitives", [False, True])
def test_activation_memory_block_rams(primitives):
    """The activation memory as synthesis builds it (two SB_RAM40_4K, Yosys' model) and as the
    simulations build it (an Amaranth memory) against the same model of byte-lane writes and
    held reads."""
    run_cocotb(lambda: ActMemoryTop(primitives), toplevel="act_memory",
               test_module="sim.control.tb_act_memory", params={"depth": 256},
               extra_verilog=ice40_cell_models("SB_RAM40_4K") if primitives else "")


def _pruned_layer(rng, n_out, k):
    """An int8 layer whose even output channels are pruned (all zero) and whose odd ones are
    full-range: with two decoder contexts the even outputs are one format lane, the odd ones the
    other, so one block per layer drifts by far more words than the lane FIFOs hold."""
    w = rng.integers(-128, 128, (n_out, k))
    w[0::2] = 0
    return w


@pytest.mark.parametrize("fifo_depth", [4, 8])
def test_spram_gemm_pruned_beside_full_range_channels(fifo_depth):
    """Two contexts, outputs alternating pruned / full-range int8 (the layer that stopped the
    decoder for good as one block): as the host sends it, one unit of chained blocks of drift at
    most the handler's ``max_drift``, every GEMV equals numpy; the same layer as one block never
    finishes (the watchdog's case). A range reaching past the layer's unit (into the next layer's
    blocks) answers the layer's results: the feeder stops offering beats at the unit's end."""
    rng = np.random.default_rng(17 + fifo_depth)
    n_out, k = 8, 32
    w = _pruned_layer(rng, n_out, k)
    w2 = rng.integers(-128, 128, (3, k))
    h = _handler(contexts=2, fifo_depth=fifo_depth, max_k=k, store_depth=1024)
    assert h.max_drift == fifo_depth // 2
    table, blocks, stats = _encode_for(h, [(w, "int8"), (w2, "int8")])
    _, (one, _), one_stats = encode_model([(w, "int8"), (w2, "int8")], cols=COLS, max_drift=1 << 16,
                                          contexts=2, max_len=12, escape=True)
    assert stats["blocks"] > 2 and one_stats["blocks"] == 2
    words = b"".join(v.to_bytes(2, "little") for v in table)
    prng = random.Random(fifo_depth)

    async def tb(ctx):
        async def cmd(c, p, max_cycles=20000):
            return await _command(ctx, h, c, p, prng, max_cycles=max_cycles)
        assert (await cmd(Cmd.LOAD_HUFFMAN, b"\x01" + words))[0] == Status.OK
        starts, at = [], 0
        for b in (*blocks, one):
            assert (await cmd(Cmd.LOAD_WEIGHTS, beat_bytes(b)))[0] == Status.OK
            starts.append(at)
            at += len(b)
        for _ in range(3):
            x = rng.integers(-128, 128, k)
            want = [int(v) for v in w @ x]
            st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", n_out, x, starts[0], len(blocks[0])))
            assert st == Status.OK and _results(reply) == want
            # the range up to the store's end: the rest is not offered
            st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", n_out, x, starts[0], at))
            assert st == Status.OK and _results(reply) == want
            st, reply = await cmd(Cmd.GEMM, _gemm_payload("int8", 3, x, starts[1], len(blocks[1])))
            assert st == Status.OK and _results(reply) == [int(v) for v in w2 @ x]
        assert not ctx.get(h.bus.error)
        # One block for the layer: the decoder stops for good, the command never finishes.
        with pytest.raises(AssertionError, match="did not finish"):
            await cmd(Cmd.GEMM, _gemm_payload("int8", n_out, x, starts[2], len(one)), max_cycles=20000)

    simulate(h, tb)
