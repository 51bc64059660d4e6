"""TOTP two-factor authentication through the real app on SQLite and PostgreSQL: enrolment,
the login's second step, replayed codes, recovery codes, brute force, password changes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select

from stellarstack.panel.db.models import ActivityLog
from stellarstack.panel.security import totp
from support.panel import ADMIN_EMAIL, PASSWORD, Panel, PanelClient

SESSION_COOKIE = "stellarstack_session"


@dataclass
class Enrolled:
    secret: str
    recovery_codes: list[str]


def code_now(panel: Panel, secret: str, *, steps: int = 0) -> str:
    return totp.code_at(secret, totp.step_of(panel.clock().timestamp()) + steps)


def wrong_code(panel: Panel, secret: str) -> str:
    """A code that no step within the drift window has (so the guess is surely wrong)."""
    valid = {code_now(panel, secret, steps=s) for s in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(10)) if c not in valid)


def next_step(panel: Panel) -> None:
    """Move the clock into the next 30-second step, so a fresh code exists."""
    panel.clock.advance(seconds=totp.STEP_SECONDS)


def enable_two_factor(panel: Panel, client: PanelClient) -> Enrolled:
    enrolment = client.post("/api/account/two-factor/enrol", json={"password": PASSWORD})
    assert enrolment.status_code == 200, enrolment.text
    secret = enrolment.json()["secret"]
    enabled = client.post("/api/account/two-factor/enable", json={"code": code_now(panel, secret)})
    assert enabled.status_code == 200, enabled.text
    # The code that enabled 2FA is used up; logins in the same step need the next one.
    next_step(panel)
    return Enrolled(secret=secret, recovery_codes=enabled.json()["recovery_codes"])


def pending_login(panel: Panel, email: str = ADMIN_EMAIL) -> PanelClient:
    client = panel.client()
    assert client.login(email)["status"] == "two_factor_required"
    return client


def test_enrolment_needs_the_password_and_a_valid_code(panel: Panel) -> None:
    admin = panel.setup_admin()
    wrong = admin.post("/api/account/two-factor/enrol", json={"password": "not my password"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "body.password"
    enrolment = admin.post("/api/account/two-factor/enrol", json={"password": PASSWORD}).json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/StellarStack")
    assert f"secret={enrolment['secret']}" in enrolment["otpauth_uri"]
    status = admin.get("/api/account/two-factor").json()
    assert status == {"enabled": False, "enrolling": True, "recovery_codes_left": 0}
    # Not on yet: logging in still takes only the password.
    assert panel.login(ADMIN_EMAIL) is not None

    secret = enrolment["secret"]
    bad = admin.post(
        "/api/account/two-factor/enable", json={"code": code_now(panel, secret, steps=5)}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "body.code"
    enabled = admin.post("/api/account/two-factor/enable", json={"code": code_now(panel, secret)})
    assert enabled.status_code == 200
    codes = enabled.json()["recovery_codes"]
    assert len(set(codes)) == 10
    status = admin.get("/api/account/two-factor").json()
    assert status == {"enabled": True, "enrolling": False, "recovery_codes_left": 10}
    assert admin.get("/api/account").json()["two_factor_enabled"] is True
    again = admin.post("/api/account/two-factor/enrol", json={"password": PASSWORD})
    assert again.status_code == 409


def test_pending_session_grants_nothing_but_the_second_step(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    client = pending_login(panel)
    for response in (
        client.get("/api/account"),
        client.get("/api/account/sessions"),
        client.get("/api/admin/users"),
        client.post("/api/account/api-keys", json={"name": "k", "scopes": ["*"]}),
        client.post("/api/account/two-factor/disable", json={"password": PASSWORD}),
    ):
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthenticated"

    pending_token = client.raw.cookies[SESSION_COOKIE]
    done = client.post("/api/auth/login/two-factor", json={"code": code_now(panel, enabled.secret)})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "ok"
    assert done.json()["user"]["email"] == ADMIN_EMAIL
    full_token = client.raw.cookies[SESSION_COOKIE]
    assert full_token != pending_token
    client.csrf = done.json()["csrf_token"]
    assert client.get("/api/account").status_code == 200

    # The pending token was rotated away: it opens nothing, not even the second step again.
    replayed = panel.client()
    replayed.raw.cookies.set(SESSION_COOKIE, pending_token)
    replayed.csrf = client.csrf
    assert replayed.get("/api/account").status_code == 401
    next_step(panel)
    again = replayed.post(
        "/api/auth/login/two-factor", json={"code": code_now(panel, enabled.secret)}
    )
    assert again.status_code == 401


def test_a_code_is_accepted_once_and_older_codes_never(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    previous = code_now(panel, enabled.secret, steps=-1)
    current = code_now(panel, enabled.secret)
    first = pending_login(panel)
    assert first.post("/api/auth/login/two-factor", json={"code": current}).status_code == 200

    # The same code again, within its 30 seconds: refused.
    second = pending_login(panel)
    replay = second.post("/api/auth/login/two-factor", json={"code": current})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_code"
    # The previous step's code is still inside the drift window but older: refused too.
    assert second.post("/api/auth/login/two-factor", json={"code": previous}).status_code == 401
    # A new step brings a new code, which works.
    next_step(panel)
    fresh = second.post(
        "/api/auth/login/two-factor", json={"code": code_now(panel, enabled.secret)}
    )
    assert fresh.status_code == 200


def test_recovery_code_works_once(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    code = enabled.recovery_codes[3]
    first = pending_login(panel)
    used = first.post("/api/auth/login/two-factor", json={"recovery_code": code.upper()})
    assert used.status_code == 200, used.text
    second = pending_login(panel)
    again = second.post("/api/auth/login/two-factor", json={"recovery_code": code})
    assert again.status_code == 401
    assert admin.get("/api/account/two-factor").json()["recovery_codes_left"] == 9
    other = second.post(
        "/api/auth/login/two-factor", json={"recovery_code": enabled.recovery_codes[4]}
    )
    assert other.status_code == 200


def test_second_step_needs_exactly_one_kind_of_code(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    client = pending_login(panel)
    neither = client.post("/api/auth/login/two-factor", json={})
    assert neither.status_code == 422
    assert neither.json()["error"]["field"] == "body.code"
    both = client.post(
        "/api/auth/login/two-factor",
        json={"code": code_now(panel, enabled.secret), "recovery_code": enabled.recovery_codes[0]},
    )
    assert both.status_code == 422
    # A full session owes no second step.
    assert admin.post("/api/auth/login/two-factor", json={"code": "123456"}).status_code == 409


def test_two_factor_brute_force_is_stopped_per_account(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    limit = panel.context.settings.login_attempts_per_account
    right = code_now(panel, enabled.secret)
    wrong = wrong_code(panel, enabled.secret)
    client = pending_login(panel)
    for _ in range(limit):
        response = client.post("/api/auth/login/two-factor", json={"code": wrong})
        assert response.status_code == 401
    blocked = client.post("/api/auth/login/two-factor", json={"code": right})
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"]
    # Knowing the password does not reset the count: a new pending session is blocked too.
    fresh = pending_login(panel)
    assert fresh.post("/api/auth/login/two-factor", json={"code": right}).status_code == 429
    assert (
        fresh.post(
            "/api/auth/login/two-factor", json={"recovery_code": enabled.recovery_codes[0]}
        ).status_code
        == 429
    )
    panel.clock.advance(seconds=panel.context.settings.login_window_seconds + 1)
    late = pending_login(panel)
    ok = late.post("/api/auth/login/two-factor", json={"code": code_now(panel, enabled.secret)})
    assert ok.status_code == 200


def test_two_factor_brute_force_is_stopped_per_address(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    settings = panel.context.settings
    # Failed password logins of other accounts from the same address count as well.
    stranger = panel.client()
    for index in range(settings.login_attempts_per_ip - 1):
        response = stranger.raw.post(
            "/api/auth/login", json={"email": f"ghost{index}@example.com", "password": "x"}
        )
        assert response.status_code == 401
    client = pending_login(panel)
    guess = wrong_code(panel, enabled.secret)
    wrong = client.post("/api/auth/login/two-factor", json={"code": guess})
    assert wrong.status_code == 401
    blocked = client.post(
        "/api/auth/login/two-factor", json={"code": code_now(panel, enabled.secret)}
    )
    assert blocked.status_code == 429
    assert "ip" in blocked.json()["error"]["message"]


def test_disable_needs_password_and_code(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    no_code = admin.post("/api/account/two-factor/disable", json={"password": PASSWORD})
    assert no_code.status_code == 422
    wrong_password = admin.post(
        "/api/account/two-factor/disable",
        json={"password": "wrong password", "code": code_now(panel, enabled.secret)},
    )
    assert wrong_password.status_code == 422
    assert wrong_password.json()["error"]["field"] == "body.password"
    wrong_code = admin.post(
        "/api/account/two-factor/disable",
        json={"password": PASSWORD, "recovery_code": "aaaa-bbbb-cccc-dddd"},
    )
    assert wrong_code.status_code == 422
    assert wrong_code.json()["error"]["field"] == "body.recovery_code"
    off = admin.post(
        "/api/account/two-factor/disable",
        json={"password": PASSWORD, "code": code_now(panel, enabled.secret)},
    )
    assert off.status_code == 204, off.text
    assert admin.get("/api/account/two-factor").json() == {
        "enabled": False,
        "enrolling": False,
        "recovery_codes_left": 0,
    }
    assert panel.client().login(ADMIN_EMAIL)["status"] == "ok"


def test_regenerated_recovery_codes_replace_the_old_ones(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    refused = admin.post("/api/account/two-factor/recovery-codes", json={"password": "nope nope"})
    assert refused.status_code == 422
    fresh = admin.post("/api/account/two-factor/recovery-codes", json={"password": PASSWORD})
    assert fresh.status_code == 200
    new_codes = fresh.json()["recovery_codes"]
    assert not set(new_codes) & set(enabled.recovery_codes)
    client = pending_login(panel)
    old = client.post(
        "/api/auth/login/two-factor", json={"recovery_code": enabled.recovery_codes[0]}
    )
    assert old.status_code == 401
    assert (
        client.post("/api/auth/login/two-factor", json={"recovery_code": new_codes[0]}).status_code
        == 200
    )


def test_two_factor_changes_are_in_the_activity_log(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    client = pending_login(panel)
    guess = wrong_code(panel, enabled.secret)
    assert client.post("/api/auth/login/two-factor", json={"code": guess}).status_code == 401
    with panel.context.sessions() as db:
        events = set(db.scalars(select(ActivityLog.event)))
    assert {
        "account.two_factor.enrol",
        "account.two_factor.enable",
        "auth.login.password",
        "auth.login.two_factor.failed",
    } <= events


def test_password_change_needs_the_current_one_and_ends_other_sessions(panel: Panel) -> None:
    admin = panel.setup_admin()
    other = panel.login(ADMIN_EMAIL)
    new_password = "a brand new passphrase"
    wrong = admin.post(
        "/api/account/password",
        json={"current_password": "not it at all", "new_password": new_password},
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "body.current_password"
    weak = admin.post(
        "/api/account/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert weak.status_code == 422
    assert weak.json()["error"]["field"] == "body.new_password"
    assert other.get("/api/account").status_code == 200

    changed = admin.post(
        "/api/account/password", json={"current_password": PASSWORD, "new_password": new_password}
    )
    assert changed.status_code == 204, changed.text
    assert admin.get("/api/account").status_code == 200
    assert other.get("/api/account").status_code == 401
    old = panel.client().raw.post(
        "/api/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
    )
    assert old.status_code == 401
    assert panel.client().login(ADMIN_EMAIL, new_password)["status"] == "ok"


def test_wrong_current_passwords_are_rate_limited(panel: Panel) -> None:
    admin = panel.setup_admin()
    limit = panel.context.settings.login_attempts_per_account
    body = {"current_password": "guess guess guess", "new_password": "whatever it is now"}
    for _ in range(limit):
        assert admin.post("/api/account/password", json=body).status_code == 422
    blocked = admin.post("/api/account/password", json={**body, "current_password": PASSWORD})
    assert blocked.status_code == 429


def test_the_same_code_sent_twice_at_once_logs_in_once(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    code = code_now(panel, enabled.secret)
    clients = [pending_login(panel) for _ in range(4)]
    barrier = threading.Barrier(len(clients))

    def submit(client: PanelClient) -> int:
        barrier.wait(timeout=10)
        status: int = client.post("/api/auth/login/two-factor", json={"code": code}).status_code
        return status

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        statuses = sorted(pool.map(submit, clients))
    assert statuses == [200, 401, 401, 401]


def test_the_same_recovery_code_sent_twice_at_once_works_once(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    clients = [pending_login(panel) for _ in range(4)]
    barrier = threading.Barrier(len(clients))

    def submit(client: PanelClient) -> int:
        barrier.wait(timeout=10)
        body = {"recovery_code": enabled.recovery_codes[0]}
        status: int = client.post("/api/auth/login/two-factor", json=body).status_code
        return status

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        statuses = sorted(pool.map(submit, clients))
    assert statuses == [200, 401, 401, 401]


def test_pending_session_expires_after_ten_minutes_even_when_used(panel: Panel) -> None:
    admin = panel.setup_admin()
    enabled = enable_two_factor(panel, admin)
    client = pending_login(panel)
    panel.clock.advance(minutes=6)
    guess = wrong_code(panel, enabled.secret)
    assert client.post("/api/auth/login/two-factor", json={"code": guess}).status_code == 401
    panel.clock.advance(minutes=5)
    late = client.post("/api/auth/login/two-factor", json={"code": code_now(panel, enabled.secret)})
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "unauthenticated"
