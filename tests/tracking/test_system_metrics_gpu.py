"""GPU system metrics through NVML: the real bindings on a machine without a GPU driver, and the
sampler's names and arithmetic against a stand-in NVML module with two devices (no GPU here)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from plinth.tracking.system_metrics import SystemMetricsSampler, _Nvml


def test_the_real_nvml_bindings_without_a_driver_give_no_gpu_metrics() -> None:
    import pynvml  # the gpu extra (nvidia-ml-py), part of the dev install
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        has_driver = False
    else:
        has_driver = True
        pynvml.nvmlShutdown()
    nvml = _Nvml()
    if has_driver:  # a GPU machine: one set of metrics per device
        assert nvml.handles and set(nvml.sample()) >= {"system/gpu_0_utilization_percent"}
    else:
        assert nvml.handles == [] and nvml.sample() == {}


def _fake_nvml(failing: set[int]) -> types.ModuleType:
    module = types.ModuleType("pynvml")
    state: dict[str, Any] = {"init": 0}

    def init() -> None:
        state["init"] += 1

    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: 3  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"  # type: ignore[attr-defined]

    def utilization(handle: str) -> Any:
        i = int(handle[1:])
        if i in failing:
            raise RuntimeError("GPU is lost")
        return types.SimpleNamespace(gpu=40 + i, memory=10)

    module.nvmlDeviceGetUtilizationRates = utilization  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(  # type: ignore[attr-defined]
        used=3 * 2**30, total=12 * 2**30, free=9 * 2**30
    )
    module.state = state  # type: ignore[attr-defined]
    return module


def test_each_gpu_is_sampled_and_a_lost_one_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_nvml(failing={1})
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    logged: list[tuple[dict[str, float], int]] = []
    sampler = SystemMetricsSampler(lambda values, step: logged.append((values, step)), interval=60).start()
    sampler.stop()
    assert fake.state["init"] == 1  # type: ignore[attr-defined]
    assert [step for _, step in logged] == [0, 1]
    values = logged[-1][0]
    gpu = {k: v for k, v in values.items() if k.startswith("system/gpu_")}
    assert gpu == {
        "system/gpu_0_utilization_percent": 40.0,
        "system/gpu_0_memory_used_mb": 3072.0,
        "system/gpu_0_memory_percent": 25.0,
        "system/gpu_2_utilization_percent": 42.0,
        "system/gpu_2_memory_used_mb": 3072.0,
        "system/gpu_2_memory_percent": 25.0,
    }
    assert values["system/memory_percent"] > 0 and "system/cpu_percent" in values
