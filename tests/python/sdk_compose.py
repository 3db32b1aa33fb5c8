"""The real OpenSandbox Python SDK through the gateway of the docker-compose stack.

Usage: python sdk_compose.py DOMAIN API_KEY IMAGE

Creates a sandbox (`Sandbox.create`: endpoints resolved through the gateway's server
proxy, execd pinged), runs a command, kills the sandbox and asks for it again. Prints
one JSON object with what the SDK saw; tests/e2e/compose_stack.rs checks it.
"""

import json
import sys
from datetime import timedelta

from opensandbox import SandboxManagerSync, SandboxSync
from opensandbox.config.connection_sync import ConnectionConfigSync


def main() -> None:
    domain, api_key, image = sys.argv[1:4]
    config = ConnectionConfigSync(
        domain=domain,
        api_key=api_key,
        request_timeout=timedelta(seconds=60),
        use_server_proxy=True,
    )
    out: dict = {}
    sandbox = SandboxSync.create(
        image,
        entrypoint=["sleep", "3600"],
        timeout=timedelta(minutes=10),
        ready_timeout=timedelta(seconds=60),
        metadata={"suite": "compose"},
        connection_config=config,
    )
    try:
        out["id"] = sandbox.id
        out["execd_endpoint"] = sandbox.get_endpoint(44772).endpoint
        ex = sandbox.commands.run("echo hello from compose; id -u")
        out["stdout"] = [m.text for m in ex.logs.stdout]
        out["exit_code"] = ex.exit_code
    finally:
        sandbox.kill()
    manager = SandboxManagerSync.create(connection_config=config)
    try:
        manager.get_sandbox_info(out["id"])
        out["after_kill"] = "still there"
    except Exception as e:  # the SDK raises its own error type for a 404
        out["after_kill"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
