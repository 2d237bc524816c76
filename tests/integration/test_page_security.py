"""The pages run only their own scripts (issue 18 item 14): the Content-Security-Policy names
this response's nonce instead of 'unsafe-inline' and no CDN, every script tag carries that
nonce, and no element has an inline event handler."""

from __future__ import annotations

import re
import uuid

from ingest import keys
from tests.helpers import a03, assert_eventually
from tests.integration.conftest import RunningStack


async def test_pages_carry_a_fresh_nonce_and_no_inline_script(stack: RunningStack) -> None:
    facility, visit = f"CSP{uuid.uuid4().hex[:6].upper()}", "V-CSP"
    assert "|AA|" in (await stack.post_adt(a03(facility=facility, visit=visit))).text
    secret = stack.services.settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, facility, visit))

    async def planned() -> None:
        state = await stack.http.get(f"/transitions/{tid}")
        assert state.status_code == 200 and state.json()["period_ends_at"]

    await assert_eventually(planned)
    nonces = set()
    for path in ("/", f"/ui/transitions/{tid}", f"/ui/transitions/{tid}/care-plan", "/dashboard"):
        page = await stack.http.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "https:" not in script_src, path
        nonce = re.search(r"'nonce-([^']+)'", script_src)
        assert nonce is not None, path
        nonces.add(nonce.group(1))
        tags = re.findall(r"<script\b[^>]*>", page.text)
        assert all(f'nonce="{nonce.group(1)}"' in tag for tag in tags), (path, tags)
        assert not re.search(r"\son[a-z]+=", page.text), path  # no onclick= and the like
    assert len(nonces) == 4  # one per response
