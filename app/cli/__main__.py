"""``python -m app.cli``: the ``sentsim`` command line."""

from __future__ import annotations

from app.cli import main

main()
