"""Shared foundations: settings, the domain error tree, type aliases and data readers."""

from __future__ import annotations
