"""I/O models and operations of the artifacts area."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from plinth.core.ops import Operation


class ArtifactInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner: str
    name: str
    sha256: str
    size: int
    media_type: str
    created_at: datetime
    created_by: str


API = "/api/v1/artifacts"
LIST_ARTIFACTS = Operation("GET", API, list[ArtifactInfo])
GET_ARTIFACT = Operation("GET", f"{API}/info", ArtifactInfo)
DELETE_ARTIFACT = Operation("DELETE", API, None, 204)
# Streaming routes: the body is the bytes themselves, not JSON.
CONTENT = f"{API}/content"
UPLOAD_ARTIFACT = Operation("PUT", CONTENT, ArtifactInfo, 201)
DOWNLOAD_ARTIFACT = Operation("GET", CONTENT)
