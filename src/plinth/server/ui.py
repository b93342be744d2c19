"""Web UI: server-rendered pages (Jinja2 + htmx). Filled in by the UI work."""

from __future__ import annotations

from fastapi import FastAPI


def mount_ui(app: FastAPI) -> None:
    return None
