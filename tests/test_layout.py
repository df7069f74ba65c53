"""The layout holds: what `pulumi up` loads, what the model imports, who uses SDK internals."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAM_PACKAGES = ("stacks", "components", "model")
# The operator tools' libraries: heavy, and none of `pulumi up`'s business.
TOOL_LIBRARIES = {"argparse", "rich", "deepdiff", "jsonschema", "kubernetes_validate"}
# Reaching into these breaks silently on an SDK upgrade; one module may, and is tested for it.
SDK_INTERNALS = (
    "pulumi.runtime.settings",
    "pulumi.runtime.stack",
    "pulumi.runtime.sync_await",
    "pulumi.runtime.config",
    "pulumi.runtime.mocks",
    "pulumi.runtime.proto",
)
INTERNALS_MODULE = "stacks.sdk_internals"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every module an import statement in `path` names (`from a import b` gives a and a.b)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def repo_module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(entry: Path) -> dict[str, set[str]]:
    """Repo module -> what it imports, for every repo module reachable from `entry`."""
    seen: dict[str, set[str]] = {}
    todo = [entry]
    while todo:
        path = todo.pop()
        name = module_name(path) if path != ROOT / "__main__.py" else "__main__"
        if name in seen:
            continue
        seen[name] = set(imports_of(path))
        for imported in seen[name]:
            parts = imported.split(".")
            for depth in range(1, len(parts) + 1):
                found = repo_module_path(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    return seen


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def test_pulumi_up_loads_only_the_program_never_the_operator_tools() -> None:
    closure = import_closure(ROOT / "__main__.py")
    tools = sorted(m for m in closure if m.startswith("bookinfo_mesh"))
    assert tools == [], f"`pulumi up` would load the operator tools: {tools}"
    libraries = {
        (module, imported)
        for module, imports in closure.items()
        for imported in imports
        if imported.split(".")[0] in TOOL_LIBRARIES
    }
    assert libraries == set(), f"`pulumi up` would load tool libraries: {sorted(libraries)}"
    assert {m.split(".")[0] for m in closure} >= {"stacks", "components", "model"}, (
        f"the closure walk found too little to be trusted: {sorted(closure)}"
    )


@pytest.mark.parametrize("path", python_files("model"), ids=lambda p: p.name)
def test_the_model_imports_no_pulumi(path: Path) -> None:
    pulumi_imports = sorted(i for i in imports_of(path) if i.split(".")[0].startswith("pulumi"))
    assert pulumi_imports == [], f"{path.name} is meant to be pure but imports {pulumi_imports}"


@pytest.mark.parametrize("path", python_files("model"), ids=lambda p: p.name)
def test_the_model_imports_nothing_of_the_layers_above_it(path: Path) -> None:
    upward = sorted(
        i for i in imports_of(path) if i.split(".")[0] in {"stacks", "components", "bookinfo_mesh"}
    )
    assert upward == [], f"{path.name} imports {upward}: arrows point tools -> stacks -> model"


@pytest.mark.parametrize("path", python_files("components"), ids=lambda p: p.name)
def test_components_never_read_stack_config_or_tools(path: Path) -> None:
    source = path.read_text()
    assert "pulumi.Config(" not in source, f"{path.name} reads config: components take Args"
    upward = sorted(i for i in imports_of(path) if i.split(".")[0] in {"stacks", "bookinfo_mesh"})
    assert upward == [], f"{path.name} imports {upward}"


def test_only_one_module_touches_pulumi_sdk_internals() -> None:
    touching = {
        module_name(path)
        for path in [
            *python_files(*PROGRAM_PACKAGES, "bookinfo_mesh", "policy"),
            ROOT / "__main__.py",
        ]
        for imported in imports_of(path)
        if imported.startswith(SDK_INTERNALS)
        or imported.endswith(("_sync_await", "run_pulumi_func"))
    }
    assert touching == {INTERNALS_MODULE}, f"SDK internals are used in {sorted(touching)}"


def test_every_class_in_components_is_a_component_or_its_args() -> None:
    strays = []
    for path in python_files("components"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base) for base in node.bases}
                if "pulumi.ComponentResource" not in bases and not node.name.endswith("Args"):
                    strays.append(f"{path.name}:{node.name}")
    assert strays == [], f"components/ should hold ComponentResources and their Args: {strays}"


# Distribution name -> the module it provides, for the runtime dependencies.
RUNTIME_MODULES = {
    "google-re2": "re2",
    "pulumi": "pulumi",
    "pulumi-aws": "pulumi_aws",
    "pulumi-eks": "pulumi_eks",
    "pulumi-kubernetes": "pulumi_kubernetes",
    "pydantic": "pydantic",
    "pyyaml": "yaml",
}


def pinned(requirements: list[str]) -> dict[str, str]:
    """ "name==version" lines -> {name: version}; anything else is not a pin."""
    pins = {}
    for requirement in requirements:
        name, sep, version = requirement.partition("==")
        assert sep, f"{requirement!r} is not pinned exactly"
        pins[name.lower()] = version
    return pins


def test_runtime_dependencies_are_exactly_what_the_program_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = pinned(project["dependencies"])
    assert set(runtime) == set(RUNTIME_MODULES), f"runtime dependencies are {sorted(runtime)}"
    closure = import_closure(ROOT / "__main__.py")
    imported = {i.split(".")[0] for imports in closure.values() for i in imports}
    third_party = {
        name
        for name in imported - set(sys.stdlib_module_names)
        if repo_module_path(name) is None and name != "__future__"
    }
    assert third_party == set(RUNTIME_MODULES.values()), (
        f"the program imports {sorted(third_party)}; runtime dependencies provide "
        f"{sorted(RUNTIME_MODULES.values())}"
    )


def test_the_policy_pack_runs_with_the_same_pins_the_tests_use() -> None:
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev = pinned(groups["dependency-groups"]["dev"])
    runtime = pinned(groups["project"]["dependencies"])
    pack = pinned(
        tomllib.loads((ROOT / "policy/pyproject.toml").read_text())["project"]["dependencies"]
    )
    assert pack["pulumi-policy"] == dev["pulumi-policy"], "the pack and its tests differ"
    assert pack["pulumi"] == runtime["pulumi"], "the pack and the program run different SDKs"


def repo_imports(path: Path) -> set[str]:
    """The repository modules `path` imports, anywhere in it (inside functions too)."""
    found = set()
    for imported in imports_of(path):
        parts = imported.split(".")
        for depth in range(len(parts), 0, -1):
            if repo_module_path(".".join(parts[:depth])) is not None:
                found.add(".".join(parts[:depth]))
                break
    return found - {module_name(path)}


def test_no_module_of_the_repository_imports_itself_back_through_others() -> None:
    graph = {
        module_name(path): repo_imports(path)
        for path in python_files(*PROGRAM_PACKAGES, "bookinfo_mesh")
    }
    cycles = []

    def walk(module: str, trail: tuple[str, ...]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported in trail:
                cycles.append(" -> ".join((*trail[trail.index(imported) :], imported)))
            elif imported in graph:
                walk(imported, (*trail, imported))

    for module in sorted(graph):
        walk(module, (module,))
    assert cycles == [], "import cycles: " + "; ".join(sorted(set(cycles)))


def test_only_the_cli_knows_every_command_and_no_command_imports_another() -> None:
    commands = {module_name(p) for p in python_files("bookinfo_mesh/commands")}
    importers = {
        module_name(path): repo_imports(path) & commands for path in python_files("bookinfo_mesh")
    }
    wrong = {
        module: sorted(imported - {"bookinfo_mesh.commands", "bookinfo_mesh.commands.arguments"})
        for module, imported in importers.items()
        if module != "bookinfo_mesh.cli"
        and imported - {"bookinfo_mesh.commands", "bookinfo_mesh.commands.arguments"}
    }
    assert wrong == {}, f"commands are reached only through the CLI: {wrong}"
