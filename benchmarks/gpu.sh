#!/usr/bin/env bash
# The GPU figures docs/performance.md still lacks, in one command that fits a lent H100/H200's device time
# (at most 570 s of running, each part under its own time limit). Every part writes its output into $OUT as
# it ends, so one cut short by its limit still leaves the others:
#
#   bench        benchmarks/bench.py on the GPU: training images/s of the face GAN, the cGAN and the
#                classifier against the plain baseline, the `--precision fp32` and `--no-compile` variants,
#                steering 64 faces x 8 frames; bench.json, performance-gpu.png
#   train-gan    `latentctl train gan` end to end on a CelebA-sized synthetic set (202,599 faces): the
#                seconds of each epoch are in train-gan.log
#   quality      benchmarks/quality.py: the demo's cGAN trained in fp32 and with `auto` (bf16), scored
#   faces-full   benchmarks/quality.py's face part at train gan's size (64x64, width 64, 40,000 faces,
#                25 epochs): does the full-size GAN draw the rare attributes (glasses, hats)?
#   steer-full   `latentctl eval steer` on those models, judged by a second classifier (width 24, seed 7)
#                trained here: steering's bar at full size; steer-full.txt (JSON), steer-full.png
#
#   PYTHONPATH=src OUT=/path bash benchmarks/gpu.sh     # on the GPU machine, from the repository root
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu.sh           # the same steps, tiny, on a CPU: a smoke run
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export LATENTCTL_HOME="$scratch/home"  # the runs register their models there, not in the user's registry

part() {  # part NAME SECONDS COMMAND...: one part under a time limit; stdout to $OUT/NAME.txt, stderr to .log
    local name=$1 limit=$2 started=$SECONDS rc
    shift 2
    echo "== $name (at most ${limit} s)" >&2
    timeout "$limit" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.log"
    rc=$?
    echo "== $name: exit $rc after $((SECONDS - started)) s" | tee -a "$OUT/parts.txt" >&2
}

if [ -n "$QUICK" ]; then
    bench_size=--quick; synth_faces=600; gan_epochs=1; digit_epochs=1
    full=(--faces 600 --face-size 32 --face-width 8 --face-epochs 1 --classifier-epochs 1)
    full_size=32; judge_epochs=1
else
    bench_size=; synth_faces=202599; gan_epochs=2; digit_epochs=10
    full=(--faces 40000 --face-size 64 --face-width 64 --face-epochs 25 --classifier-epochs 5)
    full_size=64; judge_epochs=5
fi

python -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name() if torch.cuda.is_available()
else 'no GPU')" >"$OUT/machine.txt" 2>&1
part bench 200 python benchmarks/bench.py --device "$DEVICE" $bench_size --extra fp32,no-compile \
    --json "$OUT/bench.json" --plot "$OUT/performance-gpu.png"
part train-gan 100 bash -c "python -m latentctl data synth faces --n $synth_faces --root '$scratch/faces' >/dev/null \
    && python -m latentctl train gan --data-root '$scratch/faces' --epochs $gan_epochs --device $DEVICE \
       --out '$scratch/gan' --json"
part quality 60 python benchmarks/quality.py --device "$DEVICE" --parts digits --precisions fp32,auto \
    --epochs "$digit_epochs"
part faces-full 150 python benchmarks/quality.py --device "$DEVICE" --parts faces --precisions auto "${full[@]}" \
    --keep "$scratch/full"
part steer-full 60 bash -c "python -m latentctl train classifier --root '$scratch/full/faces' --out '$scratch/judge' \
       --size ${full_size} --width 24 --seed 7 --epochs ${judge_epochs} --device $DEVICE >/dev/null \
    && python -m latentctl eval steer --model '$scratch/full/gan-auto' --classifier '$scratch/full/classifier-auto' \
       --judge '$scratch/judge' --faces 48 --device $DEVICE --plot '$OUT/steer-full.png' --json"
