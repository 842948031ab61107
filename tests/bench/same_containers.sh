#!/bin/bash
# same_containers.sh OLD_UPQ NEW_UPQ [WORKDIR] - are two upq builds' PTQ containers, logits and
# perplexities the same? (issue #11: "behaviour must not change"). Runs rtn W2 g64, gptq W2 g64
# and tesseraq W4 g128 (--init rtn, 2 rounds x 20 steps) of ../shared/models/tinyllama-15m on
# 8 x 128 tokens of tiny shakespeare with each build (SOURCE_DATE_EPOCH pinned, same output
# names, so the files must be byte-identical), then upq logits (64 tokens: kq_gemm; 3: kq_gemv)
# and upq ppl (16 windows of wikitext-2) on the FP model and each container.
# Prints one line per file; exits 1 when anything differs. Not a ctest: about 2 minutes.
set -uo pipefail
OLD=${1:?old upq}; NEW=${2:?new upq}; W=${3:-$(mktemp -d)}
S=${UPQ_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
M=$S/models/tinyllama-15m; C=$S/data/tinyshakespeare/input.txt; TXT=$S/data/wikitext-2-raw/wiki.test.raw
export SOURCE_DATE_EPOCH=1800000000 OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1
T=$(seq -s, 100 37 2431)  # 64 token ids
P="--calib $C --calib-samples 8 --seq-len 128 --quiet"
bad=0
for v in old new; do
  U=$OLD; [ $v = new ] && U=$NEW
  mkdir -p "$W/$v" && cd "$W/$v" || exit 2
  "$U" ptq --model "$M" $P --out rtn.h5 --bits 2 --group 64 --method rtn >/dev/null
  "$U" ptq --model "$M" $P --out gptq.h5 --bits 2 --group 64 --method gptq >/dev/null
  "$U" ptq --model "$M" $P --out tesseraq.h5 --bits 4 --group 128 --method tesseraq --init rtn \
      --tsq-rounds 2 --tsq-steps 20 >/dev/null
  for x in "$M" rtn.h5 gptq.h5 tesseraq.h5; do
    n=$(basename "$x" .h5)
    "$U" logits --model "$x" --tokens "$T" --out "logits64-$n.h5" >/dev/null
    "$U" logits --model "$x" --tokens 5,17,99 --out "logits3-$n.h5" >/dev/null
    "$U" ppl --model "$x" --tokenizer "$M" --text "$TXT" --wikitext --max-windows 16 --quiet > "ppl-$n.txt"
  done
done
cd "$W/new" || exit 2
for f in rtn.h5 gptq.h5 tesseraq.h5; do
  if cmp -s "$f" "../old/$f"; then echo "identical bytes: $f ($(stat -c %s "$f") B)"; else echo "DIFFERS: $f"; bad=1; fi
done
for f in logits*.h5; do
  if h5diff "$f" "../old/$f" >/dev/null; then echo "h5diff equal: $f"; else echo "DIFFERS: $f"; bad=1; fi
done
for f in ppl-*.txt; do
  if cmp -s "$f" "../old/$f"; then echo "same: $f $(cat "$f")"; else echo "DIFFERS: $f: $(cat "$f") vs $(cat "../old/$f")"; bad=1; fi
done
exit $bad
