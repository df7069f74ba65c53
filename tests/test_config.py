"""Stack config validation: bad configs refused by the whole program, properties of good ones."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bookinfo_mesh import engine
from bookinfo_mesh.engine import run_program
from bookinfo_mesh.stack_files import StackFileError, load_engine_config
from model.catalogue import DESTINATION_RULE_SUBSETS, deployed_versions
from model.istio_releases import ISTIO_MINORS, IstioRelease
from model.routing import MODES, Mode, route_table
from stacks import config
from stacks.config import (
    CONFIG_KEYS,
    PROJECT,
    ConfigError,
    ec2_instance_types,
    is_arm_instance_type,
    parse_stack_config,
)
from stacks.project import ROOT, project_file

CORPUS_PATH = Path(__file__).with_name("config_corpus.yaml")
STACKS = ("dev", "prod")
# The config types Pulumi.yaml may declare for a project key (sdk project.json's
# simpleConfigType).
PULUMI_CONFIG_TYPES = {"string", "integer", "boolean", "array", "object"}
DECLARATION_FIELDS = {"type", "default", "description", "items", "secret"}
AZ_LOOKUP = "aws:index/getAvailabilityZones:getAvailabilityZones"


@dataclass(frozen=True)
class ExpectedProblem:
    """A problem the error must report: its key, its whole message, the value as shown."""

    key: str
    message: str
    shows: str | None = None  # the value as the line renders it, when not the override


@dataclass(frozen=True)
class BadConfig:
    """One corpus entry: a stack, the `pulumi config set` overrides that break it, the verdict."""

    name: str
    stack: str
    overrides: Mapping[str, str]
    problems: tuple[ExpectedProblem, ...]
    pulumi_refuses: tuple[str, ...]


def load_corpus(path: Path = CORPUS_PATH) -> list[BadConfig]:
    entries: list[dict[str, Any]] = yaml.safe_load(path.read_text())
    return [
        BadConfig(
            name=entry["name"],
            stack=entry["stack"],
            overrides=entry["overrides"],
            problems=tuple(ExpectedProblem(**problem) for problem in entry["problems"]),
            pulumi_refuses=tuple(entry.get("pulumi_refuses", ())),
        )
        for entry in entries
    ]


CORPUS = load_corpus()


@cache
def stack_config(stack: str) -> Mapping[str, str]:
    """The project's keys as the program reads them: engine config, namespace stripped."""
    config, _ = load_engine_config(stack)
    prefix = f"{PROJECT}:"
    return {
        key.removeprefix(prefix): value for key, value in config.items() if key.startswith(prefix)
    }


