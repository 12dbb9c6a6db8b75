#!/usr/bin/env bash
# One run per GPU on a multi-GPU host: is a run as fast beside another as alone?
# usage: tests/benchmarks/multi_gpu.sh "DOTNET APP_DLL" [STEPS] [PRESETS...]
#   e.g. tests/benchmarks/multi_gpu.sh "dotnet Training/bin/Release/net10.0/MoTLab.Training.dll" 200 medium-dense medium-mot
# For each preset: `bench` alone on cuda:0, then on cuda:0 and cuda:1 at the same time. The timed window is long
# (STEPS steps) next to the start-up skew, so the two windows overlap almost entirely. Prints the bench JSON lines,
# then one line per preset: {"preset", "alone", "pair": [cuda:0, cuda:1], "ratio": [..]} (ratio = pair / alone).
set -uo pipefail
motlab=$1; steps=${2:-200}; shift 2 || shift $#
presets=("$@"); [ ${#presets[@]} -gt 0 ] || presets=(medium-dense medium-mot)
export MOTLAB_LIBTORCH=${MOTLAB_LIBTORCH:-python}
tmp=$(mktemp -d)
for p in "${presets[@]}"; do
  $motlab bench --preset "$p" --device cuda:0 --steps "$steps" --warmup 10 | tee "$tmp/$p-alone.json" || exit 1
  $motlab bench --preset "$p" --device cuda:0 --steps "$steps" --warmup 10 > "$tmp/$p-0.json" & a=$!
  $motlab bench --preset "$p" --device cuda:1 --steps "$steps" --warmup 10 > "$tmp/$p-1.json" & b=$!
  wait $a && wait $b || exit 1
  cat "$tmp/$p-0.json" "$tmp/$p-1.json"
  python3 - "$p" "$tmp/$p-alone.json" "$tmp/$p-0.json" "$tmp/$p-1.json" <<'PY'
import json, sys
tps = [json.loads(open(f).read().strip().splitlines()[-1])["tokens_per_s"] for f in sys.argv[2:]]
print(json.dumps({"preset": sys.argv[1], "alone": round(tps[0]), "pair": [round(t) for t in tps[1:]],
                  "ratio": [round(t / tps[0], 3) for t in tps[1:]]}))
PY
done
rm -rf "$tmp"
