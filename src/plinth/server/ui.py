"""Web UI: server-rendered pages (Jinja2 + htmx) for every area of the platform.

Each area ships ``<area>/ui.py`` with a router made by :func:`ui_router` and its
templates under ``<area>/templates/<area>/``; it adds one line to :data:`UI_ROUTERS`.
Pages reach the services only through ``caller.call`` and render with :func:`render`,
which adds the actor, the navigation and the project to the template context.

Three rules hold for every UI route, set here once:

* **Same origin.** A state-changing request (anything but GET/HEAD/OPTIONS) must carry an
  ``Origin`` (or, without one, a ``Referer``) naming this server's own host; otherwise 403.
  The login cookie is also ``SameSite=Strict``.
* **Errors are pages.** A :class:`PlinthError` from a service becomes the error page (or,
  for an htmx request, an alert swapped into ``#flash``) with its HTTP status kept and its
  message shown; never a traceback. ``Unauthenticated`` goes to the login page.
* **Nothing to cache.** Pages are ``no-store`` (a new token's secret is shown once) and
  carry a strict Content-Security-Policy: scripts and styles come from ``/static`` only.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from plinth.core.context import Actor
from plinth.core.errors import PermissionDenied, PlinthError, Unauthenticated
from plinth.server.deps import TOKEN_COOKIE, CallerDep, authenticate_request, get_platform

__all__ = [
    "NAV",
    "UI_ROUTERS",
    "ActorDep",
    "Flash",
    "NavEntry",
    "UIRoute",
    "is_htmx",
    "link",
    "mount_ui",
    "render",
    "safe_next",
    "same_origin",
    "ui_router",
]

log = logging.getLogger("plinth.server.ui")

SERVER_DIR = Path(__file__).parent
STATIC_DIR = SERVER_DIR / "static"
TEMPLATE_DIR = SERVER_DIR / "templates"

# (module, attribute) of every area's page router; areas add themselves here.
UI_ROUTERS = [
    ("plinth.governance.ui", "router"),
    ("plinth.tracking.ui", "router"),
    ("plinth.data.ui", "router"),
    ("plinth.registry.ui", "router"),
    ("plinth.features.ui", "router"),
    ("plinth.serving.ui", "router"),
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE_MAX_AGE = 30 * 24 * 3600  # the token itself decides validity; this only bounds the cookie
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class NavEntry:
    """One link of the side navigation; ``group`` puts it under a heading."""

    label: str
    path: str
    description: str
    group: str | None = None

    def is_active(self, path: str) -> bool:
        if self.path == "/":
            return path == "/"
        return path == self.path or path.startswith(self.path + "/")


NAV: tuple[NavEntry, ...] = (
    NavEntry("Home", "/", "What is in the platform, and what changed lately."),
    NavEntry(
        "Experiments",
        "/experiments",
        "Runs with their parameters, metrics and artifacts, compared side by side.",
    ),
    NavEntry("Models", "/models", "The model registry: versions, aliases, approvals and lineage."),
    NavEntry(
        "Data", "/data", "Datasets as versioned Delta tables: profiles, validation and time travel."
    ),
    NavEntry(
        "Features", "/features", "Entities, feature views and feature services, offline and online."
    ),
    NavEntry(
        "Pipelines", "/pipelines", "Steps, schedules and triggers; pipeline runs with their logs."
    ),
    NavEntry("Serving", "/serving", "Deployments and endpoints, traffic and prediction logs."),
    NavEntry(
        "Monitoring", "/monitoring", "Drift and quality monitors over inference logs, with alerts."
    ),
    NavEntry("LLM", "/llm", "Prompts with versions and aliases, evaluations and traces."),
    NavEntry(
        "Projects", "/governance/projects", "Projects and their members' roles.", "Governance"
    ),
    NavEntry("Users & tokens", "/governance/users", "Users and their API tokens.", "Governance"),
    NavEntry(
        "Audit log",
        "/governance/audit",
        "The hash-chained event log and its verification.",
        "Governance",
    ),
)


@dataclass(frozen=True)
class Flash:
    """A message shown above the page content: ``kind`` is error, success or info."""

    kind: str
    message: str

    @classmethod
    def error(cls, exc: PlinthError) -> Flash:
        return cls("error", exc.message)


ActorDep = Annotated[Actor, Depends(authenticate_request)]


# --- the same-origin (CSRF) check ------------------------------------------------------------
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _same_host(source: str, host: str) -> bool:
    """Whether an Origin/Referer URL names the host (and port) the request was sent to."""
    try:
        src = urlsplit(source)
        scheme = src.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not src.hostname or not host:
            return False
        target = urlsplit("//" + host)
        return bool(target.hostname) and (src.hostname, src.port or _DEFAULT_PORTS[scheme]) == (
            target.hostname,
            target.port or _DEFAULT_PORTS[scheme],
        )
    except ValueError:  # a malformed port or URL
        return False


def same_origin(request: Request) -> None:
    """Refuse a state-changing UI request that another site could have sent (403)."""
    if request.method in SAFE_METHODS:
        return
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        raise PermissionDenied(
            "cross-site request refused: the request has no Origin or Referer header"
        )
    if not _same_host(source, request.headers.get("host", "")):
        raise PermissionDenied(
            f"cross-site request refused: origin {source[:200]!r} is not this server"
        )


# --- routes whose errors are pages ------------------------------------------------------------
def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


class UIRoute(APIRoute):
    """A page route: service errors render as pages (status kept), login when unauthenticated."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated:
                if is_htmx(request):  # a fragment request: send the whole page to the login form
                    current = urlsplit(request.headers.get("hx-current-url", ""))
                    target = safe_next(
                        current.path + (f"?{current.query}" if current.query else "")
                    )
                    login = "/login?" + urlencode({"next": target})
                    return Response(status_code=401, headers={"HX-Redirect": login})
                raise  # the app's handler redirects HTML requests to /login
            except PlinthError as exc:
                if exc.http_status >= 500:
                    log.error("page failed: %s", exc.message, extra={"fields": {"code": exc.code}})
                return error_response(request, exc.http_status, exc.message)
            except StarletteHTTPException:
                raise
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                field = ".".join(
                    str(p) for p in first.get("loc", ()) if p not in {"body", "query", "path"}
                )
                return error_response(
                    request, 400, f"{field or 'input'}: {first.get('msg', 'invalid')}"
                )
            except Exception:
                request_id = getattr(request.state, "request_id", "?")
                log.exception("page failed", extra={"fields": {"request_id": request_id}})
                message = f"internal error; the server log has request id {request_id}"
                return error_response(request, 500, message)

        return handle


