"""The ``plinth`` command as a user runs it: real processes, exit codes, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests_support import free_port_for_subprocess


def plinth(
    home: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    full_env["PLINTH_HOME"] = str(home)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "plinth.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=60,
    )


def test_help_lists_every_command_group(tmp_path: Path) -> None:
    out = plinth(tmp_path, "--help")
    assert out.returncode == 0
    for group in ("server", "db", "login", "projects", "users", "tokens", "audit", "artifacts", "demo"):
        assert group in out.stdout


def test_projects_json_and_duplicate_error_exit_code(tmp_path: Path) -> None:
    created = plinth(tmp_path, "projects", "create", "risk", "-d", "credit", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["name"] == "risk"
    dup = plinth(tmp_path, "projects", "create", "risk")
    assert dup.returncode == 5
    assert dup.stderr.strip() == "error: project 'risk' already exists"
    listed = json.loads(plinth(tmp_path, "projects", "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["default", "risk"]


def test_unknown_project_and_bad_setting_are_one_line_errors(tmp_path: Path) -> None:
    out = plinth(tmp_path, "projects", "members", "-p", "ghost")
    assert out.returncode == 4 and out.stderr.strip() == "error: project 'ghost' does not exist"
    out = plinth(tmp_path, "projects", "list", env={"PLINTH_ARTIFACTS_URL": "ftp://x/y"})
    assert out.returncode == 2
    assert out.stderr.startswith("error: PLINTH_ARTIFACTS_URL: expected a folder")
    assert "Traceback" not in out.stderr


def test_unreachable_database_is_named_in_one_line(tmp_path: Path) -> None:
    url = "postgresql://someone:secret@127.0.0.1:1/nowhere"
    out = plinth(tmp_path, "projects", "list", env={"PLINTH_DB_URL": url})
    assert out.returncode == 7
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: cannot reach the metadata database at postgresql+psycopg://someone:***@127.0.0.1:1/nowhere"
    )
    assert "secret" not in out.stderr


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    up = plinth(tmp_path, "db", "upgrade")
    assert up.returncode == 0 and "is at revision" in up.stdout
    cur = json.loads(plinth(tmp_path, "db", "current", "--json").stdout)
    assert cur["current"] == cur["head"] is not None


def test_tokens_users_and_audit_verify_catch_a_hand_edited_row(tmp_path: Path) -> None:
    assert plinth(tmp_path, "users", "create", "alice", "--email", "a@example.com").returncode == 0
    tok = plinth(tmp_path, "tokens", "create", "ci", "--user", "alice", "--json")
    secret = json.loads(tok.stdout)["token"]
    assert secret.startswith("plt_")
    listed = plinth(tmp_path, "tokens", "list", "--json").stdout
    assert secret not in listed
    ok = plinth(tmp_path, "audit", "verify")
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 2 events verified")
    import sqlite3

    con = sqlite3.connect(tmp_path / "plinth.db")
    con.execute("UPDATE events SET actor = 'someone-else' WHERE seq = 1")
    con.commit()
    con.close()
    bad = plinth(tmp_path, "audit", "verify")
    assert bad.returncode == 1
    assert "event 1 [edited]: event 1 was edited" in bad.stderr
    events = json.loads(plinth(tmp_path, "audit", "list", "--all", "--json").stdout)
    assert [e["action"] for e in events] == ["user.create", "token.create"]


def test_artifacts_round_trip_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(300_000))
    up = plinth(tmp_path, "artifacts", "upload", "runs:/r1", "model/weights.bin", str(src), "--json")
    assert up.returncode == 0, up.stderr
    out = tmp_path / "copy.bin"
    down = plinth(tmp_path, "artifacts", "download", "runs:/r1", "model/weights.bin", "-o", str(out))
    assert down.returncode == 0 and out.read_bytes() == src.read_bytes()
    bad = plinth(tmp_path, "artifacts", "upload", "runs:/r1", "../escape", str(src))
    assert bad.returncode == 2 and "refused" in bad.stderr
    listed = json.loads(plinth(tmp_path, "artifacts", "list", "runs:/r1", "--json").stdout)
    assert [a["name"] for a in listed] == ["model/weights.bin"]


def test_server_prints_login_url_then_login_and_remote_cli_work(tmp_path: Path) -> None:
    port = free_port_for_subprocess()
    home = tmp_path / "server-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env["PLINTH_HOME"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "plinth.cli.main", "server", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        login_url = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and login_url is None:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if "/login?token=" in line:
                login_url = line.strip()
        assert login_url and login_url.startswith(f"http://127.0.0.1:{port}/login?token=plt_")
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        client_home = tmp_path / "client-home"
        out = plinth(client_home, "login", login_url)
        assert out.returncode == 0, out.stderr
        assert "logged in" in out.stdout and "as admin" in out.stdout
        made = plinth(client_home, "projects", "create", "remote-proj", "--json")
        assert made.returncode == 0 and json.loads(made.stdout)["created_by"] == "admin"
        who = json.loads(plinth(client_home, "whoami", "--json").stdout)
        assert who["name"] == "admin"
        assert plinth(client_home, "logout").stdout.strip() == "logged out"
        local = json.loads(plinth(client_home, "whoami", "--json").stdout)
        assert local["name"] == "local"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_refuses_public_address_without_auth(tmp_path: Path) -> None:
    out = plinth(tmp_path, "server", "--host", "0.0.0.0", "--no-auth")
    assert out.returncode == 2
    assert "refusing to listen on 0.0.0.0 with authentication off" in out.stderr


def test_demo_runs_to_the_end_without_serving(tmp_path: Path) -> None:
    out = plinth(tmp_path, "demo", "--no-serve")
    assert out.returncode == 0, out.stderr
    assert "Demo steps done." in out.stdout
    assert "verified: True" in out.stdout
