"""The governance REST API over a live server: auth, errors, remote SDK."""

from __future__ import annotations

import pytest

import plinth
from plinth.core.errors import AlreadyExists, PermissionDenied, Unauthenticated


def test_requests_without_or_with_bad_tokens_get_401(live_server) -> None:  # type: ignore[no-untyped-def]
    with live_server.client() as anon:
        r = anon.get("/api/v1/projects")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthenticated"
        assert "token is required" in r.json()["error"]["message"]
        r = anon.get("/api/v1/projects", headers={"Authorization": "Basic abc"})
        assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    with live_server.client("plt_" + "z" * 43) as unknown:
        assert unknown.get("/api/v1/whoami").json()["error"]["message"] == "the token is not known"
    with live_server.client("bad token with spaces") as malformed:
        assert malformed.get("/api/v1/whoami").status_code == 401


def test_revoked_token_stops_working_at_once(live_server, admin_client) -> None:  # type: ignore[no-untyped-def]
    assert admin_client.post("/api/v1/users", json={"name": "alice"}).status_code == 201
    created = admin_client.post("/api/v1/tokens", json={"name": "ci", "user": "alice"}).json()
    with live_server.client(created["token"]) as alice:
        assert alice.get("/api/v1/whoami").json()["name"] == "alice"
        assert admin_client.delete(f"/api/v1/tokens/{created['id']}").json()["revoked_at"]
        r = alice.get("/api/v1/whoami")
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_viewer_cannot_write_and_nothing_changes(live_server, admin_client) -> None:  # type: ignore[no-untyped-def]
    admin_client.post("/api/v1/projects", json={"name": "risk"})
    admin_client.post("/api/v1/users", json={"name": "vic"})
    admin_client.post("/api/v1/members?project=risk", json={"user": "vic", "role": "viewer"})
    token = admin_client.post("/api/v1/tokens", json={"name": "t", "user": "vic"}).json()["token"]
    before = admin_client.get("/api/v1/audit/events?all_projects=true&limit=1000").json()
    with live_server.client(token) as vic:
        r = vic.post("/api/v1/members?project=risk", json={"user": "vic", "role": "admin"})
        assert r.status_code == 403
        assert r.json()["error"] == {
            "code": "permission_denied",
            "message": "'vic' is a viewer in project 'risk'; administering needs admin or above",
            "details": {"project": "risk", "permission": "admin"},
        }
        r = vic.put("/api/v1/artifacts/content?project=risk&owner=runs:/r1&name=a.txt", content=b"x")
        assert r.status_code == 403
        assert vic.get("/api/v1/members?project=risk").status_code == 200
    after = admin_client.get("/api/v1/audit/events?all_projects=true&limit=1000").json()
    assert after == before


def test_bad_input_is_a_400_naming_the_field_never_a_500(admin_client) -> None:  # type: ignore[no-untyped-def]
    r = admin_client.post("/api/v1/projects", json={"description": "no name"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_input" and r.json()["error"]["message"].startswith("name:")
    r = admin_client.post("/api/v1/projects", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = admin_client.get("/api/v1/audit/events?limit=-3")
    assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
    r = admin_client.post("/api/v1/tokens", json={"name": "t", "expires_in_days": -1})
    assert r.status_code == 400 and "expires_in_days" in r.json()["error"]["message"]
    r = admin_client.get("/api/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = admin_client.get("/api/v1/projects/nope")
    assert r.status_code == 404 and r.json()["error"]["message"] == "project 'nope' does not exist"


def test_request_ids_health_and_metrics(admin_client) -> None:  # type: ignore[no-untyped-def]
    r = admin_client.get("/api/v1/whoami", headers={"X-Request-ID": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    assert admin_client.get("/api/v1/whoami").headers["x-request-id"] != "req-123"
    admin_client.post("/api/v1/projects", json={"name": "p9"}, headers={"X-Request-ID": "req-abc"})
    ev = admin_client.get("/api/v1/audit/events?all_projects=true").json()[-1]
    assert ev["action"] == "project.create" and ev["request_id"] == "req-abc"
    assert admin_client.get("/healthz").json() == {"status": "ok"}
    assert admin_client.get("/readyz").json() == {"status": "ready"}
    metrics = admin_client.get("/metrics").text
    assert 'plinth_http_requests_total{method="GET",route="/api/v1/whoami",status="200"}' in metrics
    assert admin_client.get("/openapi.json").json()["info"]["title"] == "Plinth"


def test_remote_sdk_speaks_the_same_calls(remote_sdk) -> None:  # type: ignore[no-untyped-def]
    project = plinth.create_project("remote-p", description="over http")
    assert project.name == "remote-p" and project.created_by == "admin"
    with pytest.raises(AlreadyExists, match="already exists"):
        plinth.create_project("remote-p")
    plinth.create_user("rita")
    member = plinth.grant_role("rita", "editor", project="remote-p")
    assert member.role == "editor" and member.project == "remote-p"
    token = plinth.create_token("t", user="rita")
    assert [t.id for t in plinth.list_tokens(user="rita")] == [token.id]
    assert plinth.whoami().is_admin
    assert plinth.verify_audit().ok
    assert [e.action for e in plinth.list_events(project="remote-p")] == ["project.create", "role.grant"]


def test_remote_sdk_with_a_bad_token_raises_unauthenticated(live_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from plinth.client.backend import reset_backend

    monkeypatch.setenv("PLINTH_URI", live_server.url)
    monkeypatch.setenv("PLINTH_TOKEN", "plt_" + "q" * 43)
    reset_backend()
    with pytest.raises(Unauthenticated, match="not known"):
        plinth.list_projects()


def test_remote_sdk_permission_errors_arrive_typed(live_server, admin_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from plinth.client.backend import reset_backend

    admin_client.post("/api/v1/users", json={"name": "nobody"})
    token = admin_client.post("/api/v1/tokens", json={"name": "t", "user": "nobody"}).json()["token"]
    monkeypatch.setenv("PLINTH_URI", live_server.url)
    monkeypatch.setenv("PLINTH_TOKEN", token)
    reset_backend()
    with pytest.raises(PermissionDenied, match="not a platform admin"):
        plinth.create_user("x")
