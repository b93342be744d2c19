"""The declarative objects of a feature repository: ``Entity``, ``Field``, ``Source``,
``FeatureView``, ``RequestSource``, ``OnDemandFeatureView`` and ``FeatureService``.

They behave like scikit-learn estimators: the constructor stores its keyword arguments
as given and does nothing else; :meth:`validate` checks them (``apply`` calls it) and
:meth:`to_spec` turns them into the JSON the registry versions; the ``repr`` is one line;
equality and hashing agree (both follow the parameters).

>>> driver = Entity(name="driver", join_keys=["driver_id"])
>>> stats = FeatureView(
...     name="driver_stats",
...     entities=[driver],
...     schema=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="int64")],
...     source=Source("datasets:/driver_stats", timestamp_field="event_timestamp"),
...     ttl=timedelta(days=2),
... )
>>> stats.features
['driver_stats:conv_rate', 'driver_stats:trips']
>>> FeatureService(name="driver_activity", features=[stats[["conv_rate"]]]).validate().spec_features()
['driver_stats:conv_rate']
"""

from __future__ import annotations

import hashlib
import inspect
import re
import textwrap
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, ClassVar

from plinth.core.errors import InvalidInput
from plinth.core.names import validate_name

__all__ = [
    "DTYPES",
    "Entity",
    "FeatureService",
    "FeatureView",
    "Field",
    "OnDemandFeatureView",
    "RequestSource",
    "Source",
    "dtype_name",
    "on_demand_feature_view",
]

# The dtype names a Field accepts, and the Arrow type each stands for.
DTYPES: dict[str, str] = {
    "float64": "float64",
    "float32": "float32",
    "int64": "int64",
    "int32": "int32",
    "string": "string",
    "bool": "bool",
    "timestamp": "timestamp[us, tz=UTC]",
    "bytes": "binary",
}
_ALIASES = {
    "double": "float64",
    "float": "float32",
    "str": "string",
    "utf8": "string",
    "boolean": "bool",
    "binary": "bytes",
    "large_string": "string",
    "large_utf8": "string",
    "large_binary": "bytes",
    "halffloat": "float32",
    "float16": "float32",
}
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_TEXT = 5000


def column_name(value: object, what: str) -> str:
    """A column or feature name: a letter or '_', then letters, digits, '_' (up to 100)."""
    if not isinstance(value, str) or not _COLUMN.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not valid: use a letter or '_' then letters, digits or '_' (up to 100)",
            field=what,
        )
    return value


def dtype_name(dtype: object, what: str = "dtype") -> str:
    """The canonical name of a dtype given as a name (``"float64"``) or an Arrow type."""
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype.strip().lower(), dtype.strip().lower())
        if name.startswith("timestamp"):
            return "timestamp"
        if name in DTYPES:
            return name
    else:
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            pa = None
        if pa is not None and isinstance(dtype, pa.DataType):
            if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
                return "timestamp"
            name = _ALIASES.get(str(dtype), str(dtype))
            if name in DTYPES:
                return name
        if dtype in (float, int, str, bool, bytes):
            return {float: "float64", int: "int64", str: "string", bool: "bool", bytes: "bytes"}[dtype]  # type: ignore[index]
    raise InvalidInput(
        f"{what} {dtype!r} is not supported: use one of {', '.join(DTYPES)} or the matching Arrow type",
        field=what,
    )


