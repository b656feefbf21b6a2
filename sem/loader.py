"""Load routines from a DSL file (a Python module defining them with @routine)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from sem.ir import Routine
from sem.store import Name


class RoutineFileError(ValueError):
    """A DSL file that could not be run, or that defines no routine."""


def load_file(path: str | Path) -> list[tuple[Routine, Name]]:
    """Every Routine bound at module level, named NAMESPACE:variable (NAMESPACE
    defaults to the file's stem), in definition order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give the path of a .py file using sem.ir")
    digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
    unique = "sem_source_" + digest
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None:  # Python loads only a source file it knows by its suffix
        raise RoutineFileError(f"{path}: not a Python file; give the path of a .py file using"
                               " sem.ir")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the file is the user's: its errors are theirs to fix
        where = f", line {error.lineno}" if isinstance(error, SyntaxError) else ""
        raise RoutineFileError(f"{path}{where}: {type(error).__name__}: {error}; fix the file")\
            from error
    namespace = getattr(module, "NAMESPACE", path.stem)
    found = [(r, Name(namespace, var, r.hint_params))
             for var, r in vars(module).items() if isinstance(r, Routine)]
    if not found:
        raise RoutineFileError(f"{path} defines no routines; decorate functions with @routine")
    return found
