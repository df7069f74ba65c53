"""The docs stay true: every output sample is what its command prints now (scripts/docs.py),
and every relative link leads to a file and a heading that exist."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_docs() -> ModuleType:
    path = ROOT / "scripts" / "docs.py"
    spec = importlib.util.spec_from_file_location("docs_samples", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


DOCS = load_docs()
PAGES = DOCS.DOCS


def page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


BLOCKS = [
    (page_id(path), match["name"], match["body"])
    for path in PAGES
    for match in DOCS.SAMPLE.finditer(path.read_text())
]


def block_param(page: str, name: str, body: str) -> object:
    """A block as a test case; blocks that read one run between them go to one worker."""
    shared = DOCS.SHARED_RUNS.get(name)
    marks = [pytest.mark.xdist_group(f"docs-{shared}")] if shared else []
    return pytest.param(page, name, body, id=f"{page}:{name}", marks=marks)


@pytest.mark.parametrize(("page", "name", "body"), [block_param(*block) for block in BLOCKS])
def test_every_sample_is_what_its_command_prints_now(page: str, name: str, body: str) -> None:
    """Each block on its own, so parallel workers share the samples out."""
    assert DOCS.sample_body(name) == body, f"{page} has a stale `{name}` sample: run `make docs`"


def test_every_sample_has_a_block_in_the_docs_and_no_block_names_an_unknown_one() -> None:
    named = [m["name"] for path in PAGES for m in DOCS.SAMPLE.finditer(path.read_text())]
    assert sorted(set(named)) == sorted(DOCS.SAMPLES), "samples and docs blocks disagree"


def test_a_stale_sample_is_rewritten_whole() -> None:
    stale = "x\n<!-- sample: istio-ladder-keys -->\n```yaml\nold\n```\ny\n"
    fresh = DOCS.rewrite(stale)
    assert fresh.startswith("x\n<!-- sample: istio-ladder-keys -->\n```yaml\n# before\n")
    assert fresh.endswith("```\ny\n") and "old" not in fresh


def test_a_block_ends_only_at_its_own_fence_on_a_line_of_its_own() -> None:
    text = "<!-- sample: istio-ladder-keys -->\n````md\n```\ninner\n```\nnot the end````\n````\n"
    (match,) = DOCS.SAMPLE.finditer(text)
    assert match["body"] == "```\ninner\n```\nnot the end````\n", match["body"]


def test_a_sample_whose_output_would_close_its_block_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(DOCS.SAMPLES, "fenced", lambda: "text\n```diff\n- a\n```\n")
    with pytest.raises(SystemExit, match="lengthen the block's fence"):
        DOCS.rewrite("<!-- sample: fenced -->\n```markdown\n```\n")
    block = "<!-- sample: fenced -->\n````markdown\n````\n"
    assert DOCS.rewrite(block).endswith("```diff\n- a\n```\n````\n")


# --- links -------------------------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
# [text](target) or [text](target "title"); the text may hold one level of brackets.
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")  # http:, https:, mailto: ...


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks, with inline code taken out. A fence closes on a
    line of its own character only, at least as long as the one that opened it."""
    fence = None
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence is None:
            if opened:
                fence = opened[1]
            else:
                yield re.sub(r"(`+).+?\1", "", line)
        else:
            closing = opened is not None and line.strip() == opened[1]
            if closing and opened[1][0] == fence[0] and len(opened[1]) >= len(fence):
                fence = None


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text without markup, lower case, punctuation
    dropped (hyphens and underscores stay), each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every #fragment a page answers to: one per heading, a repeat with -1, -2, ..."""
    found: set[str] = set()
    for line in prose_lines(path.read_text()):
        if heading := HEADING.match(line):
            slug = base = github_anchor(heading[2])
            repeat = 0
            while slug in found:
                repeat += 1
                slug = f"{base}-{repeat}"
            found.add(slug)
    return found


def relative_links(path: Path) -> list[str]:
    """The targets of the page's links that name no scheme: files and #anchors here."""
    targets = (t for line in prose_lines(path.read_text()) for t in LINK.findall(line))
    return [target for target in targets if not SCHEME.match(target)]


def broken_link(page: Path, target: str) -> str | None:
    """Why `target`, linked from `page`, leads nowhere; None if it leads somewhere."""
    file_part, _, fragment = unquote(target).partition("#")
    destination = (page.parent / file_part).resolve() if file_part else page
    if destination != ROOT and ROOT not in destination.parents:
        return "outside the repository"
    if not destination.exists():
        return "no such file"
    if fragment and destination.suffix == ".md" and fragment not in anchors(destination):
        return f"no heading #{fragment} in {page_id(destination)}"
    return None


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(path: Path) -> None:
    broken = [f"{t}: {why}" for t in relative_links(path) if (why := broken_link(path, t))]
    assert not broken, f"{page_id(path)}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    unlinked = [page_id(p) for p in PAGES[1:] if p not in linked]
    assert not unlinked, f"the README's Documentation list misses {unlinked}"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Istio CRDs and `pulumi preview`", "istio-crds-and-pulumi-preview"),
        ("Set-up: two commands", "set-up-two-commands"),
        ("The order, and the load balancer", "the-order-and-the-load-balancer"),
        ("Inside the offline tools: the mock engine", "inside-the-offline-tools-the-mock-engine"),
        ("[Deploy](x.md) **now**", "deploy-now"),
        ("snake_case and 1.31.0", "snake_case-and-1310"),
    ],
)
def test_anchors_are_made_as_github_makes_them(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


def test_the_link_check_reads_no_code_and_tells_a_missing_heading() -> None:
    text = "# Top\n[a](#top) `[b](#nowhere)`\n````\n```\n[c](#inside)\n```\n````\n## Top\n"
    page = ROOT / "docs" / "upgrading-istio.md"
    assert list(prose_lines(text)).count("## Top") == 1
    assert [t for line in prose_lines(text) for t in LINK.findall(line)] == ["#top"]
    assert broken_link(page, "../README.md#set-up-two-commands") is None
    assert (
        broken_link(page, "../README.md#no-such-heading")
        == "no heading #no-such-heading in README.md"
    )
    assert broken_link(page, "../../elsewhere.md") == "outside the repository"
