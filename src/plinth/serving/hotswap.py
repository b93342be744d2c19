"""Hot swap: a background thread follows the event log and, when a registry alias that a
served model was loaded through (``models:/churn@champion``) moves, loads the new version off
the request path and swaps it in atomically. Requests already on their way finish on the old
version; none fails. A version that fails to load leaves the old one serving; the failure
is logged (and, for a server started from a deployment, the deployment is marked failed).

A server started from a deployment also follows the deployment: when ``plinth deploy update``
changes its versions, weights, shadow or sticky key, the new route is loaded off the request
path and replaces the old one in one swap; when it changes its features, the new feature
lookup is resolved and swapped in. A change that fails to load leaves the old one serving.
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
    from plinth.serving.app import ModelServer, Route, ServedModel

__all__ = ["ALIAS_ACTIONS", "AliasFollower"]

log = logging.getLogger("plinth.serving")

ALIAS_ACTIONS = ("model_alias.set",)  # what the registry emits when an alias moves
DEPLOYMENT_ACTION = "deployment.update"
_ROUTE_FIELDS = ("traffic", "shadow", "sticky_key")  # a change of these reloads the route
_FEATURE_FIELDS = ("features", "missing_features")  # a change of these rebuilds the feature lookup


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
        load_route: Callable[[], Route] | None = None,
    ) -> None:
        self.server = server
        self.project = project
        self.trust = trust
        self.poll_interval = poll_interval
        self.deployment = deployment
        self.targets = _targets(server)
        self.failures: list[str] = []
        self._load = load or self._load_version
        self._load_route = load_route or self._load_deployment
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

    def _events(self, after: int) -> tuple[list[tuple[int, str, str, dict[str, Any]]], int]:
        """The alias moves (and this deployment's updates) after sequence ``after``, and the last
        sequence number read: up to 500 events of any kind per call, the rest on the next."""
        from plinth.store.events import read_events

        mine = f"deployments:/{self.deployment}" if self.deployment is not None else None
        with self._platform().context(project=self.project or "default") as ctx:
            rows = read_events(ctx.session, after=after, limit=500)
            wanted = [
                (e.seq, e.action, e.resource, json.loads(e.summary or "{}"))
                for e in rows
                if e.action in ALIAS_ACTIONS or (e.action == DEPLOYMENT_ACTION and e.resource == mine)
            ]
            return wanted, rows[-1].seq if rows else after

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
        if not self.targets and self.deployment is None:
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
        """Handle the alias moves (and deployment updates) logged since the last one seen."""
        events, last = self._events(self.last_seq)
        for _seq, action, resource, summary in events:
            if action == DEPLOYMENT_ACTION:
                before, after = summary.get("before") or {}, summary.get("after") or {}
                if any(before.get(k) != after.get(k) for k in _ROUTE_FIELDS):
                    self._reload_route()
                if any(before.get(k) != after.get(k) for k in _FEATURE_FIELDS):
                    self._reload_features(after)
                continue
            for target in self.targets:
                if resource == f"models:/{target.model}" and summary.get("alias") == target.alias:
                    self._swap_to(target, summary.get("version"))
        self.last_seq = last

    def _load_deployment(self) -> Route:
        from plinth.serving.loading import load_deployment

        assert self.deployment is not None
        return load_deployment(self.deployment, trust=self.trust, project=self.project)

    def _reload_route(self) -> None:
        """Serve the deployment's new versions, weights, shadow and sticky key."""
        try:
            route = self._load_route()
        except Exception as exc:
            self._failed(
                f"deployment {self.deployment} changed but its new models failed to load; "
                "the previous ones keep serving",
                exc,
            )
            return
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.server.replace_route(route), self._loop).result(timeout=60)
        self.targets = _targets(self.server)
        log.info("deployment %s: now serving %s", self.deployment, ", ".join(m.uri for m in route.members))

    def _reload_features(self, after: dict[str, Any]) -> None:
        """Fill the inputs the deployment's new features name (none: no lookup)."""
        from plinth.serving.enrich import FeatureEnricher

        features = tuple(after.get("features") or ())
        enricher = None
        if features:
            try:
                enricher = FeatureEnricher(
                    features, missing=after.get("missing_features") or "error", project=self.project
                )
                enricher.resolve()
            except Exception as exc:
                self._failed(
                    f"deployment {self.deployment}: its new features could not be resolved; the previous ones stay", exc
                )
                return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(setattr, self.server, "enricher", enricher)
        log.info("deployment %s: features now %s", self.deployment, ", ".join(features) or "none")

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
            self._failed(
                f"hot swap of {target.uri} to version {version} failed; version {current.version} keeps serving", exc
            )
            return
        fresh.uri = target.uri
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.server.swap(target.route, current, fresh), self._loop).result(timeout=60)
        log.info("hot swap: %s now serves version %s (was %s)", target.uri, fresh.version, current.version)

    def _failed(self, what: str, exc: Exception) -> None:
        """A change that could not be made: logged, kept in ``failures``, shown on the deployment."""
        message = f"{what}: {type(exc).__name__}: {exc}"
        log.error(message)
        self.failures.append(message)
        self._mark_failed(message)

    def _mark_failed(self, message: str) -> None:
        if self.deployment is None:
            return
        try:
            from plinth.serving.sdk import update_deployment

            update_deployment(self.deployment, status="failed", status_message=message[:2000], project=self.project)
        except Exception:
            log.exception("hot swap: could not mark deployment %s failed", self.deployment)
