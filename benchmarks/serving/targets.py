"""The servers ``bench_serve.py`` measures next to ``plinth serve``, each run by uvicorn with
the same settings as ``plinth serve`` (one worker, httptools + uvloop where installed, no
access log):

* ``noop_asgi``: a raw ASGI endpoint that reads the body and answers a fixed JSON object,
  the ceiling of the HTTP stack Plinth's inference path runs on;
* ``noop_fastapi``: the same no-op as a FastAPI route;
* ``fastapi_pipeline``: a plain FastAPI endpoint calling the scikit-learn pipeline once
  per request (``dataframe_split`` body, as MLflow takes);
* ``FixedCostModel``: a custom Plinth model with a fixed cost per call (5 ms) plus a little
  work per row, served by ``plinth serve`` to show what batching buys.

FastAPI resolves the endpoints' annotations at run time: no ``from __future__ import annotations``.
"""

import time
from typing import Any

from fastapi import FastAPI, Request, Response

from plinth.models.flavors.python import PythonModel

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_pipeline() -> Any:
    """The benchmark's model: StandardScaler + LogisticRegression fitted on iris."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = FEATURES
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y), X


_OK = b'{"ok":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_OK)).encode())]


async def _noop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # read the whole body, as an endpoint must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _OK})


def noop_asgi() -> Any:
    return _noop


def noop_fastapi() -> Any:
    app = FastAPI()

    @app.post("/noop")
    async def noop(request: Request) -> Response:
        await request.body()
        return Response(_OK, media_type="application/json")

    return app


def fastapi_pipeline() -> Any:
    import numpy as np
    import pandas as pd

    pipeline, _ = iris_pipeline()
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(request: Request) -> dict[str, Any]:
        split = (await request.json())["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        return {"predictions": np.asarray(pipeline.predict(frame)).tolist()}

    return app


class FixedCostModel(PythonModel):
    """5 ms per call waited (a GPU launch, a remote call) plus 20 µs of work per row; the wait
    releases the GIL, so calls without batching overlap on threads."""

    def predict(self, model_input: Any) -> Any:
        import numpy as np

        rows = len(model_input)
        time.sleep(0.005 + 0.00002 * rows)
        return np.asarray(model_input["x"], dtype="float64") * 2.0


class FixedCpuCostModel(PythonModel):
    """5 ms of CPU per call (a framework's per-call overhead: graph setup, Python glue) plus
    20 µs per row, computed while holding the GIL, so calls cannot overlap."""

    def predict(self, model_input: Any) -> Any:
        import numpy as np

        rows = len(model_input)
        end = time.perf_counter() + 0.005 + 0.00002 * rows
        spins = 0
        while time.perf_counter() < end:
            spins += 1
        return np.asarray(model_input["x"], dtype="float64") * 2.0
