"""Host encoding for the SPRAM GEMM group (:mod:`hw.control.spram_gemm_handler`): a model's layers
as packed weight bytes in tile order, one Huffman table for the whole model, one unit of chained
blocks per layer (:func:`sim.huffman.golden.chain_blocks`: lane drift at most the handler's
``max_drift``)."""

from hw.huffman import spec as huff_spec
from sim.gemm.golden import weight_tiles
from sim.huffman.golden import build_table, chain_blocks

__all__ = ["layer_symbols", "encode_model", "beat_bytes"]


def layer_symbols(w, mode, cols):
    """The decoder symbols of one ``GEMM`` block: ``w`` (``n_out x k`` integers in ``mode``'s range)
    as its weight tiles (:func:`sim.gemm.golden.weight_tiles`) one after another."""
    return [s for tile in weight_tiles(w, mode, cols) for s in tile]


def encode_model(layers, *, cols, max_drift, contexts=1, max_len=12, escape=True):
    """``layers``: ``[(w, mode), ...]``. Returns ``(table_words, blocks, stats)``: the one table of
    the model, per layer the beats of its unit of chained blocks (tuples of ``contexts`` 16-bit
    words, headers included; each block's lane drift at most ``max_drift`` words, the handler's
    :attr:`~hw.control.spram_gemm_handler.SpramGEMMHandler.max_drift`), and ``code_bits``
    (payload bits), ``symbols``, ``words`` (beats x contexts), ``blocks`` (chained blocks, all
    layers)."""
    syms = [layer_symbols(w, mode, cols) for w, mode in layers]
    table = build_table([s for layer in syms for s in layer], max_len, escape)
    blocks, code_bits, n_blocks = [], 0, 0
    for s in syms:
        if len(s) % contexts:
            raise ValueError(f"a block needs a multiple of {contexts} symbols (cols >= contexts)")
        beats, info = chain_blocks(s, n_lanes=contexts, table=table, max_drift=max_drift,
                                   mode=huff_spec.MODE_INT, parity=0)
        blocks.append([b.words for b in beats])
        code_bits += sum(info["bitlens"])
        n_blocks += info["blocks"]
    words = huff_spec.serialize_table(*table, max_len, escape)
    stats = {"code_bits": code_bits, "symbols": sum(map(len, syms)),
             "words": sum(len(b) for b in blocks) * contexts, "table_words": len(words),
             "blocks": n_blocks}
    return words, blocks, stats


def beat_bytes(beats):
    """The ``LOAD_WEIGHTS`` bytes of ``beats`` (each lane word little-endian, lane 0 first)."""
    return b"".join(w.to_bytes(2, "little") for beat in beats for w in beat)
