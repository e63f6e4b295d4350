"""The streams ``edgelearn compress`` writes are the ones the RTL decodes: whole blocks of a compressed
256 x 1024 weight matrix (from the container file) through the HuffmanDecoder on Verilator."""

import numpy as np
import pytest

from edgelearn import compress as c
from hw.huffman import spec
from hw.huffman.decoder import HuffmanDecoder
from sim.mac.golden import quantize_weights
from sim.runner import run_cocotb


def container_slice(path, *, max_len, lanes, blocks, escape=False):
    """Compress a 256 x 1024 Laplacian matrix (int8, the decoder's L and format lanes, escape codes
    if ``escape``), cut ``blocks`` (indices) out of the container's stream and save them with the
    table and the expected symbols."""
    rng = np.random.default_rng(11)
    w = (rng.laplace(0, 0.02, (256, 1024)) * rng.uniform(0.5, 2, (256, 1))).astype(np.float32)
    blob, report = c.compress_model({"w": w}, fmt="int8", max_len=max_len, n_lanes=lanes, escape=escape)
    manifest, data0 = c._manifest(blob, "slice")
    e = manifest["tensors"][0]
    table = np.frombuffer(blob, "<u2", e["table_words"][0], data0 + e["table_offset"])
    assert (spec.ESCAPE in table.tolist()[1:]) == escape
    words = np.frombuffer(blob, "<u2", e["beats"] * lanes, data0 + e["stream_offset"]).reshape(-1, lanes)
    rows = e["block_rows"] + [e["beats"]]
    assert report[0]["blocks"] == len(rows) - 1 > max(blocks)
    symbols = quantize_weights(w, "int8", per_channel=True)[0].ravel() & 0xFF
    per_block = -(-symbols.size // (lanes * (len(rows) - 1))) * lanes       # as the encoder cuts blocks
    first = np.zeros(e["beats"], dtype=bool)
    first[e["block_rows"]] = True
    keep = np.concatenate([np.arange(rows[b], rows[b + 1]) for b in blocks])
    expect = np.concatenate([symbols[b * per_block:(b + 1) * per_block] for b in blocks])
    np.savez(path, table=table, words=words[keep], first=first[keep], symbols=expect)
    return len(keep), len(expect)


@pytest.mark.slow          # ~90 k symbols per case through Verilator and the golden decoder: minutes
@pytest.mark.parametrize("params,blocks", [
    ({"max_len": 12, "lanes": 2, "raw_bits": 8, "fifo_depth": 64}, [2]),                   # the last block
    ({"max_len": 8, "lanes": 1, "raw_bits": 8, "fifo_depth": 64, "contexts": 2}, [1]),     # UP5K's decoder
    ({"max_len": 8, "lanes": 2, "raw_bits": 8, "fifo_depth": 64, "escape": True}, [1]),    # escape codes
])
def test_container_slice_through_rtl(params, blocks, tmp_path):
    lanes = params["lanes"] * params.get("contexts", 1)
    beats, symbols = container_slice(tmp_path / "slice.npz", max_len=params["max_len"], lanes=lanes,
                                     blocks=blocks, escape=params.get("escape", False))
    assert beats > 10_000 and symbols > 80_000
    top = f"huffman_decoder_slice_c{params.get('contexts', 1)}" + ("_esc" if params.get("escape") else "")
    run_cocotb(HuffmanDecoder(**params), toplevel=top,
               test_module="sim.huffman.tb_huffman_slice",
               params=dict(params, slice=str(tmp_path / "slice.npz")))
