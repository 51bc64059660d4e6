"""Webhooks: global ones (admins, every event) at `/api/admin/webhooks`, and a server's own
(its owner, or subusers with the `webhooks.*` nodes; only that server's events) at
`/api/servers/{server_id}/webhooks`. The secret is shown once, at creation and on rotation.

No `from __future__ import annotations` here: the routes are defined inside `_register` with
local `Annotated` dependency aliases, which FastAPI can only see when annotations are objects
rather than strings resolved against module globals."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stellarstack.api.netpolicy import DestinationRefusedError
from stellarstack.panel import webhookformat
from stellarstack.panel.api.deps import (
    ContextDep,
    Principal,
    ServerAccess,
    SessionDep,
    require_admin,
    require_permission,
)
from stellarstack.panel.api.errors import invalid, not_found
from stellarstack.panel.api.schemas import Page
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.models import Webhook, WebhookDelivery, WebhookFormat
from stellarstack.panel.services import webhooks as service


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2048, examples=["https://discord.com/api/webhooks/1/abc"]
    )
    events: list[str] = Field(
        default_factory=lambda: ["*"],
        max_length=webhookformat.MAX_PATTERNS,
        examples=[["server.power.*", "auth.denied"]],
        description="Event names, `prefix.*` patterns or `*`.",
    )
    format: WebhookFormat = WebhookFormat.JSON
    enabled: bool = True
    description: str = Field(default="", max_length=255, examples=["Alerts channel"])

    @field_validator("events")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        bad = webhookformat.invalid_patterns(value)
        if bad:
            raise ValueError(f"not an event name, `prefix.*` or `*`: {', '.join(map(repr, bad))}")
        return value


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[str] | None = Field(default=None, max_length=webhookformat.MAX_PATTERNS)
    format: WebhookFormat | None = None
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=255)

    @field_validator("events")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else WebhookCreate._patterns(value)


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    server_id: str | None
    url: str
    events: list[str]
    format: WebhookFormat
    enabled: bool
    description: str
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookPublic):
    secret: str = Field(description="The HMAC-SHA256 key; shown only now, keep it.")


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    history: list[dict[str, Any]] = Field(
        description="One entry per attempt: attempt, at, status_code, error, duration_ms."
    )
    created_at: datetime
    delivered_at: datetime | None
    body: str


@dataclass(frozen=True)
class WebhookScope:
    """Whose webhooks a request manages: the global ones (server_id None) or a server's."""

    principal: Principal
    server_id: str | None


def _admin(scope: str) -> Callable[..., WebhookScope]:
    check = require_admin(scope)

    def get(principal: Annotated[Principal, Depends(check)]) -> WebhookScope:
        return WebhookScope(principal=principal, server_id=None)

    return get


def _server(node: str) -> Callable[..., WebhookScope]:
    check = require_permission(node)

    def get(access: Annotated[ServerAccess, Depends(check)]) -> WebhookScope:
        return WebhookScope(principal=access.principal, server_id=access.server.id)

    return get


def _check_url(context: PanelContext, url: str) -> str:
    try:
        service.check_url(context, url)
    except DestinationRefusedError as exc:
        raise invalid("body.url", str(exc)) from exc
    return url.strip()


def _load(db: Session, scope: WebhookScope, webhook_id: str) -> Webhook:
    hook = db.get(Webhook, webhook_id)
    if hook is None or hook.server_id != scope.server_id:
        raise not_found("webhook")
    return hook


def _state(hook: Webhook) -> dict[str, Any]:
    return {
        "url": hook.url,
        "events": list(hook.events),
        "format": hook.format.value,
        "enabled": hook.enabled,
        "description": hook.description,
    }


def _with_secret(hook: Webhook) -> WebhookWithSecret:
    return WebhookWithSecret(**WebhookPublic.model_validate(hook).model_dump(), secret=hook.secret)


