"""Sources of an ingest, opened as one stream of Arrow record batches.

Files (CSV, Parquet, JSON lines, Arrow IPC) and folders of them, pandas and polars
DataFrames, Arrow tables, batches and readers, and anything that speaks the Arrow C
stream protocol. Files are sniffed before they are read, so that a file which is not
what its name says is refused with a message saying what it looks like. CSV and JSON
lines are parsed by DuckDB (parallel, streaming): a malformed row stops the ingest with
an error naming the file and the line, or, with ``on_bad_lines="quarantine"``, is set
aside with its line number and text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from plinth.core.errors import InvalidInput

__all__ = ["FORMATS", "OpenSource", "detect_format", "open_source"]

FORMATS = ("csv", "tsv", "parquet", "jsonl", "arrow")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".ipc": "arrow",
    ".feather": "arrow",
}
_SNIFF_BYTES = 8192
BATCH_ROWS = 131_072

# Delta Lake type -> DuckDB type, to parse an appended CSV as the table expects it.
_DUCKDB_TYPES = {
    "long": "BIGINT",
    "integer": "INTEGER",
    "short": "SMALLINT",
    "byte": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB",
}


@dataclass
class OpenSource:
    """An opened source: the batches, what it was, and the rows set aside (CSV only)."""

    reader: pa.RecordBatchReader
    description: str
    errors: list[BaseException] = field(default_factory=list)  # raised while streaming
    _rejects: Callable[[], pa.Table | None] = lambda: None
    _close: Callable[[], None] = lambda: None

    _closed: bool = False
    _rejected: pa.Table | None = None

    def rejected_rows(self) -> pa.Table | None:
        """Bad rows met while reading (after the reader is consumed), or None."""
        return self._rejected if self._closed else self._rejects()

    def close(self) -> None:
        """Release the reader; rows set aside stay available from :meth:`rejected_rows`."""
        if self._closed:
            return
        try:
            self._rejected = self._rejects()
        except Exception:  # the read failed: there is no version to quarantine rows for
            self._rejected = None
        self._closed = True
        self._close()


def _split_ext(name: str) -> tuple[str, bool]:
    lower = name.lower()
    gz = lower.endswith(".gz")
    if gz:
        lower = lower[:-3]
    return os.path.splitext(lower)[1], gz


def detect_format(name: str) -> str:
    ext, _ = _split_ext(name)
    fmt = _EXTENSIONS.get(ext)
    if fmt is None:
        raise InvalidInput(
            f"cannot tell the format of {name!r} from its extension; pass format= one of "
            f"{', '.join(FORMATS)}",
            field="format",
        )
    return fmt


def _looks_like(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "Parquet"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "Arrow IPC"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if b"\x00" in head:
        return "binary data"
    stripped = head.lstrip()
    if stripped.startswith((b"{", b"[")):
        return "JSON"
    return "text"


_FORMAT_NAMES = {
    "csv": "CSV",
    "tsv": "TSV",
    "parquet": "Parquet",
    "jsonl": "JSON lines",
    "arrow": "Arrow IPC",
}


def _check_content(path: Path, fmt: str, shown: str) -> None:
    """Refuse a file whose bytes are not the format its name (or ``format=``) says."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            if fmt == "parquet":
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 4))
                tail = fh.read(4)
    except OSError as exc:
        raise InvalidInput(f"cannot read {shown}: {exc.strerror or exc}", field="source") from None
    if not head:
        raise InvalidInput(f"{shown} is empty", field="source")
    looks = _looks_like(head)
    _, gz = _split_ext(path.name if shown.endswith(path.name) else shown)
    want = _FORMAT_NAMES[fmt]
    if fmt == "parquet":
        if looks != "Parquet" or tail != b"PAR1":
            raise InvalidInput(
                f"{shown} is not a Parquet file: it looks like {looks}", field="source", file=shown
            )
    elif fmt == "arrow":
        if looks != "Arrow IPC":
            raise InvalidInput(
                f"{shown} is not an Arrow IPC file: it looks like {looks}",
                field="source",
                file=shown,
            )
    elif looks == "gzip-compressed data" and gz:
        return  # DuckDB reads .csv.gz and .jsonl.gz itself
    elif looks not in {"text", "JSON"} or (fmt == "jsonl" and looks != "JSON"):
        raise InvalidInput(
            f"{shown} is not a {want} file: it looks like {looks}", field="source", file=shown
        )
    elif fmt in {"csv", "tsv"} and looks == "JSON":
        raise InvalidInput(
            f"{shown} is not a {want} file: it looks like JSON", field="source", file=shown
        )


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )
    if not files:
        raise InvalidInput(f"folder {folder} has no data files", field="source")
    return files


