"""Network: a VPC with public and private subnets per AZ, an internet gateway and NAT."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.network_plan import plan_subnets

NatGateways = Literal["single", "perAz"]


@dataclass(frozen=True)
class NetworkArgs:
    """Shape of the VPC; every value is plain config."""

    vpc_cidr: str
    availability_zones: tuple[str, ...]
    nat_gateways: NatGateways = "single"
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    """VPC whose private subnets hold the nodes and whose public subnets hold NAT and NLBs."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = plan_subnets(args.vpc_cidr, len(args.availability_zones))

        def tags(role: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
            return {**args.tags, "Name": f"{name}-{role}", **(extra or {})}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            # EKS nodes register by private DNS name; both settings are required for that.
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags("vpc"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=tags("public-rt"),
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nat_ids: list[pulumi.Output[str]] = []
        for index, (az, pair) in enumerate(zip(args.availability_zones, plan, strict=True)):
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=pair.public_cidr,
                availability_zone=az,
                # Nothing launched here needs a public IP of its own: NAT uses an EIP,
                # and the NLB allocates its own addresses.
                map_public_ip_on_launch=False,
                # Where Kubernetes puts internet-facing load balancers.
                tags=tags(f"public-{az}", {"kubernetes.io/role/elb": "1"}),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-rta",
                subnet_id=public.id,
                route_table_id=public_rt.id,
                opts=child,
            )
            if args.nat_gateways == "perAz" or index == 0:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{index}-eip", domain="vpc", tags=tags(f"nat-{az}"), opts=child
                )
                nat = aws.ec2.NatGateway(
                    f"{name}-nat-{index}",
                    subnet_id=public.id,
                    allocation_id=eip.id,
                    tags=tags(f"nat-{az}"),
                    # A NAT gateway in a subnet without an internet route cannot forward.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
                nat_ids.append(nat.id)
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=pair.private_cidr,
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags=tags(f"private-{az}", {"kubernetes.io/role/internal-elb": "1"}),
                opts=child,
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{index}-rt",
                vpc_id=vpc.id,
                # perAz keeps each AZ's egress inside the AZ (no cross-AZ charges, no
                # single point of failure); single shares the first AZ's gateway.
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat_ids[-1]}],
                tags=tags(f"private-{az}-rt"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-rta",
                subnet_id=private.id,
                route_table_id=private_rt.id,
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(private)

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )
