"""Settings read at the edges: allowed hosts and their default."""

from __future__ import annotations

import pytest

from app.core.config import Settings


@pytest.mark.parametrize(
    ("value", "hosts"),
    [
        ("a.example, *.b.example", ["a.example", "*.b.example"]),
        ('["a.example", "localhost"]', ["a.example", "localhost"]),
        ("*", ["*"]),
    ],
)
def test_allowed_hosts_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, hosts: list[str]
) -> None:
    monkeypatch.setenv("SENTSIM_ALLOWED_HOSTS", value)
    assert Settings().trusted_hosts() == hosts


@pytest.mark.parametrize(
    ("host", "loopback_only"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("myhost", False),
    ],
)
def test_default_allowed_hosts_follow_the_bind_address(host: str, loopback_only: bool) -> None:
    hosts = Settings(host=host).trusted_hosts()
    assert (hosts != ["*"]) is loopback_only
    if loopback_only:
        assert "localhost" in hosts and "127.0.0.1" in hosts