def open_source(
    source: Any,
    *,
    format: str | None = None,
    display_name: str | None = None,
    on_bad_lines: str = "error",
    table_types: dict[str, str] | None = None,
) -> OpenSource:
    """Open ``source`` as a stream of record batches.

    ``display_name`` is how errors name a file (an upload's original name rather than the
    server's spool file); ``table_types`` (column -> Delta type) makes an appended CSV
    parse its columns as the table stores them.
    """
    if on_bad_lines not in {"error", "quarantine"}:
        raise InvalidInput("on_bad_lines must be 'error' or 'quarantine'", field="on_bad_lines")
    if format is not None and format not in FORMATS:
        raise InvalidInput(f"format {format!r} is not one of {', '.join(FORMATS)}", field="format")
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise InvalidInput(f"{path} does not exist", field="source")
        if path.is_dir():
            files = _folder_files(path)
            fmts = {format or detect_format(f.name) for f in files}
            if len(fmts) > 1:
                raise InvalidInput(
                    f"folder {path} mixes formats ({', '.join(sorted(fmts))}); ingest one "
                    "format at a time",
                    field="source",
                )
            fmt = fmts.pop()
            shown = {str(f): str(f) for f in files}
            desc = f"folder {path} ({len(files)} {fmt} files)"
        else:
            shown_name = display_name or str(path)
            fmt = format or detect_format(display_name or path.name)
            files = [path]
            shown = {str(path): shown_name}
            desc = f"{fmt} file {shown_name}"
        for f in files:
            _check_content(f, fmt, shown[str(f)])
        if fmt == "tsv" or fmt == "csv":
            return _open_csv(
                files,
                shown,
                desc,
                on_bad_lines,
                table_types,
                delimiter="\t" if fmt == "tsv" else ",",
            )
        if on_bad_lines == "quarantine":
            raise InvalidInput(
                "on_bad_lines='quarantine' applies to CSV sources only", field="on_bad_lines"
            )
        if fmt == "jsonl":
            return _open_jsonl(files, shown, desc)
        if fmt == "parquet":
            return _open_parquet(files, shown, desc)
        return _open_arrow(files, shown, desc)
    if on_bad_lines == "quarantine":
        raise InvalidInput(
            "on_bad_lines='quarantine' applies to CSV sources only", field="on_bad_lines"
        )
    reader, desc = _in_memory(source)
    return OpenSource(reader=reader, description=desc)


