#!/usr/bin/env bash
# MoTLab against a plain PyTorch rebuild of the same model (tests/benchmarks/motlab_torch.py), loading MoTLab's
# checkpoint with the standard safetensors loader, on the same token ids.
#   prepare OUT "DOTNET APP_DLL"         train a few steps of dense, MoT, token-choice, expert-choice (tiny) and
#                                        MoT at the paper's mini shape; export each with a CPU fp32 reference forward
#   check OUT "DOTNET APP_DLL" [cuda]    compare: fp32 on the CPU against that reference; with cuda, also MoTLab's
#                                        own CUDA forward in fp32 and in bf16 against PyTorch's (bf16 under autocast)
# Prints one JSON line per comparison; exits 1 if any is outside its tolerance.
set -uo pipefail
cmd=$1; out=$2; motlab=$3; device=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
models=(tiny-dense tiny-mot tiny-moe tiny-ec mini-mot)
if [ "$cmd" = prepare ]; then
  mkdir -p "$out"
  for p in tiny-dense tiny-mot tiny-moe tiny-ec; do
    $motlab train --preset "$p" --steps 30 --out "$out/$p" --device cpu > /dev/null || exit 1
  done
  # the paper's mini MoT (d256, 4 layers, 32 experts, group 32, GPT-2 vocabulary) at a batch a CPU trains quickly
  $motlab presets | python3 -c "import json,sys; c=[p for p in json.load(sys.stdin) if p['name']=='mini-mot'][0]['config']; \
    c['train'].update(batch_size=32, eval_every=1000000); print(json.dumps(c))" > "$out/mini-mot.json"
  $motlab train --config "$out/mini-mot.json" --steps 2 --out "$out/mini-mot" --device cpu > /dev/null || exit 1
  for m in "${models[@]}"; do
    batch=8; [ "$m" = mini-mot ] && batch=32
    $motlab export --checkpoint "$out/$m" --reference $batch --device cpu --precision fp32 > /dev/null || exit 1
  done
  exit 0
fi
status=0
for m in "${models[@]}"; do
  ckpt=$(ls -d "$out/$m"/checkpoints/step-* | sort | tail -1)
  python3 "$here/motlab_torch.py" check "$ckpt" --device cpu --dtype fp32 || status=1
  if [ "$device" = cuda ]; then
    batch=8; [ "$m" = mini-mot ] && batch=32
    for precision in fp32 bf16; do
      gpu=$out/$m-cuda-$precision; rm -rf "$gpu"; cp -r "$ckpt" "$gpu"
      $motlab export --checkpoint "$gpu" --reference $batch --device cuda --precision $precision > /dev/null || { status=1; continue; }
      python3 "$here/motlab_torch.py" check "$gpu" --device cuda --dtype $precision || status=1
    done
  fi
done
exit $status
