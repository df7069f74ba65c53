"""The canary ladder's workflow: one stack at a time beside its deploys, prod reviewed."""

from __future__ import annotations

import yaml

from stacks.project import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def test_the_ladder_never_runs_beside_a_deploy_of_its_stack_and_prod_is_reviewed() -> None:
    ladder = yaml.safe_load((WORKFLOWS / "canary-ladder.yml").read_text())["jobs"]["ladder"]
    deploy = yaml.safe_load((WORKFLOWS / "deploy.yml").read_text())["jobs"]
    for stack in ("dev", "prod"):
        group = ladder["concurrency"]["group"].replace("${{ inputs.stack }}", stack)
        assert group == deploy[stack]["concurrency"]["group"], f"{stack}: {group}"
    assert ladder["concurrency"]["cancel-in-progress"] is False, "a ladder may be cut half-way"
    assert ladder["environment"] == "${{ inputs.stack == 'prod' && 'production' || 'dev' }}"
    assert deploy["prod"]["environment"] == "production"


def test_the_ladder_commits_pushes_and_summarises_through_the_cli() -> None:
    ladder = yaml.safe_load((WORKFLOWS / "canary-ladder.yml").read_text())["jobs"]["ladder"]
    script = "\n".join(step.get("run", "") for step in ladder["steps"])
    for part in ("bookinfo-mesh ladder", "--push", '--summary "$GITHUB_STEP_SUMMARY"', "pulumi up"):
        assert part in script, f"the ladder step lost {part}"
    assert "port-forward svc/prometheus 9090:9090" in script, "Prometheus is not reached"
