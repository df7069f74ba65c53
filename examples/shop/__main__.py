"""A made-up shop on Istio: web -> cart -> payments, routed with bookinfo-mesh's TrafficPolicy.

- web: a weighted canary, 90 % v1 and 10 % v2;
- cart: testers (header x-tester: yes) get v2, with a 2 s delay for half of their requests;
  everyone is mirrored to v2 at 10 %, and retried twice on 5xx;
- payments: a 3 s timeout, and 3 retries on connection failures.

`pulumi up` registers one DestinationRule and one VirtualService per service; the predicted
shares per cohort are exported.
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


def main() -> None:
    kubeconfig = pulumi.Config().get("kubeconfig") or None
    provider = k8s.Provider("cluster", kubeconfig=kubeconfig)
    policy = TrafficPolicy(
        "shop", TrafficPolicyArgs(routes=shop_policy()), pulumi.ResourceOptions(provider=provider)
    )
    predicted = predict(shop_policy(), COHORTS, entry="web", calls=CALLS)
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
