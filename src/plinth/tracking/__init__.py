"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts, search, compare."""

from plinth.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.tracking.sdk": [
            "ActiveRun",
            "active_run",
            "compare_runs",
            "create_experiment",
            "delete_run",
            "end_run",
            "flush",
            "get_experiment",
            "get_metric_history",
            "get_run",
            "list_experiments",
            "log_artifact",
            "log_artifacts",
            "log_batch",
            "log_dict",
            "log_figure",
            "log_image",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "log_table",
            "log_text",
            "search_runs",
            "set_experiment",
            "set_tag",
            "set_tags",
            "start_run",
        ],
        "plinth.tracking.autologging": ["autolog"],
        "plinth.tracking.boosting": ["lightgbm_callback", "xgboost_callback"],
        "plinth.tracking.torch_logging": ["TorchLogger"],
    },
)
