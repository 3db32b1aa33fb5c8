"""What one API key can see, through the real OpenSandbox Python SDK (SandboxManager).

Usage: python sdk_scope.py DOMAIN API_KEY OWN_SANDBOX_ID OTHER_SANDBOX_ID

Lists every sandbox the key may see and reads two of them, printing one JSON object:
`listed_ids` (or `list_error`), `own` (the state, or the error) and `other` (likewise).
The browser test runs it with a personal key created in the console, before and after
the key is revoked.
"""

import asyncio
import json
import sys
from datetime import timedelta

from opensandbox import SandboxManager
from opensandbox.config import ConnectionConfig
from opensandbox.models.sandboxes import SandboxFilter


def describe(exc: Exception) -> str:
    return type(exc).__name__ + ": " + str(exc)


async def main() -> None:
    domain, api_key, own_id, other_id = sys.argv[1:5]
    config = ConnectionConfig(domain=domain, api_key=api_key, request_timeout=timedelta(seconds=60))
    out = {}
    async with await SandboxManager.create(connection_config=config) as manager:
        try:
            page = await manager.list_sandbox_infos(SandboxFilter(page_size=100))
            out["listed_ids"] = [s.id for s in page.sandbox_infos]
        except Exception as exc:  # the SDK raises its own exception types
            out["list_error"] = describe(exc)
        for name, sandbox_id in (("own", own_id), ("other", other_id)):
            try:
                info = await manager.get_sandbox_info(sandbox_id)
                out[name] = str(info.status.state)
            except Exception as exc:
                out[name + "_error"] = describe(exc)
    print(json.dumps(out))


asyncio.run(main())