def _text(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidInput(f"{what} must be text of at most {MAX_TEXT} characters", field=what)
    return value


def _tags(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInput("tags must be a mapping of text to text", field="tags")
    if len(value) > 100:
        raise InvalidInput("at most 100 tags", field="tags")
    return dict(sorted(value.items()))


def _frozen(value: Any) -> Any:
    """A hashable, order-preserving stand-in for a parameter value (for __eq__ and __hash__)."""
    if isinstance(value, Definition):
        return (type(value).__name__, value._key())
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _frozen(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("seq", tuple(_frozen(v) for v in value))
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted(repr(_frozen(v)) for v in value)))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    if callable(value):
        return ("fn", getattr(value, "__module__", ""), getattr(value, "__qualname__", repr(value)))
    return value


class Definition:
    """Base of the declarative objects: parameters stored as given, validated on demand."""

    kind: ClassVar[str] = ""
    _params: ClassVar[tuple[str, ...]] = ()

    def get_params(self) -> dict[str, Any]:
        """The keyword arguments as given (scikit-learn's ``get_params``)."""
        return {p: getattr(self, p) for p in self._params}

    def _key(self) -> tuple[Any, ...]:
        return tuple(_frozen(getattr(self, p)) for p in self._params)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        shown = []
        for p in self._params:
            value = getattr(self, p)
            if p == "name" or value not in (None, "", [], {}, ()):
                shown.append(f"{p}={_short(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def validate(self) -> Definition:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any]:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


def _short(value: Any) -> str:
    if isinstance(value, Definition):
        return repr(getattr(value, "name", value)) if not isinstance(value, Field | Source) else repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, timedelta):
        return f"timedelta(seconds={value.total_seconds():g})"
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__
    return repr(value)


class Entity(Definition):
    """What features describe (a driver, a customer), and the columns that identify it."""

    kind = "entity"
    _params = ("name", "join_keys", "description", "owner", "tags")

    def __init__(
        self,
        name: str,
        join_keys: list[str] | None = None,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.join_keys = join_keys
        self.description = description
        self.owner = owner
        self.tags = tags

    def validate(self) -> Entity:
        validate_name(self.name, "entity name")
        keys = self.join_keys if self.join_keys is not None else [self.name]
        if isinstance(keys, str) or not isinstance(keys, list | tuple) or not keys:
            raise InvalidInput(
                f"entity {self.name!r}: join_keys must be a non-empty list of column names", field="join_keys"
            )
        for k in keys:
            column_name(k, "join key")
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"entity {self.name!r}: join_keys repeat a column", field="join_keys")
        _text(self.description, "description")
        _text(self.owner, "owner")
        _tags(self.tags)
        return self

    @property
    def keys(self) -> list[str]:
        return list(self.join_keys) if self.join_keys is not None else [self.name]

    def to_spec(self) -> dict[str, Any]:
        self.validate()
        return {
            "kind": self.kind,
            "name": self.name,
            "join_keys": self.keys,
            "description": _text(self.description, "description"),
            "owner": _text(self.owner, "owner"),
            "tags": _tags(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Entity:
        return cls(
            spec["name"],
            list(spec["join_keys"]),
            spec.get("description", ""),
            spec.get("owner", ""),
            spec.get("tags") or None,
        )


class Field(Definition):
    """One feature (or request field) and its dtype: a name such as ``"float64"`` or an Arrow type."""

    kind = "field"
    _params = ("name", "dtype", "description", "tags")

    def __init__(self, name: str, dtype: Any, description: str = "", tags: dict[str, str] | None = None) -> None:
        self.name = name
        self.dtype = dtype
        self.description = description
        self.tags = tags

    def validate(self) -> Field:
        column_name(self.name, "field name")
        dtype_name(self.dtype, f"dtype of field {self.name!r}")
        _text(self.description, "description")
        _tags(self.tags)
        return self

    def to_spec(self) -> dict[str, Any]:
        self.validate()
        return {
            "name": self.name,
            "dtype": dtype_name(self.dtype),
            "description": _text(self.description, "description"),
            "tags": _tags(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Field:
        return cls(spec["name"], spec["dtype"], spec.get("description", ""), spec.get("tags") or None)


class Source(Definition):
    """Where a feature view's rows live: ``datasets:/name[@version]``, a Parquet file or
    folder, or a Delta table folder; ``timestamp_field`` is the event time of each row and
    ``created_field`` (optional) breaks ties between rows with the same event time."""

    kind = "source"
    _params = ("uri", "timestamp_field", "created_field", "description")

    def __init__(
        self,
        uri: str,
        timestamp_field: str = "event_timestamp",
        created_field: str | None = None,
        description: str = "",
    ) -> None:
        self.uri = uri
        self.timestamp_field = timestamp_field
        self.created_field = created_field
        self.description = description

    def validate(self) -> Source:
        if not isinstance(self.uri, str) or not self.uri.strip() or len(self.uri) > 2000:
            raise InvalidInput(
                "a source needs a uri: datasets:/NAME, a Parquet file or folder, or a Delta table", field="source"
            )
        if any(ord(c) < 0x20 for c in self.uri):
            raise InvalidInput("the source uri holds control characters", field="source")
        if self.uri.startswith("datasets:/"):
            from plinth.core.uris import parse_reference

            parse_reference(self.uri, kinds={"datasets"})
        column_name(self.timestamp_field, "timestamp_field")
        if self.created_field is not None:
            column_name(self.created_field, "created_field")
            if self.created_field == self.timestamp_field:
                raise InvalidInput("created_field must differ from timestamp_field", field="created_field")
        _text(self.description, "description")
        return self

    def to_spec(self) -> dict[str, Any]:
        self.validate()
        return {
            "uri": self.uri.strip(),
            "timestamp_field": self.timestamp_field,
            "created_field": self.created_field,
            "description": _text(self.description, "description"),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Source:
        return cls(
            spec["uri"],
            spec.get("timestamp_field", "event_timestamp"),
            spec.get("created_field"),
            spec.get("description", ""),
        )


def _as_source(value: Any) -> Source:
    if isinstance(value, Source):
        return value
    if isinstance(value, str):
        return Source(value)
    raise InvalidInput("source must be a Source or a uri string", field="source")


def _ttl_seconds(ttl: Any, name: str) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, int | float) and not isinstance(ttl, bool):
        ttl = timedelta(seconds=ttl)
    if not isinstance(ttl, timedelta):
        raise InvalidInput(f"feature view {name!r}: ttl must be a timedelta (or seconds)", field="ttl")
    seconds = ttl.total_seconds()
    if seconds < 0:
        raise InvalidInput(f"feature view {name!r}: ttl must not be negative", field="ttl")
    return None if seconds == 0 else seconds  # Feast: a ttl of 0 means no limit


class FeatureView(Definition):
    """Features of one or more entities read from one source, each named ``view:feature``.

    ``ttl`` bounds how old a value may be (``None`` or zero: no limit); ``online`` says
    whether ``materialize`` copies the view into the online store.
    """

    kind = "feature_view"
    _params = ("name", "entities", "schema", "source", "ttl", "online", "owner", "description", "tags")

    def __init__(
        self,
        name: str,
        entities: list[Entity | str],
        schema: list[Field],
        source: Source | str,
        ttl: timedelta | None = None,
        online: bool = True,
        owner: str = "",
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.entities = entities
        self.schema = schema
        self.source = source
        self.ttl = ttl
        self.online = online
        self.owner = owner
        self.description = description
        self.tags = tags

    @property
    def features(self) -> list[str]:
        """The references of this view's features: ``view:feature``."""
        return [f"{self.name}:{f.name}" for f in self.schema or []]

    def __getitem__(self, names: str | list[str]) -> list[str]:
        """``view[["a", "b"]]``: references to some of the view's features (for services)."""
        wanted = [names] if isinstance(names, str) else list(names)
        known = {f.name for f in self.schema or []}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            from plinth.features.naming import closest

            raise InvalidInput(
                f"feature view {self.name!r} has no feature {unknown[0]!r}{closest(unknown[0], sorted(known))}",
                field="features",
            )
        return [f"{self.name}:{n}" for n in wanted]

    def entity_names(self) -> list[str]:
        return [e.name if isinstance(e, Entity) else e for e in self.entities or []]

    def validate(self) -> FeatureView:
        validate_name(self.name, "feature view name")
        if not isinstance(self.entities, list | tuple):
            raise InvalidInput(f"feature view {self.name!r}: entities must be a list", field="entities")
        for e in self.entities:
            if isinstance(e, Entity):
                e.validate()
            elif not isinstance(e, str):
                raise InvalidInput(
                    f"feature view {self.name!r}: an entity must be an Entity or its name", field="entities"
                )
            else:
                validate_name(e, "entity name")
        if len(set(self.entity_names())) != len(self.entity_names()):
            raise InvalidInput(f"feature view {self.name!r}: an entity is listed twice", field="entities")
        if not isinstance(self.schema, list | tuple) or not self.schema:
            raise InvalidInput(f"feature view {self.name!r}: schema must list at least one Field", field="schema")
        seen: set[str] = set()
        for f in self.schema:
            if not isinstance(f, Field):
                raise InvalidInput(f"feature view {self.name!r}: schema entries must be Field objects", field="schema")
            f.validate()
            if f.name in seen:
                raise InvalidInput(f"feature view {self.name!r}: field {f.name!r} is declared twice", field="schema")
            seen.add(f.name)
        source = _as_source(self.source).validate()
        for col in (source.timestamp_field, source.created_field):
            if col in seen:
                raise InvalidInput(
                    f"feature view {self.name!r}: {col!r} is the source's timestamp, not a feature", field="schema"
                )
        for e in self.entities:
            if isinstance(e, Entity):
                clash = seen.intersection(e.keys)
                if clash:
                    raise InvalidInput(
                        f"feature view {self.name!r}: join key {sorted(clash)[0]!r} cannot also be a feature",
                        field="schema",
                    )
        _ttl_seconds(self.ttl, self.name)
        if not isinstance(self.online, bool):
            raise InvalidInput(f"feature view {self.name!r}: online must be True or False", field="online")
        _text(self.owner, "owner")
        _text(self.description, "description")
        _tags(self.tags)
        return self

    def to_spec(self) -> dict[str, Any]:
        self.validate()
        return {
            "kind": self.kind,
            "name": self.name,
            "entities": self.entity_names(),
            "schema": [f.to_spec() for f in self.schema],
            "source": _as_source(self.source).to_spec(),
            "ttl_seconds": _ttl_seconds(self.ttl, self.name),
            "online": self.online,
            "owner": _text(self.owner, "owner"),
            "description": _text(self.description, "description"),
            "tags": _tags(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureView:
        ttl = spec.get("ttl_seconds")
        return cls(
            name=spec["name"],
            entities=list(spec["entities"]),
            schema=[Field.from_spec(f) for f in spec["schema"]],
            source=Source.from_spec(spec["source"]),
            ttl=timedelta(seconds=ttl) if ttl else None,
            online=bool(spec.get("online", True)),
            owner=spec.get("owner", ""),
            description=spec.get("description", ""),
            tags=spec.get("tags") or None,
        )


class RequestSource(Definition):
    """Fields that come with the request (the entity frame or entity rows), for on-demand views."""

    kind = "request_source"
    _params = ("name", "schema")

    def __init__(self, name: str, schema: list[Field]) -> None:
        self.name = name
        self.schema = schema

    def validate(self) -> RequestSource:
        validate_name(self.name, "request source name")
        if not isinstance(self.schema, list | tuple) or not self.schema:
            raise InvalidInput(f"request source {self.name!r}: schema must list at least one Field", field="schema")
        for f in self.schema:
            if not isinstance(f, Field):
                raise InvalidInput(
                    f"request source {self.name!r}: schema entries must be Field objects", field="schema"
                )
            f.validate()
        return self

    def to_spec(self) -> dict[str, Any]:
        self.validate()
        return {"request": self.name, "schema": [f.to_spec() for f in self.schema]}


def _function_spec(fn: Callable[..., Any]) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        source = ""
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    digest = hashlib.sha256((source or name).encode()).hexdigest()
    return {"name": name, "source": source[:20_000], "sha256": digest}


class OnDemandFeatureView(Definition):
    """Features computed from other features and request data by a Python function.

    ``udf`` takes a pandas DataFrame (``mode="pandas"``) or an Arrow table
    (``mode="arrow"``) whose columns are the source features (named ``feature``) and
    request fields, and returns the new feature columns. The same function runs offline
    (after the point-in-time join) and online (after the lookup), in the process that
    loaded the definitions: the registry keeps the function's source for reading, never
    code to execute.
    """

    kind = "on_demand_feature_view"
    _params = ("name", "sources", "schema", "udf", "mode", "owner", "description", "tags")

    def __init__(
        self,
        name: str,
        sources: list[FeatureView | RequestSource | str],
        schema: list[Field],
        udf: Callable[[Any], Any],
        mode: str = "pandas",
        owner: str = "",
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.sources = sources
        self.schema = schema
        self.udf = udf
        self.mode = mode
        self.owner = owner
        self.description = description
        self.tags = tags

    def __call__(self, data: Any) -> Any:
        """Run the transformation directly (handy in the user's own tests)."""
        return self.udf(data)

    @property
    def features(self) -> list[str]:
        return [f"{self.name}:{f.name}" for f in self.schema or []]

    def __getitem__(self, names: str | list[str]) -> list[str]:
        wanted = [names] if isinstance(names, str) else list(names)
        return [f"{self.name}:{n}" for n in wanted]

    def source_views(self) -> list[str]:
        return [s.name if isinstance(s, FeatureView) else s for s in self.sources if not isinstance(s, RequestSource)]

    def request_fields(self) -> list[Field]:
        return [f for s in self.sources if isinstance(s, RequestSource) for f in s.schema]

    def validate(self) -> OnDemandFeatureView:
        validate_name(self.name, "on-demand feature view name")
        if not isinstance(self.sources, list | tuple) or not self.sources:
            raise InvalidInput(
                f"on-demand feature view {self.name!r}: sources must list feature views or request sources",
                field="sources",
            )
        for s in self.sources:
            if isinstance(s, FeatureView | RequestSource):
                s.validate()
            elif isinstance(s, str):
                validate_name(s, "feature view name")
            else:
                raise InvalidInput(
                    f"on-demand feature view {self.name!r}: a source must be a FeatureView, RequestSource or view name",
                    field="sources",
                )
        if not isinstance(self.schema, list | tuple) or not self.schema:
            raise InvalidInput(
                f"on-demand feature view {self.name!r}: schema must list at least one Field", field="schema"
            )
        for f in self.schema:
            if not isinstance(f, Field):
                raise InvalidInput(
                    f"on-demand feature view {self.name!r}: schema entries must be Field objects", field="schema"
                )
            f.validate()
        if not callable(self.udf):
            raise InvalidInput(f"on-demand feature view {self.name!r}: udf must be a function", field="udf")
        if self.mode not in {"pandas", "arrow"}:
            raise InvalidInput(f"on-demand feature view {self.name!r}: mode must be 'pandas' or 'arrow'", field="mode")
        _text(self.owner, "owner")
        _text(self.description, "description")
        _tags(self.tags)
        return self

    def to_spec(self) -> dict[str, Any]:
        self.validate()
        return {
            "kind": self.kind,
            "name": self.name,
            "sources": [
                s.to_spec()
                if isinstance(s, RequestSource)
                else {"feature_view": s.name if isinstance(s, FeatureView) else s}
                for s in self.sources
            ],
            "schema": [f.to_spec() for f in self.schema],
            "mode": self.mode,
            "function": _function_spec(self.udf),
            "owner": _text(self.owner, "owner"),
            "description": _text(self.description, "description"),
            "tags": _tags(self.tags),
        }


def on_demand_feature_view(
    *,
    sources: list[FeatureView | RequestSource | str],
    schema: list[Field],
    mode: str = "pandas",
    name: str | None = None,
    owner: str = "",
    description: str = "",
    tags: dict[str, str] | None = None,
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """Decorator form: the function becomes an :class:`OnDemandFeatureView` you can still call."""

    def mark(fn: Callable[[Any], Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name=name or fn.__name__,
            sources=sources,
            schema=schema,
            udf=fn,
            mode=mode,
            owner=owner,
            description=description or (inspect.getdoc(fn) or ""),
            tags=tags,
        )

    return mark


def _flatten(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list | tuple):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


class FeatureService(Definition):
    """A named set of features a model uses: views (all their features), ``view[["a"]]``
    projections, or ``"view:feature"`` references. Referenced as ``features:/<name>``."""

    kind = "feature_service"
    _params = ("name", "features", "owner", "description", "tags")

    def __init__(
        self,
        name: str,
        features: list[Any],
        owner: str = "",
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.features = features
        self.owner = owner
        self.description = description
        self.tags = tags

    def spec_features(self) -> list[str]:
        refs: list[str] = []
        for item in _flatten(self.features or []):
            if isinstance(item, FeatureView | OnDemandFeatureView):
                refs.extend(item.features)
            elif isinstance(item, str):
                refs.append(item)
            else:
                raise InvalidInput(
                    f"feature service {self.name!r}: features must be feature views, view[[...]] or "
                    "'view:feature' strings",
                    field="features",
                )
        return list(dict.fromkeys(refs))

    def validate(self) -> FeatureService:
        validate_name(self.name, "feature service name")
        if not isinstance(self.features, list | tuple) or not self.features:
            raise InvalidInput(f"feature service {self.name!r}: features must not be empty", field="features")
        from plinth.features.naming import split_ref

        for ref in self.spec_features():
            split_ref(ref)
        _text(self.owner, "owner")
        _text(self.description, "description")
        _tags(self.tags)
        return self

    def to_spec(self) -> dict[str, Any]:
        self.validate()
        return {
            "kind": self.kind,
            "name": self.name,
            "features": self.spec_features(),
            "owner": _text(self.owner, "owner"),
            "description": _text(self.description, "description"),
            "tags": _tags(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureService:
        return cls(
            spec["name"],
            list(spec["features"]),
            spec.get("owner", ""),
            spec.get("description", ""),
            spec.get("tags") or None,
        )


KINDS: dict[str, type[Definition]] = {
    "entity": Entity,
    "feature_view": FeatureView,
    "on_demand_feature_view": OnDemandFeatureView,
    "feature_service": FeatureService,
}
