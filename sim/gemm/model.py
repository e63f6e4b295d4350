"""Cycle model of the GEMM engine (:class:`hw.gemm.GemmEngine`) with compressed weights.

The engine overlaps three things: the decoder filling one weight bank, the array computing from
the other, and the results draining. With the input streams always offered and the results always
taken, weight tile ``n`` (``beats_n`` beats, ``S_n = cols * beats_n`` symbols) goes:

    fill_n  = max(fill_{n-1}, release_{n-2}) + S_n / rate        (bank free, decoder ready)
    start_n = max(fill_n, release_{n-1}) + SWITCH                 (bank full, array free)
    release_n = start_n + row_tiles * max(beats_n, 2 * rows - 1)  (the array's tiles)

with ``rate`` the decoded symbols per array cycle (``lanes x symbols per decode cycle per lane x
f_decode / f_array``), ``fill_{-1}`` the time to load the code table and reach the first block
(``START`` decode cycles plus the table's words), ``release_{-1} = release_{-2}`` the activation
load, and the run ending when the array's last row leaves, ``cols / 2 + 14 + 2 * (rows - 1)``
cycles after the last release (the systolic array's latency, ``docs/mac.md``). ``SWITCH`` is the
sequencer's: from the previous tile's last beat to the next tile's first beat read (release,
command, start, load, wait: 5 cycles). The model leaves out the decoder's stalls on its input and
the result consumer; ``bench/bench_gemm.py`` checks it against the simulated engine.
"""

__all__ = ["engine_cycles", "busy_fraction", "SWITCH"]

SWITCH = 5          # array cycles between two weight tiles (sequencer: release -> first read)
START = 12          # decode cycles of the decoder's pipeline before the first block's symbols


def engine_cycles(beats, row_tiles, *, rows, cols, rate, table_words, clock_ratio=1.0, act_words=0):
    """Array cycles of a GEMM of weight tiles of ``beats[n]`` beats against ``row_tiles`` row
    tiles. ``rate``: decoded symbols per *array* cycle; ``clock_ratio``: f_array / f_decode (the
    table and the decoder's start-up are counted in decode cycles); ``act_words``: activation
    words loaded before the first tile (one per cycle, in parallel with the first decode)."""
    fill_prev = (START + table_words) * clock_ratio
    rel = [act_words, act_words]            # release_{n-2}, release_{n-1}
    for b in beats:
        fill = max(fill_prev, rel[0]) + cols * b / rate
        start = max(fill, rel[1]) + SWITCH
        release = start + row_tiles * max(b, 2 * rows - 1)
        rel = [rel[1], release]
        fill_prev = fill
    return rel[1] + cols // 2 + 14 + 2 * (rows - 1)


def busy_fraction(m, k, n, mode_lanes, *, rows, cols, rate, table_words, clock_ratio=1.0):
    """``(MAC/cycle, MAC/cycle / peak)`` of an ``m x k x n`` GEMM (useful MACs only: the padding
    rows of the last row tile count as idle) with ``mode_lanes`` products per PE per beat."""
    beats = k // mode_lanes
    row_tiles = -(-m // rows)
    cycles = engine_cycles([beats] * -(-n // cols), row_tiles, rows=rows, cols=cols, rate=rate,
                           table_words=table_words, clock_ratio=clock_ratio, act_words=row_tiles * k // 4)
    mac = m * k * n / cycles
    return mac, mac / (rows * cols * mode_lanes)
