"""Load a feature repository: a folder of ``.py`` files the user keeps in git.

Each file is imported by path under a private module name (so a file called ``json.py``
shadows nothing), with the repository folder on ``sys.path`` only while loading (so the
files can import each other, as in Feast). Every ``Entity``, ``FeatureView``,
``OnDemandFeatureView`` and ``FeatureService`` found at module level is collected; the
same object reached from two files counts once, two different ones with one name are
refused. Folders starting with ``.`` or ``_``, virtual environments and the patterns in a
``.plinthignore`` file are skipped. An error in a file is reported with its file and line.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from plinth.core.errors import InvalidInput, NotFound
from plinth.features.definitions import Definition, Entity, FeatureService, FeatureView, OnDemandFeatureView

__all__ = ["RepoContents", "load_repo"]

SKIP_DIRS = {"venv", ".venv", "env", "node_modules", "site-packages", "__pycache__", "build", "dist"}
COLLECTED = (Entity, FeatureView, OnDemandFeatureView, FeatureService)


@dataclass
class RepoContents:
    path: Path
    files: list[Path]
    objects: list[Definition]

    def __repr__(self) -> str:
        return f"RepoContents(path={str(self.path)!r}, files={len(self.files)}, objects={len(self.objects)})"


def _ignored(path: Path, root: Path, patterns: list[str]) -> bool:
    rel = path.relative_to(root)
    if any(part.startswith((".", "_")) or part in SKIP_DIRS for part in rel.parts[:-1]):
        return True
    text = rel.as_posix()
    return any(fnmatch.fnmatch(text, p) or fnmatch.fnmatch(rel.name, p) for p in patterns)


def repo_files(root: Path) -> list[Path]:
    ignore = root / ".plinthignore"
    patterns = []
    if ignore.is_file():
        patterns = [ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [p for p in sorted(root.rglob("*.py")) if not _ignored(p, root, patterns)]


def _import(path: Path, root: Path, prefix: str) -> object:
    rel = path.relative_to(root).with_suffix("")
    name = f"{prefix}." + ".".join(part.replace("-", "_") for part in rel.parts)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path}: cannot be imported as a Python module", field="path")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise InvalidInput(f"{path}:{exc.lineno}: syntax error: {exc.msg}", field="path", file=str(path)) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        where = f"{path}:{frames[-1].lineno}" if frames else str(path)
        raise InvalidInput(
            f"{where}: loading the file failed: {type(exc).__name__}: {exc}", field="path", file=str(path)
        ) from None
    return module


def load_repo(path: str | Path = ".") -> RepoContents:
    """Import every ``.py`` file of the folder and collect its definitions (in file order).

    >>> contents = load_repo("feature_repo")  # doctest: +SKIP
    >>> plinth.features.apply(contents.objects)  # doctest: +SKIP
    """
    from plinth.features.ondemand import register

    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise NotFound(f"feature repository {str(path)!r} does not exist", path=str(path))
    files = [root] if root.is_file() else repo_files(root)
    base = root.parent if root.is_file() else root
    prefix = "_plinth_feature_repo_" + hashlib.sha256(str(base).encode()).hexdigest()[:12]
    added = str(base) not in sys.path
    if added:
        sys.path.insert(0, str(base))
    found: dict[tuple[str, str], tuple[Definition, Path]] = {}
    try:
        for file in files:
            module = _import(file, base, prefix)
            for value in vars(module).values():
                if not isinstance(value, COLLECTED):
                    continue
                key = ("entities" if isinstance(value, Entity) else "features", value.name)
                seen = found.get(key)
                if seen is None:
                    found[key] = (value, file)
                elif seen[0] != value:
                    raise InvalidInput(
                        f"two different definitions are named {value.name!r}: in {seen[1]} and in {file}",
                        field="path",
                        name=value.name,
                    )
    finally:
        if added and str(base) in sys.path:
            sys.path.remove(str(base))
    objects = [obj for obj, _ in found.values()]
    for obj in objects:
        if isinstance(obj, OnDemandFeatureView):
            register(obj)
    return RepoContents(path=root, files=files, objects=objects)
