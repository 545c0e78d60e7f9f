"""The framework-free façade: composes encoders, transforms and metrics for the CLI and API."""

from __future__ import annotations
