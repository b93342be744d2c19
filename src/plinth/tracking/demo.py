"""The tracking step of ``plinth demo``: train a few models with tracking, then search and
compare their runs. Plain numpy (a logistic regression by gradient descent), so the demo
needs nothing beyond Plinth's own dependencies."""

from __future__ import annotations

import random
from typing import Any


def churn_data(n: int = 2000, seed: int = 7) -> tuple[Any, Any]:
    """Tenure and monthly charges (standardised) and whether the customer churned."""
    import numpy as np

    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        tenure = rng.randint(1, 72)
        charges = rng.uniform(20, 120)
        rows.append((tenure, charges))
        labels.append(int(rng.random() < 0.8 / (1 + tenure / 12) + charges / 600))
    X = np.array(rows, dtype=float)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.hstack([X, np.ones((n, 1))]), np.array(labels, dtype=float)


def auc(y: Any, scores: Any) -> float:
    """The area under the ROC curve, from ranks (Mann-Whitney U)."""
    import numpy as np

    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def train(learning_rate: float, epochs: int, X: Any, y: Any) -> None:
    """One run: params, a loss/accuracy/AUC curve by epoch, the weights as a JSON artifact."""
    import numpy as np

    import plinth

    plinth.log_params({"model": "logistic_regression", "learning_rate": learning_rate, "epochs": epochs})
    w = np.zeros(X.shape[1])
    for epoch in range(epochs):
        p = 1 / (1 + np.exp(-X @ w))
        w -= learning_rate * X.T @ (p - y) / len(y)
        loss = float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
        plinth.log_metrics({"loss": loss, "accuracy": float(np.mean((p > 0.5) == y)), "auc": auc(y, p)}, step=epoch)
    plinth.log_dict({"weights": w.tolist(), "features": ["tenure", "monthly_charges", "bias"]}, "model/weights.json")


def run_step(state: Any) -> None:
    import plinth

    X, y = churn_data()
    plinth.set_experiment("churn-demo", project=state.project)
    ids = []
    for lr in (0.01, 0.1, 1.0):
        with plinth.start_run(name=f"logreg-lr{lr}", tags={"team": "risk"}, system_metrics=False) as run:
            train(lr, 150, X, y)
        ids.append(run.id)
    best = plinth.search_runs(
        "churn-demo",
        "metrics.auc > 0.5 and params.model = 'logistic_regression'",
        order_by=["metrics.loss asc"],
        project=state.project,
    )
    top = best.iloc[0]
    state.facts["best_run"] = top["run_id"]
    state.echo(
        f"  3 runs tracked; lowest loss: {top['name']} (loss {top['metrics.loss']:.4f}, auc {top['metrics.auc']:.3f})"
    )
    cmp = plinth.compare_runs(ids)
    state.echo(f"  compared: params that differ: {', '.join(cmp.params_differ)}; 150 points per metric per run")
