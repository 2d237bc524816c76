"""Roster CSV import: validate every row, key its identifier, upsert idempotently.

The header is `identifier,assigning_authority,practice,pcp_id,program` (pcp_id and program
optional, any order). A rejected row is reported by line number and reason only: reasons never
quote a value, since a value may be a patient identifier (PHI).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas import keys
from store import roster
from store.roster import RosterRecord, UpsertCounts

REQUIRED_COLUMNS = ("identifier", "assigning_authority", "practice")
OPTIONAL_COLUMNS = ("pcp_id", "program")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


class RosterFileError(Exception):
    """The file cannot be read at all (missing, unreadable, not text)."""


class RosterRow(BaseModel):
    """One roster line. `identifier` is PHI: kept out of repr, stored only as its HMAC."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    identifier: str = Field(min_length=1, max_length=64, repr=False)
    assigning_authority: str = Field(min_length=1, max_length=64)
    practice: str = Field(min_length=1, max_length=120)
    pcp_id: str = Field(default="", max_length=64)
    program: str = Field(default="", max_length=60)

    @property
    def identity(self) -> tuple[str, str]:
        """What the patient key is computed from, normalised as schemas/keys.py does."""
        return self.assigning_authority.upper(), self.identifier


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass(frozen=True)
class ParsedRoster:
    accepted: tuple[RosterRow, ...]
    rejected: tuple[Rejected, ...]


@dataclass(frozen=True)
class ImportResult:
    accepted: int
    rejected: tuple[Rejected, ...]
    counts: UpsertCounts


def read_roster(path: Path) -> str:
    """The file's text (UTF-8, a BOM from spreadsheets tolerated)."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise RosterFileError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from exc
    except UnicodeDecodeError as exc:
        raise RosterFileError(f"cannot read {path}: not UTF-8 text") from exc


def _rows(text: str) -> Iterator[tuple[int, list[str] | None]]:
    """(line, fields) per CSV record; fields is None where the CSV itself is malformed."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield reader.line_num, None
            continue
        if any(f.strip() for f in fields):
            yield reader.line_num, fields


def _header_problem(columns: list[str]) -> str | None:
    """Positions, not names, for unknown columns: a file without a header would otherwise
    have its first identifier printed as a column name."""
    unknown = [str(i) for i, name in enumerate(columns, start=1) if name not in COLUMNS]
    if unknown:
        return (
            f"header: unknown column(s) at position {', '.join(unknown)} "
            f"(expected {', '.join(COLUMNS)})"
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        return f"header: column(s) {', '.join(repeated)} given twice"
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        return f"header: missing column(s) {', '.join(missing)}"
    return None


def _reason(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "row"
        if error["type"] in ("missing", "string_too_short"):
            problems.append(f"missing {field}")
        else:
            problems.append(f"{field}: {error['msg']}")  # pydantic messages never quote input
    return "; ".join(problems)


def parse_roster(text: str) -> ParsedRoster:
    """Validate every row; a bad header rejects the file as a whole (line 1)."""
    records = _rows(text)
    first = next(records, None)
    if first is None:
        return ParsedRoster((), (Rejected(1, "empty file: no header row"),))
    header_line, header = first
    if header is None:
        return ParsedRoster((), (Rejected(header_line, "header: malformed CSV"),))
    columns = [name.strip().lower() for name in header]
    if problem := _header_problem(columns):
        return ParsedRoster((), (Rejected(header_line, f"{problem}; nothing imported"),))

    accepted: list[RosterRow] = []
    rejected: list[Rejected] = []
    seen: dict[tuple[str, str], int] = {}
    for line, fields in records:
        if fields is None:
            rejected.append(Rejected(line, "malformed CSV"))
            continue
        if len(fields) > len(columns):
            rejected.append(
                Rejected(line, f"extra column: {len(fields)} values, the header has {len(columns)}")
            )
            continue
        values = dict(zip(columns, fields, strict=False))
        try:
            row = RosterRow.model_validate(values)
        except ValidationError as exc:
            rejected.append(Rejected(line, _reason(exc)))
            continue
        if row.identity in seen:
            rejected.append(Rejected(line, f"duplicate of line {seen[row.identity]}"))
            continue
        seen[row.identity] = line
        accepted.append(row)
    return ParsedRoster(tuple(accepted), tuple(rejected))


def to_records(rows: tuple[RosterRow, ...], key_secret: str) -> list[RosterRecord]:
    """Each identifier replaced by the patient key routing computes for that PID-3 identifier."""
    return [
        RosterRecord(
            patient_key=keys.patient_key(key_secret, row.assigning_authority, row.identifier),
            assigning_authority=row.assigning_authority,
            practice=row.practice,
            pcp_id=row.pcp_id,
            program=row.program,
        )
        for row in rows
    ]


async def import_roster(
    pool: asyncpg.Pool, parsed: ParsedRoster, *, source_file: str, key_secret: str
) -> ImportResult:
    counts = await roster.upsert(
        pool, to_records(parsed.accepted, key_secret), source_file=source_file
    )
    return ImportResult(accepted=len(parsed.accepted), rejected=parsed.rejected, counts=counts)
