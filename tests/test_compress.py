"""`edgelearn compress` / `decompress`: exact round trips per format and input type, the report, and
every kind of bad input (missing/truncated model, unsupported dtype, corrupt container, existing
output, interrupted write)."""

import json
import struct
import zlib

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from edgelearn import compress as c
from edgelearn.cli import main
from sim.mac.golden import quantize_weights


def model(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.laplace(0, 0.02, (96, 80)).astype(np.float32),
            "w2": rng.normal(0, 0.1, (33, 65)).astype(np.float64),        # odd count: int4 pairs pad
            "bias": rng.normal(0, 1, 80).astype(np.float32),              # not 2-D: raw
            "tiny": np.ones((2, 3), dtype=np.float16),                    # too small: raw
            "steps": np.arange(7, dtype=np.int64)}


def run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("fmt,options", [
    ("int8", ["--max-len", 12]), ("int8", ["--max-len", 8, "--escape"]), ("int4", ["--lanes", 2]),
    ("int4-pairs", ["--max-len", 8, "--escape"]), ("bf16", ["--max-len", 9])])
def test_round_trip_restores_quantized_tensors_exactly(fmt, options, tmp_path, capsys):
    m = model()
    np.savez(tmp_path / "m.npz", **m)
    rc, out, err = run(["compress", tmp_path / "m.npz", "-o", tmp_path / "m.elh", "--format", fmt,
                        "--min-size", 1000, "--json"] + options, capsys)
    assert rc == 0, err
    report = {r["name"]: r for r in json.loads(out)}
    assert [report[k]["kind"] for k in m] == ["coded", "coded", "raw", "raw", "raw"]
    assert report["w1"]["coded_bits_per_weight"] < {"bf16": 16, "int8": 8}.get(fmt, 4)
    if "--escape" in options:
        assert report["w1"]["overhead"] < 0.1 and max(report["w1"]["code_lengths"]) > 8
    assert run(["decompress", tmp_path / "m.elh", "-o", tmp_path / "q.npz", "--quantized"], capsys)[0] == 0
    assert run(["decompress", tmp_path / "m.elh", "-o", tmp_path / "f.safetensors"], capsys)[0] == 0
    q = np.load(tmp_path / "q.npz")
    f = load_file(tmp_path / "f.safetensors")
    for name in ("bias", "tiny", "steps"):
        assert q[name].dtype == m[name].dtype and np.array_equal(q[name], m[name])
        assert np.array_equal(f[name], m[name])
    for name in ("w1", "w2"):
        if fmt == "bf16":
            u = m[name].astype(np.float32).view(np.uint32).astype(np.uint64)
            bits = ((u + 0x7FFF + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)).astype(np.uint16)
            assert np.array_equal(q[name], bits)
            assert np.array_equal(f[name].view(np.uint32), bits.astype(np.uint32) << np.uint32(16))
            continue
        ref, scale = quantize_weights(m[name], "int8" if fmt == "int8" else "int4", per_channel=True)
        assert np.array_equal(q[name], ref)
        assert np.array_equal(q[name + ".scale"], scale.astype(np.float32))
        assert np.array_equal(f[name], ref.astype(np.float32) * scale.astype(np.float32)[:, None])


