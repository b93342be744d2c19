"""The serving request path without HTTP: decode, check, merge, predict, split and encode
for 16 single-row v2 requests (batched) and for one request alone (unbatched), on the
iris pipeline of ``bench_serve.py``. Run: ``python -m benchmarks.serving.request_path``;
put an older ``src`` first on ``PYTHONPATH`` to compare.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    from benchmarks.serving.bench_serve import _model_folder
    from plinth.models import load
    from plinth.serving import protocol
    from plinth.serving.app import ServedModel
    from plinth.serving.batching import _concat, _slice

    frame_of = getattr(protocol, "frame_of", lambda data: data)
    with tempfile.TemporaryDirectory() as tmp:
        served = ServedModel("iris", "1", load(_model_folder(Path(tmp))))
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    body = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.5]} for n in names]}

    def batched(k: int = 16) -> list[Any]:
        parts = [served.prepare(protocol.decode_infer_request(body, served.signature)[0]) for _ in range(k)]
        result = served.model.predict(_concat(parts))
        return [protocol.encode_outputs(_slice(result, i, i + 1), served.signature) for i in range(k)]

    def alone() -> list[Any]:
        data, _ = protocol.decode_infer_request(body, served.signature)
        return protocol.encode_outputs(served.model.predict(frame_of(served.prepare(data))), served.signature)

    for label, fn, n, per in (("batched, 16 requests per call", batched, 200, 16), ("unbatched", alone, 1000, 1)):
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        print(f"{label}: {(time.perf_counter() - t) / n / per * 1e6:.0f} us per request")


if __name__ == "__main__":
    main()
