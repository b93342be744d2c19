"""The model registry: registered models, versions, aliases, stages, approvals, history, cards.

>>> import plinth
>>> plinth.registry.register_model("churn", "runs:/<run_id>/model")  # doctest: +SKIP
>>> plinth.registry.set_alias("churn", "champion", 1)                # doctest: +SKIP
"""

from plinth.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.registry.sdk": [
            "approve",
            "cancel_approval",
            "compare_versions",
            "create_model",
            "delete_alias",
            "get_card",
            "get_model",
            "get_version",
            "history",
            "list_approvals",
            "list_models",
            "list_versions",
            "register_model",
            "reject",
            "render_card",
            "request_approval",
            "resolve",
            "set_alias",
            "transition_stage",
            "update_card",
            "update_model",
            "update_version",
        ],
    },
)
