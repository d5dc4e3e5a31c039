"""examples/kubernetes/: the manifests load, and what they say agrees with the dracula flags in
the Deployment's command (parsed by dracula's own CLI parser): probe ports and paths, the IDL
path the ConfigMap is mounted at, and the timings of a pod's termination."""

from __future__ import annotations

import os

import pytest

from dracula.cli import build_parser
from dracula.config import Config
from dracula.options import OPTIONS

from .helpers import IDL, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra: pip install '.[test]'")

MANIFESTS = os.path.join(ROOT, "examples", "kubernetes")


@pytest.fixture(scope="module")
def objects() -> dict:
    """kind -> the one object of that kind across the manifests."""
    found = {}
    for name in sorted(os.listdir(MANIFESTS)):
        if name.endswith(".yaml"):
            with open(os.path.join(MANIFESTS, name)) as f:
                for document in yaml.safe_load_all(f):
                    assert document["kind"] not in found, "two %ss" % document["kind"]
                    found[document["kind"]] = document
    assert set(found) == {"ConfigMap", "Deployment", "Service"}
    return found


@pytest.fixture(scope="module")
def pod(objects) -> dict:
    return objects["Deployment"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (container,) = pod["containers"]
    return container


@pytest.fixture(scope="module")
def flags(container):
    """The container's `dracula serve` command, parsed as dracula parses it, and valid."""
    command = container["command"]
    assert command[:2] == ["dracula", "serve"]
    args = build_parser().parse_args(command[1:])
    Config(**{option.name: getattr(args, option.name) for option in OPTIONS}).validate()
    return args


def port_number(container, port) -> int:
    """A probe's or Service's port (a name or a number) as the container's port number."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return number


def test_probes_reach_healthz_and_the_thrift_port(container, flags):
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/healthz"
    assert port_number(container, readiness["port"]) == flags.metrics_port
    assert flags.metrics_host == "0.0.0.0" and flags.host == "0.0.0.0"  # the kubelet probes the pod's IP
    liveness = container["livenessProbe"]["tcpSocket"]
    assert port_number(container, liveness["port"]) == flags.port


def test_service_selects_the_pods_and_targets_the_thrift_port(objects, container, flags):
    deployment, service = objects["Deployment"], objects["Service"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port_number(container, port["targetPort"]) == flags.port


def test_the_idl_comes_from_the_configmap(objects, pod, container, flags):
    idl_path, service_name = flags.service.rsplit(":", 1)
    mount = os.path.dirname(idl_path)
    (volume_mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == mount]
    (volume,) = [v for v in pod["volumes"] if v["name"] == volume_mount["name"]]
    configmap = objects["ConfigMap"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    text = configmap["data"][os.path.basename(idl_path)]
    with open(os.path.join(IDL, os.path.basename(idl_path))) as f:
        assert text == f.read()
    assert "service %s" % service_name in text


def test_termination_timings_agree_with_the_drain(pod, container, flags):
    readiness = container["readinessProbe"]
    # The probe sees 503 within failureThreshold periods (each probe may take its timeout):
    # the pod leaves the endpoints while dracula still serves.
    noticed = readiness["periodSeconds"] * readiness["failureThreshold"] + readiness.get("timeoutSeconds", 1)
    assert flags.drain_delay > noticed
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_sleep = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    assert pod["terminationGracePeriodSeconds"] >= pre_stop_sleep + flags.drain_delay + flags.graceful_timeout
    assert flags.max_connection_age > 0  # pooled connections move to new pods
