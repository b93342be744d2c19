"""Generated code of the Open Inference Protocol (v2) over gRPC; edit the ``.proto`` files, never the stubs.

Regenerated from the repository root with grpcio-tools (the versions in the generated headers)::

    python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src src/plinth/serving/v2grpc/inference_messages.proto
    python -m grpc_tools.protoc -I src --grpc_python_out=src src/plinth/serving/v2grpc/grpc_service.proto

Only the service's ``_pb2_grpc`` module is kept from ``grpc_service.proto``: its ``_pb2`` would register
``inference.GRPCInferenceService`` in protobuf's default pool, which a v2 client in the same process
(tritonclient, kserve) registers too.
"""
