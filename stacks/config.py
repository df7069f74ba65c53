"""Typed stack config: every key validated at once, before any resource is registered."""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from model.canary_gate import (
    GateThresholds,
    check_max_error_rate_increase,
    check_max_latency_ratio,
    check_max_p99_ms,
    check_min_requests,
)
from model.catalogue import SERVICES, WORKLOADS, deployed_versions
from model.control_plane import CANARY_STAGES, CanaryStage, ControlPlane, Revision
from model.http_policy import ServiceRoutes, parse_duration
from model.istio_releases import (
    MAX_CANARY_MINOR_JUMP,
    IstioRelease,
    parse_release,
    supported_kubernetes,
)
from model.network_plan import MAX_AZS, MIN_AZS, RFC1918, VPC_PREFIX_RANGE
from model.policy_config import RoutesChange, apply_routes, read_routes
from model.policy_validation import PolicyProblem, policy_problems
from model.routing import (
    MODES,
    Mode,
    RouteTable,
    TrafficSettings,
    bookinfo_policy,
    route_table,
)
from stacks.project import project_name

PROJECT = project_name()  # Pulumi.yaml decides it

# Kubernetes minors EKS offers (standard or extended support) in late 2026.
EKS_KUBERNETES_VERSIONS: tuple[str, ...] = ("1.32", "1.33", "1.34", "1.35", "1.36")
FAULT_MODES: tuple[Mode, ...] = (Mode.DELAY, Mode.ABORT)
# Istio rejects delays under 1 ms; beyond 5 min a "delay" is an outage, not a test.
FAULT_DELAY_RANGE_S = (0.001, 300.0)
NODE_MAX_LIMIT = 100
# A production API endpoint may be reached from ranges no wider than this (a /8 is already
# sixteen million addresses); 0.0.0.0/1 + 128.0.0.0/1 is caught too, since ranges are merged.
PRODUCTION_MIN_PREFIX = 8

_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
# productpage keeps the signed-in name in Flask's session cookie, and browsers drop cookies
# over 4093 bytes (Werkzeug's max_cookie_size), so a longer name never stays signed in. At
# 1024 characters the cookie is about 1.3 KB; productpage forwards it and "end-user: <name>"
# on every call, far inside Envoy's 60 KiB of request headers (Istio 1.30 keeps the default).
TEST_USER_MAX_LENGTH = 1024
# What an EKS access entry accepts: an IAM role or user of an account, in any AWS partition
# (arn:aws, arn:aws-cn, arn:aws-us-gov), with an optional path (role/ci/preview).
_IAM_PRINCIPAL_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)(/[\w+=,.@-]+)*/[\w+=,.@-]{1,128}"
)
# ASCII digits only: "\d" would also take full-width and other Unicode digits.
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
# No config number needs more digits. A longer one is kept at this size, past every range,
# so its key's own range check refuses it (Python will not even convert 4,300 digits).
_NUMBER_DIGITS = 18
_PAST_EVERY_RANGE = 10**_NUMBER_DIGITS
# Graviton families: a1, and those with a "g" after the generation digit (m7g, c6gn, t4g,
# r8gd, im4gn, is4gen). botocore's model names types but says nothing of their CPU, so the
# family name is the one offline source; tests check every Graviton family AWS lists.
_ARM_FAMILY = re.compile(r"(a1|[a-z]+\d+g[a-z]*)\.")
# What must fit on one node: istiod's requests (istio-discovery chart values, 500m and
# 2048Mi), which no other node can take a share of. EKS reserves 255Mi + 11Mi per pod and
# evicts below 100Mi, so a node needs 4 GiB of memory: sizes below medium (nano 0.5, micro 1,
# small 2 GiB) never have it, nor does medium where a family has 2 GiB per vCPU (c*, a1).
_TOO_SMALL_SIZES = frozenset({"nano", "micro", "small"})
_TWO_GIB_PER_VCPU = re.compile(r"(a1|c\d+[a-z-]*)\.medium")
ISTIOD_REQUESTS = {"cpu": "500m", "memory": "2048Mi"}


