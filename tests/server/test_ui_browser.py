"""The web UI in a real browser (Playwright driving the system Chromium): log in with the
printed URL, walk every area, manage users and tokens, and watch the audit chain break."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from plinth.governance import service as gov
from plinth.server.ui import NAV

pytestmark = pytest.mark.browser


@pytest.fixture
def ui(page, live_server) -> Iterator:  # type: ignore[no-untyped-def]
    """The browser page, logged in through the URL the server prints on its first start;
    fails the test on any JavaScript error, CSP violation or failed script/style/fetch."""
    problems: list[str] = []

    def on_console(msg) -> None:  # type: ignore[no-untyped-def]
        # failed loads are judged from the responses below: a page may answer 401 on purpose
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console: {msg.text}")

    def on_response(response) -> None:  # type: ignore[no-untyped-def]
        if response.status >= 400 and response.request.resource_type != "document":
            problems.append(f"{response.request.resource_type} {response.url}: {response.status}")

    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", on_console)
    page.on("response", on_response)
    page.set_default_timeout(5000)
    page.goto(f"{live_server.url}/login?token={live_server.admin_token}")
    assert page.url == f"{live_server.url}/"
    yield page
    assert not problems, problems


def test_login_url_then_every_area_from_the_navigation(ui, live_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    expect(ui.get_by_test_id("whoami")).to_contain_text("admin")
    expect(ui.locator("h1")).to_have_text("Welcome, admin")
    ui.shot("home")
    from plinth.server.app import create_app

    placeholders = create_app(live_server.platform).state.ui_placeholders
    nav = ui.locator("nav.sidenav")
    for entry in NAV:
        nav.get_by_role("link", name=re.compile(rf"^{re.escape(entry.label)}\b")).click()
        expect(ui).to_have_url(f"{live_server.url}{entry.path}")
        expect(nav.locator("a.active")).to_contain_text(entry.label)
        if entry.path.startswith("/governance"):
            expect(ui.locator("h1")).to_have_text(entry.label)
        elif entry.path in placeholders:
            expect(ui.get_by_test_id("not-built")).to_contain_text(
                f"The {entry.label} pages are not built yet"
            )
        ui.shot(entry.path.strip("/").replace("/", "-") or "home-again")
    ui.get_by_role("link", name="Log out").click()
    expect(ui).to_have_url(f"{live_server.url}/login")
    ui.goto(f"{live_server.url}/governance/users")
    expect(ui).to_have_url(f"{live_server.url}/login?next=/governance/users")
    ui.shot("logged-out")
    ui.get_by_label("API token").fill("plt_" + "x" * 40)
    ui.get_by_role("button", name="Log in").click()
    expect(ui.get_by_test_id("login-error")).to_have_text("the token is not known")
    ui.shot("login-refused")
    ui.get_by_label("API token").fill(live_server.admin_token)
    ui.get_by_role("button", name="Log in").click()
    expect(ui).to_have_url(f"{live_server.url}/governance/users")
    expect(ui.get_by_test_id("whoami")).to_contain_text("admin")


def test_create_a_user_and_a_token_shown_once_then_revoke_it(ui, live_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    ui.goto(f"{live_server.url}/governance/users")
    form = ui.get_by_test_id("create-user")
    form.get_by_label("Name").fill("carol")
    form.get_by_label("Email").fill("carol@example.com")
    form.get_by_role("button", name="Create user").click()
    expect(ui.get_by_test_id("users")).to_contain_text("carol@example.com")
    ui.shot("user-created")

    tokens = ui.get_by_test_id("create-token")
    tokens.get_by_label("Name").fill("carol-ci")
    tokens.get_by_label("For user").select_option("carol")
    tokens.get_by_role("button", name="Create token").click()
    secret_box = ui.get_by_test_id("new-token-secret")
    expect(secret_box).to_have_text(re.compile(r"^plt_\S{40,}$"))
    secret = secret_box.inner_text()
    expect(ui.get_by_test_id("new-token")).to_contain_text("shown only this once")
    expect(ui.get_by_role("button", name="Copy")).to_be_visible()
    assert ui.url == f"{live_server.url}/governance/users"  # htmx swapped the section in place
    ui.shot("token-created")
    with live_server.client(secret) as api:
        assert api.get("/api/v1/whoami").json()["name"] == "carol"

    ui.reload()
    expect(ui.get_by_test_id("tokens")).to_contain_text("carol-ci")
    assert ui.get_by_test_id("new-token-secret").count() == 0
    assert secret not in ui.content()
    ui.shot("token-gone-after-reload")

    row = ui.get_by_test_id("tokens").locator("tr", has_text="carol-ci")
    expect(row.get_by_test_id("token-status")).to_have_text("active")
    ui.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row.get_by_test_id("token-status")).to_have_text("revoked")
    ui.shot("token-revoked")
    with live_server.client(secret) as api:
        assert api.get("/api/v1/whoami").status_code == 401
    revoked = [t for t in live_server.platform.caller().call(gov.list_tokens, user="carol")]
    assert [t.status for t in revoked] == ["revoked"]


def test_audit_page_verifies_then_names_a_tampered_event(ui, live_server) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa
    from playwright.sync_api import expect

    live_server.platform.caller().call(gov.create_project, name="risk")
    ui.goto(f"{live_server.url}/governance/audit")
    expect(ui.get_by_test_id("audit-verified")).to_contain_text("Chain verified: 3 events")
    expect(ui.get_by_test_id("actions-chart").locator("canvas")).to_have_count(1)
    expect(ui.get_by_test_id("events").locator("tbody tr").first).to_have_attribute("data-seq", "3")
    ui.shot("audit-verified")

    with live_server.platform.db.session() as session:
        session.execute(sa.text("UPDATE events SET summary='{}' WHERE seq=2"))
    ui.reload()
    broken = ui.get_by_test_id("audit-broken")
    expect(broken).to_be_visible()
    expect(broken.locator('li[data-seq="2"]')).to_contain_text("event 2 was edited")
    expect(ui.get_by_test_id("audit-verified")).to_have_count(0)
    ui.shot("audit-tampered")


def test_plinth_js_draws_both_chart_kinds(ui) -> None:  # type: ignore[no-untyped-def]
    """The chart helper other areas will use: a bar chart and a line chart from data-chart."""
    drawn = ui.evaluate(
        """() => {
            const specs = [
                {kind: "bar", labels: ["a", "b"], values: [3, 5]},
                {kind: "line", x: [1, 2, 3], series: [{label: "loss", values: [0.9, 0.5, 0.3]}]},
            ];
            return specs.map((spec) => {
                const el = document.createElement("div");
                el.style.width = "400px";
                el.dataset.chart = JSON.stringify(spec);
                document.querySelector("main").appendChild(el);
                window.Plinth.initCharts(document);
                return [el.dataset.chartReady, el.querySelectorAll("canvas").length, el._plot.data];
            });
        }"""
    )
    assert drawn == [
        ["1", 1, [[0, 1], [3, 5]]],
        ["1", 1, [[1, 2, 3], [0.9, 0.5, 0.3]]],
    ]
