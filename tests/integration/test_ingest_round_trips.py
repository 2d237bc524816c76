"""How many PostgreSQL round trips the intake makes per message: the load-independent cost
of ingest (issue 23). Counted by asyncpg's query logger on every connection of a real pool
against the real embedded PostgreSQL, with the real Temporal dev server behind the intake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from store.db import create_pool
from tests.helpers import a03, msa, with_event
from workers.runtime.services import Services
from workers.runtime.settings import Settings


@dataclass
class Statements:
    """Every statement the pool's connections sent, in order."""

    sent: list[str] = field(default_factory=list)

    def during(self, start: int) -> list[str]:
        return self.sent[start:]


def shown(sent: list[str]) -> str:
    """The statements one a line, for a failure's message."""
    return "\n".join(" ".join(statement.split())[:100] for statement in sent)


@dataclass
class Counted:
    services: Services
    statements: Statements

    async def round_trips(self, raw: bytes) -> tuple[str, list[str]]:
        """The message's MSA-1 and the statements its intake sent."""
        start = len(self.statements.sent)
        result = await self.services.intake.handle(raw)
        return msa(result.ack)[1], self.statements.during(start)


@pytest_asyncio.fixture
async def counted(
    database_url: str, pool: asyncpg.Pool, settings: Settings, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Counted]:
    """`pool` (unused here) has migrated the database."""
    statements = Statements()

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: statements.sent.append(record.query))

    mine = await create_pool(database_url, max_size=1, init=init)
    services = Services.build(settings, mine, temporal_env.client)
    try:
        await services.intake.handle(a03())  # the connection's first use: type introspection
        yield Counted(services, statements)
    finally:
        await services.close()


async def test_a_new_discharge_costs_at_most_thirteen_round_trips(counted: Counted) -> None:
    """Inbox id and duplicate check, insert; patient key, ED visits, roster, the discharge
    and its care team, kept events; the registry's transaction (begin, survivor and locks,
    read, write, commit); settle. 32 before issue 23."""
    code, sent = await counted.round_trips(a03())

    assert code == "AA"
    assert len(sent) <= 13, shown(sent)


async def test_a_retransmission_gets_its_stored_ack_in_one_round_trip(counted: Counted) -> None:
    raw = a03()
    first, _ = await counted.round_trips(raw)
    again, sent = await counted.round_trips(raw)

    assert (first, again) == ("AA", "AA")
    assert len(sent) == 1, shown(sent)


async def test_an_update_to_a_running_transition_costs_at_most_nine_round_trips(
    counted: Counted,
) -> None:
    """Inbox (2), patient key, the registry's transaction (5), settle."""
    raw = a03(facility="TRIPS", visit="V-TRIPS-1")
    await counted.round_trips(raw)
    code, sent = await counted.round_trips(
        with_event(a03(facility="TRIPS", visit="V-TRIPS-1"), "A08")
    )

    assert code == "AA"
    assert len(sent) <= 9, shown(sent)
