"""The model manifest, ``plinth-model.yaml``: what a model folder holds and how to load it.

    format: plinth-model/1
    flavor: sklearn
    flavor_options: {serialization: skops, file: model.skops, ...}
    signature: {inputs: {kind: columns, columns: [...]}, outputs: {...}}
    input_example: input_example.json
    requirements: [scikit-learn==1.9.1, skops==0.16.0, ...]
    metadata: {...}            # the caller's, free-form
    created_at: 2026-11-27T10:00:00Z
    python_version: 3.11.7
    files: {model.skops: {sha256: ..., size: ...}, ...}

Every file in the folder is listed with its sha256; loading refuses a folder where a file
differs from its entry (the model was tampered with) or an entry is missing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plinth.core.errors import DataCorrupted, InvalidInput, NotFound
from plinth.core.hashing import CHUNK_SIZE
from plinth.core.names import validate_artifact_name

__all__ = ["FORMAT", "MANIFEST_NAME", "FileEntry", "Manifest", "sha256_file"]

MANIFEST_NAME = "plinth-model.yaml"
FORMAT = "plinth-model/1"
MAX_MANIFEST_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


def sha256_file(path: Path) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(digest.hexdigest(), size)


@dataclass
class Manifest:
    flavor: str
    flavor_options: dict[str, Any] = field(default_factory=dict)
    signature: dict[str, Any] | None = None
    input_example: str | None = None
    requirements: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    python_version: str = ""
    files: dict[str, FileEntry] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "flavor": self.flavor,
            "flavor_options": self.flavor_options,
            "signature": self.signature,
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "metadata": self.metadata,
            "created_at": self.created_at,
            "python_version": self.python_version,
            "files": {name: {"sha256": e.sha256, "size": e.size} for name, e in sorted(self.files.items())},
        }

    def dumps(self) -> bytes:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True).encode()

    @classmethod
    def loads(cls, data: bytes, where: str = "the model") -> Manifest:
        import yaml

        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidInput(f"{MANIFEST_NAME} of {where} is larger than {MAX_MANIFEST_BYTES} bytes")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            raw = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{MANIFEST_NAME} of {where} is not valid YAML: {exc}") from None
        return cls.from_dict(raw, where)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "the model") -> Manifest:
        def bad(why: str) -> InvalidInput:
            return InvalidInput(f"{MANIFEST_NAME} of {where} is not a Plinth model manifest: {why}")

        if not isinstance(raw, dict):
            raise bad("it is not a mapping")
        if raw.get("format") != FORMAT:
            raise bad(f"format {raw.get('format')!r} is not {FORMAT!r}")
        if not isinstance(raw.get("flavor"), str):
            raise bad("it names no flavor")
        files = raw.get("files")
        if not isinstance(files, dict) or not files:
            raise bad("it lists no files")
        entries: dict[str, FileEntry] = {}
        for name, entry in files.items():
            validate_artifact_name(name)
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("sha256"), str)
                or not isinstance(entry.get("size"), int)
            ):
                raise bad(f"file {name!r} has no sha256 and size")
            entries[name] = FileEntry(entry["sha256"], entry["size"])
        for key, kind in (("flavor_options", dict), ("metadata", dict), ("requirements", list)):
            if raw.get(key) is not None and not isinstance(raw[key], kind):
                raise bad(f"{key} must be a {kind.__name__}")
        return cls(
            flavor=raw["flavor"],
            flavor_options=raw.get("flavor_options") or {},
            signature=raw.get("signature"),
            input_example=raw.get("input_example"),
            requirements=[str(r) for r in raw.get("requirements") or []],
            metadata=raw.get("metadata") or {},
            created_at=str(raw.get("created_at") or ""),
            python_version=str(raw.get("python_version") or ""),
            files=entries,
        )

    # --- folders ----------------------------------------------------------------------------
    @staticmethod
    def list_folder(folder: Path) -> dict[str, FileEntry]:
        """Every regular file under ``folder`` but the manifest, with its sha256."""
        entries: dict[str, FileEntry] = {}
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                rel = path.relative_to(folder).as_posix()
                if rel == MANIFEST_NAME:
                    continue
                if path.is_symlink() or not path.is_file():
                    raise InvalidInput(f"{rel} in the model folder is not a regular file", field="path")
                entries[validate_artifact_name(rel)] = sha256_file(path)
        return entries

    @classmethod
    def read_folder(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_NAME
        if not path.is_file():
            raise NotFound(f"{folder} holds no model: {MANIFEST_NAME} is missing", path=str(folder))
        return cls.loads(path.read_bytes(), str(folder))

    def verify_folder(self, folder: Path, where: str) -> None:
        """Refuse the folder unless every listed file is there with its recorded sha256."""
        for name, entry in self.files.items():
            path = folder / name
            if not path.is_file() or path.is_symlink():
                raise DataCorrupted(
                    f"model {where} is refused: {name} is listed in {MANIFEST_NAME} but missing",
                    file=name,
                )
            actual = sha256_file(path)
            if actual != entry:
                raise DataCorrupted(
                    f"model {where} is refused: {name} does not match the sha256 recorded in {MANIFEST_NAME} "
                    f"(expected {entry.sha256[:16]}…, found {actual.sha256[:16]}…); it was tampered with",
                    file=name,
                    expected=entry.sha256,
                    actual=actual.sha256,
                )
