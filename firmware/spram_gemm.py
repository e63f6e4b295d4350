"""Host side of the SPRAM GEMM group (:mod:`hw.control.spram_gemm_handler`, the iCEBreaker's):
a model's compressed layers loaded once into the board's SPRAM store, then GEMVs that name a
layer's beats (one unit of chained blocks, cut at the handler's ``max_drift``)."""

from hw.control.protocol import MAX_PAYLOAD, Cmd
from hw.control.spram_gemm_handler import MAX_N_OUT, max_drift
from hw.mac import spec as mac_spec
from sim.control.spram_gemm import beat_bytes, encode_model

__all__ = ["load_model", "gemv"]


def load_model(driver, gemm, layers):
    """Compress ``layers`` (``[(w, mode), ...]``, ``w`` an ``n_out x k`` integer matrix) with one
    table and load them into the store of a board with GEMM group parameters ``gemm``.

    Returns ``{"blocks": [(start, beats), ...] per layer (its unit of chained blocks), "code_bits",
    "symbols", "sent_bytes", "chained": chained blocks of all layers}``.

    Raises
    ------
    ValueError
        A layer too large for one GEMM (``n_out`` > 128, ``k`` > the board's ``max_k``) or blocks
        beyond the store.
    """
    contexts = gemm.get("contexts", 1)
    for w, _ in layers:
        if not 1 <= len(w) <= MAX_N_OUT or not 1 <= len(w[0]) <= gemm.get("max_k", 256):
            raise ValueError(f"a layer must be 1..{MAX_N_OUT} x 1..{gemm.get('max_k', 256)}, not "
                             f"{len(w)} x {len(w[0])}")
    table, blocks, stats = encode_model(layers, cols=gemm.get("cols", 2), max_drift=max_drift(gemm),
                                        contexts=contexts, max_len=gemm.get("max_len", 12),
                                        escape=gemm.get("escape", True))
    table_bytes = b"".join(v.to_bytes(2, "little") for v in table)
    if sum(map(len, blocks)) > gemm.get("store_depth", 16384):
        raise ValueError(f"the blocks take {sum(map(len, blocks))} beats, more than the store's "
                         f"{gemm.get('store_depth', 16384)}")
    per = min(MAX_PAYLOAD, driver.window_payload()) // (2 * contexts) * (2 * contexts)
    # The table in frames of a flag byte (bit 0 on the first: a new model) and whole words.
    frames = [(Cmd.LOAD_HUFFMAN, bytes([i == 0]) + table_bytes[i:i + per - 2])
              for i in range(0, len(table_bytes), per - 2)]
    starts, at = [], 0
    for b in blocks:
        data = beat_bytes(b)
        frames += [(Cmd.LOAD_WEIGHTS, data[i:i + per]) for i in range(0, len(data), per)]
        starts.append((at, len(b)))
        at += len(b)
    driver.pipeline(frames)
    return {"blocks": starts, "code_bits": stats["code_bits"], "symbols": stats["symbols"],
            "sent_bytes": sum(len(p) for _, p in frames), "chained": stats["blocks"]}


def gemv(driver, block, x, n_out, mode="int8"):
    """``y = W x`` for the loaded layer ``block`` (``(start, beats)`` from :func:`load_model`) with
    ``n_out`` outputs; ``x`` int8 activations. Returns the ``n_out`` int32 results."""
    start, beats = block
    payload = (bytes([mac_spec.mode_code(mode)]) + int(n_out).to_bytes(2, "little")
               + len(x).to_bytes(2, "little") + start.to_bytes(2, "little") + beats.to_bytes(2, "little")
               + bytes(int(v) & 0xFF for v in x))
    reply = driver.command(Cmd.GEMM, payload)
    return [int.from_bytes(reply[i:i + 4], "little", signed=True) for i in range(0, len(reply), 4)]
