# qat_pipe.sh - helpers of the pipeline tests of `upq qat` (tests/e2e/qat_pipeline.sh and
# tests/long/qat_pipeline_faults.sh); sourced, never run. Expects UPQ, UPQ_SHARED_DIR, W,
# fail(), wait_for() (run_dirs.sh).

# qp_setup: stories260k token shards (32 tokens a row) and top-16 teacher records in $W;
# sets BASE (the options every run shares). Exits 77 when ../shared lacks them.
qp_setup() {
    local m="$UPQ_SHARED_DIR/models/stories260k" txt="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
    if [[ ! -f "$m/model.safetensors" || ! -f "$txt" ]]; then
        echo "SKIPPED: stories260k or tinyshakespeare under $UPQ_SHARED_DIR is absent" >&2
        exit 77
    fi
    head -c 3000 "$txt" > "$W/in.txt"
    "$UPQ" prepare --model "$m" --out "$W/data" --seq-len 32 --shard-size 4 --quiet "$W/in.txt" > /dev/null
    "$UPQ" teacher --model "$m" --data "$W/data" --out "$W/teach" --store topk --topk 16 --quiet > /dev/null
    mkdir -p "$W/r"
    BASE=(--init "$m" --teacher "$W/teach" --data "$W/data" --batch 8 --micro-batches 4 --lr 1e-3 --scale-lr 1e-3
          --quantizer lsq --quiet --out "$W/r/o.h5")
}

# qp_run S R [options...]: upq qat on S x R ranks (mpirun for more than one); output
# $W/r/o.h5. Returns upq's (mpirun's) exit status; stderr in $W/err.
qp_run() {
    local s=$1 r=$2
    shift 2
    if [ $((s * r)) -eq 1 ]; then
        "$UPQ" qat "${BASE[@]}" "$@" > "$W/out" 2> "$W/err"
    else
        mpirun -n $((s * r)) "$UPQ" qat "${BASE[@]}" --stages "$s" --replicas "$r" "$@" > "$W/out" 2> "$W/err"
    fi
}

# qp_same REF NAME: $W/r/o.h5 and its loss CSV byte-identical to REF.h5 / REF.csv.
qp_same() {
    cmp "$1.h5" "$W/r/o.h5" || fail "$2: the output differs from the reference"
    cmp "$1.csv" "$W/r/o.h5.loss.csv" || fail "$2: the loss curve differs from the reference"
}

# qp_signal S R SIGNAL PAUSE_MS DELAY_MS RANK [options...]: starts a run, waits for its first
# checkpoint, DELAY_MS later sends SIGNAL to the process of RANK (mpirun's children are the
# ranks in start order; one rank: the process itself); returns the run's exit status.
qp_signal() {
    local s=$1 r=$2 sig=$3 pause=$4 delay=$5 rank=$6
    shift 6
    rm -f "$W"/r/*
    UPQ_QAT_PAUSE_MS=$pause qp_run "$s" "$r" "$@" &
    local pid=$! rc=0 target
    wait_for "$W/r/o.h5.ckpt.h5"
    sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
    if [ $((s * r)) -eq 1 ]; then
        target=$(pgrep -P "$pid" -x upq || echo "$pid")
    else
        target=$(pgrep -P "$(pgrep -P "$pid" -x mpirun || echo "$pid")" | sed -n "$((rank + 1))p")
    fi
    [ -n "$target" ] && kill -"$sig" "$target" 2> /dev/null
    wait "$pid" || rc=$?
    return $rc
}
