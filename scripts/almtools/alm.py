# SPDX-License-Identifier: Apache-2.0
"""Reader and writer for the .alm model container (docs/FORMAT.md, version 1).

    write_alm("m.alm", {"name": "tiny", ...}, ["Input in 0 1 data c=1 h=16 w=16", ...],
              {"conv1.weight": w, "conv1.bias": b}, dtype="f32")
    meta, graph_lines, tensors = read_alm("m.alm")

The writer is deterministic (same arguments -> same bytes). `pack_sections` and
`tensor_table` are exposed so tests can build deliberately malformed files.
"""

import struct

import numpy as np

MAGIC = b"ALM1"
VERSION = 1
HEADER_BYTES = 16
SECTION_ENTRY_BYTES = 32
ALIGN = 64


class AlmError(ValueError):
    """Malformed .alm file or invalid writer arguments."""


def _align(n, a=ALIGN):
    return (n + a - 1) // a * a


def meta_text(meta):
    lines = []
    for key, value in meta.items():
        key, value = str(key), str(value)
        if not key or "=" in key or "\n" in key or "\n" in value or key.startswith("#"):
            raise AlmError(f"meta key/value not representable: {key!r}={value!r}")
        lines.append(f"{key}={value}")
    return "".join(line + "\n" for line in lines)


def graph_text(graph_lines):
    for line in graph_lines:
        if "\n" in line:
            raise AlmError(f"graph line contains a newline: {line!r}")
    return "".join(line + "\n" for line in graph_lines)


def _as_storage(array, dtype):
    a = np.asarray(array)
    if dtype == "f32":
        return np.ascontiguousarray(a, dtype="<f4")
    if dtype == "f16":
        return np.ascontiguousarray(a, dtype="<f2")
    raise AlmError(f"dtype {dtype!r}: must be f32 or f16")


def tensor_table(tensors, dtype="f32"):
    """Lays tensors out at 64-byte aligned offsets. Returns (table_text, weights_bytes)."""
    lines = []
    blob = bytearray()
    for name, array in tensors.items():
        if not name or any(ch.isspace() for ch in name):
            raise AlmError(f"tensor name {name!r}: must be non-empty without whitespace")
        if isinstance(array, tuple):  # (array, dtype) overrides the default dtype
            array, tdtype = array
        else:
            tdtype = dtype
        data = _as_storage(array, tdtype)
        if data.ndim == 0 or data.size == 0:
            raise AlmError(f"tensor {name}: must have at least one element and one dim")
        offset = _align(len(blob))
        blob.extend(b"\0" * (offset - len(blob)))
        blob.extend(data.tobytes())
        dims = ",".join(str(d) for d in data.shape)
        lines.append(f"{name} {tdtype} {dims} {offset}")
    blob.extend(b"\0" * (_align(len(blob)) - len(blob)))
    return "".join(line + "\n" for line in lines), bytes(blob)


def pack_sections(sections, align_weights=True):
    """sections: list of (name, bytes). Text sections are packed back to back after the
    table; `weights` starts on a 64-byte boundary."""
    count = len(sections)
    pos = HEADER_BYTES + SECTION_ENTRY_BYTES * count
    table = bytearray()
    body = bytearray()
    for name, data in sections:
        nb = name.encode("ascii")
        if len(nb) > 16:
            raise AlmError(f"section name {name!r} longer than 16 bytes")
        if align_weights and name == "weights":
            pad = _align(pos) - pos
            body.extend(b"\0" * pad)
            pos += pad
        table.extend(nb.ljust(16, b"\0"))
        table.extend(struct.pack("<QQ", pos, len(data)))
        body.extend(data)
        pos += len(data)
    header = MAGIC + struct.pack("<III", VERSION, count, 0)
    return bytes(header + table + body)


def alm_bytes(meta, graph_lines, tensors, dtype="f32"):
    table, weights = tensor_table(tensors, dtype)
    return pack_sections([
        ("meta", meta_text(meta).encode("utf-8")),
        ("graph", graph_text(graph_lines).encode("utf-8")),
        ("tensors", table.encode("utf-8")),
        ("weights", weights),
    ])


