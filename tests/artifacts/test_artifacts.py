"""Artifacts end to end: the embedded SDK, the remote SDK and raw REST over a live server,
permissions, broken uploads, corrupted blobs, and an S3-backed platform."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

import plinth
from plinth.artifacts import service as svc
from plinth.artifacts.tables import Artifact
from plinth.core.errors import (
    Conflict,
    DataCorrupted,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PlinthError,
)
from plinth.core.hashing import CHUNK_SIZE
from plinth.core.platform import Platform
from plinth.core.settings import load_settings
from plinth.governance import service as gov
from plinth.store.events import Event

OWNER = "runs:/r1"
CONTENT = "/api/v1/artifacts/content"
INFO = "/api/v1/artifacts/info"
LIST = "/api/v1/artifacts"


# --- helpers ----------------------------------------------------------------------------
def artifact_rows(platform: Platform) -> int:
    with platform.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Artifact)).scalar_one())


def events(platform: Platform, prefix: str = "artifact.") -> list[str]:
    with platform.db.session() as session:
        rows = session.execute(
            select(Event.action).where(Event.action.startswith(prefix)).order_by(Event.seq)
        )
        return list(rows.scalars())


def blob_files(platform: Platform) -> list[Path]:
    root = Path(platform.settings.artifact_root) / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def spool_files(platform: Platform) -> list[Path]:
    spool = Path(platform.settings.artifact_root) / "tmp"
    return sorted(spool.iterdir()) if spool.exists() else []


def blob_path(platform: Platform, sha256: str) -> Path:
    return Path(platform.stores.blobs.key(sha256))


def corrupt(platform: Platform, sha256: str, offset: int) -> None:
    path = blob_path(platform, sha256)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def exercise_sdk(tmp_path: Path) -> None:
    """The same story through whichever backend the SDK has (embedded or remote)."""
    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x00\x01" * 700_000)  # 1.4 MiB: more than one chunk
    info = plinth.upload_artifact(OWNER, "model/weights.bin", source)
    assert (info.owner, info.name, info.size) == (OWNER, "model/weights.bin", 1_400_000)
    assert info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert info.media_type == "application/octet-stream"
    meta = plinth.upload_artifact(OWNER, "model/meta.json", b'{"lr": 0.1}')
    assert meta.media_type == "application/json"
    chunks = plinth.upload_artifact(
        OWNER, "notes.txt", iter([b"line 1\n", b"line 2\n"]), media_type="text/markdown"
    )
    assert chunks.media_type == "text/markdown"
    plinth.upload_artifact("runs:/r2", "other.txt", b"another owner")

    assert [a.name for a in plinth.list_artifacts(OWNER)] == [
        "model/meta.json",
        "model/weights.bin",
        "notes.txt",
    ]
    assert [a.name for a in plinth.list_artifacts(OWNER, prefix="model/")] == [
        "model/meta.json",
        "model/weights.bin",
    ]
    got = plinth.get_artifact(OWNER, "model/weights.bin")
    assert got == info
    assert plinth.read_artifact(OWNER, "model/weights.bin") == source.read_bytes()
    streamed = list(plinth.download_artifact(OWNER, "model/weights.bin"))
    assert len(streamed) >= 2 and b"".join(streamed) == source.read_bytes()
    assert plinth.read_artifact(OWNER, "notes.txt") == b"line 1\nline 2\n"

    # Same name, same content: a no-op that returns the stored artifact.
    assert plinth.upload_artifact(OWNER, "model/meta.json", b'{"lr": 0.1}') == meta
    # Same name, other content: a conflict; the stored bytes are untouched.
    with pytest.raises(Conflict) as caught:
        plinth.upload_artifact(OWNER, "model/meta.json", b'{"lr": 0.2}')
    assert (
        caught.value.message == f"artifact 'model/meta.json' of {OWNER} exists with other content"
    )
    assert plinth.read_artifact(OWNER, "model/meta.json") == b'{"lr": 0.1}'

    plinth.delete_artifact(OWNER, "notes.txt")
    assert [a.name for a in plinth.list_artifacts(OWNER)] == [
        "model/meta.json",
        "model/weights.bin",
    ]
    for call in (plinth.get_artifact, plinth.read_artifact, plinth.delete_artifact):
        with pytest.raises(NotFound) as missing:
            call(OWNER, "notes.txt")
        assert missing.value.message == f"artifact 'notes.txt' of {OWNER} does not exist"
    with pytest.raises(NotFound, match="artifact 'model/meta.json' of runs:/nobody does not exist"):
        plinth.get_artifact("runs:/nobody", "model/meta.json")
    assert plinth.list_artifacts("runs:/nobody") == []
    # After a delete the name is free again, for other content too.
    assert plinth.upload_artifact(OWNER, "notes.txt", b"rewritten").size == 9


# --- the SDK, embedded and remote ---------------------------------------------------------
def test_embedded_sdk(platform: Platform, tmp_path: Path) -> None:
    exercise_sdk(tmp_path)
    assert artifact_rows(platform) == 4
    assert events(platform) == ["artifact.put"] * 4 + ["artifact.delete", "artifact.put"]
    with platform.db.session() as session:
        assert (
            session.execute(select(Event.actor).where(Event.action == "artifact.put"))
            .scalars()
            .first()
            == "local"
        )


def test_remote_sdk(remote_sdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exercise_sdk(tmp_path)
    platform = remote_sdk.platform
    assert artifact_rows(platform) == 4
    assert events(platform) == ["artifact.put"] * 4 + ["artifact.delete", "artifact.put"]
    with platform.db.session() as session:
        assert (
            session.execute(select(Event.actor).where(Event.action == "artifact.put"))
            .scalars()
            .first()
            == "admin"
        )


def test_bad_owner_and_project(platform: Platform) -> None:
    with pytest.raises(InvalidInput) as caught:
        plinth.upload_artifact("not a reference", "x.bin", b"x")
    assert caught.value.details == {"field": "reference"}
    with pytest.raises(InvalidInput, match="must name the resource only") as caught:
        plinth.upload_artifact("runs:/r1/sub/path", "x.bin", b"x")
    assert caught.value.details == {"field": "owner"}
    with pytest.raises(NotFound, match="project 'ghost' does not exist"):
        plinth.upload_artifact(OWNER, "x.bin", b"x", project="ghost")
    with pytest.raises(InvalidInput, match="is not a media type") as caught:
        plinth.upload_artifact(OWNER, "x.bin", b"x", media_type="text/html\r\nSet-Cookie: a=b")
    assert caught.value.details == {"field": "media_type"}
    with pytest.raises(InvalidInput, match="content must be bytes"):
        plinth.upload_artifact(OWNER, "x.bin", iter(["text"]))  # type: ignore[list-item]
    assert artifact_rows(platform) == 0 and blob_files(platform) == [] and events(platform) == []


def test_same_name_uploaded_at_once(any_platform: Platform) -> None:
    """Many writers of one name with the same bytes: one row, one event, no error."""
    data = b"the same model from every worker" * 20_000
    results: list[object] = []
    barrier = threading.Barrier(6)

    def upload() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(
                any_platform.caller().call(
                    svc.put_artifact, owner=OWNER, name="m.bin", content=data
                )
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            results.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert len({r.id for r in results}) == 1  # type: ignore[attr-defined]
    assert artifact_rows(any_platform) == 1 and events(any_platform) == ["artifact.put"]


# --- REST ---------------------------------------------------------------------------------
def test_download_headers(live_server, admin_client: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    page = b"<html><script>alert(document.cookie)</script></html>"
    r = admin_client.put(
        CONTENT, params={"owner": OWNER, "name": "reports/r\u00e9sum\u00e9.html"}, content=page
    )
    assert r.status_code == 201
    assert r.json()["media_type"] == "text/html"
    r = admin_client.get(CONTENT, params={"owner": OWNER, "name": "reports/résumé.html"})
    assert r.status_code == 200 and r.content == page
    assert r.headers["x-plinth-sha256"] == hashlib.sha256(page).hexdigest()
    assert r.headers["etag"] == f'"{hashlib.sha256(page).hexdigest()}"'
    assert r.headers["content-length"] == str(len(page))
    # Uploaded HTML must not run as a page of the Plinth origin.
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.html"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    info = admin_client.get(INFO, params={"owner": OWNER, "name": "reports/résumé.html"}).json()
    assert info["sha256"] == r.headers["x-plinth-sha256"] and info["size"] == len(page)
    assert [a["name"] for a in admin_client.get(LIST, params={"owner": OWNER}).json()] == [
        "reports/résumé.html"
    ]
    missing = admin_client.get(CONTENT, params={"owner": OWNER, "name": "nope.bin"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert "'nope.bin'" in missing.json()["error"]["message"]
    conflict = admin_client.put(
        CONTENT, params={"owner": OWNER, "name": "reports/résumé.html"}, content=b"other"
    )
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
    assert (
        admin_client.delete(
            LIST, params={"owner": OWNER, "name": "reports/résumé.html"}
        ).status_code
        == 204
    )
    assert (
        admin_client.get(INFO, params={"owner": OWNER, "name": "reports/résumé.html"}).status_code
        == 404
    )


def test_rest_refuses_bad_media_type(live_server, admin_client: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    r = admin_client.put(
        CONTENT, params={"owner": OWNER, "name": "a.bin", "media_type": "x" * 300}, content=b"data"
    )
    assert r.status_code == 400 and r.json()["error"]["details"] == {"field": "media_type"}
    assert artifact_rows(live_server.platform) == 0 and blob_files(live_server.platform) == []


def test_viewer_reads_but_cannot_write(live_server, admin_client: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    platform = live_server.platform
    admin = platform.caller()
    admin.call(gov.create_user, name="vera")
    token = admin.call(gov.create_token, name="laptop", user="vera").token
    admin.call(gov.grant_role, user="vera", role="viewer")
    assert (
        admin_client.put(
            CONTENT, params={"owner": OWNER, "name": "a.bin"}, content=b"by admin"
        ).status_code
        == 201
    )
    rows, blobs = artifact_rows(platform), blob_files(platform)

    with live_server.client(token) as vera:
        assert vera.get(CONTENT, params={"owner": OWNER, "name": "a.bin"}).content == b"by admin"
        assert vera.get(INFO, params={"owner": OWNER, "name": "a.bin"}).status_code == 200
        assert [a["name"] for a in vera.get(LIST, params={"owner": OWNER}).json()] == ["a.bin"]
        for response in (
            vera.put(CONTENT, params={"owner": OWNER, "name": "b.bin"}, content=b"by vera"),
            vera.put(CONTENT, params={"owner": OWNER, "name": "a.bin"}, content=b"by admin"),
            vera.delete(LIST, params={"owner": OWNER, "name": "a.bin"}),
        ):
            assert response.status_code == 403
            error = response.json()["error"]
            assert error["code"] == "permission_denied"
            assert (
                error["message"]
                == "'vera' is a viewer in project 'default'; writing needs editor or above"
            )
        # Another project, where vera has no role: not even reading.
        admin.call(gov.create_project, name="secret")
        denied = vera.get(LIST, params={"owner": OWNER, "project": "secret"})
        assert (
            denied.status_code == 403
            and "has no role in project 'secret'" in denied.json()["error"]["message"]
        )
    assert artifact_rows(platform) == rows and blob_files(platform) == blobs


def test_viewer_through_the_remote_sdk(live_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from plinth.client.backend import reset_backend

    admin = live_server.platform.caller()
    admin.call(gov.create_user, name="vic")
    token = admin.call(gov.create_token, name="t", user="vic").token
    admin.call(gov.grant_role, user="vic", role="viewer")
    admin.call(svc.put_artifact, owner=OWNER, name="a.bin", content=b"shared")
    monkeypatch.setenv("PLINTH_URI", live_server.url)
    monkeypatch.setenv("PLINTH_TOKEN", token)
    reset_backend()
    assert plinth.read_artifact(OWNER, "a.bin") == b"shared"
    with pytest.raises(PermissionDenied, match="writing needs editor or above"):
        plinth.upload_artifact(OWNER, "b.bin", b"nope")
    assert artifact_rows(live_server.platform) == 1


def test_interrupted_rest_upload_leaves_nothing(live_server, admin_client: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    platform = live_server.platform

    def body() -> Iterator[bytes]:
        yield b"a" * CHUNK_SIZE
        wait_for(lambda: spool_files(platform))  # the server is writing the upload
        yield b"b" * CHUNK_SIZE
        raise OSError("the source disk went away")

    with pytest.raises(OSError, match="the source disk went away"):
        admin_client.put(CONTENT, params={"owner": OWNER, "name": "broken.bin"}, content=body())
    wait_for(lambda: not spool_files(platform))
    assert artifact_rows(platform) == 0 and blob_files(platform) == [] and events(platform) == []

    # The server is fine afterwards.
    ok = admin_client.put(CONTENT, params={"owner": OWNER, "name": "whole.bin"}, content=b"whole")
    assert ok.status_code == 201 and artifact_rows(platform) == 1


def test_truncated_content_length_leaves_nothing(live_server) -> None:  # type: ignore[no-untyped-def]
    platform = live_server.platform
    url = urlsplit(live_server.url)
    declared, sent = 8 * CHUNK_SIZE, 2 * CHUNK_SIZE
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT {CONTENT}?owner=runs%3A%2Fr1&name=short.bin HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nAuthorization: Bearer {live_server.admin_token}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
            ).encode()
        )
        sock.sendall(b"z" * sent)
        wait_for(lambda: spool_files(platform))
    # The connection closed with 6 MiB still owed.
    wait_for(lambda: not spool_files(platform))
    assert artifact_rows(platform) == 0 and blob_files(platform) == [] and events(platform) == []


def test_corrupted_small_blob_gets_an_error_response(
    live_server, admin_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from plinth.client.backend import reset_backend

    platform = live_server.platform
    info = platform.caller().call(
        svc.put_artifact, owner=OWNER, name="small.bin", content=b"small and precious"
    )
    corrupt(platform, info.sha256, 3)
    r = admin_client.get(CONTENT, params={"owner": OWNER, "name": "small.bin"})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "data_corrupted"
    assert r.json()["error"]["message"].startswith(f"blob {info.sha256} is corrupted")
    with pytest.raises(DataCorrupted, match=info.sha256):
        plinth.read_artifact(OWNER, "small.bin")  # embedded
    monkeypatch.setenv("PLINTH_URI", live_server.url)
    monkeypatch.setenv("PLINTH_TOKEN", live_server.admin_token)
    reset_backend()
    with pytest.raises(DataCorrupted, match=info.sha256):
        plinth.read_artifact(OWNER, "small.bin")  # remote


def test_corrupted_large_blob_aborts_the_stream(
    live_server, admin_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from plinth.client.backend import reset_backend

    platform = live_server.platform
    data = bytes(range(256)) * (3 * CHUNK_SIZE // 256) + b"tail"
    info = platform.caller().call(svc.put_artifact, owner=OWNER, name="big.bin", content=data)
    corrupt(platform, info.sha256, 2 * CHUNK_SIZE + 10)  # in the third of four chunks

    received = bytearray()
    with admin_client.stream("GET", CONTENT, params={"owner": OWNER, "name": "big.bin"}) as r:
        assert r.status_code == 200
        assert r.headers["x-plinth-sha256"] == info.sha256
        assert r.headers["content-length"] == str(len(data))
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete|without sending complete"):
            for chunk in r.iter_bytes():
                received += chunk
    assert len(received) < len(data)  # the client never holds a complete-looking file

    with pytest.raises(DataCorrupted):
        plinth.read_artifact(OWNER, "big.bin")  # embedded
    monkeypatch.setenv("PLINTH_URI", live_server.url)
    monkeypatch.setenv("PLINTH_TOKEN", live_server.admin_token)
    reset_backend()
    with pytest.raises(PlinthError) as caught:
        plinth.read_artifact(OWNER, "big.bin")  # remote
    assert (
        isinstance(caught.value, DataCorrupted) or "complete message body" in caught.value.message
    )


# --- on S3 ----------------------------------------------------------------------------------
def test_s3_backed_platform_round_trips(s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    settings = load_settings(
        home=tmp_path / "s3home", artifacts_url=f"s3://{s3_bucket}/plinth/artifacts/"
    )
    assert settings.artifact_root == f"s3://{s3_bucket}/plinth/artifacts"
    platform = Platform(settings).start()
    try:
        caller = platform.caller()
        data = b"model bytes on s3 " * 100_000  # 1.8 MiB
        info = caller.call(
            svc.put_artifact,
            owner=OWNER,
            name="model/weights.bin",
            content=iter([data[:5], data[5:]]),
        )
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        again = caller.call(svc.put_artifact, owner=OWNER, name="model/copy.bin", content=data)
        assert again.sha256 == info.sha256
        s3 = boto3.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
        assert keys == [
            f"plinth/artifacts/blobs/sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"
        ]
        _, chunks = caller.call(svc.open_artifact, owner=OWNER, name="model/weights.bin")
        assert b"".join(chunks) == data
        assert [a.name for a in caller.call(svc.list_artifacts, owner=OWNER)] == [
            "model/copy.bin",
            "model/weights.bin",
        ]
        assert not (tmp_path / "s3home" / "artifacts").exists()  # nothing went to the local folder

        s3.put_object(Bucket=s3_bucket, Key=keys[0], Body=data[:-1] + b"!")
        _, chunks = caller.call(svc.open_artifact, owner=OWNER, name="model/weights.bin")
        with pytest.raises(DataCorrupted, match=info.sha256):
            b"".join(chunks)
    finally:
        platform.close()


def test_s3_through_the_sdk_settings(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from plinth.client.backend import reset_backend

    monkeypatch.setenv("PLINTH_ARTIFACTS_URL", f"s3://{s3_bucket}/sdk")
    reset_backend()
    plinth.upload_artifact(OWNER, "a.txt", b"via PLINTH_ARTIFACTS_URL")
    assert plinth.read_artifact(OWNER, "a.txt") == b"via PLINTH_ARTIFACTS_URL"
    import boto3

    listing = boto3.client("s3").list_objects_v2(Bucket=s3_bucket, Prefix="sdk/blobs/")
    assert len(listing.get("Contents", [])) == 1
