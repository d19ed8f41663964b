// Browser tests of /dashboard: the real `pipecat` binary (with its seeded examples), real runs through
// the REST API, and headless Chromium driven by playwright-core. Every check compares what the page
// shows with what the API answered, so a dashboard that shows wrong data fails.
//
//   PIPECAT_BIN   the server binary (default: ../../target/debug/pipecat)
//   CHROMIUM      the browser (default: /usr/bin/chromium)
//   ARTIFACTS     where screenshots go (default: ../../target/browser-artifacts)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const BIN = process.env.PIPECAT_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(root, "target"), "debug", "pipecat");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.ARTIFACTS || path.join(root, "target", "browser-artifacts");
const ADMIN = "browser-test-admin-key";

let server, dataDir, base, demoKey, calculatorId, browser;

function startServer() {
  dataDir = mkdtempSync(path.join(tmpdir(), "pipecat-browser-"));
  const child = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--with-examples"], {
    env: { ...process.env, PIPECAT_ADMIN_KEY: ADMIN, RUST_LOG: process.env.RUST_LOG || "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("the server did not start within 120 s:\n" + out)), 120_000);
    child.on("exit", (code) => reject(new Error(`the server exited with ${code}:\n${out}`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const key = out.match(/demo API key \(shown once\): (\S+)/);
      const calc = out.match(/example workflow calculator: (\S+)/);
      const url = out.match(/pipecat listening on (http:\/\/\S+)/);
      if (key && calc && url) {
        clearTimeout(timer);
        resolve({ child, key: key[1], calculator: calc[1], url: url[1] });
      }
    });
  });
}

