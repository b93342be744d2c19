"""``TorchLogger``: a plain PyTorch loop logs loss, metrics, the gradient norm and the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import plinth
import plinth.models
from plinth.core.errors import Conflict, InvalidInput
from plinth.tracking import TorchLogger

STEPS, EPOCHS = 6, 2


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def test_a_two_layer_net_logs_each_step_each_epoch_and_the_model() -> None:
    model = _net()
    X, y = torch.randn(32, 4), torch.randn(32, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with plinth.start_run() as run:
        logger = TorchLogger(model, params={"lr": 0.05, "optimizer": "SGD"}, log_grad_norm=True)
        for _epoch in range(EPOCHS):
            for _ in range(STEPS // EPOCHS):
                loss = torch.nn.functional.mse_loss(model(X), y)
                optimizer.zero_grad()
                loss.backward()
                logger.log_step(loss=loss, mae=(model(X) - y).abs().mean())
                optimizer.step()
            logger.log_epoch(val_loss=torch.nn.functional.mse_loss(model(X), y))
        logger.log_model(input_example=X[:2].numpy())
    detail = plinth.get_run(run.id)
    assert detail.params == {"lr": "0.05", "optimizer": "SGD"}
    assert detail.tags["torch.parameters"] == str(4 * 8 + 8 + 8 + 1)
    assert detail.tags["torch.model_class"] == "torch.nn.modules.container.Sequential"
    for key in ("loss", "mae", "grad_norm"):
        assert list(plinth.get_metric_history(run.id, key).steps) == list(range(STEPS))
    losses = plinth.get_metric_history(run.id, "loss").values
    assert losses[-1] < losses[0]
    assert all(v > 0 for v in plinth.get_metric_history(run.id, "grad_norm").values)
    assert list(plinth.get_metric_history(run.id, "val_loss").steps) == list(range(EPOCHS))
    loaded = plinth.models.load(f"runs:/{run.id}/model")
    batch = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    assert np.allclose(loaded.predict(batch), expected, atol=1e-6)


def test_log_every_and_the_errors() -> None:
    with pytest.raises(InvalidInput):  # no active run
        TorchLogger()
    with plinth.start_run() as run:
        logger = TorchLogger(log_every=2)
        for i in range(5):
            logger.log_step(loss=torch.tensor(1.0 / (i + 1), requires_grad=True))
        with pytest.raises(InvalidInput):
            logger.log_step(loss="high", step=6)
    assert list(plinth.get_metric_history(run.id, "loss").steps) == [0, 2, 4]
    with plinth.start_run():
        logger = TorchLogger(_net())
        with plinth.start_run(), pytest.raises(Conflict):  # a nested run is active: not the logger's
            logger.log_model(input_example=np.zeros((1, 4), dtype="float32"))
