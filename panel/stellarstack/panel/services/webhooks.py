"""Webhooks: the outbox (a delivery row per matching webhook, written in the transaction of the
activity it reports) and the delivery of due rows.

Delivery is at least once. A worker claims due rows by pushing their `next_attempt_at` past a
lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several panel replicas never claim the same
row; SQLite has a single writer), sends without holding any database lock, and writes the
outcome in a second transaction. A panel that dies while sending leaves the row pending; it is
sent again when the lease runs out, by this or another replica.

Every attempt resolves the host once, checks every address against the SSRF policy and
connects to exactly the checked address (Host header and TLS SNI keep the name), so a DNS
answer that changes after the check reaches nothing new. Redirects are never followed: a 3xx is
a failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from stellarstack.api.netpolicy import (
    AddressPolicy,
    DestinationRefusedError,
    check_resolved,
    literal_address,
    parse_destination,
)
from stellarstack.panel import webhookformat
from stellarstack.panel.context import PanelContext
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import ActivityLog, Webhook, WebhookDelivery

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_RETRY_SECONDS = 6 * 3600
HISTORY_LIMIT = 50
CLAIM_BATCH = 20
USER_AGENT = "StellarStack-Webhooks/1"


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


def address_policy(context: PanelContext) -> AddressPolicy:
    return AddressPolicy(exceptions=webhookformat.parse_allowed(context.settings.webhook_allowed))


def check_url(context: PanelContext, url: str) -> None:
    """Refuse (DestinationRefusedError) a webhook URL whose host is, or resolves to, an address
    the policy does not allow. Checked again at every delivery."""
    destination = parse_destination(url)
    literal = literal_address(destination.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DestinationRefusedError(
                f"{destination.host} does not resolve: {exc.strerror}"
            ) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    check_resolved(addresses, destination.port, address_policy(context))


@dataclass(frozen=True, eq=False)
class WebhookOutbox:
    """Activity listener: queues one delivery per enabled webhook whose filter matches, in the
    same transaction as the activity row (so an event is queued exactly when it happened)."""

    context: PanelContext

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookOutbox) and other.context is self.context

    def __hash__(self) -> int:
        return id(self.context)

    def __call__(self, db: Session, entry: ActivityLog) -> None:
        scope: ColumnElement[bool] = Webhook.server_id.is_(None)
        if entry.server_id is not None:
            scope = or_(scope, Webhook.server_id == entry.server_id)
        hooks = db.scalars(select(Webhook).where(Webhook.enabled.is_(True), scope)).all()
        for hook in hooks:
            if webhookformat.event_matches(hook.events, entry.event):
                enqueue(db, self.context, hook, activity_payload(entry))


def activity_payload(entry: ActivityLog) -> dict[str, Any]:
    return webhookformat.event_payload(
        event_id=entry.id,
        event=entry.event,
        at=entry.at,
        actor={"user_id": entry.actor_id, "api_key_id": entry.api_key_id, "ip": entry.ip},
        target_type=entry.target_type,
        target_id=entry.target_id,
        server_id=entry.server_id,
        properties=entry.properties or {},
    )


def enqueue(
    db: Session, context: PanelContext, hook: Webhook, payload: dict[str, Any]
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        webhook_id=hook.id,
        event=payload["event"],
        body=webhookformat.render_body(hook.format.value, payload),
        next_attempt_at=context.clock(),
        created_at=context.clock(),
        history=[],
    )
    db.add(delivery)
    db.flush()
    return delivery


@dataclass(frozen=True)
class Claim:
    delivery_id: str
    url: str
    secret: str
    event: str
    body: str


@dataclass(frozen=True)
class Attempt:
    outcome: str
    """delivered, failure (may retry) or refused (the destination is not allowed)."""
    status_code: int | None
    error: str | None
    seconds: float


def claim_due(context: PanelContext, *, limit: int = CLAIM_BATCH) -> list[Claim]:
    """Take up to `limit` due deliveries of enabled webhooks for this worker."""
    now = context.clock()
    lease = timedelta(seconds=max(60.0, 3 * context.settings.webhook_timeout_seconds))
    with transaction(context.sessions) as db:
        rows = db.execute(
            select(WebhookDelivery, Webhook)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                Webhook.enabled.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        ).all()
        claims = []
        for delivery, hook in rows:
            delivery.next_attempt_at = now + lease
            claims.append(
                Claim(
                    delivery_id=delivery.id,
                    url=hook.url,
                    secret=hook.secret,
                    event=delivery.event,
                    body=delivery.body,
                )
            )
        return claims


async def resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefusedError(f"{host} does not resolve: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def delivery_client(timeout_seconds: float) -> httpx.AsyncClient:
    """One client per delivery round: its TLS context is built once (the costly part). No
    keep-alive: connections go to pinned addresses, and a pooled one, keyed by address only,
    could carry a request for one host name over a TLS session checked for another."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=timeout_seconds,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def send(
    claim: Claim,
    *,
    client: httpx.AsyncClient,
    policy: AddressPolicy,
    timestamp: int,
    resolver: Resolver = resolve,
) -> Attempt:
    """One attempt: POST the signed body to the checked address; never follows redirects."""
    started = time.monotonic()

    def took() -> float:
        return time.monotonic() - started

    try:
        destination = parse_destination(claim.url)
        literal = literal_address(destination.host)
        addresses = (
            [str(literal)]
            if literal is not None
            else await resolver(destination.host, destination.port)
        )
        address = check_resolved(addresses, destination.port, policy)
    except DestinationRefusedError as exc:
        return Attempt("refused", None, f"destination refused: {exc}", took())
    shown = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    default_port = 443 if destination.scheme == "https" else 80
    host_header = (
        destination.host
        if destination.port == default_port
        else f"{destination.host}:{destination.port}"
    )
    body = claim.body.encode()
    headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhookformat.EVENT_HEADER: claim.event,
        webhookformat.DELIVERY_HEADER: claim.delivery_id,
        **webhookformat.signature_headers(claim.secret, timestamp, body),
    }
    extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
    try:
        response = await client.post(
            f"{destination.scheme}://{shown}:{destination.port}{destination.path_and_query}",
            content=body,
            headers=headers,
            extensions=extensions,
        )
    except httpx.HTTPError as exc:
        return Attempt("failure", None, f"{type(exc).__name__}: {exc}"[:500], took())
    if 200 <= response.status_code < 300:
        return Attempt("delivered", response.status_code, None, took())
    if 300 <= response.status_code < 400:
        error = f"redirect {response.status_code} not followed (webhooks never follow redirects)"
    else:
        error = f"the receiver answered {response.status_code}"
    return Attempt("failure", response.status_code, error, took())


