#!/bin/bash
# qat_quality.sh OUTDIR [small] - issue #15's quality rows on a 16-core machine: distillation
# data (the pd-english corpus's first 1.2 MB, and the teacher's chat answers to 1,583
# paragraph prefixes from characters 5,000,000-7,600,000; never the eval tail from
# 35,307,859), FP -> INT4 GPTQ g128, top-64 teacher records, then QAT runs of the same
# budget (80 steps x 16 rows x 512 tokens = 655,360 tokens; R = 4 replicas each, four runs
# at a time on 16 ranks); then `upq eval` of each (all 504 prompts, wikitext-2 test ppl).
# Two data sets: "mix" (corpus + chat answers, one shard set) and "gen" (the chat answers
# only: the teacher-generated continuations), "cor" (the corpus text only). Rows (ROWS, space-separated NAME:DATA:INIT:ARGS
# with INIT w4 = the INT4 container, fp = the FP model, ARGS comma-separated); the default
# is the first table's four rows:
#   upq:mix:w4: ntp:mix:w4:--loss,ce dir:mix:fp: ckl:mix:w4:--loss,cakld
# Phases whose outputs exist in WORK are skipped (a second call on a warm machine goes on);
# EVAL=0 skips the evals (the containers and loss curves are copied to OUTDIR instead, to be
# evaluated elsewhere).
# Staging (here, from the repo root; ../shared/BUNDLE.md for the bundle):
#   ../shared/hpc/mpi-bundle.sh build/src/cli/upq
#   mkdir -p .run-data/m .run-data/qx; M=../shared/models/tinyllama-15m-instruct
#   cp $M/{config.json,tokenizer.json,tokenizer_config.json,chat_template.jinja,generation_config.json,model.safetensors} .run-data/m/
#   cp ../shared/data/instruct-eval/eval.jsonl ../shared/data/wikitext-2-raw/wiki.test.raw .run-data/qx/
#   xz -dc ../shared/data/pd-english/corpus.txt.xz | head -c 12000000 | xz > .run-data/qx/c12m.txt.xz
# There (carry .run-data and .mpi-bundle): .mpi-bundle/run.sh true; tests/bench/qat_quality.sh $OUT
# Locally at toy size: UPQ=build/src/cli/upq WORK=/tmp/qq NP=2 RR=2 tests/bench/qat_quality.sh /tmp/qq-out small
set -u
O=$1; SC=${2:-full}
R=$(pwd)/.run-data; B=.mpi-bundle/run.sh; U=$(pwd)/.mpi-bundle/bin/upq
[ -x "$U" ] || { B=""; U=${UPQ:?}; }
M=$R/m; D=${WORK:-/tmp/x}; mkdir -p $D $O
export OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE SOURCE_DATE_EPOCH=1800000000
NP=${NP:-16}; RR=${RR:-4}
if [ $SC = small ]; then CT=100000; GC=30000; STEPS=2; LIM=4; BATCH=8; else CT=1200000; GC=2600000; STEPS=${STEPS:-80}; LIM=${LIM:-0}; BATCH=16; fi
t0=$(date +%s); ts(){ echo "[$(( $(date +%s)-t0 ))s] $*"; }
[ -s $D/c.txt ] || python3 -c "import lzma,sys;sys.stdout.buffer.write(lzma.open('$R/qx/c12m.txt.xz').read())" > $D/c.txt
head -c $CT $D/c.txt > $D/cq.txt
tail -c +5000001 $D/c.txt | head -c $GC | awk 'BEGIN{RS="";ORS="\n\n"} length($0)>=60' > $D/gp.txt
# GEN_FROM / W4_FROM: the chat answers and the INT4 container of an earlier run, taken as they are
[ -n "${GEN_FROM:-}" ] && [ ! -s $D/g.jsonl ] && cp $GEN_FROM $D/g.jsonl
[ -n "${W4_FROM:-}" ] && [ ! -s $D/w4.h5 ] && cp $W4_FROM $D/w4.h5
if [ ! -s $D/g.jsonl ]; then
  ts gen-data; $B mpirun -np $NP $U gen-data --model $M --prefix-chars 160 --from $D/gp.txt --chat --out $D/g.jsonl --max-new-tokens 128 --seed 1 --quiet 2>&1 | tail -2
fi
wc -l $D/g.jsonl
stage(){ # NAME INPUTS...: token shards $D/d<NAME> and top-64 records $D/t<NAME>
  local n=$1; shift
  [ -d $D/d$n ] || $B $U prepare --model $M --out $D/d$n --seq-len 512 --shard-size 100000 --quiet "$@"
  [ -d $D/t$n ] || $B mpirun -np $NP $U teacher --model $M --data $D/d$n --out $D/t$n --store topk --topk 64 --quiet 2>&1 | tail -1; }
[ "${STAGE_ONLY:-0}" = 1 ] && { $B mpirun -np 8 $U ptq --model $M --calib $D/cq.txt --out $D/w4.h5 --bits 4 --group 128 --method gptq --calib-samples 64 --quiet 2>&1 | tail -1; cp $D/g.jsonl $D/w4.h5 $O/; ts staged; exit 0; }
ts prepare+teacher
stage mix $D/cq.txt $D/g.jsonl
case " ${ROWS:-:mix:} " in *:gen:*) stage gen $D/g.jsonl;; esac
case " ${ROWS:-:mix:} " in *:cor:*) stage cor $D/cq.txt;; esac
ts ptq; [ -s $D/w4.h5 ] || $B mpirun -np 8 $U ptq --model $M --calib $D/cq.txt --out $D/w4.h5 --bits 4 --group 128 --method gptq --calib-samples 64 --quiet 2>&1 | tail -1
ts qat
run(){ n=$1; d=$2; init=$3; shift 3
  [ -s $D/$n.h5 ] && return
  $B mpirun -np $RR $U qat --init $init --teacher $D/t$d --data $D/d$d --out $D/$n.h5 --steps $STEPS --batch $BATCH --micro-batches $RR --replicas $RR --ckpt-every 0 --lr 3e-4 --scale-lr 1e-3 "$@" > $O/qat-$n.log 2>&1; tail -n 4 $O/qat-$n.log; }
names=""
for r in ${ROWS:-upq:mix:w4: ntp:mix:w4:--loss,ce dir:mix:fp: ckl:mix:w4:--loss,cakld}; do
  IFS=: read -r n d i a <<< "$r"; [ $i = fp ] && i=$M || i=$D/w4.h5
  names="$names $n"; run $n $d $i ${a//,/ } &
done
wait
for n in $names; do cp $D/$n.h5.loss.csv $O/ 2>/dev/null; done
if [ "${EVAL:-1}" = 0 ]; then for n in $names; do cp $D/$n.h5 $O/ 2>/dev/null; done; ts done; exit 0; fi
ts eval
for n in $names; do
  ( $B mpirun -np 4 $U eval --model $D/$n.h5 --tokenizer $M --instruct $R/qx/eval.jsonl --limit $LIM --ppl $R/qx/wiki.test.raw --wikitext --json > $O/ev-$n.json 2> $O/ev-$n.err ) &
done
wait; ts done
for f in $O/ev-*.json; do printf '%-10s ' $(basename $f .json); jq -c "[.prompt_strict, .instruction_strict, .ppl.ppl, .generated_tokens_per_s]" $f 2>/dev/null || head -c 300 $f; echo; done
