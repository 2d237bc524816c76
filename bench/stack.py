"""The in-process stack the workflow benches share: an embedded PostgreSQL (migrated), a
Temporal dev server with carebridge's search attributes and an encrypting data converter,
removed again at the end; and a transition started on it directly (no ADT)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from schemas.protocol import Protocol
from schemas.transition import TransitionInput
from store.db import create_pool
from store.migrate import migrate
from workers.runtime.codec import Keyring
from workers.runtime.embedded import find_binary, start_embedded_postgres
from workers.runtime.temporal import data_converter
from workflows import search_attributes
from workflows.transition import TransitionWorkflow


@asynccontextmanager
async def embedded_stack(
    prefix: str,
    *,
    temporal_file: str | None = None,
    pool_init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    **dev_server: Any,
) -> AsyncIterator[tuple[Path, asyncpg.Pool, WorkflowEnvironment]]:
    """A state folder, a pool on a migrated embedded PostgreSQL and a dev server (in memory,
    or in `temporal_file` of the state folder; `dev_server`: more
    WorkflowEnvironment.start_local arguments); all removed on the way out. `pool_init`
    runs on each of the pool's connections (bench.intake counts statements with it)."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    if temporal_file is not None:
        dev_server["dev_server_database_filename"] = str(state / temporal_file)
    try:
        server = await asyncio.to_thread(
            start_embedded_postgres, state / "pg", cleanup_mode="delete"
        )
        extra = {"init": pool_init} if pool_init is not None else {}
        pool = await create_pool(str(server.get_uri()), max_size=20, **extra)
        try:
            await migrate(pool)
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=find_binary("temporal"),
                data_converter=data_converter(Keyring.generate("bench")),
                search_attributes=search_attributes.ALL,
                **dev_server,
            )
            try:
                yield state, pool, env
            finally:
                await env.shutdown()
        finally:
            await pool.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)


async def start_transition(
    client: Client,
    task_queue: str,
    transition_id: str,
    *,
    facility: str,
    discharged_at: datetime,
    protocol: Protocol,
    **start: Any,
) -> str:
    """Start a transition workflow as the intake would name it; its workflow id. `start`:
    more Client.start_workflow arguments."""
    workflow_id = keys.workflow_id(transition_id)
    await client.start_workflow(
        TransitionWorkflow.run,
        TransitionInput(
            transition_id=transition_id,
            encounter_key=transition_id.ljust(64, "0"),
            facility=facility,
            discharged_at=discharged_at,
            protocol=protocol,
        ),
        id=workflow_id,
        task_queue=task_queue,
        **start,
    )
    return workflow_id
