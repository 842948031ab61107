#!/usr/bin/env bash
# cli_numbers.sh - every subcommand's number options go through cli_parse_int /
# cli_parse_num: junk, out-of-range and negative values exit 1 with
# "upq CMD: OPT wants an integer in [lo, hi], got 'V'" (or ">= lo", or "a number in"),
# before any file is touched; a valid value passes the parser (then fails later on the
# missing input, with another message). No model needed.
set -euo pipefail
: "${UPQ:?set UPQ to the upq binary}"
WORK=$(mktemp -d /tmp/upq_e2e_clinum_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
n=0
bad() { # literal-expected-message command...
    local want=$1 rc=0
    shift
    "$UPQ" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [[ $rc -eq 1 ]] || { cat "$WORK/err" >&2; fail "'upq $*' exited $rc, want 1"; }
    grep -qF -- "$want" "$WORK/err" || fail "'upq $*': stderr '$(cat "$WORK/err")' lacks '$want'"
    n=$((n + 1))
}
bad "upq ppl: --ctx wants an integer >= 2, got 'abc'" ppl --model m --tokens t --ctx abc
bad "upq ppl: --ctx wants an integer >= 2, got '0'" ppl --model m --tokens t --ctx 0
bad "upq ppl: --batch wants an integer >= 1, got '-1'" ppl --model m --tokens t --batch -1
bad "upq ppl: --max-windows wants an integer >= 0, got '3x'" ppl --model m --tokens t --max-windows 3x
bad "upq ppl: --ctx wants an integer >= 2, got '99999999999999999999'" ppl --model m --tokens t --ctx 99999999999999999999
bad "upq ptq: --bits wants an integer in [1, 2147483647], got '4294967300'" ptq --bits 4294967300
bad "upq ptq: --group wants an integer in [0, 2147483647], got '-64'" ptq --group -64
bad "upq ptq: --damp wants a number in [0, 1e+06], got 'abc'" ptq --damp abc
bad "upq ptq: --tsq-lr wants a number in [0, 1e+06], got '-1'" ptq --tsq-lr -1
bad "upq ptq: --seq-len wants an integer >= 2, got '1'" ptq --seq-len 1
bad "upq demo-model: --threads wants an integer in [1, 1024], got '-1'" demo-model --threads -1 "$WORK/d"
bad "upq demo-model: --max-seconds wants a number in" demo-model --max-seconds 0 "$WORK/d"
bad "upq run: --sweep-index wants an integer >= 0, got '-2'" run --sweep-index -2 job.ini
bad "upq generate: --max-new-tokens wants an integer in [1, 1000000000], got '2.5'" generate --max-new-tokens 2.5
bad "upq generate: --top-p wants a number in" generate --top-p 2
bad "upq prepare: --seq-len wants an integer in [2, 100000000], got '1e3'" prepare --seq-len 1e3
bad "upq prepare: --val-fraction wants a number in" prepare --val-fraction 1
bad "upq bench forward: --repeats wants an integer in [1, 1000], got '0'" bench forward --repeats 0
bad "upq bench tokenizer: --ctx wants an integer in [2, 2147483647], got '1'" bench tokenizer --ctx 1
bad "upq bench kernels: --pool-mib wants an integer in [1," bench kernels --pool-mib 0
bad "upq bench scalapack: --nb wants an integer in [1, 1048576], got 'x'" bench scalapack --nb x
# A valid number passes the parser: the failure is then about the missing input.
rc=0
"$UPQ" ppl --model "$WORK/none" --tokens "$WORK/none.h5" --ctx 16 --quiet 2>"$WORK/err" || rc=$?
[[ $rc -ne 1 ]] && ! grep -q wants "$WORK/err" || fail "valid --ctx 16 rejected: $(cat "$WORK/err")"
echo "cli_numbers: $n bad values rejected with the option and its range"
