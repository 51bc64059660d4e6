"""The Helm chart (charts/stellarstack), rendered by Helm's own engine (helm-python-sdk).

Lint, the strict values schema, built-in kinds valid for Kubernetes, the operator's RBAC the
same as operator/rbac.yaml, the security context of every Pod, and the CRDs in the chart the
same as the generated ones.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stellarstack.api.crdgen import build_all_crds, render_yaml

helm_python = pytest.importorskip("helm_python")

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "stellarstack"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion; the CRDs' CEL rules).
KUBERNETES_VERSION = "1.29"
RELEASE, NAMESPACE = "stellarstack", "stellarstack-system"
# Not generated from our models: Kopf's own kinds, for peering between operator replicas.
KOPF_PEERING_CRDS = {"clusterkopfpeerings.kopf.dev.yaml", "kopfpeerings.kopf.dev.yaml"}

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "replicated": {
        "operator": {
            "replicas": 3,
            "watchNamespaces": ["games", "events"],
            "verbose": True,
            "podAnnotations": {"example.com/team": "games"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "games", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "system-cluster-critical",
            "serviceAccount": {"name": "custom-sa", "annotations": {"a": "b"}},
        },
        "image": {"tag": "dev", "pullPolicy": "Never", "pullSecrets": ["regcred"]},
    },
    "no tests": {"tests": {"enabled": False}},
    "no operator": {"operator": {"enabled": False}},
}


def render(values: dict[str, Any] | None = None, name: str = RELEASE) -> list[dict[str, Any]]:
    """Every object the chart renders (templates and `helm test` hooks, not crds/)."""
    files = helm_python.Chart.load(CHART).render(values or {}, name=name, namespace=NAMESPACE)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if not path.endswith(".yaml"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def find(objects: list[dict[str, Any]], kind: str, component: str = "operator") -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects for {component}"
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] == "Pod":
            yield f"Pod/{obj['metadata']['name']}", obj["spec"]
        elif obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]


# --- lint and values --------------------------------------------------------------------------


def test_lint_is_clean() -> None:
    result = helm_python.lint(CHART, strict=True)
    assert result["errors"] == []
    # Severity 1 is informational ("icon is recommended"); warnings and errors are not allowed.
    assert [m for m in result["messages"] if m["severity"] >= 2] == []


def test_chart_versions() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == project["version"]
    deployment = find(render(), "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"localhost/stellarstack/stellarstack:{project['version']}"


def leaf_paths(values: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the values the user sets (a map with content is not a value itself)."""
    if isinstance(values, dict) and values and prefix not in {"operator.resources"}:
        for key, value in values.items():
            yield from leaf_paths(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def test_every_value_is_documented_with_a_param() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, re.MULTILINE))
    paths = set(leaf_paths(yaml.safe_load(text)))
    paths = (paths - {"operator.resources"}) | {
        "operator.resources.requests",
        "operator.resources.limits",
    }
    assert paths - documented == set(), "values without a `## @param` line"
    assert documented - paths == set(), "`## @param` lines naming no value"


def object_nodes(schema: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            yield path, schema
        for key, value in schema.items():
            yield from object_nodes(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from object_nodes(value, f"{path}[{index}]")


def test_schema_is_strict_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    nodes = list(object_nodes(schema))
    assert len(nodes) > 5
    for path, node in nodes:
        assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"


def test_defaults_pass_the_schema() -> None:
    chart = helm_python.Chart.load(CHART)
    chart.validate_schema(yaml.safe_load((CHART / "values.yaml").read_text()))
    for values in VARIANTS.values():
        render(values)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"bogus": 1}, "bogus"),
        ({"crds": {"install": False}}, "crds"),
        ({"panel": {"enabled": True}}, "panel"),
        ({"image": {"registry": "example.com"}}, "registry"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"operator": {"replicas": 0}}, "replicas"),
        ({"operator": {"replicas": "2"}}, "replicas"),
        ({"operator": {"replica": 2}}, "replica"),
        ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "watchNamespaces"),
        ({"operator": {"watchNamespaces": "games"}}, "watchNamespaces"),
        ({"operator": {"livenessPort": 80}}, "livenessPort"),
        ({"operator": {"logFormat": "xml"}}, "logFormat"),
        ({"operator": {"metrics": {"port": 70000}}}, "port"),
        ({"operator": {"metrics": {"enabled": "yes"}}}, "enabled"),
        ({"operator": {"metrics": {"path": "/m"}}}, "path"),
        ({"operator": {"resources": {"requests": {"gpu": 1}}}}, "gpu"),
        ({"operator": {"resources": {"limits": {"memory": "lots"}}}}, "memory"),
        ({"operator": {"serviceAccount": {"create": "yes"}}}, "create"),
        ({"operator": {"rbac": {"create": True, "extra": 1}}}, "extra"),
        ({"operator": {"podAnnotations": {"a": 1}}}, "podAnnotations"),
        ({"operator": {"podDisruptionBudget": {"maxUnavailable": 1}}}, "maxUnavailable"),
        ({"operator": {"files": {"panelPublicKeyConfigMap": "no-namespace"}}}, "panelPublic"),
        ({"operator": {"files": {"idleTimeoutSeconds": 1}}}, "idleTimeoutSeconds"),
        ({"tests": {"timeoutSeconds": 1}}, "timeoutSeconds"),
        ({"tests": {"gameImage": ""}}, "gameImage"),
    ],
)
def test_schema_rejects_unknown_and_invalid_values(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=complaint):
        render(values)


