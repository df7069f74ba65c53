"""Each component built alone from its Args under recording mocks, with stand-ins around it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

import pulumi
import pulumi_kubernetes as k8s
import pytest

from bookinfo_mesh.engine import SECRET, ProgramRun, RegisteredResource, run_under_mocks
from components.bookinfo import Bookinfo, BookinfoArgs
from components.cluster import Cluster, ClusterArgs
from components.istio_mesh import IstioMesh, IstioMeshArgs
from components.network import Network, NetworkArgs
from components.traffic_policy import TrafficPolicy, TrafficPolicyArgs
from model.control_plane import ControlPlane, Revision
from model.istio_releases import parse_release
from model.routing import Mode, TrafficSettings, bookinfo_policy, route_table


def preset(mode: Mode) -> tuple:
    """Bookinfo's policy for `mode` with the default knobs, as the program builds it."""
    return bookinfo_policy(route_table(mode, TrafficSettings()))


# Upstream and platform facts the components must honour.
ISTIO_VERSION = "1.30.3"  # the Istio release the Bookinfo facts were read from
# Istio's charts since its move to AWS (istio.io blog, 2026-08-21).
ISTIO_CHART_REPO = "https://blob.istio.io/istio-release/charts"
EKS_LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
NODE_POLICIES = {
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
}
# samples/bookinfo/platform/kube/bookinfo.yaml at 1.30.3 (and 1.31.0), with its images from
# docker.io/istio: Istio retires the sample's registry.istio.io/release in late 2026.
UPSTREAM_DEPLOYMENTS = {
    ("details", "v1"): "docker.io/istio/examples-bookinfo-details-v1:1.20.3",
    ("ratings", "v1"): "docker.io/istio/examples-bookinfo-ratings-v1:1.20.3",
    ("reviews", "v1"): "docker.io/istio/examples-bookinfo-reviews-v1:1.20.3",
    ("reviews", "v2"): "docker.io/istio/examples-bookinfo-reviews-v2:1.20.3",
    ("reviews", "v3"): "docker.io/istio/examples-bookinfo-reviews-v3:1.20.3",
    ("productpage", "v1"): "docker.io/istio/examples-bookinfo-productpage-v1:1.20.3",
}
UPSTREAM_SERVICES = ("details", "ratings", "reviews", "productpage")
UPSTREAM_PORT = 9080
# samples/bookinfo/networking/bookinfo-gateway.yaml: five OR-ed URI matches to productpage.
UPSTREAM_INGRESS_PATHS = {
    ("exact", "/productpage"),
    ("prefix", "/static"),
    ("exact", "/login"),
    ("exact", "/logout"),
    ("prefix", "/api/v1/products"),
}
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"

RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_PROVIDER = "pulumi:providers:kubernetes"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
SUBNET = "aws:ec2/subnet:Subnet"


# --- Helpers ---------------------------------------------------------------------------------
def build(func: Callable[[], object]) -> ProgramRun:
    run = run_under_mocks(func)
    assert run.error is None, f"building the component failed: {run.error!r}"
    return run


def one(run: ProgramRun, type_: str) -> RegisteredResource:
    found = run.of_type(type_)
    assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
    return found[0]


def dependencies(run: ProgramRun, resource: RegisteredResource) -> list[RegisteredResource]:
    by_urn = {r.urn: r for r in run.resources}
    return [by_urn[u] for u in resource.dependencies if u in by_urn]


def depends_on(resource: RegisteredResource, *others: RegisteredResource) -> bool:
    return all(o.urn in resource.dependencies for o in others)


def children_of(run: ProgramRun, component: RegisteredResource) -> list[RegisteredResource]:
    return [r for r in run.resources if r.parent == component.urn]


def assert_children(run: ProgramRun, component_type: str, outside: Iterable[str]) -> None:
    """Everything but the stand-ins (`outside`) is a child of the one component."""
    component = one(run, component_type)
    stray = [
        r.name
        for r in run.resources
        if r.urn != component.urn and r.name not in set(outside) and r.parent != component.urn
    ]
    assert not stray, f"{component_type} resources not parented to it: {stray}"
    assert children_of(run, component), f"{component_type} registered no children"


