"""The OpenSandbox SDK's quick start, with the real Python SDK, against a lifecycle server.

Usage: python sdk_quickstart.py DOMAIN API_KEY IMAGE [direct|server-proxy]

Creates a sandbox with `Sandbox.create` (endpoints of 44772 and 18080 resolved, execd
pinged), runs commands (streamed output, a failing exit code, a background command's
logs), moves files (1 MiB round trip, search, replace, chmod, rename, delete), lists a
directory, reads metrics, runs a custom health check, then kills the sandbox. Prints one
JSON object with what the SDK saw; the Rust end-to-end test checks it.
"""

import json
import os
import sys
import time
from datetime import timedelta

import httpx

from opensandbox import SandboxSync
from opensandbox.config.connection_sync import ConnectionConfigSync
from opensandbox.models.execd import RunCommandOpts
from opensandbox.models.execd_sync import ExecutionHandlersSync
from opensandbox.models.filesystem import (
    ContentReplaceEntry,
    DirectoryListEntry,
    MoveEntry,
    SearchEntry,
    SetPermissionEntry,
    WriteEntry,
)


def main() -> None:
    domain, api_key, image = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "direct"
    config = ConnectionConfigSync(
        domain=domain,
        api_key=api_key,
        request_timeout=timedelta(seconds=60),
        use_server_proxy=(mode == "server-proxy"),
    )
    out: dict = {"mode": mode}
    checks = {"count": 0}

    sandbox = SandboxSync.create(
        image,
        entrypoint=["sleep", "3600"],
        timeout=timedelta(minutes=10),
        ready_timeout=timedelta(seconds=60),
        metadata={"suite": "sdk-quickstart"},
        connection_config=config,
    )
    try:
        out["id"] = sandbox.id
        execd = sandbox.get_endpoint(44772)
        out["execd_endpoint"] = execd.endpoint
        out["execd_headers"] = sorted((execd.headers or {}).keys())
        egress = sandbox.get_endpoint(18080)
        out["egress_endpoint"] = egress.endpoint
        other = sandbox.get_endpoint(8081)
        out["other_endpoint"] = other.endpoint

        # Streamed output.
        streamed: list[str] = []
        handlers = ExecutionHandlersSync(on_stdout=lambda m: streamed.append(m.text))
        ex = sandbox.commands.run("echo hi", handlers=handlers)
        out["echo_streamed"] = streamed
        out["echo_stdout"] = [m.text for m in ex.logs.stdout]
        out["echo_exit_code"] = ex.exit_code
        out["echo_error"] = None if ex.error is None else ex.error.value

        # A failing command's exit code.
        ex = sandbox.commands.run("echo oops >&2; exit 7")
        out["fail_exit_code"] = ex.exit_code
        out["fail_stderr"] = [m.text for m in ex.logs.stderr]

        # A background command and its logs.
        ex = sandbox.commands.run(
            "for i in 1 2 3; do echo line$i; sleep 0.2; done",
            opts=RunCommandOpts(background=True),
        )
        bg_id = ex.id
        content = ""
        deadline = time.time() + 20
        while time.time() < deadline:
            logs = sandbox.commands.get_background_command_logs(bg_id)
            content = logs.content
            status = sandbox.commands.get_command_status(bg_id)
            if status.running is False:
                logs = sandbox.commands.get_background_command_logs(bg_id)
                content = logs.content
                out["bg_exit_code"] = status.exit_code
                break
            time.sleep(0.3)
        out["bg_logs"] = content
        tail = sandbox.commands.get_background_command_logs(bg_id, cursor=logs.cursor)
        out["bg_tail_after_cursor"] = tail.content

        # Files: 1 MiB round trip, search, replace, chmod, rename, delete.
        blob = os.urandom(1024 * 1024)
        sandbox.files.create_directories([WriteEntry(path="/tmp/qs", mode=755)])
        sandbox.files.write_file("/tmp/qs/blob.bin", blob)
        back = sandbox.files.read_bytes("/tmp/qs/blob.bin")
        out["blob_round_trip"] = back == blob
        out["blob_size"] = len(back)
        sandbox.files.write_file("/tmp/qs/note.txt", "hello gatehouse\n")
        found = sandbox.files.search(SearchEntry(path="/tmp/qs", pattern="*.txt"))
        out["search"] = sorted(e.path for e in found)
        sandbox.files.replace_contents(
            [ContentReplaceEntry(path="/tmp/qs/note.txt", old_content="gatehouse", new_content="sdk")]
        )
        out["replaced"] = sandbox.files.read_file("/tmp/qs/note.txt")
        sandbox.files.set_permissions([SetPermissionEntry(path="/tmp/qs/note.txt", mode=600)])
        info = sandbox.files.get_file_info(["/tmp/qs/note.txt"])
        out["mode_after_chmod"] = info["/tmp/qs/note.txt"].mode
        sandbox.files.move_files([MoveEntry(src="/tmp/qs/note.txt", dest="/tmp/qs/renamed.txt")])
        listing = sandbox.files.list_directory(DirectoryListEntry(path="/tmp/qs", depth=1))
        out["listing"] = sorted(os.path.basename(e.path) for e in listing)
        sandbox.files.delete_files(["/tmp/qs/renamed.txt"])
        listing = sandbox.files.list_directory(DirectoryListEntry(path="/tmp/qs", depth=1))
        out["listing_after_delete"] = sorted(os.path.basename(e.path) for e in listing)

        # Metrics.
        m = sandbox.get_metrics()
        out["metrics"] = {
            "cpu_count": m.cpu_count,
            "memory_total_in_mib": m.memory_total_in_mib,
            "memory_used_in_mib": m.memory_used_in_mib,
        }

        # The egress API's read route (port 18080).
        try:
            policy = sandbox.get_egress_policy()
            out["egress_policy"] = str(policy)[:200]
        except Exception as exc:  # noqa: BLE001
            out["egress_policy_error"] = type(exc).__name__ + ": " + str(exc)

        out["healthy"] = sandbox.is_healthy()

        # Without the token execd refuses (direct mode only: the endpoint is reachable).
        if mode == "direct":
            r = httpx.get(f"http://{execd.endpoint}/ping", timeout=10)
            out["ping_without_token"] = r.status_code
    finally:
        sandbox.kill()
        sandbox.close()

    # A second sandbox with a custom health check (the SDK polls it until it is true).
    def custom(sbx: SandboxSync) -> bool:
        checks["count"] += 1
        ex = sbx.commands.run("test -e /tmp")
        return ex.exit_code == 0 or ex.error is None

    sandbox = SandboxSync.create(
        image,
        entrypoint=["sleep", "3600"],
        timeout=timedelta(minutes=10),
        ready_timeout=timedelta(seconds=60),
        health_check=custom,
        connection_config=config,
    )
    try:
        out["custom_health_checks"] = checks["count"]
        out["custom_healthy"] = sandbox.is_healthy()
    finally:
        sandbox.kill()
        sandbox.close()
    out["killed_ids"] = [out["id"], sandbox.id]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
