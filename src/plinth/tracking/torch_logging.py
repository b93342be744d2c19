"""A logger for a plain PyTorch training loop: loss and metrics per step or epoch, the model at the end.

>>> import plinth
>>> with plinth.start_run():                                               # doctest: +SKIP
...     logger = plinth.tracking.TorchLogger(model, params={"lr": 0.01}, log_grad_norm=True)
...     for x, y in loader:
...         loss = loss_fn(model(x), y)
...         optimizer.zero_grad(); loss.backward()
...         logger.log_step(loss=loss, accuracy=acc)   # after backward: the gradient norm is there
...         optimizer.step()
...     logger.log_epoch(val_loss=val_loss)
...     logger.log_model(input_example=x[:1].numpy())
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from plinth.core.errors import Conflict
from plinth.tracking.boosting import log_params_quietly

__all__ = ["TorchLogger"]


def _number(value: Any) -> Any:
    """A tensor (even one that needs grad, or lives on a GPU) as a Python number."""
    detach = getattr(value, "detach", None)
    if callable(detach):
        return detach().cpu().item()
    return value


class TorchLogger:
    """Logs a PyTorch loop into a run (the active one when created, unless ``run`` is given).

    ``log_step(loss=, **metrics)`` logs each value with ``step`` = the step count (0, 1, …
    unless given), and with ``log_grad_norm`` the total L2 norm of the model's gradients as
    ``grad_norm``. ``log_epoch(**metrics)`` logs with ``step`` = the epoch count under
    the names given (``val_loss``). ``params`` are logged at once, with the tags
    ``torch.model_class`` and ``torch.parameters`` (the number of parameters) when a
    model is given. ``log_model(input_example)`` stores the model with the torch flavor of
    :mod:`plinth.models` (a ``torch.export`` program).
    """

    def __init__(
        self,
        model: Any = None,
        run: Any = None,
        params: Mapping[str, Any] | None = None,
        log_grad_norm: bool = False,
        log_every: int = 1,
    ) -> None:
        from plinth.tracking import sdk

        self.model = model
        self.run = run if run is not None else sdk._active()
        self.log_grad_norm = log_grad_norm
        self.log_every = max(1, int(log_every))
        self.step = 0
        self.epoch = 0
        if params:
            log_params_quietly(self.run, params)
        if model is not None:
            cls = type(model)
            self.run.set_tags(
                {
                    "torch.model_class": f"{cls.__module__}.{cls.__qualname__}",
                    "torch.parameters": sum(p.numel() for p in model.parameters()),
                }
            )

    def grad_norm(self) -> float:
        """The total L2 norm of the model's gradients (0.0 before any backward)."""
        total = 0.0
        for p in self.model.parameters() if self.model is not None else ():
            if p.grad is not None:
                total += float(p.grad.detach().float().norm(2).cpu().item()) ** 2
        return math.sqrt(total)

    def log_step(self, loss: Any = None, step: int | None = None, **metrics: Any) -> None:
        """Log this step's loss and metrics (tensors are fine), then count the step."""
        step = self.step if step is None else int(step)
        self.step = step + 1
        if step % self.log_every:
            return
        values = {"loss": loss, **metrics} if loss is not None else dict(metrics)
        if self.log_grad_norm and self.model is not None:
            values["grad_norm"] = self.grad_norm()
        self.run.log_metrics({k: _number(v) for k, v in values.items()}, step=step)

    def log_epoch(self, epoch: int | None = None, **metrics: Any) -> None:
        """Log end-of-epoch metrics (``val_loss=...``) with ``step`` = the epoch, then count it."""
        epoch = self.epoch if epoch is None else int(epoch)
        self.epoch = epoch + 1
        self.run.log_metrics({k: _number(v) for k, v in metrics.items()}, step=epoch)

    def log_model(self, input_example: Any, name: str = "model", **kwargs: Any) -> Any:
        """Store the model (``torch.export`` with ``input_example``; the batch size stays free)."""
        from plinth.models import log_model
        from plinth.tracking import sdk

        if sdk.active_run() is not self.run:
            raise Conflict("TorchLogger.log_model logs into the active run; this logger's run is not active")
        return log_model(self.model, name, input_example=input_example, **kwargs)
