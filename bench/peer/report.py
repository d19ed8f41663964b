#!/usr/bin/env python3
"""Prints the markdown tables of one bench/peer/run.sh run.

    report.py results.jsonl [env.txt]

Added latency (concurrency 1) = the run's latency - 2 x the fake's own latency at concurrency 1: a run
makes two provider calls (model -> tool -> model), so this is what the server itself adds per run
(HTTP in and out, parsing, the flow engine, the tool, storage, logging). Computed for the mean
(c / throughput, Little's law: exact in wrk's closed loop) and for wrk's p50.

wrk's percentiles are corrected for coordinated omission: after the run it adds synthetic samples
below every answer slower than the average interval, as an open-loop client at the same rate would
have seen them. On a busy shared machine a few scheduler stalls then dominate p99 of the fast
endpoints (the fake, /healthz, /ping); read p99 as "what a constant-rate client would see".
"""

import json
import sys

NAMES = {
    ("fake", "chat-completion"): "fake provider alone: `POST /v1/chat/completions`",
    ("pipecat", "healthz"): "Pipecat `GET /healthz`",
    ("pipecat", "invoke-llm-tool"): "Pipecat `POST /invoke/{id}/invoke` (LLM + tool)",
    ("flowise", "ping"): "Flowise `GET /api/v1/ping`",
    ("flowise", "prediction-llm-tool"): "Flowise `POST /api/v1/prediction/{id}` (LLM + tool)",
}


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    if len(sys.argv) > 2:
        print("```")
        print(open(sys.argv[2]).read().rstrip())
        print("```\n")
    print("| what | concurrency | req/s | mean ms | p50 ms | p99 ms | non-2xx / socket errors "
          "| wrong answers | provider calls per request | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = NAMES.get((r["server"], r["scenario"]), f"{r['server']} {r['scenario']}")
        calls = r["provider_calls_per_request"]
        print(f"| {name} | {r['concurrency']} | {r['rps']:,.0f} | {r['mean_ms']:.3f} "
              f"| {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
              f"| {r['non2xx']} / {r['socket_errors'] + r['timeouts']} "
              f"| {r['bad_answers'] if r['checked'] else '—'} "
              f"| {calls:.2f} | {r['load1']:.2f} |")

    def at(server, scenario, c):
        return next((r for r in rows if r["server"] == server and r["scenario"] == scenario
                     and r["concurrency"] == c), None)

    fake = at("fake", "chat-completion", 1)
    runs = [("Pipecat", at("pipecat", "invoke-llm-tool", 1)),
            ("Flowise", at("flowise", "prediction-llm-tool", 1))]
    if fake:
        print("\nAdded latency at concurrency 1 (run − 2 × the fake's own latency; mean = 1 / req/s):\n")
        print("| server | run mean ms | fake mean ms | **added mean ms** | run p50 ms | fake p50 ms "
              "| **added p50 ms** |")
        print("|---|---|---|---|---|---|---|")
        for name, r in runs:
            if r:
                print(f"| {name} | {r['mean_ms']:.3f} | {fake['mean_ms']:.3f} "
                      f"| **{r['mean_ms'] - 2 * fake['mean_ms']:.3f}** | {r['p50_ms']:.3f} "
                      f"| {fake['p50_ms']:.3f} | **{r['p50_ms'] - 2 * fake['p50_ms']:.3f}** |")

    cs = sorted({r["concurrency"] for r in rows})
    pairs = [(c, at("pipecat", "invoke-llm-tool", c), at("flowise", "prediction-llm-tool", c)) for c in cs]
    pairs = [(c, p, f) for c, p, f in pairs if p and f]
    if pairs:
        print("\nThroughput of the LLM + tool flow, Pipecat / Flowise:\n")
        print("| concurrency | Pipecat req/s | Flowise req/s | ratio |")
        print("|---|---|---|---|")
        for c, p, f in pairs:
            print(f"| {c} | {p['rps']:,.0f} | {f['rps']:,.1f} | {p['rps'] / max(f['rps'], 1e-9):,.0f}× |")


if __name__ == "__main__":
    main()
