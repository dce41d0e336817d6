#!/bin/sh
# Simulator benchmark: speed, memory and convergence of rollcall-sim beside the
# bare-foca floor, written to BENCHMARKS.md's "## Simulator" section.
#
#   sim/bench.sh            # every case (about 40 minutes and 15 GiB on 2 cores)
#   sim/bench.sh --quick    # leave out the 2,000, 3,000 and 10,000-node runs
#
# Run it from anywhere; it builds in release and runs each case in its own
# process (peak RSS is per process).
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release -p rollcall-sim --bins
exec ./target/release/rollcall-sim bench --write "$root/BENCHMARKS.md" "$@"