# --- in-memory sources ------------------------------------------------------------------
def _in_memory(source: Any) -> tuple[pa.RecordBatchReader, str]:
    module = type(source).__module__.split(".")[0]
    if module == "pandas" and type(source).__name__ == "DataFrame":
        table = pa.Table.from_pandas(source, preserve_index=None)
        return _strip(table).to_reader(), f"pandas DataFrame ({len(source)} rows)"
    if module == "polars" and type(source).__name__ == "DataFrame":
        return source.to_arrow().to_reader(), f"polars DataFrame ({source.height} rows)"
    if isinstance(source, pa.Table):
        return source.to_reader(), f"Arrow table ({source.num_rows} rows)"
    if isinstance(source, pa.RecordBatch):
        return pa.RecordBatchReader.from_batches(
            source.schema, [source]
        ), f"Arrow record batch ({source.num_rows} rows)"
    if isinstance(source, pa.RecordBatchReader):
        return source, "Arrow record batch stream"
    if hasattr(source, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(source), f"Arrow stream ({type(source).__name__})"
    if isinstance(source, list) and all(isinstance(r, dict) for r in source) and source:
        return pa.Table.from_pylist(source).to_reader(), f"list of {len(source)} records"
    raise InvalidInput(
        f"cannot ingest a {type(source).__name__}: pass a file or folder path, a pandas or polars "
        "DataFrame, an Arrow table, record batch or RecordBatchReader",
        field="source",
    )


def _strip(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


# --- files read by DuckDB -----------------------------------------------------------------
def _duckdb() -> Any:
    import duckdb

    con = duckdb.connect(config={"preserve_insertion_order": True})
    con.execute("SET enable_progress_bar = false")  # else DuckDB draws it on stdout
    return con


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_FILE = re.compile(r"^\s*file = (.*)$", re.MULTILINE)
_JSON_ERR = re.compile(
    r'in file "(?P<file>[^"]+)", at byte \d+ in (?:line|record/value) (?P<line>\d+): (?P<why>.*)'
)


def _reason(message: str) -> str:
    """The lines of a DuckDB CSV error that say what is wrong, without the sniffer's dump."""
    keep, original = [], ""
    for line in message.splitlines()[1:]:
        if line.startswith("Original Line:"):
            original = line.strip()
            continue
        if not line.strip() or line.startswith(("Column ", "This type", "Possible", "*", "  ")):
            if keep:
                break
            continue
        keep.append(line.strip())
    if original:
        keep.append(original)
    return "; ".join(keep)


def translate_read_error(exc: BaseException, shown: dict[str, str]) -> InvalidInput:
    """A DuckDB read error as InvalidInput naming the file and the line."""
    message = str(exc)
    m = _CSV_LINE.search(message)
    if m:
        fm = _CSV_FILE.search(message)
        file = fm.group(1).strip() if fm else "?"
        file = shown.get(file, file)
        line = int(m.group(1))
        return InvalidInput(
            f"{file}: line {line}: {_reason(message) or message.splitlines()[0]} "
            "(nothing was written; on_bad_lines='quarantine' sets bad rows aside)",
            field="source",
            file=file,
            line=line,
        )
    j = _JSON_ERR.search(message)
    if j:
        file = shown.get(j["file"], j["file"])
        return InvalidInput(
            f"{file}: line {j['line']}: malformed JSON: {j['why'].strip()} (nothing was written)",
            field="source",
            file=file,
            line=int(j["line"]),
        )
    first = message.split("\n", 1)[0]
    for spooled, name in shown.items():
        first = first.replace(spooled, name)
    return InvalidInput(f"cannot read the source: {first}", field="source")


def _guarded(
    reader: pa.RecordBatchReader, errors: list[BaseException], shown: dict[str, str]
) -> pa.RecordBatchReader:
    """Pass batches through; a read error is translated and remembered for the caller."""

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except Exception as exc:  # duckdb.Error and ArrowInvalid: the source is bad
            err = translate_read_error(exc, shown)
            errors.append(err)
            raise err from None

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _run_reader(
    con: Any, sql: str, params: dict[str, Any], shown: dict[str, str]
) -> pa.RecordBatchReader:
    try:
        return con.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)
    except Exception as exc:
        if type(exc).__module__.startswith(("duckdb", "_duckdb")):
            raise translate_read_error(exc, shown) from None
        raise


def _open_csv(
    files: list[Path],
    shown: dict[str, str],
    desc: str,
    on_bad_lines: str,
    table_types: dict[str, str] | None,
    delimiter: str | None,
) -> OpenSource:
    con = _duckdb()
    paths = [str(f) for f in files]
    options = ["header=true", "skip=0"]
    params: dict[str, Any] = {"files": paths}
    if delimiter:
        options.append("delim=$delim")
        params["delim"] = delimiter
    if table_types:
        try:
            header = _csv_header(con, paths, options, params, shown)
        except InvalidInput as exc:
            if "sniffing" not in exc.message:
                raise
            raise _first_ragged_line(files, shown, delimiter) or exc from None
        types = {
            c: _DUCKDB_TYPES[t]
            for c, t in table_types.items()
            if c in header and t in _DUCKDB_TYPES
        }
        if types:
            options.append("types=$types")
            params["types"] = types
    if on_bad_lines == "quarantine":
        options.append("store_rejects=true")
    sql = f"SELECT * FROM read_csv($files, {', '.join(options)})"
    errors: list[BaseException] = []
    try:
        reader = _guarded(_run_reader(con, sql, params, shown), errors, shown)
    except InvalidInput as exc:
        if "sniffing" not in exc.message:
            raise
        raise _first_ragged_line(files, shown, delimiter) or exc from None

    def rejects() -> pa.Table | None:
        if on_bad_lines != "quarantine":
            return None
        rows = con.sql(
            "SELECT s.file_path AS file, e.line AS line, "
            "string_agg(e.error_message, '; ' ORDER BY e.column_idx) AS error, "
            "any_value(e.csv_line) AS raw "
            "FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id) "
            "GROUP BY s.file_path, e.line ORDER BY s.file_path, e.line"
        ).to_arrow_table()
        if rows.num_rows == 0:
            return None
        files_col = [shown.get(f, f) for f in rows.column("file").to_pylist()]
        return rows.set_column(0, "file", pa.array(files_col, pa.string()))

    return OpenSource(
        reader=reader, description=desc, errors=errors, _rejects=rejects, _close=con.close
    )


def _first_ragged_line(files: list[Path], shown: dict[str, str], delimiter: str) -> InvalidInput | None:
    """When DuckDB cannot settle on a dialect, find the first line whose field count differs
    from the header's, so that the error can still name the file and the line."""
    import csv

    for path in files:
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            rows = csv.reader(fh, delimiter=delimiter)
            header = next(rows, None)
            if header is None:
                continue
            for row in rows:
                if row and len(row) != len(header):
                    file = shown.get(str(path), str(path))
                    line = rows.line_num
                    return InvalidInput(
                        f"{file}: line {line}: expected {len(header)} fields like the header, found "
                        f"{len(row)} (nothing was written; on_bad_lines='quarantine' sets bad rows aside)",
                        field="source",
                        file=file,
                        line=line,
                    )
    return None


def _csv_header(
    con: Any, paths: list[str], options: list[str], params: dict[str, Any], shown: dict[str, str]
) -> set[str]:
    try:
        described = con.sql(
            f"DESCRIBE SELECT * FROM read_csv($files, {', '.join(options)})", params=params
        ).fetchall()
    except Exception as exc:
        raise translate_read_error(exc, shown) from None
    return {row[0] for row in described}


def _open_jsonl(files: list[Path], shown: dict[str, str], desc: str) -> OpenSource:
    con = _duckdb()
    sql = "SELECT * FROM read_json($files, format='newline_delimited')"
    errors: list[BaseException] = []
    reader = _guarded(
        _run_reader(con, sql, {"files": [str(f) for f in files]}, shown), errors, shown
    )
    return OpenSource(reader=reader, description=desc, errors=errors, _close=con.close)


def _open_parquet(files: list[Path], shown: dict[str, str], desc: str) -> OpenSource:
    import pyarrow.dataset as pads

    try:
        dataset = pads.dataset([str(f) for f in files], format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise translate_read_error(exc, shown) from None
    errors: list[BaseException] = []
    reader = _guarded(dataset.scanner(batch_size=BATCH_ROWS).to_reader(), errors, shown)
    return OpenSource(reader=reader, description=desc, errors=errors)


def _open_arrow(files: list[Path], shown: dict[str, str], desc: str) -> OpenSource:
    handles = [f.open("rb") for f in files]
    try:
        readers = [_ipc_reader(h) for h in handles]
    except pa.ArrowInvalid as exc:
        for h in handles:
            h.close()
        raise InvalidInput(
            f"{shown[str(files[0])]}: not a readable Arrow IPC stream: {exc}", field="source"
        ) from None
    schema = readers[0].schema

    def batches() -> Iterator[pa.RecordBatch]:
        for r in readers:
            if r.schema != schema:
                raise InvalidInput(
                    "the Arrow files of the folder have different schemas", field="source"
                )
            yield from r

    def close() -> None:
        for h in handles:
            h.close()

    errors: list[BaseException] = []
    reader = _guarded(pa.RecordBatchReader.from_batches(schema, batches()), errors, shown)
    return OpenSource(reader=reader, description=desc, errors=errors, _close=close)


def _ipc_reader(handle: Any) -> pa.RecordBatchReader:
    head = handle.read(6)
    handle.seek(0)
    if head == b"ARROW1":
        file_reader = pa.ipc.open_file(handle)
        return pa.RecordBatchReader.from_batches(
            file_reader.schema,
            (file_reader.get_batch(i) for i in range(file_reader.num_record_batches)),
        )
    return pa.ipc.open_stream(handle)
