"""Key commands: move PHI at rest to the current key after a rotation.

Rotation itself is configuration (a new key appended to CAREBRIDGE_CODEC_KEYS or the keyring
file, made current): new values are sealed with it at once, old ones still open with the old
key. `keys reencrypt` reseals the old ones, so the old key can then be taken out."""

from __future__ import annotations

import typer

from workers.cli.app import app, console, run_command
from workers.cli.audit_trail import audited
from workers.runtime.settings import Settings

keys_app = typer.Typer(help="Encryption keys of PHI at rest: reencrypt after a rotation.")
app.add_typer(keys_app, name="keys")


@keys_app.command("reencrypt")
def keys_reencrypt() -> None:
    """Reseal under the current key every patient registry row, encounter and raw ADT
    message sealed under an older one (batched, idempotent: run it again and it finds
    nothing). Every key the rows were sealed with must still be in the keyring."""
    from store import inbox, registry
    from workers.runtime.services import field_cipher_for

    async def main(settings: Settings) -> tuple[str, int, int]:
        cipher = field_cipher_for(settings)
        async with audited(
            settings, action="keys reencrypt", resource_type="keyring", resource_id=cipher.current
        ) as pool:
            return (
                cipher.current,
                await registry.reencrypt(pool, cipher),
                await inbox.reencrypt(pool, cipher),
            )

    current, patients, messages = run_command(main)
    console.print(
        f"resealed under key {current}: {patients} registry row(s), {messages} inbox message(s)"
    )
