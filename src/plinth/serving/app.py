"""The model server: a FastAPI app speaking the Open Inference Protocol (v2) over REST, plus a
plain JSON endpoint, with micro-batching and Prometheus metrics. Models load once, at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import random
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from orjson import loads as _loads  # parses a v2 body several times faster than the json module
from starlette.requests import ClientDisconnect

from plinth.core.errors import InvalidInput, NotFound, PlinthError
from plinth.models.signature import FLOAT_TYPES, INT_TYPES
from plinth.serving import protocol, raw_tensors
from plinth.serving.asgi import ServingApp
from plinth.serving.batching import MicroBatcher
from plinth.serving.inference_log import InferenceLogger
from plinth.serving.metrics import ServingMetrics

if TYPE_CHECKING:
    from plinth.serving.enrich import FeatureEnricher
    from plinth.serving.grpc_server import GrpcServer
    from plinth.serving.hotswap import AliasFollower

__all__ = ["ModelServer", "Route", "ServedModel", "ServingOptions"]

log = logging.getLogger("plinth.serving")


@dataclass(frozen=True)
class ServingOptions:
    """How a server batches and what it accepts."""

    max_batch_size: int = 1024  # rows: room to merge requests that carry many rows each
    max_wait_ms: float = 2.0
    batching: bool = True
    max_body_bytes: int = 16 * 1024 * 1024
    grpc_port: int | None = None  # the v2 gRPC service on its own port (0: any free one); off when None
    grpc_host: str = "127.0.0.1"
    grpc_shared: bool = False  # --workers N: every worker binds grpc_port with SO_REUSEPORT
    features: tuple[str, ...] = ()  # fill missing inputs from the online store (see plinth.serving.enrich)
    missing_features: str = "error"  # an entity with no online value: "error" (404) or "null"
    features_project: str | None = None


@dataclass
class ServedModel:
    """One loaded model version behind a name: anything with ``predict()`` and ``signature``."""

    name: str
    version: str
    model: Any
    uri: str = ""
    batcher: MicroBatcher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _array_input(self.model)
        self._matrix = _matrix_dtypes(self.model)

    def call(self, data: Any) -> Any:
        """The model's prediction of one request's or one merged batch's input. v2 columns
        (checked against the signature when decoded) go to a served scikit-learn model whose
        inputs are all numeric, in its fitted order, as one NumPy matrix when each column has
        its signature's dtype; else they become a DataFrame that ``predict()`` checks."""
        if isinstance(data, protocol.Columns):
            dtypes = self._matrix
            if dtypes is not None:
                matrix = data.matrix
                if matrix is not None and matrix.shape[1] == len(dtypes) and all(matrix.dtype == d for d in dtypes):
                    return self.model.predict_checked(matrix)  # float64 rows in the signature's order
                arrays = list(data.arrays.values())
                if len(arrays) == len(dtypes) and all(a.dtype == d for a, d in zip(arrays, dtypes, strict=True)):
                    import numpy as np

                    return self.model.predict_checked(np.column_stack(arrays))
            data = data.frame()
        return self.model.predict(data)

    @property
    def signature(self) -> Any:
        return getattr(self.model, "signature", None)

    @property
    def platform(self) -> str:
        return f"plinth-{getattr(self.model, 'flavor', 'python')}"

    def prepare(self, data: Any) -> Any:
        """Check ``data`` once on the request path. v2 columns were already checked against the
        signature when decoded, so they go on as arrays; the model's ``predict()`` checks the
        merged batch (once per call)."""
        if isinstance(data, protocol.Columns):
            return data
        prepare = getattr(self.model, "prepare", None)
        return prepare(data) if prepare is not None else data