class ConfigProblem(BaseModel):
    """One bad config key: what it is, what it holds, what would be right."""

    key: str
    value: Any
    message: str

    def __str__(self) -> str:
        if self.value is None:
            shown = "(unset)"
        elif isinstance(self.value, str) and self.value.isascii() and self.value.isprintable():
            shown = f'"{self.value}"'  # as typed: JSON escaping would garble a JSON value
        else:
            try:
                shown = json.dumps(self.value)
            except (RecursionError, ValueError):  # nested too deep, or numbers too long
                shown = f"(a {type(self.value).__name__} too deep to show)"
        if len(shown) > 80:  # a long value would bury the message
            shown = f"{shown[:60]}... ({len(shown)} characters)"
        return f"{PROJECT}:{self.key} = {shown}: {self.message}"


class ConfigError(ValueError):
    """All problems of a stack config, reported together."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"invalid stack config: {problems[0]}")
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            super().__init__(f"invalid stack config ({len(problems)} problems):\n{lines}")


def _closest(value: str, allowed: Sequence[str]) -> str | None:
    """The allowed value `value` is most likely a misspelling of, ignoring case, if any."""
    by_lower = {a.lower(): a for a in allowed}
    close = difflib.get_close_matches(value.lower(), list(by_lower))  # best match first
    return by_lower[close[0]] if close else None


def _suggest(value: str, allowed: Sequence[str]) -> str:
    """(did you mean 'x'?)" for a likely misspelling, else nothing."""
    closest = _closest(value, allowed)
    return f" (did you mean {closest!r}?)" if closest else ""


def _suggest_each(values: Sequence[Any], allowed: Sequence[str]) -> str:
    """(did you mean 'x' for 'y', ...?)" for the likely misspellings among several values."""
    if len(values) == 1:
        return _suggest(str(values[0]), allowed)
    pairs = [(v, _closest(v, allowed)) for v in values if isinstance(v, str)]
    meant = ", ".join(f"{closest!r} for {v!r}" for v, closest in pairs if closest)
    return f" (did you mean {meant}?)" if meant else ""


def _listing(items: Sequence[str], one: str, several: str) -> str:
    """The items, comma-separated, then what is said of them, agreeing in number."""
    return f"{', '.join(items)} {one if len(items) == 1 else several}"


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    """`value` if allowed; the engine hands every config value over as a string."""
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}{_suggest(value, allowed)}")
    return value