async function api(method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { "X-API-Key": demoKey, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.equal(res.status, 200, `${method} ${p}: ${JSON.stringify(json)}`);
  return json;
}

// The dashboard's own formatting of milliseconds (app.js `fmtMs`).
function fmtMs(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return Math.round(v) + " ms";
  return (Math.round(v * 10) / 10) + " ms";
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}

function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push("console: " + m.text() + " " + JSON.stringify(m.location())); });
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`); });
  return errors;
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const started = await startServer();
  server = started.child;
  base = started.url;
  demoKey = started.key;
  calculatorId = started.calculator;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    server.removeAllListeners("exit");
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("the dashboard shows runs, stats, a failed run's error and the waterfall as the API has them", async () => {
  // Real runs: four good ones and one whose tool call fails.
  const inputs = ["6 * 7", "2 + 2", "1 / (", "10 - 3", "2 ^ 10"];
  const answers = [];
  for (const input of inputs) answers.push(await api("POST", `/invoke/${calculatorId}/invoke`, { input }));
  assert.deepEqual(answers.map((a) => a.status), ["success", "success", "error", "success", "success"]);
  const failedId = answers[2].run_id;
  const truth = await api("GET", `/v1/workflows/${calculatorId}/runs`);
  const failed = await api("GET", `/v1/runs/${failedId}`);
  const good = await api("GET", `/v1/runs/${answers[0].run_id}`);
  assert.equal(failed.error.code, "tool_failed");

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);

  // Sign in with the keyboard only: the heading has focus, Tab reaches the key field, Enter submits.
  await page.goto(base + "/dashboard");
  await page.waitForSelector("#api-key");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "api-key");
  await page.keyboard.type(demoKey);
  await shot(page, "01-sign-in.png");
  await page.keyboard.press("Enter");
  await page.waitForSelector("[data-testid=workflows]");
  const names = await page.$$eval("[data-testid=workflows] tbody tr td:first-child", (tds) => tds.map((t) => t.textContent));
  assert.ok(names.includes("calculator"), `workflows listed: ${names}`);
  await shot(page, "02-workflows.png");

  // A wrong key is refused with a message.
  const other = await browser.newPage();
  await other.goto(base + "/dashboard");
  await other.fill("#api-key", "pc_live_not_a_real_key");
  await other.click("button[type=submit]");
  await other.waitForSelector("[data-testid=signin-error] .error-box");
  await other.close();

  // The workflow page: stats cards, charts, graph and the runs table.
  await page.getByRole("link", { name: "calculator", exact: true }).click();
  await page.waitForSelector("[data-testid=runs]");
  const card = (id) => page.textContent(`[data-testid=stat-${id}]`);
  assert.equal(await card("runs"), "5");
  assert.equal(await card("errors"), "1");
  assert.equal(await card("success-rate"), "80 %");
  const rows = await page.$$eval("[data-testid=runs] tbody tr", (trs) =>
    trs.map((tr) => ({ id: tr.dataset.run, status: tr.querySelector(".badge").textContent, error: tr.lastElementChild.textContent })));
  assert.deepEqual(rows.map((r) => r.id), truth.runs.map((r) => r.run_id), "runs table order");
  assert.deepEqual(rows.map((r) => r.status), truth.runs.map((r) => r.status));
  assert.deepEqual(rows.map((r) => r.error), truth.runs.map((r) => (r.error ? r.error.code : "")));
  const graphNodes = await page.$$eval("[data-testid=graph] g.node", (gs) => gs.map((g) => g.dataset.node));
  assert.deepEqual(graphNodes.sort(), ["calc", "reply"]);
  const typical = await page.$$eval("[data-testid=graph] [data-testid=graph-latency]", (ts) => ts.map((t) => t.textContent));
  const stats = await api("GET", `/v1/workflows/${calculatorId}/stats?window=24h`);
  const calcStats = stats.nodes.find((n) => n.node_id === "calc");
  assert.ok(typical.includes("p50 " + fmtMs(calcStats.latency_ms.p50)), `graph latencies ${typical}`);
  assert.equal(await page.textContent("[data-testid=stat-p50]"), fmtMs(stats.latency_ms.p50));
  const points = await page.$$eval("[data-testid=latency-chart] svg circle", (cs) => cs.length);
  assert.equal(points, 3, "one bucket with p50, p95 and p99");
  await shot(page, "03-workflow.png");

  // Filter the table to failed runs.
  await page.selectOption("#f-status", "error");
  await page.click("form[aria-label='Filter runs'] button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=runs] tbody tr").length === 1);
  assert.equal(await page.getAttribute("[data-testid=runs] tbody tr", "data-run"), failedId);
  await shot(page, "04-failed-runs.png");

  // The failed run: its error and its waterfall.
  await page.click(`[data-run="${failedId}"] a`);
  await page.waitForSelector("[data-testid=run-error]");
  assert.equal(await page.textContent("[data-testid=run-error-code]"), failed.error.code);
  assert.equal(await page.textContent("[data-testid=run-error-node]"), failed.error.node_id);
  assert.equal(await page.textContent("[data-testid=run-error-message]"), failed.error.message);
  assert.equal(await page.textContent("[data-testid=run-input]"), "1 / (");
  assert.equal(await page.textContent("[data-testid=run-duration]"), fmtMs(failed.duration_ms));
  await checkWaterfall(page, failed);
  const toolError = await page.textContent("[data-testid=tool-calls] .badge.error");
  assert.ok(toolError.startsWith(failed.tool_calls[0].error.code + ":"), toolError);
  await shot(page, "05-failed-run.png");

  // A good run: output and a waterfall of both nodes.
  await page.goto(`${base}/dashboard#/runs/${good.run_id}`);
  await page.waitForSelector("[data-testid=run-output]");
  assert.equal(await page.textContent("[data-testid=run-output]"), good.output);
  assert.equal(await page.$("[data-testid=run-error]"), null);
  await checkWaterfall(page, good);
  await shot(page, "06-run.png");

  assert.deepEqual(errors, [], "no script errors or CSP violations");
  await page.close();
});

async function checkWaterfall(page, run) {
  await page.waitForSelector("[data-testid=waterfall]");
  const shown = await page.$$eval("[data-testid=waterfall] tbody tr", (trs) => trs.map((tr) => ({
    node: tr.dataset.node,
    status: tr.querySelector(".badge").textContent,
    offset: tr.querySelector("[data-testid=offset]").textContent,
    duration: tr.querySelector("[data-testid=duration]").textContent,
    left: parseFloat(tr.querySelector(".bar").style.marginLeft),
    width: parseFloat(tr.querySelector(".bar").style.width),
  })));
  const nodes = run.nodes.slice().sort((a, b) => a.offset_ms - b.offset_ms);
  const total = Math.max(run.duration_ms, ...nodes.map((n) => n.offset_ms + n.duration_ms));
  assert.deepEqual(shown.map((r) => r.node), nodes.map((n) => n.node_id), "waterfall rows");
  nodes.forEach((n, i) => {
    assert.equal(shown[i].status, n.status, n.node_id);
    assert.equal(shown[i].offset, fmtMs(n.offset_ms), n.node_id);
    assert.equal(shown[i].duration, fmtMs(n.duration_ms), n.node_id);
    assert.ok(Math.abs(shown[i].left - (100 * n.offset_ms) / total) < 0.02, `${n.node_id} bar start`);
    assert.ok(Math.abs(shown[i].width - (100 * n.duration_ms) / total) < 0.02, `${n.node_id} bar width`);
  });
}
