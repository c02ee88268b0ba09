#!/usr/bin/env bash
# Every GPU measurement of issue 23 in one go, inside one time budget, each step failing soft.
#
#   bench/gpu_proof.sh                    # on the GPU machine: figures into $OUT (or ./gpu_proof_out)
#   bench/gpu_proof.sh --dry-run          # on a CPU: the same steps at tiny sizes (tests the script)
#   bench/gpu_proof.sh --out DIR --budget 300
#
# Steps (each in its own process, wrapped in `timeout`; its JSON lines and errors are recorded by
# bench/gpu_proof_report.py, which rebuilds summary.json and summary.md after every step, so a run
# cut short still leaves a summary):
#   deps                install the wheels that bench/gpu_wheels.sh put in .whl/ (offline, --target)
#   env                 GPU name, driver, package versions, missing modules (no torch import)
#   train_throughput    python -m bench.train --archs all --crops 256,512 --precisions fp32,bf16
#   train_profile       torch.profiler on steady-state steps, ours vs the reference: launch-bound or not
#   train_memory        our trainer at crop 512, batch 8, per arch: torch.cuda.max_memory_allocated
#   predict_throughput  segstudio predict (no CRF, default CRF) vs a plain torchvision loop, >= 200
#                       photos, GPU busy % from nvidia-smi -lms 200
#   predict_memory      prediction of a photo at the pixel cap (default cap and full resolution)
#   oom_fallback        forced CUDA out-of-memory: batch -> single, tile halving, CPU, real, trainer
#   torchrun_nccl       torchrun --nproc_per_node 1 fine-tune vs a plain run: same checkpoint layout
#   sam_cuda            SAM ViT-B embedding and click latency on CUDA
#
# Environment: PYTHON (default python3), DEVICE (cuda; cpu in --dry-run), GPU_PROOF_BUDGET_S (total
# seconds, default 540 so the run fits one 10-minute device call with the start-up), TESTDATA (the
# shared test data; default: shared/testdata, ../shared/testdata or /work/shared/testdata),
# TRAIN_ARCHS (default all), TRAIN_CROPS (256,512), TRAIN_PRECISIONS (fp32,bf16), PREDICT_COUNT (240),
# PREDICT_MODEL (deeplabv3_mobilenet_v3_large), NPROC (1, or auto), STEPS (comma-separated subset).
# Files written into the output folder (at most 4: the device tool returns 8): steps.jsonl,
# summary.json, summary.md, log.txt.
# The whole script is one { ... } block: bash reads it completely before running it, so editing this
# file while a run is going cannot change that run.
{
set -u

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

dry=0
out_dir="${OUT:-./gpu_proof_out}"
budget="${GPU_PROOF_BUDGET_S:-540}"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --out) out_dir="$2"; shift ;;
        --budget) budget="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_proof.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
cd "$repo" || exit 2
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
work="$(mktemp -d "${TMPDIR:-/tmp}/gpu_proof.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rm -f "$out_dir/steps.jsonl" "$out_dir/summary.json" "$out_dir/summary.md" "$out_dir/log.txt"

all_steps="deps,env,train_throughput,train_profile,train_memory,predict_throughput,predict_memory,oom_fallback,torchrun_nccl,sam_cuda"
steps="${STEPS:-$all_steps}"
reserve=15        # seconds kept back for timeout's kill grace and the last summary
min_step=8        # a step is skipped when less than this is left of the total budget

if [ "$dry" = 1 ]; then
    mode=dry-run
    device="${DEVICE:-cpu}"
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    threads=(--threads 1)
    train_args=(--archs lraspp_mobilenet_v3_large --crops 64 --batch 2 --steps 1 --warmup 1 --workers 0
                --images 2 --precisions fp32)
    memory_args=(--archs lraspp_mobilenet_v3_large --crops 64 --batch 2 --steps 1 --warmup 1 --workers 0
                 --images 2 --precisions fp32 --ours-only --peak-memory)
    predict_args=(--count 4 --side 96 "${threads[@]}")
    peak_args=(--pixels 60000 "${threads[@]}")
    oom_args=(--side 128 "${threads[@]}")
    ddp_args=(--size 48 --images 4 --epochs 1)
    sam_args=(--arch tiny --count 1 --clicks 1 --skip-busy --skip-reference --threads 1)
    profile_args=(--arch lraspp_mobilenet_v3_large --crop 64 --batch 2 --active 1 --workers 0 --images 2)
    b_deps=60 b_env=30 b_train=120 b_prof=120 b_mem=120 b_pred=120 b_peak=120 b_oom=120 b_ddp=180 b_sam=120
    budget="${GPU_PROOF_BUDGET_S:-1200}"
