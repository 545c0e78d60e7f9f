"""Route modules, one per concern."""

from __future__ import annotations