def record_attempts(context: PanelContext, attempts: list[tuple[Claim, Attempt]]) -> list[str]:
    """Write a round's attempts (one transaction); returns each outcome for the metrics."""
    with transaction(context.sessions) as db:
        return [_record(db, context, claim, attempt) for claim, attempt in attempts]


def _record(db: Session, context: PanelContext, claim: Claim, attempt: Attempt) -> str:
    """Write the attempt into the delivery's history and decide what comes next: delivered,
    retry, failed (out of attempts) or refused (the destination is not allowed)."""
    now = context.clock()
    settings = context.settings
    delivery = db.get(WebhookDelivery, claim.delivery_id, with_for_update=True)
    if delivery is None or delivery.status != "pending":
        return "gone"
    delivery.attempts += 1
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    entry: dict[str, object] = {
        "attempt": delivery.attempts,
        "at": now.isoformat(),
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": round(attempt.seconds * 1000, 1),
    }
    # A new list, so the JSON column is seen as changed.
    delivery.history = [*(delivery.history or []), entry][-HISTORY_LIMIT:]
    if attempt.outcome == "delivered":
        delivery.status = "delivered"
        delivery.delivered_at = now
        return "delivered"
    if attempt.outcome == "refused" or delivery.attempts >= settings.webhook_max_attempts:
        delivery.status = "failed"
        return "refused" if attempt.outcome == "refused" else "failed"
    delivery.next_attempt_at = now + webhookformat.retry_delay(
        delivery.attempts,
        base_seconds=settings.webhook_retry_base_seconds,
        cap_seconds=MAX_RETRY_SECONDS,
        jitter=random.random(),
    )
    return "retry"


async def deliver_due(context: PanelContext, *, resolver: Resolver = resolve) -> int:
    """Send every due delivery once (in batches); returns how many attempts were made."""
    policy = address_policy(context)
    made = 0
    while True:
        claims = await asyncio.to_thread(claim_due, context)
        if not claims:
            return made
        timestamp = int(context.clock().timestamp())
        async with delivery_client(context.settings.webhook_timeout_seconds) as client:
            # A claimed batch goes out concurrently: one slow receiver delays it by at most
            # the timeout, not by the timeout times the batch.
            attempts = await asyncio.gather(
                *(
                    send(c, client=client, policy=policy, timestamp=timestamp, resolver=resolver)
                    for c in claims
                )
            )
        outcomes = await asyncio.to_thread(
            record_attempts, context, list(zip(claims, attempts, strict=True))
        )
        for attempt, outcome in zip(attempts, outcomes, strict=True):
            context.metrics.webhook_deliveries.labels(outcome).inc()
            context.metrics.webhook_delivery_seconds.observe(attempt.seconds)
        made += len(claims)


def redeliver(db: Session, context: PanelContext, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new delivery of the same body (the old one keeps its history)."""
    again = WebhookDelivery(
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        body=delivery.body,
        next_attempt_at=context.clock(),
        created_at=context.clock(),
        history=[],
    )
    db.add(again)
    db.flush()
    return again


def ping_payload(hook: Webhook, *, actor: dict[str, str | None], at: datetime) -> dict[str, Any]:
    return webhookformat.event_payload(
        event_id=secrets.token_hex(16),
        event="webhook.test",
        at=at,
        actor=actor,
        target_type="webhook",
        target_id=hook.id,
        server_id=hook.server_id,
        properties={"message": "This is a test delivery from StellarStack."},
    )


@contextlib.asynccontextmanager
async def delivery_worker(context: PanelContext) -> AsyncIterator[None]:
    """Background task: deliver due webhooks every `webhook_poll_seconds` while the panel runs."""
    stop = asyncio.Event()

    async def run() -> None:
        while not stop.is_set():
            try:
                await deliver_due(context)
            except Exception:  # a database hiccup must not end deliveries for good
                log.exception("webhook delivery round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=context.settings.webhook_poll_seconds)

    task = asyncio.create_task(run(), name="webhook-delivery")
    try:
        yield
    finally:
        stop.set()
        await task
