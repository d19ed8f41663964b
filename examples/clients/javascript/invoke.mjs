// Invokes a published Pipecat workflow with fetch (Node 20+, no dependencies).
//
//   PIPECAT_URL=http://127.0.0.1:8080 PIPECAT_API_KEY=pc_live_... WORKFLOW_ID=... \
//     node invoke.mjs "(1 + 2) * 3"
//
// The input is the first argument (default "2 + 2"); add --stream to print Server-Sent Events as they
// arrive (token deltas inline, then the final answer).

const PIPECAT_URL = (process.env.PIPECAT_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
const { PIPECAT_API_KEY, WORKFLOW_ID } = process.env;
if (!PIPECAT_API_KEY || !WORKFLOW_ID) {
  console.error("set PIPECAT_API_KEY and WORKFLOW_ID");
  process.exit(2);
}

const args = process.argv.slice(2);
const stream = args.includes("--stream");
const input = args.filter((a) => a !== "--stream")[0] ?? "2 + 2";

const response = await fetch(`${PIPECAT_URL}/invoke/${encodeURIComponent(WORKFLOW_ID)}/invoke`, {
  method: "POST",
  headers: {
    "X-API-Key": PIPECAT_API_KEY,
    "Content-Type": "application/json",
    Accept: stream ? "text/event-stream" : "application/json",
  },
  body: JSON.stringify({ input }),
});

if (!response.ok) {
  // Request-level errors: {"error": {"code": "...", "message": "..."}}
  const body = await response.json().catch(() => null);
  const error = body?.error;
  console.error(`error: HTTP ${response.status}: ${error ? `${error.code}: ${error.message}` : "no error body"}`);
  process.exit(2);
}

let run;
if (stream) {
  run = await readEvents(response);
} else {
  run = await response.json();
}
console.log(JSON.stringify(run, null, 2));
process.exit(run?.status === "success" ? 0 : 1);

/** Reads `data: {...}` lines of an SSE answer, prints token deltas, returns the run_finished event. */
async function readEvents(response) {
  const decoder = new TextDecoder();
  let buffer = "";
  let finished = null;
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trimEnd();
      buffer = buffer.slice(newline + 1);
      if (!line.startsWith("data:")) continue;
      const event = JSON.parse(line.slice(5).trim());
      if (event.type === "token") process.stdout.write(event.text);
      if (event.type === "run_finished") finished = event;
    }
  }
  if (finished) process.stdout.write("\n");
  return finished;
}
