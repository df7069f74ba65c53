"""Network: a VPC with public and private subnets per AZ, an internet gateway and NAT."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from model.network_plan import plan_subnets

NatGateways = Literal["single", "perAz"]


@dataclass(frozen=True)
class NetworkArgs:
    """Shape of the VPC; every value is plain config."""

    vpc_cidr: str
    availability_zones: tuple[str, ...]
    nat_gateways: NatGateways = "single"
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    """VPC whose private subnets hold the nodes and whose public subnets hold NAT and NLBs.

    `protect` in its ResourceOptions protects every child: the network outlives the cluster.
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("bookinfo:index:Network", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        plan = plan_subnets(args.vpc_cidr, len(args.availability_zones))

        vpc, igw = self._vpc_with_internet_gateway()
        public_rt = self._route_table("public-rt", vpc, {"gateway_id": igw.id})
        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nat_id: pulumi.Output[str] | None = None
        for index, (az, pair) in enumerate(zip(args.availability_zones, plan, strict=True)):
            public = self._subnet("public", index, az, pair.public_cidr, vpc, public_rt)
            # perAz keeps each AZ's egress inside the AZ (no cross-AZ charges, no single
            # point of failure); single shares the first AZ's gateway.
            if args.nat_gateways == "perAz" or nat_id is None:
                nat_id = self._nat_gateway(index, az, public, igw)
            private_rt = self._route_table(
                f"private-{index}-rt", vpc, {"nat_gateway_id": nat_id}, f"private-{az}-rt"
            )
            private = self._subnet("private", index, az, pair.private_cidr, vpc, private_rt)
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

    def _tags(self, role: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self._args.tags, "Name": f"{self._name}-{role}", **(extra or {})}

    def _vpc_with_internet_gateway(self) -> tuple[aws.ec2.Vpc, aws.ec2.InternetGateway]:
        vpc = aws.ec2.Vpc(
            f"{self._name}-vpc",
            cidr_block=self._args.vpc_cidr,
            # EKS nodes register by private DNS name; both settings are required for that.
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self._tags("vpc"),
            opts=self._child,
        )
        igw = aws.ec2.InternetGateway(
            f"{self._name}-igw", vpc_id=vpc.id, tags=self._tags("igw"), opts=self._child
        )
        return vpc, igw

    def _route_table(
        self,
        role: str,
        vpc: aws.ec2.Vpc,
        default_route: Mapping[str, pulumi.Input[str]],
        tag_role: str | None = None,
    ) -> aws.ec2.RouteTable:
        """A route table whose default route (0.0.0.0/0) leaves through `default_route`."""
        return aws.ec2.RouteTable(
            f"{self._name}-{role}",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", **default_route}],
            tags=self._tags(tag_role or role),
            opts=self._child,
        )

    def _subnet(
        self,
        tier: Literal["public", "private"],
        index: int,
        az: str,
        cidr: str,
        vpc: aws.ec2.Vpc,
        route_table: aws.ec2.RouteTable,
    ) -> aws.ec2.Subnet:
        """One subnet of a tier in one AZ, associated with its route table."""
        # Where Kubernetes puts internet-facing (elb) or internal (internal-elb) load balancers.
        elb_role = (
            "kubernetes.io/role/elb" if tier == "public" else "kubernetes.io/role/internal-elb"
        )
        subnet = aws.ec2.Subnet(
            f"{self._name}-{tier}-{index}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=az,
            # Nothing launched here needs a public IP of its own: NAT uses an EIP, and the
            # NLB allocates its own addresses.
            map_public_ip_on_launch=False,
            tags=self._tags(f"{tier}-{az}", {elb_role: "1"}),
            opts=self._child,
        )
        aws.ec2.RouteTableAssociation(
            f"{self._name}-{tier}-{index}-rta",
            subnet_id=subnet.id,
            route_table_id=route_table.id,
            opts=self._child,
        )
        return subnet

    def _nat_gateway(
        self, index: int, az: str, public: aws.ec2.Subnet, igw: aws.ec2.InternetGateway
    ) -> pulumi.Output[str]:
        """A NAT gateway with its own Elastic IP in a public subnet; returns its id."""
        eip = aws.ec2.Eip(
            f"{self._name}-nat-{index}-eip",
            domain="vpc",
            tags=self._tags(f"nat-{az}"),
            opts=self._child,
        )
        nat = aws.ec2.NatGateway(
            f"{self._name}-nat-{index}",
            subnet_id=public.id,
            allocation_id=eip.id,
            tags=self._tags(f"nat-{az}"),
            # A NAT gateway in a subnet without an internet route cannot forward.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
        )
        return nat.id
