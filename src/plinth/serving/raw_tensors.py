"""v2 tensors as raw bytes: gRPC's ``raw_input_contents`` / ``raw_output_contents`` and the HTTP
binary tensor extension carry the same layout.

Values are row-major and little-endian; ``BOOL`` is one byte per element; each ``BYTES`` element
is a 4-byte little-endian length followed by that many bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from orjson import dumps as _dumps
from starlette.responses import Response

from plinth.core.errors import InvalidInput
from plinth.serving.protocol import DATATYPES

__all__ = ["HEADER", "decode_raw", "encode_raw", "infer_response", "read_binary_request"]

# v2 datatype -> little-endian NumPy dtype of one element (BYTES has none: length-prefixed)
_DTYPES = {
    "BOOL": "|b1",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def _size(shape: list[int]) -> int:
    size = 1
    for d in shape:
        size *= d
    return size


def decode_raw(name: str, datatype: str, shape: list[int], raw: bytes) -> list[Any]:
    """The flat values of input ``name`` from its raw bytes; InvalidInput naming it when they do not fit."""
    import numpy as np

    if datatype not in DATATYPES:
        raise InvalidInput(
            f"input {name!r}: datatype {datatype!r} is not one of {', '.join(sorted(DATATYPES))}", field=name
        )
    if any(d < 0 for d in shape):
        raise InvalidInput(f"input {name!r}: shape must be a list of non-negative ints, got {shape!r}", field=name)
    size = _size(shape)
    if datatype == "BYTES":
        values = _split_bytes(name, raw)
        if len(values) != size:
            raise InvalidInput(
                f"input {name!r}: shape {shape} needs {size} values, data has {len(values)}", field=name, expected=shape
            )
        return values
    dtype = np.dtype(_DTYPES[datatype])
    if len(raw) != size * dtype.itemsize:
        raise InvalidInput(
            f"input {name!r}: shape {shape} of {datatype} needs {size * dtype.itemsize} bytes, "
            f"the raw contents have {len(raw)}",
            field=name,
            expected=shape,
        )
    return np.frombuffer(raw, dtype=dtype).tolist()  # type: ignore[no-any-return]


def _split_bytes(name: str, raw: bytes) -> list[bytes]:
    values: list[bytes] = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise InvalidInput(f"input {name!r}: BYTES element {len(values)} has a truncated length", field=name)
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInput(
                f"input {name!r}: BYTES element {len(values)} needs {length} bytes, {end - offset} are left", field=name
            )
        values.append(bytes(raw[offset : offset + length]))
        offset += length
    return values


def encode_raw(datatype: str, values: list[Any]) -> bytes:
    """The raw bytes of flat ``values`` of ``datatype`` (strings of BYTES are sent as UTF-8)."""
    import numpy as np

    if datatype == "BYTES":
        parts = []
        for v in values:
            b = v if isinstance(v, bytes) else b"" if v is None else str(v).encode()
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.asarray(values, dtype=_DTYPES[datatype]).tobytes()


# --- the HTTP binary tensor extension (what tritonclient.http sends by default) -------------------
HEADER = "Inference-Header-Content-Length"


def read_binary_request(raw: bytes, header_length: str) -> Any:
    """A v2 infer body whose first ``header_length`` bytes are the JSON request and the rest the
    inputs' values, in order, for each input with ``parameters.binary_data_size``."""
    import json

    if not header_length.isdigit() or int(header_length) > len(raw):
        raise InvalidInput(
            f"{HEADER} must be the size of the JSON part of the body (at most {len(raw)}), got {header_length!r}",
            field=HEADER,
        )
    n = int(header_length)
    try:
        body = json.loads(raw[:n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the JSON part of the request is not valid JSON: {exc}", field="body") from None
    offset = n
    for item in (body.get("inputs") or []) if isinstance(body, dict) else []:
        params = item.get("parameters") if isinstance(item, dict) else None
        if not isinstance(params, dict) or "binary_data_size" not in params:
            continue
        name, size = item.get("name"), params["binary_data_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(raw):
            raise InvalidInput(
                f"input {name!r}: binary_data_size {size!r} does not fit the {len(raw) - offset} bytes left",
                field=str(name),
            )
        shape = item.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise InvalidInput(f"input {name!r}: shape must be a list of non-negative ints, got {shape!r}", field=name)
        item["data"] = decode_raw(str(name), str(item.get("datatype")), shape, raw[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise InvalidInput(f"the body has {len(raw) - offset} bytes that no input's binary_data_size claims")
    return body


def _binary_wanted(body: Any) -> tuple[bool, dict[str, bool]]:
    """(all outputs binary?, output name -> binary?) as the request asks."""
    if not isinstance(body, dict):
        return False, {}
    params = body.get("parameters")
    default = bool(params.get("binary_data_output")) if isinstance(params, dict) else False
    named = {}
    for out in body.get("outputs") or []:
        if isinstance(out, dict) and isinstance(out.get("name"), str):
            p = out.get("parameters")
            named[out["name"]] = bool(p.get("binary_data", default)) if isinstance(p, dict) else default
    return default, named


class JSONBytes(Response):
    """A JSON answer already encoded: its two headers are set directly (a starlette
    ``Response`` works them out on every answer)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.body = body
        self.status_code = status_code
        self.background = None
        self.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


def infer_response(answer: dict[str, Any], body: Any) -> Any:
    """The HTTP response of a v2 answer: JSON, or JSON then the raw values of the outputs the
    request asked for in binary (``binary_data`` of an output, ``binary_data_output`` of all)."""
    import json

    default, named = _binary_wanted(body)
    if not default and not any(named.values()):
        return JSONBytes(_dumps(answer))
    chunks, outputs = [], []
    for out in answer["outputs"]:
        if named.get(out["name"], default):
            chunk = encode_raw(out["datatype"], out["data"])
            chunks.append(chunk)
            out = {k: v for k, v in out.items() if k != "data"} | {"parameters": {"binary_data_size": len(chunk)}}
        outputs.append(out)
    header = json.dumps({**answer, "outputs": outputs}).encode()
    return Response(
        header + b"".join(chunks), media_type="application/octet-stream", headers={HEADER: str(len(header))}
    )
