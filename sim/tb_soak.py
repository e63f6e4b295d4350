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
from cocotb.triggers import RisingEdge

from hw.huffman import spec
from hw.mac import spec as mac_spec
from sim.cocotb_streams import StreamSink, StreamSource
from sim.huffman import golden as g
from sim.mac.golden import random_acts, random_weights
from sim.mac.tb_mac_array import TB as MacTB
from sim.runner import tb_params

STALL = 0.3            # probability of an idle input cycle / a withdrawn ready, per stream
IDLE_CHECK = 64        # cycles every output is watched for extra payloads after the last expected one
MAC_MODES = list(mac_spec.MODES)


async def start(dut, inputs=(), outputs=(), levels=()):
    """Clock, zeroed inputs and two reset cycles."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
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


async def run_streams(sources, sinks):
    """Start every source with its payload list; take the expected count from every sink (concurrently);
    then check no sink has more. ``sources``: [(StreamSource, payloads)], ``sinks``: [(StreamSink, n,
    decode)]. Returns the sinks' payload lists."""
    tasks = [cocotb.start_soon(src.send(p)) for src, p in sources]
    gets = [cocotb.start_soon(sink.recv(n, decode)) for sink, n, decode in sinks]
    results = [await g for g in gets]
    for t in tasks:
        await t
    for sink, _, _ in sinks:
        assert await sink.expect_idle(IDLE_CHECK) == 0, f"{sink.name} gave more than expected"
    return results


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

    got, = await run_streams([(cmd, [t["cmd"] for t in tiles]), (act, [w for t in tiles for w in t["act"]]),
                              (wgt, [w for t in tiles for w in t["wgt"]])], [(res, len(expected), decode)])
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
    got, = await run_streams([(data, data_words), (table, table_words)], [(out, len(expected), decode)])
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"output beat {i}: {a} != {b}"
    assert errors == 0 and int(dut.o_errors.value) == 0
    assert int(dut.o_blocks.value) == len(ref) % (1 << len(dut.o_blocks))
    check_counts([data, table, out], target)
