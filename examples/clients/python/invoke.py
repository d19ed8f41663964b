#!/usr/bin/env python3
"""Invokes a published Pipecat workflow with `requests`.

    pip install requests
    PIPECAT_URL=http://127.0.0.1:8080 PIPECAT_API_KEY=pc_live_... WORKFLOW_ID=... \
        python invoke.py "(1 + 2) * 3"

The input is the first argument (default "2 + 2"); pass --json to send it as a JSON value instead of text.
Exits 1 when the run finished with status "error", 2 when the request itself was refused.
"""

import json
import os
import sys

import requests

PIPECAT_URL = os.environ.get("PIPECAT_URL", "http://127.0.0.1:8080").rstrip("/")
PIPECAT_API_KEY = os.environ["PIPECAT_API_KEY"]
WORKFLOW_ID = os.environ["WORKFLOW_ID"]


def invoke(value):
    """POSTs {"input": value} and returns the decoded answer; raises on request-level errors."""
    response = requests.post(
        f"{PIPECAT_URL}/invoke/{WORKFLOW_ID}/invoke",
        headers={"X-API-Key": PIPECAT_API_KEY},
        json={"input": value},
        timeout=300,
    )
    if not response.ok:
        # Every request-level error has the same shape: {"error": {"code": "...", "message": "..."}}.
        try:
            error = response.json()["error"]
            detail = f'{error["code"]}: {error["message"]}'
        except (ValueError, KeyError, TypeError):
            detail = response.text
        if response.status_code == 429 and "Retry-After" in response.headers:
            detail += f' (retry after {response.headers["Retry-After"]} s)'
        raise RuntimeError(f"HTTP {response.status_code}: {detail}")
    return response.json()


def main():
    args = sys.argv[1:]
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    text = args[0] if args else "2 + 2"
    value = json.loads(text) if as_json else text

    try:
        run = invoke(value)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    print(f'run {run["run_id"]}: {run["status"]}')
    for call in run.get("tool_calls", []):
        print(f'  tool {call["tool"]}({json.dumps(call["input"])}) -> {call["result"]}')
    if run["status"] == "success":
        output = run["output"]
        print(output if isinstance(output, str) else json.dumps(output, indent=2))
        return 0
    print(f'error: {run.get("error")}', file=sys.stderr)
    return 1


# Streaming follow-up: the same POST with `Accept: text/event-stream` answers as Server-Sent Events,
# one JSON event per `data:` line (run_started, node_started, token, tool_call, tool_result,
# node_finished, run_finished). With requests:
#
# def invoke_stream(value):
#     with requests.post(
#         f"{PIPECAT_URL}/invoke/{WORKFLOW_ID}/invoke",
#         headers={"X-API-Key": PIPECAT_API_KEY, "Accept": "text/event-stream"},
#         json={"input": value},
#         stream=True,
#         timeout=300,
#     ) as response:
#         response.raise_for_status()
#         for line in response.iter_lines(decode_unicode=True):
#             if not line or not line.startswith("data:"):
#                 continue
#             event = json.loads(line[len("data:"):].strip())
#             if event["type"] == "token":
#                 print(event["text"], end="", flush=True)
#             elif event["type"] == "run_finished":
#                 print()
#                 return event

if __name__ == "__main__":
    sys.exit(main())
