#!/usr/bin/env bash
# Pipecat vs Flowise, side by side: the same zero-latency fake provider, the equivalent flow (one LLM
# node with one calculator tool: model -> tool -> model), the same load generator. See
# docs/peer-comparison.md for what is and is not equivalent.
#
#   bench/peer/run.sh                   # everything, from scratch
#   DURATION=15s CONCURRENCY="1 8" bench/peer/run.sh
#   PIPECAT_BIN=/path/to/pipecat bench/peer/run.sh
#   SKIP_FLOWISE=1 / SKIP_PIPECAT=1     # one side only (the fake's floor is always measured)
#
# It installs the pinned Flowise into bench/peer/flowise/node_modules (once), builds the fake provider
# (and Pipecat when PIPECAT_BIN does not exist), then for each server alone: starts a fresh fake and a
# fresh server on a temporary data directory, creates the flow through the server's own REST API,
# checks one run really went model -> tool -> model (2 provider calls, tool result 98), warms up and
# runs wrk at each concurrency. Servers run one at a time so they never share the CPU. Results go to
# bench/peer/work/<timestamp>/ (results.jsonl, wrk outputs, server logs); the table is printed last.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-12s}
WARMUP=${WARMUP:-5s}
CONCURRENCY=${CONCURRENCY:-"1 8 32"}
PIPECAT_BIN=${PIPECAT_BIN:-$ROOT/target/release/pipecat}
FAKE_BIN=${FAKE_BIN:-$ROOT/target/release/pipecat-fake-llm}
FLOWISE_DIR=$HERE/flowise
WORK=${WORK:-$HERE/work/$(date -u +%Y%m%dT%H%M%SZ)}
RESULTS=$WORK/results.jsonl

# One question, one expression. Pipecat's calculator takes {"expression"}, Flowise's (LangChain's
# Calculator) {"input"}; each server gets its own fake instance that answers with its tool's arguments.
QUESTION='What is 2 * (3 + 4) ^ 2?'
EXPRESSION='2 * (3 + 4) ^ 2'
ANSWER='The answer is 98.'

log() { printf '[run.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in wrk curl python3 cargo node npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed (wrk: apt-get install -y wrk)"
done
mkdir -p "$WORK"
: > "$RESULTS"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Stops one process we started and waits for it (SIGTERM, then SIGKILL after 30 s).
stop() {
  local pid=$1 i p rest=()
  for p in "${PIDS[@]:-}"; do [ "$p" = "$pid" ] || rest+=("$p"); done
  PIDS=("${rest[@]:-}")
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_line FILE PREFIX SECONDS [PID]: prints the rest of the first line starting with PREFIX;
# fails when the time is up or the process PID has exited.
wait_for_line() {
  local file=$1 prefix=$2 secs=$3 pid=${4:-} deadline=$((SECONDS + $3)) line
  while :; do
    line=$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)
    if [ -n "$line" ]; then
      printf '%s\n' "${line#"$prefix"}"
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      die "the process writing $file exited: $(tail -5 "$file")"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "no line starting with '$prefix' in $file after ${secs}s: $(tail -5 "$file")"
    sleep 0.2
  done
}

# --- build / install ---------------------------------------------------------------------------

log "building the fake provider (release)"
(cd "$ROOT" && cargo build --release -q -p pipecat-fake-llm --bin pipecat-fake-llm)
if [ -z "${SKIP_PIPECAT:-}" ] && [ ! -x "$PIPECAT_BIN" ]; then
  log "building pipecat (release): $PIPECAT_BIN not found"
  (cd "$ROOT" && cargo build --release -q -p pipecat --bin pipecat)
fi

FLOWISE_VERSION=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dependencies"]["flowise"])' "$FLOWISE_DIR/package.json")
installed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
  "$FLOWISE_DIR/node_modules/flowise/package.json" 2>/dev/null || true)
