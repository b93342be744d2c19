"""Hot swap: a background thread follows the event log and, when a registry alias that a
served model was loaded through (``models:/churn@champion``) moves, loads the new version off
the request path and swaps it in atomically. Requests already on their way finish on the old
version; none fails. A version that fails to load leaves the old one serving; the failure
is logged (and, for a server started from a deployment, the deployment is marked failed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plinth.serving.app import ModelServer, ServedModel

__all__ = ["ALIAS_ACTIONS", "AliasFollower"]

log = logging.getLogger("plinth.serving")

ALIAS_ACTIONS = ("model_alias.set",)  # what the registry emits when an alias moves


@dataclass(frozen=True)
class _Target:
    route: str
    model: str
    alias: str
    uri: str


def _targets(server: ModelServer) -> list[_Target]:
    from plinth.core.uris import parse_reference

    found = []
    for route in server.models.values():
        for served in route.members:
            if not served.uri.startswith("models:/"):
                continue
            ref = parse_reference(served.uri, {"models"})
            if ref.alias:
                found.append(_Target(route.name, ref.name, ref.alias, served.uri))
    return found


class AliasFollower:
    """Follows alias moves of the served models; ``start()`` once the server's loop runs."""

    def __init__(
        self,
        server: ModelServer,
        *,
        project: str | None = None,
        trust: bool = False,
        poll_interval: float = 0.5,
        deployment: str | None = None,
        load: Callable[[str, str], ServedModel] | None = None,
    ) -> None:
        self.server = server
        self.project = project
        self.trust = trust
        self.poll_interval = poll_interval
        self.deployment = deployment
        self.targets = _targets(server)
        self.failures: list[str] = []
        self._load = load or self._load_version
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_seq = 0

    def __repr__(self) -> str:
        return f"AliasFollower(targets={[t.uri for t in self.targets]!r})"

    # --- the event log ---------------------------------------------------------------------
    def _platform(self) -> Any:
        from plinth.client.backend import current_backend

        platform = getattr(current_backend(), "platform", None)
        if platform is None:
            raise RuntimeError("hot swap follows the embedded platform's event log; this process talks to a server")
        return platform

    def _events(self, after: int) -> list[tuple[int, str, str, dict[str, Any]]]:
        from plinth.store.events import read_events

        with self._platform().context(project=self.project or "default") as ctx:
            rows = read_events(ctx.session, after=after, limit=500, action="model_alias.*")
            return [(e.seq, e.action, e.resource, json.loads(e.summary or "{}")) for e in rows]

    def _head(self) -> int:
        from plinth.store.events import read_events

        with self._platform().context(project=self.project or "default") as ctx:
            rows = read_events(ctx.session, limit=1, descending=True)
            return rows[0].seq if rows else 0

    def _load_version(self, target_uri: str, route: str) -> ServedModel:
        from plinth.serving.loading import load_served

        return load_served(target_uri, name=route, trust=self.trust, project=self.project)

    # --- running -------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.targets:
            return
        self._loop = loop
        try:
            self.last_seq = self._head()
        except Exception:
            log.exception("hot swap is off: the event log cannot be read")
            return
        self._thread = threading.Thread(target=self._run, name="plinth-hot-swap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:
                log.exception("hot swap: reading the event log failed; retrying")

    def poll(self) -> None:
        """Handle the alias moves logged since the last one seen."""
        for seq, action, resource, summary in self._events(self.last_seq):
            self.last_seq = seq
            if action not in ALIAS_ACTIONS:
                continue
            for target in self.targets:
                if resource == f"models:/{target.model}" and summary.get("alias") == target.alias:
                    self._swap_to(target, summary.get("version"))

    def _swap_to(self, target: _Target, version: Any) -> None:
        route = self.server.models.get(target.route)
        if route is None or version is None:
            return
        current = next((m for m in route.members if m.uri == target.uri), None)
        if current is None or current.version == str(version):
            return
        try:
            fresh = self._load(f"models:/{target.model}/{version}", target.route)
        except Exception as exc:
            message = f"hot swap of {target.uri} to version {version} failed; version {current.version} keeps serving: "
            message += f"{type(exc).__name__}: {exc}"
            log.error(message)
            self.failures.append(message)
            self._mark_failed(message)
            return
        fresh.uri = target.uri
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.server.swap(target.route, current, fresh), self._loop).result(timeout=60)
        log.info("hot swap: %s now serves version %s (was %s)", target.uri, fresh.version, current.version)

    def _mark_failed(self, message: str) -> None:
        if self.deployment is None:
            return
        try:
            from plinth.serving.sdk import update_deployment

            update_deployment(self.deployment, status="failed", status_message=message[:2000], project=self.project)
        except Exception:
            log.exception("hot swap: could not mark deployment %s failed", self.deployment)
