"""High-level API: run an SNN, a quantized model, a training step — on a board or the simulated board.

:class:`Accelerator` wraps a :class:`firmware.driver.Driver` and knows the block sizes of the
board it talks to (:mod:`boards.config`), so it can encode payloads exactly as the gateware's
command handlers expect them (each handler's module documents its formats).
"""

from boards.config import SIM_CONFIG, check_board
from hw.control.gemm_handler import MAX_N_OUT
from hw.control.hdqt_handler import (
    MAX_READ_RESULTS,
    MAX_READ_WEIGHTS,
    ReadSource,
    StepFlag,
    Tensor,
    load_select,
    result_order,
)
from hw.control.protocol import GROUP_NAMES, MAX_PAYLOAD, MAX_REPLY, Cmd
from hw.control.stdp_handler import word_bytes
from hw.hdqt.spec import LayerConfig
from hw.stdp import spec
from hw.stdp.spec import STDPConfig
from sim.huffman.golden import encode_stream

from .driver import Driver
from .transport import open_transport

__all__ = ["Accelerator", "open_accelerator", "BlockMissing"]


class BlockMissing(RuntimeError):
    """The board was built without the command group a call needs."""


def open_accelerator(board=None, port=None):
    """An :class:`Accelerator` on ``board``'s serial ``port``, or the simulated board without ``port``."""
    if port is None:
        return Accelerator(Driver(open_transport(board, None)), "sim", SIM_CONFIG)
    return Accelerator(Driver(open_transport(board, port)), board)