def ui_router(prefix: str = "") -> APIRouter:
    """The router for an area's pages: HTML responses, errors as pages, not in the schema."""
    return APIRouter(
        prefix=prefix,
        route_class=UIRoute,
        default_response_class=HTMLResponse,
        include_in_schema=False,
    )


# --- rendering ------------------------------------------------------------------------------
def _when(value: datetime | str | None) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS UTC' (stored times are UTC, naive or aware)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _static(path: str) -> str:
    from plinth import __version__

    return f"/static/{path}?v={__version__}"


def link(request: Request, path: str, **query: Any) -> str:
    """A local URL that keeps the page's project (``?project=``) and adds ``query``."""
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    project = request.query_params.get("project")
    if project and project != "default" and "project" not in query:
        params = {"project": project, **params}
    return path + ("?" + urlencode(params) if params else "")


def build_templates(folders: list[Path]) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals["static"] = _static
    env.globals["NAV"] = NAV
    return Jinja2Templates(env=env)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a page (or an htmx fragment) with the actor, navigation and project added.

    ``context`` may hold ``flash`` (a list of :class:`Flash`); forms post back to the same
    origin, which :func:`same_origin` checks, so templates need no CSRF token.
    """
    actor: Actor | None = getattr(request.state, "actor", None)
    project = request.query_params.get("project") or "default"

    def project_choices() -> list[str]:  # called by the layout only, so fragments skip the query
        if actor is None:
            return []
        from plinth.governance.service import list_projects

        try:
            names = [p.name for p in get_platform(request).caller(actor).call(list_projects)]
        except PlinthError:
            names = []
        return names if project in names else [project, *names]

    full: dict[str, Any] = {
        "actor": actor,
        "project": project,
        "project_choices": project_choices,
        "nav_active": {e.path for e in NAV if e.is_active(request.url.path)},
        "placeholders": getattr(request.app.state, "ui_placeholders", frozenset()),
        "link": lambda path, **q: link(request, path, **q),
        "flash": [],
        "htmx": is_htmx(request),
    }
    full.update(context or {})
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        template,
        full,
        status_code=status_code,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def error_response(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The error page; for htmx, an alert swapped into the page's ``#flash`` instead."""
    flash = [Flash("error", message)]
    if is_htmx(request):
        return render(
            request,
            "_flash.html",
            {"flash": flash},
            status_code=status_code,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    return render(
        request, "error.html", {"status": status_code, "message": message}, status_code=status_code
    )


# --- login, logout, home ----------------------------------------------------------------------
def safe_next(target: str | None) -> str:
    """A local path to go to after login: one leading '/', no scheme, host, backslash; else '/'."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


core = ui_router()


def _login(request: Request, token: str, next_path: str) -> Response:
    from plinth.governance.service import authenticate

    try:
        with get_platform(request).context() as ctx:
            authenticate(ctx.session, token.strip(), ctx.now())
    except Unauthenticated as exc:
        return render(
            request, "login.html", {"error": exc.message, "next": next_path}, status_code=401
        )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token.strip(),
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@core.get("/login", name="ui.login")
def login_page(
    request: Request,
    token: str | None = None,
    next_: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    next_path = safe_next(next_)
    if not request.app.state.auth:
        return RedirectResponse(next_path, status_code=303)
    if token is not None:
        return _login(request, token, next_path)
    return render(request, "login.html", {"error": None, "next": next_path})


@core.post("/login", name="ui.login_submit")
def login_submit(
    request: Request,
    token: Annotated[str, Form()] = "",
    next_: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    return _login(request, token, safe_next(next_))


@core.get("/logout", name="ui.logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@core.get("/", name="ui.home")
def home(request: Request, caller: CallerDep) -> Response:
    from plinth.governance import service as gov

    me = caller.call(gov.whoami)
    projects = caller.call(gov.list_projects)
    try:  # recent activity is for those who may read the log; others simply don't see the panel
        events = caller.call(
            gov.list_events, limit=10, descending=True, all_projects=caller.actor.is_admin
        )
    except PermissionDenied:
        events = None
    return render(request, "home.html", {"me": me, "projects": projects, "events": events})


def _placeholder(entry: NavEntry) -> Callable[..., Response]:
    def page(request: Request, actor: ActorDep) -> Response:
        return render(request, "not_built.html", {"entry": entry})

    return page


# --- mounting ---------------------------------------------------------------------------------
def mount_ui(app: FastAPI) -> None:
    """Static files, one template environment, every area's pages, and a placeholder page for
    each navigation entry no area serves yet."""
    folders = [TEMPLATE_DIR]
    routers: list[APIRouter] = []
    for module_name, attr in UI_ROUTERS:
        module = importlib.import_module(module_name)
        router: APIRouter = getattr(module, attr)
        wrong = [
            r.path for r in router.routes if isinstance(r, APIRoute) and not isinstance(r, UIRoute)
        ]
        if wrong:
            raise TypeError(
                f"{module_name}.{attr} must be made with plinth.server.ui.ui_router(): {wrong}"
            )
        routers.append(router)
        area_templates = Path(module.__file__ or "").parent / "templates"
        if area_templates.is_dir():
            folders.append(area_templates)
    app.state.templates = build_templates(folders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    csrf = [Depends(same_origin)]
    for router in routers:
        app.include_router(router, dependencies=csrf)
    app.include_router(core, dependencies=csrf)

    served = {
        r.path
        for router in (*routers, core)
        for r in router.routes
        if isinstance(r, APIRoute) and "GET" in (r.methods or ())
    }
    placeholders = ui_router()
    for entry in NAV:
        if entry.path not in served:
            placeholders.add_api_route(
                entry.path, _placeholder(entry), methods=["GET"], name=f"ui.placeholder{entry.path}"
            )
    app.state.ui_placeholders = frozenset(
        r.path for r in placeholders.routes if isinstance(r, APIRoute)
    )
    app.include_router(placeholders)
