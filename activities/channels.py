"""Delivery transports for notifications: in-app worklist, e-mail (SMTP) and a signed webhook.

Messages carry ids, steps, levels, due times and a link: never patient data. A transport that
is not configured delivers nothing (the outbox row stays for the worklist). A refusal that
will not change (a 4xx answer, a recipient the SMTP server refuses, a permanent 5xx SMTP
reply) raises a non-retryable error; anything else (a 5xx answer, a timeout, a dropped
connection) raises and Temporal retries the activity within its bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import structlog
from temporalio.exceptions import ApplicationError

from schemas.site import Transport

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "X-Carebridge-Signature"
REFUSED = "DeliveryRefused"  # the ApplicationError type of a refusal that retrying cannot fix
TRANSIENT_HTTP = frozenset({408, 425, 429})  # 4xx answers that mean "later"


def refused(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=REFUSED, non_retryable=True)


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    payload: dict[str, Any]
    idempotency_key: str
    recipients: tuple[str, ...] = field(default=())


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChannelSettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "carebridge@localhost"
    webhook_url: str | None = None
    webhook_secret: str | None = None


class Channels:
    def __init__(self, settings: ChannelSettings) -> None:
        self._settings = settings

    async def deliver(self, transport: Transport, message: Message) -> bool:
        """True when the message left carebridge (or, for the worklist, is in place)."""
        if transport == Transport.WORKLIST:
            return True
        if transport == Transport.EMAIL:
            return await self._email(message)
        return await self._webhook(message)

    async def _email(self, message: Message) -> bool:
        host = self._settings.smtp_host
        if not host or not message.recipients:
            log.warning("notify.email_not_configured", key=message.idempotency_key)
            return False
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self._settings.smtp_sender
        mail["To"] = ", ".join(message.recipients)
        mail["Message-ID"] = f"<{message.idempotency_key.replace(':', '.')}@carebridge>"
        mail.set_content(message.text)

        def send() -> None:
            with smtplib.SMTP(host, self._settings.smtp_port, timeout=20) as smtp:
                smtp.send_message(mail)

        try:
            await asyncio.to_thread(send)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            if all(code >= 500 for code in codes):  # 5yz: permanent; 4yz: try again
                raise refused(f"SMTP refused the recipients ({codes})") from None
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:  # permanent (RFC 5321 5yz); 4yz is worth a retry
                raise refused(f"SMTP answered {exc.smtp_code}") from None
            raise
        return True

    async def _webhook(self, message: Message) -> bool:
        url = self._settings.webhook_url
        if not url:
            log.warning("notify.webhook_not_configured", key=message.idempotency_key)
            return False
        body = json.dumps(message.payload, sort_keys=True, default=str).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key}
        if self._settings.webhook_secret:
            headers[SIGNATURE_HEADER] = sign(self._settings.webhook_secret, body)
        async with httpx.AsyncClient(timeout=20) as client:
            response = await client.post(url, content=body, headers=headers)
        status = response.status_code
        if 400 <= status < 500 and status not in TRANSIENT_HTTP:
            raise refused(f"webhook answered {status}")
        response.raise_for_status()  # 5xx and the transient 4xx: retried by Temporal
        return True
