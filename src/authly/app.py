"""The ASGI entry point for ``hypercorn -k trio authly.app``.

``app`` reads the process environment when this module is imported: that import is
the edge where such a worker gets its settings. Everything else (the CLI, tests) builds
apps with ``authly.factory.create_app(settings)``, re-exported here.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from authly.config import Settings
from authly.errors import ConfigError
from authly.factory import AuthlyApp, configure_logging, create_app

__all__ = ["AuthlyApp", "EnvApp", "app", "create_app"]


class EnvApp:
    """The ASGI app for ``hypercorn -k trio authly.app``.

    Settings are read from the environment when the module is imported, so a bad value
    stops the worker at once with one line (exit status 2); the real app is built on
    the first ASGI event (lifespan start-up), in the worker that serves it.
    """

    def __init__(self) -> None:
        try:
            self._settings = Settings.from_env(os.environ)
        except ConfigError as exc:
            print(f"authly: configuration error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        self._app: AuthlyApp | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            try:
                configure_logging(self._settings)
            except ConfigError as exc:  # the log file could not be opened after all
                print(f"authly: configuration error: {exc}", file=sys.stderr, flush=True)
                os._exit(2)
            self._app = create_app(self._settings)
        await self._app(scope, receive, send)


app = EnvApp()
