"""The panel's own pages for what must work before anyone is logged in: first-run setup, login
(with the two-factor step), password reset and email verification. Everything after logging
in is the web UI (`stellarstack.panel.web.spa`), which these pages lead to.

Plain HTML forms, one small script that posts them to the JSON API (the same endpoints API
clients use), no inline scripts or styles: the Content-Security-Policy allows only this
panel's own files, so injected markup cannot run code.
"""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from stellarstack.panel.api.deps import SessionDep
from stellarstack.panel.services import accounts

router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    # Reset and verification links carry their token in the address: never pass it on.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ASSET_TYPES = {"auth.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


@cache
def asset(name: str) -> str:
    return files("stellarstack.panel.web").joinpath("assets", name).read_text(encoding="utf-8")


def page(title: str, body_file: str, *, page_id: str) -> HTMLResponse:
    document = (
        asset("layout.html")
        .replace("{{title}}", html.escape(title))
        .replace("{{page}}", html.escape(page_id))
        .replace("{{body}}", asset(body_file))
    )
    return HTMLResponse(document, headers=SECURITY_HEADERS)


@router.get("/setup")
def setup_page(db: SessionDep) -> Response:
    if not accounts.setup_required(db):
        return RedirectResponse("/login", status_code=303)
    return page("Set up StellarStack", "setup.html", page_id="setup")


@router.get("/login")
def login_page(db: SessionDep) -> Response:
    if accounts.setup_required(db):
        return RedirectResponse("/setup", status_code=303)
    return page("Log in to StellarStack", "login.html", page_id="login")


@router.get("/reset-password")
def reset_password_page() -> Response:
    return page("Choose a new password", "reset.html", page_id="reset")


@router.get("/verify-email")
def verify_email_page() -> Response:
    return page("Confirm your email address", "verify.html", page_id="verify")


@router.get("/static/{name}")
def static_asset(name: str) -> Response:
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        return Response(status_code=404)
    return Response(
        asset(name),
        media_type=media_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
