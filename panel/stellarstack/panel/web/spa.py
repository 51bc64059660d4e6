"""The panel's web UI: a single-page app whose source is `panel/ui/` (React, TypeScript, Vite)
and whose build (`make ui`) lands in the `ui` folder beside this module, inside the package
and the wheel. The panel serves it itself; nothing is loaded from another host.

- Every address the app routes in the browser (`CLIENT_SECTIONS`: `/`, `/server/<id>/console`,
  ...) answers with the app's `index.html`, so deep links and reloads work. Before the first
  admin exists they lead to `/setup`, like the other pages.
- The built files under `/assets/` carry a content hash in their names, so browsers may keep
  them for a year; `index.html` is never cached (it names the current hashes).
- The Content-Security-Policy allows only this panel's own scripts, no inline script at all.
  The terminal emulator (xterm.js) writes its colour rules into `<style>` elements, so those
  are allowed with a nonce made for each response (the app stamps it on the `<style>`
  elements it creates, see `panel/ui/src/csp.ts`), and inline `style` attributes (xterm's
  24-bit colours) are allowed; style attributes cannot load anything or select elements.
"""

from __future__ import annotations

import gzip
import re
import secrets
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from stellarstack.panel.api.deps import SessionDep
from stellarstack.panel.services import accounts

router = APIRouter(include_in_schema=False)

CLIENT_SECTIONS: Final = ("/servers", "/server", "/account", "/admin", "/invitations")
"""Top-level sections whose addresses (the section and everything below it) belong to the
app, besides `/`. A new section of the app adds its prefix here; pages inside a section need
nothing on this side."""

NONCE_PLACEHOLDER: Final = "__STELLARSTACK_CSP_NONCE__"
"""What `panel/ui/vite.config.ts` sets as `html.cspNonce`; replaced in every response."""

ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
ASSET_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".json": "application/json",
}
COMPRESSIBLE: Final = {".js", ".css", ".svg", ".json"}
ASSET_CACHE = "public, max-age=31536000, immutable"


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; "
        f"style-src 'self'; style-src-elem 'self' 'nonce-{nonce}'; "
        "style-src-attr 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def page_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        # Invitation links carry their token in the address: never pass it on.
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def build_dir() -> Path:
    """Where `make ui` puts the built app (inside the installed package)."""
    return Path(str(files("stellarstack.panel.web").joinpath("ui")))


NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StellarStack</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>The web UI is not built</h1>
<p>This panel was installed without its web UI. Build it with <code>make ui</code> (it needs
Node.js 18 or newer and npm), then reload this page. The API works meanwhile:
<a href="/docs">/docs</a>.</p></main></body></html>
"""


def index_document(nonce: str) -> str | None:
    """The app's `index.html` with this response's nonce; None when the app is not built."""
    index = build_dir() / "index.html"
    try:
        text = index.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return text.replace(NONCE_PLACEHOLDER, nonce)


def app_page(db: SessionDep) -> Response:
    if accounts.setup_required(db):
        return RedirectResponse("/setup", status_code=303)
    nonce = secrets.token_urlsafe(18)
    document = index_document(nonce)
    if document is None:
        return HTMLResponse(NOT_BUILT, status_code=503, headers=page_headers(nonce))
    return HTMLResponse(document, headers=page_headers(nonce))


router.add_api_route("/", app_page, methods=["GET"])
for _section in CLIENT_SECTIONS:
    router.add_api_route(_section, app_page, methods=["GET"])
    router.add_api_route(_section + "/{rest:path}", app_page, methods=["GET"])


@cache
def compressed(path: Path) -> bytes:
    """A built asset, gzipped once. Asset names carry their content's hash, so what is cached
    under a name never changes."""
    return gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)


@router.get("/assets/{name}")
def asset(name: str, request: Request) -> Response:
    suffix = Path(name).suffix
    media_type = ASSET_TYPES.get(suffix)
    path = build_dir() / "assets" / name
    if media_type is None or not ASSET_NAME.match(name) or not path.is_file():
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    headers = {
        "Cache-Control": ASSET_CACHE,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    accepted = request.headers.get("accept-encoding", "")
    if suffix in COMPRESSIBLE and "gzip" in accepted.lower():
        headers["Content-Encoding"] = "gzip"
        return Response(compressed(path), media_type=media_type, headers=headers)
    return Response(path.read_bytes(), media_type=media_type, headers=headers)
