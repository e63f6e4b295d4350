"""cocotb stall soaks: every stream port of a block carries at least ``transfers`` transfers (a
:func:`sim.runner.tb_params` entry) with random stalls on both sides (:mod:`sim.cocotb_streams`), and
every output is compared, in order, with the block's golden model; afterwards no output port has
anything more to give (nothing duplicated) and each stream's transfer count is checked against the
target (so a soak cannot pass on a stream that carried nothing).

One ``soak_<block>`` test per block; :mod:`tests.test_soak` runs each against its design.
"""

import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge

from hw.control import protocol as proto
from hw.hdqt.host_port import BUF_DY, BUF_W, BUF_X
from hw.hdqt.layer import Phase
from hw.hdqt.spec import W_BITS
from hw.huffman import spec
from hw.mac import spec as mac_spec
from hw.stdp import spec as stdp_spec
from sim.cocotb_streams import StreamSink, StreamSource
from sim.hdqt.golden import HdqtConfig, LfsrStream, ref_exp_base, ref_layer_step
from sim.hdqt.tb_layer import _signed
from sim.huffman import golden as g
from sim.mac.golden import random_acts, random_weights
from sim.mac.tb_mac_array import TB as MacTB
from sim.runner import tb_params
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows

STALL = 0.3            # probability of an idle input cycle / a withdrawn ready, per stream
CLOCK_NS = 10
PROGRESS_CYCLES = 50_000     # no transfer on any stream for this long: a payload was lost (fail, not hang)
IDLE_CHECK = 64        # cycles every output is watched for extra payloads after the last expected one
MAC_MODES = list(mac_spec.MODES)
STDP_FIELDS = set(stdp_spec.STDPConfig.__dataclass_fields__)


async def start(dut, inputs=(), outputs=(), levels=()):
    """Clock, zeroed inputs and two reset cycles."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for name in inputs:
        getattr(dut, f"{name}__valid").value = 0
        getattr(dut, f"{name}__payload").value = 0
    for name in outputs:
        getattr(dut, f"{name}__ready").value = 0
    for name in levels:
        getattr(dut, name).value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def check_counts(streams, target):
    """Every stream carried ``target`` transfers or more; returns ``{name: count}``."""
    counts = {s.name: s.count for s in streams}
    short = {k: v for k, v in counts.items() if v < target}
    assert not short, f"streams below the {target}-transfer target: {short}"
    cocotb.log.info(f"soak transfers: {counts}")
    return counts


async def run_streams(dut, sources, sinks):
    """Start every source with its payload list; take the expected count from every sink (concurrently);
    then check no sink has more. ``sources``: [(StreamSource, payloads)], ``sinks``: [(StreamSink, n,
    decode)]. Returns the sinks' payload lists."""
    tasks = [cocotb.start_soon(src.send(p)) for src, p in sources]
    gets = [cocotb.start_soon(sink.recv(n, decode)) for sink, n, decode in sinks]

    streams = [src for src, _ in sources] + [sink for sink, _, _ in sinks]

    async def finish():
        results = [await g for g in gets]
        for t in tasks:
            await t
        return results

    async def watchdog():
        """Returns once no stream made a transfer for ``PROGRESS_CYCLES`` cycles."""
        last = None
        while True:
            await ClockCycles(dut.clk, PROGRESS_CYCLES)
            total = sum(s.count for s in streams)
            if total == last:
                return
            last = total

    done = cocotb.start_soon(finish())
    dog = cocotb.start_soon(watchdog())
    await First(done, dog)
    if not done.done():
        counts = {s.name: s.count for s in streams}
        raise AssertionError(f"the streams stopped (no transfer for {PROGRESS_CYCLES} cycles): {counts}")
    dog.cancel()
    results = done.result()
    for sink, _, _ in sinks:
        assert await sink.expect_idle(IDLE_CHECK) == 0, f"{sink.name} gave more than expected"
    return results


def assert_same(got, want, what):
    """``got == want``, else fail naming the first differing item."""
    bad = next((i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b), None)
    assert bad is None, f"{what} {bad} differs: {got[bad]} != {want[bad]}"


