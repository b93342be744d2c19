"""Projects, users, tokens and roles through the services (embedded), on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from plinth.core.context import Actor
from plinth.core.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from plinth.core.platform import Platform
from plinth.governance import service as svc
from plinth.governance.tables import Project, Token, User
from plinth.store.events import Event


def count(platform: Platform, model: type) -> int:
    with platform.db.session() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def as_user(platform: Platform, name: str) -> Actor:
    with platform.db.session() as session:
        user = session.execute(select(User).where(User.name == name)).scalar_one()
        return svc.actor_for(session, user)


def test_default_project_exists_and_projects_are_unique(any_platform: Platform) -> None:
    admin = any_platform.caller()
    assert [p.name for p in admin.call(svc.list_projects)] == ["default"]
    created = admin.call(svc.create_project, name="risk", description="credit")
    assert created.name == "risk" and created.created_by == "local"
    events_before = count(any_platform, Event)
    with pytest.raises(AlreadyExists, match="project 'risk' already exists"):
        admin.call(svc.create_project, name="risk")
    assert count(any_platform, Project) == 2
    assert count(any_platform, Event) == events_before


@pytest.mark.parametrize("bad", ["", "has space", "../x", "-lead", "x" * 101, "é"])
def test_bad_project_names_are_refused_naming_the_field(platform: Platform, bad: str) -> None:
    with pytest.raises(InvalidInput, match="project") as err:
        platform.caller().call(svc.create_project, name=bad)
    assert err.value.details["field"] == "project"
    assert count(platform, Project) == 1


def test_unknown_project_is_not_found(platform: Platform) -> None:
    with pytest.raises(NotFound, match="project 'nope' does not exist"):
        platform.caller(project="nope").call(svc.list_members)


def test_tokens_are_stored_hashed_and_shown_once(any_platform: Platform) -> None:
    admin = any_platform.caller()
    admin.call(svc.create_user, name="alice", email="alice@example.com")
    created = admin.call(svc.create_token, name="ci", user="alice")
    assert created.token.startswith("plt_") and len(created.token) > 40
    assert created.prefix == created.token[:12]
    with any_platform.db.session() as session:
        row = session.execute(select(Token)).scalar_one()
        assert created.token not in (row.hash, row.prefix)
        actor = svc.authenticate(session, created.token, created.created_at)
    assert actor.name == "alice" and not actor.is_admin
    listed = admin.call(svc.list_tokens, user="alice")
    assert [t.id for t in listed] == [created.id]
    assert not hasattr(listed[0], "token")


def test_expired_revoked_malformed_and_unknown_tokens_are_refused(platform: Platform) -> None:
    admin = platform.caller()
    admin.call(svc.create_user, name="alice")
    short = admin.call(svc.create_token, name="short", user="alice", expires_in_days=1)
    revoked = admin.call(svc.create_token, name="old", user="alice")
    admin.call(svc.revoke_token, token_id=revoked.id)
    later = short.created_at + timedelta(days=2)
    with platform.db.session() as session:
        with pytest.raises(Unauthenticated, match="expired"):
            svc.authenticate(session, short.token, later)
        with pytest.raises(Unauthenticated, match="revoked"):
            svc.authenticate(session, revoked.token, short.created_at)
        with pytest.raises(Unauthenticated, match="malformed"):
            svc.authenticate(session, "short", short.created_at)
        with pytest.raises(Unauthenticated, match="not known"):
            svc.authenticate(session, "plt_" + "x" * 43, short.created_at)
        with pytest.raises(Unauthenticated, match="required"):
            svc.authenticate(session, None, short.created_at)


def test_disabled_user_cannot_authenticate(platform: Platform) -> None:
    admin = platform.caller()
    admin.call(svc.create_user, name="alice")
    tok = admin.call(svc.create_token, name="t", user="alice")
    admin.call(svc.set_user_disabled, name="alice", disabled=True)
    with platform.db.session() as session, pytest.raises(Unauthenticated, match="disabled"):
        svc.authenticate(session, tok.token, tok.created_at)


def test_roles_gate_every_write(any_platform: Platform) -> None:
    admin = any_platform.caller(project="risk")
    any_platform.caller().call(svc.create_project, name="risk")
    for name in ("vic", "eddie"):
        admin.call(svc.create_user, name=name)
    admin.call(svc.grant_role, user="vic", role="viewer")
    admin.call(svc.grant_role, user="eddie", role="editor", approver=True)
    viewer = any_platform.caller(as_user(any_platform, "vic"), "risk")
    editor = any_platform.caller(as_user(any_platform, "eddie"), "risk")
    before = count(any_platform, Event)
    with pytest.raises(PermissionDenied, match="'vic' is a viewer in project 'risk'; administering needs admin"):
        viewer.call(svc.grant_role, user="vic", role="admin")
    with pytest.raises(PermissionDenied, match="not a platform admin"):
        editor.call(svc.create_user, name="mallory")
    with pytest.raises(PermissionDenied, match="has no role in project 'default'"):
        any_platform.caller(as_user(any_platform, "vic"), "default").call(svc.list_members)
    assert count(any_platform, Event) == before
    assert count(any_platform, User) == 2
    members = viewer.call(svc.list_members)
    assert {(m.user, m.role, m.approver) for m in members} == {("vic", "viewer", False), ("eddie", "editor", True)}
    assert editor.call(svc.whoami).approver_in == ["risk"]
    assert [p.name for p in viewer.call(svc.list_projects)] == ["risk"]


def test_a_user_creating_a_project_becomes_its_admin(platform: Platform) -> None:
    platform.caller().call(svc.create_user, name="pat")
    pat = platform.caller(as_user(platform, "pat"))
    pat.call(svc.create_project, name="pats")
    refreshed = platform.caller(as_user(platform, "pat"), "pats")
    assert refreshed.call(svc.list_members)[0].role == "admin"


def test_grant_role_rejects_unknown_role_and_user(platform: Platform) -> None:
    admin = platform.caller()
    admin.call(svc.create_user, name="u1")
    with pytest.raises(InvalidInput, match="role 'owner' is not one of viewer, editor, maintainer, admin"):
        admin.call(svc.grant_role, user="u1", role="owner")
    with pytest.raises(NotFound, match="user 'ghost' does not exist"):
        admin.call(svc.grant_role, user="ghost", role="viewer")
    assert admin.call(svc.list_members) == []


def test_bootstrap_admin_runs_once_and_adopts_a_chosen_token(platform: Platform) -> None:
    with platform.context() as ctx:
        first = svc.bootstrap_admin(ctx)
    assert first is not None and first.user == "admin"
    with platform.context() as ctx:
        assert svc.bootstrap_admin(ctx) is None
        chosen = "c" * 40
        adopted = svc.bootstrap_admin(ctx, token=chosen)
    assert adopted is not None and adopted.user == "admin"
    with platform.db.session() as session:
        assert svc.authenticate(session, chosen, adopted.created_at).is_admin
    with platform.context() as ctx, pytest.raises(InvalidInput, match="at least 32"):
        svc.bootstrap_admin(ctx, token="short-but-new-token")


def test_every_change_is_an_event_and_the_chain_verifies(platform: Platform) -> None:
    admin = platform.caller()
    admin.call(svc.create_project, name="p1")
    admin.call(svc.create_user, name="u1")
    tok = admin.call(svc.create_token, name="t", user="u1")
    admin.call(svc.revoke_token, token_id=tok.id)
    events = admin.call(svc.list_events, all_projects=True)
    assert [e.action for e in events] == ["project.create", "user.create", "token.create", "token.revoke"]
    assert all(tok.token not in str(e.summary) for e in events)
    assert events[2].summary["user"] == "u1"
    report = admin.call(svc.verify_audit)
    assert report.ok and report.checked == 4 and report.head_seq == 4
    with pytest.raises(InvalidInput, match="limit"):
        admin.call(svc.list_events, limit=0)


def test_platform_wide_changes_belong_to_no_project(platform: Platform) -> None:
    admin = platform.caller(project="default")
    admin.call(svc.create_user, name="u2")
    admin.call(svc.create_project, name="p2")
    events = admin.call(svc.list_events, all_projects=True)
    assert [(e.action, e.project) for e in events] == [("user.create", None), ("project.create", "p2")]
    assert admin.call(svc.list_events) == []
