"""Host encoding for the SPRAM GEMM group (:mod:`hw.control.spram_gemm_handler`): a model's layers
as packed weight bytes in tile order, one Huffman table for the whole model, one block per layer."""

from hw.control.spram_gemm_handler import tile_order
from hw.huffman import spec as huff_spec
from hw.mac import spec as mac_spec
from sim.huffman.golden import build_table, encode_block

__all__ = ["layer_symbols", "encode_model", "beat_bytes"]


def layer_symbols(w, mode, cols):
    """The decoder symbols of one ``GEMM`` block: ``w`` (``n_out x k`` integers in ``mode``'s range)
    packed ``lanes(mode)`` weights per byte along ``k`` (zero-padded) and put in tile order."""
    code = mac_spec.mode_code(mode)
    n = mac_spec.LANES[code]
    k = len(w[0])
    beats = mac_spec.beats_for_k(k, code)
    packed = [[mac_spec.pack_weight_byte([int(row[i]) if i < k else 0 for i in range(j * n, (j + 1) * n)],
                                         code) for j in range(beats)] for row in w]
    return tile_order(packed, cols)


def encode_model(layers, *, cols, contexts=1, max_len=12, escape=True):
    """``layers``: ``[(w, mode), ...]``. Returns ``(table_words, blocks, stats)``: the one table of
    the model, per layer the block's beats (tuples of ``contexts`` 16-bit words, header included),
    and ``code_bits`` (payload bits), ``symbols``, ``words`` (beats x contexts)."""
    syms = [layer_symbols(w, mode, cols) for w, mode in layers]
    table = build_table([s for layer in syms for s in layer], max_len, escape)
    blocks, code_bits = [], 0
    for s in syms:
        if len(s) % contexts:
            raise ValueError(f"a block needs a multiple of {contexts} symbols (cols >= contexts)")
        beats, info = encode_block(s, n_lanes=contexts, mode=huff_spec.MODE_INT, parity=0, table=table)
        blocks.append([b.words for b in beats])
        code_bits += sum(info["bitlens"])
    words = huff_spec.serialize_table(*table, max_len, escape)
    stats = {"code_bits": code_bits, "symbols": sum(map(len, syms)),
             "words": sum(len(b) for b in blocks) * contexts, "table_words": len(words)}
    return words, blocks, stats


def beat_bytes(beats):
    """The ``LOAD_WEIGHTS`` bytes of ``beats`` (each lane word little-endian, lane 0 first)."""
    return b"".join(w.to_bytes(2, "little") for beat in beats for w in beat)
