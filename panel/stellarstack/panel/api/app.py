"""The panel application: `create_app(context)`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from stellarstack.panel.api.bodylimit import install_body_limit
from stellarstack.panel.api.errors import ErrorResponse, install_error_handlers
from stellarstack.panel.api.observability import (
    ActivityCounter,
    install_denial_log,
    install_request_metrics,
)
from stellarstack.panel.api.openapi import install_openapi
from stellarstack.panel.api.routes import (
    account,
    admin_infrastructure,
    admin_users,
    auth,
    backups,
    blueprints,
    console,
    files,
    health,
    schedules,
    server_permissions,
    servers,
    subusers,
    two_factor,
)
from stellarstack.panel.api.routes.activity import router as activity_router
from stellarstack.panel.api.routes.metrics import router as metrics_router
from stellarstack.panel.api.routes.webhooks import admin_router as admin_webhooks_router
from stellarstack.panel.api.routes.webhooks import router as server_webhooks_router
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.migrate import upgrade
from stellarstack.panel.services.webhooks import WebhookOutbox
from stellarstack.panel.web import apidocs, pages, spa

BackgroundTask = Callable[[PanelContext], contextlib.AbstractAsyncContextManager[None]]


def create_app(
    context: PanelContext,
    *,
    migrate: bool = True,
    background: list[BackgroundTask] | None = None,
) -> FastAPI:
    """The panel API over `context`. With `migrate` the schema is brought up to date first;
    `background` tasks (webhook delivery, status polling) run while the app serves."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade(context.engine)
        async with contextlib.AsyncExitStack() as stack:
            # Registered first, so it runs last: after the background tasks stopped.
            stack.push_async_callback(context.backends.aclose_loop)
            for task in background or []:
                await stack.enter_async_context(task(context))
            yield

    app = FastAPI(
        title="StellarStack panel API",
        version="v1",
        description="Accounts, servers on Docker nodes and Kubernetes, consoles, files, "
        "backups, schedules, audit and webhooks. Authenticate with a browser session (cookie "
        "plus the X-CSRF-Token header on writes) or an API key (`Authorization: Bearer ...`). "
        "Every error body has the shape of `ErrorResponse`.\n\n"
        "In this page, *Try it out* runs as you once you have logged in at `/login` (the page "
        "sends the CSRF header itself). Or create an API key with "
        "`POST /api/account/api-keys` and enter it under *Authorize*.",
        lifespan=lifespan,
        # Served by `web.apidocs` from files inside the package, never from a CDN.
        docs_url=None,
        redoc_url=None,
        responses={
            401: {"model": ErrorResponse, "description": "not authenticated"},
            403: {"model": ErrorResponse, "description": "a permission or scope is missing"},
            404: {"model": ErrorResponse, "description": "not found, or not visible to you"},
            409: {"model": ErrorResponse, "description": "conflicts with the current state"},
            413: {"model": ErrorResponse, "description": "the body is too large"},
            422: {"model": ErrorResponse, "description": "invalid input; `field` names it"},
            429: {"model": ErrorResponse, "description": "rate limited; see Retry-After"},
            502: {"model": ErrorResponse, "description": "the node or cluster failed"},
            503: {"model": ErrorResponse, "description": "the node or cluster is unreachable"},
        },
    )
    app.state.context = context
    install_openapi(app, context.settings)
    install_error_handlers(app)
    install_denial_log(app, context)
    # A lambda, not the function itself: tests replace `context.clock` after building it.
    context.activity.clock = lambda: context.clock()
    context.activity.add_listener(ActivityCounter(context))
    context.activity.add_listener(WebhookOutbox(context))

    install_body_limit(app, context.settings.max_body_bytes)
    install_request_metrics(app, context)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(apidocs.router)
    app.include_router(metrics_router)
    app.include_router(activity_router)
    app.include_router(admin_webhooks_router)
    app.include_router(server_webhooks_router)
    app.include_router(auth.router)
    app.include_router(account.router)
    app.include_router(two_factor.router)
    app.include_router(admin_users.router)
    app.include_router(admin_infrastructure.router)
    app.include_router(blueprints.admin_router)
    app.include_router(blueprints.router)
    app.include_router(servers.router)
    app.include_router(servers.admin_router)
    app.include_router(subusers.router)
    app.include_router(subusers.invitations_router)
    app.include_router(console.router)
    app.include_router(files.router)
    app.include_router(backups.router)
    app.include_router(schedules.router)
    app.include_router(server_permissions.router)
    # Last: the web UI's pages (`/`, `/server/...`) and its built files.
    app.include_router(spa.router)
    return app