def uses_provider(resource: RegisteredResource, provider: RegisteredResource) -> bool:
    return (resource.provider or "").startswith(provider.urn + "::")


def k8s_standins() -> tuple[k8s.Provider, pulumi.ResourceOptions]:
    provider = k8s.Provider("standin-k8s", kubeconfig=FAKE_KUBECONFIG)
    return provider, pulumi.ResourceOptions(providers={"kubernetes": provider})


def standin_namespace(name: str, provider: k8s.Provider) -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace(
        name, metadata={"name": name}, opts=pulumi.ResourceOptions(provider=provider)
    )


# --- Network ----------------------------------------------------------------------------------
NETWORK_SHAPES = [(2, "single"), (2, "perAz"), (3, "perAz"), (4, "single")]
VPC_CIDR = "10.20.0.0/16"


@pytest.fixture(scope="module", params=NETWORK_SHAPES, ids=lambda p: f"{p[0]}az-{p[1]}")
def network(request: pytest.FixtureRequest) -> tuple[NetworkArgs, ProgramRun]:
    az_count, nat = request.param
    args = NetworkArgs(
        vpc_cidr=VPC_CIDR,
        availability_zones=tuple(f"zz-test-1{c}" for c in "abcd"[:az_count]),
        nat_gateways=nat,
        tags={"team": "mesh"},
    )
    return args, build(lambda: Network("net", args))


def subnets(run: ProgramRun, role_tag: str) -> list[RegisteredResource]:
    return [s for s in run.of_type(SUBNET) if s.inputs.get("tags", {}).get(role_tag) == "1"]


def public_subnets(run: ProgramRun) -> list[RegisteredResource]:
    return subnets(run, "kubernetes.io/role/elb")


def private_subnets(run: ProgramRun) -> list[RegisteredResource]:
    return subnets(run, "kubernetes.io/role/internal-elb")


def route_table_of(run: ProgramRun, subnet: RegisteredResource) -> RegisteredResource:
    associations = [
        a
        for a in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
        if depends_on(a, subnet)
    ]
    assert len(associations) == 1, f"{subnet.name} has {len(associations)} route tables"
    tables = [
        d for d in dependencies(run, associations[0]) if d.type == "aws:ec2/routeTable:RouteTable"
    ]
    assert len(tables) == 1, f"association of {subnet.name} names {len(tables)} route tables"
    return tables[0]


def default_route(table: RegisteredResource) -> dict:
    routes = [r for r in table.inputs.get("routes", []) if r.get("cidrBlock") == "0.0.0.0/0"]
    assert len(routes) == 1, f"{table.name} has {len(routes)} default routes"
    return routes[0]


def test_network_has_a_public_and_a_private_subnet_in_every_az(network) -> None:
    args, run = network
    all_subnets = run.of_type(SUBNET)
    assert len(all_subnets) == 2 * len(args.availability_zones), (
        f"{len(all_subnets)} subnets for {len(args.availability_zones)} AZs"
    )
    for group in (public_subnets(run), private_subnets(run)):
        zones = sorted(s.inputs["availabilityZone"] for s in group)
        assert zones == sorted(args.availability_zones), f"subnets cover AZs {zones}"


def test_public_and_private_subnets_carry_only_their_own_load_balancer_role(network) -> None:
    _, run = network
    for subnet in run.of_type(SUBNET):
        tags = subnet.inputs.get("tags", {})
        roles = {t for t in tags if t.startswith("kubernetes.io/role/")}
        assert len(roles) == 1, f"{subnet.name} has load balancer roles {roles}"


def test_private_subnets_never_map_public_ips(network) -> None:
    _, run = network
    for subnet in private_subnets(run):
        assert subnet.inputs.get("mapPublicIpOnLaunch") is not True, (
            f"{subnet.name} gives nodes public IPs"
        )


