"""Host encoding for the SPRAM GEMM group (:mod:`hw.control.spram_gemm_handler`): a model's layers
as packed weight bytes in tile order, one Huffman table for the whole model, one block per layer."""

from hw.huffman import spec as huff_spec
from sim.gemm.golden import weight_tiles
from sim.huffman.golden import build_table, encode_block

__all__ = ["layer_symbols", "encode_model", "beat_bytes"]


def layer_symbols(w, mode, cols):
    """The decoder symbols of one ``GEMM`` block: ``w`` (``n_out x k`` integers in ``mode``'s range)
    as its weight tiles (:func:`sim.gemm.golden.weight_tiles`) one after another."""
    return [s for tile in weight_tiles(w, mode, cols) for s in tile]


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
