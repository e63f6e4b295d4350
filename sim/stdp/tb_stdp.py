"""cocotb testbench of :class:`hw.stdp.STDPCore` against :class:`sim.stdp.golden.ForwardSTDPNetwork`.

The design's parameters come from :func:`sim.runner.tb_params` (the ``STDPConfig`` fields). Stream
payloads are flat vectors in Verilog: AER ``neuron | eos << 16``; configuration
``write | mem << 1 | addr << 3 | data << 23``; ``o_err`` bit 0 ``bad_event``, bit 1 ``bad_cfg``.
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from hw.stdp import spec
from sim.cocotb_streams import StreamSink, StreamSource, reset, start_clock
from sim.runner import tb_params
from sim.stdp.golden import ForwardSTDPNetwork, poisson_events, random_rows

_CFG_FIELDS = set(spec.STDPConfig.__dataclass_fields__)


class TB:
    """The core's streams through the shared drivers (:mod:`sim.cocotb_streams`), which also check
    that the outputs keep the stream rule."""

    def __init__(self, dut, seed=0):
        self.dut = dut
        self.cfg = spec.STDPConfig(**{k: v for k, v in tb_params().items() if k in _CFG_FIELDS})
        self.rng = random.Random(seed)
        self.cfg_in = StreamSource(dut, "i_cfg")
        self.rdata = StreamSink(dut, "o_rdata")
        self.aer_in = StreamSource(dut, "i_aer", seed=self.rng.randrange(1 << 32))
        self.aer_out = StreamSink(dut, "o_aer", seed=self.rng.randrange(1 << 32))
        start_clock(dut)

    async def reset(self):
        await reset(self.dut, ("i_err_clear", "i_aer__payload", "i_cfg__payload"))

    async def cfg_write(self, mem, addr, data):
        await self.cfg_in.send([1 | mem << 1 | addr << 3 | data << 23])

    async def cfg_read(self, mem, addr):
        await self.cfg_in.send([mem << 1 | addr << 3])
        return (await self.rdata.recv(1))[0]

    async def load(self, rows):
        image = spec.build_image(self.cfg, rows)
        for mem in (spec.MEM_SYN, spec.MEM_ROW, spec.MEM_BMP):
            for addr, word in enumerate(image[mem]):
                await self.cfg_write(mem, addr, word)
        return image

    async def send_steps(self, steps, stall):
        self.aer_in.stall = stall
        await self.aer_in.send([e for events in steps for e in (*events, 1 << spec.AER_BITS)])

    async def collect_steps(self, n, stall):
        self.aer_out.stall = stall
        out, cur = [], []
        while len(out) < n:
            word = (await self.aer_out.recv(1))[0]
            if word >> spec.AER_BITS:
                out.append(cur)
                cur = []
            else:
                cur.append(word & ((1 << spec.AER_BITS) - 1))
        return out

    async def run(self, steps, stall=0.3):
        sink = cocotb.start_soon(self.collect_steps(len(steps), stall))
        await self.send_steps(steps, stall)
        return await sink

    async def read_rows(self, rows):
        template = spec.effective_rows(self.cfg, rows)
        n = sum(len(r) for r in template)
        words = [await self.cfg_read(spec.MEM_SYN, a) for a in range(n)]
        return spec.image_rows(self.cfg, {spec.MEM_SYN: words}, template)

    async def err(self):
        await ReadOnly()
        v = int(self.dut.o_err.value)
        await RisingEdge(self.dut.clk)
        return {"bad_event": v & 1, "bad_cfg": v >> 1 & 1}


def _network(cfg, rng, steps):
    density = min(0.25, 3 * 64 / (cfg.n_neurons ** 2))
    rows = random_rows(rng, cfg.n_neurons, density, cfg.w_bits, max_synapses=cfg.max_synapses)
    events = poisson_events(rng, steps, range(cfg.n_neurons), 0.08)
    return rows, events


@cocotb.test()
async def test_random_network_matches_golden(dut):
    tb = TB(dut, seed=1)
    await tb.reset()
    rows, events = _network(tb.cfg, random.Random(2), 50)
    await tb.load(rows)
    net = ForwardSTDPNetwork(tb.cfg, rows)
    expected = [net.step(ev)[0] for ev in events]
    got = await tb.run(events, stall=0.3)
    assert got == expected
    assert sum(map(len, got)) > 20
    assert await tb.read_rows(rows) == net.weights()
    states = [spec.unpack_state(tb.cfg, await tb.cfg_read(spec.MEM_STATE, n))
              for n in range(tb.cfg.n_neurons)]
    assert states == net.state
    assert await tb.err() == {"bad_event": 0, "bad_cfg": 0}


@cocotb.test()
async def test_bad_input_flags_and_recovery(dut):
    tb = TB(dut, seed=3)
    await tb.reset()
    cfg = tb.cfg
    rows, events = _network(cfg, random.Random(4), 20)
    image = await tb.load(rows)
    await tb.cfg_write(spec.MEM_SYN, cfg.syn_depth, 1)               # beyond the synapse memory
    assert await tb.cfg_read(spec.MEM_STATE, cfg.n_neurons) == 0     # beyond the neuron memory
    assert (await tb.err())["bad_cfg"] == 1
    dut.i_err_clear.value = 1
    await RisingEdge(dut.clk)
    dut.i_err_clear.value = 0
    assert await tb.err() == {"bad_event": 0, "bad_cfg": 0}
    bad = [ev + [cfg.n_neurons + 3] if t % 4 == 1 else ev for t, ev in enumerate(events)]
    net = ForwardSTDPNetwork(cfg, rows)
    expected = [net.step(ev)[0] for ev in events]
    assert await tb.run(bad, stall=0.2) == expected
    assert await tb.err() == {"bad_event": 1, "bad_cfg": 0}
    assert await tb.read_rows(rows) == net.weights()
    assert image[spec.MEM_SYN]  # the network had synapses


@cocotb.test()
async def test_memory_read_back(dut):
    tb = TB(dut, seed=5)
    await tb.reset()
    rows, _ = _network(tb.cfg, random.Random(6), 1)
    image = await tb.load(rows)
    for mem in (spec.MEM_SYN, spec.MEM_ROW, spec.MEM_BMP):
        got = [await tb.cfg_read(mem, a) for a in range(len(image[mem]))]
        assert got == image[mem], f"memory {mem}"


@cocotb.test()
async def test_full_synapse_memory(dut):
    """Every synapse word in use (rows of ``syn_depth / n_neurons`` synapses on average, lengths odd
    and even so that rows start at both address parities), a few steps, then spikes, all weights
    and the neuron states against the golden model."""
    tb = TB(dut, seed=7)
    await tb.reset()
    cfg = tb.cfg
    n = cfg.n_neurons
    rng = random.Random(8)
    fanout = cfg.syn_depth // n
    spread = max(0, min(3, fanout - 1, n - fanout))
    lengths = []
    for _ in range(0, n, 2):
        d = rng.randrange(-spread, spread + 1)
        lengths += [fanout + d, fanout - d]
    rows = [[(q, rng.randrange(cfg.w_max // 4 + 1)) for q in sorted(rng.sample(range(n), k))]
            for k in lengths[:n]]
    events = poisson_events(rng, 8, range(n), max(0.05, 4 / n))
    image = await tb.load(rows)
    assert len(image[spec.MEM_SYN]) == fanout * n
    net = ForwardSTDPNetwork(cfg, rows)
    expected = [net.step(ev)[0] for ev in events]
    assert await tb.run(events, stall=0.1) == expected
    assert sum(map(len, expected)) > len(events)
    assert await tb.read_rows(rows) == net.weights()
    states = [spec.unpack_state(cfg, await tb.cfg_read(spec.MEM_STATE, i)) for i in range(n)]
    assert states == net.state
    assert await tb.err() == {"bad_event": 0, "bad_cfg": 0}