async def byte_loop(dut, target, *, seed):
    """``target`` random bytes into ``i_data``; the same bytes, in order, out of ``o_data``."""
    rng = random.Random(seed)
    data = [rng.randrange(256) for _ in range(target)]
    src = StreamSource(dut, "i_data", seed=seed + 1, stall=STALL)
    sink = StreamSink(dut, "o_data", seed=seed + 2, stall=STALL)
    got, = await run_streams(dut, [(src, data)], [(sink, len(data), None)])
    assert_same(got, data, "byte")
    check_counts([src, sink], target)


# --- MAC array ----------------------------------------------------------------------------------------


@cocotb.test()
async def soak_mac(dut):
    """Short random GEMM tiles in every mode (one command per tile, so the command stream also reaches the
    target), results row by row against :func:`sim.mac.golden.gemm_tiles`."""
    p = tb_params()
    target = p["transfers"]
    tb = MacTB.__new__(MacTB)                          # the MAC testbench's tile helpers, without its clock
    tb.dut, tb.rows, tb.cols, tb.acc_width = dut, p["rows"], p["cols"], p["acc_width"]
    tb.tile_k, tb.tile_bits, tb.count_bits = p["tile_k"], p["tile_bits"], p["count_bits"]
    await start(dut, ("i_cmd", "i_act", "i_wgt"), ("o_res",), ("i_clear",))
    rng = np.random.default_rng(1)
    tiles = []
    while len(tiles) < target:
        mode = MAC_MODES[int(rng.integers(len(MAC_MODES)))]
        unsigned = bool(rng.integers(2))
        k = int(rng.integers(1, 4))
        x = random_acts(rng, (tb.rows * 8, k), unsigned=unsigned)
        w = random_weights(rng, (tb.cols * 8, k), mode)
        tiles += tb.tiles(x, w, mode, act_unsigned=unsigned, tile_sat=bool(rng.integers(2)))
    cmd = StreamSource(dut, "i_cmd", seed=1, stall=STALL)
    act = StreamSource(dut, "i_act", seed=2, stall=STALL)
    wgt = StreamSource(dut, "i_wgt", seed=3, stall=STALL)
    res = StreamSink(dut, "o_res", seed=4, stall=STALL)
    expected = tb.expected(tiles)

    def decode(word):
        return mac_spec.unpack_res(word, rows=tb.rows, cols=tb.cols, acc_width=tb.acc_width)

    got, = await run_streams(dut, [(cmd, [t["cmd"] for t in tiles]),
                                   (act, [w for t in tiles for w in t["act"]]),
                                   (wgt, [w for t in tiles for w in t["wgt"]])],
                             [(res, len(expected), decode)])
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"result row {i}: {a} != {b}"
    assert int(dut.o_mode_error.value) == 0
    check_counts([cmd, act, wgt, res], target)


# --- Huffman decoder ----------------------------------------------------------------------------------


def huffman_workload(rng, target, *, lanes, max_len):
    """Tables and blocks (INT, and RAW bypass now and then) until the table and data streams carry
    ``target`` words/beats and the blocks ``target`` output beats. Each table is used by the blocks
    after it (alternating parity), so tables keep loading through both banks while data decodes."""
    tables, beats, n_out, t = [], [], 0, 0
    while len(beats) < target or n_out < target or sum(map(len, tables)) < target:
        alphabet = rng.sample(range(256), rng.randrange(2, 40))
        values = [rng.choice(alphabet[:rng.randrange(1, len(alphabet) + 1)]) for _ in range(60)] + alphabet
        table = g.build_table(values, max_len)
        tables.append(spec.serialize_table(*table, max_len))
        for _ in range(rng.randrange(1, 3)):
            n = rng.randrange(1, 25)
            block = [rng.choice(alphabet) for _ in range(n * lanes)]
            beats += g.encode_block(block, n_lanes=lanes, mode=spec.MODE_INT, parity=t & 1, table=table)[0]
            n_out += n
        if rng.random() < 0.2:
            n = rng.randrange(1, 8)
            raw = [rng.randrange(256) for _ in range(n * lanes)]
            beats += g.encode_block(raw, n_lanes=lanes, mode=spec.MODE_RAW, r=8)[0]
            n_out += n
        t += 1
    return tables, beats


