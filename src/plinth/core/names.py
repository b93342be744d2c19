"""Validation of the names users give things: resource names and artifact names.

Artifact names are metadata, never filesystem paths: a name is checked here, stored in
the metadata database, and the bytes live under their sha256 in the blob store. The
rules still refuse every shape that MLflow's artifact path-traversal CVEs used
(CVE-2023-6909, CVE-2024-1483, CVE-2024-3848, CVE-2024-1558): ``..`` segments, the
same percent-encoded, absolute paths, drive letters, backslashes, URI fragments and
queries, and control bytes, so that a name can never become a path anywhere downstream.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from plinth.core.errors import InvalidInput

__all__ = ["validate_artifact_name", "validate_name"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_ARTIFACT_NAME = 1024


def validate_name(value: object, what: str = "name") -> str:
    """A resource name: 1-100 characters, letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not valid: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=what,
        )
    return value


def validate_artifact_name(name: object) -> str:
    """Return ``name`` normalised (NFC) if it is a safe relative name, else raise InvalidInput."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("artifact name must be a non-empty string", field="name")
    name = unicodedata.normalize("NFC", name)

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"artifact name {name!r} is refused: {why}", field="name")

    if len(name.encode()) > MAX_ARTIFACT_NAME:
        raise refuse(f"longer than {MAX_ARTIFACT_NAME} bytes")
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in name):
        raise refuse("it contains control or invisible characters")
    if "\ufffd" in name:  # what a lenient decoder made of bytes that were not UTF-8
        raise refuse("it contains U+FFFD, the mark of bytes that were not valid UTF-8")
    # Decode repeatedly so that %2e%2e, %252e%252e and friends are seen as what they mean.
    decoded, seen = name, [name]  # in order, so that the reason given is always the same
    while True:
        try:
            nxt = unquote(decoded, errors="strict")
        except UnicodeDecodeError:  # e.g. %c0%ae, the overlong encoding of "."
            raise refuse("it holds percent-escapes that are not UTF-8") from None
        if nxt in seen:
            break
        if any(unicodedata.category(c) in {"Cc", "Cf"} for c in nxt):
            raise refuse("it decodes to control characters")
        seen.append(nxt)
        decoded = nxt
    # Look-alikes that compatibility normalisation turns into "." or "/" (U+FF0E, U+2025,
    # U+FF0F...) are judged by what they become, as a later NFKC step somewhere would.
    forms = seen + [unicodedata.normalize("NFKC", form) for form in seen]
    for form in dict.fromkeys(forms):
        if "\\" in form:
            raise refuse("backslashes are not allowed")
        if form.startswith(("/", "~")):
            raise refuse("it must be relative (no leading '/' or '~')")
        if re.match(r"^[A-Za-z]:", form) or "://" in form or form.lower().startswith("file:"):
            raise refuse("it looks like a drive, URL or scheme, not a name")
        if "#" in form or "?" in form:
            raise refuse("'#' and '?' (URI fragments and queries) are not allowed")
        segments = form.split("/")
        if any(seg in {"", ".", ".."} for seg in segments):
            raise refuse("empty, '.' or '..' path segments are not allowed")
        if any(seg.strip() != seg or _only_dots(seg) for seg in segments):
            raise refuse("segments may not start or end with spaces or be only dots")
    return name


def _only_dots(segment: str) -> bool:
    """``...``, ``. .`` and ``..;x`` (a path parameter some servers drop) are all dots."""
    head = segment.split(";", 1)[0]
    return segment.strip(". ") == "" or (head != "" and head.strip(". ") == "")
