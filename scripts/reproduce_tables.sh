#!/usr/bin/env bash
# Reproduces the method's tables (ELLM-rele + MKD ablations, DESIGN §1 and §6) on
# a relevance dataset, end to end, and writes results.md / results.json.
#
#   scripts/reproduce_tables.sh --data DIR [--test FILE] [--out DIR] [--quick]
#                               [--config FILE.env] [--folds K] [--seeds "1 2 3"]
#                               [--jobs N] [--dry-run]
#
# --data   a Home Depot-layout directory (train.tsv, dev.tsv) or a directory of
#          canonical pairs (train.pairs.jsonl, dev.pairs.jsonl, dataset.json);
#          default ../shared/data/home_depot when present.
# --test   pairs file to report on (default: the dev split). It is used for
#          nothing else: checkpoints are chosen on dev by ellm distill, and every
#          threshold is the best-F1 threshold on dev (ellm eval --threshold-from).
# --out    output directory (default runs/tables, runs/tables-quick with --quick).
# --quick  configs/reproduce/quick.env on top of the defaults (minutes, not hours).
# --config parameters (sizes, steps, seeds, folds) — configs/reproduce/default.env
#          documents every key; the same script scales to a GPU cluster with a
#          bigger config.
# --dry-run  print the commands instead of running them.
#
# Stages (one directory each under --out; a stage that finished has a .done
# marker and is skipped when the script is run again):
#   data/        prepare + cut + K query-disjoint folds of train
#   annotate/    CoTs from the annotators: all of train, and train minus each fold
#   tokenizer/   teacher and student SentencePiece models
#   finetune/    teacher with CoT, teacher without CoT (ablation), one CoT teacher per fold
#   teacher/     teacher outputs: on dev/test (its own metrics), out-of-fold on
#                train (the students' targets), rule-BIO targets from the annotator's CoT
#   students/    ellm distill: STUDENTS × VARIANTS × SEEDS
#   eval-dev/    reports on dev (thresholds), eval-test/ reports on --test
#   results.md, results.json   ellm eval aggregate over eval-test/
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA="" TEST="" OUT="" QUICK=0 CONFIG="" DRY=0
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --test) TEST=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --config) CONFIG=$2; shift 2 ;;
    --folds) export FOLDS=$2; shift 2 ;;
    --seeds) export SEEDS=$2; shift 2 ;;
    --jobs) export JOBS=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "reproduce_tables.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$DATA" ] && [ -d "$ROOT/../shared/data/home_depot" ]; then DATA="$ROOT/../shared/data/home_depot"; fi
