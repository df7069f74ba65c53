"""The pure plans behind Network and Cluster: subnet ranges per AZ and EKS access entries."""

from __future__ import annotations

import ipaddress

import pytest

from model.access import grants
from model.network_plan import SubnetPair, plan_subnets

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def test_a_16_is_cut_into_private_eighths_and_public_64ths_of_the_fifth_eighth() -> None:
    assert plan_subnets("10.0.0.0/16", 3) == (
        SubnetPair("10.0.128.0/22", "10.0.0.0/19"),
        SubnetPair("10.0.132.0/22", "10.0.32.0/19"),
        SubnetPair("10.0.136.0/22", "10.0.64.0/19"),
    )


def test_a_20_with_four_azs_fits_too() -> None:
    assert plan_subnets("172.16.16.0/20", 4) == (
        SubnetPair("172.16.24.0/26", "172.16.16.0/23"),
        SubnetPair("172.16.24.64/26", "172.16.18.0/23"),
        SubnetPair("172.16.24.128/26", "172.16.20.0/23"),
        SubnetPair("172.16.24.192/26", "172.16.22.0/23"),
    )


@pytest.mark.parametrize(
    ("cidr", "azs", "message"),
    [
        ("10.0.0.0/15", 2, "10.0.0.0/15 must be a /16 to /20 network"),
        ("10.0.0.0/21", 2, "10.0.0.0/21 must be a /16 to /20 network"),
        ("10.0.0.0/16", 1, "az count 1 must be 2..4"),
        ("10.0.0.0/16", 5, "az count 5 must be 2..4"),
        ("fd00::/56", 2, "fd00::/56 is not an IPv4 network"),
        ("10.0.0.1/16", 2, "10.0.0.1/16 has host bits set"),
    ],
)
def test_an_impossible_plan_says_why(cidr: str, azs: int, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        plan_subnets(cidr, azs)
    assert str(caught.value) == message


@pytest.mark.parametrize("azs", range(2, 5))
@pytest.mark.parametrize("prefix", range(16, 21))
def test_every_vpc_and_az_count_the_config_accepts_has_a_plan(prefix: int, azs: int) -> None:
    """Config checks vpcCidr (/16 to /20) and azCount (2 to 4) alone, relying on this."""
    vpc = ipaddress.ip_network(f"10.0.0.0/{prefix}")
    plan = plan_subnets(str(vpc), azs)
    subnets = [ipaddress.ip_network(c) for p in plan for c in (p.public_cidr, p.private_cidr)]
    assert len(plan) == azs
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1 :])
    # /28 is the smallest subnet AWS allows; Elastic Load Balancing asks for at least a /27.
    assert min(s.num_addresses for s in subnets) >= 32


def test_every_listed_principal_gets_a_cluster_wide_admin_entry_named_by_role_and_account() -> None:
    admin = "arn:aws:iam::111122223333:role/platform/admin"
    ci = "arn:aws-cn:iam::444455556666:user/ci-bot"
    found = grants((admin,), (ci,))
    assert [
        (g.role, g.principal_arn, g.level.policy_arn, g.level.access_scope, g.entry_name)
        for g in found
    ] == [
        (
            "clusterAdmins",
            admin,
            ADMIN_POLICY,
            {"type": "cluster"},
            "clusterAdmins-111122223333-admin",
        ),
        ("deployers", ci, ADMIN_POLICY, {"type": "cluster"}, "deployers-444455556666-ci-bot"),
    ]


def test_no_principals_no_entries() -> None:
    assert grants((), ()) == ()
