"""The house's layering: the bottom layers import nothing from the layers above them, and every
module imports on its own (a cycle between layers shows only when a module is imported first)."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orchestrator

ROOT = Path(orchestrator.__file__).resolve().parent

# What the inventory may use besides itself: the bottom of the house and the table of transports
# (names, ports, platforms; it imports nothing of kremove's).
INVENTORY_MAY_USE = (
    "orchestrator.errors",
    "orchestrator.deadline",
    "orchestrator.textsafe",
    "orchestrator.secrets",
    "orchestrator.transports.kinds",
    "orchestrator.inventory",
)
LEDGER_MAY_USE = (
    "orchestrator.errors",
    "orchestrator.textsafe",
    "orchestrator.ledger",
    "orchestrator.__version__",
)


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n.startswith("orchestrator.")}


def outside(package: str, allowed: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / package).glob("*.py")
        for name in imported(path)
        if not name.startswith(allowed)
    )


def test_the_inventory_and_the_ledger_use_only_the_bottom_of_the_house() -> None:
    assert outside("inventory", INVENTORY_MAY_USE) == []
    assert outside("ledger", LEDGER_MAY_USE) == []


def bottom_modules() -> list[str]:
    paths = [*(ROOT / "inventory").glob("*.py"), *(ROOT / "ledger").glob("*.py")]
    paths += [ROOT / "transports" / "base.py", ROOT / "transports" / "kinds.py"]
    paths += [p for p in ROOT.glob("*.py") if p.name != "__main__.py"]
    return sorted(
        ".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in paths
    )


def test_every_bottom_module_imports_first_in_a_fresh_interpreter() -> None:
    def alone(module: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
        )
        return "" if done.returncode == 0 else f"{module}: {done.stderr.strip().splitlines()[-1]}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(alone, bottom_modules()) if f]
    assert failures == []
