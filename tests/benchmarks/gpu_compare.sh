#!/usr/bin/env bash
# Side-by-side on one GPU host: MoTLab `bench` and the PyTorch reference, same presets, same sitting. Each MoTLab
# preset is measured before and after its reference run (the card's clocks drift within a sitting).
# usage: [REFERENCE=compile|eager] tests/benchmarks/gpu_compare.sh "DOTNET APP_DLL" [STEPS] [PRESETS...]
#   e.g. REFERENCE=compile tests/benchmarks/gpu_compare.sh "dotnet Training/bin/Release/net10.0/MoTLab.Training.dll" 30 medium-dense medium-mot
# MoTLab loads the PyTorch install's libtorch (MOTLAB_LIBTORCH=python). Output: JSON lines, one per run; MoTLab's
# carry kernel_launches_per_step (0: its fused kernels did not run). Run `MoTLab.Training kernels --device cuda
# --check` first: it holds each kernel against its libtorch path and fails where a kernel side launched nothing.
set -uo pipefail
motlab=$1; steps=${2:-30}; shift 2 || shift $#
presets=("$@"); [ ${#presets[@]} -gt 0 ] || presets=(medium-dense medium-mot mini-dense mini-mot)
here=$(dirname "$0")
reference=()
case "${REFERENCE:-eager}" in
  compile) reference=(--compile) ;;
  eager) ;;
  *) echo "REFERENCE must be compile or eager, not '${REFERENCE}'" >&2; exit 2 ;;
esac
export MOTLAB_LIBTORCH=${MOTLAB_LIBTORCH:-python}
for p in "${presets[@]}"; do
  $motlab bench --preset "$p" --device cuda --steps "$steps" --warmup 5
  python3 "$here/pytorch_bench.py" --preset "$p" "${reference[@]}" --steps "$steps" --warmup 5
  $motlab bench --preset "$p" --device cuda --steps "$steps" --warmup 5
done
