"""Results as a person reads them: the seed's summary block and the verify report, as plain text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from engine.summary import RunSummary
from engine.verify import VerifyReport

_WIDTH = 44


def _box(title: str, rows: list[tuple[str, str]], tail: list[str]) -> str:
    head = f"┌─ {title} "
    width = max(len(label) for label, _ in rows)
    lines = [head + "─" * max(4, _WIDTH - len(head))]
    lines += [f"│ {label:<{width}} : {value}" for label, value in rows]
    lines += [f"│ {line}" for line in tail]
    lines.append("└" + "─" * (_WIDTH - 1))
    return "\n".join(lines)


def print_verify(report: VerifyReport, report_path: Path | None) -> None:
    tail = [f"missing {i}" for i in report.missing_ids[:5]] + [f"extra {i}" for i in report.extra_ids[:5]]
    tail += [f"mismatch {m['id']}: {', '.join(m['fields'])}" for m in report.mismatches[:5]]
    if report_path is not None:
        tail.append(f"report: {report_path}")
    tail.append("result: stores match" if report.ok else "result: MISMATCH")
    print(_box(f"verify {report.source} -> {report.target}", report.rows(), tail))


def summary_block(summary: RunSummary) -> str:
    """The seed README's box, extended with skips by reason, failures and rate."""
    tail = [f"failed {record_id}: {reason}" for record_id, reason in summary.failed_sample]
    if summary.rejects_path is not None:
        tail.append(f"rejects file  : {summary.rejects_path}")
    if summary.output_checksum:
        tail.append(f"checksum      : {summary.output_checksum}")
    return _box(f"{summary.target} summary", summary.rows(), tail)


def print_summary(summary: RunSummary, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line, reason in summary.reject_sample[:5]:
        where = f"line {line}" if line is not None else "record"
        print(f"damaged: {where}: {reason}", file=sys.stderr)
    print(summary_block(summary), file=out)
    if summary.verify is not None:
        print_verify(summary.verify, None)
