#!/usr/bin/env bash
# Invokes a published workflow with curl.
#
#   PIPECAT_URL=http://127.0.0.1:8080 PIPECAT_API_KEY=pc_live_... WORKFLOW_ID=... \
#     ./curl.sh "(1 + 2) * 3"
#
# The input is the first argument (default: "2 + 2"), sent as a JSON string. Set STREAM=1 to receive
# Server-Sent Events (run_started, node_started, token, ..., run_finished) instead of one JSON answer.
set -euo pipefail

: "${PIPECAT_URL:=http://127.0.0.1:8080}"
: "${PIPECAT_API_KEY:?set PIPECAT_API_KEY to an API key (pipecat key create <account_id> --name ...)}"
: "${WORKFLOW_ID:?set WORKFLOW_ID to a published workflow id (pipecat workflow list)}"
input="${1:-2 + 2}"

# JSON-encode the input without needing jq: escape backslashes and quotes, keep it on one line.
escaped=${input//\\/\\\\}
escaped=${escaped//\"/\\\"}
escaped=${escaped//$'\n'/\\n}
body="{\"input\": \"${escaped}\"}"

accept="application/json"
if [[ "${STREAM:-0}" == "1" ]]; then
  accept="text/event-stream"
fi

# --fail-with-body: exit non-zero on 4xx/5xx but still print the {"error": {...}} body.
curl --silent --show-error --fail-with-body --no-buffer \
  -X POST "${PIPECAT_URL%/}/invoke/${WORKFLOW_ID}/invoke" \
  -H "X-API-Key: ${PIPECAT_API_KEY}" \
  -H "Content-Type: application/json" \
  -H "Accept: ${accept}" \
  --data "${body}"
echo
