#!/usr/bin/env bash
# MoTLab against a plain PyTorch rebuild of the same model (tests/benchmarks/motlab_torch.py), which loads MoTLab's
# checkpoint with the standard safetensors loader, on the same token ids.
# usage: tests/benchmarks/torch_parity.sh OUT "DOTNET APP_DLL" [cuda]
# Trains a few steps of dense, MoT, token-choice and expert-choice (tiny presets, byte vocabulary) and of MoT at
# the paper's mini shape (d256, 4 layers, 32 experts, group 32, GPT-2 vocabulary; synthetic text so it runs
# anywhere), on the CPU. Then, for each: MoTLab's CPU fp32 forward against PyTorch's (CPU, fp32); with cuda, also
# MoTLab's own CUDA forward in fp32 and in bf16 against PyTorch's on the GPU (bf16 under autocast).
# Prints one JSON line per comparison; exits 1 if any is outside its tolerance.
set -uo pipefail
out=$1; motlab=$2; device=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
for p in tiny-dense tiny-mot tiny-moe tiny-ec; do
  $motlab train --preset "$p" --steps 10 --out "$out/$p" --device cpu > /dev/null || exit 1
done
$motlab presets | python3 -c "import json,sys; c=[p for p in json.load(sys.stdin) if p['name']=='mini-mot'][0]['config']; \
  c['train'].update(batch_size=32, eval_every=1000000); c['data']['corpus']='synthetic'; print(json.dumps(c))" > "$out/mini-mot.json"
$motlab train --config "$out/mini-mot.json" --steps 1 --out "$out/mini-mot" --device cpu > /dev/null || exit 1

status=0
for m in tiny-dense tiny-mot tiny-moe tiny-ec mini-mot; do
  batch=8; [ "$m" = mini-mot ] && batch=32
  ckpt=$(ls -d "$out/$m"/checkpoints/step-* | sort | tail -1)
  variants=("cpu fp32"); [ "$device" = cuda ] && variants+=("cuda fp32" "cuda bf16")
  for v in "${variants[@]}"; do
    set -- $v
    copy=$out/$m-$1-$2; rm -rf "$copy"; cp -r "$ckpt" "$copy"
    $motlab export --checkpoint "$copy" --reference $batch --device "$1" --precision "$2" > /dev/null || { status=1; continue; }
    python3 "$here/motlab_torch.py" check "$copy" --device "$1" --dtype "$2" || status=1
  done
done
exit $status
