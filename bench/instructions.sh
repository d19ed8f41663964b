#!/usr/bin/env bash
# Instructions per run of one load-harness phase, under callgrind (repeatable where wall-clock time on a
# shared VM is not): the marginal count between a 2 s and a 6 s phase, so set-up (plugin compiles,
# accounts) cancels out. Client and server are counted together, as in the harness.
#
#   bench/instructions.sh [phase, default template] [binary, default target/release/examples/load]
#
# Build the binary first: cargo build --release -p pipecat --example load. Needs valgrind.
# Caveat: threads spinning on a lock while valgrind serialises them add a scheduling-dependent count;
# compare two runs before trusting one.
set -euo pipefail
phase=${1:-template}
bin=${2:-target/release/examples/load}
one() {
    LOAD_PHASES=$phase valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" 8 2>&1 |
        tr -d ',' | grep -oE "\(([0-9]+) runs|Collected : [0-9]+" | grep -oE "[0-9]+" | tr '\n' ' '
}
read -r runs1 ir1 <<<"$(one 2)"
read -r runs2 ir2 <<<"$(one 6)"
echo "$bin $phase: $runs1 / $runs2 runs, $(((ir2 - ir1) / (runs2 - runs1))) instructions per run"
