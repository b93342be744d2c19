"""PyTorch: ``torch.export`` programs, saved with ``torch.export.save`` (no pickle of code).

An ``nn.Module`` is exported with the input example (which is then required); an
``ExportedProgram`` is saved as it is. Weights with custom code go through a
:class:`~plinth.models.PythonModel` that loads them in ``load_context`` instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from plinth.core.errors import InvalidInput
from plinth.models.flavors.base import missing_extra, pinned

NAME = "torch"
FILE = "model.pt2"


def handles(model: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch model means torch is imported already
    return torch is not None and isinstance(model, torch.nn.Module | torch.export.ExportedProgram)


def requirements(options: dict[str, Any]) -> list[str]:
    return pinned("torch", "numpy")


def save(model: Any, folder: Path, input_example: Any = None, **_: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    if isinstance(model, torch.nn.Module):
        if input_example is None:
            raise InvalidInput(
                "a torch nn.Module is exported with torch.export: pass input_example=", field="input_example"
            )
        example = torch.from_numpy(np.asarray(input_example))
        # the batch dimension stays free; torch.export would otherwise fix it to the example's
        model = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(model, str(folder / FILE))
    return {"file": FILE}


def load(folder: Path, options: dict[str, Any], trust: bool, where: str) -> TorchPredictor:
    if options.get("file") != FILE:
        raise InvalidInput(f"model {where}: the manifest names no exported program")
    try:
        import torch
    except ImportError:
        raise missing_extra("torch", "torch") from None
    program = torch.export.load(str(folder / FILE))
    return TorchPredictor(program)


class TorchPredictor:
    def __init__(self, program: Any) -> None:
        self.raw = program
        self._module = program.module()

    def predict(self, data: Any, **params: Any) -> Any:
        import numpy as np
        import torch

        array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        with torch.no_grad():
            out = self._module(torch.from_numpy(np.ascontiguousarray(array)))
        if isinstance(out, tuple | list):
            out = out[0]
        return out.detach().cpu().numpy()
