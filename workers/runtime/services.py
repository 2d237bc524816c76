"""The long-lived dependencies a process needs: settings, DB pool, Temporal client, intake."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from temporalio.client import Client
from temporalio.runtime import Runtime

from ingest.intake import AdtIntake
from schemas.protocol_library import ProtocolLibrary, load_library
from store.db import create_pool
from store.encryption import BlindIndex, FieldCipher
from workers.runtime import embedded
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect, keyring_for


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
    def build(cls, settings: Settings, pool: asyncpg.Pool, client: Client) -> Services:
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
        pool = await create_pool(
            await embedded.database_url(settings),
            max_size=settings.database_pool_size,
            acquire_timeout=settings.database_acquire_timeout_seconds,
        )
        return cls.build(settings, pool, await connect(settings, runtime))

    async def close(self) -> None:
        await self.intake.close()
        await self.pool.close()
