"""Webhook delivery throughput: queue N deliveries (the outbox rows an activity burst writes),
then time one delivery round of the panel's worker code sending them, signed and
SSRF-checked, to an HTTP receiver on loopback (allowed explicitly).

The database is a fresh SQLite file; with `--postgres URL` an empty PostgreSQL database
instead. Usage: python bench/webhook_delivery.py [--deliveries 500] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import select

from stellarstack.panel.context import build_context
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.migrate import upgrade
from stellarstack.panel.db.models import Webhook, WebhookDelivery
from stellarstack.panel.services import webhooks
from stellarstack.panel.settings import PanelSettings


class _Receiver(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--postgres", help="URL of an empty PostgreSQL database")
    args = parser.parse_args()

    receiver = _Receiver(("127.0.0.1", 0), _Handler)
    port = receiver.server_address[1]
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as scratch:
        settings = PanelSettings(
            environment="production",
            secret_key=secrets.token_hex(32),
            database_url=args.postgres or f"sqlite:///{scratch}/panel.db",
            data_dir=Path(scratch),
            webhook_allowed=[f"127.0.0.1:{port}"],
        )
        context = build_context(settings)
        upgrade(context.engine)
        with transaction(context.sessions) as db:
            hook = Webhook(url=f"http://127.0.0.1:{port}/hook", secret="s" * 40, events=["*"])
            db.add(hook)
            db.flush()
            started = time.perf_counter()
            for _ in range(args.deliveries):
                payload = webhooks.ping_payload(
                    hook,
                    actor={"user_id": None, "api_key_id": None, "ip": None},
                    at=context.clock(),
                )
                webhooks.enqueue(db, context, hook, payload)
        queued = time.perf_counter() - started
        started = time.perf_counter()
        made = asyncio.run(webhooks.deliver_due(context))
        sent = time.perf_counter() - started
        with transaction(context.sessions) as db:
            statuses = Counter(db.scalars(select(WebhookDelivery.status)).all())
        context.engine.dispose()
    receiver.shutdown()
    database = "postgresql" if args.postgres else "sqlite"
    print(f"{database}: queued {args.deliveries} in {queued:.2f} s")
    print(f"{database}: {made} attempts in {sent:.2f} s = {made / sent:.0f}/s; {dict(statuses)}")


if __name__ == "__main__":
    main()
