"""No two classes in the project share a name: a name says which thing it is."""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"build", "__pycache__"}  # generated; hidden folders (.venv, .git) are skipped too



def project_modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if not any(part.startswith(".") or part in SKIPPED
                             for part in p.relative_to(ROOT).parts))


def classes_by_name() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in project_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):  # nested and test classes too
                found[node.name].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_walk_sees_the_whole_project():
    modules = {str(p.relative_to(ROOT)) for p in project_modules()}
    assert {"tasks.py", "sem/store.py", "probes/probe.py", "tests/test_class_names.py"} <= modules
    assert not any(m.startswith((".venv/", "build/")) for m in modules)
    assert [where.split(":")[0] for where in classes_by_name()["Probe"]] == ["probes/probe.py"]


def test_no_two_classes_share_a_name():
    shared = {name: where for name, where in classes_by_name().items() if len(where) > 1}
    assert shared == {}, "rename one of each so its name says what it is"
