"""The application factory: ``create_app(settings)`` builds a fresh app.

Importing this module reads nothing from the environment (tests and the CLI build
their own Settings); ``authly.app`` is the module for ``hypercorn -k trio authly.app``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import sniffio
from quart_trio import QuartTrio

from authly import lifecycle
from authly.config import Settings
from authly.core.logs import configure_logging
from authly.metrics import Metrics
from authly.web import (
    account,
    admin,
    admin_backends,  # noqa: F401  (adds the /backends routes to admin.bp)
    admin_initial_tokens,
    admin_keys,  # noqa: F401  (adds the /keys routes to admin.bp)
    admin_resources,  # noqa: F401  (adds the /resources routes to admin.bp)
    admin_users,
    auth,
    authorize,
    device,
    device_pages,
    health,
    logout,
    oauth,
    oidc,
    par,
    register,
    resource_metadata,
    status,
    users,
)
from authly.web import metrics as metrics_web
from authly.web.connection_close import shield_final_send
from authly.web.render import register_error_handlers

__all__ = ["AuthlyApp", "configure_logging", "create_app"]

TRIO_REQUIRED = (
    "authly: Authly runs on Trio; start hypercorn with the trio worker: "
    "hypercorn -k trio authly.app"
)


class AuthlyApp(QuartTrio):
    """QuartTrio that refuses, in one line, to run under an asyncio worker.

    It also shields the send that ends each HTTP response, so hypercorn closes or
    recycles the connection (``authly.web.connection_close``).
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            library = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            library = "unknown"
        if library != "trio":
            print(TRIO_REQUIRED, file=sys.stderr, flush=True)
            os._exit(2)
        if scope["type"] == "http":
            # Otherwise quart-trio cancels hypercorn's close step: see connection_close.
            send = shield_final_send(send)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> AuthlyApp:
    """Build the app; with no settings, read them from ``os.environ``.

    Raises:
        ConfigError: when a setting read from the environment is bad.
    """
    if settings is None:
        settings = Settings.from_env(os.environ)
    # No app-level /static route: the pages' one file is served by web/static_files.py.
    app = AuthlyApp("authly", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 1
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documented field order
    metrics = Metrics()
    for blueprint in (
        auth.bp,
        oauth.bp,
        authorize.bp,
        par.bp,
        register.bp,
        device.bp,
        device_pages.bp,
        admin.bp,
        admin_users.bp,
        admin_initial_tokens.bp,
        account.bp,
        users.bp,
        oidc.bp,
        resource_metadata.bp,
        logout.bp,
        health.bp,
        metrics_web.bp,
        status.bp,
    ):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    metrics_web.install_request_metrics(app, metrics)
    lifecycle.install(app, settings, metrics)
    return app