[ -n "$DATA" ] || { echo "reproduce_tables.sh: --data DIR is required (no ../shared/data/home_depot here)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "reproduce_tables.sh: --data $DATA is not a directory" >&2; exit 2; }
[ -z "$TEST" ] || [ -f "$TEST" ] || { echo "reproduce_tables.sh: --test $TEST: no such file" >&2; exit 2; }
[ -n "$OUT" ] || { [ "$QUICK" = 1 ] && OUT=runs/tables-quick || OUT=runs/tables; }
DATA=$(cd "$DATA" && pwd)
[ -z "$TEST" ] || TEST=$(cd "$(dirname "$TEST")" && pwd)/$(basename "$TEST")

# Parameters: each file only sets what is not set yet (KEY=${KEY:-value}), so the
# environment wins over --quick, which wins over --config / the defaults.
[ "$QUICK" = 1 ] && . "$ROOT/configs/reproduce/quick.env"
# shellcheck source=/dev/null
[ -z "$CONFIG" ] || . "$CONFIG"
. "$ROOT/configs/reproduce/default.env"

ELLM=${ELLM:-$ROOT/build/ellm}
if [ "$DRY" = 0 ] && [ ! -x "$ELLM" ]; then "$ROOT/scripts/build.sh"; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT"
# Tiny models: several 1-thread processes side by side beat one multi-thread one.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# run CMD...: runs (or, with --dry-run, prints) one command; every command goes to commands.log.
run() {
  printf '%q ' "$@" >> "$OUT/commands.log"; echo >> "$OUT/commands.log"
  if [ "$DRY" = 1 ]; then printf '%q ' "$@"; echo; return 0; fi
  "$@"
}
done_mark() { [ "$DRY" = 0 ] && [ -f "$1/.done" ]; }
mark_done() { [ "$DRY" = 1 ] || { mkdir -p "$1" && touch "$1/.done"; }; }

# A pool of background jobs, at most $JOBS at a time; each logs to logs/NAME.log.
declare -a POOL_PIDS=() POOL_NAMES=()
pool_run() {
  local name=$1; shift
  if [ "$DRY" = 1 ]; then "$@"; return 0; fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  mkdir -p "$OUT/logs"
  ( "$@" ) > "$OUT/logs/$name.log" 2>&1 &
  POOL_PIDS+=($!); POOL_NAMES+=("$name")
  log "started $name (log: $OUT/logs/$name.log)"
}
pool_wait() {
  local failed=() i
  for i in "${!POOL_PIDS[@]}"; do
    wait "${POOL_PIDS[$i]}" || failed+=("${POOL_NAMES[$i]}")
  done
  POOL_PIDS=(); POOL_NAMES=()
  [ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (logs in $OUT/logs/)"
}

# First N lines of a JSONL file (N = 0: all).
cut_lines() { if [ "$2" -gt 0 ]; then head -n "$2" "$1"; else cat "$1"; fi; }

# ---- data -------------------------------------------------------------------
D=$OUT/data
stage_data() {
  done_mark "$D" && return 0
  log "data: $DATA"
  local src=$D/prepared
  if [ -f "$DATA/train.tsv" ]; then
    run "$ELLM" prepare --format home_depot --input "$DATA" --out "$src"
  elif [ -f "$DATA/train.pairs.jsonl" ]; then
    src=$DATA
  else
    die "$DATA holds neither train.tsv (Home Depot layout) nor train.pairs.jsonl (canonical pairs)"
  fi
  [ "$DRY" = 1 ] && return 0
  mkdir -p "$D"
  [ -f "$src/dataset.json" ] && cp "$src/dataset.json" "$D/dataset.json"
  cut_lines "$src/train.pairs.jsonl" "$MAX_TRAIN_PAIRS" > "$D/train.pairs.jsonl"
  cut_lines "$src/dev.pairs.jsonl" "$MAX_DEV_PAIRS" > "$D/dev.pairs.jsonl"
  # The test pairs sit beside dataset.json so that every stage reads one grade scale.
  if [ -n "$TEST" ]; then cut_lines "$TEST" "$MAX_TEST_PAIRS" > "$D/test.pairs.jsonl"
  else cp "$D/dev.pairs.jsonl" "$D/test.pairs.jsonl"; fi
  # ellm distill trains on the train split and stops early on dev.
  cat "$D/train.pairs.jsonl" "$D/dev.pairs.jsonl" > "$D/train_dev.pairs.jsonl"
  # K query-disjoint folds: queries numbered in order of first appearance, fold = number mod K.
  awk -v K="$FOLDS" -v dir="$D" '
    { q = ""
      if (match($0, /"query_id"[ ]*:[ ]*"[^"]*"/)) q = substr($0, RSTART, RLENGTH)
      else if (match($0, /"query"[ ]*:[ ]*"([^"\\]|\\.)*"/)) q = substr($0, RSTART, RLENGTH)
      if (!(q in fold)) fold[q] = (n++) % K
      for (k = 0; k < K; k++) {
        if (fold[q] == k) print > (dir "/fold-" k ".pairs.jsonl")
        else print > (dir "/fold-" k "-rest.pairs.jsonl")
      } }' "$D/train.pairs.jsonl"
  log "data: $(wc -l < "$D/train.pairs.jsonl") train, $(wc -l < "$D/dev.pairs.jsonl") dev, $(wc -l < "$D/test.pairs.jsonl") test pairs; $FOLDS folds"
  mark_done "$D"
}

# ---- annotate ---------------------------------------------------------------
A=$OUT/annotate
annotate() {  # annotate PAIRS OUTDIR
  local specs=() s
  for s in $ANNOTATORS; do specs+=(--annotator "$s"); done
  run "$ELLM" annotate --pairs "$1" --out "$2" "${specs[@]}" --policy "$ANNOTATE_POLICY"
}
stage_annotate() {
  done_mark "$A" && return 0
  log "annotate: $ANNOTATORS"
  # Each fold teacher learns only from the annotations of the pairs it will not label.
  pool_run annotate-all annotate "$D/train.pairs.jsonl" "$A/all"
  for k in $(seq 0 $((FOLDS - 1))); do
    pool_run "annotate-fold-$k" annotate "$D/fold-$k-rest.pairs.jsonl" "$A/fold-$k"
  done
  pool_wait
  mark_done "$A"
}

# ---- tokenizers ---------------------------------------------------------------
T=$OUT/tokenizer
stage_tokenizer() {
  done_mark "$T" && return 0
  log "tokenizer: teacher $TEACHER_VOCAB, student $STUDENT_VOCAB pieces"
  mkdir -p "$T"
  # Corpus: the queries and item titles of the training pairs, one text per line
  # (JSON string escapes other than \" are left as they are: harmless for a vocabulary).
  if [ "$DRY" = 0 ]; then
    sed -n -e 's/.*"query"[ ]*:[ ]*"\(\([^"\\]\|\\.\)*\)".*/\1/p' -e 's/.*"title"[ ]*:[ ]*"\(\([^"\\]\|\\.\)*\)".*/\1/p' \
      "$D/train.pairs.jsonl" | sed 's/\\"/"/g' > "$T/corpus.txt"
  fi
  # The teacher also reads its instruction (once per example: weighted here so that its words
  # become whole pieces) and writes CoTs: their words belong in its vocabulary, and the
  # chat-format markers must stay whole.
  if [ "$DRY" = 0 ]; then
    local prompt system
    prompt=$(sed -n 's/.*"prompt"[ ]*:[ ]*"\([^"]*\)".*/\1/p' "$FINETUNE_CONFIG" | head -n 1)
    [ -f "$prompt" ] || prompt=configs/prompts/teacher.json
    system=$(sed -n 's/.*"system"[ ]*:[ ]*"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$prompt" | head -n 1)
    { cat "$T/corpus.txt"; for _ in $(seq 200); do echo "$system"; done; head -n 5000 "$A/all/annotations.jsonl"; } \
      > "$T/teacher-corpus.txt"
  fi
  run "$ELLM" tokenizer train --input "$T/teacher-corpus.txt" --model-type unigram --vocab-size "$TEACHER_VOCAB" \
    --user-symbols '<|im_start|>,<|im_end|>,<|endoftext|>' --model-prefix "$T/teacher"
  run "$ELLM" tokenizer train --input "$T/corpus.txt" --model-type unigram --vocab-size "$STUDENT_VOCAB" \
    --model-prefix "$T/student"
  mark_done "$T"
}

# ---- teachers: fine-tune -----------------------------------------------------------
F=$OUT/finetune
finetune() {  # finetune ANNOTATIONS OUTDIR COT(true|false)
  local sets=(--set "$FINETUNE_KEY_ANNOTATIONS=$1" --set "$FINETUNE_KEY_TOKENIZER=$T/teacher.model"
              --set "$FINETUNE_KEY_COT=$3" --set "$FINETUNE_KEY_MAX_STEPS=$TEACHER_MAX_STEPS"
              --set "$FINETUNE_KEY_SEED=0") s
  for s in $FINETUNE_SETS; do sets+=(--set "$s"); done
  run "$ELLM" --threads 1 finetune --config "$FINETUNE_CONFIG" --out "$2" "${sets[@]}" --resume auto
}
stage_finetune() {
  done_mark "$F" && return 0
  log "finetune: CoT teacher, no-CoT teacher, $FOLDS fold teachers ($TEACHER_MAX_STEPS steps each)"
  pool_run finetune-cot finetune "$A/all/annotations.jsonl" "$F/cot" true
  pool_run finetune-no-cot finetune "$A/all/annotations.jsonl" "$F/no-cot" false
  for k in $(seq 0 $((FOLDS - 1))); do
    pool_run "finetune-fold-$k" finetune "$A/fold-$k/annotations.jsonl" "$F/fold-$k" true
  done
  pool_wait
  mark_done "$F"
}

# ---- teachers: inference and targets ---------------------------------------------
TO=$OUT/teacher
teacher() {  # teacher MODEL PAIRS OUTDIR [--no-cot]
  run "$ELLM" --threads 1 teacher --model "$1" --pairs "$2" --student-tokenizer "$T/student.model" --out "$3" \
    --batch "$TEACHER_BATCH" --max-new-tokens "$TEACHER_MAX_NEW_TOKENS" "${@:4}"
}
stage_teacher() {
  done_mark "$TO" && return 0
  log "teacher: dev/test outputs of both teachers, out-of-fold targets on train, rule-BIO targets"
  local split k splits=dev
  # Without --test, test.pairs.jsonl is a copy of dev: its teacher outputs are copied, not recomputed.
  [ -n "$TEST" ] && splits="dev test"
  for split in $splits; do
    pool_run "teacher-cot-$split" teacher "$F/cot/final" "$D/$split.pairs.jsonl" "$TO/cot-$split"
    pool_run "teacher-no-cot-$split" teacher "$F/no-cot/final" "$D/$split.pairs.jsonl" "$TO/no-cot-$split" --no-cot
  done
  for k in $(seq 0 $((FOLDS - 1))); do
    pool_run "teacher-fold-$k" teacher "$F/fold-$k/final" "$D/fold-$k.pairs.jsonl" "$TO/fold-$k"
  done
  # rule-BIO control: the same target files, built from the attribute annotator's
  # CoTs instead of the teacher's generations.
  pool_run teacher-rule run "$ELLM" teacher from-annotations --annotations "$A/all/annotations.jsonl" --pairs "$D/train.pairs.jsonl" \
    --student-tokenizer "$T/student.model" --out "$TO/rule"
  pool_wait
  if [ -z "$TEST" ]; then
    for k in cot no-cot; do run rm -rf "$TO/$k-test"; run cp -r "$TO/$k-dev" "$TO/$k-test"; done
  fi
  # One target set for all of train, each pair labelled by the teacher that did not see it.
  local shards=()
  for k in $(seq 0 $((FOLDS - 1))); do shards+=("$TO/fold-$k"); done
  run "$ELLM" teacher merge --pairs "$D/train.pairs.jsonl" --out "$TO/oof" "${shards[@]}"
  mark_done "$TO"
}

# ---- students ---------------------------------------------------------------------
S=$OUT/students
distill() {  # distill STUDENT VARIANT SEED
  local student=$1 variant=$2 seed=$3 alpha=0 beta=0 teacher_dir="" cot_key=bio base=ce
  [ "$student" = two-tower ] && cot_key=attn
  case "$variant" in
    ce) ;;
    score-kd) alpha=$KD_ALPHA; teacher_dir=$TO/oof ;;
    cot-kd) beta=$COT_BETA; teacher_dir=$TO/oof ;;
    mkd) alpha=$KD_ALPHA; beta=$COT_BETA; teacher_dir=$TO/oof; base=mkd ;;
    rule-bio) beta=$COT_BETA; teacher_dir=$TO/rule ;;
    *) die "unknown variant '$variant' (ce score-kd cot-kd mkd rule-bio)" ;;
  esac
  [ "$beta" != 0 ] && base=mkd  # the mkd config carries the CoT-loss settings (e.g. log-factor pooling)
  local args=(--config "configs/distill/$student-$base.json" --pairs "$D/train_dev.pairs.jsonl"
              --tokenizer "$T/student.model" --out "$S/$student/$variant/seed-$seed"
              --set "loss.score=$alpha" --set "loss.$cot_key=$beta" --set "train.seed=$seed"
              --set "train.epochs=$STUDENT_EPOCHS") s
  [ -z "$teacher_dir" ] || args+=(--teacher "$teacher_dir")
  for s in $DISTILL_SETS; do args+=(--set "$s"); done
  run "$ELLM" --threads 1 distill "${args[@]}"
}
# One run, marked done on success so that a rerun skips it.
distill_and_mark() { distill "$@" && mark_done "$S/$1/$2/seed-$3"; }
stage_students() {
  done_mark "$S" && return 0
  log "students: $STUDENTS × $VARIANTS × seeds $SEEDS"
  local st v seed
  for seed in $SEEDS; do for st in $STUDENTS; do for v in $VARIANTS; do
    if [ "$DRY" = 0 ] && [ -f "$S/$st/$v/seed-$seed/.done" ]; then continue; fi
    pool_run "distill-$st-$v-$seed" distill_and_mark "$st" "$v" "$seed"
  done; done; done
  pool_wait
  mark_done "$S"
}

