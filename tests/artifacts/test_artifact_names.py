"""Artifact names are metadata, never paths: every payload shape of MLflow's artifact
path-traversal CVEs (CVE-2023-6909, CVE-2024-1483, CVE-2024-3848, CVE-2024-1558) is refused
by the validator, by the embedded SDK and by the REST API, and nothing is written."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

import plinth
from plinth.artifacts.tables import Artifact
from plinth.core.errors import InvalidInput
from plinth.core.names import MAX_ARTIFACT_NAME, validate_artifact_name
from plinth.core.platform import Platform
from plinth.store.events import Event

OWNER = "runs:/r1"
CONTENT = "/api/v1/artifacts/content"

# (name, a part of the reason the refusal gives)
BAD_NAMES: list[tuple[str, str]] = [
    # plain traversal
    ("..", "'..' path segments"),
    ("../x", "'..' path segments"),
    ("a/../b", "'..' path segments"),
    ("a/..", "'..' path segments"),
    ("../../etc/passwd", "'..' path segments"),
    ("../" * 12 + "etc/passwd", "'..' path segments"),
    ("models/../../../../root/.ssh/id_rsa", "'..' path segments"),
    # percent-encoded once, twice, three times, and mixed
    ("%2e%2e/etc/passwd", "'..' path segments"),
    ("%2E%2E%2Fetc%2Fpasswd", "'..' path segments"),
    ("%252e%252e/etc/passwd", "'..' path segments"),
    ("%252e%252e%252fetc%252fpasswd", "'..' path segments"),
    ("%25252e%25252e/x", "'..' path segments"),
    ("..%2fetc%2fpasswd", "'..' path segments"),
    ("..%2Fetc", "'..' path segments"),
    (".%2e/x", "'..' path segments"),
    ("%2e./x", "'..' path segments"),
    ("%c0%ae%c0%ae/etc/passwd", "percent-escapes that are not UTF-8"),  # overlong "."
    ("\ufffd\ufffd/etc/passwd", "not valid UTF-8"),  # the same, decoded leniently by a server
    # backslashes (Windows separators)
    ("..\\..\\etc\\passwd", "backslashes"),
    ("..%5cetc%5cpasswd", "backslashes"),
    ("a\\b", "backslashes"),
    ("\\\\server\\share\\x", "backslashes"),
    # absolute paths, home, drives, schemes
    ("/etc/passwd", "must be relative"),
    ("%2fetc%2fpasswd", "must be relative"),
    ("//server/share", "must be relative"),
    ("~/.ssh/id_rsa", "must be relative"),
    ("C:\\Windows\\win.ini", "backslashes"),
    ("C:/Windows/win.ini", "drive, URL or scheme"),
    ("c:", "drive, URL or scheme"),
    ("file:///etc/passwd", "drive, URL or scheme"),
    ("FILE:/etc/passwd", "drive, URL or scheme"),
    ("file%3a%2f%2f%2fetc%2fpasswd", "drive, URL or scheme"),
    ("http://evil.example/x", "drive, URL or scheme"),
    ("s3://other-bucket/x", "drive, URL or scheme"),
    # URI fragments and queries
    ("x#../../y", "'#' and '?'"),
    ("x?../../y", "'#' and '?'"),
    ("x%23..%2F..%2Fy", "'#' and '?'"),
    ("x%3F..%2F..%2Fy", "'#' and '?'"),
    ("model.bin?raw=1", "'#' and '?'"),
    # NUL and control bytes, invisible characters
    ("a\x00b", "control or invisible"),
    ("model.bin\x00.txt", "control or invisible"),
    ("a\nb", "control or invisible"),
    ("a\rb", "control or invisible"),
    ("a\tb", "control or invisible"),
    ("\x7f", "control or invisible"),
    ("\x1b[31mred", "control or invisible"),
    ("evil\u202egnp.exe", "control or invisible"),  # right-to-left override
    ("a\u200bb", "control or invisible"),  # zero-width space
    ("\ufeffbom", "control or invisible"),
    ("a%00b", "decodes to control characters"),
    ("a%0ab", "decodes to control characters"),
    ("a%250d%250ab", "decodes to control characters"),
    ("%e2%80%ae.bin", "decodes to control characters"),
    # unicode look-alikes that NFKC turns into dots and slashes
    ("\uff0e\uff0e/etc/passwd", "'..' path segments"),  # fullwidth full stops
    ("a/\uff0e\uff0e/b", "'..' path segments"),
    ("\u2025/etc/passwd", "'..' path segments"),  # two dot leader
    ("\u2024\u2024/etc/passwd", "'..' path segments"),  # one dot leader
    ("\ufe52\ufe52/etc/passwd", "'..' path segments"),  # small full stops
    ("..\uff0fetc\uff0fpasswd", "'..' path segments"),  # fullwidth solidus
    ("\uff0fetc\uff0fpasswd", "must be relative"),
    ("..\uff3cetc", "backslashes"),  # fullwidth reverse solidus
    ("%ef%bc%8e%ef%bc%8e/etc", "'..' path segments"),
    ("x\uff03y", "'#' and '?'"),
    # empty and dot-only segments, stray spaces, path parameters
    ("", "non-empty string"),
    (".", "'..' path segments"),
    ("./a", "'..' path segments"),
    ("a//b", "'..' path segments"),
    ("a/", "'..' path segments"),
    ("/", "must be relative"),
    ("...", "only dots"),
    ("a/. ./b", "only dots"),
    ("..;/x", "only dots"),
    (" a", "start or end with spaces"),
    ("a ", "start or end with spaces"),
    ("a/ /b", "start or end with spaces"),
    # over-long
    ("x" * (MAX_ARTIFACT_NAME + 1), f"longer than {MAX_ARTIFACT_NAME} bytes"),
    ("é" * (MAX_ARTIFACT_NAME // 2 + 1), f"longer than {MAX_ARTIFACT_NAME} bytes"),
    ("a/" * 600 + "b", f"longer than {MAX_ARTIFACT_NAME} bytes"),
]

GOOD_NAMES = [
    "model.bin",
    "model.v1/weights.bin",
    "checkpoints/epoch-3/model.safetensors",
    "my model/final weights.bin",
    "données/modèle.pkl",
    "数据/模型.bin",
    "Ｍｏｄｅｌ.bin",
    ".hidden/config",
    "x..y",
    "notes….txt",
    "100%.txt",
    "a;b.txt",
    "a" * MAX_ARTIFACT_NAME,
]


def ids(cases: list[tuple[str, str]]) -> list[str]:
    return [ascii(name)[:60] for name, _ in cases]


def artifact_rows(platform: Platform) -> int:
    with platform.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Artifact)).scalar_one())


def event_count(platform: Platform) -> int:
    with platform.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Event)).scalar_one())


def stored_files(platform: Platform) -> list[str]:
    root = Path(platform.settings.artifact_root)
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_the_cases_are_distinct() -> None:
    names = [name for name, _ in BAD_NAMES]
    assert len(names) == len(set(names)) and not set(names) & set(GOOD_NAMES)


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES, ids=ids(BAD_NAMES))
def test_validator_refuses(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_artifact_name(name)
    assert caught.value.details == {"field": "name"}
    assert caught.value.message.startswith("artifact name ")
    assert reason in caught.value.message
    assert "\x00" not in caught.value.message and "\n" not in caught.value.message


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["a"]])
def test_validator_refuses_non_strings(bad: object) -> None:
    with pytest.raises(InvalidInput, match="artifact name must be a non-empty string"):
        validate_artifact_name(bad)


@pytest.mark.parametrize("name", GOOD_NAMES, ids=[ascii(n)[:40] for n in GOOD_NAMES])
def test_validator_accepts_legit_names(name: str) -> None:
    assert validate_artifact_name(name) == unicodedata.normalize("NFC", name)


def test_names_are_stored_in_nfc(platform: Platform) -> None:
    decomposed = unicodedata.normalize("NFD", "modèle/poids.bin")
    assert decomposed != "modèle/poids.bin"
    info = plinth.upload_artifact(OWNER, decomposed, b"w")
    assert info.name == "modèle/poids.bin"
    assert plinth.read_artifact(OWNER, "modèle/poids.bin") == b"w"
    assert plinth.get_artifact(OWNER, decomposed).id == info.id


def test_embedded_sdk_refuses_and_writes_nothing(platform: Platform) -> None:
    events = event_count(platform)
    wrong = []
    for name, reason in BAD_NAMES:
        try:
            plinth.upload_artifact(OWNER, name, b"payload that must not land")
        except InvalidInput as exc:
            if exc.details != {"field": "name"} or reason not in exc.message:
                wrong.append(f"{name!r}: {exc.message}")
        else:
            wrong.append(f"{name!r} was accepted")
    assert wrong == []
    assert artifact_rows(platform) == 0
    assert event_count(platform) == events
    assert stored_files(platform) == []
    # Reads with those names are refused the same way, never looked up as paths.
    for name, _ in BAD_NAMES[:10]:
        with pytest.raises(InvalidInput):
            plinth.read_artifact(OWNER, name)


def test_embedded_sdk_accepts_legit_names(platform: Platform) -> None:
    for i, name in enumerate(GOOD_NAMES):
        plinth.upload_artifact(OWNER, name, f"content {i}".encode())
    listed = [a.name for a in plinth.list_artifacts(OWNER)]
    assert listed == sorted(unicodedata.normalize("NFC", n) for n in GOOD_NAMES)
    for i, name in enumerate(GOOD_NAMES):
        assert plinth.read_artifact(OWNER, name) == f"content {i}".encode()
    assert [a.name for a in plinth.list_artifacts(OWNER, prefix="model.v1/")] == [
        "model.v1/weights.bin"
    ]


# Names exactly as an attacker would put them in the URL (already percent-encoded).
RAW_QUERIES = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "%25252e%25252e%25252fetc",
    "..%5c..%5cwindows%5cwin.ini",
    "%2Fetc%2Fpasswd",
    "C%3A%5CWindows%5Cwin.ini",
    "file%3A%2F%2F%2Fetc%2Fpasswd",
    "x%23..%2F..%2Fy",
    "x%3F..%2F..%2Fy",
    "a%00b",
    "a%0d%0aSet-Cookie:%20x=1",
    "%EF%BC%8E%EF%BC%8E%2Fetc%2Fpasswd",
    "%E2%80%A5%2Fetc",
    "%C0%AE%C0%AE%2Fetc",
    "..%3B%2Fx",
    "",
]


def test_rest_api_refuses_and_writes_nothing(live_server, admin_client: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    platform = live_server.platform
    events = event_count(platform)
    wrong = []

    def check(response: httpx.Response, what: str) -> None:
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )
        error = (body or {}).get("error", {})
        if (
            response.status_code != 400
            or error.get("code") != "invalid_input"
            or error.get("details", {}).get("field") != "name"
            or not error.get("message", "").startswith("artifact name")
        ):
            wrong.append(f"{what}: HTTP {response.status_code} {response.text[:200]}")

    for name, _ in BAD_NAMES:
        params = {"owner": OWNER, "name": name}
        check(admin_client.put(CONTENT, params=params, content=b"must not land"), f"PUT {name!r}")
        check(admin_client.get(CONTENT, params=params), f"GET {name!r}")
        check(admin_client.get("/api/v1/artifacts/info", params=params), f"GET info {name!r}")
    for raw in RAW_QUERIES:
        url = f"{CONTENT}?owner=runs%3A%2Fr1&name={raw}"
        check(admin_client.put(url, content=b"must not land"), f"PUT raw {raw}")
        check(admin_client.get(url), f"GET raw {raw}")
    assert wrong == []
    # Pre-encoded names arrive decoded once, as a browser or proxy would send them.
    r = admin_client.put(f"{CONTENT}?owner=runs%3A%2Fr1&name=..%2F..%2Fetc%2Fpasswd", content=b"x")
    assert r.json()["error"]["message"].startswith("artifact name '../../etc/passwd' is refused")
    assert artifact_rows(platform) == 0
    assert event_count(platform) == events
    assert stored_files(platform) == []


def test_rest_api_round_trips_legit_names(live_server, admin_client: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    for i, name in enumerate(GOOD_NAMES):
        r = admin_client.put(
            CONTENT, params={"owner": OWNER, "name": name}, content=f"c{i}".encode()
        )
        assert r.status_code == 201, r.text
        assert r.json()["name"] == unicodedata.normalize("NFC", name)
    for i, name in enumerate(GOOD_NAMES):
        r = admin_client.get(CONTENT, params={"owner": OWNER, "name": name})
        assert r.status_code == 200 and r.content == f"c{i}".encode()
    assert artifact_rows(live_server.platform) == len(GOOD_NAMES)


def test_remote_sdk_refuses(remote_sdk) -> None:  # type: ignore[no-untyped-def]
    for name, reason in BAD_NAMES[::4]:
        with pytest.raises(InvalidInput) as caught:
            plinth.upload_artifact(OWNER, name, b"must not land")
        assert reason in caught.value.message and caught.value.details == {"field": "name"}
    assert artifact_rows(remote_sdk.platform) == 0 and stored_files(remote_sdk.platform) == []


def test_symlinks_and_non_files_are_refused(platform: Platform, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for upload")
    link = tmp_path / "innocent.bin"
    link.symlink_to(secret)
    with pytest.raises(InvalidInput) as caught:
        plinth.upload_artifact(OWNER, "innocent.bin", link)
    assert caught.value.message == f"{link} is a symbolic link; Plinth stores only regular files"
    assert caught.value.details == {"field": "source"}
    with pytest.raises(InvalidInput, match="is a symbolic link"):
        plinth.upload_artifact(OWNER, "innocent.bin", str(link))
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match="is a symbolic link"):
        plinth.upload_artifact(OWNER, "x", dangling)
    with pytest.raises(InvalidInput, match="is not a file"):
        plinth.upload_artifact(OWNER, "x", tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="is not a file"):
        plinth.upload_artifact(OWNER, "x", fifo)  # refused, and without blocking on the pipe
    with pytest.raises(InvalidInput, match="is not a file"):
        plinth.upload_artifact(OWNER, "x", tmp_path / "missing.bin")
    assert artifact_rows(platform) == 0 and stored_files(platform) == []
    # The file itself, named directly, is fine.
    assert plinth.upload_artifact(OWNER, "secret.txt", secret).size == len("not for upload")


def test_remote_sdk_refuses_symlinks(remote_sdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "target"
    target.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(InvalidInput, match="is a symbolic link"):
        plinth.upload_artifact(OWNER, "link", link)
    assert artifact_rows(remote_sdk.platform) == 0