class Accelerator:
    """A board (real or simulated) with its blocks.

    Parameters
    ----------
    driver : firmware.driver.Driver
    board : str
        Board name (a key of :data:`boards.config.BOARD_CONFIGS`, or ``"sim"`` with ``config``
        :data:`boards.config.SIM_CONFIG`): fixes the block sizes.
    config : boards.config.BoardConfig, optional
        Block sizes when the design was built with a config other than the board's own.
    """

    def __init__(self, driver, board, config=None):
        self.driver = driver
        self.board = board
        self.config = config if config is not None else check_board(board)
        self._groups = None

    def close(self):
        self.driver.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # System ------------------------------------------------------------------------------------
    def status(self):
        return self.driver.status()

    def reset(self):
        self.driver.reset()

    def groups(self):
        if self._groups is None:
            mask = self.status()["groups"]
            self._groups = {name for g, name in GROUP_NAMES.items() if mask >> g & 1}
        return self._groups

    def _need(self, group):
        if group not in self.groups():
            raise BlockMissing(f"the {group} group is not in this bitstream ({self.board} carries: "
                               f"{', '.join(sorted(self.groups()))})")

    # STDP ----------------------------------------------------------------------------------------
    def stdp_config(self):
        """The :class:`hw.stdp.spec.STDPConfig` of this board's STDP core."""
        return STDPConfig(**self.config.stdp)

    def _stdp_word_bytes(self):
        return word_bytes(self.stdp_config())

    def stdp_write(self, mem, words, addr=0):
        """Write memory ``mem`` words from ``addr`` on (``LOAD_SYNAPSES`` frames, pipelined)."""
        self._need("stdp")
        W = self._stdp_word_bytes()
        per = (self.driver.window_payload() - 4) // W
        frames = []
        for i in range(0, len(words), per):
            chunk = words[i:i + per]
            frames.append((Cmd.LOAD_SYNAPSES, bytes([mem]) + (addr + i).to_bytes(3, "little")
                           + b"".join(int(w).to_bytes(W, "little") for w in chunk)))
        self.driver.pipeline(frames)

    def stdp_read(self, mem, count, addr=0):
        """Read ``count`` words of memory ``mem`` from ``addr`` on (``READ_WEIGHTS`` frames)."""
        self._need("stdp")
        W = self._stdp_word_bytes()
        per = MAX_REPLY // W
        words = []
        for i in range(0, count, per):
            n = min(per, count - i)
            reply = self.driver.command(Cmd.READ_WEIGHTS, bytes([mem]) + (addr + i).to_bytes(3, "little")
                                        + n.to_bytes(2, "little"))
            words += [int.from_bytes(reply[j * W:(j + 1) * W], "little") for j in range(n)]
        return words

    def load_network(self, rows):
        """Load an SNN (``rows[p] = [(post, weight), ...]``) and reset every neuron's state."""
        cfg = self.stdp_config()
        image = spec.build_image(cfg, rows)
        for mem in (spec.MEM_SYN, spec.MEM_ROW, spec.MEM_BMP):
            if image[mem]:
                self.stdp_write(mem, image[mem])
        self.stdp_write(spec.MEM_STATE, [spec.pack_state(cfg, spec.reset_state(cfg))] * cfg.n_neurons)

    def snn_step(self, events=()):
        """One time step with input events ``events``; returns the ascending list of output spikes."""
        self._need("stdp")
        payload = b"".join(int(e).to_bytes(2, "little") for e in events)
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"events must be at most {MAX_PAYLOAD // 2} per step, not {len(events)}")
        reply = self.driver.command(Cmd.INJECT_SPIKES, payload)
        return [int.from_bytes(reply[i:i + 2], "little") for i in range(0, len(reply), 2)]

    def read_network(self, template):
        """Learned weights, shaped like ``template`` (the effective rows that were loaded)."""
        cfg = self.stdp_config()
        n = sum(len(r) for r in spec.effective_rows(cfg, template))
        return spec.image_rows(cfg, {spec.MEM_SYN: self.stdp_read(spec.MEM_SYN, n)},
                               spec.effective_rows(cfg, template))

    def run_snn(self, rows, steps):
        """Load ``rows``, run ``steps`` (per-step event lists); return (spikes per step, learned rows)."""
        self.load_network(rows)
        spikes = [self.snn_step(ev) for ev in steps]
        return spikes, self.read_network(rows)

    # GEMM (Huffman-compressed weights) ------------------------------------------------------------
    def load_compressed_weights(self, weights, *, block_n=256, max_len=None):
        """Huffman-compress int8 ``weights`` (flat, row-major) and load them from weight address 0.

        Returns the encoder's stats (compressed bits etc.). One block per ``LOAD_WEIGHTS`` frame.
        """
        self._need("gemm")
        max_len = max_len or self.config.gemm.get("max_len", 12)
        values = [int(w) & 0xFF for w in weights]
        tables, beats, stats = encode_stream(values, n_lanes=1, block_n=block_n, max_len=max_len,
                                             raw_bits=0, allow_raw=False)
        self.driver.command(Cmd.LOAD_HUFFMAN, b"".join(w.to_bytes(2, "little") for w in tables[0]))
        blocks, cur = [], []
        for beat in beats:
            if beat.first and cur:
                blocks.append(cur)
                cur = []
            cur.append(beat.words[0])
        blocks.append(cur)
        payloads = [b"".join(w.to_bytes(2, "little") for w in words) for words in blocks]
        self.driver.pipeline([(Cmd.LOAD_WEIGHTS, p) for p in payloads])
        stats["sent_bytes"] = sum(map(len, payloads))
        return stats

    def gemv(self, x, n_out, *, wbase=0):
        """``y[n] = sum_k x[k] * W[wbase + n*len(x) + k]`` for ``n < n_out`` on the MAC array (int8 x)."""
        self._need("gemm")
        out = []
        k = len(x)
        for n0 in range(0, n_out, MAX_N_OUT):
            n = min(MAX_N_OUT, n_out - n0)
            payload = n.to_bytes(2, "little") + k.to_bytes(2, "little") + \
                (wbase + n0 * k).to_bytes(2, "little") + bytes(int(v) & 0xFF for v in x)
            reply = self.driver.command(Cmd.GEMM, payload)
            out += [int.from_bytes(reply[i:i + 4], "little", signed=True) for i in range(0, len(reply), 4)]
        return out

    # HDQT (one layer's training step) ------------------------------------------------------------
    def hdqt_layer(self):
        """Sizes of this board's HDQT layer: dict ``batch, k_dim, o_dim, rows, cols, acc_width, had_cap,
        tile_bits``."""
        c = LayerConfig(**self.config.hdqt)
        return {"batch": c.batch, "k_dim": c.k_dim, "o_dim": c.o_dim, "rows": c.rows, "cols": c.cols,
                "acc_width": c.acc_width, "had_cap": c.had_cap, "tile_bits": c.tile_bits}

    def hdqt_load(self, tensor, values, *, x_unsigned=True):
        """Load ``values`` (int16, row-major, the whole tensor) into ``tensor`` ("x", "w" or "dy")."""
        self._need("hdqt")
        sel = load_select(Tensor[tensor.upper()], x_unsigned)
        vals = [int(v) for v in values]
        per = (self.driver.window_payload() - 3) // 2
        self.driver.pipeline([(Cmd.HDQT_LOAD, bytes([sel]) + i.to_bytes(2, "little")
                               + b"".join(v.to_bytes(2, "little", signed=True) for v in vals[i:i + per]))
                              for i in range(0, len(vals), per)])

    def hdqt_read(self, what, count):
        """Read ``count`` results (``what`` = "results", int32) or master weights ("w", int16)."""
        self._need("hdqt")
        source = ReadSource.W if what == "w" else ReadSource.RESULTS
        per, size = (MAX_READ_WEIGHTS, 2) if source is ReadSource.W else (MAX_READ_RESULTS, 4)
        out = []
        for i in range(0, count, per):
            n = min(per, count - i)
            reply = self.driver.command(Cmd.HDQT_READ, bytes([source.value]) + i.to_bytes(2, "little")
                                        + n.to_bytes(2, "little"))
            out += [int.from_bytes(reply[j:j + size], "little", signed=True)
                    for j in range(0, len(reply), size)]
        return out

    def hdqt_step(self, x, dy, exp_base, *, w=None, x_unsigned=True):
        """One training step of the board's layer: load ``x`` (B x K), ``dy`` (B x O) and, if given,
        master weights ``w`` (O x K; else the weights the previous step left), run the step and read
        everything back.

        Returns
        -------
        dict
            ``y`` (B x O) and ``dx`` (B x K) accumulators as nested lists, ``w`` (updated, O x K),
            ``shifts`` (six quantizer shifts), ``w_saturated``, ``mac_overflow``, ``cycles``.
        """
        L = self.hdqt_layer()
        B, K, O = L["batch"], L["k_dim"], L["o_dim"]
        flat = lambda a: [int(v) for row in a for v in row]  # noqa: E731
        if w is not None:
            self.hdqt_load("w", flat(w), x_unsigned=x_unsigned)
        self.hdqt_load("x", flat(x), x_unsigned=x_unsigned)
        self.hdqt_load("dy", flat(dy), x_unsigned=x_unsigned)
        reply = self.driver.command(Cmd.HDQT_STEP, int(exp_base).to_bytes(2, "little", signed=True))
        order = result_order(B, K, O, L["rows"], L["cols"])
        res = self.hdqt_read("results", len(order))
        y = [[0] * O for _ in range(B)]
        dx = [[0] * K for _ in range(B)]
        for (t, r, c), v in zip(order, res):
            (y if t == 0 else dx)[r][c] = v
        wv = self.hdqt_read("w", O * K)
        return {"y": y, "dx": dx, "w": [wv[o * K:(o + 1) * K] for o in range(O)],
                "shifts": tuple(reply[:6]), "w_saturated": StepFlag.W_SATURATED in StepFlag(reply[6]),
                "mac_overflow": StepFlag.MAC_OVERFLOW in StepFlag(reply[6]),
                "cycles": int.from_bytes(reply[7:11], "little")}
