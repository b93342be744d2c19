"""The registry's pages over HTTP: list, model page, approval queue, card, compare; forms
that fail show the service's message with its status."""

from __future__ import annotations

import httpx

from models_support import iris, iris_pipeline, log_with_services
from plinth.registry import service as svc
from plinth.registry import stages


def client(live_server, token: str) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {token}", "Origin": live_server.url},
        timeout=30,
        follow_redirects=True,
    )


def test_pages_render_and_forms_act(live_server) -> None:  # type: ignore[no-untyped-def]
    X, _ = iris()
    caller = live_server.platform.caller()
    for c in (1.0, 0.1):
        source = log_with_services(
            live_server.platform,
            iris_pipeline(c),
            input_example=X.head(3),
            params={"C": c},
            metrics={"accuracy": 0.9 + c / 100},
        )
        caller.call(svc.register_version, name="iris", source=source)
    with client(live_server, live_server.admin_token) as c:
        page = c.get("/models")
        assert page.status_code == 200 and 'data-model="iris"' in page.text and 'data-stage="development"' in page.text
        assert 'href="/models">Models <span class="soon"' not in page.text
        page = c.get("/models/iris")
        assert page.status_code == 200
        assert 'data-version="2"' in page.text and "Metrics by version" in page.text and "accuracy" in page.text
        assert "runs:/" in page.text and "produced" in page.text  # the lineage edge run -> version

        page = c.post("/models/iris/aliases", data={"alias": "champion", "version": "2"})
        assert page.status_code == 200 and "models:/iris@champion" in page.text
        page = c.post("/models/iris/aliases", data={"alias": "latest", "version": "2"})
        assert page.status_code == 400 and "is reserved" in page.text
        page = c.post("/models/iris/versions/1/stage", data={"stage": "staging"})
        assert page.status_code == 200 and caller.call(svc.get_version, name="iris", version=1).stage == "staging"
        page = c.post("/models/iris/versions/2/approval", data={"reason": "better accuracy"})
        assert page.status_code == 200 and "better accuracy" in page.text  # now on the approval queue
        request_id = caller.call(stages.list_approvals)[0].id
        page = c.post(f"/models/-/approvals/{request_id}/approve", data={"comment": "self"})
        assert page.status_code == 403 and "may not decide it" in page.text
        assert caller.call(svc.get_version, name="iris", version=2).stage == "development"

        page = c.get("/models/iris/card", params={"ref": "champion"})
        assert page.status_code == 200 and "Model card: iris v2" in page.text
        page = c.post("/models/iris/card", data={"ref": "champion", "intended_use": "<b>triage</b>"})
        assert page.status_code == 200 and "&lt;b&gt;triage&lt;/b&gt;" in page.text and "Card saved." in page.text
        page = c.get("/models/iris/compare", params={"versions": [1, 2]})
        assert page.status_code == 200 and "differs" in page.text
        page = c.get("/models/iris", params={"at": "2000-01-01T00:00Z"})
        assert 'data-testid="history-answer"' in page.text and "no aliases then" in page.text
        assert c.get("/models/ghost").status_code == 404


def test_cross_site_form_posts_are_refused(live_server) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {live_server.admin_token}", "Origin": "https://evil.example"},
    ) as c:
        r = c.post("/models", data={"name": "x"})
    assert r.status_code == 403
    assert live_server.platform.caller().call(svc.list_models) == []
