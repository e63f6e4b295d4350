"""``edgelearn compress`` / ``decompress``: whole models as Huffman-coded weight streams in one file.

Every 2-D floating-point tensor with at least ``min_size`` weights is quantized (``int8``, ``int4``,
``int4-pairs``: per-row symmetric, as the MAC array's :func:`sim.mac.golden.quantize_weights`
``per_channel=True``; ``bf16``: rounded to nearest even) and coded with one table into the block
stream the RTL decoder (:mod:`hw.huffman`) parses; every other tensor passes raw (its bytes as read).

Container (little-endian)::

    8 bytes   MAGIC
    8 bytes   manifest length
    manifest  JSON (utf-8): settings and one entry per tensor (name, shape, dtype, kind, offsets)
    4 bytes   CRC-32 of the manifest
    data      per tensor: [scales float32 x rows] [table words u16] [stream words u16, beats x N]

A coded tensor's entry holds its block start beats (the stream's ``first`` marks), the CRC-32 of its
data bytes and the CRC-32 of its restored symbols. Offsets are relative to the data section.
``decompress`` checks both CRCs, the decoder's error flags and the manifest against the stream, and
writes the dequantized float32 tensors (``--quantized``: the integer tensors and their scales, or
the BF16 bit patterns as uint16).

Errors: :class:`BadInput` (a bad argument or model file: the CLI exits 2) and :class:`CorruptContainer`
(exit 1), each one line naming the file and the tensor. Outputs are written to a temporary file in
the same directory and renamed into place, so an interrupted run leaves no partial output.
"""

import json
import math
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file
from safetensors.numpy import save as save_safetensors

from hw.huffman import spec
from sim.huffman import fast
from sim.mac.golden import quantize_weights

__all__ = ["BadInput", "CorruptContainer", "FORMATS", "MAGIC", "load_model", "save_model", "quantize_tensor",
           "dequantize", "encode_tensor", "decode_tensor", "compress_model", "decompress_model",
           "compress_file", "decompress_file", "max_block_n", "report_lines", "plot_tensor"]

MAGIC = b"ELHUFF1\n"
FORMATS = ("int8", "int4", "int4-pairs", "bf16")
FIFO_DEPTHS = tuple(4 << k for k in range(8))       # HuffmanDecoder's fifo_depth: powers of two 4..512
#: Symbol mode, raw bits r, exponent bits and the decoder's raw width R of each format.
_CODING = {"int8": (spec.MODE_INT, 0, 0, 8), "int4": (spec.MODE_INT, 0, 0, 8),
           "int4-pairs": (spec.MODE_INT, 0, 0, 8), "bf16": (spec.MODE_EXP, 8, 8, 8)}
_WEIGHTS_PER_SYMBOL = {"int8": 1, "int4": 1, "int4-pairs": 2, "bf16": 1}
_QUANT_BITS = {"int8": 8, "int4": 4, "int4-pairs": 4, "bf16": 16}
#: Largest lane bit length whose word count still fits the header's 16-bit ``M``.
_MAX_LANE_BITS = 0xFFFF * spec.WORD


class BadInput(ValueError):
    """A bad argument or an unreadable model file (the CLI exits 2)."""


class CorruptContainer(Exception):
    """A container that fails a check (the CLI exits 1)."""


