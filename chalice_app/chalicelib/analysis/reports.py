"""Saved reports: every read and write of ``dashboard_analysis_reports``.
Does database I/O through the connection it is given."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from infra.schema import dashboard_analysis_reports as reports_table


@dataclass(frozen=True)
class SavedReport:
    id: uuid.UUID
    created_at: dt.datetime
    file_names: list[str]
    prompt: str
    model: str
    markdown: str
    structured: dict[str, Any]
    usage: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> SavedReport:
        return cls(**dict(row._mapping))


def save(conn: Connection, *, file_names: list[str], prompt: str, model: str,
         markdown: str, structured: dict[str, Any], usage: dict[str, Any]) -> SavedReport:
    row = conn.execute(
        insert(reports_table)
        .values(id=uuid.uuid4(), file_names=file_names, prompt=prompt, model=model,
                markdown=markdown, structured=structured, usage=usage)
        .returning(*reports_table.c)
    ).one()
    return SavedReport.from_row(row)


def get(conn: Connection, report_id: uuid.UUID) -> SavedReport | None:
    row = conn.execute(
        select(reports_table).where(reports_table.c.id == report_id)).one_or_none()
    return SavedReport.from_row(row) if row is not None else None


def latest(conn: Connection, *, limit: int) -> list[SavedReport]:
    rows = conn.execute(
        select(reports_table)
        .order_by(reports_table.c.created_at.desc(), reports_table.c.id)
        .limit(limit))
    return [SavedReport.from_row(row) for row in rows]
