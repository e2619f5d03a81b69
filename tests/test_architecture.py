"""The dependency direction of DESIGN.md, enforced: a forbidden import fails this test.

domain imports the standard library and msgspec only; storage and channels import domain
(never each other, never server); server wires everything; the SDK imports no server code.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"domain", "storage", "channels", "server", "plaza_client"}

# For each package: which of our packages it may import, and (for domain) the only
# third-party module allowed.
ALLOWED_OURS = {
    "domain": {"domain"},
    "storage": {"storage", "domain"},
    "channels": {"channels", "domain"},
    "server": {"server", "domain", "storage", "channels"},
    "plaza_client": {"plaza_client"},
}
DOMAIN_THIRD_PARTY = {"msgspec"}
PACKAGE_DIRS = {
    "domain": ROOT / "domain",
    "storage": ROOT / "storage",
    "channels": ROOT / "channels",
    "server": ROOT / "server",
    "plaza_client": ROOT / "client-sdk" / "plaza_client",
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(package: str) -> list[str]:
    bad: list[str] = []
    for path in sorted(PACKAGE_DIRS[package].rglob("*.py")):
        for lineno, module in imported_modules(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{lineno} imports {module}"
            if (top in OURS and top not in ALLOWED_OURS[package]) or (
                package == "domain"
                and top not in OURS
                and top not in sys.stdlib_module_names
                and top not in DOMAIN_THIRD_PARTY
            ):
                bad.append(where)
    return bad


@pytest.mark.parametrize("package", sorted(PACKAGE_DIRS))
def test_dependency_direction(package: str) -> None:
    assert PACKAGE_DIRS[package].is_dir()
    assert violations(package) == []


def test_the_checker_catches_forbidden_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_domain = tmp_path / "domain"
    fake_domain.mkdir()
    (fake_domain / "bad.py").write_text(
        "import json\nimport msgspec\nimport redis\nfrom storage.tables import Users\n"
        "from . import sibling\n"
    )
    fake_channels = tmp_path / "channels"
    fake_channels.mkdir()
    (fake_channels / "bad.py").write_text("import redis\nfrom storage import factory\n")
    monkeypatch.setitem(PACKAGE_DIRS, "domain", fake_domain)
    monkeypatch.setitem(PACKAGE_DIRS, "channels", fake_channels)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert violations("domain") == [
        "domain/bad.py:3 imports redis",
        "domain/bad.py:4 imports storage.tables",
    ]
    assert violations("channels") == ["channels/bad.py:2 imports storage"]
