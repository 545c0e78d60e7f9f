"""The ``sentsim`` command line: serve, encode, fit-whitening, fit-flow, eval-sts, explain, ….

One module per command group; each registers its commands on the one Typer ``app``
(``app.cli.base``). Flags override ``SENTSIM_*`` environment variables and ``.env``, which
override the defaults of ``app.core.config.Settings``.
"""

from __future__ import annotations

from app.cli import encode, evaluate, generate, serve, train  # noqa: F401 (registers commands)
from app.cli.base import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point (``sentsim``)."""
    app()
