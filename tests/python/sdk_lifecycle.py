"""Drive a lifecycle server with the real OpenSandbox Python SDK: Sandbox.create (which
resolves the execd and egress endpoints and pings execd), then SandboxManager list (state +
metadata filter), get, endpoint and kill.

Usage: python sdk_lifecycle.py DOMAIN API_KEY IMAGE SUITE_TOKEN

Prints one JSON object with what the SDK saw; the Rust end-to-end test checks it.
"""

import asyncio
import json
import sys
from datetime import timedelta

from opensandbox import Sandbox, SandboxManager
from opensandbox.config import ConnectionConfig
from opensandbox.models.sandboxes import SandboxFilter


async def main() -> None:
    domain, api_key, image, token = sys.argv[1:5]
    config = ConnectionConfig(domain=domain, api_key=api_key, request_timeout=timedelta(seconds=60))
    out = {}
    sandbox = await Sandbox.create(
        image,
        entrypoint=["/bin/serve"],
        metadata={"suite": token},
        resource={"cpu": "250m", "memory": "64Mi"},
        timeout=timedelta(minutes=10),
        connection_config=config,
    )
    out["id"] = sandbox.id
    endpoint = await sandbox.get_endpoint(8080)
    out["endpoint"] = endpoint.endpoint
    async with await SandboxManager.create(connection_config=config) as manager:
        page = await manager.list_sandbox_infos(
            SandboxFilter(states=["Running"], metadata={"suite": token}, page_size=10)
        )
        out["listed_ids"] = [s.id for s in page.sandbox_infos]
        info = await manager.get_sandbox_info(sandbox.id)
        out["state"] = str(info.status.state)
        out["metadata"] = dict(info.metadata or {})
        await manager.kill_sandbox(sandbox.id)
        try:
            await manager.get_sandbox_info(sandbox.id)
            out["after_kill"] = "still there"
        except Exception as exc:  # the SDK raises its own exception type on 404
            out["after_kill"] = type(exc).__name__ + ": " + str(exc)
    await sandbox.close()
    print(json.dumps(out))


asyncio.run(main())
