"""The JSON response class of every route: it never fails on text that is not valid Unicode."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse


class SafeJSONResponse(JSONResponse):
    """Starlette's ``JSONResponse``, except that a lone surrogate (which UTF-8 cannot encode,
    e.g. in documents stored before such text was refused at the edge) is written as its JSON
    escape ``\\udXXX`` instead of failing the whole response with a 500."""

    def render(self, content: Any) -> bytes:
        """``content`` as compact UTF-8 JSON."""
        text = json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        )
        return text.encode("utf-8", "backslashreplace")
