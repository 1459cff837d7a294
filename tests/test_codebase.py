"""The codebase's own rules: docs that resolve, a short README, and no import cycles."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from tests.helpers import ROOT

REPO = Path(ROOT)
PACKAGES = ("snapshot", "transforms", "pipeline")


def tracked(*patterns: str) -> list[Path]:
    names = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / name for name in names.stdout.split()]


def anchors(markdown: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    found, code = set(), False
    for line in markdown.read_text().splitlines():
        if line.startswith("```"):
            code = not code
        elif not code and (heading := re.match(r"#+ (.*)", line)):
            text = re.sub(r"[^\w\- ]", "", heading.group(1).lower())
            found.add(text.replace(" ", "-"))
    return found


def test_every_docs_reference_in_the_code_names_a_file_and_section_that_exist():
    cited = 0
    for path in tracked("*.py", "*.avsc", "*.sh"):
        for name, anchor in re.findall(r"docs/([\w.-]+\.md)(?:#([\w-]+))?", path.read_text()):
            cited += 1
            target = REPO / "docs" / name
            assert target.exists(), f"{path.name} cites docs/{name}"
            assert not anchor or anchor in anchors(target), f"{path.name} cites docs/{name}#{anchor}"
    assert cited >= 10


def test_every_markdown_file_the_code_names_is_in_the_repository():
    for path in tracked("*.py", "*.avsc", "*.sh"):
        for name in re.findall(r"[\w./-]+\.md\b", path.read_text()):
            assert (REPO / name).exists() or (REPO / "docs" / name).exists(), f"{path.name} names {name}"


def test_every_link_between_the_docs_resolves():
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            where = (page.parent / file).resolve() if file else page
            assert where.exists(), f"{page.name} links to {target}"
            if anchor and where.suffix == ".md":
                assert anchor in anchors(where), f"{page.name} links to {target}"


def test_the_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


def imports(path: Path, package: str) -> set[str]:
    """The project modules `path` imports, at any depth of its code (function-level too)."""
    modules = {f"{p}.{f.stem}" for p in PACKAGES for f in (REPO / p).glob("*.py")} | set(PACKAGES)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = package + ("." + base if base else "")
            found |= {f"{base}.{alias.name}" for alias in node.names} | {base}
    return {name.removesuffix(".__init__") for name in found} & modules


def test_no_module_imports_another_in_a_cycle():
    graph = {}
    for package in PACKAGES:
        for path in (REPO / package).glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            graph[name] = imports(path, package) - {name, package}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen)) for n in graph[start])

    cycles = [m for m in graph if reaches(m, m, set())]
    assert cycles == []


def test_the_readme_layout_names_every_module_and_no_other():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## How it works") : readme.index("## Benchmarks")]
    for package in PACKAGES:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{package}/`"))
        named = set(re.findall(r"`(\w+)`", row))
        modules = {path.stem for path in (REPO / package).glob("*.py")} - {"__init__"}
        assert named == modules, package
