"""The content-addressed blob store: one contract, run on a local folder and on S3 (a real
S3-speaking server, moto, on a loopback port)."""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from plinth.core.errors import DataCorrupted, InvalidInput, NotFound, Unavailable
from plinth.core.hashing import CHUNK_SIZE
from plinth.store.blobs import BlobStore

S3_PREFIX = "team/artifacts"


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> BlobStore:
    # S3 uploads spool through the system temp folder: give each test its own to inspect.
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    if request.param == "local":
        return BlobStore(str(tmp_path / "artifacts"))
    bucket = request.getfixturevalue("s3_bucket")
    return BlobStore(f"s3://{bucket}/{S3_PREFIX}")


def s3_client():  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3")  # the AWS_* variables point at the test server


def stored_keys(store: BlobStore) -> list[str]:
    """Every object under the store's root, seen from outside Plinth."""
    if store.is_local:
        root = Path(store.root)
        return (
            sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            if root.exists()
            else []
        )
    bucket, prefix = store.root.split("/", 1)
    listing = s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"][len(prefix) + 1 :] for o in listing.get("Contents", []))


def blob_keys(store: BlobStore) -> list[str]:
    return [k for k in stored_keys(store) if k.startswith("blobs/")]


def spooled(store: BlobStore) -> list[str]:
    """Temporary upload files left behind (the local spool folder, or the system temp)."""
    folder = Path(store.root) / "tmp" if store.is_local else Path(tempfile.gettempdir())
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def overwrite(store: BlobStore, sha256: str, content: bytes) -> None:
    """Change a stored blob behind Plinth's back."""
    if store.is_local:
        Path(store.key(sha256)).write_bytes(content)
    else:
        bucket, key = store.key(sha256).split("/", 1)
        s3_client().put_object(Bucket=bucket, Key=key, Body=content)


def test_round_trip(store: BlobStore) -> None:
    data = b"weights " * 300_000  # ~2.3 MiB: several chunks
    info = store.put(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    assert store.exists(info.sha256)
    assert store.read_bytes(info.sha256) == data
    chunks = list(store.open(info.sha256, size=len(data)))
    assert len(chunks) == 3 and all(len(c) <= CHUNK_SIZE for c in chunks)
    assert b"".join(chunks) == data
    assert store.key(info.sha256).endswith(
        f"/blobs/sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"
    )
    assert blob_keys(store) == [f"blobs/sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"]
    assert spooled(store) == []


def test_empty_content_round_trips(store: BlobStore) -> None:
    info = store.put(b"")
    assert (info.sha256, info.size) == (hashlib.sha256(b"").hexdigest(), 0)
    assert store.read_bytes(info.sha256) == b""


def test_identical_content_is_stored_once(store: BlobStore) -> None:
    data = b"same bytes, three ways"
    a = store.put(data)
    b = store.put(io.BytesIO(data))
    c = store.put(iter([b"same ", bytearray(b"bytes, "), b"", memoryview(b"three ways")]))
    assert a == b == c
    assert len(blob_keys(store)) == 1
    other = store.put(b"other bytes")
    assert other.sha256 != a.sha256
    assert len(blob_keys(store)) == 2
    assert store.read_bytes(a.sha256) == data and store.read_bytes(other.sha256) == b"other bytes"
    assert spooled(store) == []


def test_put_file_and_symlinks(store: BlobStore, tmp_path: Path) -> None:
    real = tmp_path / "model.bin"
    real.write_bytes(b"\x00\x01model")
    assert store.put_file(real).sha256 == hashlib.sha256(b"\x00\x01model").hexdigest()
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with pytest.raises(InvalidInput, match="is a symbolic link") as caught:
        store.put_file(link)
    assert caught.value.details == {"field": "path"}
    assert len(blob_keys(store)) == 1


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "0" * 63,
        "0" * 65,
        "A" * 64,  # upper case is not how digests are written here
        "g" * 64,
        "../" + "0" * 61,
        "",
        None,
        64,
    ],
)
def test_key_refuses_anything_but_a_sha256(store: BlobStore, bad: object) -> None:
    for method in (store.key, store.exists, store.open, store.read_bytes, store.delete):
        with pytest.raises(InvalidInput) as caught:
            method(bad)  # type: ignore[operator]
        assert caught.value.message == f"{bad!r} is not a sha256 digest"
        assert caught.value.details == {"field": "sha256"}
    assert stored_keys(store) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: "text",
        lambda: io.StringIO("a text-mode file"),
        lambda: iter(["str chunks"]),
        lambda: 42,
    ],
    ids=["str", "text-file", "str-chunks", "int"],
)
def test_content_that_is_not_bytes_is_refused(store: BlobStore, make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        InvalidInput, match="content must be bytes, a binary file or an iterable of bytes"
    ):
        store.put(make())
    assert blob_keys(store) == [] and spooled(store) == []