def write_alm(path, meta, graph_lines, tensors, dtype="f32"):
    """meta: ordered dict of str->str; graph_lines: list of layer lines; tensors: ordered dict
    name -> ndarray (or (ndarray, dtype)); dtype: default storage, 'f32' or 'f16'."""
    data = alm_bytes(meta, graph_lines, tensors, dtype)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def read_sections(data):
    """Returns an ordered dict name -> bytes, checking the header and section table."""
    if len(data) < HEADER_BYTES:
        raise AlmError(f"file of {len(data)} bytes is shorter than the 16-byte header")
    if data[:4] != MAGIC:
        raise AlmError(f"magic {data[:4]!r}: must be b'ALM1'")
    version, count, flags = struct.unpack_from("<III", data, 4)
    if version != VERSION:
        raise AlmError(f"version {version}: only version 1 is supported")
    if not 1 <= count <= 16:
        raise AlmError(f"section count {count}: must be 1..16")
    if flags != 0:
        raise AlmError(f"flags {flags}: must be 0")
    table_end = HEADER_BYTES + SECTION_ENTRY_BYTES * count
    if table_end > len(data):
        raise AlmError("section table extends past the end of the file")
    sections = {}
    spans = []
    for i in range(count):
        base = HEADER_BYTES + SECTION_ENTRY_BYTES * i
        name = data[base:base + 16].rstrip(b"\0").decode("ascii")
        offset, size = struct.unpack_from("<QQ", data, base + 16)
        if offset < table_end or offset + size > len(data):
            raise AlmError(f"section {name!r} [{offset}, +{size}) outside the file body")
        for other, (o, s) in spans:
            if offset < o + s and o < offset + size:
                raise AlmError(f"sections {other!r} and {name!r} overlap")
        if name in sections:
            raise AlmError(f"duplicate section {name!r}")
        spans.append((name, (offset, size)))
        sections[name] = bytes(data[offset:offset + size])
    return sections


def parse_meta(text):
    meta = {}
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "=" not in line:
            raise AlmError(f"meta line {n}: {line!r} has no '='")
        key, value = line.split("=", 1)
        if key in meta:
            raise AlmError(f"meta line {n}: duplicate key {key!r}")
        meta[key] = value
    return meta


def read_alm(path_or_bytes):
    """Returns (meta dict, graph lines, tensors dict name -> float32 ndarray)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    sections = read_sections(data)
    for required in ("meta", "graph", "tensors", "weights"):
        if required not in sections:
            raise AlmError(f"missing section {required!r}")
    meta = parse_meta(sections["meta"].decode("utf-8"))
    graph_lines = [l for l in sections["graph"].decode("utf-8").split("\n") if l.strip()]
    weights = sections["weights"]
    tensors = {}
    for n, line in enumerate(sections["tensors"].decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise AlmError(f"tensors line {n}: {line!r} must be 'name dtype dims offset'")
        name, dtype, dims_s, off_s = parts
        dims = [int(d) for d in dims_s.split(",")]
        offset = int(off_s)
        if dtype not in ("f32", "f16"):
            raise AlmError(f"tensor {name}: dtype {dtype!r} must be f32 or f16")
        if offset % 16:
            raise AlmError(f"tensor {name}: offset {offset} not a multiple of 16")
        if any(d < 1 for d in dims):
            raise AlmError(f"tensor {name}: dims {dims_s} must be >= 1")
        itemsize = 4 if dtype == "f32" else 2
        nbytes = int(np.prod(dims)) * itemsize
        if offset + nbytes > len(weights):
            raise AlmError(f"tensor {name}: [{offset}, +{nbytes}) past the weights section")
        if name in tensors:
            raise AlmError(f"tensor {name}: duplicate name")
        arr = np.frombuffer(weights, dtype="<f4" if dtype == "f32" else "<f2",
                            count=int(np.prod(dims)), offset=offset)
        tensors[name] = arr.astype(np.float32).reshape(dims)
    return meta, graph_lines, tensors


def parse_layer(line):
    """Splits a graph line into (type, name, inputs, outputs, params dict)."""
    parts = line.split()
    if len(parts) < 4:
        raise AlmError(f"graph line {line!r}: needs 'Type name n_in n_out ...'")
    ltype, name = parts[0], parts[1]
    n_in, n_out = int(parts[2]), int(parts[3])
    rest = parts[4:]
    if len(rest) < n_in + n_out:
        raise AlmError(f"graph line {line!r}: fewer blob names than n_in + n_out")
    inputs = rest[:n_in]
    outputs = rest[n_in:n_in + n_out]
    params = {}
    for kv in rest[n_in + n_out:]:
        if "=" not in kv:
            raise AlmError(f"layer {name}: parameter {kv!r} is not key=value")
        k, v = kv.split("=", 1)
        params[k] = v
    return ltype, name, inputs, outputs, params
