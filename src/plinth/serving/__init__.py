"""Model serving: the Open Inference Protocol (v2) over REST, adaptive micro-batching, metrics,
and deployments (traffic policies: canary, shadow) managed from the platform.

>>> import plinth
>>> plinth.serving.create_deployment("churn", {"models:/churn/1": 90, "models:/churn/2": 10})  # doctest: +SKIP
>>> from plinth.serving import ModelServer, load_served                                       # doctest: +SKIP
>>> server = ModelServer([load_served("models:/churn@champion")])                             # doctest: +SKIP
"""

from plinth.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.serving.app": ["ModelServer", "ServedModel", "ServingOptions"],
        "plinth.serving.batch": ["BatchPrediction", "predict_batch"],
        "plinth.serving.schemas": ["BatchJobInfo", "StreamWorkerInfo"],
        "plinth.serving.batching": ["MicroBatcher"],
        "plinth.serving.enrich": ["FeatureEnricher"],
        "plinth.serving.inference_log": ["InferenceLogger"],
        "plinth.serving.loading": ["load_deployment", "load_served"],
        "plinth.serving.manifests": ["export_manifests"],
        "plinth.serving.sdk": [
            "create_deployment",
            "delete_deployment",
            "get_batch_job",
            "get_deployment",
            "get_stream_worker",
            "inference_log_location",
            "list_batch_jobs",
            "list_deployments",
            "list_stream_workers",
            "update_deployment",
        ],
        "plinth.serving.stream": ["StreamStats", "StreamWorker", "stream_predict"],
    },
)
