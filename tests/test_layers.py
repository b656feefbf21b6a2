"""The layer diagram the README draws is the one import-linter enforces (pyproject.toml)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    names = []
    for layer in layers:
        names += [name.strip().strip("()") for name in layer.split("|")]
    return names


def _readme_layers() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## How it fits together"):text.index("### Adding an architecture")]
    names = []
    for line in section.splitlines():
        match = re.match(r"^    ([a-z]+) ", line)
        if match:
            names.append(match.group(1))
            names += re.findall(r"\| ([a-z]+) ", line)
    return names


def test_readme_diagram_lists_the_enforced_layers_in_order():
    assert _readme_layers() == _contract_layers()


def test_every_top_level_package_is_in_a_layer_or_is_test_support():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    support = {"tests", "bench", "testing"}
    assert packages - support <= set(_contract_layers())
