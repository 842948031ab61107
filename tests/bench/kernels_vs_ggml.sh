#!/bin/bash
# kernels_vs_ggml.sh - upq's packed mat-vec (INT2 g64, INT4 g128; stored layout and the
# run-time repacked copy) against llama.cpp's CPU MUL_MAT (Q2_K, Q4_0; plain buffer and
# the CPU_REPACK 8x8 layouts its model loader uses) on 4096x4096, M = 1 and 8, 1 and 2
# threads, all streamed from DRAM and timed the same way (time per matrix over a pool of
# distinct matrices bigger than the L3; median of 7 passes), in one run. Prints one table
# with the read bandwidth measured interleaved with upq's kernel passes, each kernel's
# ratio to its bandwidth floor, and the speedups over repacked Q2_K / Q4_0.
# A benchmark, not a ctest.
#   tests/bench/kernels_vs_ggml.sh GGML_BUILD_DIR [--threads 1,2] [--m 1,8] [--pool-mib 384]
# GGML_BUILD_DIR: a cmake build of the standalone ggml repository (github.com/ggml-org/ggml)
# outside this project, e.g.
#   git clone https://github.com/ggml-org/ggml /tmp/ggml && cd /tmp/ggml &&
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON &&
#   cmake --build build -j --target ggml
# The peer harness (tests/bench/ggml_mulmat_pool.c) is compiled against it here, in a
# temporary directory. Environment: UPQ (upq binary; default build/src/cli/upq).
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 GGML_BUILD_DIR [--threads 1,2] [--m 1,8] [--pool-mib 384]" >&2; exit 2; }
GB="$(cd "$1" && pwd)"; shift
THREADS=1,2; MS=1,8; POOL=384
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift ;;
    --m) MS="$2"; shift ;;
    --pool-mib) POOL="$2"; shift ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
GSRC="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$GB/CMakeCache.txt")"
[ -f "$GSRC/include/ggml.h" ] || { echo "$0: $GB is not a ggml cmake build dir (no CMakeCache.txt pointing at ggml sources)" >&2; exit 2; }
LIBDIR="$(dirname "$(find "$GB" -name 'libggml-cpu.so' -o -name 'libggml-cpu.a' | head -1)")"
[ -n "$LIBDIR" ] && [ "$LIBDIR" != . ] || { echo "$0: no libggml-cpu in $GB (build the ggml target)" >&2; exit 2; }
UPQ="${UPQ:-$SRC/build/src/cli/upq}"
[ -x "$UPQ" ] || { echo "$0: no upq binary at $UPQ (build it or set UPQ)" >&2; exit 2; }
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
cc -O2 -o "$TMP/gmp" "$SRC/tests/bench/ggml_mulmat_pool.c" -I"$GSRC/include" -L"$LIBDIR" \
   -lggml -lggml-base -lggml-cpu -Wl,-rpath,"$LIBDIR"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

GCOMMIT="$(git -C "$GSRC" log -1 --format='%h %cd' --date=short 2>/dev/null || echo unknown)"
GFLAGS="$(grep -E '^(CMAKE_BUILD_TYPE|GGML_NATIVE|GGML_OPENMP|GGML_AVX512[A-Z_]*|GGML_CPU_REPACK|CMAKE_C_FLAGS):' "$GB/CMakeCache.txt" | sed 's/:[A-Z]*=/=/' | tr '\n' ' ')"
echo "# cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cpus; upq $(git -C "$SRC" log -1 --format=%h)"
echo "# ggml $GCOMMIT; $GFLAGS"
echo "# 4096x4096, weights cycled through $POOL MiB; us = median per matrix of 7 passes [min-max]"

row() { # kind label M t us lo hi extra
  printf '%-8s %-22s M %-2s t %s %9.1f us [%8.1f-%8.1f] %s\n' "$@"
}
declare -A T L
for t in ${THREADS//,/ }; do
  for m in ${MS//,/ }; do
    # upq: one run gives the stored and repacked lines, each with the bandwidth
    # measured interleaved with its passes (median and range) and the floor ratio
    "$UPQ" bench kernels --json --only gemv --shapes 4096x4096 --formats 2g64,4g128 --m "$m" \
        --threads "$t" --pool-mib "$POOL" > "$TMP/upq.json"
    # '*': the layout kq_gemv reads at this M in a model that holds both (JSON "used")
    while read -r k bits g us lo hi bw bwlo bwhi fl r used; do
      lab="$k int$bits g$g"
      row upq "$lab" "$m" "$t" "$us" "$lo" "$hi" "$(printf 'bw %.1f GB/s [%.1f-%.1f] floor %.1f us: %.2f x bw%s' "$bw" "$bwlo" "$bwhi" "$fl" "$r" "$([ "$used" = true ] && echo ' *')")"
      if [ "$used" = true ]; then
        T["int$bits g$g/$m/$t"]="$us"
        case "$k" in *_rp) L["int$bits g$g/$m/$t"]=rp ;; *) L["int$bits g$g/$m/$t"]=stored ;; esac
      fi
    done < <(jq -r 'select(.kernel | startswith("gemv_")) | [.kernel, .bits, .group, .us, .us_lo, .us_hi, .bw_gbps, .bw_lo, .bw_hi, .floor_us, .ratio_bw, .used] | @tsv' "$TMP/upq.json")
    for ty in q2_K q4_0; do
      for b in repack plain; do
        out="$("$TMP/gmp" "$ty" "$m" "$t" "$b" "$POOL" 4096 4096 2>/dev/null)"
        read -r us lo hi < <(echo "$out" | sed -E 's/.*: ([0-9.]+) us \[([0-9.]+)-([0-9.]+)\].*/\1 \2 \3/')
        row ggml "$ty $b" "$m" "$t" "$us" "$lo" "$hi" "$(echo "$out" | sed -E 's/.*per matrix, //')"
        T["$ty $b/$m/$t"]="$us"
      done
    done
  done
done
echo
echo "# speedup = llama.cpp time / upq time of the layout kq_gemv reads at that M (same run; >= 1.5 wanted for INT2 g64 vs repacked Q2_K, >= 1.3 for INT4 g128 vs repacked Q4_0)"
printf '%-3s %-3s %-24s %-24s %-30s %-30s\n' t M "int2g64 vs q2_K repack" "int2g64 vs q2_K plain" "int4g128 vs q4_0 repack" "int4g128 vs q4_0 plain"
for t in ${THREADS//,/ }; do
  for m in ${MS//,/ }; do
    u2="${T["int2 g64/$m/$t"]:-}"; u4="${T["int4 g128/$m/$t"]:-}"; l4="(${L["int4 g128/$m/$t"]:-?})"
    ratio() { [ -n "$1" ] && [ -n "$2" ] && echo "scale=2; $2 / $1" | bc || echo n/a; }
    printf '%-3s %-3s %-24s %-24s %-30s %-30s\n' "$t" "$m" "$(ratio "$u2" "${T["q2_K repack/$m/$t"]}")" \
      "$(ratio "$u2" "${T["q2_K plain/$m/$t"]}")" "$(ratio "$u4" "${T["q4_0 repack/$m/$t"]}") $l4" "$(ratio "$u4" "${T["q4_0 plain/$m/$t"]}") $l4"
  done
done
