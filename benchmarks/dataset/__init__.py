"""``python manage.py generate_dataset``: a realistic, reproducible data set for the bench.

Bots with their own win rates, sizes and markets (100 at the full scale, 1,000 at the large);
a year of their trades with orders, fills, open positions and hourly balances; one-minute
candles of 50 markets (200). All of it follows from a seed and an end time (tables.py,
generate.py) and is loaded by COPY into the configured database in one transaction (load.py),
each table made as it is sent, a chunk at a time (columns.py), so memory stays bounded.
"""

from benchmarks.dataset.load import DatasetError, LoadReport, dataset_load, table_digests
from benchmarks.dataset.spec import DATASET_MARK, SCALES, DatasetSpec

__all__ = [
    "DATASET_MARK",
    "SCALES",
    "DatasetError",
    "DatasetSpec",
    "LoadReport",
    "dataset_load",
    "table_digests",
]
