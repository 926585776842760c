"""The `authly` command: serve, check-config, admin.

Settings are built once here, from the environment plus flags; a bad value prints one
line naming the variable and exits with status 2.
"""

from authly.cli.main import main

__all__ = ["main"]
