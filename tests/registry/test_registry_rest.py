"""The registry's REST routes on a real server: status codes, error bodies, two users."""

from __future__ import annotations

from models_support import iris, iris_pipeline, log_with_services
from plinth.governance import service as gov

API = "/api/v1/registry"


def test_rest_register_alias_stage_and_errors(live_server, admin_client) -> None:  # type: ignore[no-untyped-def]
    X, _ = iris()
    source = log_with_services(live_server.platform, iris_pipeline(), input_example=X.head(3), metrics={"acc": 0.9})
    r = admin_client.post(f"{API}/models", json={"name": "iris", "description": "flowers"})
    assert r.status_code == 201 and r.json()["name"] == "iris"
    assert admin_client.post(f"{API}/models", json={"name": "iris"}).status_code == 409
    r = admin_client.post(f"{API}/models/iris/versions", json={"source": source})
    assert r.status_code == 201 and r.json()["version"] == 1 and r.json()["lineage"]["metrics"] == {"acc": 0.9}
    r = admin_client.put(f"{API}/models/iris/aliases/champion", json={"version": 1})
    assert r.status_code == 200 and r.json()["aliases"] == ["champion"]
    r = admin_client.get(f"{API}/resolve", params={"ref": "models:/iris@champion"})
    assert r.json()["version"] == 1
    r = admin_client.post(f"{API}/models/iris/versions/1/stage", json={"stage": "production"})
    assert r.status_code == 403 and "needs an approval" in r.json()["error"]["message"]
    r = admin_client.post(f"{API}/models/iris/versions/1/stage", json={"stage": "nowhere"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    r = admin_client.get(f"{API}/models/ghost")
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("registered model 'ghost' does not exist")
    r = admin_client.get(f"{API}/models/iris/versions/7")
    assert r.status_code == 404 and "has no version 7" in r.json()["error"]["message"]
    r = admin_client.get(f"{API}/models/iris/compare", params={"versions": [1]})
    assert r.status_code == 200 and r.json()["metrics"] == {"acc": {"1": 0.9}}
    r = admin_client.get(f"{API}/models/iris/history", params={"at": "2000-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["aliases"] == {} and r.json()["events"] == []
    r = admin_client.get(f"{API}/models/iris/history", params={"at": "not a time"})
    assert r.status_code == 400
    r = admin_client.put(f"{API}/models/iris/card", json={"fields": {"limitations": "small data"}})
    assert r.status_code == 200 and r.json()["fields"] == {"limitations": "small data"}


def test_rest_approval_by_another_user(live_server, admin_client) -> None:  # type: ignore[no-untyped-def]
    X, _ = iris()
    source = log_with_services(live_server.platform, iris_pipeline(), input_example=X.head(3))
    admin = live_server.platform.caller()
    admin.call(gov.create_user, name="carol")
    admin.call(gov.grant_role, user="carol", role="editor", approver=True)
    carol_token = admin.call(gov.create_token, name="t", user="carol").token
    admin_client.post(f"{API}/models/iris/versions", json={"source": source})
    r = admin_client.post(f"{API}/approvals", json={"name": "iris", "version": 1, "reason": ""})
    assert r.status_code == 400 and "needs a reason" in r.json()["error"]["message"]
    r = admin_client.post(f"{API}/approvals", json={"name": "iris", "version": 1, "reason": "good enough"})
    assert r.status_code == 201
    request_id = r.json()["id"]
    r = admin_client.post(f"{API}/approvals/{request_id}/approve", json={})
    assert r.status_code == 403 and "may not decide it" in r.json()["error"]["message"]
    with live_server.client(carol_token) as carol:
        assert [a["id"] for a in carol.get(f"{API}/approvals").json()] == [request_id]
        r = carol.post(f"{API}/approvals/{request_id}/approve", json={"comment": "ship it"})
        assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["decided_by"] == "carol"
    assert admin_client.get(f"{API}/models/iris").json()["production_version"] == 1
    assert admin_client.get(f"{API}/approvals", params={"status": "approved"}).json()[0]["comment"] == "ship it"