# ---- eval ---------------------------------------------------------------------
evaluate() {  # evaluate NAME(model/variant[/seed-S]) META... -- SOURCE-ARGS...: dev report, then test at dev's threshold
  local name=$1; shift
  local meta=() src=()
  while [ "$1" != -- ]; do meta+=(--meta "$1"); shift; done; shift
  src=("$@")
  local common=(--train-pairs "$D/train.pairs.jsonl" --bootstrap "$BOOTSTRAP" --tail-buckets "$TAIL_BUCKETS" --seed 0)
  [ -z "$POSITIVE_FROM" ] || common+=(--positive-from "$POSITIVE_FROM")
  run "$ELLM" --threads 1 eval "${src[@]}" --pairs "$D/dev.pairs.jsonl" --out "$OUT/eval-dev/$name" \
    "${common[@]}" "${meta[@]}" --plots none
  run "$ELLM" --threads 1 eval "${src[@]}" --pairs "$D/test.pairs.jsonl" --out "$OUT/eval-test/$name" \
    "${common[@]}" "${meta[@]}" --threshold-from "$OUT/eval-dev/$name/report.json" \
    --teacher "$TO/cot-test/teacher.jsonl"
}
evaluate_scores() {  # the teacher's outputs are per split: dev file for dev, test file for test
  local name=$1 dir=$2 model=$3 variant=$4
  local common=(--train-pairs "$D/train.pairs.jsonl" --bootstrap "$BOOTSTRAP" --tail-buckets "$TAIL_BUCKETS" --seed 0
                --meta "model=$model" --meta "variant=$variant")
  [ -z "$POSITIVE_FROM" ] || common+=(--positive-from "$POSITIVE_FROM")
  run "$ELLM" --threads 1 eval --scores "$TO/$dir-dev/teacher.jsonl" --pairs "$D/dev.pairs.jsonl" \
    --out "$OUT/eval-dev/$name" "${common[@]}" --plots none
  run "$ELLM" --threads 1 eval --scores "$TO/$dir-test/teacher.jsonl" --pairs "$D/test.pairs.jsonl" \
    --out "$OUT/eval-test/$name" "${common[@]}" --threshold-from "$OUT/eval-dev/$name/report.json"
}
stage_eval() {
  log "eval: dev (thresholds) then test"
  pool_run eval-overlap evaluate overlap/rule model=overlap variant=rule -- --overlap
  pool_run eval-teacher-cot evaluate_scores teacher/cot cot teacher cot
  pool_run eval-teacher-no-cot evaluate_scores teacher/no-cot no-cot teacher no-cot
  local st v seed
  for seed in $SEEDS; do for st in $STUDENTS; do for v in $VARIANTS; do
    pool_run "eval-$st-$v-$seed" evaluate "$st/$v/seed-$seed" "model=$st" "variant=$v" "seed=$seed" -- \
      --model "$S/$st/$v/seed-$seed/$STUDENT_MODEL_SUBDIR"
  done; done; done
  pool_wait
}

