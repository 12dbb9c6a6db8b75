#!/usr/bin/env bash
# Side-by-side on one GPU host: MoTLab `bench` and the PyTorch-eager reference, same presets, same sitting.
# usage: tests/benchmarks/gpu_compare.sh "DOTNET APP_DLL" [STEPS] [PRESETS...]
#   e.g. tests/benchmarks/gpu_compare.sh "dotnet Training/bin/Release/net10.0/MoTLab.Training.dll" 30 medium-dense medium-mot
# MoTLab loads the PyTorch install's libtorch (MOTLAB_LIBTORCH=python). Output: JSON lines, one per run.
set -uo pipefail
motlab=$1; steps=${2:-30}; shift 2 || shift $#
presets=("$@"); [ ${#presets[@]} -gt 0 ] || presets=(medium-dense medium-mot mini-dense mini-mot)
here=$(dirname "$0")
export MOTLAB_LIBTORCH=${MOTLAB_LIBTORCH:-python}
for p in "${presets[@]}"; do
  $motlab bench --preset "$p" --device cuda --steps "$steps" --warmup 5
  python3 "$here/pytorch_bench.py" --preset "$p" --steps "$steps" --warmup 5
done
