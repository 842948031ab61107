# stories.sh - the set-up of the e2e tests that train or distil on stories260k with short
# token shards (tests/e2e/qat.sh, qat_sample.sh, teacher.sh); sourced, never run. Expects
# UPQ and UPQ_SHARED_DIR; brings fail() and MPIRUN (e2e.sh).
source "$(dirname "${BASH_SOURCE[0]}")/e2e.sh" # fail, e2e_setup

# stories_setup NAME: M = stories260k, TXT = tinyshakespeare (exit 77 when either is
# absent), W = /tmp/upq_e2e_NAME_XXXXXX (removed at exit), $W/in.txt = TXT's first 3000 bytes.
stories_setup() {
    M="$UPQ_SHARED_DIR/models/stories260k"
    TXT="$UPQ_SHARED_DIR/data/tinyshakespeare/input.txt"
    e2e_setup "/tmp/upq_e2e_$1_XXXXXX" "stories260k or tinyshakespeare under $UPQ_SHARED_DIR is absent" \
        "$M/model.safetensors" "$TXT"
    head -c 3000 "$TXT" > "$W/in.txt"
}

# stories_prepare TEXT OUT [ROWS]: token shards of TEXT with M's tokenizer in OUT, 32
# tokens a row, ROWS rows a shard (default 4).
stories_prepare() {
    "$UPQ" prepare --model "$M" --out "$2" --seq-len 32 --shard-size "${3:-4}" --quiet "$1" > /dev/null
}