def max_block_n(code_bits, r):
    """Most symbols per lane per block: the header's 16-bit ``n``, and a lane's bits within 16-bit ``M``
    words when every symbol takes the table's longest code (``code_bits``, with the symbol after an
    escape) and ``r`` raw bits, so a block never overflows whatever its data."""
    return min(0xFFFF, _MAX_LANE_BITS // max(1, code_bits + r))


# Model files ------------------------------------------------------------------------------------

def _read_safetensors(path):
    """Tensors of a .safetensors file; BF16 tensors (numpy has no bfloat16) as float32, exactly."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise BadInput(f"{path}: truncated safetensors file (no header)")
        (hlen,) = struct.unpack("<Q", head)
        size = os.fstat(fh.fileno()).st_size
        if hlen > size - 8:
            raise BadInput(f"{path}: truncated safetensors file (header of {hlen} bytes)")
        try:
            header = json.loads(fh.read(hlen))
        except ValueError as e:
            raise BadInput(f"{path}: bad safetensors header ({e})") from None
        bf16 = {k: v for k, v in header.items() if k != "__metadata__" and v.get("dtype") == "BF16"}
        if bf16:
            out = {}
            for name, entry in header.items():
                if name == "__metadata__":
                    continue
                a, b = entry["data_offsets"]
                if 8 + hlen + b > size:
                    raise BadInput(f"{path}: tensor {name}: truncated file")
                if entry["dtype"] != "BF16":
                    raise BadInput(f"{path}: tensor {name}: mixed BF16 and {entry['dtype']} files are not "
                                   "supported; convert the model to one dtype")
                fh.seek(8 + hlen + a)
                u = np.frombuffer(fh.read(b - a), dtype="<u2").astype(np.uint32) << np.uint32(16)
                out[name] = u.view(np.float32).reshape(entry["shape"])
            return out
    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise BadInput(f"{path}: cannot read safetensors file: {e}") from None


def load_model(path):
    """``{name: ndarray}`` of a ``.safetensors``, ``.npz`` or ``.npy`` file (``BadInput`` if unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such model file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            return _read_safetensors(path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if suffix == ".npy":
            return {path.stem: np.load(path, allow_pickle=False)}
    except BadInput:
        raise
    except Exception as e:      # numpy's readers raise many types for a damaged file
        raise BadInput(f"{path}: cannot read model file ({type(e).__name__}: {e})") from None
    raise BadInput(f"{path}: model files must end in .safetensors, .npz or .npy")


def save_model(tensors, path, *, force=False):
    """Write ``{name: ndarray}`` by the suffix of ``path`` (temporary file + rename)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".npz", ".npy"):
        raise BadInput(f"{path}: output must end in .safetensors, .npz or .npy")
    if suffix == ".npy" and len(tensors) != 1:
        raise BadInput(f"{path}: a .npy file holds one tensor, the model has {len(tensors)}")

    def write(fh):
        if suffix == ".safetensors":
            fh.write(save_safetensors({k: np.ascontiguousarray(v) for k, v in tensors.items()}))
        elif suffix == ".npz":
            np.savez(fh, **tensors)
        else:
            np.save(fh, next(iter(tensors.values())))
    _atomic_write(path, write, force=force)


def _atomic_write(path, write, *, force):
    path = Path(path)
    if path.exists() and not force:
        raise BadInput(f"{path}: output exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)           # mkstemp's 0600 -> what open() would have made
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# Quantization and symbols -----------------------------------------------------------------------

def quantize_tensor(w, fmt):
    """``(q, scales)``: int formats per-row symmetric (``q`` int64, ``scales`` float32 per row), ``bf16``
    the bit patterns (uint16, round to nearest even) and no scales."""
    w = np.asarray(w)
    if fmt == "bf16":
        u = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)).astype(np.uint16), None
    q, scale = quantize_weights(w, "int8" if fmt == "int8" else "int4", per_channel=True)
    return q, np.asarray(scale, dtype=np.float32)


def dequantize(q, scales, fmt):
    """float32 weights of a quantized tensor (exactly what ``decompress`` writes)."""
    if fmt == "bf16":
        return (q.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return q.astype(np.float32) * scales[:, None]


def _symbols(q, fmt):
    if fmt == "bf16":
        return q.ravel()
    if fmt == "int8":
        return q.ravel() & 0xFF
    nib = q.ravel() & 0xF
    if fmt == "int4":
        return nib
    if nib.size % 2:
        nib = np.concatenate([nib, [0]])
    return nib[0::2] | nib[1::2] << 4


def _from_symbols(values, fmt, shape):
    count = math.prod(shape)
    if fmt == "bf16":
        return values[:count].astype(np.uint16).reshape(shape)
    if fmt == "int8":
        return values[:count].astype(np.uint8).view(np.int8).astype(np.int64).reshape(shape)
    if fmt == "int4-pairs":
        values = np.stack([values & 0xF, values >> 4], axis=1).ravel()
    nib = values[:count].astype(np.int64) & 0xF
    return (nib - ((nib & 8) << 1)).reshape(shape)


def _entropy(counts):
    """Shannon entropy (bits per symbol) of a symbol histogram."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


# One tensor -------------------------------------------------------------------------------------

def encode_tensor(q, fmt, *, max_len=16, n_lanes=1, escape=False, block_n=None, fifo_depth=spec.FIFO_DEPTH):
    """Code a quantized tensor: ``(tables, Stream, info)`` with ``info`` the sizes in bits
    (payload, headers, padding, table, total), the symbol entropy and the symbol histogram.
    ``escape``: allow an escape code (a decoder built with escapes). ``fifo_depth``: the lane FIFO
    words of the hardware decoder the stream is for; with several lanes, blocks are cut so that
    their lane drift fits it (:func:`hw.huffman.spec.max_drift`; ``docs/huffman.md``, *Chained
    blocks and lane drift*), else lanes of very different code lengths can stop that decoder."""
    mode, r, ebits, raw_bits = _CODING[fmt]
    values = _symbols(q, fmt)
    counts = fast.histogram(values, mode, r, ebits)
    table = fast.table_of_counts(counts, max_len, escape)
    block_n = block_n or max_block_n(int(fast.code_arrays(table)[1].max()), r)
    tables, stream, stats = fast.encode_fast(values, n_lanes=n_lanes, block_n=block_n, max_len=max_len,
                                             mode=mode, r=r, ebits=ebits, raw_bits=raw_bits, escape=escape,
                                             table=table, max_drift=spec.max_drift(fifo_depth))
    total = stats["code_bits"] + stats["pad_bits"] + stats["header_bits"] + stats["table_bits"]
    info = dict(stats, total_bits=total, symbols=int(values.size), weights=int(q.size),
                entropy_bits=(_entropy(counts) + r) * values.size, histogram=counts)
    return tables, stream, info


def decode_tensor(stream, tables, fmt, *, max_len, n_lanes, escape=False):
    """``(values, blocks)`` of a tensor's stream (:func:`sim.huffman.fast.decode_fast`);
    ``CorruptContainer`` on a decoder error."""
    _, _, _, raw_bits = _CODING[fmt]
    values, blocks, errors = fast.decode_fast(stream, tables, n_lanes=n_lanes, max_len=max_len,
                                              raw_bits=raw_bits, escape=escape)
    if errors:
        names = [name for bit, name in spec.ERROR_NAMES.items() if errors & bit]
        raise CorruptContainer(f"decoder errors {', '.join(names)}")
    return values, blocks


# Models -----------------------------------------------------------------------------------------

def _check_settings(fmt, max_len, n_lanes, min_size, fifo_depth=spec.FIFO_DEPTH):
    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        spec.check_max_len(max_len)
    except ValueError as e:
        raise BadInput(f"--max-len: {e}") from None
    if not 1 <= n_lanes <= 16:
        raise BadInput(f"--lanes must be from 1 to 16, not {n_lanes}")
    if min_size < 1:
        raise BadInput(f"--min-size must be positive, not {min_size}")
    if fifo_depth not in FIFO_DEPTHS:
        raise BadInput(f"--fifo-depth must be a power of two from 4 to 512 (the decoder's lane FIFO), "
                       f"not {fifo_depth}")


def _codable(arr):
    return arr.ndim == 2 and arr.dtype.kind == "f"


def compress_model(tensors, *, fmt="int8", max_len=16, n_lanes=1, min_size=4096, escape=False,
                   source="model", progress=None, fifo_depth=spec.FIFO_DEPTH):
    """``(blob, report)``: the container bytes and one report dict per tensor (``fifo_depth``: as
    :func:`encode_tensor`'s)."""
    _check_settings(fmt, max_len, n_lanes, min_size, fifo_depth)
    entries, chunks, report = [], [], []
    offset = 0
    total = sum(int(a.size) for a in tensors.values())
    done = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "fiub":
            raise BadInput(f"{source}: tensor {name}: unsupported dtype {arr.dtype} (floating point, integer "
                           "or bool only)")
        entry = {"name": name, "shape": list(arr.shape), "dtype": arr.dtype.str}
        if _codable(arr) and arr.size >= min_size:
            if not np.isfinite(arr).all():
                raise BadInput(f"{source}: tensor {name}: non-finite weights cannot be quantized")
            q, scales = quantize_tensor(arr, fmt)
            tables, stream, info = encode_tensor(q, fmt, max_len=max_len, n_lanes=n_lanes, escape=escape,
                                                 fifo_depth=fifo_depth)
            parts = [b"" if scales is None else scales.astype("<f4").tobytes(),
                     b"".join(np.asarray(t, dtype="<u2").tobytes() for t in tables),
                     stream.words.astype("<u2").tobytes()]
            data = b"".join(parts)
            entry.update(kind="coded", format=fmt, scales_offset=offset, scales_bytes=len(parts[0]),
                         table_offset=offset + len(parts[0]), table_words=[len(t) for t in tables],
                         stream_offset=offset + len(parts[0]) + len(parts[1]), beats=int(len(stream.first)),
                         block_rows=np.flatnonzero(stream.first).tolist(), symbols=info["symbols"],
                         values_crc32=zlib.crc32(_symbols(q, fmt).astype("<u2").tobytes()))
            report.append({"name": name, "shape": list(arr.shape), "kind": "coded", "format": fmt,
                           "weights": info["weights"],
                           "entropy_bits_per_weight": info["entropy_bits"] / info["weights"],
                           "coded_bits_per_weight": info["total_bits"] / info["weights"],
                           "overhead": info["total_bits"] / info["entropy_bits"] - 1 if info["entropy_bits"]
                           else float("inf"),
                           "ratio": _QUANT_BITS[fmt] * info["weights"] / info["total_bits"],
                           "payload_bits": info["code_bits"], "header_bits": info["header_bits"],
                           "pad_bits": info["pad_bits"], "table_bits": info["table_bits"],
                           "scale_bits": 8 * len(parts[0]), "raw_blocks": info["raw_blocks"],
                           "blocks": info["blocks"], "histogram": info["histogram"].tolist(),
                           "code_lengths": _code_lengths(tables, escape)})
        else:
            data = np.ascontiguousarray(arr).tobytes()
            entry.update(kind="raw", offset=offset)
            report.append({"name": name, "shape": list(arr.shape), "kind": "raw", "weights": int(arr.size),
                           "bytes": len(data)})
        entry["bytes"] = len(data)
        entry["crc32"] = zlib.crc32(data)
        entries.append(entry)
        chunks.append(data)
        offset += len(data)
        done += int(arr.size)
        if progress:
            progress(done, total, name)
    manifest = json.dumps({"container": "edgelearn-huffman", "version": 1, "max_len": max_len,
                           "lanes": n_lanes, "escape": escape, "fifo_depth": fifo_depth,
                           "tensors": entries}).encode()
    head = [MAGIC, struct.pack("<Q", len(manifest)), manifest, struct.pack("<I", zlib.crc32(manifest))]
    blob = b"".join(head + chunks)
    return blob, report


def _code_lengths(tables, escape):
    """Bits per symbol 0..255 of a tensor's table (escape code + symbol for escaped symbols; 0: no
    code; no table: all 0)."""
    if not tables:
        return [0] * spec.MAX_SYMBOLS
    return fast.code_arrays(spec.parse_table(tables[0], spec.MAX_MAX_LEN, escape))[1].tolist()


def _manifest(blob, source):
    if len(blob) < len(MAGIC) + 12 or blob[:len(MAGIC)] != MAGIC:
        raise CorruptContainer(f"{source}: not an edgelearn compressed model (bad magic or too short)")
    (mlen,) = struct.unpack_from("<Q", blob, len(MAGIC))
    start = len(MAGIC) + 8
    if start + mlen + 4 > len(blob):
        raise CorruptContainer(f"{source}: truncated manifest")
    raw = blob[start:start + mlen]
    if struct.unpack_from("<I", blob, start + mlen)[0] != zlib.crc32(raw):
        raise CorruptContainer(f"{source}: manifest CRC mismatch")
    try:
        manifest = json.loads(raw)
        manifest["tensors"], manifest["max_len"], manifest["lanes"], manifest["escape"]  # noqa: B018
    except KeyError as e:
        raise CorruptContainer(f"{source}: bad manifest (no field {e})") from None
    except (ValueError, TypeError) as e:
        raise CorruptContainer(f"{source}: bad manifest ({e})") from None
    return manifest, start + mlen + 4


def decompress_model(blob, *, source="container", quantized=False, progress=None):
    """``{name: ndarray}`` of a container (``CorruptContainer`` on any failed check)."""
    manifest, data0 = _manifest(blob, source)
    settings = {"max_len": manifest["max_len"], "n_lanes": manifest["lanes"],
                "escape": bool(manifest["escape"])}
    out = {}
    total = sum(math.prod(e["shape"]) for e in manifest["tensors"])
    done = 0
    for e in manifest["tensors"]:
        name = e.get("name", "?")
        where = f"{source}: tensor {name}"
        try:
            a, n = data0 + e.get("scales_offset", e.get("offset", 0)), e["bytes"]
            if a + n > len(blob):
                raise CorruptContainer(f"{where}: truncated data ({len(blob) - a} of {n} bytes)")
            data = blob[a:a + n]
            if zlib.crc32(data) != e["crc32"]:
                raise CorruptContainer(f"{where}: CRC mismatch")
            shape, dtype = tuple(e["shape"]), np.dtype(e["dtype"])
            if e["kind"] == "raw":
                if n != math.prod(shape) * dtype.itemsize:
                    raise CorruptContainer(f"{where}: manifest mismatch ({n} bytes for shape {list(shape)})")
                out[name] = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
            else:
                out.update(_decode_entry(e, data, shape, settings, where, quantized))
        except CorruptContainer:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise CorruptContainer(f"{where}: manifest mismatch ({type(err).__name__}: {err})") from None
        done += math.prod(e["shape"])
        if progress:
            progress(done, total, name)
    return out


def _decode_entry(e, data, shape, settings, where, quantized):
    fmt, n_lanes = e["format"], settings["n_lanes"]
    if fmt not in FORMATS:
        raise CorruptContainer(f"{where}: unknown format {fmt!r}")
    sb = e["scales_bytes"]
    tw = sum(e["table_words"])
    beats = e["beats"]
    if sb + 2 * tw + 2 * beats * n_lanes != len(data):
        raise CorruptContainer(f"{where}: manifest mismatch (sizes do not add up to {len(data)} bytes)")
    scales = np.frombuffer(data[:sb], dtype="<f4").astype(np.float32)
    words = np.frombuffer(data[sb:sb + 2 * tw], dtype="<u2").astype(int).tolist()
    tables, pos = [], 0
    for n in e["table_words"]:
        tables.append(words[pos:pos + n])
        pos += n
    first = np.zeros(beats, dtype=bool)
    rows = np.asarray(e["block_rows"], dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= beats):
        raise CorruptContainer(f"{where}: manifest mismatch (block start outside the stream)")
    first[rows] = True
    stream = fast.Stream(np.frombuffer(data[sb + 2 * tw:], dtype="<u2").reshape(beats, n_lanes), first)
    try:
        values, blocks = decode_tensor(stream, tables, fmt, **settings)
    except CorruptContainer as err:
        raise CorruptContainer(f"{where}: {err}") from None
    except ValueError as err:
        raise CorruptContainer(f"{where}: {err}") from None
    if len(blocks) != len(rows) or values.size < e["symbols"]:
        raise CorruptContainer(f"{where}: manifest mismatch ({len(blocks)} blocks, {values.size} symbols; "
                               f"manifest {len(rows)} blocks, {e['symbols']} symbols)")
    values = values[:e["symbols"]].astype(np.int64)
    if zlib.crc32(values.astype("<u2").tobytes()) != e["values_crc32"]:
        raise CorruptContainer(f"{where}: CRC mismatch of the decoded symbols")
    q = _from_symbols(values, fmt, shape)
    if fmt != "bf16" and scales.size != shape[0]:
        raise CorruptContainer(f"{where}: manifest mismatch ({scales.size} scales for {shape[0]} rows)")
    if not quantized:
        return {e["name"]: dequantize(q, scales, fmt)}
    if fmt == "bf16":
        return {e["name"]: q}
    return {e["name"]: q.astype(np.int8), e["name"] + ".scale": scales}


# Files, report, plot ----------------------------------------------------------------------------

class _Bar:
    """A progress bar on stderr (only on a terminal, so logs and tests stay clean)."""

    def __init__(self, label, stream=None):
        stream = sys.stderr if stream is None else stream     # the stream of the call, not of the import
        self.label, self.stream, self.on = label, stream, stream.isatty()

    def __call__(self, done, total, name):
        if not self.on:
            return
        frac = done / total if total else 1.0
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% {name[:40]:<40}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def compress_file(model, out, *, fmt="int8", max_len=16, n_lanes=1, min_size=4096, escape=False, force=False,
                  fifo_depth=spec.FIFO_DEPTH):
    """Compress a model file into a container; returns the report."""
    out = Path(out)
    if out.exists() and not force:
        raise BadInput(f"{out}: output exists (use --force to overwrite)")
    tensors = load_model(model)
    if not tensors:
        raise BadInput(f"{model}: the model has no tensors")
    blob, report = compress_model(tensors, fmt=fmt, max_len=max_len, n_lanes=n_lanes, min_size=min_size,
                                  escape=escape, source=str(model), progress=_Bar("compress"),
                                  fifo_depth=fifo_depth)
    _atomic_write(out, lambda fh: fh.write(blob), force=force)
    return report


def decompress_file(container, out, *, quantized=False, force=False):
    """Restore a model file from a container; returns ``{name: shape}``."""
    container, out = Path(container), Path(out)
    if not container.is_file():
        raise BadInput(f"{container}: no such file")
    if out.exists() and not force:
        raise BadInput(f"{out}: output exists (use --force to overwrite)")
    tensors = decompress_model(container.read_bytes(), source=str(container), quantized=quantized,
                               progress=_Bar("decompress"))
    save_model(tensors, out, force=force)
    return {k: list(v.shape) for k, v in tensors.items()}


def report_lines(report):
    """The per-tensor report as text lines (bits per weight; ratio against the quantized width)."""
    lines = [f"{'tensor':<32} {'shape':>14} {'weights':>10} {'entropy':>8} {'coded':>8} {'overhead':>9} "
             f"{'ratio':>6}"]
    coded = [r for r in report if r["kind"] == "coded"]
    for r in report:
        shape = "x".join(map(str, r["shape"])) or "scalar"
        if r["kind"] == "raw":
            lines.append(f"{r['name'][:32]:<32} {shape:>14} {r['weights']:>10} {'raw':>8} {r['bytes']:>7}B")
            continue
        lines.append(f"{r['name'][:32]:<32} {shape:>14} {r['weights']:>10} "
                     f"{r['entropy_bits_per_weight']:8.3f} {r['coded_bits_per_weight']:8.3f} "
                     f"{100 * r['overhead']:8.2f}% {r['ratio']:5.2f}x")
    if coded:
        w = sum(r["weights"] for r in coded)
        h = sum(r["entropy_bits_per_weight"] * r["weights"] for r in coded)
        c = sum(r["coded_bits_per_weight"] * r["weights"] for r in coded)
        lines.append(f"{'total (coded tensors)':<32} {'':>14} {w:>10} {h / w:8.3f} {c / w:8.3f} "
                     f"{100 * (c / h - 1) if h else float('inf'):8.2f}% "
                     f"{_QUANT_BITS[coded[0]['format']] * w / c:5.2f}x")
    lines.append("bits per weight; coded = payload + block headers + padding + table (scales not counted); "
                 "ratio against the quantized width")
    return lines


def plot_tensor(report, path):
    """Symbol histogram of the largest coded tensor against its code lengths (matplotlib, optional
    heavy import kept here)."""
    coded = [r for r in report if r["kind"] == "coded"]
    if not coded:
        raise BadInput("--plot: no tensor was coded (all passed raw)")
    r = max(coded, key=lambda t: t["weights"])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hist = np.asarray(r["histogram"], dtype=float)
    lengths = np.asarray(r["code_lengths"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(np.arange(256), hist / hist.sum(), width=1.0, color="tab:blue", label="symbol frequency")
    ax.set_yscale("log")
    ax.set_xlabel("symbol (" + ("exponent" if r["format"] == "bf16" else "two's complement code") + ")")
    ax.set_ylabel("frequency")
    ax2 = ax.twinx()
    used = lengths > 0
    ax2.step(np.arange(256)[used], lengths[used], where="mid", color="tab:red", label="code length")
    ax2.set_ylabel("code length (bits)")
    ax.set_title(f"{r['name']} ({r['format']}): {r['entropy_bits_per_weight']:.3f} bits entropy, "
                 f"{r['coded_bits_per_weight']:.3f} coded")
    fig.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return r["name"]
