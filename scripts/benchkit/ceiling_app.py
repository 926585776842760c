"""The yardstick of Authly's static documents in scripts/bench_core.py (``ceiling``): a
bare QuartTrio app that answers, on the same paths, the same bytes (body, Content-Type,
Cache-Control) Authly answered for them, with nothing else in the way: no services,
no middleware, no cache lookup. What Authly reaches of its req/s is the share of the
stack's ceiling it keeps (DESIGN.md §1).

Served by bench_core (core_server.Ceiling) with the worker Authly uses:
``python -m hypercorn -k trio -w 1 benchkit.ceiling_app:app``, scripts/ on PYTHONPATH and
BENCH_CEILING_FILE naming a JSON file ``{path: {"body", "content_type",
"cache_control"}}``. GET /health answers ``{"status": "ok"}`` (the readiness probe).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from quart import Response
from quart_trio import QuartTrio

app = QuartTrio("authly-bench-ceiling", static_folder=None)


def _add(path: str, doc: dict[str, Any]) -> None:
    body = doc["body"].encode("utf-8")
    content_type = doc["content_type"]
    headers = {"Cache-Control": doc["cache_control"]} if doc.get("cache_control") else {}

    async def view() -> Response:
        return Response(body, status=200, content_type=content_type, headers=headers)

    app.add_url_rule(path, endpoint=path, view_func=view, methods=["GET"])


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


for _path, _doc in json.loads(Path(os.environ["BENCH_CEILING_FILE"]).read_text()).items():
    _add(_path, _doc)
