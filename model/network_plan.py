"""Pure subnet arithmetic for the VPC: which CIDR each AZ's public and private subnet gets."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# The largest VPC AWS allows is /16; below /20 the public subnets would be smaller than
# AWS's /28 minimum for a NAT gateway plus load balancer ENIs, and pods (VPC CNI gives each
# pod a VPC address) would run out of private addresses.
VPC_PREFIX_RANGE = (16, 20)
# Private subnets take one eighth of the VPC each (nodes and pods live there); public
# subnets one sixty-fourth (only NAT gateways and load balancers).
PRIVATE_EXTRA_BITS = 3
PUBLIC_EXTRA_BITS = 6
MIN_AZS = 2  # EKS refuses a cluster whose subnets span fewer than two AZs
MAX_AZS = 4  # four private eighths, public subnets carved from the fifth
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@dataclass(frozen=True)
class SubnetPair:
    """The two subnets of one availability zone."""

    public_cidr: str
    private_cidr: str


def plan_subnets(vpc_cidr: str, az_count: int) -> tuple[SubnetPair, ...]:
    """Non-overlapping subnets for `az_count` AZs inside `vpc_cidr`; ValueError if impossible."""
    vpc = ipaddress.ip_network(vpc_cidr)  # strict: host bits set are an error
    if not isinstance(vpc, ipaddress.IPv4Network):
        raise ValueError(f"{vpc_cidr} is not an IPv4 network")
    low, high = VPC_PREFIX_RANGE
    if not low <= vpc.prefixlen <= high:
        raise ValueError(f"{vpc_cidr} must be a /{low} to /{high} network")
    if not MIN_AZS <= az_count <= MAX_AZS:
        raise ValueError(f"az count {az_count} must be {MIN_AZS}..{MAX_AZS}")
    eighths = list(vpc.subnets(prefixlen_diff=PRIVATE_EXTRA_BITS))
    public_pool = eighths[MAX_AZS].subnets(prefixlen_diff=PUBLIC_EXTRA_BITS - PRIVATE_EXTRA_BITS)
    return tuple(
        SubnetPair(str(public), str(private))
        for public, private in zip(public_pool, eighths[:az_count], strict=False)
    )
