#!/usr/bin/env bash
# Every benchmark of the project in one go, on a quiet machine; logs land in benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/results
mkdir -p "$R"
stamp() { echo "# $(date '+%Y-%m-%d %H:%M') $*"; }
{ stamp "python -m ctrgcn bench"; python -m ctrgcn bench; echo; } | tee -a "$R/bench.txt"
python benchmarks/compare_cpu.py --batches 1 64 --log "$R/compare_cpu.txt"
python benchmarks/compare_train.py --iters 5 --log "$R/compare_train.txt"
{ stamp "size_table"; python benchmarks/size_table.py; echo; } | tee -a "$R/size_table.txt"
{ stamp "bench_data"; python benchmarks/bench_data.py; echo; } | tee -a "$R/bench_data.txt"
