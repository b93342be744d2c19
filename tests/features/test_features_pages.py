"""The feature store's pages: over HTTP, and once in a real browser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from features_support import T, entity_frame, setup_repo

from plinth.features.online import materialize
from plinth.features.retrieval import create_training_set
from plinth.server.deps import TOKEN_COOKIE


def _populate(live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform = live_server.platform
    setup_repo(platform, tmp_path, "dataset")
    platform.caller().call(materialize, start=None, end=T(23))
    platform.caller().call(
        create_training_set, name="train", entity_df=entity_frame(), feature_service="driver_activity"
    )


@pytest.fixture
def pages(live_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    _populate(live_server, tmp_path)
    client = httpx.Client(base_url=live_server.url, headers={"Accept": "text/html"}, timeout=30)
    client.cookies.set(TOKEN_COOKIE, live_server.admin_token)
    yield client
    client.close()


def test_views_catalog_services_and_details(pages: httpx.Client) -> None:
    r = pages.get("/features")
    assert r.status_code == 200 and "<title>Features · Plinth</title>" in r.text
    assert 'data-view="driver_stats"' in r.text and "2026-03-01 15:00:00 UTC" in r.text  # freshness
    r = pages.get("/features/catalog", params={"q": "conversion"})
    assert 'data-feature="driver_stats:conv_rate"' in r.text and 'data-feature="driver_daily:rating"' not in r.text
    assert (
        "No feature matches nothing-like-this" in pages.get("/features/catalog", params={"q": "nothing-like-this"}).text
    )
    r = pages.get("/features/catalog/driver_stats:conv_rate")
    assert (
        r.status_code == 200 and "datasets:/train/1" in r.text and "datasets:/driver_stats_src/1" in r.text
    )  # usage, statistics
    r = pages.get("/features/views/driver_stats")
    assert "materialize" in r.text and "driver_activity" in r.text
    r = pages.get("/features/services/driver_activity")
    assert "driver_daily:rating" in r.text and "datasets:/train/1" in r.text
    assert "driver_activity" in pages.get("/features/services").text
    r = pages.get("/features/views/ghost")
    assert r.status_code == 404 and "no feature view or on-demand feature view named &#39;ghost&#39;" in r.text


@pytest.mark.browser
def test_browse_the_feature_store(page, live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    _populate(live_server, tmp_path)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(8000)
    page.goto(f"{live_server.url}/login?token={live_server.admin_token}")
    page.locator("nav.sidenav").get_by_role("link", name="Features").click()
    row = page.locator('tr[data-view="driver_stats"]')
    expect(row).to_contain_text("risk-team")
    page.shot("feature-views")
    page.get_by_role("link", name="Feature catalog").click()
    page.get_by_label("Search").fill("rating")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("features").locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name="driver_daily:rating").click()
    expect(page.get_by_test_id("usage")).to_contain_text("datasets:/train/1")
    page.shot("feature-detail")
    page.get_by_role("link", name="Feature catalog").click()
    page.get_by_role("link", name="Feature services").click()
    page.get_by_role("link", name="driver_activity").click()
    expect(page.get_by_test_id("service-features")).to_contain_text("driver_stats:conv_rate")
    page.shot("feature-service")
    assert errors == []
