"""Backups of the database: take one (``dump``), keep the right ones (``retention``), restore one
(``restore``), and prove that the newest restores (``drill``). The commands db_backup,
db_restore and db_restore_drill and the hourly task ``audit.db_backup`` call these.

- ``pg``: connection parameters and the choice of pg_dump / pg_restore (major >= the server's).
- ``paths``: the file layout under BACKUP_DIR, checksums and manifests.
- ``stats``: per-table row counts and key digests (the manifest; the drill compares them).
"""

from audit.backups.pg import BackupError

__all__ = ["BackupError"]
