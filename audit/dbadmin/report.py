"""A report the database-administration commands print: findings, facts, and whether it passed.

A finding is one line of the report: the check it belongs to, its status, what it is about, and a
message a person can act on. ``error`` findings fail the command (exit code 1); ``warning`` and
``info`` findings are reported and do not.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "info", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    subject: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    title: str
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, check: str, status: Status, subject: str, message: str, **data: Any) -> Finding:
        finding = Finding(check=check, status=status, subject=subject, message=message, data=data)
        self.findings.append(finding)
        return finding

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        counts = f"{plural(len(self.errors), 'error')}, {plural(len(self.warnings), 'warning')}"
        return f"{'OK' if self.ok else 'FAILED'}: {counts}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
            **self.facts,
        }

    def render(self) -> str:
        """The findings as an aligned table, then the summary line."""
        rows = [("CHECK", "STATUS", "SUBJECT", "DETAIL")] + [
            (
                f.check,
                f.status.upper() if f.status in ("error", "warning") else f.status,
                f.subject,
                f.message,
            )
            for f in self.findings
        ]
        return "\n".join([self.title, "", *table(rows), "", self.summary()])


def table(rows: Sequence[Sequence[str]], *, right: frozenset[int] = frozenset()) -> list[str]:
    """Rows as lines of left-aligned columns (those in ``right`` right-aligned); the last column is
    not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row[:-1])
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