# --- rendered objects -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_objects_are_valid_kubernetes(variant: str) -> None:
    objects = render(VARIANTS[variant])
    assert objects
    for obj in objects:
        if obj["apiVersion"] == "kopf.dev/v1":
            continue  # Kopf's peering objects: checked against their CRD in the peering test
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        namespaced = obj["kind"] not in {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}
        assert ("namespace" in obj["metadata"]) == namespaced, obj["metadata"]["name"]
        if namespaced:
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_cluster_role_is_operator_rbac_yaml() -> None:
    reference = {
        d["kind"]: d for d in yaml.safe_load_all((REPO / "operator/rbac.yaml").read_text())
    }
    objects = render()
    role = find(objects, "ClusterRole")
    assert role["rules"] == reference["ClusterRole"]["rules"]
    binding = find(objects, "ClusterRoleBinding")
    account = find(objects, "ServiceAccount")
    assert binding["roleRef"] == {
        **reference["ClusterRoleBinding"]["roleRef"],
        "name": "stellarstack-operator",
    }
    assert role["metadata"]["name"] == "stellarstack-operator"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    deployment = find(objects, "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )


def test_two_releases_do_not_share_cluster_scoped_names() -> None:
    def names(release: str) -> set[str]:
        return {
            f"{o['kind']}/{o['metadata']['name']}"
            for o in render(name=release)
            if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}
        }

    assert names("stellarstack").isdisjoint(names("games"))


