"""Drive :class:`hw.hdqt.layer.HdqtLayer` for one training step in the Amaranth simulator."""

import random

import numpy as np

from hw.hdqt.host_port import BUF_DY, BUF_W, BUF_X
from hw.hdqt.layer import Phase
from sim.streams import simulate

__all__ = ["amaranth_layer_step"]


def amaranth_layer_step(dut, steps, *, x_unsigned=True, res_stall=0.0, seed=0, max_cycles=200_000):
    """Run ``steps`` (a list of dicts with ``w`` (first step only, else ``None``), ``x``, ``dy``,
    ``exp_base`` and optionally ``lfsr_state``) on ``dut``; returns per step
    ``{"y", "dx", "w", "shifts", "cycles", "w_saturated"}``."""

    cfg = dut.config
    B, K, O, R, C = cfg.batch, cfg.k_dim, cfg.o_dim, cfg.rows, cfg.cols
    out = []

    async def tb(ctx):
        rng = random.Random(seed)
        for st in steps:
            loads = []
            if st.get("w") is not None:
                loads += [(BUF_W, a, int(v)) for a, v in enumerate(np.ravel(st["w"]))]
            loads += [(BUF_X, a, int(v)) for a, v in enumerate(np.ravel(st["x"]))]
            loads += [(BUF_DY, a, int(v)) for a, v in enumerate(np.ravel(st["dy"]))]
            ctx.set(dut.i_x_unsigned, x_unsigned)
            if st.get("lfsr_state") is not None:  # replay: start the LFSR from a recorded state
                ctx.set(dut.i_lfsr_seed, int(st["lfsr_state"]))
                ctx.set(dut.i_lfsr_load, 1)
                await ctx.tick()
                ctx.set(dut.i_lfsr_load, 0)
            for buf, a, v in loads:
                ctx.set(dut.i_load.payload, {"buf": buf, "addr": a, "data": v})
                ctx.set(dut.i_load.valid, 1)
                await ctx.tick()
            ctx.set(dut.i_load.valid, 0)
            ctx.set(dut.i_exp_base, st["exp_base"])
            ctx.set(dut.i_start, 1)
            await ctx.tick()
            ctx.set(dut.i_start, 0)
            y = np.zeros((B, O), dtype=np.int64)
            dx = np.zeros((B, K), dtype=np.int64)
            counts = {0: 0, 1: 0}
            cycles = 1
            while ctx.get(dut.o_phase) != Phase.IDLE:
                ready = rng.random() >= res_stall
                ctx.set(dut.o_res.ready, ready)
                if ready and ctx.get(dut.o_res.valid):
                    p = ctx.get(dut.o_res.payload)
                    kind = int(p.kind)
                    idx = counts[kind]
                    counts[kind] += 1
                    n_cols = O if kind == 0 else K
                    tile, r = divmod(idx, R)
                    mb, nb = divmod(tile, n_cols // C)
                    tgt = y if kind == 0 else dx
                    tgt[mb * R + r, nb * C:(nb + 1) * C] = [int(v) for v in p.data]
                await ctx.tick()
                cycles += 1
                assert cycles < max_cycles, \
                    f"step did not finish in {max_cycles} cycles (phase {ctx.get(dut.o_phase)})"
            ctx.set(dut.o_res.ready, 0)
            w = []
            for a in range(O * K):
                ctx.set(dut.i_rd.payload, a)
                ctx.set(dut.i_rd.valid, 1)
                ctx.set(dut.o_rd.ready, 1)
                await ctx.tick().until(dut.o_rd.valid)
                w.append(ctx.get(dut.o_rd.payload))
            ctx.set(dut.i_rd.valid, 0)
            ctx.set(dut.o_rd.ready, 0)
            await ctx.tick()
            shifts = tuple(int(s) for s in ctx.get(dut.o_shifts))
            out.append({"y": y, "dx": dx, "w": np.array(w).reshape(O, K), "shifts": shifts, "cycles": cycles,
                        "w_saturated": bool(ctx.get(dut.o_w_saturated)), "rows": counts})

    simulate(dut, tb)
    return out


