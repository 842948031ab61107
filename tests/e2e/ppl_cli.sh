#!/usr/bin/env bash
# ppl_cli.sh - `upq ppl` as a command on a 3-window prefix of stories260k's wikitext
# stream: the exact stdout line format, --json keys, the progress line on stderr
# (plain lines when stderr is not a tty), the same result under mpirun -np 2 and
# with another --batch, and the failure exits: missing dataset / file / model -> 2,
# ctx above max_position_embeddings -> 2, bad options -> 1.
# Skips (77) without ../shared.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SHARED_DIR:?}"
M="$UPQ_SHARED_DIR/models/stories260k"
if [[ ! -f "$M/golden.h5" ]]; then
    echo "SKIPPED: $M is absent (set UPQ_SHARED_DIR)" >&2
    exit 77
fi
WORK=$(mktemp -d /tmp/upq_e2e_pplcli_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
TOK="$M/golden.h5:/eval/wikitext2_test_token_ids"
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$UPQ_SOURCE_DIR/tests/lib/num.sh" # is_num, num_le, num_lt, num_rel, NUM_AWK

out=$("$UPQ" ppl --model "$M" --tokens "$TOK" --ctx 512 --max-windows 3 2>"$WORK/err")
[[ "$out" =~ ^ppl=[0-9]+\.[0-9]+\ nll=[0-9]+\.[0-9]+\ windows=3\ predicted=1533$ ]] || fail "stdout line: '$out'"
grep -q "^ppl: window 3/3  .* tokens/s  ETA 0s$" "$WORK/err" || fail "progress line: $(cat "$WORK/err")"
json=$("$UPQ" ppl --model "$M" --tokens "$TOK" --ctx 512 --max-windows 3 --json --quiet --batch 2 2>"$WORK/err2")
[[ ! -s "$WORK/err2" ]] || fail "--quiet printed: $(cat "$WORK/err2")"
for k in ppl nll windows predicted; do grep -q "\"$k\": " <<<"$json" || fail "JSON lacks $k: $json"; done
ppl1=$(sed 's/^ppl=\([^ ]*\) .*/\1/' <<<"$out")
ppl2=$(sed 's/.*"ppl": \([^,]*\),.*/\1/' <<<"$json")
num_lt "$(num_rel "$ppl1" "$ppl2")" 1e-6 || fail "batch 2 gives $ppl2, batch 4 $ppl1"
out_mpi=$(${MPIEXEC:-mpirun} -np 2 "$UPQ" ppl --model "$M" --tokens "$TOK" --ctx 512 --max-windows 3 --quiet)
[[ "$out_mpi" == "$out" ]] || fail "np 2 gives '$out_mpi', np 1 '$out'"
echo "ppl: $out (json, batch 2 and np 2 agree)"

expect_rc() { # expected-rc grep-pattern command...
    local want=$1 pat=$2 rc=0
    shift 2
    "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [[ $rc -eq $want ]] && grep -q -- "$pat" "$WORK/err" || { cat "$WORK/err" >&2; fail "'$*' gave rc $rc (want $want)"; }
}
expect_rc 2 "no dataset '/nope'" "$UPQ" ppl --model "$M" --tokens "$M/golden.h5:/nope" --quiet
expect_rc 2 "cannot open" "$UPQ" ppl --model "$M" --tokens "$WORK/none.h5" --quiet
expect_rc 2 "not an integer dataset" "$UPQ" ppl --model "$M" --tokens "$M/golden.h5:/logits" --quiet
expect_rc 2 "max_position_embeddings" "$UPQ" ppl --model "$M" --tokens "$TOK" --ctx 1024 --quiet
expect_rc 2 "no such model" "$UPQ" ppl --model "$WORK/nomodel" --tokens "$TOK" --quiet
expect_rc 1 "ctx" "$UPQ" ppl --model "$M" --tokens "$TOK" --ctx 1
expect_rc 1 "--batch wants an integer >= 1, got .x." "$UPQ" ppl --model "$M" --tokens "$TOK" --batch x
expect_rc 1 "required" "$UPQ" ppl --model "$M"
expect_rc 1 "unknown" "$UPQ" ppl --model "$M" --tokens "$TOK" --bogus
echo "ppl: error exits ok"