def test_interrupted_stream_leaves_nothing_behind(store: BlobStore) -> None:
    def broken() -> Iterator[bytes]:
        for _ in range(3):
            yield b"x" * CHUNK_SIZE
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError, match="client went away"):
        store.put(broken())
    assert blob_keys(store) == []
    assert spooled(store) == []
    # The same bytes, complete, still store fine afterwards.
    info = store.put(b"x" * (3 * CHUNK_SIZE))
    assert blob_keys(store) == [f"blobs/sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"]


def test_modified_blob_raises_data_corrupted(store: BlobStore) -> None:
    data = b"the original model weights" * 1000
    info = store.put(data)
    tampered = bytearray(data)
    tampered[100] ^= 0xFF
    overwrite(store, info.sha256, bytes(tampered))  # same size, other bytes
    with pytest.raises(DataCorrupted) as caught:
        store.read_bytes(info.sha256)
    assert caught.value.message.startswith(f"blob {info.sha256} is corrupted")
    assert caught.value.details == {"sha256": info.sha256}
    # A streaming reader gets the bytes, then the error when the stream ends.
    received = bytearray()
    with pytest.raises(DataCorrupted):
        for chunk in store.open(info.sha256):
            received += chunk
    assert bytes(received) == bytes(tampered)

    overwrite(store, info.sha256, data[:-1])  # truncated
    with pytest.raises(DataCorrupted, match=info.sha256):
        store.read_bytes(info.sha256)
    overwrite(store, info.sha256, data)  # restored: reads again
    assert store.read_bytes(info.sha256) == data


def test_size_mismatch_is_corruption(store: BlobStore) -> None:
    info = store.put(b"twelve bytes")
    assert b"".join(store.open(info.sha256, size=12)) == b"twelve bytes"
    with pytest.raises(DataCorrupted, match=info.sha256):
        b"".join(store.open(info.sha256, size=13))


def test_missing_blob_is_not_found(store: BlobStore) -> None:
    absent = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(absent)
    with pytest.raises(NotFound) as caught:
        store.read_bytes(absent)
    assert caught.value.message == f"blob {absent} is missing from the artifact store {store.url}"
    info = store.put(b"stored, then deleted")
    store.delete(info.sha256)
    assert not store.exists(info.sha256) and blob_keys(store) == []
    with pytest.raises(NotFound, match=info.sha256):
        store.open(info.sha256)
    store.delete(info.sha256)  # deleting what is gone is a no-op


def test_concurrent_puts_of_the_same_content(store: BlobStore) -> None:
    data = b"written by many threads at once" * 10_000
    results, errors = [], []
    barrier = threading.Barrier(6)

    def put() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(store.put(iter([data[:1000], data[1000:]])))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(results) == 6 and len(set(results)) == 1
    assert len(blob_keys(store)) == 1 and spooled(store) == []
    assert store.read_bytes(results[0].sha256) == data


def test_large_stream_keeps_memory_bounded(tmp_path: Path) -> None:
    """256 MiB generated lazily goes in and out with a small Python heap."""
    store = BlobStore(str(tmp_path / "artifacts"))
    block = hashlib.sha256(b"seed").digest() * (CHUNK_SIZE // 32)
    total = 256

    def chunks() -> Iterator[bytes]:
        for i in range(total):
            yield i.to_bytes(4, "big") + block[4:]

    expected = hashlib.sha256()
    for chunk in chunks():
        expected.update(chunk)

    tracemalloc.start()
    try:
        info = store.put(chunks())
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest, size = hashlib.sha256(), 0
        for chunk in store.open(info.sha256, size=info.size):
            digest.update(chunk)
            size += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.sha256 == expected.hexdigest() and info.size == total * CHUNK_SIZE
    assert (digest.hexdigest(), size) == (info.sha256, info.size)
    assert put_peak < 64 * 2**20, f"put peaked at {put_peak / 2**20:.1f} MiB"
    assert read_peak < 64 * 2**20, f"read peaked at {read_peak / 2**20:.1f} MiB"
    assert Path(store.key(info.sha256)).stat().st_size == total * CHUNK_SIZE
    store.delete(info.sha256)


def test_file_url_is_the_same_folder(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    info = BlobStore(f"file://{folder}").put(b"via file://")
    assert BlobStore(str(folder)).read_bytes(info.sha256) == b"via file://"
    assert (
        folder / "blobs" / "sha256" / info.sha256[:2] / info.sha256[2:4] / info.sha256
    ).is_file()


def test_unwritable_local_root_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a folder")
    store = BlobStore(str(blocker / "artifacts"))
    with pytest.raises(
        Unavailable, match=f"cannot write to the artifact store {blocker / 'artifacts'}"
    ):
        store.put(b"data")
    assert blocker.read_bytes() == b"not a folder"


def test_missing_bucket_is_unavailable(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    store = BlobStore(f"s3://{s3_bucket}-missing/prefix")
    with pytest.raises(
        Unavailable, match=f"cannot write to the artifact store s3://{s3_bucket}-missing/prefix"
    ):
        store.put(b"data")
    assert list(spool.iterdir()) == []
