"""`/metrics` and the per-request counters (route = URL rule, never the raw path)."""

from __future__ import annotations

import time

from quart import Blueprint, Quart, Response, current_app, g, request

from authly.metrics import CONTENT_TYPE, Metrics

bp = Blueprint("metrics", __name__)

METRICS_KEY = "authly_metrics"


def app_metrics() -> Metrics:
    return current_app.extensions[METRICS_KEY]  # type: ignore[no-any-return]


@bp.get("/metrics")
async def metrics() -> Response:
    return Response(app_metrics().render(), status=200, content_type=CONTENT_TYPE)


def install_request_metrics(app: Quart, metrics: Metrics) -> None:
    app.extensions[METRICS_KEY] = metrics

    @app.before_request
    async def _start_timer() -> None:
        g.authly_started = time.perf_counter()

    @app.after_request
    async def _observe(response: Response) -> Response:
        started = getattr(g, "authly_started", None)
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        method = request.method if request.method in _METHODS else "OTHER"
        metrics.http_requests.labels(rule, method, str(response.status_code)).inc()
        if started is not None:
            metrics.http_latency.labels(rule, method).observe(time.perf_counter() - started)
        return response


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