@cocotb.test()
async def soak_huffman(dut):
    """Many tables through both banks and INT/RAW blocks, every output beat (values, first/last/err
    marks) against :func:`sim.huffman.golden.ref_decode`, and the sticky error flags."""
    p = tb_params()
    target, lanes, max_len = p["transfers"], p["lanes"], p["max_len"]
    vw = spec.value_width(p["raw_bits"])
    await start(dut, ("i_data", "i_table"), ("o_data",), ("i_clear",))
    tables, beats = huffman_workload(random.Random(5), target, lanes=lanes, max_len=max_len)
    ref, errors = g.ref_decode(beats, tables, n_lanes=lanes, max_len=max_len, raw_bits=p["raw_bits"])
    expected = []
    for b in ref:
        for i, values in enumerate(b["values"]):
            last = i == len(b["values"]) - 1
            expected.append((list(values), int(i == 0), int(last), int(last and b["err"])))
    data = StreamSource(dut, "i_data", seed=6, stall=STALL)
    table = StreamSource(dut, "i_table", seed=7, stall=STALL)
    out = StreamSink(dut, "o_data", seed=8, stall=STALL)

    def decode(word):
        base = lanes * vw
        return ([(word >> (vw * k)) & ((1 << vw) - 1) for k in range(lanes)],
                (word >> base) & 1, (word >> (base + 1)) & 1, (word >> (base + 2)) & 1)

    data_words = [sum(w << (spec.WORD * k) for k, w in enumerate(b.words))
                  | int(b.first) << (spec.WORD * lanes) for b in beats]
    table_words = [w | int(i == 0) << spec.WORD for t in tables for i, w in enumerate(t)]
    got, = await run_streams(dut, [(data, data_words), (table, table_words)], [(out, len(expected), decode)])
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"output beat {i}: {a} != {b}"
    assert errors == 0 and int(dut.o_errors.value) == 0
    assert int(dut.o_blocks.value) == len(ref) % (1 << len(dut.o_blocks))
    check_counts([data, table, out], target)


# --- STDP core ----------------------------------------------------------------------------------------


def _stdp_cfg_word(write, mem, addr, data=0):
    return int(write) | mem << 1 | addr << 3 | data << 23       # see sim.stdp.tb_stdp


@cocotb.test()
async def soak_stdp(dut):
    """Rounds of (event steps through ``i_aer``/``o_aer``; read-back of every neuron state and synapse
    word through ``i_cfg``/``o_rdata``) after a configuration load, against
    :class:`sim.stdp.golden.ForwardSTDPNetwork` (spikes in order, end-of-step marks, states, weights)."""
    p = tb_params()
    target = p["transfers"]
    cfg = stdp_spec.STDPConfig(**{k: v for k, v in p.items() if k in STDP_FIELDS})
    await start(dut, ("i_aer", "i_cfg"), ("o_aer", "o_rdata"), ("i_err_clear",))
    rng = random.Random(9)
    rows = random_rows(rng, cfg.n_neurons, min(0.25, 3 * 64 / cfg.n_neurons ** 2), cfg.w_bits,
                       max_synapses=cfg.max_synapses)
    net = ForwardSTDPNetwork(cfg, rows)
    image = stdp_spec.build_image(cfg, rows)
    template = stdp_spec.effective_rows(cfg, rows)
    n_syn = sum(len(r) for r in template)
    eos = 1 << stdp_spec.AER_BITS
    aer_in = StreamSource(dut, "i_aer", seed=10, stall=STALL)
    aer_out = StreamSink(dut, "o_aer", seed=11, stall=STALL)
    cfg_in = StreamSource(dut, "i_cfg", seed=12, stall=STALL)
    rdata = StreamSink(dut, "o_rdata", seed=13, stall=STALL)
    load = [_stdp_cfg_word(1, mem, a, w) for mem in (stdp_spec.MEM_SYN, stdp_spec.MEM_ROW, stdp_spec.MEM_BMP)
            for a, w in enumerate(image[mem])]
    await run_streams(dut, [(cfg_in, load)], [])
    reads = ([_stdp_cfg_word(0, stdp_spec.MEM_STATE, n) for n in range(cfg.n_neurons)]
             + [_stdp_cfg_word(0, stdp_spec.MEM_SYN, a) for a in range(n_syn)])
    rounds = 0
    while min(aer_in.count, aer_out.count, cfg_in.count, rdata.count) < target:
        steps = poisson_events(rng, 16, range(cfg.n_neurons), rng.choice((0.3, 0.5)))
        words_in = [w for ev in steps for w in [*ev, eos]]
        words_out = [w for ev in steps for w in [*net.step(ev)[0], eos]]
        got, = await run_streams(dut, [(aer_in, words_in)], [(aer_out, len(words_out), None)])
        assert got == words_out, f"round {rounds}: output events differ"
        words, = await run_streams(dut, [(cfg_in, reads)], [(rdata, len(reads), None)])
        states = [stdp_spec.unpack_state(cfg, w) for w in words[:cfg.n_neurons]]
        assert states == net.state, f"round {rounds}: neuron states differ"
        weights = stdp_spec.image_rows(cfg, {stdp_spec.MEM_SYN: words[cfg.n_neurons:]}, template)
        assert weights == net.weights(), f"round {rounds}: weights differ"
        rounds += 1
    assert int(dut.o_err.value) == 0
    check_counts([aer_in, aer_out, cfg_in, rdata], target)


