"""The app graph points one way (ARCHITECTURE.md): trading at the bottom; audit above it;
botconfig and analytics above those; importers and benchmarks leaves. alerts sits above audit and
beside botconfig: it reads audit's events (its triggers fire on audit's tables), and only
analytics (the beat schedule), the leaves and atb_site may import it. Every import counts, those
inside functions too: a lazy import is still a dependency."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = (
    "trading",
    "audit",
    "botconfig",
    "alerts",
    "analytics",
    "importers",
    "benchmarks",
    "atb_site",
)
# What each app must never import.
FORBIDDEN = {
    "trading": {"audit", "botconfig", "alerts", "analytics", "importers", "benchmarks"},
    "audit": {"botconfig", "alerts", "analytics", "importers", "benchmarks"},
    "botconfig": {"alerts", "analytics", "importers", "benchmarks"},
    "alerts": {"botconfig", "analytics", "importers", "benchmarks"},
    "analytics": {"importers", "benchmarks"},
    "atb_site": {"importers", "benchmarks"},
}


def imports_of(app: str) -> set[tuple[str, str]]:
    """(imported app, importing file) for every import of another app in ``app``'s code."""
    found = set()
    for path in (ROOT / app).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in APPS and top != app:
                    found.add((top, str(path.relative_to(ROOT))))
    return found


def test_no_app_imports_one_above_it() -> None:
    wrong = sorted(
        f"{path} imports {imported}"
        for app, forbidden in FORBIDDEN.items()
        for imported, path in imports_of(app)
        if imported in forbidden
    )
    assert wrong == []