def test_nat_gateways_number_one_or_one_per_az(network) -> None:
    args, run = network
    nats = run.of_type("aws:ec2/natGateway:NatGateway")
    expected = 1 if args.nat_gateways == "single" else len(args.availability_zones)
    assert len(nats) == expected, f"{args.nat_gateways}: {len(nats)} NAT gateways"
    eips = run.of_type("aws:ec2/eip:Eip")
    assert len(eips) == expected, f"{len(eips)} elastic IPs for {expected} NAT gateways"


def test_nat_gateways_sit_in_public_subnets_after_the_internet_gateway(network) -> None:
    _, run = network
    igw = one(run, "aws:ec2/internetGateway:InternetGateway")
    public = {s.urn for s in public_subnets(run)}
    for nat in run.of_type("aws:ec2/natGateway:NatGateway"):
        homes = [d.urn for d in dependencies(run, nat) if d.type == SUBNET]
        assert len(homes) == 1 and homes[0] in public, f"{nat.name} is not in a public subnet"
        assert depends_on(nat, igw), f"{nat.name} may be created before the internet gateway"


def test_public_subnets_reach_the_internet_through_the_internet_gateway(network) -> None:
    _, run = network
    igw = one(run, "aws:ec2/internetGateway:InternetGateway")
    for subnet in public_subnets(run):
        table = route_table_of(run, subnet)
        assert default_route(table).get("gatewayId"), f"{table.name} has no IGW default route"
        assert depends_on(table, igw), f"{table.name} routes elsewhere than the IGW"


def test_private_subnets_reach_the_internet_through_a_nat_gateway(network) -> None:
    args, run = network
    for subnet in private_subnets(run):
        table = route_table_of(run, subnet)
        assert default_route(table).get("natGatewayId"), f"{table.name} has no NAT route"
        assert "gatewayId" not in default_route(table), f"{table.name} bypasses NAT"
        nats = [d for d in dependencies(run, table) if d.type == "aws:ec2/natGateway:NatGateway"]
        assert len(nats) == 1, f"{table.name} depends on NATs {[n.name for n in nats]}"
        if args.nat_gateways == "perAz":
            nat_subnet = next(d for d in dependencies(run, nats[0]) if d.type == SUBNET)
            assert nat_subnet.inputs["availabilityZone"] == subnet.inputs["availabilityZone"], (
                f"perAz: {subnet.name} egresses through {nats[0].name} in another AZ"
            )


def test_subnets_lie_inside_the_vpc_without_overlapping(network) -> None:
    _, run = network
    vpc = one(run, "aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == VPC_CIDR, f"VPC got {vpc.inputs['cidrBlock']}"
    blocks = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in run.of_type(SUBNET)]
    for block in blocks:
        assert block.subnet_of(ipaddress.ip_network(VPC_CIDR)), f"{block} is outside the VPC"
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            assert not a.overlaps(b), f"subnets {a} and {b} overlap"


def test_network_tags_its_resources_and_parents_them(network) -> None:
    _, run = network
    assert one(run, "aws:ec2/vpc:Vpc").inputs["tags"].get("team") == "mesh", "tags not passed"
    assert_children(run, "bookinfo:index:Network", outside=())


# --- Cluster ----------------------------------------------------------------------------------
PRIVATE_SUBNETS = ["subnet-private-a", "subnet-private-b"]
PUBLIC_SUBNETS = ["subnet-public-a", "subnet-public-b"]


def cluster_args(hardened: bool) -> ClusterArgs:
    return ClusterArgs(
        cluster_name="bookinfo-test",
        vpc_id="vpc-standin",
        public_subnet_ids=PUBLIC_SUBNETS,
        private_subnet_ids=PRIVATE_SUBNETS,
        kubernetes_version="1.35",
        instance_types=("t3.large",),
        ami_type="AL2023_x86_64_STANDARD",
        node_min=2,
        node_desired=2,
        node_max=3,
        endpoint_public_access_cidrs=("203.0.113.0/24",) if hardened else ("0.0.0.0/0",),
        encrypt_secrets=hardened,
    )


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "hardened"])
def cluster(request: pytest.FixtureRequest) -> tuple[ClusterArgs, bool, ProgramRun]:
    hardened = request.param
    args = cluster_args(hardened)
    return (
        args,
        hardened,
        build(lambda: Cluster("cl", args, opts=pulumi.ResourceOptions(protect=hardened))),
    )


