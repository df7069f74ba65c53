"""The whole program under mocks, per stack and per mode, with the stack files loaded."""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from bookinfo_mesh.engine import (
    MOCK_LB_HOSTNAME,
    SECRET,
    ProgramRun,
    RegisteredResource,
    run_program,
)
from model.control_plane import ISTIO_CHARTS
from model.observability import CHARTS as OBSERVABILITY_CHARTS
from stacks.config import ConfigError
from tests.programs import shared_run

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
NAME = PROJECT["name"]
DEFAULTS = {key: spec["default"] for key, spec in PROJECT["config"].items()}


def stack_config(stack: str) -> dict[str, Any]:
    """Pulumi.<stack>.yaml's config with the project's namespace stripped."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.removeprefix(f"{NAME}:"): value for key, value in raw.items()}


def setting(stack: str, key: str) -> Any:
    return stack_config(stack).get(key, DEFAULTS.get(key))


# The BRIEF's six steps.
MODES = ("all-v1", "user-v2", "delay", "abort", "split50", "v3")
STACKS = ("dev", "prod")
COMPONENTS = tuple(
    f"bookinfo:index:{c}"
    for c in ("Network", "Cluster", "IstioMesh", "Bookinfo", "TrafficPolicy", "Observability")
)
RELEASE = "kubernetes:helm.sh/v3:Release"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
SUBNET = "aws:ec2/subnet:Subnet"


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], ProgramRun]:
    """Every mode on dev; on prod every mode that prod accepts without extra settings."""
    found = {("dev", mode): shared_run("dev", {"mode": mode}) for mode in MODES}
    found |= {
        ("prod", mode): shared_run("prod", {"mode": mode})
        for mode in ("all-v1", "user-v2", "split50", "v3")
    }
    return found


@pytest.fixture(scope="module")
def dev(runs) -> ProgramRun:
    return runs[("dev", "all-v1")]


@pytest.fixture(scope="module")
def prod(runs) -> ProgramRun:
    return runs[("prod", "all-v1")]


@pytest.fixture(scope="module", params=STACKS)
def stack_run(request, runs) -> ProgramRun:
    return runs[(request.param, "all-v1")]


def succeeded(run: ProgramRun) -> ProgramRun:
    assert run.error is None, f"{run.stack} {run.config.get(f'{NAME}:mode')}: {run.error!r}"
    return run


def one(run: ProgramRun, type_: str) -> RegisteredResource:
    found = run.of_type(type_)
    assert len(found) == 1, f"{run.stack}: expected one {type_}, got {[r.name for r in found]}"
    return found[0]


def release(run: ProgramRun, helm_name: str) -> RegisteredResource:
    (found,) = [r for r in run.of_type(RELEASE) if r.inputs.get("name") == helm_name]
    return found


def reach(run: ProgramRun, resource: RegisteredResource) -> set[str]:
    """URNs `resource` waits for, directly or through others."""
    by_urn = {r.urn: r for r in run.resources}
    seen: set[str] = set()
    frontier = list(resource.dependencies)
    while frontier:
        urn = frontier.pop()
        if urn not in seen:
            seen.add(urn)
            frontier.extend(by_urn[urn].dependencies if urn in by_urn else ())
    return seen


# --- Config loading ---------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_mode_the_stack_accepts_runs_cleanly(runs, stack: str) -> None:
    for (s, mode), run in runs.items():
        if s == stack:
            succeeded(run)
            assert run.outputs["mode"] == mode, f"{stack} ran mode {run.outputs['mode']}"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_values_are_loaded_into_the_config(runs, stack: str) -> None:
    run = runs[(stack, "all-v1")]
    for key, value in stack_config(stack).items():
        full = key if ":" in key else f"{NAME}:{key}"
        loaded = run.config.get(full)
        assert loaded is not None, f"{stack}: {full} from the stack file was not loaded"
        got = loaded if isinstance(value, str) else yaml.safe_load(loaded)
        assert got == value, f"{stack}: {full} loaded as {loaded!r}, file says {value!r}"


def test_keys_the_stack_file_leaves_out_take_the_project_default(dev) -> None:
    unset = [k for k in DEFAULTS if k not in stack_config("dev")]
    assert unset, "dev sets every key; nothing left to check"
    for key in unset:
        loaded = dev.config.get(f"{NAME}:{key}")
        value = DEFAULTS[key]
        got = loaded if isinstance(value, str) else yaml.safe_load(loaded or "null")
        assert got == value, f"dev: {key} = {loaded!r}, Pulumi.yaml default is {value!r}"


def test_the_stack_files_region_names_the_availability_zones(dev) -> None:
    region = stack_config("dev")["aws:region"]
    zones = {s.inputs["availabilityZone"] for s in dev.of_type(SUBNET)}
    assert zones and all(z.startswith(region) for z in zones), f"dev AZs {zones} not in {region}"


def test_another_region_moves_the_availability_zones() -> None:
    run = succeeded(shared_run("dev", {"aws:region": "eu-west-1"}))
    zones = {s.inputs["availabilityZone"] for s in run.of_type(SUBNET)}
    assert all(z.startswith("eu-west-1") for z in zones), f"AZs {zones} ignore aws:region"


@pytest.mark.parametrize("stack", STACKS)
def test_project_defaults_and_stack_values_reach_the_resources(runs, stack: str) -> None:
    run = runs[(stack, "all-v1")]
    vpc = one(run, "aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == setting(stack, "vpcCidr"), f"VPC {vpc.inputs['cidrBlock']}"
    eks = one(run, "eks:index:Cluster")
    assert eks.inputs["version"] == str(setting(stack, "kubernetesVersion")), "k8s version"
    for r in run.of_type(RELEASE):
        if r.inputs["chart"] in ISTIO_CHARTS:
            assert r.inputs["version"] == setting(stack, "istioVersion"), f"{r.name} version"
    nodes = one(run, "eks:index:ManagedNodeGroup").inputs
    assert nodes["instanceTypes"] == setting(stack, "nodeInstanceTypes"), "instance types"
    scaling = nodes["scalingConfig"]
    expected = tuple(setting(stack, k) for k in ("nodeMin", "nodeDesired", "nodeMax"))
    assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == expected, (
        f"{stack}: node scaling {scaling}"
    )
    assert nodes["amiType"].startswith("AL2023_x86_64"), f"{stack}: amiType {nodes['amiType']}"


# --- Shape ---------------------------------------------------------------------------------
def test_each_component_exists_once_under_the_stack(stack_run) -> None:
    for type_ in COMPONENTS:
        component = one(stack_run, type_)
        assert component.parent and "pulumi:pulumi:Stack" in component.parent, (
            f"{type_} is parented to {component.parent}"
        )


def test_every_resource_is_a_child_of_a_component(stack_run) -> None:
    components = {r.urn: r.type for r in stack_run.resources if r.type in COMPONENTS}
    stray = [
        r.name
        for r in stack_run.resources
        if r.urn not in components and r.parent not in components
    ]
    assert not stray, f"{stack_run.stack}: resources outside every component: {stray}"


@pytest.mark.parametrize(
    ("type_", "component"),
    [
        ("aws:ec2/vpc:Vpc", "Network"),
        (SUBNET, "Network"),
        ("eks:index:Cluster", "Cluster"),
        ("eks:index:ManagedNodeGroup", "Cluster"),
        ("pulumi:providers:kubernetes", "Cluster"),
        (DEPLOYMENT, "Bookinfo"),
        ("kubernetes:networking.istio.io/v1:Gateway", "Bookinfo"),
        (DESTINATION_RULE, "TrafficPolicy"),
    ],
)
def test_children_sit_under_the_component_of_their_concept(stack_run, type_, component) -> None:
    owner = one(stack_run, f"bookinfo:index:{component}").urn
    for resource in stack_run.of_type(type_):
        assert resource.parent == owner, f"{resource.name} is not under {component}"


def test_istios_charts_sit_under_istiomesh_and_the_others_under_observability(stack_run) -> None:
    owners = {r.type.rsplit(":", 1)[1]: r.urn for r in stack_run.resources if r.type in COMPONENTS}
    charts = {}
    for release in stack_run.of_type(RELEASE):
        chart = release.inputs["chart"]
        owner = "IstioMesh" if chart in ISTIO_CHARTS else "Observability"
        assert release.parent == owners[owner], f"{release.name} is not under {owner}"
        charts.setdefault(owner, set()).add(chart)
    assert charts == {
        "IstioMesh": set(ISTIO_CHARTS),
        "Observability": {c.name for c in OBSERVABILITY_CHARTS},
    }


def test_every_kubernetes_object_goes_through_the_clusters_provider(stack_run) -> None:
    provider = one(stack_run, "pulumi:providers:kubernetes")
    for resource in stack_run.resources:
        if resource.type.startswith("kubernetes:"):
            assert (resource.provider or "").startswith(provider.urn + "::"), (
                f"{resource.name} uses {resource.provider}, not the EKS cluster's provider"
            )


# --- Ordering -------------------------------------------------------------------------------
def test_pods_and_istio_objects_wait_directly_for_istiod(stack_run) -> None:
    istiod = release(stack_run, "istiod-1-31")
    waiting = [r for r in stack_run.resources if r.type == DEPLOYMENT or "istio.io/" in r.type]
    assert len(waiting) > len(stack_run.of_type(DEPLOYMENT)), "no Istio objects registered"
    late = [r.name for r in waiting if istiod.urn not in r.dependencies]
    assert not late, f"may be created before istiod's webhooks: {late}"


def test_virtual_services_wait_for_the_destination_rule_of_their_host(runs) -> None:
    for (stack, mode), run in runs.items():
        rules = {r.inputs["spec"]["host"]: r.urn for r in run.of_type(DESTINATION_RULE)}
        for vs in run.of_type(VIRTUAL_SERVICE):
            if vs.inputs["spec"].get("gateways"):
                continue  # the ingress route names no subset
            host = vs.inputs["spec"]["hosts"][0]
            assert rules[host] in vs.dependencies, f"{stack} {mode}: VS {host} before its DR"


def test_istio_charts_install_in_order_after_the_nodes(stack_run) -> None:
    base = release(stack_run, "istio-base")
    istiod = release(stack_run, "istiod-1-31")
    gateway = release(stack_run, "istio-ingressgateway")
    assert base.urn in istiod.dependencies, "istiod may install before base's CRDs"
    assert istiod.urn in gateway.dependencies, "gateway may install before istiod"
    nodes = one(stack_run, "eks:index:ManagedNodeGroup")
    for chart in (base, istiod, gateway):
        assert nodes.urn in reach(stack_run, chart), f"{chart.name} may install without nodes"


# --- Modes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_switching_modes_keeps_every_resource(runs, stack: str) -> None:
    baseline = {r.urn for r in runs[(stack, "all-v1")].resources}
    for (s, mode), run in runs.items():
        if s == stack:
            urns = {r.urn for r in run.resources}
            assert urns == baseline, f"{stack} {mode} adds/removes {urns ^ baseline}"


@pytest.mark.parametrize("stack", STACKS)
def test_switching_modes_changes_only_the_traffic_virtual_services(runs, stack: str) -> None:
    baseline = {r.urn: r for r in runs[(stack, "all-v1")].resources}
    traffic = one(runs[(stack, "all-v1")], "bookinfo:index:TrafficPolicy").urn
    for (s, mode), run in runs.items():
        if s != stack or mode == "all-v1":
            continue
        changed = [
            r
            for r in run.resources
            if r.inputs != baseline[r.urn].inputs or r.dependencies != baseline[r.urn].dependencies
        ]
        assert changed, f"{stack} {mode} changes nothing: the mode is ignored"
        wrong = [r.name for r in changed if r.type != VIRTUAL_SERVICE or r.parent != traffic]
        assert not wrong, f"{stack} {mode} also changes {wrong}"


def test_the_mode_reaches_the_reviews_route(runs) -> None:
    def reviews_subsets(run: ProgramRun) -> list[set[str]]:
        (vs,) = [
            r for r in run.of_type(VIRTUAL_SERVICE) if r.inputs["spec"].get("hosts") == ["reviews"]
        ]
        return [{d["destination"]["subset"] for d in h["route"]} for h in vs.inputs["spec"]["http"]]

    expected = {
        "all-v1": [{"v1"}],
        "user-v2": [{"v2"}, {"v1"}],
        "delay": [{"v2"}, {"v1"}],
        "abort": [{"v2"}, {"v1"}],
        "split50": [{"v1", "v3"}],
        "v3": [{"v3"}],
    }
    for (stack, mode), run in runs.items():
        assert reviews_subsets(run) == expected[mode], f"{stack} {mode}: reviews routes"


# --- Outputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_outputs_tell_the_user_where_and_what(runs, stack: str) -> None:
    run = runs[(stack, "all-v1")]
    region = stack_config(stack)["aws:region"]
    url = f"http://{MOCK_LB_HOSTNAME.format(region=region)}/productpage"
    assert run.outputs["productpageUrl"] == url, f"productpageUrl {run.outputs['productpageUrl']}"
    assert run.outputs["kubeconfig"] == SECRET, "kubeconfig is exported in clear text"
    eks = one(run, "eks:index:Cluster")
    assert run.outputs["clusterName"] == eks.inputs["name"], f"{run.outputs['clusterName']}"
    assert run.outputs["vpcId"] == eks.inputs["vpcId"], f"vpcId {run.outputs['vpcId']}"
    assert run.outputs["mode"] == "all-v1", f"mode {run.outputs['mode']}"


def test_routes_output_names_every_service_and_the_test_user(runs) -> None:
    for (stack, mode), run in runs.items():
        routes = run.outputs["routes"]
        assert set(routes) == {"productpage", "reviews", "ratings", "details"}, f"{routes}"
        mentions_jason = "jason" in str(routes)
        assert mentions_jason is (mode in ("user-v2", "delay", "abort")), (
            f"{stack} {mode}: routes {routes}"
        )
        assert ("7s" in str(routes)) is (mode == "delay"), f"{stack} {mode}: delay {routes}"
        assert ("500" in str(routes)) is (mode == "abort"), f"{stack} {mode}: abort {routes}"


# --- Bad config -------------------------------------------------------------------------------
def test_an_invalid_mode_fails_before_any_resource_and_says_what_is_allowed() -> None:
    run = shared_run("dev", {"mode": "all-v2"})
    assert run.error is not None, "mode all-v2 was accepted"
    message = str(run.error)
    assert f"{NAME}:mode" in message, f"error does not name the key: {message}"
    assert "all-v2" in message, f"error does not show the bad value: {message}"
    missing = [m for m in MODES if m not in message]
    assert not missing, f"error omits allowed modes {missing}: {message}"
    assert run.resources == (), f"registered {len(run.resources)} resources before failing"


def test_a_bad_config_is_a_run_error_so_pulumi_prints_the_message_without_a_traceback() -> None:
    run = shared_run("dev", {"mode": "all-v2", "nodeMin": "0"})
    assert isinstance(run.error, pulumi.RunError), f"{type(run.error).__name__} gets a traceback"
    assert isinstance(run.error, ConfigError), "callers can no longer catch ConfigError"
    assert len(run.error.problems) == 2, f"expected both problems: {run.error}"


@pytest.mark.parametrize("mode", ["delay", "abort"])
def test_prod_refuses_fault_modes_unless_allowed(mode: str) -> None:
    refused = shared_run("prod", {"mode": mode})
    assert refused.error is not None, f"prod accepted {mode} without allowFaultInjection"
    message = str(refused.error)
    assert f"{NAME}:mode" in message and "allowFaultInjection" in message, message
    assert refused.resources == (), "prod registered resources before refusing"
    allowed = succeeded(shared_run("prod", {"mode": mode, "allowFaultInjection": "true"}))
    (ratings,) = [
        r for r in allowed.of_type(VIRTUAL_SERVICE) if r.inputs["spec"].get("hosts") == ["ratings"]
    ]
    faults = [h["fault"] for h in ratings.inputs["spec"]["http"] if "fault" in h]
    assert len(faults) == 1 and mode in faults[0], f"prod {mode} ratings faults: {faults}"


# --- Production hardening -------------------------------------------------------------------
def test_prod_spreads_over_three_azs_with_a_nat_gateway_each(prod) -> None:
    az_count = setting("prod", "azCount")
    assert az_count == 3, f"Pulumi.prod.yaml asks for {az_count} AZs"
    zones = {s.inputs["availabilityZone"] for s in prod.of_type(SUBNET)}
    assert len(zones) == az_count, f"prod subnets span {zones}"
    nats = prod.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == az_count, f"prod has {len(nats)} NAT gateways for {az_count} AZs"


def test_dev_shares_one_nat_gateway(dev) -> None:
    nats = dev.of_type("aws:ec2/natGateway:NatGateway")
    assert setting("dev", "natGateways") == "single" and len(nats) == 1, f"dev NATs: {nats}"


def test_prod_encrypts_secrets_with_its_own_key(prod, dev) -> None:
    key = one(prod, "aws:kms/key:Key")
    assert key.urn in one(prod, "eks:index:Cluster").dependencies, "cluster ignores the key"
    assert dev.of_type("aws:kms/key:Key") == [], "dev pays for a KMS key it did not ask for"


def test_prod_protects_the_vpc_and_the_cluster(prod, dev) -> None:
    for type_ in ("aws:ec2/vpc:Vpc", "eks:index:Cluster"):
        assert one(prod, type_).protect, f"prod {type_} can be destroyed by accident"
        assert not one(dev, type_).protect, f"dev {type_} is protected; teardown would fail"


def test_prod_api_endpoint_is_not_open_to_the_internet(prod) -> None:
    cidrs = one(prod, "eks:index:Cluster").inputs["publicAccessCidrs"]
    assert cidrs == setting("prod", "endpointPublicAccessCidrs"), f"prod API CIDRs {cidrs}"
    assert all(ipaddress.ip_network(c).prefixlen > 0 for c in cidrs), f"open to all: {cidrs}"


def test_bookinfo_requires_mutual_tls(stack_run) -> None:
    (policy,) = stack_run.of_type("kubernetes:security.istio.io/v1:PeerAuthentication")
    assert policy.inputs["metadata"]["namespace"] == "bookinfo", f"{policy.inputs['metadata']}"
    assert policy.inputs["spec"]["mtls"]["mode"] == "STRICT", f"{policy.inputs['spec']}"


@pytest.mark.parametrize(("stack", "marked"), [("dev", False), ("prod", True)])
def test_only_a_production_stack_marks_its_faults_as_deliberate(stack: str, marked: bool) -> None:
    """The policy pack lets a production fault through only with this mark; dev needs none."""
    run = succeeded(shared_run(stack, {"mode": "delay", "allowFaultInjection": "true"}))
    marks = {
        r.inputs["spec"]["hosts"][0]: r.inputs["metadata"].get("annotations")
        for r in run.of_type(VIRTUAL_SERVICE)
        if "gateways" not in r.inputs["spec"]
    }
    expected = {"bookinfo-mesh/fault-injection": "allowed"} if marked else None
    assert marks == dict.fromkeys(("details", "productpage", "ratings", "reviews"), expected)


@pytest.mark.fresh_program_runs  # the child must run the program itself
def test_a_forked_child_of_a_process_that_ran_the_program_runs_it_too() -> None:
    """Mutation testing forks a worker per mutant from a process that has run programs.

    The child inherits the SDK's event loop but not its thread pool's threads; without a
    loop of its own, its first RPC waits forever.
    """
    assert run_program("dev").error is None
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        try:
            os._exit(0 if run_program("dev").error is None else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 60
    while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's run hung")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(waited[1]) == 0, "the program failed in the forked child"