@dataclass
class Route:
    """What a served name answers with: one version, or a weighted canary; a shadow is mirrored."""

    name: str
    members: list[ServedModel]
    weights: list[int] = field(default_factory=list)
    shadow: ServedModel | None = None
    sticky_key: str | None = None  # sticky A/B: the same value of this request key, the same version

    def __post_init__(self) -> None:
        if not self.members:
            raise InvalidInput(f"{self.name!r} needs at least one model version", field="models")
        self.weights = self.weights or [100] * len(self.members)
        if len(self.weights) != len(self.members) or sum(self.weights) <= 0:
            raise InvalidInput(f"{self.name!r} needs one positive weight per version", field="models")
        versions = [m.version for m in self.members]
        if len(set(versions)) != len(versions):
            raise InvalidInput(f"{self.name!r} serves version {versions[0]} twice", field="models")

    @property
    def versions(self) -> list[str]:
        return [m.version for m in self.members]

    def pick(self, version: str | None, key: str | None = None) -> ServedModel:
        """The version asked for; else one by weight: at random, or by the hash of a sticky ``key``."""
        if version is None:
            if len(self.members) == 1:
                return self.members[0]
            if key is None or self.sticky_key is None:
                return random.choices(self.members, weights=self.weights)[0]
            digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
            point = int.from_bytes(digest, "big") % sum(self.weights)
            for member, bound in zip(self.members, itertools.accumulate(self.weights), strict=True):
                if point < bound:
                    return member
        for m in self.members:
            if m.version == version:
                return m
        raise NotFound(f"model {self.name!r} has no version {version!r} here; served: {', '.join(self.versions)}")

    def everything(self) -> list[ServedModel]:
        return [*self.members, *([self.shadow] if self.shadow else [])]


class ModelFailed(Exception):
    """The model raised while predicting: a 500 for that request only."""