def project_config(stack: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stack's config under `pulumi config set` overrides (read once per stack: speed)."""
    return {**stack_config(stack), **(overrides or {})}


def as_shown(raw: str) -> str:
    """A config string as an error quotes it: JSON lists and objects as JSON, text as a string."""
    if raw[:1] in ("[", "{"):
        try:
            return json.dumps(json.loads(raw))
        except json.JSONDecodeError:
            pass
    return json.dumps(raw)


# --- the corpus ----------------------------------------------------------------------


def test_the_corpus_is_well_formed_and_large_enough() -> None:
    names = [case.name for case in CORPUS]
    assert len(CORPUS) >= 45, f"the corpus has only {len(CORPUS)} bad configs, want 45 or more"
    assert len(set(names)) == len(names), "corpus names repeat, so test ids would collide"
    for case in CORPUS:
        assert case.stack in STACKS, f"{case.name!r}: unknown stack {case.stack!r}"
        assert case.problems, f"{case.name!r} expects no problem"
        not_strings = {k: v for k, v in case.overrides.items() if not isinstance(v, str)}
        assert not not_strings, (
            f"{case.name!r}: YAML turned {not_strings} into non-strings; quote them, the "
            "engine hands every value over as a string"
        )
        for problem in case.problems:
            assert problem.key in case.overrides or problem.shows, (
                f"{case.name!r}: a problem on {problem.key} that is not overridden needs `shows`"
            )
    several = [case.name for case in CORPUS if len(case.problems) > 1]
    assert len(several) >= 5, f"only {len(several)} corpus entries have several problems"


def test_the_corpus_has_a_bad_value_for_every_config_key() -> None:
    covered = {problem.key for case in CORPUS for problem in case.problems}
    untested = [key for key in CONFIG_KEYS if key not in covered]
    assert not untested, f"no corpus entry expects a problem on {untested}"


def expected_text(case: BadConfig) -> str:
    """The whole error an operator reads for a corpus entry, one line per problem."""
    lines = [
        f"  - {PROJECT}:{problem.key} = "
        f"{problem.shows or as_shown(case.overrides[problem.key])}: {problem.message}"
        for problem in case.problems
    ]
    if len(lines) == 1:
        return "invalid stack config: " + lines[0].removeprefix("  - ")
    return "\n".join([f"invalid stack config ({len(lines)} problems):", *lines])


def assert_verdict(case: BadConfig, error: ConfigError) -> None:
    """`error` reports exactly the corpus entry's problems, word for word, and keeps each
    problem's key apart for tools that group by key."""
    assert str(error) == expected_text(case)
    assert [p.key for p in error.problems] == [p.key for p in case.problems]


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_a_bad_config_is_refused_with_every_problem_before_any_resource(case: BadConfig) -> None:
    if case.pulumi_refuses:
        with pytest.raises(StackFileError) as refused:
            run_program(case.stack, case.overrides)
        named = re.findall(r"configuration key '(\w+)' must be of type", str(refused.value))
        assert named == sorted(case.pulumi_refuses), str(refused.value)
        return
    run = run_program(case.stack, case.overrides)
    assert isinstance(run.error, ConfigError), (
        f"{case.stack} with {dict(case.overrides)} was not refused with a ConfigError "
        f"(error: {run.error!r}; {len(run.resources)} resources registered)"
    )
    assert run.resources == (), (
        f"a refused config still registered {[r.name for r in run.resources]}"
    )
    assert_verdict(case, run.error)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_the_parser_alone_gives_each_corpus_verdict(case: BadConfig) -> None:
    """The same verdicts from parse_stack_config, as verify and promote call it (no engine)."""
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(project_config(case.stack, case.overrides))
    assert_verdict(case, caught.value)


# A prod config that trips every cross-key rule at once. Two aside: every Kubernetes version
# EKS offers is one the pinned Istio supports; and the canary stage is refused without a
# canary, where the canary rule needs one.
TRIPS_EVERY_CROSS_KEY_RULE = {
    "istioCanaryVersion": "1.30.4",
    "mode": "delay",
    "nodeMin": "3",
    "nodeDesired": "2",
    "endpointPublicAccessCidrs": '["0.0.0.0/1"]',
    "endpointPrivateAccess": "false",
    "endpointPublicAccess": "false",
    "clusterAdmins": '["arn:aws:iam::123456789012:role/ops"]',
    "deployers": '["arn:aws:iam::123456789012:role/ops"]',
}
# The problem each cross-key rule reports -> the keys whose junk silences it. The node counts
# are compared as far as they are valid: with nodeMax junk, 3 > 2 is still wrong.
CROSS_KEY_RULES: dict[str, set[str]] = {
    "nodeDesired": {"nodeMin", "nodeDesired"},
    "istioCanaryVersion": {"istioVersion", "istioCanaryVersion"},
    "mode": {"production", "mode", "allowFaultInjection"},
    "endpointPublicAccessCidrs": {"production", "endpointPublicAccessCidrs"},
    "endpointPublicAccess": {"endpointPrivateAccess", "endpointPublicAccess"},
    "endpointPrivateAccess": {"endpointPrivateAccess", "endpointPublicAccessCidrs"},
    "deployers": {"clusterAdmins", "deployers"},
}


def test_the_config_that_trips_every_cross_key_rule_gets_each_problem_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(project_config("prod", TRIPS_EVERY_CROSS_KEY_RULE))
    assert [p.key for p in caught.value.problems] == list(CROSS_KEY_RULES)


JUNK = "junk\t"  # no key takes a tab: not a name, number, flag, version, CIDR or JSON


@pytest.mark.parametrize("key", CONFIG_KEYS)
def test_a_junk_key_is_reported_and_silences_only_the_rules_that_read_it(key: str) -> None:
    """Each cross-key rule runs only when its keys are valid alone: junk in any one key is
    reported on that key, and never crashes a rule that would read it."""
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(project_config("prod", {**TRIPS_EVERY_CROSS_KEY_RULE, key: JUNK}))
    still_tripped = [problem for problem, reads in CROSS_KEY_RULES.items() if key not in reads]
    assert [p.key for p in caught.value.problems] == [key, *still_tripped]


def test_an_istio_release_refuses_the_kubernetes_versions_it_does_not_support(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Support rows narrow as Istio moves on; the rule must hold for the next row added, and
    # for both revisions while a canary runs.
    narrower = replace(ISTIO_MINORS["1.31"], kubernetes=("1.33", "1.34"))
    monkeypatch.setitem(ISTIO_MINORS, "1.31", narrower)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(
            project_config("dev", {"istioVersion": "1.30.4", "istioCanaryVersion": "1.31.2"})
        )
    assert [str(p) for p in caught.value.problems] == [
        f'{PROJECT}:kubernetesVersion = "1.35": Istio 1.31.2 supports Kubernetes 1.33, 1.34'
    ]


def test_istio_version_errors_list_every_supported_minor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ISTIO_MINORS, "1.32", replace(ISTIO_MINORS["1.31"], minor="1.32"))
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(project_config("dev", {"istioVersion": "1.29.0"}))
    assert [p.message for p in caught.value.problems] == [
        "is Istio 1.29, which this program does not install; supported minors (each read at "
        "its source): 1.30, 1.31, 1.32"
    ]


def test_any_well_formed_patch_of_a_supported_minor_is_accepted() -> None:
    """A patch that was never released is Helm's to refuse in `pulumi preview` (README)."""
    for version in ("1.30.0", "1.30.4", "1.30.5", "1.30.8", "1.31.0", "1.31.4", "1.31.99"):
        config = parse_stack_config(project_config("dev", {"istioVersion": version}))
        assert config.control_plane.current.version == version, version
    long_patch = "1." + "31." + "9" * 5000
    config = parse_stack_config(project_config("dev", {"istioVersion": long_patch}))
    assert config.istio_version == long_patch, "a long patch is text, never an int"


@pytest.mark.parametrize(
    ("current", "canary", "problem"),
    [
        ("1.30.4", "1.31.0", ""),
        ("1.30.4", "1.32.0", ""),
        (
            "1.30.4",
            "1.33.0",
            "is 3 minors past istioVersion 1.30.4; a canary upgrade jumps at "
            "most 2, so go through 1.32 first",
        ),
        ("1.31.0", "1.30.9", "is older than istioVersion 1.31.0; a canary is the newer minor"),
        (
            "1.31.0",
            "1.31.2",
            "is a patch of istioVersion's minor 1.31; patches are in-place "
            "upgrades: set istioVersion to 1.31.2 instead",
        ),
    ],
)
def test_a_canary_is_the_next_minor_or_the_one_after(
    current: str, canary: str, problem: str
) -> None:
    """Revision-based upgrades may jump two minors (istio.io docs/setup/upgrade/canary)."""

    def release(text: str) -> IstioRelease:
        major, minor, patch = text.split(".")
        return IstioRelease(int(major), int(minor), patch)

    assert config._canary_problem(release(current), release(canary)) == problem


@pytest.mark.parametrize(
    "overrides",
    [
        {"faultAbortStatus": "400"},
        {"faultAbortStatus": "599"},
        {"faultPercent": "0"},
        {"faultPercent": "100"},
        {"faultDelay": "1ms"},
        {"faultDelay": "300s"},
        {"vpcCidr": "10.0.0.0/16"},
        {"vpcCidr": "10.0.0.0/20", "azCount": "4"},
        {"azCount": "2"},
        {"nodeMin": "1", "nodeDesired": "1", "nodeMax": "1"},
        {"nodeMin": "100", "nodeDesired": "100", "nodeMax": "100"},
        {"testUser": "x" * 1024},
    ],
    ids=lambda overrides: ",".join(f"{k}={v[:12]}" for k, v in overrides.items()),
)
def test_the_edges_of_every_range_are_accepted(overrides: dict[str, str]) -> None:
    parse_stack_config(project_config("dev", overrides))


def test_a_key_without_a_value_shows_as_unset_and_the_keys_after_it_are_still_checked() -> None:
    config = {k: v for k, v in project_config("dev", {"azCount": "9"}).items() if k != "mode"}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    assert [str(p) for p in caught.value.problems] == [
        f"{PROJECT}:mode = (unset): is not set, and Pulumi.yaml declares no default for it",
        f'{PROJECT}:azCount = "9": must be 2 to 4: EKS needs two AZs, the subnet plan holds four',
    ]


@pytest.mark.parametrize(
    ("length", "shown"),
    [(78, '" ' + "x" * 77 + '"'), (79, '" ' + "x" * 58 + "... (81 characters)")],
)
def test_a_value_shown_longer_than_80_characters_is_cut_to_60(length: int, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(project_config("dev", {"testUser": " " + "x" * (length - 1)}))
    assert str(caught.value.problems[0]).startswith(f"{PROJECT}:testUser = {shown}: must be")


# --- the declared config -------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_files_own_config_parses(stack: str) -> None:
    try:
        config = parse_stack_config(project_config(stack))
    except ConfigError as error:
        pytest.fail(f"Pulumi.{stack}.yaml over the Pulumi.yaml defaults is refused: {error}")
    assert config.production == (stack == "prod"), (
        f"the {stack} stack has production={config.production}"
    )


def test_pulumi_yaml_declares_exactly_the_config_keys_with_type_default_and_description() -> None:
    declared: dict[str, Any] = project_file()["config"]
    undeclared = [key for key in CONFIG_KEYS if key not in declared]
    unknown = [key for key in declared if key not in CONFIG_KEYS]
    assert not undeclared, f"Pulumi.yaml does not declare {undeclared}"
    assert not unknown, f"Pulumi.yaml declares {unknown}, which StackConfig does not know"
    for key in CONFIG_KEYS:
        declaration = declared[key]
        missing = {"type", "default", "description"} - set(declaration)
        assert not missing, f"Pulumi.yaml's {key} has no {sorted(missing)}"
        extra = set(declaration) - DECLARATION_FIELDS
        assert not extra, f"Pulumi.yaml's {key} has unexpected fields {sorted(extra)}"
        assert declaration["type"] in PULUMI_CONFIG_TYPES, (
            f"{key} declares type {declaration['type']!r}, not one Pulumi knows"
        )
        assert isinstance(declaration["description"], str) and declaration["description"].strip(), (
            f"{key} has an empty description"
        )


@pytest.mark.parametrize("user", ["[1]", "{}", '["jason"]'])
def test_a_test_user_that_looks_like_json_is_still_a_valid_header_value(user: str) -> None:
    try:
        config = parse_stack_config(project_config("dev", {"testUser": user}))
    except ConfigError as error:
        pytest.fail(
            f"testUser {user!r} is visible ASCII, a valid end-user header value, but was "
            f"decoded as JSON and refused: {error}"
        )
    assert config.test_user == user, f"testUser {user!r} became {config.test_user!r}"


# --- the region's AZs, known only at run time ----------------------------------------


@pytest.fixture
def two_zone_region(monkeypatch: pytest.MonkeyPatch) -> str:
    """The mock region answers with two AZs, like us-west-1 (the stock mock always has four)."""
    real_call = engine._Mocks.call
    zones = ["us-west-1a", "us-west-1c"]

    def call(self: engine._Mocks, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == AZ_LOOKUP:
            return {"id": self.region, "names": zones, "zoneIds": ["usw1-az1", "usw1-az3"]}
        return real_call(self, args)

    monkeypatch.setattr(engine._Mocks, "call", call)
    return "us-west-1"


def test_an_az_count_above_what_the_region_offers_is_refused_naming_az_count(
    two_zone_region: str,
) -> None:
    run = run_program("dev", {"aws:region": two_zone_region, "azCount": "3"})
    assert isinstance(run.error, ConfigError), (
        f"3 AZs in a 2-AZ region were not refused with a ConfigError: {run.error!r}"
    )
    assert [p.key for p in run.error.problems] == ["azCount"], (
        f"the error should name azCount alone: {run.error}"
    )
    assert "only 2 available AZs" in str(run.error), (
        f"the error hides the region's AZs: {run.error}"
    )
    assert f"{PROJECT}:azCount = 3" in str(run.error), f"the error hides the bad value: {run.error}"
    assert run.resources == (), f"registered {[r.name for r in run.resources]} before refusing"


def test_an_az_count_the_region_can_hold_is_accepted(two_zone_region: str) -> None:
    run = run_program("dev", {"aws:region": two_zone_region, "azCount": "2"})
    assert run.error is None, f"2 AZs in a 2-AZ region were refused: {run.error}"
    assert run.resources, "the program registered nothing"


@pytest.mark.parametrize("cidrs", ['["2.0.0.0/8"]', '["2.0.0.0/8", "4.0.0.0/8"]'])
def test_a_production_api_endpoint_open_to_a_slash_8_at_most_is_accepted(cidrs: str) -> None:
    raw = project_config("prod", {"endpointPublicAccessCidrs": cidrs})
    try:
        parse_stack_config(raw)
    except ConfigError as error:
        pytest.fail(f"prod refused API CIDRs {cidrs}, none wider than /8: {error}")


# --- properties ----------------------------------------------------------------------

REVIEWS_SUBSETS = deployed_versions("reviews")
FAULT_MODES = (Mode.DELAY, Mode.ABORT)

header_values = (
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=24)
    .map(str.strip)
    .filter(bool)
)
fault_delays = st.one_of(
    st.integers(1, 300_000).map(lambda ms: f"{ms}ms"),
    st.integers(1, 300).map(lambda s: f"{s}s"),
    st.integers(1, 300_000).map(lambda ms: f"{ms / 1000:g}s"),
    st.tuples(st.integers(1, 4), st.integers(0, 59)).map(lambda ms: f"{ms[0]}m{ms[1]}s"),
    st.integers(1, 5).map(lambda m: f"{m}m"),
)
# Pulumi.yaml declares faultPercent an integer, so the engine only ever passes whole numbers.
fault_percents = st.integers(0, 100).map(str)


@st.composite
def split_weights(draw: st.DrawFn) -> dict[str, int]:
    """Non-negative integer weights over some reviews subsets with pods, summing to 100."""
    subsets = draw(st.lists(st.sampled_from(REVIEWS_SUBSETS), min_size=1, unique=True))
    cuts = draw(st.lists(st.integers(0, 100), min_size=len(subsets) - 1, max_size=len(subsets) - 1))
    bounds = [0, *sorted(cuts), 100]
    return {subset: bounds[i + 1] - bounds[i] for i, subset in enumerate(subsets)}


@st.composite
def valid_configs(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A stack and `pulumi config set` overrides that a correct validator must accept."""
    stack = draw(st.sampled_from(STACKS))
    mode = draw(st.sampled_from(MODES))
    overrides = {
        "mode": mode,
        "testUser": draw(header_values),
        "faultDelay": draw(fault_delays),
        "faultAbortStatus": str(draw(st.integers(400, 599))),
        "faultPercent": draw(fault_percents),
        "splitWeights": json.dumps(draw(split_weights())),
    }
    if stack == "prod" and Mode(mode) in FAULT_MODES:
        overrides["allowFaultInjection"] = "true"
    return stack, overrides


@settings(max_examples=2 * settings.default.max_examples)  # the config space is wide
@given(valid_configs())
def test_any_valid_config_parses_and_routes_only_to_subsets_with_pods_in_shares_of_100(
    stack_and_overrides: tuple[str, dict[str, str]],
) -> None:
    stack, overrides = stack_and_overrides
    try:
        config = parse_stack_config(project_config(stack, overrides))
    except ConfigError as error:
        pytest.fail(f"a valid {stack} config {overrides} was refused: {error}")
    for service, rules in route_table(config.mode, config.traffic).items():
        for rule in rules:
            weights = {d.subset: d.weight for d in rule.destinations}
            assert sum(weights.values()) == 100, f"{service} weights {weights} do not sum to 100"
            unknown = set(weights) - set(DESTINATION_RULE_SUBSETS[service])
            assert not unknown, f"{service} routes to subsets {unknown} no destination rule has"
            podless = set(weights) - set(deployed_versions(service))
            assert not podless, f"{service} routes to subsets {podless}, which have no pods"
    if config.mode is Mode.SPLIT50:
        (split,) = route_table(config.mode, config.traffic)["reviews"]
        wanted = {s: w for s, w in json.loads(overrides["splitWeights"]).items() if w > 0}
        got = {d.subset: d.weight for d in split.destinations}
        assert got == wanted, f"split50 routes reviews {got}, config asked for {wanted}"


@given(st.text().filter(lambda text: text not in MODES))
def test_any_junk_mode_is_refused_with_a_message_listing_all_six_modes(junk: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_stack_config(project_config("dev", {"mode": junk}))
    problems = refused.value.problems
    assert [p.key for p in problems] == ["mode"], f"mode {junk!r} gave problems {problems}"
    unlisted = [mode for mode in MODES if mode not in str(problems[0])]
    assert not unlisted, f"refusing mode {junk!r}, the message leaves out {unlisted}: {problems[0]}"


# --- facts copied from maintained sources --------------------------------------------


def test_the_committed_instance_types_are_exactly_botocores() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_ec2_instance_types", ROOT / "scripts" / "gen_ec2_instance_types.py"
    )
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (ROOT / "stacks" / "ec2_instance_types.json").read_text()
    assert committed == generator.render(), (
        "stacks/ec2_instance_types.json differs from the installed botocore's EC2 model; "
        "run scripts/gen_ec2_instance_types.py"
    )


def test_every_graviton_family_is_recognised_as_arm() -> None:
    # AWS's Graviton families as named on its instance-type pages: a1 and the "g" families.
    graviton = {"a1", "t4g", "m6g", "m7g", "m8g", "c6gn", "c7gd", "r8g", "x2gd", "im4gn", "is4gen"}
    families = {t.split(".")[0] for t in ec2_instance_types()}
    assert graviton <= families, f"botocore no longer lists {graviton - families}"
    for family in graviton:
        assert is_arm_instance_type(f"{family}.large"), f"{family} is not recognised as arm64"
    for family in ("m6i", "c7a", "t3", "g4dn", "p5", "mac2"):
        assert not is_arm_instance_type(f"{family}.large"), f"{family} taken for arm64"


def test_a_test_user_too_long_for_productpages_session_cookie_is_refused() -> None:
    # Flask 3.1 signs {"user": name} into the session cookie: 1024 random printable ASCII
    # characters make a 1,272-byte cookie, well under the 4,093 bytes browsers keep.
    too_long = "u" * 1025
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(project_config("dev", {"testUser": too_long}))
    assert [str(p) for p in caught.value.problems] == [
        f'{PROJECT}:testUser = "{"u" * 59}... (1027 characters): is 1025 characters; at most '
        "1024 fit in productpage's session cookie (browsers drop cookies over 4093 bytes)"
    ]
    accepted = parse_stack_config(project_config("dev", {"testUser": too_long[:-1]}))
    assert accepted.test_user == too_long[:-1], "a test user at the limit is refused"
