"""Who may use the cluster's Kubernetes API, and with which EKS access policy.

The one place that decides each access level. Why deployers get cluster-admin too:

- `pulumi preview` asks the API server for a server-side dry-run of every create and patch.
  The API server authorizes a dry-run exactly like the real request, so a preview needs the
  same write rights as `pulumi up`; read-only access (AmazonEKSAdminViewPolicy) fails it.
- Helm keeps each release as Secrets in the release's namespace (istio-system, istio-ingress)
  and reads them on every preview and upgrade.
- The program creates Namespaces, and the Istio charts install CRDs, webhook configurations,
  ClusterRoles and ClusterRoleBindings: cluster-scoped kinds that no namespace-scoped policy
  (AmazonEKSEditPolicy, AmazonEKSAdminPolicy) covers.
- RBAC lets a principal create a ClusterRole only with rights it already holds, or with the
  `escalate` verb. istiod's ClusterRole reads Secrets in every namespace, approves
  certificate signing requests and rewrites webhooks. A narrower role would hold all of
  that or `escalate`, which is cluster-admin in all but name, and would break on each
  Istio upgrade that adds a rule.

So the least access that both commands need is AmazonEKSClusterAdminPolicy on the whole
cluster. What keeps CI's roles narrow is on the AWS side: who may assume them (README,
"Working as a team").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# EKS access policies (aws eks list-access-policies).
CLUSTER_ADMIN_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class AccessLevel:
    """An EKS access policy and where it applies (cluster or namespaces)."""

    policy_arn: str
    scope: str = "cluster"
    namespaces: tuple[str, ...] = ()

    @property
    def access_scope(self) -> dict[str, object]:
        """The accessScope of an EKS access policy association."""
        scope: dict[str, object] = {"type": self.scope}
        if self.namespaces:
            scope["namespaces"] = list(self.namespaces)
        return scope


# Config key -> what each principal listed there gets.
ACCESS_LEVELS: dict[str, AccessLevel] = {
    "clusterAdmins": AccessLevel(CLUSTER_ADMIN_POLICY_ARN),
    "deployers": AccessLevel(CLUSTER_ADMIN_POLICY_ARN),
}


@dataclass(frozen=True)
class Grant:
    """One access entry: a principal and its access level."""

    role: str  # the config key that listed the principal
    principal_arn: str
    level: AccessLevel

    @property
    def entry_name(self) -> str:
        """A stable key for the entry: role, account and the principal's name."""
        account = self.principal_arn.split(":")[4]
        return f"{self.role}-{account}-{self.principal_arn.rsplit('/', 1)[-1]}"


def grants(cluster_admins: tuple[str, ...], deployers: tuple[str, ...]) -> tuple[Grant, ...]:
    """An access entry for every configured principal, with its level."""
    listed = {"clusterAdmins": cluster_admins, "deployers": deployers}
    return tuple(
        Grant(role, arn, ACCESS_LEVELS[role]) for role, arns in listed.items() for arn in arns
    )


def trust_policy(service: str, actions: tuple[str, ...] = ("sts:AssumeRole",)) -> str:
    """An IAM role's trust policy, as JSON: `service` (ec2.amazonaws.com, say) may assume it.
    One action is written as a string, as IAM itself writes it back."""
    action: str | list[str] = actions[0] if len(actions) == 1 else list(actions)
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": action}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
