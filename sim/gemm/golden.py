"""Golden model of the GEMM engine (:mod:`hw.gemm`): the streams of a job and the expected results.

The arithmetic is :func:`sim.mac.golden.ref_gemm`'s (each weight tile at its own precision); the
weight tiles are coded with the Huffman golden encoder (:mod:`sim.huffman.golden`), one table for
the whole weight matrix and one unit of chained blocks per weight tile
(:func:`sim.huffman.golden.chain_blocks`, lane drift at most the engine's ``max_drift``), whose
symbols are the tile's packed weight bytes in beat order (:mod:`hw.gemm.spec`).
"""

import numpy as np

from hw.gemm import spec
from hw.huffman import spec as huff_spec
from hw.mac import spec as mac_spec
from sim.huffman.golden import build_table, chain_blocks, table_stream
from sim.mac.golden import ref_gemm

__all__ = ["tile_symbols", "weight_tiles", "compress_tiles", "act_words", "expected_rows", "gemm_job",
           "concat_jobs"]


def _padded(a, rows, cols):
    out = np.zeros((rows, cols), dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    out[:a.shape[0], :a.shape[1]] = a
    return out


def tile_symbols(w_tile, mode, cols):
    """Packed weight bytes of one weight tile (``<= cols`` rows of ``K`` weights in ``mode``'s
    range) in block order: beat ``j`` (``ceil(K / lanes)`` beats, the last zero-padded), then
    column ``c`` (missing rows zero). The engine's and the SPRAM GEMM group's weight order."""
    code = mac_spec.mode_code(mode)
    n = mac_spec.LANES[code]
    k = np.shape(w_tile)[1]
    w = _padded(w_tile, cols, -(-k // n) * n)
    return [mac_spec.pack_weight_byte(w[c, j * n:(j + 1) * n].tolist(), code)
            for j in range(w.shape[1] // n) for c in range(cols)]


def weight_tiles(w, mode, cols):
    """:func:`tile_symbols` of each tile of ``cols`` outputs of ``w`` (``N x K``), in order."""
    return [tile_symbols(w[n0:n0 + cols], mode, cols) for n0 in range(0, len(w), cols)]


def compress_tiles(symbol_tiles, *, format_lanes, max_len, max_drift, escape=False, parity=0):
    """``(table words, [data beats of each tile])``: one table for all tiles, one unit of chained
    blocks of lane drift at most ``max_drift`` words per tile (the engine's ``max_drift``; with one
    format lane, or weights of even statistics, one block)."""
    table = build_table([s for t in symbol_tiles for s in t], max_len, escape)
    words = huff_spec.serialize_table(*table, max_len, escape)
    blocks = []
    for syms in symbol_tiles:
        if len(syms) % format_lanes:
            raise ValueError(f"a weight tile's {len(syms)} symbols do not fill {format_lanes} lanes")
        beats, _ = chain_blocks(syms, n_lanes=format_lanes, table=table, max_drift=max_drift,
                                mode=huff_spec.MODE_INT, parity=parity)
        blocks.append(beats)
    return words, blocks


def act_words(x, rows):
    """Activation words of a batch ``x`` (``M x K``): row tile major, then group of 4."""
    m, k = np.shape(x)
    tiles = -(-m // rows)
    xp = _padded(x, tiles * rows, k)
    return [mac_spec.pack_act_beat(xp[t * rows:(t + 1) * rows, 4 * g:4 * g + 4].tolist())
            for t in range(tiles) for g in range(k // spec.GROUP)]


def expected_rows(x, w, modes, *, rows, cols, acc_width):
    """Result rows in the engine's order, ``(values, overflow)`` each: per weight tile (at its
    mode; a tile with an undefined mode code gives none), per row tile, ``rows`` rows."""
    m, k = np.shape(x)
    tiles = -(-m // rows)
    xp = _padded(x, tiles * rows, k)
    out = []
    for n, mode in enumerate(modes):
        if not mac_spec.is_defined_mode(mac_spec.MODES.get(mode, mode)):
            continue
        wt = _padded(w[n * cols:(n + 1) * cols], cols, k)
        y, ovf = ref_gemm(xp, wt, mode, acc_width=acc_width)
        out += [([int(v) for v in y[r]], bool(ovf[r].any())) for r in range(tiles * rows)]
    return out


def gemm_job(x, w, modes, *, rows, cols, format_lanes, max_len, row_tile_bits, group_bits, max_drift,
             acc_width=24, act_unsigned=False, escape=False, parity=0):
    """Everything one GEMM sends and expects.

    ``x``: ``M x K`` activations, ``w``: ``N x K`` weights (``K`` a multiple of 4), ``modes``: one
    precision per weight tile of ``cols`` output channels (each tile's weights in its range).
    Returns a dict: ``cmds`` (command words), ``acts`` (activation words), ``table`` (``(word,
    first)`` pairs), ``blocks`` (data beats per tile), ``rows`` (expected result rows). ``parity``:
    the table's place in the decoder's table sequence (0 for the first table sent, 1 for the next,
    ...), which the blocks name (:mod:`hw.huffman.spec`); :func:`concat_jobs` joins jobs.
    """
    m, k = np.shape(x)
    if k % spec.GROUP:
        raise ValueError(f"K must be a multiple of {spec.GROUP}, not {k}")
    tiles = -(-m // rows)
    groups = k // spec.GROUP
    w = np.asarray(w, dtype=np.int64)
    syms = [tile_symbols(w[n * cols:(n + 1) * cols], mode if mac_spec.is_defined_mode(
        mac_spec.MODES.get(mode, mode)) else "int2", cols) for n, mode in enumerate(modes)]
    table, blocks = compress_tiles(syms, format_lanes=format_lanes, max_len=max_len, max_drift=max_drift,
                                   escape=escape, parity=parity)
    cmds = [spec.pack_cmd(mode=mode, row_tiles=tiles, groups=groups, act_unsigned=act_unsigned,
                          load_acts=n == 0, row_tile_bits=row_tile_bits, group_bits=group_bits)
            for n, mode in enumerate(modes)]
    return {"cmds": cmds, "acts": act_words(x, rows), "table": table_stream([table]), "blocks": blocks,
            "rows": expected_rows(x, w, modes, rows=rows, cols=cols, acc_width=acc_width)}


def concat_jobs(*jobs):
    """One job of several GEMMs run back to back (their tables' parities 0, 1, 0, ...)."""
    return {key: [v for job in jobs for v in job[key]] for key in ("cmds", "acts", "table", "blocks", "rows")}
