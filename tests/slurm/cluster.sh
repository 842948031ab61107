#!/bin/bash
# cluster.sh - a throw-away one-node Slurm cluster for upq's slurm tests (and by hand):
# munged + slurmctld + slurmd as root WITHOUT systemd or cgroups, everything (config,
# state, logs, pid files, munge socket) under one directory, clients pointed at it by
# SLURM_CONF; nothing in /etc is edited except, when the hostname does not resolve,
# one "127.0.0.1 <hostname>" line in /etc/hosts (asked for: UPQ_SLURM_FIX_HOSTS=1).
#   tests/slurm/cluster.sh start DIR   # prints "export SLURM_CONF=DIR/etc/slurm.conf"
#   tests/slurm/cluster.sh stop DIR    # stops exactly the daemons it started (pid files)
#   tests/slurm/cluster.sh install     # slurm-wlm + munge from Debian (scripts/install-deps.sh --slurm)
# Two partitions: debug (default, GraceTime 15 s) and high (PriorityTier 10, preempts
# debug jobs by REQUEUE). Requeued jobs restart after about 7-12 s: cred_expire=5 and
# a 1-2 s scheduler (../shared/HPC-NOTES.md section 6, item 6). Ports are derived from
# the DIR so two clusters do not collide. Not a production configuration.
set -euo pipefail
cmd=${1:-}
R=${2:-}

conf() {
  local cpus mem port
  # nproc honours OMP_NUM_THREADS (1 in the tests): ask for the online CPUs; at least
  # 2 so that 2-task jobs run on a 1-core machine too (config_overrides allows it)
  cpus=${UPQ_SLURM_CPUS:-$(getconf _NPROCESSORS_ONLN)}
  [ "$cpus" -ge 2 ] || cpus=2
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  port=$(( 20000 + $(echo "$R" | cksum | cut -d' ' -f1) % 20000 ))
  cat <<CONF
ClusterName=upqtest
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$(( port + 1 ))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$R/munge/munge.socket.2,cred_expire=5
StateSaveLocation=$R/state
SlurmdSpoolDir=$R/spool
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
MinJobAge=600
KillWait=5
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=15
PartitionName=high Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=10
CONF
}

alive() { [ -e "/proc/$1" ] && ! grep -q ') Z' "/proc/$1/stat"; }

start() {
  [ -n "$R" ] || { echo "cluster.sh start DIR" >&2; exit 1; }
  command -v slurmctld >/dev/null && command -v munged >/dev/null \
    || { echo "cluster.sh: slurm-wlm/munge not installed (cluster.sh install)" >&2; exit 1; }
  if ! getent hosts "$(hostname)" >/dev/null; then
    if [ "${UPQ_SLURM_FIX_HOSTS:-0}" = 1 ]; then echo "127.0.0.1 $(hostname)" >> /etc/hosts
    else echo "cluster.sh: note: hostname $(hostname) does not resolve (slurmd start is ~10 s slower)" >&2; fi
  fi
  mkdir -p "$R"/{etc,state,spool,log,run,munge}
  chmod 0755 "$R"         # mktemp -d makes it 0700: munged (user munge) must reach its files
  chown munge:munge "$R/munge"
  chmod 0711 "$R/munge"   # munged: "execute permissions for all required" on the socket dir
  [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
  conf > "$R/etc/slurm.conf"
  export SLURM_CONF=$R/etc/slurm.conf
  runuser -u munge -- /usr/sbin/munged --socket="$R/munge/munge.socket.2" --pid-file="$R/munge/munged.pid" \
    --log-file="$R/munge/munged.log" --seed-file="$R/munge/munged.seed"
  slurmctld
  slurmd
  local st=""
  for _ in $(seq 120); do
    st=$(sinfo -h -o %T 2>/dev/null | sort -u | tr '\n' ' ' || true)
    [ "$st" = "idle " ] && { echo "export SLURM_CONF=$SLURM_CONF"; return 0; }
    sleep 0.5
  done
  echo "cluster.sh: node did not become idle (state '$st'); logs in $R/log" >&2
  stop
  exit 1
}

stop() {
  [ -n "$R" ] || { echo "cluster.sh stop DIR" >&2; exit 1; }
  export SLURM_CONF=$R/etc/slurm.conf
  # jobs first: slurmd's shutdown leaves running job steps behind
  if [ -s "$R/run/slurmctld.pid" ] && alive "$(cat "$R/run/slurmctld.pid")"; then
    local ids
    ids=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$ids" ]; then
      timeout 10 scancel $ids 2>/dev/null || true
      for _ in $(seq 60); do [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.5; done
    fi
    timeout 10 scontrol shutdown >/dev/null 2>&1 || true
  fi
  for f in "$R/run/slurmd.pid" "$R/run/slurmctld.pid" "$R/munge/munged.pid"; do
    [ -s "$f" ] || continue
    local pid
    pid=$(cat "$f")
    alive "$pid" && kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do alive "$pid" || break; sleep 0.25; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  install) "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/install-deps.sh" --slurm ;;
  *) echo "usage: cluster.sh start DIR | stop DIR | install" >&2; exit 1 ;;
esac