if [ -z "${SKIP_FLOWISE:-}" ] && { [ "$installed" != "$FLOWISE_VERSION" ] || \
    ! ls "$FLOWISE_DIR"/node_modules/sqlite3/build/Release/*.node >/dev/null 2>&1; }; then
  log "installing flowise@$FLOWISE_VERSION into $FLOWISE_DIR (takes 5-10 min)"
  # --ignore-scripts: install scripts of unused optional integrations fetch from GitHub or download
  # browsers (faiss-node clones faiss, puppeteer/playwright fetch Chrome) and fail offline; this flow
  # needs only one native module, sqlite3, rebuilt below (from source when no prebuilt is reachable).
  if [ -f "$FLOWISE_DIR/package-lock.json" ]; then
    (cd "$FLOWISE_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  else
    (cd "$FLOWISE_DIR" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
  fi
  nodedir=()
  [ -f /usr/include/node/node.h ] && nodedir=(env npm_config_nodedir=/usr)
  (cd "$FLOWISE_DIR" && "${nodedir[@]}" npm rebuild sqlite3 --loglevel=error)
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "pipecat: $PIPECAT_BIN"
  echo "flowise: $FLOWISE_VERSION, node $(node -v), npm $(npm -v)"
  echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "duration: $DURATION per point, warm-up $WARMUP, concurrency $CONCURRENCY"
} > "$WORK/env.txt"
cat "$WORK/env.txt" >&2

# --- fake provider -----------------------------------------------------------------------------

FAKE_URL=
FAKE_PID=
start_fake() { # start_fake ARGUMENTS_JSON NAME
  local out=$WORK/fake-$2.log
  "$FAKE_BIN" --tool-round-arguments "$1" --text "$ANSWER" > "$out" 2>&1 &
  FAKE_PID=$!
  PIDS+=("$FAKE_PID")
  FAKE_URL=$(wait_for_line "$out" 'listening on ' 30 "$FAKE_PID")
}
fake_count() {
  curl -sf "$FAKE_URL/fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}

# bench SERVER SCENARIO CONCURRENCY URL [DURATION]; the caller exports WRK_METHOD/BODY/API_KEY/EXPECT.
bench() {
  local server=$1 scenario=$2 c=$3 url=$4 duration=${5:-$DURATION}
  local t=$((c < 2 ? c : 2)) before after out
  out=$WORK/wrk-$server-$scenario-c$c.txt
  before=$(fake_count)
  WRK_LABEL="$server $scenario" wrk -t"$t" -c"$c" -d"$duration" --timeout 30s -s "$HERE/wrk.lua" "$url" \
    > "$out" 2>&1 || die "wrk failed: $(tail -5 "$out")"
  after=$(fake_count)
  [ "$duration" = "$DURATION" ] || return 0 # warm-up: not recorded
  python3 - "$out" "$server" "$scenario" "$c" "$before" "$after" >> "$RESULTS" <<'PY'
import json, sys
out, server, scenario, c, before, after = sys.argv[1:]
line = next(l for l in open(out) if l.startswith("RESULT "))
r = json.loads(line[len("RESULT "):])
# wrk's percentiles are "corrected" for coordinated omission (after the run it adds synthetic samples
# for every slow answer), so its mean is not the mean of the answers; in a closed loop of c
# connections the true mean latency is c / throughput (Little's law).
r.update(server=server, scenario=scenario, concurrency=int(c),
         mean_ms=int(c) / r["rps"] * 1000 if r["rps"] else None, wrk_mean_ms=r["mean_ms"],
         provider_calls_per_request=(int(after) - int(before)) / max(r["requests"], 1),
         load1=float(open("/proc/loadavg").read().split()[0]))
print(json.dumps(r))
PY
  tail -1 "$RESULTS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("  %-8s %-22s c=%-3d %8.1f req/s  mean %8.3f ms  p50 %8.3f ms  p99 %8.3f ms  non2xx %d  errors %d  bad %d  calls/req %.2f  load %.2f" % (r["server"], r["scenario"], r["concurrency"], r["rps"], r["mean_ms"], r["p50_ms"], r["p99_ms"], r["non2xx"], r["socket_errors"]+r["timeouts"], r["bad_answers"], r["provider_calls_per_request"], r["load1"]))' >&2
}

# The floor: the fake alone, answering the first request of a run (the tool call).
log "fake provider alone"
start_fake "{\"expression\": \"$EXPRESSION\"}" floor
export WRK_METHOD=POST WRK_API_KEY= WRK_EXPECT='"tool_calls"'
WRK_BODY=$(python3 -c 'import json,sys; print(json.dumps({"model": "gpt-4o-mini", "temperature": 0, "messages": [
  {"role": "system", "content": "You are a helpful assistant. Use the calculator for arithmetic."},
  {"role": "user", "content": sys.argv[1]}],
  "tools": [{"type": "function", "function": {"name": "calculator__calculate", "description": "Evaluates an arithmetic expression",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}}}]}))' "$QUESTION")
export WRK_BODY
bench fake warmup 8 "$FAKE_URL/v1/chat/completions" "$WARMUP"
for c in $CONCURRENCY; do bench fake chat-completion "$c" "$FAKE_URL/v1/chat/completions"; done
stop "$FAKE_PID"

# --- Pipecat ----------------------------------------------------------------------------------

if [ -z "${SKIP_PIPECAT:-}" ]; then
  log "pipecat: $("$PIPECAT_BIN" --version 2>/dev/null || echo "$PIPECAT_BIN")"
  start_fake "{\"expression\": \"$EXPRESSION\"}" pipecat
  ADMIN_KEY=peer-bench-admin-key-0123456789
  PLOG=$WORK/pipecat.log
  PIPECAT_ADMIN_KEY=$ADMIN_KEY OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=x \
    "$PIPECAT_BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/pipecat-data" --config "$HERE/pipecat.toml" \
    --with-examples > "$PLOG" 2>&1 &
  PC_PID=$!
  PIDS+=("$PC_PID")
  PC_URL=$(wait_for_line "$PLOG" 'pipecat listening on ' 900 "$PC_PID")
  # --with-examples made a `demo` account (plan enterprise: no monthly limit), its key, and uploaded
  # the shipped plugins (calculator among them) into it.
  PC_KEY=$(wait_for_line "$PLOG" 'demo API key (shown once): ' 1 "$PC_PID")
  WF_ID=$(curl -sf "$PC_URL/v1/workflows" -H "X-API-Key: $PC_KEY" -H 'Content-Type: application/json' \
    --data-binary "@$HERE/pipecat-workflow.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -sf -X POST "$PC_URL/v1/workflows/$WF_ID/publish" -H "X-API-Key: $PC_KEY" > /dev/null
  BODY=$(python3 -c 'import json,sys; print(json.dumps({"input": sys.argv[1]}))' "$QUESTION")
  before=$(fake_count)
  answer=$(curl -sf "$PC_URL/invoke/$WF_ID/invoke" -H "X-API-Key: $PC_KEY" -H 'Content-Type: application/json' -d "$BODY")
  calls=$(( $(fake_count) - before ))
  python3 - "$answer" "$calls" "$ANSWER" <<'PY' || die "pipecat: the check run failed: $answer"
import json, sys
a, calls, text = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
assert a["status"] == "success" and a["output"] == text, a
assert [t["tool"] for t in a["tool_calls"]] == ["calculate"], a
assert json.loads(a["tool_calls"][0]["result"])["result"] == 98, a
assert calls == 2, f"{calls} provider calls"
PY
  log "pipecat check run ok: model -> calculator (98) -> model, 2 provider calls; workflow $WF_ID"
  echo "$answer" > "$WORK/pipecat-check-run.json"

  export WRK_METHOD=GET WRK_BODY= WRK_API_KEY= WRK_EXPECT=
  for c in $CONCURRENCY; do bench pipecat healthz "$c" "$PC_URL/healthz"; done
  export WRK_METHOD=POST WRK_BODY=$BODY WRK_API_KEY=$PC_KEY WRK_EXPECT='"result":"{\"result\":98}"'
  bench pipecat warmup 8 "$PC_URL/invoke/$WF_ID/invoke" "$WARMUP"
  for c in $CONCURRENCY; do bench pipecat invoke-llm-tool "$c" "$PC_URL/invoke/$WF_ID/invoke"; done
  stop "$PC_PID"
  stop "$FAKE_PID"
fi

# --- Flowise ----------------------------------------------------------------------------------

if [ -z "${SKIP_FLOWISE:-}" ]; then
  log "flowise $FLOWISE_VERSION"
  start_fake "{\"input\": \"$EXPRESSION\"}" flowise
  FW_PORT=$(free_port)
  FW_URL=http://127.0.0.1:$FW_PORT
  FW_DATA=$WORK/flowise-data
  mkdir -p "$FW_DATA"
  (
    cd "$FLOWISE_DIR"
    export PORT=$FW_PORT DATABASE_PATH=$FW_DATA SECRETKEY_PATH=$FW_DATA LOG_PATH=$FW_DATA/logs \
      BLOB_STORAGE_PATH=$FW_DATA/storage DISABLE_FLOWISE_TELEMETRY=true
    exec ./node_modules/.bin/flowise start
  ) > "$WORK/flowise.log" 2>&1 &
  FW_PID=$!
  PIDS+=("$FW_PID")
  deadline=$((SECONDS + 600))
  until curl -sf "$FW_URL/api/v1/ping" > /dev/null 2>&1; do
    kill -0 "$FW_PID" 2>/dev/null || die "flowise exited: $(tail -20 "$WORK/flowise.log")"
    [ "$SECONDS" -lt "$deadline" ] || die "flowise did not come up in 600 s"
    sleep 1
  done
  FLOW_ID=$(python3 "$HERE/flowise_flow.py" "$FW_URL" "$FAKE_URL/v1")
  BODY=$(python3 -c 'import json,sys; print(json.dumps({"question": sys.argv[1]}))' "$QUESTION")
  before=$(fake_count)
  answer=$(curl -sf "$FW_URL/api/v1/prediction/$FLOW_ID" -H 'Content-Type: application/json' -d "$BODY")
  calls=$(( $(fake_count) - before ))
  python3 - "$answer" "$calls" "$ANSWER" <<'PY' || die "flowise: the check run failed: $answer"
import json, sys
a, calls, text = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
assert a["text"] == text, a
assert [t["tool"] for t in a["usedTools"]] == ["calculator"], a
assert a["usedTools"][0]["toolOutput"] == "98", a
assert calls == 2, f"{calls} provider calls"
PY
  log "flowise check run ok: model -> calculator (98) -> model, 2 provider calls; chatflow $FLOW_ID"
  echo "$answer" > "$WORK/flowise-check-run.json"

  export WRK_METHOD=GET WRK_BODY= WRK_API_KEY= WRK_EXPECT=
  for c in $CONCURRENCY; do bench flowise ping "$c" "$FW_URL/api/v1/ping"; done
  export WRK_METHOD=POST WRK_BODY=$BODY WRK_API_KEY= WRK_EXPECT='"toolOutput":"98"'
  bench flowise warmup 8 "$FW_URL/api/v1/prediction/$FLOW_ID" "$WARMUP"
  for c in $CONCURRENCY; do bench flowise prediction-llm-tool "$c" "$FW_URL/api/v1/prediction/$FLOW_ID"; done
  stop "$FW_PID"
  stop "$FAKE_PID"
fi

python3 "$HERE/report.py" "$RESULTS" "$WORK/env.txt" | tee "$WORK/table.md"
log "results in $WORK"
