"""The operator's metrics bookkeeping: states by GameServer, error labels, the exposition."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stellarstack.api.lifecycle import Action, Step
from stellarstack.api.states import GameServerState
from stellarstack.operator.main import register
from stellarstack.operator.metrics import GameServerStates, Metrics, error_label
from stellarstack.operator.reconcile import GameServerReconciler, OperatorSettings

S = GameServerState


def scraped(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What a Prometheus scrape would read, parsed back from the text exposition."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def state_gauge(metrics: Metrics, state: GameServerState) -> float:
    return scraped(metrics)[("stellarstack_gameservers", (("state", state.value),))]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], {}),
        ([("record", "a", S.PENDING)], {S.PENDING: 1}),
        # A status change moves the server; it is never counted in two states.
        ([("record", "a", S.PENDING), ("record", "a", S.STOPPED)], {S.STOPPED: 1}),
        # Recording the same state again (every pass does) does not count it twice.
        ([("record", "a", S.RUNNING)] * 3, {S.RUNNING: 1}),
        (
            [("record", "a", S.RUNNING), ("record", "b", S.RUNNING), ("record", "c", S.ERROR)],
            {S.RUNNING: 2, S.ERROR: 1},
        ),
        # Deleted: gone from every state; forgetting twice or an unknown one is harmless.
        (
            [("record", "a", S.RUNNING), ("forget", "a", None), ("forget", "a", None)],
            {},
        ),
        ([("forget", "never-seen", None)], {}),
        # The same name in another namespace is another server.
        ([("record", "a", S.RUNNING), ("record", "a@other", S.RUNNING)], {S.RUNNING: 2}),
    ],
)
def test_states_count_each_gameserver_once(
    events: list[tuple[str, str, GameServerState | None]], expected: dict[GameServerState, int]
) -> None:
    states = GameServerStates()
    for op, key, state in events:
        name, _, namespace = key.partition("@")
        if op == "record":
            assert state is not None
            states.record(namespace or "games", name, state)
        else:
            states.forget(namespace or "games", name)
    counts = states.counts()
    assert set(counts) == set(GameServerState)  # every series exists, zero when empty
    assert {state: n for state, n in counts.items() if n} == expected


def test_a_restarted_operator_starts_empty_and_relearns_without_double_counting() -> None:
    # Before the restart: three servers known. The new process has its own Metrics; its
    # daemons resume and record each server once, whatever the old process had counted.
    before = Metrics()
    for name in ("a", "b", "c"):
        before.gameservers.record("games", name, S.RUNNING)
    after = Metrics()
    assert state_gauge(after, S.RUNNING) == 0
    for name in ("a", "b", "c", "a"):  # a resume and an early update of "a"
        after.gameservers.record("games", name, S.RUNNING)
    assert state_gauge(after, S.RUNNING) == 3
    assert state_gauge(before, S.RUNNING) == 3  # registries are separate: no shared globals


def test_exposition_has_the_histogram_the_state_gauge_and_the_counters() -> None:
    metrics = Metrics()
    metrics.observe_reconcile("GameServer", "success", 0.02)
    metrics.observe_reconcile("GameServer", "success", 3.0)
    metrics.observe_reconcile("GameServer", "error", 0.5)
    metrics.gameservers.record("games", "a", S.STOPPED)
    metrics.count_error("GameServer", _HTTPError(403))
    metrics.count_error("GameServer", TimeoutError())
    metrics.count_request("kopf", "patch")
    metrics.count_request("kubernetes", "GET")
    metrics.count_request("kubernetes", "get")
    seen = scraped(metrics)
    count = "stellarstack_operator_reconcile_duration_seconds_count"
    bucket = "stellarstack_operator_reconcile_duration_seconds_bucket"
    assert seen[(count, (("kind", "GameServer"), ("outcome", "success")))] == 2
    assert seen[(count, (("kind", "GameServer"), ("outcome", "error")))] == 1
    assert seen[(bucket, (("kind", "GameServer"), ("le", "0.025"), ("outcome", "success")))] == 1
    assert seen[(bucket, (("kind", "GameServer"), ("le", "+Inf"), ("outcome", "success")))] == 2
    assert seen[("stellarstack_gameservers", (("state", "Stopped"),))] == 1
    assert seen[("stellarstack_gameservers", (("state", "Running"),))] == 0
    errors = "stellarstack_operator_errors_total"
    assert seen[(errors, (("error", "http_403"), ("kind", "GameServer")))] == 1
    assert seen[(errors, (("error", "TimeoutError"), ("kind", "GameServer")))] == 1
    requests = "stellarstack_operator_api_requests_total"
    assert seen[(requests, (("client", "kubernetes"), ("method", "GET")))] == 2
    assert seen[(requests, (("client", "kopf"), ("method", "PATCH")))] == 1


class _HTTPError(Exception):
    def __init__(self, status: Any) -> None:
        super().__init__(f"status {status}")
        self.status = status


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (_HTTPError(403), "http_403"),
        (_HTTPError(409), "http_409"),
        (_HTTPError(503), "http_503"),
        (_HTTPError(0), "_HTTPError"),  # a client's "no response" status is no HTTP status
        (_HTTPError("403"), "_HTTPError"),
        (ValueError("bad"), "ValueError"),
        (TimeoutError(), "TimeoutError"),
    ],
)
def test_error_label_is_the_http_status_or_the_class(error: BaseException, label: str) -> None:
    assert error_label(error) == label


def _step(requeue: timedelta | None = None) -> Step:
    from stellarstack.api.gameserver import GameServerStatus

    return Step(action=Action.NONE, status=GameServerStatus(), events=(), requeue_after=requeue)


@pytest.mark.parametrize(
    ("state", "pod", "requeue", "expected"),
    [
        # Stopped or suspended with no Pod: only a wake-up (spec, Blueprint) can move it.
        (S.STOPPED, None, None, "quiet"),
        (S.SUSPENDED, None, None, "quiet"),
        # A stopped server keeps its finished Pod: looked at as usual.
        (S.STOPPED, {"metadata": {"name": "a"}}, None, "idle"),
        (S.RUNNING, {"metadata": {"name": "a"}}, None, "idle"),
        (S.PENDING, None, None, "idle"),
        (S.ERROR, None, None, "idle"),
        (S.STARTING, {"metadata": {"name": "a"}}, None, "busy"),
        (S.STOPPING, None, None, "busy"),
        (S.STOPPED, None, timedelta(seconds=7), "requeue"),
    ],
)
def test_next_look(
    state: GameServerState, pod: dict[str, Any] | None, requeue: timedelta | None, expected: str
) -> None:
    settings = OperatorSettings()
    reconciler = GameServerReconciler(kube=None, settings=settings)  # type: ignore[arg-type]
    step = _step(requeue)
    status = step.status.model_copy(update={"state": state})
    wanted = {
        "quiet": settings.quiet_resync,
        "idle": settings.resync,
        "busy": settings.busy_resync,
        "requeue": timedelta(seconds=7),
    }[expected]
    assert reconciler._next_look(step, status, pod) == wanted


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["operator", *argv])


def test_command_line_of_the_operations_options() -> None:
    args = _parse(
        "--peering",
        "stellarstack",
        "--priority",
        "7",
        "--metrics-port",
        "9090",
        "--log-format",
        "json",
    )
    assert (args.peering, args.priority, args.metrics_port, args.log_format) == (
        "stellarstack",
        7,
        9090,
        "json",
    )
    defaults = _parse()
    assert (defaults.peering, defaults.metrics_port, defaults.log_format) == (None, None, "text")


@pytest.mark.parametrize(
    "argv",
    [
        ("--standalone", "--peering", "stellarstack"),  # peering and standalone exclude each other
        ("--log-format", "xml"),
        ("--metrics-port", "http"),
    ],
)
def test_command_line_refuses(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(*argv)
    assert "error:" in capsys.readouterr().err
