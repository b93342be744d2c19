"""The model server: a FastAPI app speaking the Open Inference Protocol (v2) over REST, plus a
plain JSON endpoint, with micro-batching and Prometheus metrics. Models load once, at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from plinth.core.errors import InvalidInput, NotFound, PlinthError
from plinth.serving import protocol
from plinth.serving.batching import MicroBatcher
from plinth.serving.inference_log import InferenceLogger
from plinth.serving.metrics import ServingMetrics

if TYPE_CHECKING:
    from plinth.serving.hotswap import AliasFollower

__all__ = ["ModelServer", "Route", "ServedModel", "ServingOptions"]

log = logging.getLogger("plinth.serving")


@dataclass(frozen=True)
class ServingOptions:
    """How a server batches and what it accepts."""

    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    batching: bool = True
    max_body_bytes: int = 16 * 1024 * 1024


@dataclass
class ServedModel:
    """One loaded model version behind a name: anything with ``predict()`` and ``signature``."""

    name: str
    version: str
    model: Any
    uri: str = ""
    batcher: MicroBatcher | None = field(default=None, repr=False)

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

    def pick(self, version: str | None) -> ServedModel:
        if version is None:
            if len(self.members) == 1:
                return self.members[0]
            return random.choices(self.members, weights=self.weights)[0]
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
        for item in models:
            route = item if isinstance(item, Route) else Route(item.name, [item])
            if route.name in self.models:
                raise InvalidInput(f"two models are named {route.name!r}: give each a distinct name", field="name")
            self.models[route.name] = route
        self.app = self._build()

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
            served.model.predict,
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
        self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
        self.metrics.requests.labels(*labels, "shadow", status).inc()
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
            return await asyncio.to_thread(served.model.predict, protocol.frame_of(prepared))
        except PlinthError:
            raise
        except Exception as exc:
            log.exception("model %s version %s failed", served.name, served.version)
            raise ModelFailed(
                f"model {served.name!r} version {served.version} failed: {type(exc).__name__}: {exc}"
            ) from None

    # --- the HTTP doors ---------------------------------------------------------------------
    async def _read_json(self, request: Request) -> Any:
        limit = self.options.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge(limit)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise _TooLarge(limit)
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the request body is not valid JSON: {exc}", field="body") from None

    def _build(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            self._start()
            yield
            await self._stop()

        app = FastAPI(title="Plinth model server", lifespan=lifespan, docs_url=None, redoc_url=None)

        @app.exception_handler(PlinthError)
        async def plinth_error(request: Request, exc: PlinthError) -> Response:
            return JSONResponse({"error": str(exc), "code": exc.code}, status_code=exc.http_status)

        @app.exception_handler(_TooLarge)
        async def too_large(request: Request, exc: _TooLarge) -> Response:
            return JSONResponse({"error": str(exc), "code": "too_large"}, status_code=413)

        @app.exception_handler(ModelFailed)
        async def model_failed(request: Request, exc: ModelFailed) -> Response:
            return JSONResponse({"error": str(exc), "code": "model_error"}, status_code=500)

        @app.get("/v2")
        async def server_metadata() -> dict[str, Any]:
            from plinth import __version__

            return {"name": "plinth", "version": __version__, "extensions": []}

        @app.get("/v2/health/live")
        async def live() -> dict[str, Any]:
            return {"live": True}

        @app.get("/v2/health/ready")
        async def ready() -> dict[str, Any]:
            return {"ready": True}

        @app.get("/v2/models/{name}")
        @app.get("/v2/models/{name}/versions/{version}")
        async def metadata(name: str, version: str | None = None) -> dict[str, Any]:
            route = self._route(name)
            served = route.pick(version) if version is not None else route.members[0]
            versions = [served.version] if version is not None else route.versions
            return protocol.model_metadata(served.name, versions, served.platform, served.signature)

        @app.get("/v2/models/{name}/ready")
        @app.get("/v2/models/{name}/versions/{version}/ready")
        async def model_ready(name: str, version: str | None = None) -> dict[str, Any]:
            served = self._find(name, version)
            return {"name": served.name, "ready": True}

        @app.post("/v2/models/{name}/infer")
        @app.post("/v2/models/{name}/versions/{version}/infer")
        async def infer(name: str, request: Request, version: str | None = None) -> Response:
            route = self._route(name)
            served = route.pick(version)
            return await self._timed(served, "infer", self._infer(served, route.shadow, request))

        @app.post("/models/{name}/predict")
        async def predict(name: str, request: Request) -> Response:
            route = self._route(name)
            served = route.pick(None)
            return await self._timed(served, "predict", self._predict_plain(served, route.shadow, request))

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

        return app

    async def _timed(self, served: ServedModel, endpoint: str, work: Any) -> Response:
        labels = (served.name, served.version)
        start = time.perf_counter()
        status = 500
        try:
            response: Response = await work
            status = response.status_code
            return response
        except PlinthError as exc:
            status = exc.http_status
            self.metrics.errors.labels(*labels, exc.code).inc()
            raise
        except _TooLarge:
            status = 413
            self.metrics.errors.labels(*labels, "too_large").inc()
            raise
        except ModelFailed:
            self.metrics.errors.labels(*labels, "model_error").inc()
            raise
        finally:
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
            self.metrics.requests.labels(*labels, endpoint, str(status)).inc()

    async def _infer(self, served: ServedModel, shadow: ServedModel | None, request: Request) -> Response:
        body = await self._read_json(request)
        data, rows = protocol.decode_infer_request(body, served.signature)
        result = await self.predict(served, data, rows)
        self.record(served, data, rows, result)
        self.mirror(shadow, data, rows)
        answer: dict[str, Any] = {
            "model_name": served.name,
            "model_version": served.version,
            "outputs": protocol.encode_outputs(result, served.signature),
        }
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            answer["id"] = body["id"]
        return JSONResponse(answer)

    async def _predict_plain(self, served: ServedModel, shadow: ServedModel | None, request: Request) -> Response:
        body = await self._read_json(request)
        data, rows = protocol.decode_columns_request(body)
        result = await self.predict(served, data, rows)
        self.record(served, data, rows, result)
        self.mirror(shadow, data, rows)
        return JSONResponse(
            {"model_name": served.name, "model_version": served.version, "predictions": protocol.records_of(result)}
        )


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit} bytes")
