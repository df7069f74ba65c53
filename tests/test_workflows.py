"""The GitHub workflows: PR code never runs with write permission; pins; no template injection."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.project import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
WRITE_SCOPES = ("contents", "pull-requests", "issues", "id-token", "actions", "packages")
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
ON_MAIN = "github.ref == 'refs/heads/main'"
_PINNED = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _jobs() -> list[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    return [
        (path.name, workflow, name, job)
        for path in WORKFLOWS
        for workflow in [_load(path)]
        for name, job in workflow["jobs"].items()
    ]


def _writes(job: dict[str, Any]) -> list[str]:
    permissions = job.get("permissions")
    if not isinstance(permissions, dict):
        return ["(inherits the workflow's or the default permissions)"]
    return [scope for scope, level in permissions.items() if level == "write"]


def _runs_repository_code(job: dict[str, Any]) -> bool:
    """A checkout, or any `run:` step: either puts the triggering commit's code to work."""
    steps = job.get("steps", [])
    return any("run" in s or str(s.get("uses", "")).startswith("actions/checkout") for s in steps)


def test_there_are_workflows_to_check() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"pull-request.yml", "pr-comment.yml", "preview.yml", "deploy.yml"} <= names, names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_grants_nothing_by_default_and_no_pull_request_target(path: Path) -> None:
    workflow = _load(path)
    assert workflow.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    triggers = workflow["on"] if isinstance(workflow["on"], dict) else {workflow["on"]: None}
    assert "pull_request_target" not in triggers, f"{path.name} uses pull_request_target"


def test_jobs_that_can_write_run_pull_request_code_only_from_this_repository_or_main() -> None:
    for file, workflow, name, job in _jobs():
        writes = _writes(job)
        if not writes or not _runs_repository_code(job):
            continue
        triggers = set(workflow["on"])
        trusted = triggers == {"push"} and workflow["on"]["push"].get("branches") == ["main"]
        same_repo = triggers == {"pull_request"} and SAME_REPOSITORY in str(job.get("if", ""))
        # By hand, on main's code only: whoever may dispatch a run may push to main anyway.
        dispatched = triggers == {"workflow_dispatch"} and ON_MAIN in str(job.get("if", ""))
        assert trusted or same_repo or dispatched, (
            f"{file}:{name} runs repository code with write permission ({', '.join(writes)}) "
            "for code that may come from a fork"
        )


def test_the_fork_comment_path_never_checks_out_or_runs_pull_request_code() -> None:
    posters = [
        (file, name, job)
        for file, workflow, name, job in _jobs()
        if "workflow_run" in workflow["on"]
    ]
    assert posters, "no workflow_run job posts the comment"
    for file, name, job in posters:
        assert "pull-requests" in _writes(job), f"{file}:{name} cannot post the comment"
        for step in job["steps"]:
            uses = str(step.get("uses", ""))
            assert "run" not in step, f"{file}:{name} has a run step: {step}"
            assert not uses.startswith("actions/checkout"), f"{file}:{name} checks out code"
            ref = str(step.get("with", {}).get("ref", ""))
            assert "head" not in ref, f"{file}:{name} fetches the pull request's head: {ref}"
            assert not uses.startswith("./"), f"{file}:{name} runs a local action"


def test_the_fork_comment_path_validates_the_untrusted_artifact() -> None:
    text = (ROOT / ".github" / "workflows" / "pr-comment.yml").read_text()
    for check in ("/^[1-9][0-9]{0,9}$/", "pr.head.sha !== run.head_sha", "MAX_CHARS", "MARKER"):
        assert check in text, f"pr-comment.yml no longer checks {check}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_sha_with_its_version_in_a_comment(path: Path) -> None:
    for line in path.read_text().splitlines():
        if line.strip().startswith(("- uses:", "uses:")):
            assert _PINNED.search(line.strip()), f"{path.name}: not pinned by SHA: {line.strip()}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_script(path: Path) -> None:
    for name, job in _load(path)["jobs"].items():
        for step in job.get("steps", []):
            script = step.get("run", "") + str(step.get("with", {}).get("script", ""))
            assert "${{" not in script, f"{path.name}:{name} expands an expression in a script"


def test_deploys_go_dev_then_prod_one_at_a_time_and_prod_waits_for_reviewers() -> None:
    deploy = _load(ROOT / ".github" / "workflows" / "deploy.yml")
    jobs = deploy["jobs"]
    assert jobs["prod"]["needs"] == "dev", "prod does not wait for dev"
    assert jobs["prod"]["environment"] == "production", "prod skips the reviewed environment"
    groups = [jobs[s]["concurrency"]["group"] for s in ("dev", "prod")]
    assert len(set(groups)) == 2, f"the stacks share a concurrency group: {groups}"
    for stack in ("dev", "prod"):
        assert jobs[stack]["concurrency"]["cancel-in-progress"] is False, f"{stack} may be cut"
        assert jobs[stack]["permissions"]["id-token"] == "write", f"{stack} has no OIDC"
    assert "aws-access-key-id" not in str(deploy), "a long-lived AWS key is configured"
