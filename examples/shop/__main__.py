"""A made-up shop on Istio: web -> cart -> payments, routed with bookinfo-mesh's TrafficPolicy.

- web: a weighted canary, 90 % v1 and 10 % v2;
- cart: testers (header x-tester: yes) get v2, with a 2 s delay for half of their requests;
  everyone is mirrored to v2 at 10 %, and retried twice on 5xx;
- payments: a 3 s timeout, and 3 retries on connection failures.

`pulumi up` registers one DestinationRule and one VirtualService per service; the predicted
shares per cohort are exported. The stack's `routes` key changes the rules per service, in
VirtualService's field names (bookinfo-mesh's docs/routing.md).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.traffic_policy import TrafficPolicy, TrafficPolicyArgs
from model.http_policy import (
    Delay,
    Destination,
    HttpRule,
    Mirror,
    Request,
    RequestMatch,
    Retries,
    Service,
    ServiceRoutes,
    StringMatch,
)
from model.policy_config import apply_routes, read_routes
from model.policy_validation import PolicyError
from model.predictions import Cohort, predict

NAMESPACE = "shop"
TESTERS = RequestMatch(headers={"x-tester": StringMatch("exact", "yes")})
CALLS = {"web": ("cart",), "cart": ("payments",)}
COHORTS = (Cohort("customers"), Cohort("testers", Request(headers={"x-tester": "yes"})))


def service(name: str, *versions: str) -> Service:
    return Service(name, NAMESPACE, {v: {"app": name, "version": v} for v in versions})


def shop_policy() -> tuple[ServiceRoutes, ...]:
    """The shop's routing, as plain data: TrafficPolicy checks and registers it."""
    return (
        ServiceRoutes(
            service("web", "v1", "v2"),
            (HttpRule((Destination("v1", 90), Destination("v2", 10))),),
        ),
        ServiceRoutes(
            service("cart", "v1", "v2"),
            (
                HttpRule((Destination("v2"),), matches=(TESTERS,), fault=Delay("2s", 50.0)),
                HttpRule(
                    (Destination("v1"),),
                    mirror=Mirror("v2", 10.0),
                    retries=Retries(2, "1s", "5xx"),
                ),
            ),
        ),
        ServiceRoutes(
            service("payments", "v1"),
            (
                HttpRule(
                    (Destination("v1"),), timeout="3s", retries=Retries(3, None, "connect-failure")
                ),
            ),
        ),
    )


def configured_policy(routes: object) -> tuple[ServiceRoutes, ...]:
    """shop_policy() with the stack's `routes` key applied, as bookinfo-mesh's own stacks take
    it: `promote --project examples/shop --service web --weights v1=50,v2=50` writes it."""
    policy = shop_policy()
    changes, problems = read_routes(routes, tuple(r.service.name for r in policy))
    if problems:
        raise PolicyError(problems)
    return apply_routes(policy, changes)


def main() -> None:
    config = pulumi.Config()
    kubeconfig = config.get("kubeconfig") or None
    provider = k8s.Provider("cluster", kubeconfig=kubeconfig)
    routes = configured_policy(config.get_object("routes") or {})
    policy = TrafficPolicy(
        "shop", TrafficPolicyArgs(routes=routes), pulumi.ResourceOptions(provider=provider)
    )
    predicted = predict(routes, COHORTS, entry="web", calls=CALLS)
    pulumi.export("routes", policy.routes)
    pulumi.export(
        "predicted",
        {
            cohort: {name: dict(p.subsets) for name, p in services.items()}
            for cohort, services in predicted.items()
        },
    )


if __name__ == "__main__":  # as Pulumi's Python host runs it
    main()