def _parse_int(value: Any) -> int:
    """Whole numbers only: the engine passes "3"; "3.0", 3.5 and true are mistakes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return _whole_number(value)
    raise ValueError("must be a whole number of ASCII digits 0-9, without spaces")


def _whole_number(digits: str) -> int:
    """The int `digits` (a sign, then ASCII digits) says, or one past every range if longer."""
    if len(digits.lstrip("-")) <= _NUMBER_DIGITS:
        return int(digits)
    return -_PAST_EVERY_RANGE if digits.startswith("-") else _PAST_EVERY_RANGE


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise ValueError("must be true or false")


@dataclass(frozen=True)
class _Unreadable:
    """A JSON config value that cannot be read whole, and why."""

    reason: str


def _require_list(value: Any) -> Any:
    if isinstance(value, _Unreadable):
        raise ValueError(value.reason)
    if not isinstance(value, list | tuple):
        raise ValueError('must be a list, e.g. ["t3.large"] (YAML list or JSON array)')
    return value


def _require_object(value: Any) -> Any:
    if isinstance(value, _Unreadable):
        raise ValueError(value.reason)
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object of subset -> weight, e.g. {"v1": 90, "v3": 10}')
    return value


def _require_routes(value: Any) -> Any:
    if isinstance(value, _Unreadable):
        raise ValueError(value.reason)
    if not isinstance(value, dict):
        raise ValueError(
            'must map services to rules, e.g. {"reviews": {"http": [...]}} (set it with '
            "`pulumi config set --path 'routes.reviews.http[0]...'`)"
        )
    return value


ConfigInt = Annotated[int, BeforeValidator(_parse_int)]
ConfigBool = Annotated[bool, BeforeValidator(_parse_bool)]


def is_arm_instance_type(instance_type: str) -> bool:
    return _ARM_FAMILY.match(instance_type) is not None


@cache
def ec2_instance_types() -> frozenset[str]:
    """Every instance type the EC2 API accepts (generated from botocore's EC2 model)."""
    data = json.loads(Path(__file__).with_name("ec2_instance_types.json").read_text())
    return frozenset(data["instanceTypes"])


def too_small_for_istiod(instance_type: str) -> bool:
    """True when a node of this type has under 4 GiB of memory, so istiod cannot schedule."""
    size = instance_type.partition(".")[2]
    return size in _TOO_SMALL_SIZES or _TWO_GIB_PER_VCPU.fullmatch(instance_type) is not None


def _check_mode(value: str) -> str:
    return _one_of(value, MODES)


def _check_nat_gateways(value: str) -> str:
    return _one_of(value, ("single", "perAz"))


def _check_test_user(value: str) -> str:
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError(
            "must be a non-empty value of visible ASCII characters (it is sent as the "
            "HTTP header end-user), without leading or trailing spaces"
        )
    if len(value) > TEST_USER_MAX_LENGTH:
        raise ValueError(
            f"is {len(value)} characters; at most {TEST_USER_MAX_LENGTH} fit in productpage's "
            "session cookie (browsers drop cookies over 4093 bytes)"
        )
    return value


def _check_fault_delay(value: str) -> str:
    low, high = FAULT_DELAY_RANGE_S
    if not low <= parse_duration(value) <= high:
        raise ValueError(f"must be between 1ms and {high:g}s")
    return value


def _check_abort_status(value: int) -> int:
    if not 400 <= value <= 599:
        raise ValueError("must be an HTTP error status, 400 to 599")
    return value


def _check_percent(value: int) -> int:
    if not 0 <= value <= 100:
        raise ValueError("must be a percentage from 0 to 100")
    return value


def _check_split_weights(value: dict[str, int]) -> dict[str, int]:
    if any(isinstance(w, bool) or not isinstance(w, int) for w in value.values()):
        raise ValueError("weights must be whole numbers, like 90 and 10")
    subsets = deployed_versions("reviews")
    unknown = [s for s in value if s not in subsets]
    if unknown:
        hint = _suggest_each(unknown, subsets)
        raise ValueError(
            f"names reviews subsets {', '.join(map(repr, unknown))} that have no pods; "
            f"allowed subsets: {', '.join(subsets)}{hint}"
        )
    if any(not 0 <= w <= 100 for w in value.values()):
        raise ValueError("weights must be percentages, whole numbers from 0 to 100")
    if sum(value.values()) != 100:
        raise ValueError(
            f"weights must sum to 100 (they sum to {sum(value.values())}); Istio would "
            "not complain, it would just send traffic in other proportions than intended"
        )
    return value


def _check_vpc_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value)  # strict: host bits set are an error
    except ValueError as error:
        raise ValueError(f"must be an IPv4 network like 10.0.0.0/16 ({error})") from None
    if str(network) != value:
        raise ValueError(
            f"must be written canonically, as {network}: AWS is given the text as typed"
        )
    if network.version != 4 or not any(network.subnet_of(block) for block in RFC1918):
        raise ValueError("must be a private (RFC 1918) range: 10/8, 172.16/12 or 192.168/16")
    low, high = VPC_PREFIX_RANGE
    if not low <= network.prefixlen <= high:
        raise ValueError(
            f"must be a /{low} to /{high} network: AWS allows at most /{low}, and a smaller VPC "
            "leaves too few addresses for nodes and pods"
        )
    return value


def _check_az_count(value: int) -> int:
    if not MIN_AZS <= value <= MAX_AZS:
        raise ValueError(
            f"must be {MIN_AZS} to {MAX_AZS}: EKS needs two AZs, the subnet plan holds four"
        )
    return value


