"""The message browser's view of one inbox row: raw, parsed, and what it caused."""

from __future__ import annotations

from typing import Any

from ingest import er7, mapping
from ingest.errors import HL7Error
from schemas.site import SiteConfig
from store.inbox import removal_notice


def describe(row: dict[str, Any], site: SiteConfig) -> dict[str, Any]:
    """The row (from store/inbox.get_message, its raw bytes opened) as the browser shows it:
    text, the parse (or why it fails), the decision; once retention removed the bytes, a
    line saying so instead (and `raw_unreadable` when they do not open). Times without an
    offset are read in the sending facility's zone, as the intake did."""
    raw: bytes | None = row["raw"]
    view = {key: value for key, value in row.items() if key != "raw"}
    if raw is None:
        view["raw"] = None
        view["parsed"] = None
        if row["raw_removed_at"] is not None:
            view["raw_removed"] = removal_notice(row["raw_removed_at"], site.calendar_zone())
        return view
    view["raw"] = er7.normalise(er7.decode(raw, site.character_sets)).replace("\r", "\n")
    try:
        view["parsed"] = mapping.to_event(
            er7.parse(raw, site.character_sets),
            site.zone_for(row.get("sending_facility") or ""),
            visit_sources=site.visit_number_sources,
            results=bool(site.feed.discharge_result_codes),
        ).model_dump(mode="json")
    except HL7Error as error:
        view["parsed"] = None
        view["parse_error"] = str(error)
    return view