def test_cluster_is_one_eks_cluster_with_api_auth_oidc_and_no_default_nodes(cluster) -> None:
    args, _, run = cluster
    eks = one(run, "eks:index:Cluster").inputs
    assert eks["name"] == args.cluster_name, f"cluster named {eks['name']}"
    assert eks["authenticationMode"] == "API", f"authenticationMode {eks['authenticationMode']}"
    assert eks["skipDefaultNodeGroup"] is True, "pulumi-eks would add a self-managed group"
    assert eks["createOidcProvider"] is True, "no OIDC provider: pods cannot assume IAM roles"
    assert eks["vpcId"] == args.vpc_id, f"cluster in VPC {eks['vpcId']}"
    assert eks["privateSubnetIds"] == PRIVATE_SUBNETS, f"private subnets {eks['privateSubnetIds']}"
    assert eks["publicAccessCidrs"] == list(args.endpoint_public_access_cidrs), (
        f"API reachable from {eks['publicAccessCidrs']}"
    )


def test_cluster_ships_every_control_plane_log_type(cluster) -> None:
    _, _, run = cluster
    logs = set(one(run, "eks:index:Cluster").inputs.get("enabledClusterLogTypes", []))
    assert logs == EKS_LOG_TYPES, f"control-plane logs {logs}, missing {EKS_LOG_TYPES - logs}"


def test_nodes_run_in_private_subnets_on_al2023(cluster) -> None:
    args, _, run = cluster
    nodes = one(run, "eks:index:ManagedNodeGroup")
    assert nodes.inputs["subnetIds"] == PRIVATE_SUBNETS, f"nodes in {nodes.inputs['subnetIds']}"
    assert nodes.inputs["amiType"] == args.ami_type, f"amiType {nodes.inputs['amiType']}"
    assert nodes.inputs["amiType"].startswith("AL2023"), "AL2 has no AMIs for Kubernetes 1.33+"
    assert nodes.inputs["cluster"] == one(run, "eks:index:Cluster").urn, "group of another cluster"
    scaling = nodes.inputs["scalingConfig"]
    assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == (
        args.node_min,
        args.node_desired,
        args.node_max,
    ), f"scaling {scaling}"


def test_nodes_require_imdsv2_through_their_launch_template(cluster) -> None:
    _, _, run = cluster
    template = one(run, "aws:ec2/launchTemplate:LaunchTemplate")
    options = template.inputs["metadataOptions"]
    assert options["httpTokens"] == "required", f"IMDSv1 still allowed: {options}"
    assert options["httpPutResponseHopLimit"] == 1, f"pods can reach node credentials: {options}"
    assert depends_on(one(run, "eks:index:ManagedNodeGroup"), template), "template not used"


def test_nodes_join_only_after_their_role_has_its_policies(cluster) -> None:
    _, _, run = cluster
    attachments = run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert {a.inputs["policyArn"] for a in attachments} == NODE_POLICIES, "node policies differ"
    nodes = one(run, "eks:index:ManagedNodeGroup")
    assert depends_on(nodes, *attachments), "node group may start before its policies attach"


