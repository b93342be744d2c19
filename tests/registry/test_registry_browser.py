"""The registry in a real browser: list with stage badges, a model's page, an approval made
by another user in the queue, and the model card edited and shown."""

from __future__ import annotations

import pytest

from models_support import iris, iris_pipeline, log_with_services
from plinth.governance import service as gov
from plinth.registry import service as svc

pytestmark = pytest.mark.browser


def test_register_request_approve_as_another_user_and_edit_the_card(page, live_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(8000)
    X, _ = iris()
    admin = live_server.platform.caller()
    source = log_with_services(
        live_server.platform, iris_pipeline(), input_example=X.head(3), metrics={"accuracy": 0.97}
    )
    admin.call(svc.register_version, name="iris", source=source, description="first")
    admin.call(gov.create_user, name="carol")
    admin.call(gov.grant_role, user="carol", role="editor", approver=True)
    carol_token = admin.call(gov.create_token, name="ui", user="carol").token

    page.goto(f"{live_server.url}/login?token={live_server.admin_token}")
    page.locator("nav.sidenav").get_by_role("link", name="Models").click()
    row = page.locator('tr[data-model="iris"]')
    expect(row.locator('[data-stage="development"]')).to_be_visible()
    page.shot("registry-list")
    row.get_by_role("link", name="iris").click()
    expect(page.get_by_test_id("versions").locator('tr[data-version="1"]')).to_contain_text("sklearn")
    expect(page.get_by_test_id("lineage")).to_contain_text("runs:/")
    expect(page.get_by_test_id("version-metrics")).to_contain_text("accuracy")

    page.get_by_test_id("set-alias").get_by_role("button", name="Set alias").click()
    expect(page.get_by_test_id("aliases")).to_contain_text("models:/iris@champion")
    page.get_by_test_id("request-approval").get_by_label("Reason").fill("accurate enough for the pilot")
    page.get_by_test_id("request-approval").get_by_role("button", name="Request approval").click()
    expect(page.locator("h1")).to_have_text("Approval queue")
    pending = page.get_by_test_id("pending-approvals")
    expect(pending).to_contain_text("accurate enough for the pilot")
    pending.get_by_test_id("approve").click()  # the requester may not approve
    expect(page.locator("#flash")).to_contain_text("may not decide it")
    page.shot("self-approval-refused")

    page.goto(f"{live_server.url}/logout")
    page.goto(f"{live_server.url}/login?token={carol_token}")
    page.goto(f"{live_server.url}/models/-/approvals")
    page.get_by_test_id("pending-approvals").get_by_label("comment").fill("ship it")
    page.get_by_test_id("pending-approvals").get_by_test_id("approve").click()
    expect(page.get_by_test_id("decided-approvals")).to_contain_text("ship it")
    expect(page.get_by_test_id("decided-approvals")).to_contain_text("approved")
    page.shot("approved-by-carol")

    page.goto(f"{live_server.url}/models/iris")
    expect(page.get_by_test_id("versions").locator('[data-stage="production"]')).to_be_visible()
    page.get_by_test_id("card-link").click()
    expect(page.get_by_test_id("model-card")).to_contain_text("Model card: iris v1")
    page.get_by_label("Intended use").fill("Triage of flower measurements")
    page.get_by_role("button", name="Save card").click()
    expect(page.locator('[data-card-field="intended_use"]')).to_contain_text("Triage of flower measurements")
    expect(page.get_by_test_id("model-card")).to_contain_text("approved by carol")
    page.shot("model-card")
    assert admin.call(svc.get_model, name="iris").production_version == 1
    assert not errors, errors
