"""examples/shop: a user's own Pulumi program routing three services with TrafficPolicy.

It runs under the mock engine as `pulumi up` would run it, its objects pass the real tools,
and what it predicts for customers and testers follows from its rules.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from bookinfo_mesh.engine import ProgramRun, run_under_mocks
from components.traffic_policy import TrafficPolicy, TrafficPolicyArgs
from model.http_policy import Destination, HttpRule, ServiceRoutes
from model.policy_validation import PolicyError
from tests.mesh_cluster import Stack, dry_run_refusals
from tests.real_tools import istioctl

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"


def shop_module() -> dict:
    """The example's functions, without running its main()."""
    return runpy.run_path(str(SHOP / "__main__.py"), run_name="shop_example_functions")


def run_shop() -> ProgramRun:
    return run_under_mocks(lambda: runpy.run_path(str(SHOP / "__main__.py"), run_name="__main__"))


@pytest.fixture(scope="module")
def shop_run() -> ProgramRun:
    run = run_shop()
    assert run.error is None, run.error
    return run


def objects(run: ProgramRun) -> list[dict]:
    return [r.inputs for r in run.resources if r.type in (DESTINATION_RULE, VIRTUAL_SERVICE)]


def test_the_shop_registers_a_rule_and_a_route_per_service(shop_run: ProgramRun) -> None:
    hosts = sorted(o["spec"].get("host") or o["spec"]["hosts"][0] for o in objects(shop_run))
    assert hosts == ["cart", "cart", "payments", "payments", "web", "web"]
    by_name = {o["metadata"]["name"]: o for o in objects(shop_run) if o["kind"] == "VirtualService"}
    web, cart, payments = (by_name[n]["spec"]["http"] for n in ("web", "cart", "payments"))
    assert [r["weight"] for r in web[0]["route"]] == [90, 10]
    assert cart[0]["match"] == [{"headers": {"x-tester": {"exact": "yes"}}}]
    assert cart[0]["fault"] == {"delay": {"fixedDelay": "2s", "percentage": {"value": 50.0}}}
    assert cart[1]["mirror"] == {"host": "cart", "subset": "v2"}
    assert cart[1]["mirrorPercentage"] == {"value": 10.0}
    assert cart[1]["retries"] == {"attempts": 2, "perTryTimeout": "1s", "retryOn": "5xx"}
    assert payments[0]["timeout"] == "3s"


def test_the_shop_predicts_what_each_cohort_meets(shop_run: ProgramRun) -> None:
    predicted = shop_run.outputs["predicted"]
    assert predicted["customers"] == {
        "web": {"v1": 0.9, "v2": 0.1},
        "cart": {"v1": 1.0},
        "payments": {"v1": 1.0},
    }
    assert predicted["testers"]["cart"] == {"v2": 1.0}


def test_testers_meet_the_delay_half_the_time_and_customers_the_mirror() -> None:
    shop = shop_module()
    predicted = shop["predict"](shop["shop_policy"](), shop["COHORTS"], "web", shop["CALLS"])
    testers, customers = predicted["testers"]["cart"], predicted["customers"]["cart"]
    assert testers.faults == {"delay 2s": 0.5} and testers.mirrors == {}
    assert customers.faults == {} and customers.mirrors == pytest.approx({"v2": 0.1})
    assert customers.retries == (2,) and predicted["customers"]["payments"].timeouts == ("3s",)


@pytest.mark.xdist_group("cluster-dev")
@pytest.mark.parametrize("stack", ["dev"], indirect=True)
def test_the_shops_objects_pass_istioctl_and_a_strict_dry_run(
    stack: Stack, shop_run: ProgramRun
) -> None:
    validated = istioctl(stack.minor, "validate", "-f", "{file}", objects=objects(shop_run))
    assert validated.code == 0, validated.output
    stack.api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    assert dry_run_refusals(stack.api, objects(shop_run)) == []


def test_a_bad_policy_is_refused_before_any_resource() -> None:
    shop = shop_module()
    web = shop["service"]("web", "v1")

    def program() -> None:
        bad = (ServiceRoutes(web, (HttpRule((Destination("v1", 60), Destination("v9", 30))),)),)
        TrafficPolicy("shop", TrafficPolicyArgs(routes=bad))

    run = run_under_mocks(program)
    assert isinstance(run.error, PolicyError)
    assert [p.path for p in run.error.problems] == [
        "routes.web.http[0].route[1].subset",
        "routes.web.http[0].route",
    ]
    assert run.resources == ()


def test_the_example_imports_only_what_a_user_program_would() -> None:
    """Its imports are the project's public pieces and Pulumi's SDKs, nothing of the tests."""
    text = (SHOP / "__main__.py").read_text()
    imported = {
        line.split()[1].split(".")[0]
        for line in text.splitlines()
        if line.startswith(("from ", "import "))
    }
    assert imported <= {"__future__", "pulumi", "pulumi_kubernetes", "components", "model"}
