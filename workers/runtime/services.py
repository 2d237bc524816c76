"""The long-lived dependencies a process needs: settings, DB pool, Temporal client, intake."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.runtime import Runtime

from ingest.intake import AdtIntake
from schemas.protocol_library import ProtocolLibrary, load_library
from store.db import create_pool
from store.encryption import BlindIndex, FieldCipher
from store.migrate import schema_problem
from workers.runtime import embedded
from workers.runtime.embedded import StackError
from workers.runtime.settings import Settings
from workers.runtime.startup import POSTGRES_TRANSIENT, TemporalUnreachable, retrying
from workers.runtime.temporal import connect, keyring_for

log = structlog.get_logger(__name__)


def field_cipher_for(settings: Settings) -> FieldCipher:
    """The cipher of PHI at rest, under the payload keyring (also for `migrate`, which seals
    what earlier versions stored in plaintext)."""
    keyring = keyring_for(settings)
    return FieldCipher(keyring.keys, keyring.current)


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    client: Client
    intake: AdtIntake
    library: ProtocolLibrary
    field_cipher: FieldCipher  # PHI at rest in PostgreSQL (store/encryption.py)
    blind_index: BlindIndex

    @classmethod
    def build(
        cls,
        settings: Settings,
        pool: asyncpg.Pool,
        client: Client,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> Services:
        """`clock`: the intake's now (simulated time in `carebridge simulate`)."""
        library = load_library(settings.protocols_dir)
        field_cipher = field_cipher_for(settings)
        blind_index = BlindIndex(settings.key_secret.get_secret_value())
        intake = AdtIntake(
            pool,
            client,
            task_queue=settings.task_queue,
            key_secret=settings.key_secret.get_secret_value(),
            library=library,
            timeout_seconds=settings.ack_timeout_seconds,
            allowed_facilities=settings.allowed_facility_set,
            production=settings.environment == "production",
            field_cipher=field_cipher,
            blind_index=blind_index,
            clock=clock,
        )
        return cls(
            settings=settings,
            pool=pool,
            client=client,
            intake=intake,
            library=library,
            field_cipher=field_cipher,
            blind_index=blind_index,
        )

    @classmethod
    async def connect(cls, settings: Settings, runtime: Runtime | None = None) -> Services:
        """PostgreSQL, then Temporal, each retried for CAREBRIDGE_STARTUP_WAIT_SECONDS; a
        schema this release does not know is refused."""
        pool = await open_pool(settings)
        try:
            if problem := await schema_problem(pool, accept_newer=settings.accept_newer_schema):
                raise StackError(problem)
            client = await retrying(
                "Temporal",
                lambda: connect(settings, runtime),
                transient=(TemporalUnreachable,),
                wait_seconds=settings.startup_wait_seconds,
            )
        except BaseException:
            await pool.close()
            raise
        services = cls.build(settings, pool, client)
        keyring = keyring_for(settings)  # which key ids this pod holds (key rotation)
        log.info("payload_keys.loaded", key_ids=sorted(keyring.keys), current=keyring.current)
        return services

    async def close(self) -> None:
        await self.intake.close()
        await self.pool.close()


async def open_pool(settings: Settings) -> asyncpg.Pool:
    """The process's pool as configured (size, acquire timeout, statement cache), its first
    connection retried for CAREBRIDGE_STARTUP_WAIT_SECONDS."""
    dsn = await embedded.database_url(settings)
    return await retrying(
        "PostgreSQL",
        lambda: create_pool(
            dsn,
            max_size=settings.database_pool_size,
            acquire_timeout=settings.database_acquire_timeout_seconds,
            statement_cache_size=settings.database_statement_cache_size,
        ),
        transient=POSTGRES_TRANSIENT,
        wait_seconds=settings.startup_wait_seconds,
    )
