"""The whole stack: Network -> Cluster -> IstioMesh -> Bookinfo -> TrafficPolicy, with
Observability beside Bookinfo when the stack asks for it, and exports."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.bookinfo import Bookinfo, BookinfoArgs
from components.cluster import Cluster, ClusterArgs
from components.istio_mesh import IstioMesh, IstioMeshArgs
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.traffic_policy import TrafficPolicy, TrafficPolicyArgs
from model.access import grants
from stacks import sdk_internals
from stacks.config import (
    BOOKINFO_PODS,
    ConfigError,
    ConfigProblem,
    StackConfig,
    parse_stack_config,
)

# Only this module reads pulumi.Config; components get typed Args.

# The tag the policy pack reads to know a production stack.
PRODUCTION_TAG = ("environment", "production")


class StackConfigError(ConfigError, pulumi.RunError):
    """A ConfigError that `pulumi up` reports as its message alone, without a traceback."""


def read_stack_config() -> StackConfig:
    """Every config value of the project namespace, validated (raises StackConfigError)."""
    project = pulumi.get_project()
    config = pulumi.Config(project)
    raw = {key: config.require(key) for key in sdk_internals.config_keys_in_namespace(project)}
    try:
        return parse_stack_config(raw)
    except ConfigError as error:
        raise StackConfigError(error.problems) from None


def availability_zones(count: int) -> tuple[str, ...]:
    """The region's first `count` zones; fails, still before any resource, if it has fewer."""
    names = tuple(sorted(aws.get_availability_zones(state="available").names))
    if len(names) < count:
        raise StackConfigError(
            [
                ConfigProblem(
                    key="azCount",
                    value=count,
                    message=f"the region has only {len(names)} available AZs: {', '.join(names)}",
                )
            ]
        )
    return names[:count]


def build(config: StackConfig) -> None:
    """Register every component of the stack and export what a user needs."""
    stack = pulumi.get_stack()
    environment_key, production = PRODUCTION_TAG
    tags = {
        "project": pulumi.get_project(),
        "stack": stack,
        environment_key: production if config.production else "development",
    }
    network = Network(
        "network",
        NetworkArgs(
            vpc_cidr=config.vpc_cidr,
            availability_zones=availability_zones(config.az_count),
            nat_gateways=config.nat_gateways,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(protect=config.protect),
    )
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            cluster_name=f"bookinfo-{stack}",
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            kubernetes_version=config.kubernetes_version,
            instance_types=config.node_instance_types,
            ami_type=config.ami_type,
            node_min=config.node_min,
            node_desired=config.node_desired,
            node_max=config.node_max,
            endpoint_public_access_cidrs=config.endpoint_public_access_cidrs,
            endpoint_private_access=config.endpoint_private_access,
            endpoint_public_access=config.endpoint_public_access,
            grants=grants(config.cluster_admins, config.deployers),
            encrypt_secrets=config.encrypt_secrets,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(protect=config.protect),
    )
    providers = {"kubernetes": cluster.provider}
    plane = config.control_plane
    mesh = IstioMesh(
        "istio",
        IstioMeshArgs(control_plane=plane),
        # Nodes and cluster DNS first: the charts wait for their pods to be ready.
        opts=pulumi.ResourceOptions(
            providers=providers, depends_on=[cluster.nodes, cluster.coredns]
        ),
    )
    app = Bookinfo(
        "bookinfo",
        BookinfoArgs(istio_version=plane.workloads.version),
        # Workloads last in an Istio upgrade: after istiod, the tag that sends their pods to
        # it, and the gateway it programs.
        opts=pulumi.ResourceOptions(
            providers=providers, depends_on=[*mesh.istiods, *mesh.revision_tag, mesh.gateway]
        ),
    )
    traffic = TrafficPolicy(
        "traffic",
        TrafficPolicyArgs(
            routes=config.traffic_policy,
            workloads=BOOKINFO_PODS,
            allow_fault_injection=config.production and config.allow_fault_injection,
        ),
        opts=pulumi.ResourceOptions(providers=providers, depends_on=[*mesh.istiods, app.namespace]),
    )
    if config.observability:
        Observability(
            "observability",
            ObservabilityArgs(
                cluster_name=cluster.cluster_name,
                kubernetes_version=config.kubernetes_version,
                istio_release=plane.workloads.version,
                persistent=config.production,
                tags=tags,
            ),
            # Kiali reads istiod's config; the sidecars it scrapes come with Bookinfo.
            opts=pulumi.ResourceOptions(providers=providers, depends_on=[*mesh.istiods]),
        )
    pulumi.export(
        "productpageUrl", mesh.ingress_hostname.apply(lambda h: f"http://{h}/productpage")
    )
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("mode", config.mode.value)
    pulumi.export("routes", traffic.routes)
