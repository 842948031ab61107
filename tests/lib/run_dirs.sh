# run_dirs.sh - shell helpers shared by the `upq run` tests (tests/e2e/run_*.sh and,
# through tests/slurm/lib.sh, the Slurm tests); sourced, never run. Expects fail().
# Not a test itself (it lives outside tests/e2e so ctest does not run it).

# cmp_runs A B: every file of two run directories byte for byte, except the empty lock
# files (*.lock) and the files that hold measured speed (eval/*.speed.json and the
# table summary.txt: tokens/s).
cmp_runs() {
  diff -r -x '*.lock' -x '*.speed.json' -x summary.txt "$1" "$2" >&2 || fail "$1 and $2 differ"
  local a b
  a=$(cd "$1" && find . -type f ! -name '*.lock' ! -name '*.speed.json' ! -name summary.txt | sort | xargs sha256sum)
  b=$(cd "$2" && find . -type f ! -name '*.lock' ! -name '*.speed.json' ! -name summary.txt | sort | xargs sha256sum)
  [ "$a" = "$b" ] || fail "hashes of $1 and $2 differ"
  echo "identical: $1 and $2 ($(echo "$a" | wc -l) files)"
}

# wait_for PATH: until PATH exists (polled every 50 ms, 60 s at most).
wait_for() { for _ in $(seq 1200); do [ -e "$1" ] && return 0; sleep 0.05; done; fail "$1 never appeared"; }
