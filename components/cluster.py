"""Cluster: an EKS control plane, a managed node group in the private subnets, a k8s provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components.eks_addons import eks_addon
from components.options import is_protected
from model.access import Grant, trust_policy

CONTROL_PLANE_LOG_TYPES: tuple[str, ...] = (
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
)
NODE_POLICY_ARNS: tuple[str, ...] = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)


@dataclass(frozen=True)
class ClusterArgs:
    """Where the cluster lives and how big it is."""

    cluster_name: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    kubernetes_version: str
    instance_types: tuple[str, ...]
    ami_type: str
    node_min: int
    node_desired: int
    node_max: int
    endpoint_public_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    endpoint_private_access: bool = True
    endpoint_public_access: bool = True
    grants: tuple[Grant, ...] = ()
    encrypt_secrets: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


class Cluster(pulumi.ComponentResource):
    """EKS with API access entries, OIDC, control-plane logs and IMDSv2-only nodes.

    `protect` in its ResourceOptions guards what holds the cluster's state: the control plane
    (also with EKS deletion protection) and the secrets key. The nodes, their role and
    template stay replaceable, since changing the instance types replaces the node group.
    """

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    nodes: eks.ManagedNodeGroup
    coredns: aws.eks.Addon
    provider: k8s.Provider

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:Cluster", name, None, opts)
        self._name = name
        self._args = args
        self._protect = is_protected(opts)

        key_arn = self._secrets_key_arn() if args.encrypt_secrets else None
        cluster = self._control_plane(key_arn)
        self.nodes = self._node_group(cluster)
        self.cluster_name = pulumi.Output.from_input(args.cluster_name)
        self.coredns = self._coredns()
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, opts=self._replaceable()
        )
        self.register_outputs({"clusterName": self.cluster_name, "kubeconfig": self.kubeconfig})

    def _guarded(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, protect=self._protect)

    def _replaceable(self, **extra: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, protect=False, **extra)

    def _secrets_key_arn(self) -> pulumi.Output[str]:
        """A dedicated, rotating KMS key for envelope encryption of Kubernetes secrets."""
        key = aws.kms.Key(
            f"{self._name}-secrets-key",
            description=f"Envelope encryption of Kubernetes secrets in {self._args.cluster_name}",
            enable_key_rotation=True,
            tags=dict(self._args.tags),
            opts=self._guarded(),
        )
        return key.arn

    def _control_plane(self, key_arn: pulumi.Output[str] | None) -> eks.Cluster:
        args = self._args
        return eks.Cluster(
            f"{self._name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            public_subnet_ids=args.public_subnet_ids,
            private_subnet_ids=args.private_subnet_ids,
            # Nodes come from the managed node group, never from pulumi-eks's default
            # self-managed group.
            skip_default_node_group=True,
            authentication_mode=eks.AuthenticationMode.API,
            create_oidc_provider=True,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            endpoint_private_access=args.endpoint_private_access,
            endpoint_public_access=args.endpoint_public_access,
            public_access_cidrs=list(args.endpoint_public_access_cidrs),
            # The creator keeps admin (pulumi-eks always bootstraps it); everyone else needs
            # an entry here, or the API answers Unauthorized.
            access_entries={
                grant.entry_name: eks.AccessEntryArgs(
                    principal_arn=grant.principal_arn,
                    type=eks.AccessEntryType.STANDARD,
                    access_policies={
                        "policy": eks.AccessPolicyAssociationArgs(
                            policy_arn=grant.level.policy_arn,
                            access_scope=grant.level.access_scope,
                        )
                    },
                )
                for grant in args.grants
            },
            encryption_config_key_arn=key_arn,
            deletion_protection=self._protect,
            tags=dict(args.tags),
            opts=self._guarded(),
        )

    def _node_role(self) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        """The nodes' IAM role and the attachments of the policies a node needs to join."""
        role = aws.iam.Role(
            f"{self._name}-node-role",
            assume_role_policy=trust_policy("ec2.amazonaws.com"),
            tags=dict(self._args.tags),
            opts=self._replaceable(),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{self._name}-node-role-{arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=arn,
                opts=self._replaceable(),
            )
            for arn in NODE_POLICY_ARNS
        ]
        return role, attachments

    def _launch_template(self) -> aws.ec2.LaunchTemplate:
        return aws.ec2.LaunchTemplate(
            f"{self._name}-node-lt",
            # IMDSv2 only, and a hop limit of 1 so pods cannot reach the node's credentials.
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
            },
            tags=dict(self._args.tags),
            opts=self._replaceable(),
        )

    def _node_group(self, cluster: eks.Cluster) -> eks.ManagedNodeGroup:
        args = self._args
        role, attachments = self._node_role()
        template = self._launch_template()
        return eks.ManagedNodeGroup(
            f"{self._name}-nodes",
            cluster=cluster,
            node_role=role,
            subnet_ids=args.private_subnet_ids,
            instance_types=list(args.instance_types),
            # pulumi-eks defaults to AL2, which has no AMIs for Kubernetes 1.33 and later.
            ami_type=args.ami_type,
            # pulumi-eks sets the version only without a launch template; without it here,
            # a kubernetesVersion bump would upgrade the control plane and leave the nodes.
            version=args.kubernetes_version,
            scaling_config={
                "min_size": args.node_min,
                "desired_size": args.node_desired,
                "max_size": args.node_max,
            },
            launch_template={
                "id": template.id,
                "version": template.latest_version.apply(str),
            },
            tags=dict(args.tags),
            # Nodes that join before their role can pull images or run the CNI stay NotReady.
            opts=self._replaceable(depends_on=attachments),
        )

    def _coredns(self) -> aws.eks.Addon:
        """CoreDNS as a managed add-on, at the newest version for the cluster's Kubernetes.

        pulumi-eks manages vpc-cni and kube-proxy itself, but with skip_default_node_group it
        leaves CoreDNS to EKS's unmanaged bootstrap copy, which no version bump updates. Its
        pods need nodes to become Active, so it comes after the node group.
        """
        # The name eks.Cluster was given; depends_on orders it after the cluster. It takes
        # over the bootstrap copy, and keeps DNS running if the add-on is removed.
        return eks_addon(
            f"{self._name}-coredns",
            "coredns",
            self.cluster_name,
            self._args.kubernetes_version,
            self._args.tags,
            self._replaceable(depends_on=[self.nodes]),
            preserve=True,
        )
