"""Load routines from a DSL file (a Python module defining them with @routine)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from sem.ir import Routine
from sem.store import Name


def load_file(path: str | Path) -> list[tuple[Routine, Name]]:
    """Every Routine bound at module level, named NAMESPACE:variable (NAMESPACE
    defaults to the file's stem), in definition order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give the path of a .py file using sem.ir")
    unique = "sem_source_" + hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
    spec = importlib.util.spec_from_file_location(unique, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    namespace = getattr(module, "NAMESPACE", path.stem)
    found = [(r, Name(namespace, var, r.hint_params))
             for var, r in vars(module).items() if isinstance(r, Routine)]
    if not found:
        raise ValueError(f"{path} defines no routines; decorate functions with @routine")
    return found
