"""GET /playground and its assets (the page itself is driven in tests/browser/)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.api.routes.playground import ASSETS, MEDIA_TYPES
from app.core.config import Settings
from app.main import create_app


def test_page_and_assets_are_served_with_a_same_origin_policy(client: TestClient) -> None:
    page = client.get("/playground")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "script-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for name in ("playground.js", "playground.css"):
        asset = client.get(f"/playground/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"] == MEDIA_TYPES[name]
        assert asset.content == (ASSETS / name).read_bytes()


def test_only_the_pages_files_are_reachable(client: TestClient) -> None:
    for name in ("index.html", "..%2Fmain.py", "other.js", "%2e%2e"):
        response = client.get(f"/playground/{name}")
        assert response.status_code == 404, name
    assert "the page is at /playground" in client.get("/playground/other.js").json()["error"]


def test_the_page_loads_nothing_from_elsewhere() -> None:
    html = (ASSETS / "index.html").read_text(encoding="utf-8")
    script = (ASSETS / "playground.js").read_text(encoding="utf-8")
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == [
        "/playground/playground.css",
        "data:,",
        "/playground/playground.js",
    ]
    # The script's only URLs: the SVG namespace, and paths on this origin.
    assert re.findall(r"https?://[^\s\"'`]+", script) == ["http://www.w3.org/2000/svg"]
    assert "innerHTML" not in script  # user text goes in as textContent only


def test_the_page_needs_no_key_but_the_api_does(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_key": "secret"})
    with TestClient(create_app(keyed)) as client:
        assert client.get("/playground").status_code == 200
        assert client.get("/playground/playground.js").status_code == 200
        assert client.get("/info").status_code == 401