def test_lanes_blocks_fit_the_decoders_fifo(tmp_path, capsys):
    """With several lanes the blocks' lane drift fits the decoder's FIFO (``--fifo-depth``): a weight
    matrix whose even input channels are pruned puts all zeros in the even lanes, which one block
    would let drift by hundreds of words (a decoder with small FIFOs stops for good on such a
    block); the round trip stays exact. Where the cuts' headers make coding cost more than raw
    (8-word FIFOs here), the tensor goes raw."""
    from hw.huffman import spec
    from sim.huffman import fast
    from sim.huffman import golden as g
    rng = np.random.default_rng(4)
    w = rng.laplace(0, 0.02, (64, 128)).astype(np.float32)
    w[:, 0::2] = 0
    w[:, 1] = 0.5                           # the per-channel scale: the other weights are small
    q, _ = c.quantize_tensor(w, "int8")
    for fifo_depth, kw in ((32, {"fifo_depth": 32}), (64, {})):
        tables, stream, info = c.encode_tensor(q, "int8", max_len=12, n_lanes=8, **kw)
        values, blocks, errors = fast.decode_fast(stream, tables, n_lanes=8, max_len=12, raw_bits=8)
        assert errors == 0 and info["raw_blocks"] == 0 and info["blocks"] == len(blocks) > 1
        table = spec.check_table_words(tables[0], 12)
        pos, drifts = 0, []
        for n, _ in blocks:
            drifts.append(g.block_drift(values[pos:pos + 8 * n].tolist(), n_lanes=8, table=table))
            pos += 8 * n
        whole = g.block_drift(values.tolist(), n_lanes=8, table=table)
        assert max(drifts) <= spec.max_drift(fifo_depth) < whole
        assert info["total_bits"] < 8 * q.size
    _, _, info = c.encode_tensor(q, "int8", max_len=12, n_lanes=8, fifo_depth=8)
    assert info["raw_blocks"] == info["blocks"] == 1
    np.save(tmp_path / "p.npy", w)
    rc, out, err = run(["compress", tmp_path / "p.npy", "-o", tmp_path / "p.elh", "--lanes", 8,
                        "--fifo-depth", 32, "--max-len", 12, "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)[0]["blocks"] > 1
    assert b'"fifo_depth": 32' in (tmp_path / "p.elh").read_bytes()
    assert run(["decompress", tmp_path / "p.elh", "-o", tmp_path / "q.npz", "--quantized"], capsys)[0] == 0
    assert np.array_equal(np.load(tmp_path / "q.npz")["p"], q)


def test_safetensors_bf16_and_npy_inputs(tmp_path, capsys):
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.05, (64, 128)).astype(np.float32)
    bits = (w.view(np.uint32) >> np.uint32(16)).astype("<u2")
    entry = {"dtype": "BF16", "shape": [64, 128], "data_offsets": [0, bits.nbytes]}
    header = json.dumps({"w": entry}).encode()
    (tmp_path / "b.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bits.tobytes())
    assert run(["compress", tmp_path / "b.safetensors", "-o", tmp_path / "b.elh", "--format", "bf16"],
               capsys)[0] == 0
    assert run(["decompress", tmp_path / "b.elh", "-o", tmp_path / "b.npy"], capsys)[0] == 0
    restored = np.load(tmp_path / "b.npy").view(np.uint32)
    assert np.array_equal(restored, bits.astype(np.uint32) << np.uint32(16))
    np.save(tmp_path / "a.npy", w)
    save_file({"a": w}, tmp_path / "a.safetensors")
    for src in ("a.npy", "a.safetensors"):
        rc, out, err = run(["compress", tmp_path / src, "-o", tmp_path / (src + ".elh"), "--plot",
                            tmp_path / (src + ".png")], capsys)
        assert rc == 0, err
        assert "total (coded tensors)" in out
        assert (tmp_path / (src + ".png")).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "a.npy.elh").read_bytes() == (tmp_path / "a.safetensors.elh").read_bytes()


def test_bad_model_inputs_exit_2_naming_file_and_tensor(tmp_path, capsys):
    out = tmp_path / "o.elh"
    rc, _, err = run(["compress", tmp_path / "none.npz", "-o", out], capsys)
    assert rc == 2 and "none.npz" in err and err.count("\n") == 1
    save_file({"w": np.ones((64, 64), dtype=np.float32)}, tmp_path / "t.safetensors")
    data = (tmp_path / "t.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[:len(data) - 100])
    rc, _, err = run(["compress", tmp_path / "t.safetensors", "-o", out], capsys)
    assert rc == 2 and "t.safetensors" in err and err.count("\n") == 1
    np.savez(tmp_path / "z.npz", good=np.ones((64, 64)), cplx=np.ones((64, 64), dtype=np.complex64))
    rc, _, err = run(["compress", tmp_path / "z.npz", "-o", out], capsys)
    assert rc == 2 and "tensor cplx" in err and "complex64" in err
    np.savez(tmp_path / "y.npz", w=np.ones((64, 64)))
    for bad in (["--max-len", 7], ["--format", "int3"], ["--lanes", 0], ["--fifo-depth", 6],
                ["--fifo-depth", 1024]):
        rc, _, err = run(["compress", tmp_path / "y.npz", "-o", out] + bad, capsys)
        assert rc == 2 and err.startswith("edgelearn: error:"), bad
    assert not out.exists()
    assert list(tmp_path.glob(".*.tmp")) == []


def test_existing_output_needs_force(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", **model())
    out = tmp_path / "m.elh"
    out.write_bytes(b"keep me")
    rc, _, err = run(["compress", tmp_path / "m.npz", "-o", out], capsys)
    assert rc == 2 and "--force" in err and out.read_bytes() == b"keep me"
    assert run(["compress", tmp_path / "m.npz", "-o", out, "--force"], capsys)[0] == 0
    dst = tmp_path / "r.npz"
    dst.write_bytes(b"keep me too")
    assert run(["decompress", out, "-o", dst], capsys)[0] == 2 and dst.read_bytes() == b"keep me too"


def _container(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", **model())
    assert run(["compress", tmp_path / "m.npz", "-o", tmp_path / "m.elh", "--min-size", 1000], capsys)[0] == 0
    blob = (tmp_path / "m.elh").read_bytes()
    manifest, data0 = c._manifest(blob, "x")
    return blob, manifest, data0


def _with_manifest(blob, manifest, data0):
    raw = json.dumps(manifest).encode()
    return c.MAGIC + struct.pack("<Q", len(raw)) + raw + struct.pack("<I", zlib.crc32(raw)) + blob[data0:]


def test_corrupt_containers_exit_1_naming_the_tensor(tmp_path, capsys):
    blob, manifest, data0 = _container(tmp_path, capsys)
    w2 = next(e for e in manifest["tensors"] if e["name"] == "w2")
    cases = {}
    flip = bytearray(blob)
    flip[data0 + w2["stream_offset"] + 40] ^= 0x10
    cases["CRC mismatch"] = bytes(flip)
    cases["truncated"] = blob[:data0 + w2["stream_offset"] + 10]
    # the container CRC fixed up as well: the decoder's own checks (lane CRC) still catch the flip
    fixed = json.loads(json.dumps(manifest))
    e = next(e for e in fixed["tensors"] if e["name"] == "w2")
    e["crc32"] = zlib.crc32(flip[data0 + e["scales_offset"]:data0 + e["scales_offset"] + e["bytes"]])
    cases["decoder errors"] = _with_manifest(bytes(flip), fixed, data0)
    for field, value, message in (("symbols", w2["symbols"] + 1000, "manifest mismatch"),
                                  ("beats", 3, "manifest mismatch"),
                                  ("values_crc32", w2["values_crc32"] ^ 1, "CRC mismatch of the decoded"),
                                  ("block_rows", [0, 1], "decoder errors bad_header")):   # wrong framing
        bad = json.loads(json.dumps(manifest))
        next(e for e in bad["tensors"] if e["name"] == "w2")[field] = value
        cases[f"{message}/{field}"] = _with_manifest(blob, bad, data0)
    for message, data in cases.items():
        (tmp_path / "bad.elh").write_bytes(data)
        rc, _, err = run(["decompress", tmp_path / "bad.elh", "-o", tmp_path / "out.npz"], capsys)
        assert rc == 1, message
        assert "bad.elh" in err and "tensor w2" in err and message.split("/")[0] in err, (message, err)
        assert err.count("\n") == 1
        assert not (tmp_path / "out.npz").exists()
    head = bytearray(blob)
    head[20] ^= 1
    (tmp_path / "bad.elh").write_bytes(bytes(head))
    rc, _, err = run(["decompress", tmp_path / "bad.elh", "-o", tmp_path / "out.npz"], capsys)
    assert rc == 1 and "manifest CRC" in err
    (tmp_path / "bad.elh").write_bytes(b"PK\x03\x04 not a container")
    assert run(["decompress", tmp_path / "bad.elh", "-o", tmp_path / "out.npz"], capsys)[0] == 1


def test_interrupted_write_leaves_no_output(tmp_path, capsys, monkeypatch):
    np.savez(tmp_path / "m.npz", **model())

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(c.os, "replace", interrupted)         # the whole temporary file is written
    rc = main(["compress", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.elh")])
    capsys.readouterr()
    assert rc == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
