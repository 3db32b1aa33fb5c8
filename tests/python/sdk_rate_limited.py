"""Drive a rate-limited gateway with the real OpenSandbox Python SDK (SandboxManager).

Usage: python sdk_rate_limited.py DOMAIN API_KEY CALLS

Lists sandboxes CALLS times in a row with the SDK's default retry policy, recording every
retry the SDK makes (its `on_retry` hook), and prints one JSON object: how many calls
succeeded and the status and backoff of each retry.
"""

import asyncio
import json
import sys
from datetime import timedelta

from opensandbox import SandboxManager
from opensandbox.config import ConnectionConfig
from opensandbox.models.sandboxes import SandboxFilter
from opensandbox.transport import RetryPolicy


async def main() -> None:
    domain, api_key, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    retries = []

    def on_retry(event) -> None:
        retries.append(
            {"status": event.status_code, "backoff_s": event.backoff.total_seconds()}
        )

    config = ConnectionConfig(
        domain=domain,
        api_key=api_key,
        request_timeout=timedelta(seconds=60),
        retry_policy=RetryPolicy(on_retry=on_retry),
    )
    ok = 0
    async with await SandboxManager.create(connection_config=config) as manager:
        for _ in range(calls):
            await manager.list_sandbox_infos(SandboxFilter(page_size=10))
            ok += 1
    print(json.dumps({"ok": ok, "retries": retries}))


asyncio.run(main())
