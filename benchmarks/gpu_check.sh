#!/usr/bin/env bash
# GPU check (about 5 minutes on one GPU): paper Table 10 step times of pcl vs pcfrl at the paper preset, a short
# pcfrl pretraining in fp32 and in bf16 (s/step, loss agreement), the data pipeline's share of the step time,
# and the same run under `torchrun --nproc_per_node 1` (DDP); then one table (benchmarks/gpu_check_report.py).
#
# Usage: benchmarks/gpu_check.sh [--device cuda|cuda:N|cpu] [--tiny] [--work DIR]
#   --tiny   smoke sizes (a CPU test of the script itself: about 2 minutes on 2 cores)
#   --work   folder for records, checkpoints and logs (default: a new temporary folder; kept afterwards)
# Environment: PYTHON (default: python) runs pcfrl-bench.
set -euo pipefail

DEVICE=cuda
TINY=0
WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --work) WORK="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (options: --device, --tiny, --work)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-$(mktemp -d -t pcfrl-gpu-check.XXXXXX)}
mkdir -p "$WORK"

if [ "$TINY" = 1 ]; then
  CX=(--preset smoke --repeats 2)
  RUN=(-p smoke --set pretrain.batch_size=4)
else
  # the paper's trunk (facecycle, full width, 64 px) and batch 256 on 1600 synthetic clips: 6 steps per epoch
  CX=(--preset paper --repeats 10)
  RUN=(-p quick --set model.width=1.0 --set data.image_size=64 --set eval.image_size=64
       --set pretrain.batch_size=256 --set data.synthetic.identities=400)
fi
RUN+=(--set pretrain.epochs=2 --device "$DEVICE" --no-progress)

step() { echo "== $*" >&2; }
step "Table 10: pcl vs pcfrl ($DEVICE)"
$PY -m pcfrl_bench complexity --methods pcl,pcfrl --task synth-fer "${CX[@]}" --device "$DEVICE" --out "$WORK/complexity" \
  --no-progress >&2
for precision in fp32 bf16; do
  step "pcfrl pretraining, $precision"
  $PY -m pcfrl_bench run -m pcfrl -t synth-fer "${RUN[@]}" --set pretrain.precision=$precision \
    --out "$WORK/$precision" --cache-dir "$WORK/cache-$precision" >&2
done
step "pcfrl pretraining under torchrun --nproc_per_node 1 (DDP)"
$PY -m torch.distributed.run --standalone --nproc_per_node 1 -m pcfrl_bench run -m pcfrl -t synth-fer "${RUN[@]}" \
  --out "$WORK/ddp1" --cache-dir "$WORK/cache-ddp1" >&2
$PY "$HERE/gpu_check_report.py" "$WORK"
