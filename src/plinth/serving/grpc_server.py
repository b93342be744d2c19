"""The Open Inference Protocol (v2) over gRPC: ``inference.GRPCInferenceService`` on its own port.

It runs on ``grpc.aio`` in the event loop of the HTTP server and calls the same
:class:`~plinth.serving.app.ModelServer`: the same loaded models, micro-batcher, traffic policy
(canary weights, shadow), feature enrichment, inference log and Prometheus metrics (endpoint
``grpc_infer``). Requests are decoded into the v2 JSON shape and checked by the same code as REST.

Inputs come as typed ``contents`` or as ``raw_input_contents`` (what tritonclient sends); outputs go
back raw when the inputs came raw, when the request parameter ``binary_data_output`` is true, or
when a datatype has no ``contents`` field (FP16), and as typed ``contents`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

try:
    import grpc
    from grpc import aio
except ImportError as exc:  # pragma: no cover - the extra is in dev
    raise ImportError("serving over gRPC needs the grpc extra: pip install 'plinth-ml[grpc]'") from exc

from plinth.core.errors import InvalidInput, NotFound, PlinthError
from plinth.serving import protocol
from plinth.serving.raw_tensors import decode_raw, encode_raw
from plinth.serving.v2grpc import grpc_service_pb2_grpc as service
from plinth.serving.v2grpc import inference_messages_pb2 as pb

if TYPE_CHECKING:
    from plinth.serving.app import ModelServer, ServedModel

__all__ = ["GrpcServer", "InferenceServicer", "check_grpc_port", "model_statistics", "start_grpc"]

# v2 datatype -> the field of InferTensorContents that carries it (FP16 has none: raw only)
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: Exception) -> grpc.StatusCode:
    """The gRPC status of an error: PlinthError by its HTTP status; a failing model is INTERNAL."""
    if isinstance(exc, PlinthError):
        return _STATUS.get(exc.http_status, grpc.StatusCode.INTERNAL)
    return grpc.StatusCode.INTERNAL


@dataclass
class _Answer:
    """A gRPC reply as ``ModelServer._timed`` counts it (status 200: answered)."""

    message: pb.ModelInferResponse
    status_code: int = 200


def request_body(request: pb.ModelInferRequest) -> dict[str, Any]:
    """The request in the v2 JSON shape (``{"id", "inputs": [{"name", "shape", "datatype", "data"}]}``)."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: give one per input",
            field="raw_input_contents",
        )
    inputs = []
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput(
                    f"input {tensor.name!r} has contents while the request has raw_input_contents: use one",
                    field=tensor.name,
                )
            data: list[Any] = decode_raw(tensor.name, tensor.datatype, shape, raw[i])
        else:
            data = _contents_of(tensor)
        inputs.append({"name": tensor.name, "shape": shape, "datatype": tensor.datatype, "data": data})
    return {"id": request.id, "inputs": inputs}


