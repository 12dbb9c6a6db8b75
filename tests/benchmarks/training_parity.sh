#!/usr/bin/env bash
# MoTLab's trainer against a plain PyTorch loop (pytorch_train.py) on the same corpus, batches and schedule,
# every config side by side on one GPU (docs/training-parity.md).
#   tests/benchmarks/training_parity.sh "dotnet path/to/MoTLab.Training.dll" CORPUS_FOLDER OUT_DIR dense-paper mot-paper:1338 ...
# Each NAME is tests/benchmarks/parity/NAME.json, NAME:SEED the same with another train.seed; OUT_DIR gets motlab-NAME[-sSEED]/
# and torch-NAME[-sSEED]/ run folders (metrics.jsonl) and their logs. MoTLab tokenizes the corpus once (the first
# run); the PyTorch loops read its token cache.
set -euo pipefail
motlab=$1; corpus=$2; out=$3; shift 3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"; export MOTLAB_CACHE=$out/cache
pids=()
name_of() { local n=${1%%:*}; [ "$n" = "$1" ] && echo "$n" || echo "$n-s${1#*:}"; }
seed_args() { [ "${1%%:*}" = "$1" ] || echo "--seed ${1#*:}"; }
start_motlab() {
  $motlab train --config "$here/parity/${1%%:*}.json" --corpus "$corpus" --out "$out/motlab-$(name_of "$1")" --device cuda $(seed_args "$1") \
    > "$out/motlab-$(name_of "$1").log" 2>&1 & pids+=($!)
}
start_motlab "$1"
until compgen -G "$MOTLAB_CACHE/tokens/*/manifest.json" > /dev/null; do
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$out/motlab-$(name_of "$1").log"; exit 1; }
  sleep 2
done
tokens=$(dirname "$(compgen -G "$MOTLAB_CACHE/tokens/*/manifest.json" | head -1)")
for spec in "$@"; do
  [ "$spec" = "$1" ] || start_motlab "$spec"
  python3 "$here/pytorch_train.py" --config "$here/parity/${spec%%:*}.json" --tokens "$tokens" --out "$out/torch-$(name_of "$spec")" $(seed_args "$spec") \
    > "$out/torch-$(name_of "$spec").log" 2>&1 & pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
for f in "$out"/*/metrics.jsonl; do echo "$(basename "$(dirname "$f")"): $(grep eval_loss "$f" | python3 -c 'import sys,json; print(" ".join(f"{json.loads(l)["step"]}:{json.loads(l)["eval_loss"]:.4f}" for l in sys.stdin))')"; done
exit $status
