"""No module reaches into another package's private names: a name with a leading underscore is the
owner's to change, so importing one from another package (``from seamline.shared.storage.sql import
_aware``) or reaching through a collaborator into its privates (``self._handoff._store``) turns
every refactoring of the owner into a break somewhere else. Walks the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bots", "handoff", "nlu", "shared")


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "seamline" else None


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def crossings(source: str, where: str) -> list[str]:
    """What in the module at ``where`` (a path under the repository) uses a private name it does not own."""
    here = where.split("/")[0]
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.ImportFrom) and node.module and package_of(node.module) not in (None, here):
            names = [a.name for a in node.names if private(a.name)]
            names += [p for p in node.module.split(".") if private(p)]
            found += [f"{where}:{node.lineno} imports {n} from {node.module}" for n in names]
        elif isinstance(node, ast.Import):
            found += [
                f"{where}:{node.lineno} imports {a.name}"
                for a in node.names
                if package_of(a.name) not in (None, here) and any(map(private, a.name.split(".")))
            ]
        elif (
            isinstance(node, ast.Attribute)
            and private(node.attr)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id in ("self", "cls")
        ):
            found.append(f"{where}:{node.lineno} reaches into {ast.unparse(node)}")
    return found


def test_no_module_uses_another_packages_private_names():
    assert [c for path in sources() for c in crossings(path.read_text(), path.relative_to(ROOT).as_posix())] == []


def test_the_walk_sees_a_private_import_and_a_reach_through():
    """The check itself: both kinds of crossing are found, a package's own privates are not."""
    found = crossings(
        "from seamline.shared.storage.sql import _aware\n"
        "from seamline.handoff.service import _own\n"
        "class Api:\n    def read(self):\n        return self._handoff._store\n",
        "handoff/api.py",
    )
    assert [f.split(" ", 1)[1] for f in found] == [
        "imports _aware from seamline.shared.storage.sql",
        "reaches into self._handoff._store",
    ]