def test_secrets_get_a_rotating_kms_key_only_when_asked(cluster) -> None:
    args, _, run = cluster
    keys = run.of_type("aws:kms/key:Key")
    eks = one(run, "eks:index:Cluster")
    if not args.encrypt_secrets:
        assert keys == [], f"unrequested KMS keys {[k.name for k in keys]}"
        assert not eks.inputs.get("encryptionConfigKeyArn"), "encryption set without a key"
        return
    assert len(keys) == 1, f"{len(keys)} KMS keys for secrets encryption"
    assert keys[0].inputs.get("enableKeyRotation") is True, "secrets key does not rotate"
    assert eks.inputs.get("encryptionConfigKeyArn"), "cluster does not use the KMS key"
    assert depends_on(eks, keys[0]), "cluster may be created before its KMS key"


def test_protect_guards_the_control_plane_and_its_key_but_not_the_replaceable_nodes(
    cluster,
) -> None:
    _, protect, run = cluster
    eks = one(run, "eks:index:Cluster")
    assert eks.protect is protect, f"protect={protect} but cluster.protect={eks.protect}"
    assert eks.inputs["deletionProtection"] is protect, "EKS deletion protection differs"
    for key in run.of_type("aws:kms/key:Key"):
        assert key.protect is protect, f"secrets key protect={key.protect}"
    replaceable = [
        *run.of_type("eks:index:ManagedNodeGroup"),
        *run.of_type("aws:ec2/launchTemplate:LaunchTemplate"),
        *run.of_type("aws:iam/role:Role"),
        *run.of_type(K8S_PROVIDER),
    ]
    protected = [r.name for r in replaceable if r.protect]
    assert protected == [], (
        f"{protected} are protected: an instance-type change could not replace them"
    )


def test_cluster_offers_a_kubernetes_provider_with_a_secret_kubeconfig(cluster) -> None:
    _, _, run = cluster
    provider = one(run, K8S_PROVIDER)
    assert provider.inputs.get("kubeconfig") == SECRET, "kubeconfig is not marked secret"
    assert depends_on(provider, one(run, "eks:index:Cluster")), "provider before the cluster"
    assert_children(run, "bookinfo:index:Cluster", outside=())


# --- IstioMesh --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mesh() -> ProgramRun:
    def program() -> None:
        provider, on_cluster = k8s_standins()
        nodes = standin_namespace("standin-nodes", provider)
        IstioMesh(
            "mesh",
            IstioMeshArgs(control_plane=ControlPlane(Revision(parse_release(ISTIO_VERSION)))),
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(depends_on=[nodes])
            ),
        )

    return build(program)


def releases(run: ProgramRun) -> dict[str, RegisteredResource]:
    return {r.inputs.get("name", f"<auto-named {r.name}>"): r for r in run.of_type(RELEASE)}


def test_mesh_installs_base_istiod_and_gateway_charts_under_fixed_names(mesh) -> None:
    got = {name: r.inputs["chart"] for name, r in releases(mesh).items()}
    expected = {"istio-base": "base", "istiod-1-30": "istiod", "istio-ingressgateway": "gateway"}
    assert got == expected, f"Helm releases {got}; a random suffix would break istio= labels"


def test_mesh_runs_istiod_as_the_revision_of_its_minor_and_the_gateway_on_it(mesh) -> None:
    by_name = releases(mesh)
    assert by_name["istiod-1-30"].inputs["values"]["revision"] == "1-30"
    assert by_name["istio-ingressgateway"].inputs["values"]["revision"] == "1-30"
    assert by_name["istio-base"].inputs["values"] == {"defaultRevision": "1-30"}, (
        "the default validator must be served by an installed revision"
    )


def test_mesh_pins_every_chart_to_the_istio_version_from_the_istio_repo(mesh) -> None:
    for name, release in releases(mesh).items():
        assert release.inputs["version"] == ISTIO_VERSION, f"{name} at {release.inputs['version']}"
        repo = release.inputs.get("repositoryOpts", {}).get("repo")
        assert repo == ISTIO_CHART_REPO, f"{name} from {repo}"


