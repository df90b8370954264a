"""``python manage.py generate_dataset``: a realistic, reproducible data set for the bench.

100 bots with their own win rates, sizes and markets; a year of their trades with orders,
fills, open positions and hourly balances; one-minute candles of 50 markets. All of it follows
from a seed and an end time (tables.py, generate.py) and is loaded by COPY into the configured
database in one transaction (load.py).
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
