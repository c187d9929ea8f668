"""Minimal safetensors reader/writer for the reference scripts (numpy + torch), written from the
format description: u64 little-endian header length, JSON header, raw little-endian data."""
import json
import struct

import numpy as np
import torch

_DT = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64",
       torch.int32: "I32", torch.bool: "BOOL", torch.uint8: "U8"}
_TD = {v: k for k, v in _DT.items()}


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": _DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = _TD[info["dtype"]]
        if dt == torch.bfloat16:
            arr = np.frombuffer(data[b:e], dtype=np.int16).copy()
            t = torch.from_numpy(arr).view(torch.bfloat16)
        else:
            np_dt = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64,
                     torch.int32: np.int32, torch.bool: np.bool_, torch.uint8: np.uint8}[dt]
            t = torch.from_numpy(np.frombuffer(data[b:e], dtype=np_dt).copy())
        out[name] = t.reshape(info["shape"])
    return out