def _register(
    router: APIRouter,
    *,
    read: Callable[..., WebhookScope],
    create: Callable[..., WebhookScope],
    update: Callable[..., WebhookScope],
    delete: Callable[..., WebhookScope],
) -> None:
    reader = Annotated[WebhookScope, Depends(read)]
    creator = Annotated[WebhookScope, Depends(create)]
    updater = Annotated[WebhookScope, Depends(update)]
    deleter = Annotated[WebhookScope, Depends(delete)]

    def record(
        db: Session,
        context: PanelContext,
        scope: WebhookScope,
        event: str,
        hook: Webhook,
        properties: dict[str, Any],
    ) -> None:
        context.activity.record(
            db,
            event=event,
            actor=scope.principal.actor,
            target_type="webhook",
            target_id=hook.id,
            server_id=scope.server_id,
            properties=properties,
        )

    @router.get("", summary="List webhooks")
    def list_webhooks(
        scope: reader,
        db: SessionDep,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Page[WebhookPublic]:
        query = select(Webhook).where(
            Webhook.server_id.is_(None)
            if scope.server_id is None
            else Webhook.server_id == scope.server_id
        )
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(
            query.order_by(Webhook.created_at, Webhook.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        return Page(
            items=[WebhookPublic.model_validate(row) for row in rows],
            total=total,
            page=page,
            per_page=per_page,
        )

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        summary="Create a webhook (the response carries its secret, shown only once)",
    )
    def create_webhook(
        body: WebhookCreate, scope: creator, db: SessionDep, context: ContextDep
    ) -> WebhookWithSecret:
        url = _check_url(context, body.url)
        hook = Webhook(
            owner_id=scope.principal.user.id,
            server_id=scope.server_id,
            url=url,
            secret=service.new_secret(),
            events=list(dict.fromkeys(body.events)),
            format=body.format,
            enabled=body.enabled,
            description=body.description,
        )
        db.add(hook)
        db.flush()
        record(db, context, scope, "webhook.create", hook, {"after": _state(hook)})
        return _with_secret(hook)

    @router.get("/{webhook_id}", summary="Get a webhook")
    def get_webhook(webhook_id: str, scope: reader, db: SessionDep) -> WebhookPublic:
        return WebhookPublic.model_validate(_load(db, scope, webhook_id))

    @router.patch("/{webhook_id}", summary="Change a webhook")
    def update_webhook(
        webhook_id: str, body: WebhookUpdate, scope: updater, db: SessionDep, context: ContextDep
    ) -> WebhookPublic:
        hook = _load(db, scope, webhook_id)
        before = _state(hook)
        if body.url is not None:
            hook.url = _check_url(context, body.url)
        if body.events is not None:
            hook.events = list(dict.fromkeys(body.events))
        if body.format is not None:
            hook.format = body.format
        if body.enabled is not None:
            hook.enabled = body.enabled
        if body.description is not None:
            hook.description = body.description
        hook.updated_at = context.clock()
        db.flush()
        record(
            db, context, scope, "webhook.update", hook, {"before": before, "after": _state(hook)}
        )
        return WebhookPublic.model_validate(hook)

    @router.delete(
        "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a webhook"
    )
    def delete_webhook(
        webhook_id: str, scope: deleter, db: SessionDep, context: ContextDep
    ) -> None:
        hook = _load(db, scope, webhook_id)
        # Logged first: its own deliveries (if it matches webhook.delete) go with it.
        record(db, context, scope, "webhook.delete", hook, {"before": _state(hook)})
        db.delete(hook)

    @router.post(
        "/{webhook_id}/rotate-secret",
        summary="Replace the secret (the new one is shown only now; the old one stops working)",
    )
    def rotate_secret(
        webhook_id: str, scope: updater, db: SessionDep, context: ContextDep
    ) -> WebhookWithSecret:
        hook = _load(db, scope, webhook_id)
        hook.secret = service.new_secret()
        hook.updated_at = context.clock()
        db.flush()
        record(db, context, scope, "webhook.secret.rotate", hook, {})
        return _with_secret(hook)

    @router.post(
        "/{webhook_id}/test",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Queue a `webhook.test` event for this webhook alone",
    )
    def test_webhook(
        webhook_id: str, scope: updater, db: SessionDep, context: ContextDep
    ) -> DeliveryPublic:
        hook = _load(db, scope, webhook_id)
        actor = scope.principal.actor
        payload = service.ping_payload(
            hook,
            actor={"user_id": actor.user_id, "api_key_id": actor.api_key_id, "ip": actor.ip},
            at=context.clock(),
        )
        return DeliveryPublic.model_validate(service.enqueue(db, context, hook, payload))

    @router.get("/{webhook_id}/deliveries", summary="Delivery history, newest first")
    def list_deliveries(
        webhook_id: str,
        scope: reader,
        db: SessionDep,
        delivery_status: Annotated[
            str | None, Query(alias="status", pattern="^(pending|delivered|failed)$")
        ] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Page[DeliveryPublic]:
        hook = _load(db, scope, webhook_id)
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
        if delivery_status:
            query = query.where(WebhookDelivery.status == delivery_status)
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(
            query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        return Page(
            items=[DeliveryPublic.model_validate(row) for row in rows],
            total=total,
            page=page,
            per_page=per_page,
        )

    @router.post(
        "/{webhook_id}/deliveries/{delivery_id}/redeliver",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Send a delivery's body again, as a new delivery",
    )
    def redeliver(
        webhook_id: str, delivery_id: str, scope: updater, db: SessionDep, context: ContextDep
    ) -> DeliveryPublic:
        hook = _load(db, scope, webhook_id)
        delivery = db.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.webhook_id != hook.id:
            raise not_found("delivery")
        again = service.redeliver(db, context, delivery)
        record(
            db,
            context,
            scope,
            "webhook.redeliver",
            hook,
            {"delivery": delivery.id, "new": again.id},
        )
        return DeliveryPublic.model_validate(again)


admin_router = APIRouter(prefix="/api/admin/webhooks", tags=["admin: webhooks"])
_register(
    admin_router,
    read=_admin("admin:read"),
    create=_admin("admin:write"),
    update=_admin("admin:write"),
    delete=_admin("admin:write"),
)

router = APIRouter(prefix="/api/servers/{server_id}/webhooks", tags=["webhooks"])
_register(
    router,
    read=_server("webhooks.read"),
    create=_server("webhooks.create"),
    update=_server("webhooks.update"),
    delete=_server("webhooks.delete"),
)