def _contents_of(tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    field = CONTENTS_FIELD.get(tensor.datatype)
    filled = [f.name for f, _ in tensor.contents.ListFields()]
    if field is None:  # an unknown datatype (or FP16): the v2 decoder names what is accepted
        if tensor.datatype == "FP16" and filled:
            raise InvalidInput(f"input {tensor.name!r}: FP16 values go in raw_input_contents", field=tensor.name)
        return []
    if filled and filled != [field]:
        raise InvalidInput(
            f"input {tensor.name!r}: {tensor.datatype} values go in contents.{field}, got {', '.join(filled)}",
            field=tensor.name,
            expected=field,
        )
    return list(getattr(tensor.contents, field))


def _wants_raw(request: pb.ModelInferRequest, outputs: list[dict[str, Any]]) -> bool:
    flag = request.parameters.get("binary_data_output")
    asked = flag is not None and flag.WhichOneof("parameter_choice") == "bool_param" and flag.bool_param
    return bool(request.raw_input_contents) or asked or any(o["datatype"] not in CONTENTS_FIELD for o in outputs)


def _selected(request: pb.ModelInferRequest, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outputs the request names (all when it names none); InvalidInput for an unknown one."""
    if not request.outputs:
        return outputs
    by_name = {o["name"]: o for o in outputs}
    chosen = []
    for wanted in request.outputs:
        if wanted.name not in by_name:
            raise InvalidInput(
                f"requested output {wanted.name!r} is not one of the model's outputs ({', '.join(by_name)})",
                field=wanted.name,
            )
        chosen.append(by_name[wanted.name])
    return chosen


def response_of(served: ServedModel, request: pb.ModelInferRequest, outputs: list[dict[str, Any]]) -> Any:
    reply = pb.ModelInferResponse(model_name=served.name, model_version=served.version, id=request.id)
    raw = _wants_raw(request, outputs)
    for out in outputs:
        tensor = reply.outputs.add(name=out["name"], datatype=out["datatype"], shape=out["shape"])
        if raw:
            reply.raw_output_contents.append(encode_raw(out["datatype"], out["data"]))
        elif out["datatype"] == "BYTES":
            tensor.contents.bytes_contents.extend(
                v if isinstance(v, bytes) else b"" if v is None else str(v).encode() for v in out["data"]
            )
        else:
            getattr(tensor.contents, CONTENTS_FIELD[out["datatype"]]).extend(out["data"])
    return reply


class InferenceServicer(service.GRPCInferenceServiceServicer):
    """The v2 gRPC methods, each one a call into the :class:`ModelServer`."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server

    async def ServerLive(self, request: Any, context: aio.ServicerContext) -> Any:
        # which process answered, as /v2/health/live says it: the workers share one port
        await context.send_initial_metadata((("x-plinth-worker", str(os.getpid())),))
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, context: aio.ServicerContext) -> Any:
        from plinth import __version__

        return pb.ServerMetadataResponse(name="plinth", version=__version__, extensions=[])

    async def ModelReady(self, request: Any, context: aio.ServicerContext) -> Any:
        """Ready, or not ready for a name or version not served here (as Triton answers)."""
        try:
            self.server._find(request.name, request.version or None)
        except NotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def ModelMetadata(self, request: Any, context: aio.ServicerContext) -> Any:
        try:
            meta = self.server.model_metadata(request.name, request.version or None)
        except PlinthError as exc:
            await context.abort(status_of(exc), str(exc))
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["outputs"]],
        )

    async def ModelInfer(self, request: Any, context: aio.ServicerContext) -> Any:
        from plinth.serving.app import ModelFailed

        try:
            route = self.server._route(request.model_name)
            served = route.pick(request.model_version or None, _sticky_value(route.sticky_key, request, context))
            work = self._infer(served, route.shadow, request)
            answer = cast(_Answer, await self.server._timed(served, "grpc_infer", work))  # counted as HTTP is
        except (PlinthError, ModelFailed) as exc:
            await context.abort(status_of(exc), str(exc))
        return answer.message

    async def ModelStatistics(self, request: Any, context: aio.ServicerContext) -> Any:
        """Triton's statistics of every served version (or of one name / version), counted by this
        server's own metrics: see :func:`model_statistics`."""
        try:
            stats = model_statistics(self.server, request.name or None, request.version or None)
        except PlinthError as exc:
            await context.abort(status_of(exc), str(exc))
        return pb.ModelStatisticsResponse(model_stats=stats)

    async def RepositoryIndex(self, request: Any, context: aio.ServicerContext) -> Any:
        """The versions this server serves, all READY (a shadow too, with the reason it takes no calls)."""
        if request.repository_name:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"repository {request.repository_name!r}: this server has one repository, the models it serves "
                "(ask with an empty repository_name)",
            )
        entries = []
        for route in self.server.models.values():
            entries += [
                pb.RepositoryIndexResponse.ModelIndex(name=m.name, version=m.version, state="READY")
                for m in route.members
            ]
            if route.shadow is not None:
                shadow = route.shadow
                reason = "shadow: mirrored requests only, its answers are logged and never returned"
                entries.append(
                    pb.RepositoryIndexResponse.ModelIndex(
                        name=shadow.name, version=shadow.version, state="READY", reason=reason
                    )
                )
        return pb.RepositoryIndexResponse(models=entries)

    async def _infer(self, served: ServedModel, shadow: ServedModel | None, request: Any) -> _Answer:
        body = await self.server.enrich(served, request_body(request))
        data, rows = protocol.decode_infer_request(body, served.signature)
        result = await self.server.predict(served, data, rows)
        outputs = _selected(request, protocol.encode_outputs(result, served.signature))
        self.server.record(served, data, rows, result)
        self.server.mirror(shadow, data, rows)
        return _Answer(response_of(served, request, outputs))


