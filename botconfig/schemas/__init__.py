"""The strategy schemas kept in the repository: ``<strategy_type>.json``, JSON Schema 2020-12.

They are the first content of ``config.strategy_schemas`` (migration 0002), after which the
table is the truth and staff edit it in the admin. A database whose table is empty (a flushed
test database) gets them again on first use (``botconfig.validation.schema_for``).
"""

import json
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent


def repository_schemas() -> dict[str, Any]:
    """Each schema file's document, by strategy type (the file's name)."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(FOLDER.glob("*.json"))
    }
