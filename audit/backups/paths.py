"""Where backups go and the files beside each one.

``<BACKUP_DIR>/<database>/<YYYY>/<MM>/<DD>/backup-<YYYYMMDDTHHMMSSZ>.dump`` plus, beside it,
``.sha256`` (``sha256sum`` format, so ``sha256sum -c`` checks it) and ``.json`` (the manifest).
A dump is written as ``.dump.partial`` and renamed only once verified: a ``.dump`` file is whole.
Folders are 0700 and files 0600: a dump holds every row of the database.
"""

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from audit.backups.pg import BackupError

PARTIAL_SUFFIX = ".partial"


def backup_root() -> Path:
    if not settings.BACKUP_DIR:
        raise BackupError(
            "BACKUP_DIR is not set. In production point it at persistent storage (a mounted "
            "volume), e.g. BACKUP_DIR=/data/backups; development defaults to .data/backups."
        )
    return Path(settings.BACKUP_DIR)


def database_dir(database: str) -> Path:
    return backup_root() / database


def new_dump_path(database: str, started_at: datetime) -> Path:
    """A path not used yet for a backup started at ``started_at`` (UTC)."""
    folder = database_dir(database) / f"{started_at:%Y}" / f"{started_at:%m}" / f"{started_at:%d}"
    stem = f"backup-{started_at:%Y%m%dT%H%M%SZ}"
    path = folder / f"{stem}.dump"
    n = 1
    while any(p.exists() for p in companions(path, with_partial=True)):
        n += 1
        path = folder / f"{stem}-{n}.dump"
    return path


def sha256_path(dump: Path) -> Path:
    return dump.with_suffix(".sha256")


def manifest_path(dump: Path) -> Path:
    return dump.with_suffix(".json")


def partial_path(dump: Path) -> Path:
    return dump.with_name(dump.name + PARTIAL_SUFFIX)


def companions(dump: Path, *, with_partial: bool = False) -> list[Path]:
    """The dump and the files beside it."""
    paths = [dump, sha256_path(dump), manifest_path(dump)]
    return [*paths, partial_path(dump)] if with_partial else paths


def make_dirs(folder: Path) -> None:
    """The folder and any missing parent, each 0700 (``mkdir(parents=True)`` would give the
    parents the default mode)."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary name, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.replace(path)


def sha256_line(digest: str, dump: Path) -> str:
    return f"{digest}  {dump.name}\n"


def read_sha256(dump: Path) -> str:
    """The digest recorded in the dump's ``.sha256`` file."""
    path = sha256_path(dump)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BackupError(f"{path} cannot be read ({exc.strerror}): no checksum to check") from exc
    digest = text.split()[0] if text.split() else ""
    if len(digest) != 64:
        raise BackupError(f"{path} does not hold a sha256 digest")
    return digest.lower()


def verify_sha256(dump: Path) -> str:
    """Refuse a dump that is missing or whose content does not match its ``.sha256``."""
    if not dump.is_file():
        raise BackupError(f"{dump} does not exist")
    expected = read_sha256(dump)
    actual = file_sha256(dump)
    if actual != expected:
        raise BackupError(
            f"{dump} does not match its checksum (sha256 {actual}, expected {expected}): "
            "the file is damaged or not the one backed up. Refusing to restore it."
        )
    return actual


def read_manifest(dump: Path) -> dict[str, Any]:
    path = manifest_path(dump)
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read as a manifest: {exc}") from exc
    return manifest


def remove_files(paths: list[Path]) -> int:
    """Delete those that exist, then the day/month/year folders left empty. Returns how many
    files were deleted."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    for path in paths:
        folder = path.parent
        for _ in range(3):  # DD, MM, YYYY
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
    return removed