def model_statistics(server: ModelServer, name: str | None, version: str | None) -> list[Any]:
    """``ModelStatistics`` of the served versions (all, a name's, or one version's), from the
    server's Prometheus counters since it started: ``inference_count`` the rows the model
    predicted, ``execution_count`` its calls (merged batches), ``inference_stats.success`` and
    ``fail`` the requests answered and refused or failed, each with the time spent on them.
    Queue and compute durations, batch statistics and ``last_inference`` are not measured
    (0, empty)."""
    if name is None:
        if version is not None:
            raise InvalidInput("a version needs the model's name", field="version")
        served = [m for route in server.models.values() for m in route.everything()]
    else:
        everything = server._route(name).everything()
        served = [m for m in everything if version is None or m.version == version]
        if not served:
            raise NotFound(
                f"model {name!r} has no version {version!r} here; served: {', '.join(m.version for m in everything)}"
            )
    counts: dict[tuple[str, str, str], float] = {}
    for metric in server.metrics.registry.collect():
        for sample in metric.samples:
            labels = sample.labels
            if "model" not in labels:
                continue
            key = (labels["model"], labels["version"], sample.name)
            if sample.name == "plinth_serving_requests_total":
                key = (*key[:2], "ok" if labels.get("status") == "200" else "failed")
            counts[key] = counts.get(key, 0.0) + sample.value
    stats = []
    for m in served:

        def value(what: str, m: ServedModel = m) -> int:
            return int(counts.get((m.name, m.version, what), 0))

        seconds = counts.get((m.name, m.version, "plinth_serving_request_seconds_sum"), 0.0)
        failed_seconds = counts.get((m.name, m.version, "plinth_serving_failed_request_seconds_total"), 0.0)
        stats.append(
            pb.ModelStatistics(
                name=m.name,
                version=m.version,
                inference_count=value("plinth_serving_batch_rows_sum"),
                execution_count=value("plinth_serving_batch_rows_count"),
                inference_stats=pb.InferStatistics(
                    success=pb.StatisticDuration(count=value("ok"), ns=max(0, int((seconds - failed_seconds) * 1e9))),
                    fail=pb.StatisticDuration(count=value("failed"), ns=int(failed_seconds * 1e9)),
                ),
            )
        )
    return stats


def _sticky_value(key: str | None, request: Any, context: aio.ServicerContext) -> str | None:
    """A sticky route's key: call metadata of that name (lowercased), else a request parameter."""
    if key is None:
        return None
    for name, value in context.invocation_metadata() or ():
        if name == key.lower():
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    if key in request.parameters:
        param = request.parameters[key]
        kind = param.WhichOneof("parameter_choice")
        return None if kind is None else str(getattr(param, kind))
    return None


class GrpcServer:
    """A started ``grpc.aio`` server; ``port`` is the port it listens on (chosen when 0 was asked)."""

    def __init__(self, server: aio.Server, host: str, port: int) -> None:
        self.server = server
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        return f"GrpcServer({self.host}:{self.port})"

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking calls; calls in flight get ``grace`` seconds to finish."""
        await self.server.stop(grace)


def check_grpc_port(host: str, port: int) -> None:
    """InvalidInput unless ``host:port`` is free: what the workers of ``plinth serve --workers N``
    check once, before they bind the port together (with SO_REUSEPORT they would join a stranger)."""
    import socket

    if port == 0:
        raise InvalidInput(
            "--grpc-port 0 picks a free port per process: give a port number with --workers", field="grpc_port"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InvalidInput(f"cannot listen for gRPC on {host}:{port}: {exc.strerror}", field="grpc_port") from None


async def start_grpc(model_server: ModelServer, host: str, port: int) -> GrpcServer:
    """Serve ``model_server`` over gRPC on ``host:port`` in the running event loop."""
    limit = model_server.options.max_body_bytes
    # gRPC turns SO_REUSEPORT on by default, so a second server on a taken port would silently
    # share it: on only for the workers of one `plinth serve --workers N`, which share it on purpose
    reuse = 1 if model_server.options.grpc_shared else 0
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", reuse),
        ],
    )
    service.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(model_server), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise InvalidInput(f"cannot listen for gRPC on {address}: {exc}", field="grpc_port") from None
    if bound == 0:
        raise InvalidInput(f"cannot listen for gRPC on {address}: is the port in use?", field="grpc_port")
    await server.start()
    return GrpcServer(server, host, bound)
