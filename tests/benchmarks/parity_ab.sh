#!/usr/bin/env bash
# A/B runs of the PyTorch loop (pytorch_train.py), side by side on one GPU: each a label, a seed and the loop's flags,
# so that one piece of MoTLab's arithmetic or its initial weights can be put into the loop at a time
# (docs/training-parity.md, "What each finding gave").
#   tests/benchmarks/parity_ab.sh "dotnet path/to/MoTLab.Training.dll" CORPUS_FOLDER OUT_DIR NAME LABEL:SEED[:FLAG,FLAG...] ...
#   e.g. ... mot-paper own:1337 motlabinit:1337:--motlab-init bf16logits:1337:--motlab-init,--bf16-logits
# NAME is tests/benchmarks/parity/NAME.json. MoTLab tokenizes the corpus with one training step at the first spec's seed
# (OUT_DIR/motlab-step1/), whose weights --check-init holds the loop's --motlab-init draw against (they differ by that
# one step, at most about the learning rate). OUT_DIR gets torch-NAME-LABEL-sSEED/ run folders and their logs.
set -euo pipefail
motlab=$1; corpus=$2; out=$3; name=$4; shift 4
here=$(cd "$(dirname "$0")" && pwd)
config=$here/parity/$name.json
mkdir -p "$out"; export MOTLAB_CACHE=$out/cache
first=$(echo "$1" | cut -d: -f2)
$motlab train --config "$config" --corpus "$corpus" --out "$out/motlab-step1" --device cuda --seed "$first" --steps 1 \
  > "$out/motlab-step1.log" 2>&1 & step1=$!
until compgen -G "$MOTLAB_CACHE/tokens/*/manifest.json" > /dev/null; do
  kill -0 "$step1" 2>/dev/null || { cat "$out/motlab-step1.log"; exit 1; }
  sleep 1
done
tokens=$(dirname "$(compgen -G "$MOTLAB_CACHE/tokens/*/manifest.json" | head -1)")
pids=()
for spec in "$@"; do
  IFS=: read -r label seed flags <<< "$spec"
  python3 "$here/pytorch_train.py" --config "$config" --tokens "$tokens" --out "$out/torch-$name-$label-s$seed" --seed "$seed" ${flags//,/ } \
    > "$out/torch-$name-$label-s$seed.log" 2>&1 & pids+=($!)
done
wait "$step1"
python3 "$here/pytorch_train.py" --config "$config" --tokens "$tokens" --out "$out/check" --seed "$first" --motlab-init \
  --check-init "$(ls -d "$out"/motlab-step1/checkpoints/step-* | tail -1)" --device cpu
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
for f in "$out"/torch-*/metrics.jsonl; do
  echo "$(basename "$(dirname "$f")"): $(grep eval_loss "$f" | python3 -c 'import sys, json
print(" ".join("%d:%.4f" % (r["step"], r["eval_loss"]) for r in map(json.loads, sys.stdin)))')"
done
exit $status
