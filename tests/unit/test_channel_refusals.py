"""A refusal that retrying cannot change is final (non-retryable); a passing failure is not.
Against a real local SMTP server that refuses some recipients and a webhook that answers."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.exceptions import ApplicationError

from activities.channels import REFUSED, Channels, ChannelSettings, Message
from schemas.site import Transport
from tests.helpers import find_free_port

MESSAGE = Message(subject="s", text="t", payload={}, idempotency_key="k:1", recipients=("x@y",))


class Refusing:
    def __init__(self, code: str) -> None:
        self.code = code

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return self.code


@pytest.mark.parametrize(("reply", "final"), [("550 no such user", True), ("451 try later", False)])
async def test_smtp_refusals_are_final_and_temporary_ones_retry(reply: str, final: bool) -> None:
    smtp = Controller(Refusing(reply), hostname="127.0.0.1", port=find_free_port())
    smtp.start()
    try:
        channels = Channels(ChannelSettings(smtp_host="127.0.0.1", smtp_port=smtp.port))
        with pytest.raises(Exception) as raised:
            await channels.deliver(Transport.EMAIL, MESSAGE)
    finally:
        smtp.stop()
    is_refusal = isinstance(raised.value, ApplicationError) and raised.value.non_retryable
    assert is_refusal == final
    if final:
        assert raised.value.type == REFUSED  # type: ignore[attr-defined]