# --- HDQT layer ---------------------------------------------------------------------------------------


def _hdqt_rows(mat, r, c):
    """A result matrix as the layer streams it: tiles of ``r`` rows (row blocks outer, column blocks
    inner), each row of a tile one beat of ``c`` values."""
    n_rows, n_cols = mat.shape
    return [[int(v) for v in mat[mb * r + row, nb * c:(nb + 1) * c]]
            for mb in range(n_rows // r) for nb in range(n_cols // c) for row in range(r)]


@cocotb.test()
async def soak_hdqt(dut):
    """Training steps (W, X, dY loaded through ``i_load``; Y and dX rows from ``o_res``; the updated W
    read back through ``i_rd``/``o_rd``) against :func:`sim.hdqt.golden.ref_layer_step`, W and the
    LFSR carried from step to step. Y rows and dX rows are each checked in order (the layer may
    interleave the two kinds)."""
    p = tb_params()
    target = p["transfers"]
    b, k, o, r, c, acc = p["batch"], p["k_dim"], p["o_dim"], p["rows"], p["cols"], p["acc_width"]
    cfg = HdqtConfig(had_cap=p["had_cap"], lr_shift=p["lr_shift"], acc_bits=acc, tile_bits=8)
    await start(dut, ("i_load", "i_rd"), ("o_rd", "o_res"),
                ("i_start", "i_x_unsigned", "i_exp_base", "i_clear", "i_lfsr_seed", "i_lfsr_load"))
    rng = np.random.default_rng(14)
    load = StreamSource(dut, "i_load", seed=15, stall=STALL)
    res = StreamSink(dut, "o_res", seed=16, stall=STALL)
    rd = StreamSource(dut, "i_rd", seed=17, stall=STALL)
    rd_out = StreamSink(dut, "o_rd", seed=18, stall=STALL)
    lfsr = LfsrStream()
    w = None
    step = 0
    while min(load.count, res.count, rd.count, rd_out.count) < target:
        reload = w is None or step % 4 == 0            # a fresh W now and then (else the updated one stays)
        if reload:
            w = rng.integers(-4000, 4000, (o, k))
        x = rng.integers(0, 200, (b, k))
        dy = rng.integers(-20000, 20000, (b, o))
        x_exp, dy_exp = -6, int(rng.integers(-24, -18))
        ref = ref_layer_step(cfg, w, x, x_exp, dy, dy_exp, lfsr)
        words = [(buf & 3) | (addr << 2) | ((int(v) & 0xFFFF) << 18)
                 for buf, t in ([(BUF_W, w)] if reload else []) + [(BUF_X, x), (BUF_DY, dy)]
                 for addr, v in enumerate(np.ravel(t))]
        await run_streams(dut, [(load, words)], [])
        dut.i_x_unsigned.value = 1
        dut.i_exp_base.value = ref_exp_base(cfg, x_exp, dy_exp, b) & 0xFFFF
        dut.i_start.value = 1
        await RisingEdge(dut.clk)
        dut.i_start.value = 0
        want = {0: _hdqt_rows(ref["y"], r, c), 1: _hdqt_rows(ref["dx"], r, c)}

        def decode(word):
            return (word >> (c * acc)) & 1, [_signed(word >> (acc * i), acc) for i in range(c)]

        got, = await run_streams(dut, [], [(res, len(want[0]) + len(want[1]), decode)])
        for kind in (0, 1):
            rows = [v for kd, v in got if kd == kind]
            assert rows == want[kind], f"step {step}: {'dX' if kind else 'Y'} rows differ"
        cycles = 0
        while int(dut.o_phase.value) != Phase.IDLE.value:
            await RisingEdge(dut.clk)
            cycles += 1
            assert cycles < 1_000_000, "the step did not finish"
        shifts = tuple((int(dut.o_shifts.value) >> (6 * i)) & 63 for i in range(6))
        assert shifts == ref["shifts"], f"step {step}: shifts differ"
        assert bool(int(dut.o_w_saturated.value)) == ref["w_saturated"]
        back, = await run_streams(dut, [(rd, list(range(o * k)))],
                                  [(rd_out, o * k, lambda v: _signed(v, W_BITS))])
        assert back == [int(v) for v in np.ravel(ref["w"])], f"step {step}: updated W differs"
        w = ref["w"]
        step += 1
    check_counts([load, res, rd, rd_out], target)


# --- command controller and UART ----------------------------------------------------------------------


@cocotb.test()
async def soak_control(dut):
    """PING (payload echoed) and SINK (length and byte sum) frames back to back, random payloads of
    0..80 bytes: the reply bytes against :func:`hw.control.protocol.encode_reply`. The frames stream
    without waiting for replies: the controller holds ``i_rx`` off while it executes and answers."""
    p = tb_params()
    target = p["transfers"]
    await start(dut, ("i_rx",), ("o_tx",))
    rng = random.Random(19)
    commands, replies = [], []
    while min(len(commands), len(replies)) < target:
        payload = bytes(rng.randrange(256) for _ in range(rng.choice((0, rng.randrange(1, 81)))))
        if rng.random() < 0.7:
            commands += proto.encode_command(proto.Cmd.PING, payload)
            replies += proto.encode_reply(proto.Cmd.PING, proto.Status.OK, payload)
        else:
            commands += proto.encode_command(proto.Cmd.SINK, payload)
            answer = len(payload).to_bytes(2, "little") + (sum(payload) & 0xFFFF).to_bytes(2, "little")
            replies += proto.encode_reply(proto.Cmd.SINK, proto.Status.OK, answer)
    rx = StreamSource(dut, "i_rx", seed=20, stall=STALL)
    tx = StreamSink(dut, "o_tx", seed=21, stall=STALL)
    got, = await run_streams(dut, [(rx, commands)], [(tx, len(replies), None)])
    assert_same(got, replies, "reply byte")
    check_counts([rx, tx], target)


@cocotb.test()
async def soak_uart(dut):
    """Random bytes through the transmitter and back through the receiver, in order, with no framing
    error or overrun (the receiver's consumer withdraws ``ready`` for a few cycles at a time, well
    within a byte time)."""
    target = tb_params()["transfers"]
    await start(dut, ("i_data",), ("o_data",))
    await byte_loop(dut, target, seed=22)
    assert int(dut.o_line_errors.value) == 0


# --- the soak's own check: a queue with a mutation ----------------------------------------------------


@cocotb.test()
async def soak_queue(dut):
    """Random bytes through a byte queue (``tests.test_soak.MutantQueue``, its ``i_mutation`` from the
    ``mutation`` parameter): passes on the plain queue, fails on each mutation (a byte dropped, a
    byte duplicated, ``valid`` withdrawn before a transfer)."""
    p = tb_params()
    target = p["transfers"]
    await start(dut, ("i_data",), ("o_data",), ("i_mutation",))
    dut.i_mutation.value = p["mutation"]
    await byte_loop(dut, target, seed=25)