stage_aggregate() {
  log "aggregate"
  run "$ELLM" eval aggregate --reports "$OUT/eval-dev" --out "$OUT/dev-results" > /dev/null
  run "$ELLM" eval aggregate --reports "$OUT/eval-test" --out "$OUT"
  [ "$DRY" = 1 ] && return 0
  {
    echo "# Results"
    echo
    echo "Command: \`scripts/reproduce_tables.sh $ORIG_ARGS\`"
    echo "Machine: $(uname -srm), $(nproc --all) cores; ellm $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "Data: $DATA (train $(wc -l < "$D/train.pairs.jsonl") pairs; test: ${TEST:-dev split}, $(wc -l < "$D/test.pairs.jsonl") pairs); folds $FOLDS; seeds $SEEDS"
    echo
    cat "$OUT/results.md"
  } > "$OUT/RESULTS.md"
  log "wrote $OUT/results.json, $OUT/results.md and $OUT/RESULTS.md"
}

ORIG_ARGS="--data $DATA${TEST:+ --test $TEST} --out $OUT$([ "$QUICK" = 1 ] && echo ' --quick' || true)${CONFIG:+ --config $CONFIG}"
: > "$OUT/commands.log"
log "reproduce_tables: data $DATA → $OUT (folds $FOLDS, seeds $SEEDS, $JOBS jobs)"
stage_data
stage_annotate
stage_tokenizer
stage_finetune
stage_teacher
stage_students
stage_eval
stage_aggregate
[ "$DRY" = 1 ] || cat "$OUT/results.md"
