"""GET /playground: a page that drives the public API from a browser — similarity heatmap and
2-D projection, a pair's WRD alignment and attributions, collection search, paraphrases.

The page and its two assets ship in ``app/api/playground/``; nothing loads from elsewhere, and
the Content-Security-Policy below keeps every request the page makes on the server's origin.
The page itself needs no API key: it asks for one when the API answers 401.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter, Response

from app.core.errors import NotFoundError

router = APIRouter(tags=["playground"])

ASSETS = Path(__file__).resolve().parents[1] / "playground"

#: Served files and their media types; nothing else under the folder is reachable.
MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@functools.cache
def _read(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def _asset(name: str) -> Response:
    return Response(
        _read(name),
        media_type=MEDIA_TYPES[name],
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )


@router.get("/playground", include_in_schema=False)
async def playground() -> Response:
    """The playground page (HTML)."""
    return _asset("index.html")


@router.get("/playground/{asset}", include_in_schema=False)
async def playground_asset(asset: str) -> Response:
    """The page's script and style sheet.

    Raises:
        NotFoundError: Any other name (404).
    """
    if asset not in MEDIA_TYPES or asset == "index.html":
        raise NotFoundError(f"no playground asset {asset!r}; the page is at /playground")
    return _asset(asset)
