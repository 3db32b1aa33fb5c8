"""Drive a lifecycle server with the real OpenSandbox Python SDK (SandboxManager).

Usage: python sdk_manager.py DOMAIN API_KEY SANDBOX_ID SUITE_TOKEN

Lists (state + metadata filter), gets, renews and kills one sandbox, printing one JSON
object with what the SDK saw. The Rust end-to-end test checks it against the server.
"""

import asyncio
import json
import sys
from datetime import timedelta

from opensandbox import SandboxManager
from opensandbox.config import ConnectionConfig
from opensandbox.models.sandboxes import SandboxFilter


async def main() -> None:
    domain, api_key, sandbox_id, token = sys.argv[1:5]
    config = ConnectionConfig(domain=domain, api_key=api_key, request_timeout=timedelta(seconds=60))
    out = {}
    async with await SandboxManager.create(connection_config=config) as manager:
        page = await manager.list_sandbox_infos(
            SandboxFilter(states=["Running"], metadata={"suite": token}, page_size=10)
        )
        out["listed_ids"] = [s.id for s in page.sandbox_infos]
        out["total"] = page.pagination.total_items
        info = await manager.get_sandbox_info(sandbox_id)
        out["state"] = str(info.status.state)
        out["metadata"] = dict(info.metadata or {})
        out["image"] = getattr(info.image, "image", None) or getattr(info.image, "uri", None) or str(info.image)
        renewed = await manager.renew_sandbox(sandbox_id, timedelta(hours=2))
        out["renewed_expires_at"] = renewed.expires_at.isoformat()
        await manager.kill_sandbox(sandbox_id)
        try:
            await manager.get_sandbox_info(sandbox_id)
            out["after_kill"] = "still there"
        except Exception as exc:  # the SDK raises its own exception type on 404
            out["after_kill"] = type(exc).__name__ + ": " + str(exc)
    print(json.dumps(out))


asyncio.run(main())
