"""Registry rules on both metadata backends: numbering, lineage, aliases, stages, approvals,
history from the event log, comparison and cards; every bad input leaves nothing changed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from models_support import iris, iris_pipeline, log_with_services
from plinth.core.context import Actor, Grant
from plinth.core.errors import Conflict, DataCorrupted, InvalidInput, NotFound, PermissionDenied
from plinth.core.platform import Platform
from plinth.governance import service as gov
from plinth.registry import insights, stages
from plinth.registry import service as svc
from plinth.store.events import read_events


def people(platform: Platform) -> dict[str, Actor]:
    """alice (editor), carol and dave (editors and approvers), victor (viewer)."""
    admin = platform.caller()
    out = {}
    for name, role, approver in (
        ("alice", "editor", False),
        ("carol", "editor", True),
        ("dave", "editor", True),
        ("victor", "viewer", False),
    ):
        admin.call(gov.create_user, name=name)
        admin.call(gov.grant_role, user=name, role=role, approver=approver)
        out[name] = Actor(name=name, user_id=name, grants={"default": Grant(role, approver)})
    return out


@pytest.fixture
def source(any_platform: Platform) -> str:
    X, _ = iris()
    return log_with_services(
        any_platform,
        iris_pipeline(),
        input_example=X.head(3),
        params={"C": 1.0, "solver": "lbfgs"},
        metrics={"accuracy": 0.97},
        tags={"training_data": "datasets:/iris@v1", "plinth.git.commit": "abc123"},
    )


def model_events(platform: Platform, name: str) -> list[str]:
    with platform.context() as ctx:
        return [e.action for e in read_events(ctx.session, resource=f"models:/{name}", limit=1000)]


def test_register_numbers_versions_and_records_lineage(any_platform: Platform, source: str) -> None:
    call = any_platform.caller().call
    v1 = call(svc.register_version, name="iris", source=source, description="first")
    v2 = call(svc.register_version, name="iris", source=source)
    assert (v1.version, v2.version, v1.stage) == (1, 2, "development")
    assert v1.flavor == "sklearn" and v1.run_id == source.split("/")[1]
    lineage = v1.lineage
    assert lineage["params"] == {"C": "1.0", "solver": "lbfgs"}
    assert lineage["metrics"] == {"accuracy": 0.97}
    assert lineage["datasets"] == ["datasets:/iris@v1"]
    assert lineage["code"] == {"commit": "abc123"}
    assert lineage["run"]["experiment"] == "tests"
    assert v1.signature["inputs"]["columns"][0] == {"name": "sepal_length", "type": "float64"}
    from plinth.artifacts import service as artifacts

    files = {a.name for a in call(artifacts.list_artifacts, owner="models:/iris/1")}
    assert files == {"plinth-model.yaml", "model.skops", "input_example.json", "requirements.txt"}
    from plinth.data.lineage_graph import lineage as graph

    edges = call(graph, ref="models:/iris/1", direction="upstream").edges
    assert [(e.src, e.kind) for e in edges] == [(f"runs:/{v1.run_id}", "produced")]
    assert model_events(any_platform, "iris") == ["model.create", "model_version.create", "model_version.create"]


def test_concurrent_registrations_get_distinct_numbers(any_platform: Platform, source: str) -> None:
    any_platform.caller().call(svc.register_version, name="iris", source=source)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            numbers.append(any_platform.caller().call(svc.register_version, name="iris", source=source).version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(numbers) == [2, 3, 4, 5, 6, 7]


def test_bad_sources_register_nothing(any_platform: Platform, source: str) -> None:
    call = any_platform.caller().call
    run_id = source.split("/")[1]
    with pytest.raises(NotFound, match="holds no model: plinth-model.yaml is missing"):
        call(svc.register_version, name="iris", source=f"runs:/{run_id}/nothing")
    with pytest.raises(InvalidInput, match="names a run, not a model in it"):
        call(svc.register_version, name="iris", source=f"runs:/{run_id}")
    with pytest.raises(NotFound, match="run 'nope' does not exist"):
        call(svc.register_version, name="iris", source="runs:/nope/model")
    with pytest.raises(InvalidInput, match="model name 'bad name'"):
        call(svc.register_version, name="bad name", source=source)
    # a file swapped after logging: the manifest no longer vouches for it
    from plinth.artifacts import service as artifacts

    owner = f"runs:/{run_id}"
    call(artifacts.delete_artifact, owner=owner, name="model/model.skops")
    call(artifacts.put_artifact, owner=owner, name="model/model.skops", content=b"not a model")
    with pytest.raises(DataCorrupted, match="model.skops does not match plinth-model.yaml .* tampered with"):
        call(svc.register_version, name="iris", source=source)
    assert call(svc.list_models) == []
    assert model_events(any_platform, "iris") == []


def test_unknown_model_and_version(any_platform: Platform, source: str) -> None:
    call = any_platform.caller().call
    with pytest.raises(NotFound, match="registered model 'ghost' does not exist in project 'default'"):
        call(svc.get_model, name="ghost")
    call(svc.register_version, name="iris", source=source)
    with pytest.raises(NotFound, match=r"model 'iris' has no version 9 \(the latest is 1\)"):
        call(svc.get_version, name="iris", version=9)
    with pytest.raises(NotFound, match="model 'iris' has no alias 'champion'"):
        call(svc.resolve, ref="models:/iris@champion")
    with pytest.raises(InvalidInput, match="version 0 must be a positive number"):
        call(svc.get_version, name="iris", version=0)
    assert call(svc.resolve, ref="models:/iris@latest").version == 1


def test_aliases_move_atomically_and_bad_aliases_change_nothing(any_platform: Platform, source: str) -> None:
    call = any_platform.caller().call
    for _ in range(2):
        call(svc.register_version, name="iris", source=source)
    call(svc.set_alias, name="iris", alias="champion", version=1)
    call(svc.set_alias, name="iris", alias="champion", version=2)
    assert call(svc.resolve, ref="models:/iris@champion").version == 2
    assert call(svc.get_model, name="iris").aliases == {"champion": 2}
    for bad, message in (("3", "is a number"), ("latest", "is reserved"), ("no space", "alias 'no space'")):
        with pytest.raises(InvalidInput, match=message):
            call(svc.set_alias, name="iris", alias=bad, version=1)
    with pytest.raises(NotFound):
        call(svc.set_alias, name="iris", alias="champion", version=7)
    assert call(svc.get_model, name="iris").aliases == {"champion": 2}
    call(svc.delete_alias, name="iris", alias="champion")
    assert call(svc.get_model, name="iris").aliases == {}


def test_production_only_through_an_approval_by_someone_else(any_platform: Platform, source: str) -> None:
    who = people(any_platform)
    alice, carol, dave = (any_platform.caller(who[n]).call for n in ("alice", "carol", "dave"))
    victor = any_platform.caller(who["victor"]).call
    for _ in range(2):
        alice(svc.register_version, name="iris", source=source)
    with pytest.raises(PermissionDenied, match="is a viewer"):
        victor(svc.register_version, name="iris", source=source)
    with pytest.raises(PermissionDenied, match="to production needs an approval"):
        alice(stages.transition_stage, name="iris", version=1, stage="production")
    assert alice(stages.transition_stage, name="iris", version=1, stage="staging").stage == "staging"
    with pytest.raises(InvalidInput, match="stage 'prod' is not one of"):
        alice(stages.transition_stage, name="iris", version=1, stage="prod")
    with pytest.raises(InvalidInput, match="needs a reason"):
        alice(stages.request_approval, name="iris", version=1, reason="  ")
    assert alice(stages.list_approvals) == []

    first = carol(stages.request_approval, name="iris", version=1, reason="beats the baseline")
    with pytest.raises(Conflict, match="has a pending approval request already"):
        alice(stages.request_approval, name="iris", version=1, reason="again")
    with pytest.raises(PermissionDenied, match="'carol' requested this approval and may not decide it"):
        carol(stages.approve, request_id=first.id)
    with pytest.raises(PermissionDenied, match="lacks the approver capability"):
        alice(stages.approve, request_id=first.id)
    assert dave(svc.get_version, name="iris", version=1).stage == "staging"
    assert [a.status for a in dave(stages.list_approvals)] == ["pending"]

    decided = dave(stages.approve, request_id=first.id, comment="ok")
    assert (decided.status, decided.decided_by, decided.version_stage) == ("approved", "dave", "production")
    with pytest.raises(Conflict, match="is approved already"):
        carol(stages.reject, request_id=first.id)

    second = alice(stages.request_approval, name="iris", version=2, reason="retrained")
    carol(stages.approve, request_id=second.id)
    by_version = {v.version: v.stage for v in alice(svc.list_versions, name="iris")}
    assert by_version == {1: "archived", 2: "production"}
    assert alice(svc.get_model, name="iris").production_version == 2
    third = alice(stages.request_approval, name="iris", version=1, reason="roll back")
    assert carol(stages.reject, request_id=third.id, comment="no").status == "rejected"
    assert alice(svc.get_version, name="iris", version=1).stage == "archived"
    assert [a.status for a in alice(stages.list_approvals, status="all")] == ["rejected", "approved", "approved"]
    actions = model_events(any_platform, "iris")
    assert actions.count("model_version.stage") == 4  # staging, production, archived, production
    assert actions.count("approval.approve") == 2 and actions.count("approval.reject") == 1


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += timedelta(hours=hours)


def test_history_answers_from_the_event_log(any_platform: Platform, source: str) -> None:
    clock = Clock()
    any_platform.clock = clock
    who = people(any_platform)
    alice, carol = any_platform.caller(who["alice"]).call, any_platform.caller(who["carol"]).call
    for _ in range(2):
        alice(svc.register_version, name="iris", source=source)
    clock.advance(1)  # 10:00 champion -> v1, v1 in production
    alice(svc.set_alias, name="iris", alias="champion", version=1)
    carol(stages.approve, request_id=alice(stages.request_approval, name="iris", version=1, reason="r").id)
    clock.advance(2)  # 12:00 ... 12:30 champion -> v2, v2 in production
    clock.advance(0.5)
    alice(svc.set_alias, name="iris", alias="champion", version=2)
    carol(stages.approve, request_id=alice(stages.request_approval, name="iris", version=2, reason="r").id)

    at_noon = alice(insights.history, name="iris", at="2026-11-01T12:00Z")
    assert at_noon.aliases == {"champion": 1} and at_noon.production == [1]
    assert at_noon.stages == {"1": "production", "2": "development"}
    now = alice(insights.history, name="iris")
    assert now.aliases == {"champion": 2} and now.production == [2] and now.stages["1"] == "archived"
    before = alice(insights.history, name="iris", at="2026-11-01 09:30:00+00:00")
    assert before.aliases == {} and before.production == []
    assert alice(insights.history, name="iris", at="2026-11-01T11:00:00+02:00").production == []  # 09:00 UTC
    with pytest.raises(InvalidInput, match="at 'yesterday' is not a time such as 2026-11-01T12:00Z"):
        alice(insights.history, name="iris", at="yesterday")


def test_compare_versions_and_model_cards(any_platform: Platform) -> None:
    X, _ = iris()
    call = any_platform.caller().call
    s1 = log_with_services(
        any_platform, iris_pipeline(1.0), input_example=X.head(3), params={"C": 1.0}, metrics={"accuracy": 0.9}
    )
    s2 = log_with_services(
        any_platform,
        iris_pipeline(0.1),
        input_example=X.drop(columns=["petal_width"]).head(3).assign(extra=1),
        params={"C": 0.1},
        metrics={"accuracy": 0.95},
    )
    call(svc.register_version, name="iris", source=s1)
    call(svc.register_version, name="iris", source=s2)
    cmp = call(insights.compare_versions, name="iris", versions=[1, 2])
    assert cmp.metrics == {"accuracy": {"1": 0.9, "2": 0.95}}
    assert cmp.differing_params == ["C"]
    assert "v2: adds column 'extra' (int64)" in cmp.signature_changes
    assert "v2: drops column 'petal_width' (float64)" in cmp.signature_changes
    with pytest.raises(NotFound):
        call(insights.compare_versions, name="iris", versions=[1, 5])

    call(svc.set_alias, name="iris", alias="champion", version=2)
    card = call(insights.update_card, name="iris", fields={"intended_use": "Flower triage <script>x</script>"})
    assert card.fields == {"intended_use": "Flower triage <script>x</script>"}
    with pytest.raises(InvalidInput, match="card field 'colour' is not one of"):
        call(insights.update_card, name="iris", fields={"colour": "blue", "limitations": "x"})
    card = call(insights.get_card, name="iris", ref="champion")
    assert card.version == 2 and card.ref == "models:/iris@champion" and "limitations" not in card.fields
    assert card.generated["metrics"] == {"accuracy": 0.95}

    from plinth.registry.cards import card_html, card_markdown

    md = card_markdown(card)
    assert "# Model card: iris v2" in md and "Flower triage" in md and "- **accuracy:** 0.95" in md
    html = card_html(card)
    assert "&lt;script&gt;" in html and "<script>" not in html
