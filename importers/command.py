"""The base of every import command: ``--dry-run``, ``--progress/--no-progress``, ``--merge``,
``--stale-after`` and the report. A subclass adds its source's arguments and returns the job
(importers.core); a SourceError (a MergeRefused too) becomes a CommandError: exit 1, nothing
written."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from importers.core import ImportJob, SourceError, import_run, progress_default
from importers.guard import guard_arguments


class ImportCommand(BaseCommand):
    """``--dry-run``, ``--progress/--no-progress``, the guards and the report; subclasses
    return the job."""

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_source_arguments(parser)
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what the import would write, write nothing (all rolled back).",
        )
        parser.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Show a progress bar on stderr on long runs (default: when stderr is a tty).",
        )
        guard_arguments(parser)

    def add_source_arguments(self, parser: CommandParser) -> None:
        raise NotImplementedError

    def job(self, **options: Any) -> ImportJob:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        progress = options["progress"]
        try:
            job = self.job(**options)
            report = import_run(
                job,
                dry_run=options["dry_run"],
                progress=progress_default() if progress is None else progress,
                merge=options["merge"],
                stale_after=options["stale_after"],
            )
        except SourceError as exc:
            raise CommandError(f"{self._name()}: {exc}") from exc
        self.stdout.write(report.render(), ending="")

    def _name(self) -> str:
        return self.__class__.__module__.rsplit(".", 1)[-1]
