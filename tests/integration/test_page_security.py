"""The pages run only their own scripts (issue 18 item 14): the Content-Security-Policy names
this response's nonce instead of 'unsafe-inline' and no CDN, every script tag carries that
nonce, and no element has an inline event handler."""

from __future__ import annotations

import re
import uuid

from tests.integration.conftest import RunningStack, discharged_and_planned


async def test_pages_carry_a_fresh_nonce_and_no_inline_script(stack: RunningStack) -> None:
    facility = f"CSP{uuid.uuid4().hex[:6].upper()}"
    tid = await discharged_and_planned(stack.http, stack.services.settings, facility)
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