def test_mesh_puts_the_control_plane_and_gateway_in_their_namespaces(mesh) -> None:
    namespaces = {name: r.inputs["namespace"] for name, r in releases(mesh).items()}
    expected = {
        "istio-base": "istio-system",
        "istiod-1-30": "istio-system",
        "istio-ingressgateway": "istio-ingress",
    }
    assert namespaces == expected, f"release namespaces {namespaces}"
    created = {
        n.inputs["metadata"]["name"]: n.inputs["metadata"].get("labels", {})
        for n in mesh.of_type("kubernetes:core/v1:Namespace")
        if n.name != "standin-nodes"
    }
    assert set(created) == {"istio-system", "istio-ingress"}, f"namespaces created {created}"
    assert created["istio-ingress"].get("istio-injection") != "disabled", (
        "the gateway pods need injection in istio-ingress"
    )


def test_mesh_installs_base_then_istiod_then_gateway_after_the_nodes(mesh) -> None:
    by_name = releases(mesh)
    base, istiod, gateway = (
        by_name["istio-base"],
        by_name["istiod-1-30"],
        by_name["istio-ingressgateway"],
    )
    assert depends_on(istiod, base), "istiod may install before base's CRDs"
    assert depends_on(gateway, istiod), "gateway may install before istiod's injector"
    nodes = mesh.named("standin-nodes")
    reach = {base.urn}
    frontier = [base]
    while frontier:
        for dep in dependencies(mesh, frontier.pop()):
            if dep.urn not in reach:
                reach.add(dep.urn)
                frontier.append(dep)
    assert nodes.urn in reach, "charts may install before the nodes exist"


def test_gateway_service_asks_aws_for_an_internet_facing_nlb(mesh) -> None:
    """The site must be reachable from the internet: an NLB, and nothing making it internal.
    The gateway chart's Service is type LoadBalancer unless values say otherwise; AWS's
    in-tree provider makes it internal on `aws-load-balancer-internal`, the AWS Load
    Balancer Controller on `aws-load-balancer-scheme: internal`."""
    service = releases(mesh)["istio-ingressgateway"].inputs.get("values", {}).get("service", {})
    assert service.get("type", "LoadBalancer") == "LoadBalancer", f"gateway Service {service}"
    annotations = service.get("annotations", {})
    assert annotations.get("service.beta.kubernetes.io/aws-load-balancer-type") == "nlb", (
        f"gateway Service annotations {annotations}: EKS would create a classic ELB"
    )
    internal = annotations.get("service.beta.kubernetes.io/aws-load-balancer-internal")
    assert internal in (None, "false"), f"the NLB is internal ({internal}): no one can reach it"
    scheme = annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme")
    assert scheme in (None, "internet-facing"), f"the NLB's scheme is {scheme}, not public"


def test_mesh_talks_to_the_cluster_through_the_given_provider(mesh) -> None:
    provider = mesh.named("standin-k8s")
    for release in mesh.of_type(RELEASE):
        assert uses_provider(release, provider), f"{release.name} uses {release.provider}"
    assert_children(mesh, "bookinfo:index:IstioMesh", outside=("standin-k8s", "standin-nodes"))


# --- Bookinfo ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app() -> ProgramRun:
    def program() -> None:
        provider, on_cluster = k8s_standins()
        istiod = standin_namespace("standin-istiod", provider)
        Bookinfo(
            "app",
            BookinfoArgs(istio_version="1.30.3"),
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(depends_on=[istiod])
            ),
        )

    return build(program)


def of_kind(run: ProgramRun, type_: str) -> dict[str, RegisteredResource]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(type_)}


def test_bookinfo_namespace_follows_the_stable_revision_tag_for_its_sidecars(app) -> None:
    namespaces = of_kind(app, "kubernetes:core/v1:Namespace")
    namespaces.pop("standin-istiod")
    assert list(namespaces) == ["bookinfo"], f"namespaces {list(namespaces)}"
    labels = namespaces["bookinfo"].inputs["metadata"].get("labels", {})
    # istio-injection would outrank the tag and name no revision (istio.io canary docs).
    assert labels == {"istio.io/rev": "stable"}, f"namespace labels {labels}"


