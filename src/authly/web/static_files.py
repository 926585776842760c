"""The browser pages' static files, served from a fixed table read once.

Only the regular files that exist in ``web/static/`` when the module is imported can be
served; any other name is a 404 without touching the file system, so no crafted name
(overlong, NUL bytes, ``..``, encoded slashes, deep paths) can reach ``open``/``stat``
and turn into an OSError (a 500). Responses carry the caching headers Quart's
``send_from_directory`` gave them (public, ``SEND_FILE_MAX_AGE_DEFAULT``, Last-Modified,
ETag, conditional and range requests).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quart import Response, current_app, request
from werkzeug.exceptions import NotFound

DIRECTORY = Path(__file__).parent / "static"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    mimetype: str
    last_modified: datetime
    etag: str


def load(directory: Path) -> dict[str, StaticFile]:
    """Every regular file directly in ``directory`` (no subdirectories, no symlinks)."""
    files: dict[str, StaticFile] = {}
    for path in sorted(directory.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        body = path.read_bytes()
        files[path.name] = StaticFile(
            body=body,
            mimetype=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            last_modified=datetime.fromtimestamp(int(path.stat().st_mtime), UTC),
            etag=hashlib.sha256(body).hexdigest()[:32],
        )
    return files


FILES = load(DIRECTORY)


async def send(name: str) -> Response:
    """The file called ``name`` from the table; NotFound for anything else."""
    file = FILES.get(name)
    if file is None:
        raise NotFound()
    response = Response(file.body, mimetype=file.mimetype)
    response.last_modified = file.last_modified
    response.cache_control.public = True
    max_age = current_app.get_send_file_max_age(name)
    if max_age is not None:
        response.cache_control.max_age = max_age
        response.expires = datetime.now(UTC) + timedelta(seconds=max_age)
    response.set_etag(file.etag)
    await response.make_conditional(request, accept_ranges=True, complete_length=len(file.body))
    return response