def _check_kubernetes_version(value: Any) -> Any:
    text = str(value)
    if re.fullmatch(r"\d+\.\d", text) and text not in EKS_KUBERNETES_VERSIONS:
        raise ValueError(
            f"must be one of {', '.join(EKS_KUBERNETES_VERSIONS)}; quote it in YAML "
            f"({text} is what an unquoted {text}0 becomes)"
        )
    return _one_of(text, EKS_KUBERNETES_VERSIONS)


def _check_instance_types(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("must list at least one EC2 instance type, e.g. [t3.large]")
    known = ec2_instance_types()
    bad = [t for t in value if not isinstance(t, str) or t not in known]
    if bad:
        named = _listing(
            [str(t) for t in bad], "is not an EC2 instance type", "are not EC2 instance types"
        )
        raise ValueError(f"{named} like t3.large{_suggest_each(bad, sorted(known))}")
    small = [t for t in value if too_small_for_istiod(t)]
    if small:
        raise ValueError(
            f"{_listing(small, 'has', 'have')} under 4 GiB of memory: istiod requests "
            f"{ISTIOD_REQUESTS['cpu']} CPU and {ISTIOD_REQUESTS['memory']} on one node; "
            "use t3.medium, m6i.large or larger"
        )
    if len({is_arm_instance_type(t) for t in value}) > 1:
        raise ValueError("mixes Graviton (arm64) and x86_64 types; one node group runs one AMI")
    return value


def _check_node_count(value: int) -> int:
    if not 1 <= value <= NODE_MAX_LIMIT:
        raise ValueError(f"must be 1 to {NODE_MAX_LIMIT}")
    return value


def _check_istio_version(value: str) -> str:
    parse_release(value)
    return value


def _check_canary_version(value: str) -> str:
    """An exact release like istioVersion, or "" for no canary."""
    return _check_istio_version(value) if value else value


def _check_canary_stage(value: str) -> str:
    return _one_of(value, CANARY_STAGES)


def _check_cidrs(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("must list at least one CIDR that may reach the Kubernetes API")
    for cidr in value:
        try:
            network = ipaddress.ip_network(cidr)  # strict: host bits set are an error
        except (TypeError, ValueError) as error:
            raise ValueError(f"{cidr!r} is not a CIDR ({error})") from None
        if str(network) != cidr:
            raise ValueError(f"{cidr!r} must be written canonically, as {str(network)!r}")
    return value


def _check_principal_arns(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [a for a in value if not isinstance(a, str) or not _IAM_PRINCIPAL_ARN.fullmatch(a)]
    if bad:
        named = _listing(
            [repr(a) for a in bad],
            "is not an IAM role or user ARN",
            "are not IAM role or user ARNs",
        )
        raise ValueError(f"{named} like arn:aws:iam::123456789012:role/ci-deploy")
    if len(set(value)) != len(value):
        raise ValueError("lists an ARN twice; each principal gets one access entry")
    return value


PrincipalArns = Annotated[
    tuple[Any, ...], BeforeValidator(_require_list), AfterValidator(_check_principal_arns)
]
NodeCount = Annotated[ConfigInt, AfterValidator(_check_node_count)]


def traffic_settings(values: Mapping[str, Any]) -> TrafficSettings:
    """The knobs of the fault and split steps, from the validated values of their keys."""
    return TrafficSettings(
        test_user=values["test_user"],
        fault_delay=values["fault_delay"],
        fault_abort_status=values["fault_abort_status"],
        fault_percent=values["fault_percent"],
        split_weights=dict(values["split_weights"]),
    )


class StackConfig(BaseModel):
    """The project's config keys (camelCase in Pulumi.yaml, snake_case here).

    No defaults here: Pulumi.yaml declares them, and the engine (or bookinfo_mesh.stack_files
    offline) supplies every declared key to the program.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    mode: Annotated[Mode, BeforeValidator(_check_mode)]
    test_user: Annotated[str, AfterValidator(_check_test_user)] = Field(alias="testUser")
    fault_delay: Annotated[str, AfterValidator(_check_fault_delay)] = Field(alias="faultDelay")
    fault_abort_status: Annotated[ConfigInt, AfterValidator(_check_abort_status)] = Field(
        alias="faultAbortStatus"
    )
    fault_percent: Annotated[ConfigInt, AfterValidator(_check_percent)] = Field(
        alias="faultPercent"
    )
    split_weights: Annotated[
        dict[str, Any], BeforeValidator(_require_object), AfterValidator(_check_split_weights)
    ] = Field(alias="splitWeights")
    routes: Annotated[dict[str, Any], BeforeValidator(_require_routes)]
    vpc_cidr: Annotated[str, AfterValidator(_check_vpc_cidr)] = Field(alias="vpcCidr")
    az_count: Annotated[ConfigInt, AfterValidator(_check_az_count)] = Field(alias="azCount")
    nat_gateways: Annotated[Literal["single", "perAz"], BeforeValidator(_check_nat_gateways)] = (
        Field(alias="natGateways")
    )
    kubernetes_version: Annotated[str, BeforeValidator(_check_kubernetes_version)] = Field(
        alias="kubernetesVersion"
    )
    node_instance_types: Annotated[
        tuple[str, ...], BeforeValidator(_require_list), AfterValidator(_check_instance_types)
    ] = Field(alias="nodeInstanceTypes")
    node_min: NodeCount = Field(alias="nodeMin")
    node_desired: NodeCount = Field(alias="nodeDesired")
    node_max: NodeCount = Field(alias="nodeMax")
    istio_version: Annotated[str, AfterValidator(_check_istio_version)] = Field(
        alias="istioVersion"
    )
    istio_canary_version: Annotated[str, AfterValidator(_check_canary_version)] = Field(
        alias="istioCanaryVersion"
    )
    istio_canary_stage: Annotated[CanaryStage, BeforeValidator(_check_canary_stage)] = Field(
        alias="istioCanaryStage"
    )
    observability: ConfigBool
    canary_min_requests: Annotated[ConfigInt, AfterValidator(check_min_requests)] = Field(
        alias="canaryMinRequests"
    )
    canary_max_error_rate_increase: Annotated[
        float, BeforeValidator(check_max_error_rate_increase)
    ] = Field(alias="canaryMaxErrorRateIncrease")
    canary_max_latency_ratio: Annotated[float, BeforeValidator(check_max_latency_ratio)] = Field(
        alias="canaryMaxLatencyRatio"
    )
    canary_max_p99_ms: Annotated[ConfigInt, AfterValidator(check_max_p99_ms)] = Field(
        alias="canaryMaxP99Ms"
    )
    production: ConfigBool
    allow_fault_injection: ConfigBool = Field(alias="allowFaultInjection")
    endpoint_public_access_cidrs: Annotated[
        tuple[str, ...], BeforeValidator(_require_list), AfterValidator(_check_cidrs)
    ] = Field(alias="endpointPublicAccessCidrs")
    endpoint_private_access: ConfigBool = Field(alias="endpointPrivateAccess")
    endpoint_public_access: ConfigBool = Field(alias="endpointPublicAccess")
    encrypt_secrets: ConfigBool = Field(alias="encryptSecrets")
    cluster_admins: PrincipalArns = Field(alias="clusterAdmins")
    deployers: PrincipalArns
    protect: ConfigBool

    @property
    def traffic(self) -> TrafficSettings:
        return traffic_settings(vars(self))

    @property
    def traffic_policy(self) -> tuple[ServiceRoutes, ...]:
        """The mode's preset with the `routes` key's changes applied (model.policy_config)."""
        preset = bookinfo_policy(route_table(self.mode, self.traffic))
        changes, _ = read_routes(self.routes, SERVICES)
        return apply_routes(preset, changes)

    @property
    def route_table(self) -> RouteTable:
        """Service -> its rules, as traffic_policy routes them."""
        return {routes.service.name: routes.rules for routes in self.traffic_policy}

    @property
    def gate_thresholds(self) -> GateThresholds:
        """When `bookinfo-mesh analyze` passes a canary on this stack."""
        return GateThresholds(
            self.canary_min_requests,
            self.canary_max_error_rate_increase,
            self.canary_max_latency_ratio,
            self.canary_max_p99_ms,
        )

    @property
    def control_plane(self) -> ControlPlane:
        """The istiod revisions to run and who follows which (model.control_plane)."""
        canary = self.istio_canary_version
        return ControlPlane(
            current=Revision(parse_release(self.istio_version)),
            canary=Revision(parse_release(canary)) if canary else None,
            stage=self.istio_canary_stage,
        )

    @property
    def ami_type(self) -> str:
        """Amazon Linux 2023 (AL2 has no AMIs for these Kubernetes versions) for the nodes' CPU."""
        arm = is_arm_instance_type(self.node_instance_types[0])
        return "AL2023_ARM_64_STANDARD" if arm else "AL2023_x86_64_STANDARD"


def _alias(name: str) -> str:
    return StackConfig.model_fields[name].alias or name


def _too_open(cidrs: tuple[str, ...]) -> bool:
    """True when the ranges, merged, include one wider than PRODUCTION_MIN_PREFIX."""
    networks = [ipaddress.ip_network(c) for c in cidrs]
    merged = [
        *ipaddress.collapse_addresses(n for n in networks if n.version == 4),
        *ipaddress.collapse_addresses(n for n in networks if n.version == 6),
    ]
    return any(n.prefixlen < PRODUCTION_MIN_PREFIX for n in merged)


def _control_plane_problems(v: Mapping[str, Any]) -> list[ConfigProblem]:
    """A canary that can take over from istioVersion, and a Kubernetes both of them support."""
    problems: list[ConfigProblem] = []
    canary_text = v.get("istio_canary_version")
    stage = v.get("istio_canary_stage")
    if canary_text == "" and stage not in (None, CanaryStage.INSTALLED):
        who = "the Bookinfo namespace's revision tag" + (
            " and the gateway" if stage is CanaryStage.GATEWAY else ""
        )
        problems.append(
            ConfigProblem(
                key="istioCanaryStage",
                value=stage.value,
                message=f"points {who} at a canary revision that is not installed; set "
                "istioCanaryVersion, or istioCanaryStage back to installed",
            )
        )
    if "istio_version" not in v:
        return problems
    current = parse_release(v["istio_version"])
    releases: list[IstioRelease] = [current]
    if canary_text:
        canary = parse_release(canary_text)
        message = _canary_problem(current, canary)
        if message:
            problems.append(
                ConfigProblem(key="istioCanaryVersion", value=canary_text, message=message)
            )
        else:
            releases.append(canary)
    if "kubernetes_version" in v:
        for release in releases:
            supported = supported_kubernetes(release)
            if v["kubernetes_version"] not in supported:
                problems.append(
                    ConfigProblem(
                        key="kubernetesVersion",
                        value=v["kubernetes_version"],
                        message=f"Istio {release} supports Kubernetes " + ", ".join(supported),
                    )
                )
    return problems


def _canary_problem(current: IstioRelease, canary: IstioRelease) -> str:
    """Why `canary` cannot run beside `current` as the next revision; "" if it can."""
    jump = canary.minor_number - current.minor_number
    if canary.major != current.major or jump < 0:
        return f"is older than istioVersion {current}; a canary is the newer minor"
    if jump == 0:
        return (
            f"is a patch of istioVersion's minor {current.minor}; patches are in-place "
            f"upgrades: set istioVersion to {canary} instead"
        )
    if jump > MAX_CANARY_MINOR_JUMP:
        return (
            f"is {jump} minors past istioVersion {current}; a canary upgrade jumps at most "
            f"{MAX_CANARY_MINOR_JUMP}, so go through {current.major}."
            f"{current.minor_number + MAX_CANARY_MINOR_JUMP} first"
        )
    return ""


def _cross_key_problems(v: Mapping[str, Any]) -> list[ConfigProblem]:
    """Checks that involve several keys; each runs when all of its keys are valid alone."""
    problems: list[ConfigProblem] = []

    def has(*names: str) -> bool:
        return all(n in v for n in names)

    # Compare whichever counts are valid on their own, so one bad count hides no other.
    counts = {_alias(n): v[n] for n in ("node_min", "node_desired", "node_max") if n in v}
    if list(counts.values()) != sorted(counts.values()):
        problems.append(
            ConfigProblem(
                key="nodeDesired" if "nodeDesired" in counts else "nodeMax",
                value=counts,
                message="must satisfy nodeMin <= nodeDesired <= nodeMax",
            )
        )
    problems += _control_plane_problems(v)
    if (
        has("production", "mode", "allow_fault_injection")
        and v["production"]
        and v["mode"] in FAULT_MODES
        and not v["allow_fault_injection"]
    ):
        problems.append(
            ConfigProblem(
                key="mode",
                value=v["mode"].value,
                message="injects faults into a production stack; set allowFaultInjection: true "
                "to do it on purpose",
            )
        )
    if (
        has("production", "endpoint_public_access_cidrs")
        and v["production"]
        and _too_open(v["endpoint_public_access_cidrs"])
    ):
        problems.append(
            ConfigProblem(
                key="endpointPublicAccessCidrs",
                value=list(v["endpoint_public_access_cidrs"]),
                message="opens the production Kubernetes API to the whole internet (or a range "
                f"wider than /{PRODUCTION_MIN_PREFIX}); list your office or CI CIDRs",
            )
        )
    if has("endpoint_private_access", "endpoint_public_access") and not (
        v["endpoint_private_access"] or v["endpoint_public_access"]
    ):
        problems.append(
            ConfigProblem(
                key="endpointPublicAccess",
                value=False,
                message="and endpointPrivateAccess are both false, so nothing could reach the "
                "Kubernetes API; keep at least one true",
            )
        )
    if (
        has("endpoint_private_access", "endpoint_public_access_cidrs")
        and not v["endpoint_private_access"]
        and list(v["endpoint_public_access_cidrs"]) != ["0.0.0.0/0"]
    ):
        problems.append(
            ConfigProblem(
                key="endpointPrivateAccess",
                value=False,
                message="sends the nodes to the public endpoint through the NAT gateways, whose "
                "addresses endpointPublicAccessCidrs does not list; keep it true",
            )
        )
    if has(
        "routes",
        "mode",
        "test_user",
        "fault_delay",
        "fault_abort_status",
        "fault_percent",
        "split_weights",
    ):
        problems += _routes_problems(v)
    if has("cluster_admins", "deployers"):
        both = sorted(set(v["cluster_admins"]) & set(v["deployers"]))
        if both:
            problems.append(
                ConfigProblem(
                    key="deployers",
                    value=list(v["deployers"]),
                    message=f"also lists {', '.join(both)} from clusterAdmins; a principal has "
                    "one access entry, so list it in one key only",
                )
            )
    return problems


# What runs where (model.catalogue): a route to a subset that selects none of these answers 503.
BOOKINFO_PODS = {
    service: tuple(w.labels for w in WORKLOADS if w.app == service) for service in SERVICES
}


def _routes_problems(v: Mapping[str, Any]) -> list[ConfigProblem]:
    """The `routes` key read, applied to the mode's preset, and the policy checked whole."""
    changes, problems = read_routes(v["routes"], SERVICES)
    preset = bookinfo_policy(route_table(v["mode"], traffic_settings(v)))
    merged = policy_problems(apply_routes(preset, changes), BOOKINFO_PODS)
    problems += [_as_written(p, changes) for p in merged]
    return [ConfigProblem(key=p.path, value=p.value, message=p.message) for p in problems]


_MERGED_RULE = re.compile(r"routes\.(?P<service>[^.\[]+)\.http\[(?P<index>\d+)\](?P<rest>.*)")


def _as_written(problem: PolicyProblem, changes: Mapping[str, RoutesChange]) -> PolicyProblem:
    """A problem of the merged rules at the path of the config that wrote them: a prepended
    rule under `prepend`, a rule of the mode's preset named as such."""
    found = _MERGED_RULE.fullmatch(problem.path)
    change = changes.get(found["service"]) if found else None
    if found is None or change is None or change.placement != "prepend":
        return problem
    index, written = int(found["index"]), len(change.rules)
    message = re.sub(
        r"http\[(\d+)\]",
        lambda m: (
            f"prepend[{m[1]}]" if int(m[1]) < written else f"the mode's rule {int(m[1]) - written}"
        ),
        problem.message,
    )
    if index < written:
        path = f"routes.{found['service']}.prepend[{index}]{found['rest']}"
        return replace(problem, path=path, message=message)
    message = f"leaves the mode's rule {index - written} unreachable: it {message}"
    return replace(problem, path=f"routes.{found['service']}.prepend", message=message)


CONFIG_KEYS: tuple[str, ...] = tuple(
    field.alias or name for name, field in StackConfig.model_fields.items()
)


# Keys whose value is a list or an object: the engine passes those as JSON text.
_JSON_KEYS = frozenset(
    {
        "routes",
        "splitWeights",
        "nodeInstanceTypes",
        "endpointPublicAccessCidrs",
        "clusterAdmins",
        "deployers",
    }
)


def _decode(key: str, raw: str) -> Any:
    """Like pulumi.Config.get_object for JSON keys; every other value stays the string it is."""
    if key in _JSON_KEYS:
        try:
            return json.loads(raw, parse_int=_whole_number)
        except json.JSONDecodeError:
            return raw
        except RecursionError:
            return _Unreadable("is JSON nested deeper than a parser follows; no key needs that")
    return raw


_LONG_NUMBER = re.compile(rf"[0-9]{{{_NUMBER_DIGITS + 1},}}")


def _read_loosely(decoded: Any, raw: str) -> bool:
    """Whether `decoded` is not what `raw` says whole: then a problem shows the raw text."""
    return isinstance(decoded, _Unreadable) or (
        not isinstance(decoded, str) and _LONG_NUMBER.search(raw) is not None
    )


_FIELD_ADAPTERS: dict[str, tuple[str, TypeAdapter[Any]]] = {
    name: (
        info.alias or name,
        TypeAdapter(
            Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        ),
    )
    for name, info in StackConfig.model_fields.items()
}


def parse_stack_config(raw: Mapping[str, str]) -> StackConfig:
    """Validate the project's config (key without namespace -> string, as the engine gives it).

    Every key is checked on its own, then every cross-key rule whose keys are valid, so one
    run reports all problems; ConfigError lists them.
    """
    decoded = {key: _decode(key, value) for key, value in raw.items()}
    problems = [
        ConfigProblem(
            key=key,
            value=value,
            message="is not a config key of this project" + _suggest(key, CONFIG_KEYS),
        )
        for key, value in decoded.items()
        if key not in CONFIG_KEYS
    ]
    values: dict[str, Any] = {}
    for name, (key, adapter) in _FIELD_ADAPTERS.items():
        if key not in decoded:
            problems.append(
                ConfigProblem(
                    key=key,
                    value=None,
                    message="is not set, and Pulumi.yaml declares no default for it",
                )
            )
            continue
        try:
            values[name] = adapter.validate_python(decoded[key])
        except ValidationError as error:
            first = error.errors()[0]
            problems.append(
                ConfigProblem(
                    key=key,
                    value=raw[key] if _read_loosely(decoded[key], raw[key]) else decoded[key],
                    message=str(first["msg"]).removeprefix("Value error, "),
                )
            )
    problems.extend(_cross_key_problems(values))
    if problems:
        raise ConfigError(problems)
    return StackConfig.model_validate(values)
