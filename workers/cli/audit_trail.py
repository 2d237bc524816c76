"""The audit trail's rows for CLI commands (DESIGN invariant 6): the CLI acts on Temporal and
PostgreSQL directly, so its reads of PHI and its changes are recorded like the API's, under
the `--by` it was given (or the operating-system user) and the host it ran on. A change gets
its row before it is made ("attempt"; no row, no change) and another with its outcome."""

from __future__ import annotations

import getpass
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from workers.runtime.settings import Settings

if TYPE_CHECKING:  # loaded when a command runs, not when the CLI starts
    import asyncpg

ROLE = "cli"


def _source() -> str:
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


@asynccontextmanager
async def audited(
    settings: Settings,
    *,
    action: str,
    resource_type: str,
    resource_id: str | None,
    by: str | None = None,
    changes: bool = True,
    shown: list[tuple[str | None, str | None]] | None = None,
) -> AsyncIterator[asyncpg.Pool]:
    """Wrap one CLI action in its audit rows; the action uses the pool it yields. A list
    that shows patients fills `shown` (transition id, patient key): its outcome is then
    one row per patient shown."""
    from store import security
    from store.db import create_pool
    from workers.runtime import embedded
    from workers.runtime.embedded import StackError

    pool = await create_pool(await embedded.database_url(settings), max_size=2)
    actor = by or getpass.getuser()
    key = settings.audit_chain_key
    patient: str | None = None

    async def record(outcome: str) -> None:
        nonlocal patient
        if patient is None and resource_type == "transition" and resource_id:
            patient = await security.patient_key_of(pool, resource_id)
        await security.record_each(
            pool,
            key=key,
            actor=actor,
            role=ROLE,
            action=f"cli {action}",
            resource_type=resource_type,
            shown=shown or [(resource_id, patient)],
            source=_source(),
            outcome=outcome,
        )

    try:
        if changes:
            try:
                await record("attempt")
            except Exception as exc:
                raise StackError(
                    f"the audit log cannot be written ({type(exc).__name__}): nothing was done"
                ) from None
        try:
            yield pool
        except BaseException as exc:
            await record(f"failed: {type(exc).__name__}")
            raise
        await record("ok")
    finally:
        await pool.close()