class ModelServer:
    """Serves several models by name; ``app`` is the ASGI application.

    >>> server = ModelServer([ServedModel("iris", "1", plinth.models.load("models:/iris/1"))])  # doctest: +SKIP
    >>> uvicorn.run(server.app)  # doctest: +SKIP
    """

    def __init__(
        self,
        models: list[ServedModel | Route],
        options: ServingOptions | None = None,
        inference_log: InferenceLogger | None = None,
    ) -> None:
        self.options = options or ServingOptions()
        self.metrics = ServingMetrics()
        self.inference_log = inference_log
        self.models: dict[str, Route] = {}
        self.shadow_answers: deque[dict[str, Any]] = deque(maxlen=1000)  # the latest, for inspection
        self._mirrors: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.follower: AliasFollower | None = None
        self.grpc: GrpcServer | None = None  # started with the app when options.grpc_port is set
        self.enricher: FeatureEnricher | None = None
        if self.options.features:
            from plinth.serving.enrich import FeatureEnricher

            self.enricher = FeatureEnricher(
                self.options.features, missing=self.options.missing_features, project=self.options.features_project
            )
        for item in models:
            route = item if isinstance(item, Route) else Route(item.name, [item])
            if route.name in self.models:
                raise InvalidInput(f"two models are named {route.name!r}: give each a distinct name", field="name")
            self.models[route.name] = route
        self.app = ServingApp(self, self._build())

    def __repr__(self) -> str:
        return f"ModelServer(models={sorted(self.models)!r})"

    # --- running one prediction ---------------------------------------------------------------
    def _route(self, name: str) -> Route:
        route = self.models.get(name)
        if route is None:
            raise NotFound(f"model {name!r} is not served here; served: {', '.join(sorted(self.models)) or 'none'}")
        return route

    def _find(self, name: str, version: str | None = None) -> ServedModel:
        return self._route(name).pick(version)

    def _start(self) -> None:
        if self.inference_log is not None:
            self.inference_log.on_drop = lambda model, version: self.metrics.log_dropped.labels(model, version).inc()
            self.inference_log.start()
        self._loop = asyncio.get_running_loop()
        if self.options.batching:
            for served in (m for route in self.models.values() for m in route.everything()):
                self._batch(served)
        if self.follower is not None:
            self.follower.start(self._loop)

    def _batch(self, served: ServedModel) -> None:
        batcher = MicroBatcher(
            served.call,
            columns=_as_is,
            max_batch_size=self.options.max_batch_size,
            max_wait_ms=self.options.max_wait_ms,
            on_batch=self.metrics.batch_rows.labels(served.name, served.version).observe,
        )
        batcher.start()
        served.batcher = batcher
        self.metrics.track_queue(served.name, served.version, lambda b=batcher: b.depth)  # type: ignore[misc]

    def follow(self, **options: Any) -> AliasFollower:
        """Follow the registry: swap in the new version when an alias a served model was loaded
        through moves (see :class:`~plinth.serving.hotswap.AliasFollower` for ``options``)."""
        from plinth.serving.hotswap import AliasFollower

        self.follower = AliasFollower(self, **options)
        if self._loop is not None:
            self.follower.start(self._loop)
        return self.follower

    async def swap(self, name: str, old: ServedModel, new: ServedModel) -> None:
        """Serve ``new`` in place of ``old`` under ``name``: one reference swap on the event loop;
        requests already queued for ``old`` finish on it, and its batcher stops once drained."""
        route = self._route(name)
        if self.options.batching:
            self._batch(new)
        route.members = [new if m is old else m for m in route.members]
        batcher, old.batcher = old.batcher, None  # a late request still holding ``old`` runs unbatched
        if batcher is not None:
            await batcher.drain()
            await batcher.stop()

    async def replace_route(self, route: Route) -> None:
        """Serve ``route`` in place of the route of the same name (or in addition): one reference
        swap on the event loop; requests already queued on the old versions finish on them."""
        if self.options.batching:
            for served in route.everything():
                self._batch(served)
        old = self.models.get(route.name)
        self.models[route.name] = route
        for served in old.everything() if old is not None else ():
            batcher, served.batcher = served.batcher, None
            if batcher is not None:
                await batcher.drain()
                await batcher.stop()

    async def _stop(self) -> None:
        if self.follower is not None:
            await asyncio.to_thread(self.follower.stop)
        for task in list(self._mirrors):
            task.cancel()
        if self.inference_log is not None:
            await asyncio.to_thread(self.inference_log.stop)
        for served in (m for route in self.models.values() for m in route.everything()):
            if served.batcher is not None:
                await served.batcher.stop()
                served.batcher = None

    def mirror(self, shadow: ServedModel | None, data: Any, rows: int) -> None:
        """Send the request to the shadow too, in the background; its answer is logged, never returned."""
        if shadow is None:
            return
        task = asyncio.get_running_loop().create_task(self._shadow(shadow, data, rows))
        self._mirrors.add(task)
        task.add_done_callback(self._mirrors.discard)

    async def _shadow(self, shadow: ServedModel, data: Any, rows: int) -> None:
        labels = (shadow.name, shadow.version)
        start = time.perf_counter()
        try:
            result = await self.predict(shadow, data, rows)
            entry = {"model": shadow.name, "version": shadow.version, "rows": rows, "outputs": result}
            status = "200"
            self.record(shadow, data, rows, result, shadow=True)
        except PlinthError as exc:
            entry, status = {"model": shadow.name, "version": shadow.version, "rows": rows, "error": str(exc)}, "400"
        except ModelFailed as exc:
            entry, status = {"model": shadow.name, "version": shadow.version, "rows": rows, "error": str(exc)}, "500"
            self.metrics.errors.labels(*labels, "model_error").inc()
        self.metrics.finished(shadow.name, shadow.version, "shadow", int(status), time.perf_counter() - start)
        self.shadow_answers.append(entry)
        log.info("shadow %s version %s answered %s rows (%s)", shadow.name, shadow.version, rows, status)

    def record(self, served: ServedModel, data: Any, rows: int, result: Any, *, shadow: bool = False) -> None:
        """Queue the request and its answer for the inference log (never blocks)."""
        if self.inference_log is not None:
            inputs = protocol.frame_of(data)
            self.inference_log.log(
                model=served.name, version=served.version, rows=rows, inputs=inputs, outputs=result, shadow=shadow
            )

    async def predict(self, served: ServedModel, data: Any, rows: int) -> Any:
        """The model's answer for ``data``: validated here, batched with others when on."""
        prepared = served.prepare(data)
        try:
            if served.batcher is not None:
                return await served.batcher.submit(prepared, rows)
            self.metrics.batch_rows.labels(served.name, served.version).observe(rows)
            return await asyncio.to_thread(served.call, prepared)
        except PlinthError:
            raise
        except Exception as exc:
            log.exception("model %s version %s failed", served.name, served.version)
            raise ModelFailed(
                f"model {served.name!r} version {served.version} failed: {type(exc).__name__}: {exc}"
            ) from None

    # --- the HTTP doors ---------------------------------------------------------------------
    async def _read_json(self, scope: Any, receive: Any) -> Any:
        limit = self.options.max_body_bytes
        declared = binary = None
        for key, value in scope["headers"]:  # the raw list: cheaper than building Headers
            if key == b"content-length":
                declared = value
            elif key == _BINARY_HEADER:  # the v2 binary tensor extension
                binary = value.decode("latin-1")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge(limit)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _TooLarge(limit)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if binary is not None:
            return raw_tensors.read_binary_request(body, binary)
        try:
            return _loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the request body is not valid JSON: {exc}", field="body") from None

    def _build(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            self._start()
            if self.enricher is not None and self.enricher.entity_keys is None:
                await asyncio.to_thread(self.enricher.resolve)
            if self.options.grpc_port is not None:
                from plinth.serving.grpc_server import start_grpc

                self.grpc = await start_grpc(self, self.options.grpc_host, self.options.grpc_port)
            yield
            if self.grpc is not None:
                await self.grpc.stop()
            await self._stop()

        app = FastAPI(title="Plinth model server", lifespan=lifespan, docs_url=None, redoc_url=None)

        async def failed(request: Request, exc: Exception) -> Response:
            return _error_response(exc)

        for error in (PlinthError, _TooLarge, ModelFailed):
            app.add_exception_handler(error, failed)

        @app.get("/v2")
        async def server_metadata() -> dict[str, Any]:
            from plinth import __version__

            return {"name": "plinth", "version": __version__, "extensions": ["binary_tensor_data"]}

        @app.get("/v2/health/live")
        async def live() -> Response:
            # the answering process: with `plinth serve --workers N`, which worker this was
            return JSONResponse({"live": True}, headers={"x-plinth-worker": str(os.getpid())})

        @app.get("/v2/health/ready")
        async def ready() -> dict[str, Any]:
            return {"ready": True}

        @app.get("/v2/models/{name}")
        @app.get("/v2/models/{name}/versions/{version}")
        async def metadata(name: str, version: str | None = None) -> dict[str, Any]:
            return self.model_metadata(name, version)

        @app.get("/v2/models/{name}/ready")
        @app.get("/v2/models/{name}/versions/{version}/ready")
        async def model_ready(name: str, version: str | None = None) -> dict[str, Any]:
            served = self._find(name, version)
            return {"name": served.name, "ready": True}

        @app.post("/v2/models/{name}/infer")
        @app.post("/v2/models/{name}/versions/{version}/infer")
        async def infer(name: str, request: Request, version: str | None = None) -> Response:
            return await self.answer("infer", name, version, request.scope, request.receive)

        @app.post("/models/{name}/predict")
        async def predict(name: str, request: Request) -> Response:
            return await self.answer("predict", name, None, request.scope, request.receive)

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

        return app

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The v2 metadata of a served name (every version it serves), or of one of its versions."""
        route = self._route(name)
        served = route.pick(version) if version is not None else route.members[0]
        versions = [served.version] if version is not None else route.versions
        return protocol.model_metadata(served.name, versions, served.platform, served.signature)

    async def enrich(self, served: ServedModel, data: Any) -> Any:
        """A request's data with the inputs it lacks filled from the online feature store (when on)."""
        return data if self.enricher is None else await self.enricher.enrich(data, served.signature)

    async def answer(self, endpoint: str, name: str, version: str | None, scope: Any, receive: Any) -> Response:
        """The HTTP answer of an inference request (``endpoint``: ``infer`` or ``predict``), errors
        included: :class:`~plinth.serving.asgi.ServingApp` sends it without FastAPI's routing.

        One coroutine from the body to the answer (each further level cost about a microsecond a
        request on a path of twenty): read, decode, predict (batched), encode, count."""
        try:
            route = self._route(name)
            served = route.pick(version, None if route.sticky_key is None else _sticky_value(route, scope))
        except PlinthError as exc:
            return _error_response(exc)
        start = time.perf_counter()
        status = 500
        try:
            body = await self._read_json(scope, receive)
            if endpoint == "infer":
                if self.enricher is not None:  # as self.enrich does, without a coroutine per request when off
                    body = await self.enricher.enrich(body, served.signature)
                data, rows = protocol.decode_infer_request(body, served.signature)
            else:
                data, rows = protocol.decode_columns_request(body)
                data = await self.enrich(served, data)
            result = await self.predict(served, data, rows)
            if self.inference_log is not None:
                self.record(served, data, rows, result)
            if route.shadow is not None:
                self.mirror(route.shadow, data, rows)
            if endpoint == "infer":
                answer: dict[str, Any] = {
                    "model_name": served.name,
                    "model_version": served.version,
                    "outputs": protocol.encode_outputs(result, served.signature),
                }
                if isinstance(body, dict) and isinstance(body.get("id"), str):
                    answer["id"] = body["id"]
                response: Response = raw_tensors.infer_response(answer, body)
            else:
                response = JSONResponse(
                    {
                        "model_name": served.name,
                        "model_version": served.version,
                        "predictions": protocol.records_of(result),
                    }
                )
            status = response.status_code
            return response
        except (PlinthError, _TooLarge, ModelFailed) as exc:
            status = self._failed(served, exc)
            return _error_response(exc)
        finally:
            self.metrics.finished(served.name, served.version, endpoint, status, time.perf_counter() - start)

    def _failed(self, served: ServedModel, exc: BaseException) -> int:
        """Count a refused or failed request by kind; its HTTP status."""
        labels = (served.name, served.version)
        if isinstance(exc, PlinthError):
            self.metrics.errors.labels(*labels, exc.code).inc()
            return exc.http_status
        if isinstance(exc, _TooLarge):
            self.metrics.errors.labels(*labels, "too_large").inc()
            return 413
        if isinstance(exc, ModelFailed):
            self.metrics.errors.labels(*labels, "model_error").inc()
        return 500

    async def _timed(self, served: ServedModel, endpoint: str, work: Any) -> Any:
        """``work``'s answer, counted and timed as an HTTP answer is (the gRPC door's)."""
        start = time.perf_counter()
        status = 500
        try:
            response = await work
            status = response.status_code
            return response
        except (PlinthError, _TooLarge, ModelFailed) as exc:
            status = self._failed(served, exc)
            raise
        finally:
            self.metrics.finished(served.name, served.version, endpoint, status, time.perf_counter() - start)


def _array_input(model: Any) -> None:
    """Served scikit-learn models take their checked batches as one NumPy array (see the sklearn
    flavor); scikit-learn's warning that the array has no feature names is then noise, since
    the columns were matched to the fitted names first, and is silenced in this process."""
    predictor = getattr(model, "_predictor", None)
    if predictor is None or not hasattr(type(predictor), "array_input"):
        return
    predictor.array_input = True
    warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
    kernel = getattr(predictor, "kernel", None)
    if callable(kernel):  # build and check a linear model's fused kernel now, not on the first request
        kernel()


_BINARY_HEADER = raw_tensors.HEADER.lower().encode("latin-1")


def _matrix_dtypes(model: Any) -> tuple[Any, ...] | None:
    """The NumPy dtypes of the inputs when ``model`` takes its checked batches as one matrix:
    a scikit-learn model served with ``array_input`` whose signature lists exactly its fitted
    columns, in order, all numeric. None otherwise."""
    predictor = getattr(model, "_predictor", None)
    if not getattr(predictor, "array_input", False) or not hasattr(model, "predict_checked"):
        return None
    fitted = predictor.fitted_names()
    inputs = getattr(getattr(model, "signature", None), "inputs", None)
    if fitted is None or not isinstance(inputs, list) or tuple(c.name for c in inputs) != fitted:
        return None
    if not all(c.type in INT_TYPES or c.type in FLOAT_TYPES for c in inputs):
        return None
    import numpy as np

    return tuple(np.dtype(c.type) for c in inputs)


def _as_is(data: Any) -> Any:
    return data


def _sticky_value(route: Route, scope: Any) -> str | None:
    """The value of a sticky route's key: a header of that name, else a query parameter."""
    key = route.sticky_key
    if key is None:
        return None
    request = Request(scope)
    return request.headers.get(key) or request.query_params.get(key)


def _error_response(exc: Exception) -> Response:
    """The JSON answer of a request that failed: 4xx for bad input, 413, 500 for a model error."""
    if isinstance(exc, PlinthError):
        return JSONResponse({"error": str(exc), "code": exc.code}, status_code=exc.http_status)
    if isinstance(exc, _TooLarge):
        return JSONResponse({"error": str(exc), "code": "too_large"}, status_code=413)
    return JSONResponse({"error": str(exc), "code": "model_error"}, status_code=500)


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit} bytes")