def test_bookinfo_has_the_upstream_service_accounts_and_services(app) -> None:
    accounts = of_kind(app, "kubernetes:core/v1:ServiceAccount")
    assert set(accounts) == {f"bookinfo-{s}" for s in UPSTREAM_SERVICES}, f"{set(accounts)}"
    services = of_kind(app, "kubernetes:core/v1:Service")
    assert set(services) == set(UPSTREAM_SERVICES), f"services {set(services)}"
    for name, service in services.items():
        spec = service.inputs["spec"]
        assert [p["port"] for p in spec["ports"]] == [UPSTREAM_PORT], f"{name} ports {spec}"
        assert spec["ports"][0].get("name") == "http", f"{name} port not named http for Istio"
        assert spec["selector"] == {"app": name}, f"{name} selects {spec['selector']}"


def test_bookinfo_runs_the_upstream_images_with_app_and_version_labels(app) -> None:
    deployments = app.of_type(DEPLOYMENT)
    got = {}
    for deployment in deployments:
        spec = deployment.inputs["spec"]
        labels = spec["template"]["metadata"]["labels"]
        key = (labels.get("app"), labels.get("version"))
        got[key] = spec["template"]["spec"]["containers"][0]["image"]
        assert spec["selector"]["matchLabels"] == {"app": key[0], "version": key[1]}, (
            f"{deployment.name} selects {spec['selector']}"
        )
        assert spec["template"]["spec"]["serviceAccountName"] == f"bookinfo-{key[0]}", (
            f"{deployment.name} runs as {spec['template']['spec'].get('serviceAccountName')}"
        )
    assert got == UPSTREAM_DEPLOYMENTS, f"deployments differ from bookinfo.yaml: {got}"


def test_bookinfo_pods_wait_for_istiod_and_their_accounts(app) -> None:
    istiod = app.named("standin-istiod")
    accounts = {
        r.inputs["metadata"]["name"]: r for r in app.of_type("kubernetes:core/v1:ServiceAccount")
    }
    for deployment in app.of_type(DEPLOYMENT):
        assert depends_on(deployment, istiod), f"{deployment.name} may start without a sidecar"
        account = deployment.inputs["spec"]["template"]["spec"]["serviceAccountName"]
        assert depends_on(deployment, accounts[account]), f"{deployment.name} before {account}"


def test_bookinfo_gateway_selects_the_helm_ingress_gateway_on_port_80(app) -> None:
    gateway = one(app, GATEWAY).inputs["spec"]
    assert gateway["selector"] == {"istio": "ingressgateway"}, f"selector {gateway['selector']}"
    ports = [s["port"] for s in gateway["servers"]]
    assert [(p["number"], p["protocol"]) for p in ports] == [(80, "HTTP")], (
        f"gateway listens on {ports}; the Helm chart's Service forwards 80 -> 80"
    )


def test_bookinfo_ingress_routes_the_five_upstream_paths_to_productpage(app) -> None:
    gateway_name = one(app, GATEWAY).inputs["metadata"]["name"]
    ingress = one(app, VIRTUAL_SERVICE).inputs["spec"]
    assert ingress["gateways"] == [gateway_name], f"ingress VS bound to {ingress['gateways']}"
    (http,) = ingress["http"]
    paths = {(kind, path) for m in http["match"] for kind, path in m["uri"].items()}
    assert paths == UPSTREAM_INGRESS_PATHS, f"ingress paths {paths}"
    (route,) = http["route"]
    assert route["destination"] == {"host": "productpage", "port": {"number": UPSTREAM_PORT}}, (
        f"ingress goes to {route['destination']}"
    )


def test_bookinfo_istio_objects_wait_for_istiod_and_live_in_bookinfo(app) -> None:
    istiod = app.named("standin-istiod")
    for resource in app.resources:
        if "istio.io" in resource.type:
            assert depends_on(resource, istiod), f"{resource.name} may skip validation"
        if resource.custom and "namespace" in resource.inputs.get("metadata", {}):
            namespace = resource.inputs["metadata"]["namespace"]
            assert namespace == "bookinfo", f"{resource.name} in namespace {namespace}"
    assert_children(app, "bookinfo:index:Bookinfo", outside=("standin-k8s", "standin-istiod"))


