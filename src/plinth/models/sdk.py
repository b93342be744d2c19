"""``plinth.models``: log a model into a run, load any model by reference, save to a folder.

>>> import plinth
>>> with plinth.start_run():                                               # doctest: +SKIP
...     info = plinth.models.log_model(clf, "model", input_example=X.head())
>>> model = plinth.models.load(info.uri)                                   # doctest: +SKIP
>>> model.predict(X)                                                       # doctest: +SKIP

``load`` takes ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>`` or a local folder. Files are fetched into a cache under
``PLINTH_HOME`` keyed by the manifest's sha256 and checked against the manifest on every
load; a file that differs refuses the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plinth.core.errors import Conflict, DataCorrupted, InvalidInput
from plinth.core.names import validate_artifact_name
from plinth.core.uris import parse_reference
from plinth.models.loaded import LoadedModel
from plinth.models.manifest import MANIFEST_NAME, Manifest, sha256_file
from plinth.models.packaging import load_folder, save_model
from plinth.models.signature import Signature

__all__ = ["ModelInfo", "load", "log_model"]


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` stored: where, in which flavor, with which signature."""

    uri: str
    run_id: str
    name: str
    flavor: str
    signature: dict[str, Any] | None
    manifest_sha256: str
    registered_version: Any = None  # a VersionInfo when registered_model_name was given


def log_model(
    model: Any,
    name: str = "model",
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    serialization: str | None = None,
    artifacts: dict[str, Any] | None = None,
    code_paths: list[str | Path] | None = None,
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Save ``model`` as artifacts of the active run under ``name`` (``runs:/<id>/<name>``).

    The signature is inferred from ``input_example`` (column names, types, shapes) unless
    given. With ``registered_model_name`` the model is also registered as a new version.
    """
    from plinth.tracking.sdk import active_run

    run = active_run()
    if run is None:
        raise Conflict(
            "log_model needs an active run: call it inside `with plinth.start_run():` "
            "(plinth.models.save_model writes a folder without one)"
        )
    name = validate_artifact_name(name).strip("/")
    with tempfile.TemporaryDirectory(prefix="plinth-model-") as tmp:
        folder = Path(tmp) / "model"
        manifest = save_model(
            model,
            folder,
            flavor=flavor,
            signature=signature,
            input_example=input_example,
            requirements=requirements,
            metadata=metadata,
            serialization=serialization,
            artifacts=artifacts,
            code_paths=code_paths,
        )
        for rel in manifest.files:
            run.log_artifact(folder / rel, f"{name}/{rel}")
        # The manifest goes last: a model whose upload broke off has none and is not a model.
        stored = run.log_artifact(folder / MANIFEST_NAME, f"{name}/{MANIFEST_NAME}")
    uri = f"runs:/{run.id}/{name}"
    version = None
    if registered_model_name is not None:
        from plinth.registry.sdk import register_model
        from plinth.tracking.sdk import flush

        flush(run.id)  # the lineage takes the run's metrics: store the buffered ones first

        version = register_model(registered_model_name, uri, project=run.project)
    return ModelInfo(uri, run.id, name, manifest.flavor, manifest.signature, stored.sha256, version)


# --- loading --------------------------------------------------------------------------------
def _cache_root() -> Path:
    from plinth.core.settings import load_settings

    return load_settings().home / "cache" / "models"


def resolve_reference(uri: str, project: str | None = None, field: str = "uri") -> tuple[Any, Any]:
    """A model reference, checked: ``(parsed reference, registry version)``; the version (alias
    resolved) for ``models:/<name>/<version>`` or ``@<alias>``, None for ``runs:/<id>/<path>``.
    InvalidInput names ``field`` for a reference to a whole model or a whole run."""
    ref = parse_reference(uri, {"runs", "models"})
    if ref.kind == "models":
        from plinth.registry.sdk import resolve

        if ref.version is None and ref.alias is None:
            raise InvalidInput(
                f"{uri!r} names a model, not a version: use models:/{ref.name}/<version> or @<alias>", field=field
            )
        return ref, resolve(uri, project=project)
    if ref.version is None:
        raise InvalidInput(f"{uri!r} names a run, not a model in it: use runs:/<run_id>/<path>", field=field)
    return ref, None


def _locate(uri: str, project: str | None) -> tuple[str, str, str]:
    """(artifact owner, name prefix, manifest sha256) of a model reference."""
    ref, version = resolve_reference(uri, project)
    if version is not None:
        return version.artifact_owner, "", version.manifest_sha256
    from plinth.artifacts.sdk import get_artifact

    owner, prefix = f"runs:/{ref.name}", ref.version.rstrip("/") + "/"
    info = get_artifact(owner, prefix + MANIFEST_NAME, project=project)
    return owner, prefix, info.sha256


def _download(owner: str, name: str, target: Path, project: str | None) -> None:
    from plinth.artifacts.sdk import download_artifact

    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        for chunk in download_artifact(owner, name, project=project):
            fh.write(chunk)


def _cached(folder: Path, manifest_sha: str, where: str) -> bool:
    """Whether the cache holds this model intact (a damaged copy is removed)."""
    if not (folder / MANIFEST_NAME).is_file():
        return False
    try:
        if sha256_file(folder / MANIFEST_NAME).sha256 != manifest_sha:
            raise DataCorrupted("manifest differs")
        Manifest.read_folder(folder).verify_folder(folder, where)
        return True
    except (DataCorrupted, InvalidInput, OSError):
        shutil.rmtree(folder, ignore_errors=True)  # the stored artifacts are the truth: fetch again
        return False


def fetch(uri: str, project: str | None = None) -> Path:
    """The local folder of a model reference, fetched into the cache and verified."""
    owner, prefix, manifest_sha = _locate(uri, project)
    root = _cache_root()
    folder = root / manifest_sha
    if _cached(folder, manifest_sha, uri):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
    try:
        _download(owner, prefix + MANIFEST_NAME, staging / MANIFEST_NAME, project)
        if sha256_file(staging / MANIFEST_NAME).sha256 != manifest_sha:
            raise DataCorrupted(
                f"model {uri} is refused: its {MANIFEST_NAME} is not the one recorded for it; it was tampered with"
            )
        manifest = Manifest.read_folder(staging)
        for rel in manifest.files:
            _download(owner, prefix + rel, staging / rel, project)
        manifest.verify_folder(staging, uri)
        try:
            os.replace(staging, folder)
        except OSError:  # another process put the same model there meanwhile
            if not _cached(folder, manifest_sha, uri):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load(uri: str | os.PathLike[str], *, trust: bool = False, project: str | None = None) -> LoadedModel:
    """Load a model by reference or from a local folder; one ``predict()`` for every flavor.

    ``trust=True`` allows formats that can run code when loaded (pickle, joblib, code
    shipped with a custom model); only pass it for models from people you trust.
    """
    if isinstance(uri, os.PathLike) or (isinstance(uri, str) and ":/" not in uri):
        return load_folder(Path(uri), trust=trust)
    if not isinstance(uri, str):
        raise InvalidInput(f"cannot load {uri!r}: give a models:/ or runs:/ reference or a folder", field="uri")
    return load_folder(fetch(uri, project), trust=trust, where=uri, verify=False)
