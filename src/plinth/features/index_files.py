"""Per-view indexes kept on disk, so that a fresh process does not rebuild them.

An index (:mod:`plinth.features.index`) is derived data: a function of the source's version
and the view's layout (join keys, timestamp fields, feature dtypes). It is written under
``PLINTH_HOME/features/indexes/<slot>/<version>/`` as uncompressed Arrow IPC files (read
back memory-mapped: no copy, no parse) and a ``meta.json``:

* ``<slot>`` names the source URI and the layout; ``<version>`` names the source's version
  (a dataset version's id, a Delta commit, the Parquet files' paths, sizes and mtimes). A
  new source version therefore never finds an old index; writing its index removes the
  slot's older versions.
* A version folder appears whole or not at all (written aside, then renamed). One that does
  not read back, or whose ``meta.json`` names another key, is ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["drop_indexes", "index_root", "load_index", "save_index"]

FORMAT = 1


def index_root(settings: Any) -> Path:
    return Path(settings.home) / "features" / "indexes"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _paths(root: Path, uri: str, key: tuple[Any, ...]) -> tuple[Path, Path]:
    slot = root / _digest([uri, key[1]])
    return slot, slot / _digest([FORMAT, key])


def _write_arrow(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_arrow(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def save_index(root: Path, uri: str, key: tuple[Any, ...], index: Any) -> Path | None:
    """Write ``index`` for ``key``; drop the slot's other versions. Returns the folder, or None
    when it could not be written (a full or read-only disk costs a rebuild later, nothing else)."""
    slot, final = _paths(root, uri, key)
    try:
        slot.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=slot))
    except OSError:
        return None
    try:
        _write_arrow(tmp / "data.arrow", index.data)
        p = index.probe
        meta: dict[str, Any] = {
            "format": FORMAT,
            "key": json.loads(json.dumps(key, default=str)),
            "source_ref": index.source_ref,
            "built_seconds": index.built_seconds,
            "rows": index.rows is not None,
            "probe": None,
        }
        if p is not None:
            arrays = {"packed": pa.array(p.packed)}
            if index.rows is not None:
                arrays["rows"] = pa.array(index.rows)
            _write_arrow(tmp / "probe.arrow", pa.table(arrays))
            if p.unique is not None:
                _write_arrow(tmp / "unique.arrow", pa.table({"unique": p.unique}))
            meta["probe"] = {"width": p.width, "tmin": p.tmin, "kmin": p.kmin, "kmax": p.kmax, "step": p.step}
        elif index.rows is not None:
            _write_arrow(tmp / "probe.arrow", pa.table({"rows": pa.array(index.rows)}))
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.rename(tmp, final)
        except OSError:  # another process wrote the same version first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    for other in slot.iterdir():  # older versions of the source (and parts of a crashed write)
        if other != final:
            shutil.rmtree(other, ignore_errors=True)
    return final


def _column(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return arr.to_numpy()  # type: ignore[no-any-return]


def load_index(root: Path, uri: str, key: tuple[Any, ...]) -> Any:
    """The index written for ``key``, memory-mapped; None when there is none (or it is unreadable)."""
    from plinth.features.index import Probe, ViewIndex

    _slot, folder = _paths(root, uri, key)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("key") != json.loads(json.dumps(key, default=str)):
            return None
        data = _read_arrow(folder / "data.arrow")
        extra = _read_arrow(folder / "probe.arrow") if (folder / "probe.arrow").exists() else None
        rows = _column(extra, "rows") if meta["rows"] and extra is not None else None
        probe = None
        if meta["probe"] is not None and extra is not None:
            unique = None
            if (folder / "unique.arrow").exists():
                unique = _read_arrow(folder / "unique.arrow").column("unique").combine_chunks()
            probe = Probe(_column(extra, "packed"), unique=unique, **meta["probe"])
        if rows is not None and len(rows) and int(rows.max()) >= data.num_rows:
            return None
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None
    return ViewIndex(data, meta["source_ref"], float(meta["built_seconds"]), probe, rows)


def drop_indexes(root: Path) -> None:
    """Forget every index written under ``root``."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(root)
