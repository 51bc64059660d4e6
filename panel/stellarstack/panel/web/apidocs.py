"""The API documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), served entirely by
the panel: the viewers' files come from the `fastapi-offline` package, their start-up scripts
and pages are ours. Nothing is loaded from another host, so the pages work on a machine
without internet, and a Content-Security-Policy says so to the browser.

Swagger UI's "Try it out" runs as the logged-in user: the browser sends the session cookie,
and our start-up script adds the CSRF header that cookie-authenticated writes need (read from
the CSRF cookie, as the panel's own pages do). An API key entered under "Authorize" is sent
as a bearer token instead, which the panel prefers.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from stellarstack.panel.api.deps import CSRF_COOKIE, CSRF_HEADER

router = APIRouter(include_in_schema=False)

ASSETS_URL = "/docs/assets"
OPENAPI_URL = "/openapi.json"

# Swagger UI and ReDoc set element styles from script and ReDoc injects <style> elements
# (styled-components), hence 'unsafe-inline' for styles only; scripts are this panel's files
# alone. ReDoc builds its search index in a Worker made from a blob: URL. Icons are data: URLs.
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

_VENDOR_PACKAGE = "fastapi_offline"
_VENDOR_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_OWN_FILES = {
    "swagger-init.js": "text/javascript; charset=utf-8",
    "redoc-init.js": "text/javascript; charset=utf-8",
    "apidocs.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def docs_asset(name: str) -> Asset | None:
    """A file the documentation pages load, read once; None for any other name."""
    if name in _VENDOR_FILES:
        source = files(_VENDOR_PACKAGE).joinpath("static", name)
        media_type = _VENDOR_FILES[name]
    elif name in _OWN_FILES:
        source = files("stellarstack.panel.web").joinpath("assets", name)
        media_type = _OWN_FILES[name]
    else:
        return None
    body = source.read_bytes()
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@cache
def _page(template: str, title: str) -> str:
    text = files("stellarstack.panel.web").joinpath("assets", template).read_text("utf-8")
    values = {
        "title": title,
        "assets": ASSETS_URL,
        "openapi_url": OPENAPI_URL,
        "csrf_cookie": CSRF_COOKIE,
        "csrf_header": CSRF_HEADER,
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return text


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    title = f"{request.app.title} (Swagger UI)"
    return HTMLResponse(_page("swagger.html", title), headers=DOCS_HEADERS)


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    title = f"{request.app.title} (ReDoc)"
    return HTMLResponse(_page("redoc.html", title), headers=DOCS_HEADERS)


@router.get(ASSETS_URL + "/{name}")
def asset(name: str, request: Request) -> Response:
    found = docs_asset(name)
    if found is None:
        return Response(status_code=404)
    # Revalidated on every load (the files change when the package is upgraded), answered
    # with 304 while unchanged: Swagger UI's script alone is 1.5 MB.
    headers = {"ETag": found.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    sent = request.headers.get("if-none-match", "")
    if found.etag in (tag.strip().removeprefix("W/") for tag in sent.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
