# lib.sh - sourced by tests/e2e/slurm_*.sh: brings up a private one-node Slurm cluster
# (tests/slurm/cluster.sh) under /tmp/upq-slurm-XXXXXX for the test and always stops
# it (its daemons by PID) on exit; helpers to wait for jobs and read their fields.
# Slurm and munge are installed from Debian only in CI (CI set) or when asked
# (UPQ_SLURM_INSTALL=1); otherwise the test is SKIPPED (exit 77) with a loud message.
: "${UPQ:?set UPQ to the upq binary}" "${UPQ_SOURCE_DIR:?set UPQ_SOURCE_DIR}"
CLUSTER="$UPQ_SOURCE_DIR/tests/slurm/cluster.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }

slurm_teardown() {
  [ -n "${SLURM_DIR:-}" ] || return 0
  if [ -n "${SLURM_FAILED:-}" ]; then
    echo "---- job logs"; tail -n 40 "$SLURM_DIR"/work/*.out 2>/dev/null || true
    echo "---- slurmctld log"; tail -n 30 "$SLURM_DIR/log/slurmctld.log" 2>/dev/null || true
  fi
  "$CLUSTER" stop "$SLURM_DIR" || true
  [ "${UPQ_KEEP_SLURM:-0}" = 1 ] && echo "kept $SLURM_DIR" || rm -rf "$SLURM_DIR"
}

slurm_setup() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    if [ -n "${CI:-}" ] || [ "${UPQ_SLURM_INSTALL:-0}" = 1 ]; then
      "$CLUSTER" install
    else
      echo "SKIPPED: slurm-wlm/munge are not installed; run scripts/install-deps.sh --slurm" \
           "(or set UPQ_SLURM_INSTALL=1) to run the Slurm tests" >&2
      exit 77
    fi
  fi
  [ "$(id -u)" = 0 ] || { echo "SKIPPED: the test cluster runs slurmd as root" >&2; exit 77; }
  SLURM_DIR=$(mktemp -d /tmp/upq-slurm-XXXXXX)
  trap 'rc=$?; [ $rc -ne 0 ] && SLURM_FAILED=1; slurm_teardown; exit $rc' EXIT
  trap 'exit 143' TERM INT   # ctest's timeout: still stop the daemons (EXIT trap)
  local out
  out=$("$CLUSTER" start "$SLURM_DIR") || fail "could not start the test cluster"
  eval "$out"
  export SLURM_CONF
  WORK=$SLURM_DIR/work
  mkdir -p "$WORK"
  cd "$WORK"
}

# job_field ID FIELD: one field of `scontrol show job` (first array element for arrays)
job_field() { scontrol show job -o "$1" 2>/dev/null | head -n1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# wait_job ID [SECONDS]: until the job (every element of an array) has ended; prints
# the final states, one per line. Requeued jobs (PENDING again) are waited for.
wait_job() {
  local id=$1 limit=${2:-600} t=0 states
  while :; do
    states=$(scontrol show job -o "$id" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p')
    [ -n "$states" ] || fail "job $id unknown to slurmctld"
    if ! echo "$states" | grep -qvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)$'; then
      echo "$states"
      return 0
    fi
    [ $t -ge $limit ] && fail "job $id still not finished after ${limit}s: $(echo $states)"
    sleep 1; t=$((t + 1))
  done
}

# wait_file PATH [SECONDS]
wait_file() { local t=0; while [ ! -e "$1" ]; do [ $t -ge ${2:-600} ] && fail "$1 never appeared"; sleep 0.2; t=$((t + 1)); done; }

# cmp_runs A B: every file of two run directories byte for byte (shared with the e2e run tests).
source "$UPQ_SOURCE_DIR/tests/lib/run_dirs.sh"
