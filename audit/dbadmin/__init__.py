"""Database administration behind the ``db_verify``, ``setup_railway`` and ``db_nuke`` commands.

- ``verify``: does the database match the code (schemas, tables, columns, views, migrations)?
- ``railway``: is the deployment's database configured and writable (``setup_railway --verify``)?
- ``nuke``: drop our schemas and rebuild them with ``migrate`` (development only).
"""

from audit.dbadmin.catalog import canonical_type
from audit.dbadmin.report import Finding, Report
from audit.dbadmin.verify import database_verify, render_row_counts

__all__ = ["Finding", "Report", "canonical_type", "database_verify", "render_row_counts"]
