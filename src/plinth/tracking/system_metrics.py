"""System metrics: a background sampler that logs ``system/*`` while a run is active.

CPU, memory, disk and network I/O through ``psutil``; GPU utilisation and memory
through NVML (``pynvml``) only when it imports and finds a GPU. One sample at the start,
one every ``interval`` seconds, and one at the end, so even a short run has two.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("plinth.tracking")

Log = Callable[[dict[str, float], int], None]  # (metrics, step)


class _Nvml:
    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # no pynvml, no driver, no GPU: sample without GPUs
            self.handles = []

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, handle in enumerate(self.handles):
            try:
                util = self.nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            out[f"system/gpu_{i}_utilization_percent"] = float(util.gpu)
            out[f"system/gpu_{i}_memory_used_mb"] = mem.used / 2**20
            out[f"system/gpu_{i}_memory_percent"] = 100.0 * mem.used / mem.total if mem.total else 0.0
        return out


class SystemMetricsSampler:
    """Samples on its own thread; :meth:`stop` takes a last sample and waits for the thread."""

    def __init__(self, log_metrics: Log, interval: float = 10.0) -> None:
        self.log_metrics = log_metrics
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step = 0
        self._psutil: Any = None
        self._nvml: _Nvml | None = None
        self._last_io: tuple[float, Any, Any] | None = None

    def __repr__(self) -> str:
        return f"SystemMetricsSampler(interval={self.interval})"

    def start(self) -> SystemMetricsSampler:
        try:
            import psutil
        except ImportError:
            log.warning("system metrics need psutil: pip install psutil")
            return self
        self._psutil = psutil
        psutil.cpu_percent(None)  # the first call only primes the counter
        self._nvml = _Nvml()
        self._thread = threading.Thread(target=self._loop, name="plinth-system-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self._thread = None
        self._sample()

    def _loop(self) -> None:
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def sample(self) -> dict[str, float]:
        ps = self._psutil
        out: dict[str, float] = {"system/cpu_percent": float(ps.cpu_percent(None))}
        mem = ps.virtual_memory()
        out["system/memory_used_mb"] = (mem.total - mem.available) / 2**20
        out["system/memory_percent"] = float(mem.percent)
        now = time.monotonic()
        disk = _safe(ps.disk_io_counters)
        net = _safe(ps.net_io_counters)
        if self._last_io is not None:
            then, last_disk, last_net = self._last_io
            dt = max(now - then, 1e-6)
            if disk is not None and last_disk is not None:
                out["system/disk_read_mb_per_s"] = (disk.read_bytes - last_disk.read_bytes) / 2**20 / dt
                out["system/disk_write_mb_per_s"] = (disk.write_bytes - last_disk.write_bytes) / 2**20 / dt
            if net is not None and last_net is not None:
                out["system/network_received_mb_per_s"] = (net.bytes_recv - last_net.bytes_recv) / 2**20 / dt
                out["system/network_sent_mb_per_s"] = (net.bytes_sent - last_net.bytes_sent) / 2**20 / dt
        self._last_io = (now, disk, net)
        if self._nvml is not None:
            out.update(self._nvml.sample())
        return out

    def _sample(self) -> None:
        try:
            values = self.sample()
            self.log_metrics(values, self._step)
            self._step += 1
        except Exception as exc:  # a sampler must never take the run down
            log.warning("system metrics sample failed: %s", exc)


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (OSError, RuntimeError):
        return None
