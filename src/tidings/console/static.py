"""/static: the console's assets, served by Tidings itself (nothing is fetched from the
internet at run time, there is no build step).

Their URLs carry the Tidings version (`?v=…`, `pages.static_url`), so a browser may keep
them a day and an upgrade still reaches it at once; ETag/Last-Modified answer revalidations.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope as AsgiScope

DIRECTORY = Path(__file__).parent / "static"
MAX_AGE = 86_400


class Assets(StaticFiles):
    async def get_response(self, path: str, scope: AsgiScope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def assets() -> Assets:
    return Assets(directory=DIRECTORY)