else
    mode=gpu
    device="${DEVICE:-cuda}"
    threads=()
    # the seeds' DeepLabs and the small, launch-bound models first: a run cut short still has them
    first="deeplabv3_mobilenet_v3_large,lraspp_mobilenet_v3_large,deeplabv3_resnet50,deeplabv3plus_mobilenet_v3_large"
    train_args=(--archs "${TRAIN_ARCHS:-$first,all}" --crops "${TRAIN_CROPS:-256,512}" --batch 4 --steps 4 --warmup 3
                --workers 4 --images 8 --precisions "${TRAIN_PRECISIONS:-fp32,bf16}" --peak-memory)
    memory_args=(--archs "${TRAIN_ARCHS:-all}" --crops 512 --batch 8 --steps 1 --warmup 1 --workers 4
                 --images 8 --precisions bf16 --ours-only --peak-memory)
    predict_args=(--count "${PREDICT_COUNT:-240}" --model "${PREDICT_MODEL:-deeplabv3_mobilenet_v3_large}")
    peak_args=()
    oom_args=(--side 2048)
    ddp_args=(--nproc "${NPROC:-1}" --size 128 --images 16 --epochs 2)
    sam_args=(--count 3 --clicks 12 --threads 4)
    # seconds per step; they add up to 525, inside the default total of 540 (less the 15 s reserve)
    profile_args=(--precision bf16 --active 5)
    b_deps=65 b_env=10 b_train=160 b_prof=20 b_mem=50 b_pred=85 b_peak=35 b_oom=35 b_ddp=40 b_sam=25
fi
testdata_args=()
for candidate in "${TESTDATA:-}" shared/testdata ../shared/testdata /work/shared/testdata; do
    if [ -n "$candidate" ] && [ -d "$candidate" ]; then
        testdata="$(cd "$candidate" && pwd)"
        testdata_args=(--testdata "$testdata")
        [ -d "$testdata/labelme_voc_example/data_annotated" ] &&
            sam_args+=(--images "$testdata/labelme_voc_example/data_annotated")
        break
    fi
done

log() { echo "[gpu_proof $(date +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$out_dir/log.txt" >&2; }

summarise() {
    "$py" -m bench.gpu_proof_report summary --out "$out_dir" --steps "$steps" --mode "$mode" \
        2>>"$out_dir/log.txt" || log "summary failed (see log.txt)"
}

# run_step NAME BUDGET_S COMMAND...: the command under `timeout`, its outcome recorded either way.
run_step() {
    local name="$1" want="$2"; shift 2
    case ",$steps," in *",$name,"*) ;; *) return 0 ;; esac
    local left=$((budget - SECONDS - reserve))
    local limit=$((want < left ? want : left))
    if [ "$limit" -lt "$min_step" ]; then
        log "$name: skipped, ${left}s left of the ${budget}s budget"
        "$py" -m bench.gpu_proof_report record --out "$out_dir" --name "$name" --budget "$want" \
            --skipped "skipped: only ${left}s left of the total budget of ${budget}s" 2>>"$out_dir/log.txt"
        summarise
        return 0
    fi
    log "$name: start (limit ${limit}s)"
    local t0=$SECONDS rc=0
    timeout --kill-after=10 "$limit" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    local took=$((SECONDS - t0))
    {
        echo "----- $name: exit $rc after ${took}s; stderr tail:"
        tail -n 25 "$work/$name.err"
    } >>"$out_dir/log.txt"
    "$py" -m bench.gpu_proof_report record --out "$out_dir" --name "$name" --rc "$rc" --seconds "$took" \
        --budget "$limit" --stdout "$work/$name.out" --stderr "$work/$name.err" 2>>"$out_dir/log.txt"
    summarise
    log "$name: exit $rc after ${took}s"
}

log "mode $mode, device $device, budget ${budget}s, python $py, test data ${testdata:-none}, output $out_dir"
summarise
site="${TMPDIR:-/tmp}/gpu_proof_site"
wheels="$repo/.whl"
[ "$dry" = 1 ] && wheels="$work/no-wheels-in-a-dry-run"  # never build pydensecrf2 on the shared CPUs
run_step deps "$b_deps" "$py" -m bench.gpu_proof_report deps --wheels "$wheels" --target "$site"
[ -d "$site" ] && export PYTHONPATH="$repo:$site${PYTHONPATH#"$repo"}"
run_step env "$b_env" "$py" -m bench.gpu_proof_report env
run_step train_throughput "$b_train" "$py" -m bench.train --device "$device" "${train_args[@]}"
run_step train_profile "$b_prof" "$py" -m bench.gpu_profile --device "$device" "${profile_args[@]}"
run_step train_memory "$b_mem" "$py" -m bench.train --device "$device" "${memory_args[@]}"
run_step predict_throughput "$b_pred" "$py" -m bench.gpu_predict --device "$device" "${predict_args[@]}" \
    "${testdata_args[@]}"
run_step predict_memory "$b_peak" "$py" -m bench.gpu_memory peak --device "$device" "${peak_args[@]}" \
    "${testdata_args[@]}"
run_step oom_fallback "$b_oom" "$py" -m bench.gpu_memory oom --device "$device" "${oom_args[@]}"
run_step torchrun_nccl "$b_ddp" "$py" -m bench.gpu_ddp --device "$device" "${ddp_args[@]}"
run_step sam_cuda "$b_sam" "$py" -m bench.sam --device "$device" "${sam_args[@]}"
log "done in ${SECONDS}s: $out_dir/summary.md"
exit 0
}
