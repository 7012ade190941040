"""The Kubernetes manifests: valid for the API, sized to the connection budget, safe to run.

No cluster runs here, so nothing is applied: kubernetes-validate checks every manifest against
the Kubernetes API's schemas (strict: unknown fields are errors), and these tests read the
manifests as kubectl and kustomize would.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendering import Combination, all_combinations, render, run

KUBERNETES = Path("deploy") / "kubernetes"
WITH_KUBERNETES = [c for c in all_combinations() if c.include_kubernetes]
every_combination = pytest.mark.parametrize("combination", WITH_KUBERNETES, ids=lambda c: c.id)
pytestmark = pytest.mark.xdist_group("every-combination")


def manifests(project: Path) -> dict[str, dict[str, Any]]:
    """The resources by kind (kustomization.yaml files are kustomize's own, not the API's)."""
    found = {}
    for path in sorted((project / KUBERNETES).glob("*/*.yaml")):
        if path.name != "kustomization.yaml":
            document = yaml.safe_load(path.read_text())
            found[document["kind"]] = document
    return found


def settings_of(project: Path) -> dict[str, str]:
    component = yaml.safe_load((project / KUBERNETES / "image" / "kustomization.yaml").read_text())
    (generator,) = component["configMapGenerator"]
    return dict(literal.split("=", 1) for literal in generator["literals"])


@every_combination
def test_kubernetes_validate_accepts_every_manifest(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    validate = shutil.which("kubernetes-validate")
    assert validate, "kubernetes-validate is a dev dependency: run `uv sync`"
    project = rendered(combination)
    files = [
        str(path.relative_to(project)) for path in sorted((project / KUBERNETES).glob("*/*.yaml"))
    ]
    resources = [name for name in files if not name.endswith("kustomization.yaml")]

    result = run([validate, "--strict", *resources], project, timeout=120)

    assert len(resources) == 5
    assert result.stdout.count(" passed for resource ") == 5, result.stdout + result.stderr


@every_combination
def test_the_kustomizations_name_files_that_exist_and_the_image_the_pods_run(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    project = rendered(combination)
    component = yaml.safe_load((project / KUBERNETES / "image" / "kustomization.yaml").read_text())
    images = {image["name"] for image in component["images"]}

    for step in ("app", "migrate"):
        directory = project / KUBERNETES / step
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        assert kustomization["components"] == ["../image"]
        for resource in kustomization["resources"]:
            document = yaml.safe_load((directory / resource).read_text())
            spec = document["spec"]["template"]["spec"] if "template" in document["spec"] else {}
            for container in spec.get("containers", []):
                assert container["image"] in images, (resource, container["image"])
    rendered_resources = {path.name for path in (project / KUBERNETES).glob("*/*.yaml")}
    assert rendered_resources == {
        "kustomization.yaml",
        "deployment.yaml",
        "service.yaml",
        "pod-disruption-budget.yaml",
        "autoscaler.yaml",
        "job.yaml",
    }


@pytest.mark.parametrize(("instances", "surge", "replicas"), [(1, 0, 1), (2, 1, 1), (7, 1, 6)])
def test_max_replicas_plus_max_surge_is_the_instances_the_budget_counts(
    tmp_path: Path, instances: int, surge: int, replicas: int
) -> None:
    project = render(
        tmp_path / "p",
        {"project_name": "Fleet", "include_kubernetes": True, "app_instances": instances},
    )
    resources = manifests(project)
    rollout = resources["Deployment"]["spec"]["strategy"]["rollingUpdate"]
    autoscaler = resources["HorizontalPodAutoscaler"]["spec"]

    assert (autoscaler["maxReplicas"], rollout["maxSurge"]) == (replicas, surge)
    assert autoscaler["maxReplicas"] + rollout["maxSurge"] == instances
    assert settings_of(project)["APP_INSTANCES"] == str(instances)
    # One instance cannot surge: it is replaced in place (a brief gap, stated in the README).
    assert rollout["maxUnavailable"] == (0 if surge else 1)
    assert autoscaler["minReplicas"] <= autoscaler["maxReplicas"]
    readme = (project / "README.md").read_text()
    assert f"`maxReplicas` ({replicas}) plus the rollout's `maxSurge` ({surge})" in readme
    assert ("no room for a surge" in readme) is (surge == 0)


@every_combination
def test_the_pool_settings_are_the_answers_and_the_database_urls_come_from_a_secret(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    project = rendered(combination)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())

    assert settings_of(project) == {
        "WEB_CONCURRENCY": str(answers["worker_count"]),
        "APP_INSTANCES": str(answers["app_instances"]),
        "DB_MAX_CONNECTIONS": str(answers["db_max_connections"]),
    }
    for kind in ("Deployment", "Job"):
        (container,) = manifests(project)[kind]["spec"]["template"]["spec"]["containers"]
        for variable in container["env"]:
            assert variable["name"].startswith("DATABASE_")
            assert set(variable) == {"name", "valueFrom"}, variable
            secret = variable["valueFrom"]["secretKeyRef"]["name"]
            assert secret == f"{answers['project_slug']}-database"
    text = "\n".join(path.read_text() for path in (project / KUBERNETES).rglob("*.yaml"))
    assert not re.search(r"postgres(ql)?://", text), "a database URL in a manifest"


@every_combination
def test_the_app_serves_only_and_the_job_migrates_once(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    resources = manifests(rendered(combination))
    (app,) = resources["Deployment"]["spec"]["template"]["spec"]["containers"]
    job = resources["Job"]["spec"]
    (migrate,) = job["template"]["spec"]["containers"]

    assert "alembic" not in " ".join(app["command"])
    assert "uvicorn" in " ".join(app["command"])
    assert migrate["command"][-1].endswith("&& alembic upgrade head")
    # A failed migration stops the deploy (make k8s-deploy) instead of running again.
    assert (job["backoffLimit"], job["template"]["spec"]["restartPolicy"]) == (0, "Never")
    # Job pods are not the Service's or the disruption budget's.
    job_labels = job["template"]["metadata"]["labels"]
    selector = resources["Service"]["spec"]["selector"]
    assert not selector.items() <= job_labels.items()


@every_combination
def test_each_pod_prepares_its_observability_before_serving(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    """Prometheus: the metrics directory emptied; OpenTelemetry: the OTEL_* variables checked."""
    project = rendered(combination)
    pod = manifests(project)["Deployment"]["spec"]["template"]
    (app,) = pod["spec"]["containers"]
    command = " ".join(app["command"])
    prepare = f"python -m {combination.package_name}.metrics &&"
    check = f"python -m {combination.package_name}.telemetry &&"

    if combination.observability == "opentelemetry":
        assert command.index(check) < command.index("exec uvicorn")
    else:
        assert check not in command
    if combination.observability != "prometheus":
        assert prepare not in command
        assert "annotations" not in pod["metadata"]
        return
    assert command.index(prepare) < command.index("exec uvicorn")
    dockerfile = (project / "Dockerfile").read_text()
    assert "ENV PROMETHEUS_MULTIPROC_DIR=/tmp/metrics" in dockerfile
    # Under the read-only root filesystem, /tmp is the pod's own writable emptyDir.
    assert {"name": "tmp", "mountPath": "/tmp"} in app["volumeMounts"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(app["ports"][0]["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"


@every_combination
def test_probes_drain_and_security_context(
    combination: Combination, rendered: Callable[[Combination], Path]
) -> None:
    pod = manifests(rendered(combination))["Deployment"]["spec"]["template"]["spec"]
    (app,) = pod["containers"]
    pre_stop = int(app["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful = int(re.search(r"--timeout-graceful-shutdown (\d+)", app["command"][-1])[1])

    assert app["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert app["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # The readiness probe waits longer than HEALTH_TIMEOUT (2 s), so a slow database is a 503.
    assert app["readinessProbe"]["timeoutSeconds"] > 2
    # preStop, DRAIN_SECONDS (5 by default), then uvicorn's graceful shutdown.
    assert pre_stop + 5 + graceful < pod["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert app["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in app["volumeMounts"]
    assert app["resources"]["requests"]["cpu"] and app["resources"]["limits"]["memory"]
