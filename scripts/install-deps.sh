#!/bin/bash
# Installs every Debian 12 package upq needs to build, test and run (idempotent).
# Usage: scripts/install-deps.sh [--slurm]   (--slurm adds slurm-wlm and munge for the slurm tests)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
PKGS="build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libscalapack-openmpi-dev liblapack-dev libblis-dev libjansson-dev libpcre2-dev libutf8proc-dev liblzma-dev zlib1g-dev
      libssl-dev clang libclang-rt-14-dev xz-utils
      jq procps time"
# jq: the e2e tests read JSON with it; procps: pgrep/ps find MPI ranks to signal; time:
# /usr/bin/time -f %M measures peak RSS in prepare_shards.sh (none is in a minimal
# Debian). The tests use no python3 or bc.
[ "${1:-}" = "--slurm" ] && PKGS="$PKGS slurm-wlm munge"
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "install-deps: this script installs from Debian's archive (apt); install by hand elsewhere:" >&2
  echo "  $PKGS" | tr -s ' \n' ' ' >&2; echo >&2
  exit 1
fi
if ! grep -q '^12\.' /etc/debian_version 2>/dev/null; then
  echo "install-deps: warning: written for Debian 12 (found $(cat /etc/debian_version 2>/dev/null || echo 'no /etc/debian_version'))" >&2
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing:$missing"
$SUDO $APT update -q
$SUDO $APT install -y -q --no-install-recommends $missing
