"""The web UI's pages over HTTP: login and its cookie, the same-origin check, page errors,
every navigation entry, and the governance pages' forms (a real server on a free port)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plinth.governance import service as gov
from plinth.server.deps import TOKEN_COOKIE
from plinth.server.ui import NAV, _same_host, safe_next

HTML = {"Accept": "text/html"}


def ui_client(server, token: str | None) -> httpx.Client:  # type: ignore[no-untyped-def]
    """A browser-like client: HTML accepted, the login cookie set, same-origin form posts."""
    client = httpx.Client(
        base_url=server.url,
        headers={**HTML, "Origin": server.url},
        timeout=30,
        follow_redirects=False,
    )
    if token:
        client.cookies.set(TOKEN_COOKIE, token)
    return client


@pytest.fixture
def admin(live_server) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with ui_client(live_server, live_server.admin_token) as c:
        yield c


@pytest.fixture
def viewer_token(live_server) -> str:  # type: ignore[no-untyped-def]
    """A user 'bob' who is only a viewer in the default project."""
    caller = live_server.platform.caller()
    caller.call(gov.create_user, name="bob")
    caller.call(gov.grant_role, user="bob", role="viewer")
    return caller.call(gov.create_token, name="bob-laptop", user="bob").token


def project_names(server) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.name for p in server.platform.caller().call(gov.list_projects)]


# --- login ----------------------------------------------------------------------------------
def test_login_url_sets_an_httponly_strict_cookie_and_redirects(live_server) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, None) as c:
        r = c.get("/login", params={"token": live_server.admin_token, "next": "/governance/users"})
        assert r.status_code == 303
        assert r.headers["location"] == "/governance/users"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{TOKEN_COOKIE}={live_server.admin_token};")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        home = c.get("/")
        assert home.status_code == 200
        assert 'data-testid="whoami">admin' in home.text


def test_login_form_post_logs_in(live_server) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, None) as c:
        form = c.get("/login")
        assert form.status_code == 200 and 'name="token"' in form.text
        r = c.post("/login", data={"token": live_server.admin_token, "next": "/governance/audit"})
        assert r.status_code == 303 and r.headers["location"] == "/governance/audit"
        assert c.cookies.get(TOKEN_COOKIE) == live_server.admin_token


@pytest.mark.parametrize(
    ("token", "message"),
    [("plt_" + "x" * 40, "the token is not known"), ("short", "the token is malformed")],
)
def test_a_bad_token_gets_401_the_form_again_and_no_cookie(
    live_server, token: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, None) as c:
        for r in (
            c.get("/login", params={"token": token}),
            c.post("/login", data={"token": token}),
        ):
            assert r.status_code == 401
            assert "set-cookie" not in r.headers
            assert message in r.text and 'name="token"' in r.text
        assert TOKEN_COOKIE not in c.cookies


def test_a_revoked_token_cannot_log_in(live_server) -> None:  # type: ignore[no-untyped-def]
    caller = live_server.platform.caller()
    created = caller.call(gov.create_token, name="old", user="admin")
    caller.call(gov.revoke_token, token_id=created.id)
    with ui_client(live_server, None) as c:
        r = c.get("/login", params={"token": created.token})
        assert r.status_code == 401 and "was revoked" in r.text and "set-cookie" not in r.headers


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/\r\nSet-Cookie: x=1",
        "evil.example",
        "",
    ],
)
def test_login_never_redirects_off_site(live_server, target: str) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, None) as c:
        r = c.get("/login", params={"token": live_server.admin_token, "next": target})
        assert r.status_code == 303
        assert r.headers["location"] == "/"


def test_login_keeps_a_local_next_with_its_query(live_server) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, None) as c:
        r = c.get(
            "/login",
            params={"token": live_server.admin_token, "next": "/governance/audit?scope=all"},
        )
        assert r.headers["location"] == "/governance/audit?scope=all"


def test_safe_next_rules() -> None:
    assert safe_next("/models/x?y=1#z") == "/models/x?y=1#z"
    for bad in ("//a", "/\\a", "https://a", "a", None, "/\x00", "/\ta"):
        assert safe_next(bad) == "/"


def test_logout_clears_the_cookie(admin: httpx.Client) -> None:
    r = admin.get("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert re.search(rf'{TOKEN_COOKIE}=""?;.*Max-Age=0', r.headers["set-cookie"])


def test_unauthenticated_pages_redirect_to_login(live_server) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, None) as c:
        for path in ("/", "/governance/users", "/experiments"):
            r = c.get(path)
            assert r.status_code == 303
            assert r.headers["location"] == f"/login?next={path}"
        htmx = c.post(
            "/governance/tokens",
            data={"name": "x"},
            headers={
                "HX-Request": "true",
                "HX-Current-URL": f"{live_server.url}/governance/users?project=default",
            },
        )
        assert htmx.status_code == 401
        assert (
            htmx.headers["hx-redirect"] == "/login?next=%2Fgovernance%2Fusers%3Fproject%3Ddefault"
        )


def test_a_revoked_cookie_goes_back_to_login(live_server, viewer_token: str) -> None:  # type: ignore[no-untyped-def]
    caller = live_server.platform.caller()
    token_id = next(t.id for t in caller.call(gov.list_tokens, user="bob"))
    caller.call(gov.revoke_token, token_id=token_id)
    with ui_client(live_server, viewer_token) as c:
        r = c.get("/governance/projects")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


# --- same-origin check ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # right host, wrong port
        {"Origin": "", "Referer": "http://evil.example/page"},
        {"Origin": ""},  # neither header
    ],
)
def test_cross_site_posts_are_refused(
    admin: httpx.Client, live_server, headers: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    send = {k: v for k, v in headers.items() if v}
    if "Origin" not in send:
        admin.headers.pop("Origin")
    r = admin.post("/governance/projects", data={"name": "sneaky"}, headers=send)
    assert r.status_code == 403
    assert "cross-site request refused" in r.text
    assert "sneaky" not in project_names(live_server)


def test_login_post_is_also_origin_checked(live_server) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, None) as c:
        r = c.post(
            "/login",
            data={"token": live_server.admin_token},
            headers={"Origin": "http://evil.example"},
        )
        assert r.status_code == 403 and "set-cookie" not in r.headers


def test_same_origin_posts_by_origin_or_referer_pass(admin: httpx.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    r = admin.post("/governance/projects", data={"name": "by-origin"})
    assert r.status_code == 303
    admin.headers.pop("Origin")
    r = admin.post(
        "/governance/projects",
        data={"name": "by-referer"},
        headers={"Referer": f"{live_server.url}/governance/projects"},
    )
    assert r.status_code == 303
    assert {"by-origin", "by-referer"} <= set(project_names(live_server))


def test_same_host_compares_host_and_port_with_default_ports() -> None:
    assert _same_host("https://plinth.example", "plinth.example")
    assert _same_host("https://plinth.example", "plinth.example:443")
    assert _same_host("http://plinth.example:8420/x", "plinth.example:8420")
    assert not _same_host("http://plinth.example", "plinth.example:8420")
    assert not _same_host("https://plinth.example.evil.example", "plinth.example")
    assert not _same_host("ftp://plinth.example", "plinth.example")
    assert not _same_host("http://plinth.example:99999", "plinth.example")
    assert not _same_host("http://plinth.example", "")


# --- every page -------------------------------------------------------------------------------
def test_every_navigation_page_renders_for_the_admin(admin: httpx.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    home = admin.get("/")
    assert home.status_code == 200
    for entry in NAV:
        assert f'href="{entry.path}"' in home.text, f"the navigation lacks {entry.label}"
        r = admin.get(entry.path)
        assert r.status_code == 200, (entry.path, r.text[:500])
        assert f"<title>{entry.label.replace('&', '&amp;')} · Plinth</title>" in r.text
        assert 'aria-current="page"' in r.text
    from plinth.server.app import create_app

    placeholders = create_app(live_server.platform).state.ui_placeholders
    assert "/pipelines" in placeholders and "/governance/users" not in placeholders
    for placeholder in placeholders:
        assert "not built yet" in admin.get(placeholder).text


def test_pages_carry_security_headers(admin: httpx.Client) -> None:
    r = admin.get("/governance/users")
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text  # no inline scripts: the CSP would block them


def test_vendored_assets_are_served_and_match_their_readme(live_server) -> None:  # type: ignore[no-untyped-def]
    vendor = Path(__file__).parents[2] / "src/plinth/server/static/vendor"
    readme = (vendor / "README.md").read_text()
    with ui_client(live_server, None) as c:
        htmx = c.get("/static/vendor/htmx/htmx.min.js")
        assert htmx.status_code == 200
        version = re.search(r"version\s*=\s*[\"'](\d+\.\d+\.\d+)[\"']", htmx.text)
        assert version and f"| `htmx.org`  | {version.group(1)} " in readme
        uplot = c.get("/static/vendor/uplot/uPlot.iife.min.js")
        assert uplot.status_code == 200 and "uPlot" in uplot.text
        assert c.get("/static/vendor/uplot/uPlot.min.css").status_code == 200
        assert c.get("/static/plinth.css").status_code == 200
        assert c.get("/static/plinth.js").status_code == 200
    for folder in ("htmx", "uplot"):
        assert (vendor / folder / "LICENSE").stat().st_size > 100


# --- permissions and errors shown in pages --------------------------------------------------
def test_a_viewer_sees_the_services_403_on_admin_pages(live_server, viewer_token: str) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, viewer_token) as c:
        audit = c.get("/governance/audit")
        assert audit.status_code == 403
        assert (
            "&#39;bob&#39; is a viewer in project &#39;default&#39;; "
            "managing needs maintainer or above" in audit.text
        )
        assert "Traceback" not in audit.text and 'class="sidenav"' in audit.text
        all_projects = c.get("/governance/audit", params={"scope": "all"})
        assert all_projects.status_code == 403 and "not a platform admin" in all_projects.text

        create = c.post("/governance/users", data={"name": "mallory"})
        assert create.status_code == 403 and "not a platform admin" in create.text

        users = c.get("/governance/users")  # the page still serves bob's own tokens
        assert users.status_code == 200
        assert 'data-testid="users-denied"' in users.text and "bob-laptop" in users.text
        assert 'data-testid="create-user"' not in users.text
    assert "mallory" not in [u.name for u in live_server.platform.caller().call(gov.list_users)]


def test_service_errors_keep_their_status_and_message(admin: httpx.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    bad = admin.post("/governance/projects", data={"name": "no spaces", "description": "kept"})
    assert bad.status_code == 400
    assert "project &#39;no spaces&#39; is not valid" in bad.text
    assert 'value="kept"' in bad.text  # the form keeps what was typed
    twice = admin.post("/governance/projects", data={"name": "default"})
    assert twice.status_code == 409 and "project &#39;default&#39; already exists" in twice.text
    missing = admin.get("/governance/projects/nope")
    assert missing.status_code == 404 and "project &#39;nope&#39; does not exist" in missing.text
    paging = admin.get("/governance/audit", params={"before": "-3"})
    assert paging.status_code == 400 and "before" in paging.text
    assert project_names(live_server) == ["default"]


def test_htmx_errors_are_swapped_into_the_flash(admin: httpx.Client) -> None:
    r = admin.post("/governance/tokens/nope/revoke", headers={"HX-Request": "true"})
    assert r.status_code == 404
    assert r.headers["hx-retarget"] == "#flash"
    assert "token &#39;nope&#39; does not exist" in r.text and "<html" not in r.text


# --- governance pages -----------------------------------------------------------------------
def test_create_project_then_grant_a_role(admin: httpx.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    r = admin.post(
        "/governance/projects", data={"name": "risk", "description": "credit risk models"}
    )
    assert (
        r.status_code == 303 and r.headers["location"] == "/governance/projects/risk?project=risk"
    )
    live_server.platform.caller().call(gov.create_user, name="dana")
    granted = admin.post(
        "/governance/projects/risk/members",
        data={"user": "dana", "role": "editor", "approver": "on"},
    )
    assert granted.status_code == 303
    page = admin.get("/governance/projects/risk")
    assert "credit risk models" in page.text and "dana" in page.text and "editor" in page.text
    members = live_server.platform.caller(project="risk").call(gov.list_members)
    assert [(m.user, m.role, m.approver) for m in members] == [("dana", "editor", True)]
    bad_role = admin.post(
        "/governance/projects/risk/members", data={"user": "dana", "role": "owner"}
    )
    assert bad_role.status_code == 400 and "role &#39;owner&#39; is not one of" in bad_role.text


def test_create_user_and_disable_them(admin: httpx.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    r = admin.post("/governance/users", data={"name": "erin", "email": "erin@example.com"})
    assert r.status_code == 303 and r.headers["location"] == "/governance/users"
    page = admin.get("/governance/users")
    assert "erin@example.com" in page.text
    row = admin.post(
        "/governance/users/erin/disabled", data={"disabled": "true"}, headers={"HX-Request": "true"}
    )
    assert (
        row.status_code == 200
        and row.text.lstrip().startswith('<tr id="user-erin">')
        and "disabled" in row.text
    )
    assert live_server.platform.caller().call(gov.get_user, name="erin").disabled is True
    bad = admin.post("/governance/users", data={"name": "erin2", "email": "not-an-email"})
    assert bad.status_code == 400 and "is not an email address" in bad.text


def test_a_new_token_is_shown_once_and_revoking_it_works(admin: httpx.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    r = admin.post(
        "/governance/tokens",
        data={"name": "ci", "expires_in_days": "7"},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 201
    secret = re.search(r'data-testid="new-token-secret">(plt_[^<]+)<', r.text)
    assert secret, r.text
    assert r.text.lstrip().startswith('<section id="tokens">')  # an htmx fragment, not a page
    with live_server.client(secret.group(1)) as api:
        assert api.get("/api/v1/whoami").json()["name"] == "admin"
    assert secret.group(1) not in admin.get("/governance/users").text

    token = next(t for t in live_server.platform.caller().call(gov.list_tokens) if t.name == "ci")
    assert token.expires_at is not None
    row = admin.post(f"/governance/tokens/{token.id}/revoke", headers={"HX-Request": "true"})
    assert row.status_code == 200
    assert 'data-testid="token-status">revoked<' in row.text
    with live_server.client(secret.group(1)) as api:
        assert api.get("/api/v1/whoami").status_code == 401

    no_js = admin.post("/governance/tokens", data={"name": "plain"})  # without htmx: the whole page
    assert (
        no_js.status_code == 201
        and "<html" in no_js.text
        and 'data-testid="new-token-secret"' in no_js.text
    )
    bad = admin.post(
        "/governance/tokens",
        data={"name": "x", "expires_in_days": "soon"},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 400 and "expires_in_days &#39;soon&#39; is not a number" in bad.text


# --- audit page -------------------------------------------------------------------------------
def test_audit_pages_newest_first_by_sequence_with_filters(
    admin: httpx.Client, live_server
) -> None:  # type: ignore[no-untyped-def]
    caller = live_server.platform.caller()
    for i in range(55):
        caller.call(gov.create_project, name=f"p{i:02d}")
    head = caller.call(gov.verify_audit).head_seq  # 2 bootstrap events + 55

    first = admin.get("/governance/audit")
    seqs = [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', first.text)]
    assert seqs == list(range(head, head - 50, -1))
    assert "Older →" in first.text and "← Newer" not in first.text
    older = admin.get("/governance/audit", params={"before": seqs[-1]})
    older_seqs = [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', older.text)]
    assert older_seqs == list(range(seqs[-1] - 1, 0, -1))
    assert "← Newer" in older.text and "Older →" not in older.text
    newer = admin.get("/governance/audit", params={"after": older_seqs[0]})
    assert [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', newer.text)] == seqs

    only_users = admin.get("/governance/audit", params={"action": "user.*"})
    assert re.findall(r"<td><code>([a-z.]+)</code></td>", only_users.text) == ["user.create"]
    by_actor = admin.get("/governance/audit", params={"actor": "nobody"})
    assert "No events match." in by_actor.text
    chart = re.search(r"data-chart='([^']+)'", first.text)
    assert chart and json.loads(chart.group(1)) == {
        "kind": "bar",
        "label": "events",
        "labels": ["project.create", "token.create", "user.create"],
        "values": [55, 1, 1],
    }


def test_audit_banner_turns_red_naming_the_edited_event(admin: httpx.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    page = admin.get("/governance/audit")
    assert 'hx-get="/governance/audit/verify" hx-trigger="load"' in page.text
    ok = admin.get("/governance/audit/verify")
    assert 'data-testid="audit-verified"' in ok.text and "Chain verified: 2 events" in ok.text
    with live_server.platform.db.session() as session:
        session.execute(sa.text("UPDATE events SET summary='{}' WHERE seq=2"))
    broken = admin.get("/governance/audit/verify", headers={"HX-Request": "true"})
    assert broken.status_code == 200
    assert broken.text.startswith('<div id="audit-verification">')  # the fragment htmx swaps in
    assert 'data-testid="audit-broken"' in broken.text and "Chain verified" not in broken.text
    assert "event 2 was edited: its content does not match its hash" in broken.text


def test_a_viewer_is_told_verification_is_for_admins(live_server, viewer_token: str) -> None:  # type: ignore[no-untyped-def]
    with ui_client(live_server, viewer_token) as c:
        r = c.get("/governance/audit/verify")
        assert r.status_code == 200
        assert "Chain verification: &#39;bob&#39; is not a platform admin" in r.text


def test_login_redirect_keeps_the_query_string(live_server) -> None:  # type: ignore[no-untyped-def]
    with live_server.client() as anon:
        r = anon.get("/governance/audit?actor=admin", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/governance/audit%3Factor%3Dadmin"