@pytest.mark.parametrize("variant", ["defaults", "replicated"])
def test_every_pod_runs_locked_down(variant: str) -> None:
    specs = dict(pod_specs(render(VARIANTS[variant])))
    assert {name.split("/")[0] for name in specs} == {"Deployment", "Pod"}
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("hostNetwork") is not True, name
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, name
            assert ctx["runAsUser"] == 1000, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["privileged"] is False, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
            resources = container["resources"]
            assert set(resources) == {"requests", "limits"}, name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_operator_deployment_standalone() -> None:
    objects = render()
    spec = find(objects, "Deployment")["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "operator",
        "--liveness",
        "http://0.0.0.0:8080/healthz",
        "--metrics-port",
        "9090",
        "--log-format",
        "json",
        "--standalone",
    ]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert container["ports"] == [
        {"name": "liveness", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    assert probe["port"] == "liveness"
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert not [o for o in objects if o["apiVersion"] == "kopf.dev/v1"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp"}


def test_game_pods_get_the_chart_image_for_config_file_edits() -> None:
    for values, image in [
        ({}, "localhost/stellarstack/stellarstack:"),
        (
            {"image": {"repository": "registry.example/ss", "tag": "9.9"}},
            "registry.example/ss:9.9",
        ),
    ]:
        container = find(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["STELLARSTACK_IMAGE"].startswith(image)
        assert env["STELLARSTACK_IMAGE"] == container["image"]


def test_files_pods_trust_the_configured_panel_key() -> None:
    def env_of(values: dict[str, Any]) -> dict[str, str]:
        container = find(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e["value"] for e in container["env"]}

    default = env_of({})
    # Without the panel's key there is nobody whose tokens the files service could accept.
    assert "STELLARSTACK_OPERATOR_FILES_PUBLIC_KEY_CONFIG_MAP" not in default
    assert default["STELLARSTACK_OPERATOR_FILES_IMAGE"] == default["STELLARSTACK_IMAGE"]
    configured = env_of(
        {"operator": {"files": {"panelPublicKeyConfigMap": "panel/keys", "idleTimeoutSeconds": 60}}}
    )
    assert configured["STELLARSTACK_OPERATOR_FILES_PUBLIC_KEY_CONFIG_MAP"] == "panel/keys"
    assert configured["STELLARSTACK_OPERATOR_FILES_IDLE_TIMEOUT_SECONDS"] == "60"


def test_replicated_operator_peers_and_has_a_disruption_budget() -> None:
    objects = render(VARIANTS["replicated"])
    spec = find(objects, "Deployment")["spec"]
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert "--standalone" not in args
    peering = args[args.index("--peering") + 1]
    assert peering == "stellarstack-operator"
    assert args[-5:] == ["--namespace", "games", "--namespace", "events", "--verbose"]
    # Watching two namespaces, Kopf peers in each: one KopfPeering of that name in each.
    peerings = [o for o in objects if o["apiVersion"] == "kopf.dev/v1"]
    assert {(o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in peerings} == {
        ("KopfPeering", peering, "games"),
        ("KopfPeering", peering, "events"),
    }
    assert "strategy" not in spec
    budget = find(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == spec["selector"]
    assert spec["template"]["spec"]["serviceAccountName"] == "custom-sa"


def test_replicas_watching_every_namespace_share_one_cluster_peering() -> None:
    objects = render({"operator": {"replicas": 2}})
    args = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    peerings = [o for o in objects if o["apiVersion"] == "kopf.dev/v1"]
    assert [(o["kind"], o["metadata"]["name"]) for o in peerings] == [
        ("ClusterKopfPeering", args[args.index("--peering") + 1])
    ]
    assert "namespace" not in peerings[0]["metadata"]
    # Distinct per release, like every cluster-scoped name.
    other = render({"operator": {"replicas": 2}}, name="games")
    assert [o["metadata"]["name"] for o in other if o["kind"] == "ClusterKopfPeering"] == [
        "stellarstack-games-operator"
    ]


def test_peering_crds_match_what_kopf_uses() -> None:
    # Kopf finds its peering kinds by group, version and plural, and patches `status` on the
    # object itself: no status subresource, and the status keeps any field (one per replica).
    for plural, kind, scope in [
        ("clusterkopfpeerings", "ClusterKopfPeering", "Cluster"),
        ("kopfpeerings", "KopfPeering", "Namespaced"),
    ]:
        crd = yaml.safe_load((CHART / "crds" / f"{plural}.kopf.dev.yaml").read_text())
        spec = crd["spec"]
        assert (spec["group"], spec["names"]["plural"], spec["names"]["kind"], spec["scope"]) == (
            "kopf.dev",
            plural,
            kind,
            scope,
        )
        (version,) = spec["versions"]
        assert version["name"] == "v1"
        assert "subresources" not in version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True


def test_metrics_port_service_and_scrape_annotations() -> None:
    objects = render({"operator": {"podAnnotations": {"example.com/team": "games"}}})
    template = find(objects, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "example.com/team": "games",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
    }
    service = find(objects, "Service")
    assert service["metadata"]["name"] == "stellarstack-operator-metrics"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert (
        service["spec"]["selector"]
        == find(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    # Off: no port, no argument, no Service, no scrape annotations.
    objects = render({"operator": {"metrics": {"enabled": False}, "logFormat": "text"}})
    template = find(objects, "Deployment")["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert "--metrics-port" not in container["args"]
    assert container["args"][container["args"].index("--log-format") + 1] == "text"
    assert [p["name"] for p in container["ports"]] == ["liveness"]
    assert "annotations" not in template["metadata"]
    assert not [o for o in objects if o["kind"] == "Service"]


def test_disabled_parts_render_nothing() -> None:
    assert {
        o["kind"] for o in render({"operator": {"enabled": False}, "tests": {"enabled": False}})
    } == set()
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
        for o in render(VARIANTS["no tests"])
    )


def test_helm_test_pod() -> None:
    objects = render()
    pod = find(objects, "Pod", "test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    account = pod["spec"]["serviceAccountName"]
    assert find(objects, "ServiceAccount", "test")["metadata"]["name"] == account
    # Its rights: toy Blueprints and GameServers, nothing more.
    assert find(objects, "ClusterRole", "test")["rules"] == [
        {
            "apiGroups": ["stellarstack.io"],
            "resources": ["blueprints"],
            "verbs": ["get", "create", "delete"],
        }
    ]
    assert find(objects, "Role", "test")["rules"] == [
        {
            "apiGroups": ["stellarstack.io"],
            "resources": ["gameservers"],
            "verbs": ["get", "create", "delete"],
        }
    ]
    script = find(objects, "ConfigMap", "test")["data"]["gameserver_test.py"]
    ast.parse(script)
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["TEST_GAME_IMAGE"] == "localhost/stellarstack/toy:1"
    # The GameServer's own Pod is named after it: it must not be this Pod's name.
    assert env["TEST_NAME"] != pod["metadata"]["name"]


# --- the CRDs ---------------------------------------------------------------------------------


def test_chart_crds_are_the_generated_crds() -> None:
    generated = build_all_crds()
    chart_crds = {path.name for path in (CHART / "crds").glob("*.yaml")} - KOPF_PEERING_CRDS
    assert chart_crds == set(generated), "chart CRDs differ from the kinds; run `make crds`"
    for name, manifest in generated.items():
        text = (CHART / "crds" / name).read_text(encoding="utf-8")
        assert text == render_yaml(manifest), (
            f"charts/stellarstack/crds/{name} is stale; run `make crds`"
        )
        assert text == (REPO / "crds" / name).read_text(encoding="utf-8")
