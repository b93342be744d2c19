"""A deployment's compute resources (Kubernetes requests and limits): checked as a cluster
checks them, kept through every door, written into the exported manifests."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_serving_deployments import events, plinth_cli, three_versions  # noqa: F401 - the fixture

from plinth.core.errors import InvalidInput
from plinth.core.platform import Platform
from plinth.serving.resources import quantity, validate_resources

GOOD = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi", "nvidia.com/gpu": 1}}


def test_quantities_are_read_as_kubernetes_reads_them() -> None:
    cases = {"500m": "0.5", "1": "1", "1.5": "1.5", "2k": "2000", "1Ki": "1024", "1Gi": str(2**30), "1e3": "1000"}
    for text, value in cases.items():
        assert quantity(text, "x") == Decimal(value), text
    assert quantity(2, "x") == 2
    for bad in ("", "1.5.5", "500x", "-1", "cpu", "1 Gi", True, None, [1]):
        with pytest.raises(InvalidInput, match="x: "):
            quantity(bad, "x")


def test_resources_are_checked_as_a_cluster_checks_them() -> None:
    assert validate_resources(GOOD) == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi", "nvidia.com/gpu": "1"},
    }
    assert validate_resources(None) is None and validate_resources({}) is None
    refused = {
        "resources must be": ["cpu=1"],
        "no section 'limit'": {"limit": {"cpu": "1"}},
        "resources.requests must map": {"requests": "cpu=1"},
        "'CPU' is not a resource name": {"requests": {"CPU": "1"}},
        "resources.requests.cpu: '1.5.5' is not a Kubernetes quantity": {"requests": {"cpu": "1.5.5"}},
        r"resources.limits.cpu \(250m\) is below its request \(500m\)": {
            "requests": {"cpu": "500m"},
            "limits": {"cpu": "250m"},
        },
        "nvidia.com/gpu comes in whole units": {"limits": {"nvidia.com/gpu": "0.5"}},
        "a GPU's request and limit must be equal": {
            "requests": {"nvidia.com/gpu": "1"},
            "limits": {"nvidia.com/gpu": "2"},
        },
    }
    for message, value in refused.items():
        with pytest.raises(InvalidInput, match=message):
            validate_resources(value)


def test_resources_through_the_sdk_rest_page_and_manifests(three_versions: Platform, remote_sdk: Any) -> None:  # noqa: F811
    import httpx

    import plinth
    from plinth.serving import export_manifests

    made = plinth.serving.create_deployment("churn", "models:/iris/1", resources=GOOD)
    assert made.resources == validate_resources(GOOD)
    assert plinth.serving.get_deployment("churn").resources == made.resources
    before = plinth.serving.get_deployment("churn")
    with pytest.raises(InvalidInput, match=r"resources.limits.memory \(512Mi\) is below its request \(1Gi\)"):
        plinth.serving.update_deployment(
            "churn", resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}
        )
    assert plinth.serving.get_deployment("churn") == before  # the refused update wrote nothing
    changed = plinth.serving.update_deployment("churn", resources={"requests": {"cpu": "2"}})
    assert changed.resources == {"requests": {"cpu": "2"}}  # replaced as a whole
    for target in ("kserve", "kubernetes"):
        docs = list(yaml.safe_load_all(export_manifests(changed, target)))
        spec = docs[0]["spec"]
        container = (spec["predictor"] if target == "kserve" else spec["template"]["spec"])["containers"][0]
        assert container["resources"] == {"requests": {"cpu": "2"}}
    headers = {"Authorization": f"Bearer {remote_sdk.admin_token}"}
    with httpx.Client(base_url=remote_sdk.url, headers=headers, timeout=30) as c:
        r = c.post("/api/v1/deployments", json={"name": "gpu", "models": "models:/iris/1", "resources": GOOD})
        assert r.status_code == 201 and r.json()["resources"]["limits"]["nvidia.com/gpu"] == "1"
        r = c.patch("/api/v1/deployments/gpu", json={"resources": {"requests": {"cpu": "lots"}}})
        assert r.status_code == 400 and "resources.requests.cpu: 'lots'" in r.json()["error"]["message"]
        assert c.get("/api/v1/deployments/gpu").json()["resources"] == validate_resources(GOOD)
        page = c.get("/serving").text
        assert "<code>nvidia.com/gpu=1</code>" in page and "<code>cpu=2</code>" in page
        r = c.patch("/api/v1/deployments/gpu", json={"clear_resources": True})
        assert r.status_code == 200 and r.json()["resources"] is None


def test_resources_through_the_cli(three_versions: Platform, tmp_path: Path) -> None:  # noqa: F811
    home = tmp_path / "home"
    out = plinth_cli(
        home, "deploy", "create", "churn", "-m", "models:/iris/1",
        "--requests", "cpu=500m,memory=1Gi", "--limits", "memory=2Gi", "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    out = plinth_cli(home, "deploy", "update", "churn", "--requests", "memory=2Gi", "--limits", "cpu=1", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["resources"] == {
        "requests": {"cpu": "500m", "memory": "2Gi"},
        "limits": {"memory": "2Gi", "cpu": "1"},
    }  # set on top of the current ones
    seen = events(three_versions)
    out = plinth_cli(home, "deploy", "update", "churn", "--requests", "cpu")
    assert out.exit_code == 2 and "--requests takes NAME=QUANTITY (cpu=500m, memory=2Gi), not 'cpu'" in out.output
    out = plinth_cli(home, "deploy", "update", "churn", "--limits", "memory=1Gi")
    assert out.exit_code == 2 and "resources.limits.memory (1Gi) is below its request (2Gi)" in out.output
    assert events(three_versions) == seen  # refused: no event, nothing written
    out = plinth_cli(home, "deploy", "export", "churn", "--target", "kubernetes")
    deployment, _ = yaml.safe_load_all(out.output)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": "2Gi",
        "cpu": "1",
    }
    out = plinth_cli(home, "deploy", "update", "churn", "--no-resources", "--json")
    assert out.exit_code == 0 and json.loads(out.output)["resources"] is None
