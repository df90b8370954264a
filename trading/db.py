"""Small building blocks every app's models use, so each rule of SCHEMA.md is written once.

- Tables live in PostgreSQL schemas (``trading.trades``); ``schema_table`` spells that for Django.
- Money, prices, quantities and percentages are NUMERIC with the precision SCHEMA.md fixes.
- Enumerations are short lowercase text guarded by a CHECK constraint.
"""

from typing import Any

from django.db import models


def schema_table(schema: str, table: str) -> str:
    """A ``db_table`` value that places the table in a PostgreSQL schema.

    Django quotes ``db_table`` as one identifier; closing and reopening the quotes yields
    ``"schema"."table"``. Django's schema editor understands the namespace (split_identifier).
    """
    return f'{schema}"."{table}'


def QuantityField(**kwargs: Any) -> models.DecimalField:
    """Quantities and prices: NUMERIC(28, 10)."""
    return models.DecimalField(max_digits=28, decimal_places=10, **kwargs)


def UsdField(**kwargs: Any) -> models.DecimalField:
    """USD amounts: NUMERIC(20, 8)."""
    return models.DecimalField(max_digits=20, decimal_places=8, **kwargs)


def PctField(**kwargs: Any) -> models.DecimalField:
    """Percentages and ratios: NUMERIC(12, 6)."""
    return models.DecimalField(max_digits=12, decimal_places=6, **kwargs)


def choices_check(
    table: str, field: str, choices: type[models.TextChoices]
) -> models.CheckConstraint:
    """CHECK that ``field`` holds one of ``choices`` (named ``<table>_<field>_valid``)."""
    return models.CheckConstraint(
        condition=models.Q(**{f"{field}__in": choices.values}),
        name=f"{table}_{field}_valid",
    )