# --- TrafficPolicy ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def policies() -> dict[Mode, ProgramRun]:
    def program(mode: Mode) -> Callable[[], None]:
        def build_policy() -> None:
            provider, on_cluster = k8s_standins()
            istiod = standin_namespace("standin-istiod", provider)
            namespace = standin_namespace("standin-bookinfo", provider)
            TrafficPolicy(
                "tp",
                TrafficPolicyArgs(routes=preset(mode)),
                opts=pulumi.ResourceOptions.merge(
                    on_cluster, pulumi.ResourceOptions(depends_on=[istiod, namespace])
                ),
            )

        return build_policy

    return {mode: build(program(mode)) for mode in Mode}


@pytest.mark.parametrize("mode", list(Mode))
def test_traffic_policy_has_a_rule_and_a_service_per_bookinfo_host(policies, mode) -> None:
    run = policies[mode]
    drs = {r.inputs["spec"]["host"] for r in run.of_type(DESTINATION_RULE)}
    vss = [h for r in run.of_type(VIRTUAL_SERVICE) for h in r.inputs["spec"]["hosts"]]
    assert drs == set(UPSTREAM_SERVICES), f"{mode}: DestinationRules for {drs}"
    assert sorted(vss) == sorted(UPSTREAM_SERVICES), f"{mode}: VirtualServices for {vss}"


@pytest.mark.parametrize("mode", list(Mode))
def test_each_virtual_service_waits_for_its_hosts_destination_rule(policies, mode) -> None:
    run = policies[mode]
    rules = {r.inputs["spec"]["host"]: r for r in run.of_type(DESTINATION_RULE)}
    for vs in run.of_type(VIRTUAL_SERVICE):
        host = vs.inputs["spec"]["hosts"][0]
        assert depends_on(vs, rules[host]), f"{mode}: VS {host} may name undefined subsets"


@pytest.mark.parametrize("mode", list(Mode))
def test_every_traffic_object_waits_for_the_prerequisites(policies, mode) -> None:
    run = policies[mode]
    prerequisites = [run.named("standin-istiod"), run.named("standin-bookinfo")]
    provider = run.named("standin-k8s")
    for resource in run.of_type(DESTINATION_RULE) + run.of_type(VIRTUAL_SERVICE):
        assert depends_on(resource, *prerequisites), f"{mode}: {resource.name} goes first"
        assert uses_provider(resource, provider), f"{mode}: {resource.name} on another cluster"
    assert_children(
        run,
        "bookinfo:index:TrafficPolicy",
        outside=("standin-k8s", "standin-istiod", "standin-bookinfo"),
    )


def test_the_mode_reaches_the_registered_virtual_services(policies) -> None:
    reviews = next(
        r for r in policies[Mode.USER_V2].of_type(VIRTUAL_SERVICE) if r.name.endswith("reviews")
    )
    first = reviews.inputs["spec"]["http"][0]
    assert first.get("match") == [{"headers": {"end-user": {"exact": "jason"}}}], f"{first}"
    assert [r["destination"]["subset"] for r in first["route"]] == ["v2"], f"{first}"


def test_traffic_policy_marks_faults_only_when_they_are_allowed() -> None:
    def program(allow: bool) -> Callable[[], None]:
        def build_policy() -> None:
            _, on_cluster = k8s_standins()
            TrafficPolicy(
                "tp",
                TrafficPolicyArgs(routes=preset(Mode.DELAY), allow_fault_injection=allow),
                on_cluster,
            )

        return build_policy

    for allow in (False, True):
        annotated = [
            r.name
            for r in build(program(allow)).of_type(VIRTUAL_SERVICE)
            if r.inputs["metadata"].get("annotations")
        ]
        assert bool(annotated) is allow, f"allow_fault_injection={allow}: annotated {annotated}"
