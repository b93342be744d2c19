"""A reader of skops files for the plain cases, without importing skops.

Importing ``skops.io`` costs about two seconds of CPU (it imports scikit-learn's ensemble,
tree and metrics packages and scans NumPy's and SciPy's ufuncs to build its trust lists),
which is most of a fresh process's ``plinth.models.load()`` of a scikit-learn pipeline.
The files of most fitted pipelines use eight of skops' node kinds (objects, dicts, lists,
tuples, JSON values, NumPy arrays — object arrays of JSON values too —, slices, types);
this module reads exactly those, under Plinth's trust rule (scikit-learn types except
``NEVER_TRUSTED``; builtins and NumPy types), and builds the objects the way skops does
(``cls.__new__`` then ``__setstate__`` or ``__dict__.update``, shared references kept by
``__id__``).

It never imports a module that is not trusted: the whole schema is checked before any
object is built. Anything else — another node kind, another protocol, a type outside the
rule, an object array — makes :func:`read` return ``None`` and the caller falls back to
skops itself, which then decides (and refuses untrusted types with its own list).
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["read"]

PROTOCOLS = frozenset({2})
_BUILTIN_TYPES: dict[str, type] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "NoneType": type(None),
    "list": list,
    "dict": dict,
    "tuple": tuple,
}
_CONTAINERS = {"DictNode": "dict", "ListNode": "list", "TupleNode": "tuple"}


class Unsupported(Exception):
    """The file uses something this reader does not handle: use skops."""


def _numpy_type(name: str) -> type:
    import numpy as np

    found = getattr(np, name, None)
    if name == "ndarray" or (isinstance(found, type) and issubclass(found, np.generic)):
        return found  # type: ignore[return-value]
    raise Unsupported(f"numpy.{name}")


def _check(state: Any, safe: Callable[[str], bool], seen: set[int]) -> None:
    """Walk the schema; raise Unsupported for anything outside the plain node kinds and trust rule."""
    if not isinstance(state, dict):
        raise Unsupported("a node that is not an object")
    if id(state) in seen:
        return
    seen.add(id(state))
    loader, module, name = state.get("__loader__"), state.get("__module__"), state.get("__class__")
    if not isinstance(module, str) or not isinstance(name, str):
        raise Unsupported("a node without a type")
    if loader == "ObjectNode":
        if not safe(f"{module}.{name}"):
            raise Unsupported(f"{module}.{name}")
        if "content" in state:
            _check(state["content"], safe, seen)
    elif loader in _CONTAINERS:
        if module != "builtins" or name != _CONTAINERS[loader]:
            raise Unsupported(f"{module}.{name} as {loader}")
        content = state.get("content")
        children = list(content.values()) if loader == "DictNode" and isinstance(content, dict) else content
        if not isinstance(children, list):
            raise Unsupported(f"{loader} content")
        for child in children:
            _check(child, safe, seen)
        if loader == "DictNode":
            _check(state.get("key_types"), safe, seen)
    elif loader == "JsonNode":
        if not isinstance(state.get("content"), str):
            raise Unsupported(f"JSON of {module}.{name}")
    elif loader == "NdArrayNode":
        if module != "numpy" or (name != "ndarray" and state.get("type") != "numpy"):
            raise Unsupported(f"{module}.{name} as an array")
        if state.get("type") == "numpy":
            if not isinstance(state.get("file"), str):
                raise Unsupported("an array without its file")
        elif state.get("type") == "json":  # an object array (feature names): its items are nodes
            if not isinstance(state.get("content"), list):
                raise Unsupported("an object array without items")
            for child in [*state["content"], state.get("shape")]:
                _check(child, safe, seen)
        else:
            raise Unsupported(f"an array stored as {state.get('type')!r}")
        _numpy_type(name)
    elif loader == "SliceNode":
        content = state.get("content")
        if not isinstance(content, dict) or any(
            not (content.get(k) is None or type(content.get(k)) is int) for k in ("start", "stop", "step")
        ):
            raise Unsupported("a slice that is not of integers")
    elif loader == "TypeNode":
        if module == "builtins":
            if name not in _BUILTIN_TYPES:
                raise Unsupported(f"builtins.{name}")
        elif module == "numpy":
            _numpy_type(name)
        elif not safe(f"{module}.{name}"):
            raise Unsupported(f"{module}.{name}")
    else:
        raise Unsupported(str(loader))


class _Builder:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.memo: dict[Any, Any] = {}

    def build(self, state: dict[str, Any]) -> Any:
        key = state.get("__id__")
        if key is not None and key in self.memo:
            return self.memo[key]
        value = self._build(state)
        if key is not None:
            self.memo[key] = value
        return value

    def _build(self, state: dict[str, Any]) -> Any:
        loader, module, name = state["__loader__"], state["__module__"], state["__class__"]
        if loader == "JsonNode":  # JSON builds only str, numbers, bool, None, lists and dicts
            return json.loads(state["content"])
        if loader == "NdArrayNode":
            import numpy as np

            if state["type"] == "json":
                items = [self.build(child) for child in state["content"]]
                shape = self.build(state["shape"])
                if len(shape) != 1:
                    return np.array(items, dtype=object)
                array = np.empty(len(items), dtype=object)
                for i, item in enumerate(items):  # one dimension even when the items are lists
                    array[i] = item
                return array
            array = np.load(io.BytesIO(self.archive.read(state["file"])), allow_pickle=False)
            return array if name == "ndarray" else _numpy_type(name)(array)
        if loader == "TypeNode":
            if module == "builtins":
                return _BUILTIN_TYPES[name]
            if module == "numpy":
                return _numpy_type(name)
            return getattr(importlib.import_module(module), name)
        if loader == "SliceNode":
            content = state["content"]
            return slice(content.get("start"), content.get("stop"), content.get("step"))
        if loader == "ListNode":
            return [self.build(child) for child in state["content"]]
        if loader == "TupleNode":
            return tuple(self.build(child) for child in state["content"])
        if loader == "DictNode":
            key_types = self.build(state["key_types"])
            items = state["content"].items()
            if len(key_types) != len(items):
                raise Unsupported("a dict whose key types do not match its keys")
            return {kind(k): self.build(v) for kind, (k, v) in zip(key_types, items, strict=True)}
        # ObjectNode: built as skops builds it (no __init__: the attributes are set afterwards)
        cls = getattr(importlib.import_module(module), name)
        instance = cls.__new__(cls)
        attrs = self.build(state["content"]) if "content" in state else None
        if attrs is not None:
            if hasattr(instance, "__setstate__"):
                instance.__setstate__(attrs)
            else:
                instance.__dict__.update(attrs)
        return instance


def read(path: Path, safe: Callable[[str], bool]) -> Any | None:
    """The object in the skops file ``path``, or ``None`` when skops itself must read it."""
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
            if not isinstance(schema, dict) or schema.get("protocol") not in PROTOCOLS:
                return None
            _check(schema, safe, set())
            return _Builder(archive).build(schema)
    except (Unsupported, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
