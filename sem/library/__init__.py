"""The starter library: DSL modules whose routines `sem add` can store."""

from pathlib import Path

MODULES = ("hackers_delight", "sorting")
FILES = tuple(Path(__file__).with_name(f"{m}.py") for m in MODULES)
