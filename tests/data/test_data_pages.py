"""The data pages: datasets, versions, profile histograms, quality results, lineage."""

from __future__ import annotations

import json
import re

import pytest
from datasets_support import customers

from plinth.data import expect
from plinth.data import service as svc
from plinth.data.ingestion import ingest
from plinth.data.lineage_graph import record_lineage


def _seed(platform) -> None:  # type: ignore[no-untyped-def]
    caller = platform.caller()
    caller.call(ingest, name="churn", source=customers(50), tags=["first"], description="customers")
    caller.call(ingest, name="churn", source=customers(30, start=50), profile=False)
    caller.call(svc.validate, ref="datasets:/churn/2", suite=[expect.between("tenure", 0, 3)])
    caller.call(record_lineage, src="datasets:/churn/1", dst="datasets:/churn-features/1")


def test_dataset_list_and_detail(admin_client, live_server) -> None:  # type: ignore[no-untyped-def]
    _seed(live_server.platform)
    listing = admin_client.get("/data")
    assert listing.status_code == 200 and 'href="/data/churn"' in listing.text
    page = admin_client.get("/data/churn")
    assert page.status_code == 200
    assert "version 2" in page.text and "80 rows" in page.text
    assert "first" in page.text  # the tag on version 1
    assert "FAILED" in page.text and "between(tenure)" in page.text  # the failing suite
    assert 'data-testid="no-profile"' in page.text  # version 2 has no stored profile


def test_profile_histograms_and_lineage_of_a_version(admin_client, live_server) -> None:  # type: ignore[no-untyped-def]
    _seed(live_server.platform)
    page = admin_client.get("/data/churn", params={"version": 1})
    assert page.status_code == 200 and "version 1" in page.text
    charts = re.findall(r"data-testid=\"hist-(\w+)\" data-chart='([^']+)'", page.text)
    assert charts, "a numeric column gets a histogram"
    spec = json.loads(charts[0][1].replace("&#34;", '"'))
    assert spec["kind"] == "bar" and sum(spec["values"]) == 50
    assert "datasets:/churn-features/1" in page.text


def test_compute_profile_button_needs_same_origin(admin_client, live_server) -> None:  # type: ignore[no-untyped-def]
    _seed(live_server.platform)
    url = "/data/churn/versions/2/profile"
    foreign = admin_client.post(url, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    with live_server.platform.db.session() as session:
        from sqlalchemy import select

        from plinth.data.tables import DatasetVersion

        assert session.execute(select(DatasetVersion.profile).where(DatasetVersion.version == 2)).scalar() is None
    ok = admin_client.post(url, headers={"Origin": live_server.url}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/data/churn?version=2"
    assert 'data-testid="no-profile"' not in admin_client.get("/data/churn?version=2").text


def test_unknown_dataset_and_version_are_404_pages(admin_client, live_server) -> None:  # type: ignore[no-untyped-def]
    _seed(live_server.platform)
    assert admin_client.get("/data/nope").status_code == 404
    missing = admin_client.get("/data/churn", params={"version": 9})
    assert missing.status_code == 404
    assert admin_client.get("/data/churn", params={"version": 0}).status_code == 400


@pytest.mark.browser
def test_browse_a_dataset_in_the_browser(page, live_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect as see

    _seed(live_server.platform)
    page.goto(f"{live_server.url}/login?token={live_server.admin_token}")
    page.locator("nav.sidenav").get_by_role("link", name="Data").click()
    page.get_by_role("link", name="churn").click()
    see(page.get_by_test_id("current-version")).to_have_text("version 2")
    page.get_by_test_id("versions").get_by_role("link", name="1", exact=True).click()
    see(page.locator("[data-testid^='hist-'] canvas").first).to_be_visible()
    page.shot("profile")
