"""The kube fixture never connects to a cluster that is not a test cluster (no cluster needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.kube import connect, is_test_context


def kubeconfig(tmp_path: Path, context: str) -> str:
    # A server nobody listens on: connecting must not matter for the decision.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
        "current-context": context,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize(
    "context", ["production", "gke_corp_prod", "minikube", "test-stellarstack"]
)
def test_other_contexts_are_refused(tmp_path: Path, context: str) -> None:
    assert not is_test_context(context)
    with pytest.raises(ValueError, match="not a test cluster"):
        connect(kubeconfig(tmp_path, context))


@pytest.mark.parametrize("context", ["stellarstack-test", "stellarstack-test-ci", "kind-dev"])
def test_test_contexts_are_accepted(tmp_path: Path, context: str) -> None:
    api_client, chosen = connect(kubeconfig(tmp_path, context))
    try:
        assert chosen == context
        assert api_client.configuration.host == "https://127.0.0.1:1"
    finally:
        api_client.close()
