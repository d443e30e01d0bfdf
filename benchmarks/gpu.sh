#!/usr/bin/env bash
# seqae on a GPU machine that has Python and JAX but neither TensorFlow nor a network.
#
#   benchmarks/gpu.sh [throughput|study] [CORPUS]
#
# throughput (the default): train the reference autoencoder for a fixed time; print the device,
#   sentences/s (mean over the epochs after the first, which compiles), padding share and
#   validation token accuracy.
# study: `pipe study` at the reference size (2000-d word2vec, seq-len 50, latent 256, 100,000
#   training sentences) under the CPU study's rules (docs/study.md): the learning-rate sweep,
#   SEQAE_STUDY_SEEDS seeds, SEQAE_STUDY_BUDGET sentence-passes per model with no early
#   stopping, then convergence (patience in sentence-passes, a minimum, at most
#   SEQAE_STUDY_MAX_PASSES); the report, its figures, every run's step trace (steps/) and the
#   run's config.json are copied to SEQAE_RESULTS.
#
# CORPUS: a 20news-bydate.tar.gz (or any corpus `pipe embed --corpus` reads); default
# $SEQAE_CORPUS. Environment:
#   SEQAE_SIZE      reference (default) or tiny (a few seconds of CPU, for tests)
#   SEQAE_SECONDS   throughput: training time; Ctrl-C is sent then, and the epochs finished
#                   count [default: 300 reference, 120 tiny]
#   SEQAE_RESULTS   study: where the report goes [default: $OUT if set, else ./seqae-study]
#   SEQAE_STUDY_MODELS, SEQAE_STUDY_SEEDS, SEQAE_STUDY_BUDGET, SEQAE_STUDY_MAX_PASSES
#                   study: --models, --seeds, --budget and --max-passes [default: the study's
#                   main models; 0,1,2; 400000 and 1200000 reference, 200 and 400 tiny]
#   SEQAE_WORK      scratch folder, kept [default: a new temporary one, removed at the end]
#   SEQAE_WHEELS    folder of wheels to install [default: .whl beside the repository's files,
#                   filled by benchmarks/fetch_wheels.sh]
#   PYTHON          the interpreter [default: python3]
# The wheels (seqae's dependencies, built for that Python) are installed first with no index
# and no dependency resolution: nothing is downloaded.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mode=throughput
case ${1:-} in
    throughput|study) mode=$1; shift ;;
esac
corpus=${1:-${SEQAE_CORPUS:-}}
if [ -z "$corpus" ]; then
    echo "usage: $0 [throughput|study] CORPUS (or set SEQAE_CORPUS): a 20news-bydate.tar.gz" >&2
    exit 2
fi
python=${PYTHON:-python3}
if [ -n "${SEQAE_WORK:-}" ]; then
    work=$SEQAE_WORK
else  # a scratch folder of our own, removed however the script ends
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
case ${SEQAE_SIZE:-reference} in
    reference)
        embed=(--vector-size 2000)
        w2v_epochs=1
        model=(--seq-len 50 --latent 256)
        train=(--batch-size 256 --max-sentences 20000 --val-sentences 1000 --epochs 100000)
        study=(--batch-size 64 --max-sentences 100000 --val-sentences 1000
               --eval-sentences 2000 --eval-every 300 --lrs 0.0003,0.001,0.003 --sweep 100000
               --budget "${SEQAE_STUDY_BUDGET:-400000}" --patience 200000 --min-passes 600000
               --max-passes "${SEQAE_STUDY_MAX_PASSES:-1200000}")
        seconds=${SEQAE_SECONDS:-300} ;;
    tiny)
        embed=(--vector-size 16 --min-count 1 --workers 1)
        w2v_epochs=1
        model=(--seq-len 12 --latent 8)
        train=(--batch-size 32 --max-sentences 200 --val-sentences 20 --epochs 2)
        study=(--batch-size 32 --max-sentences 200 --val-sentences 20 --eval-sentences 20
               --lrs 0.001,0.01 --sweep 100 --budget "${SEQAE_STUDY_BUDGET:-200}"
               --patience 100 --min-passes 300 --max-passes "${SEQAE_STUDY_MAX_PASSES:-400}")
        seconds=${SEQAE_SECONDS:-120} ;;
    *)
        echo "SEQAE_SIZE must be reference or tiny, got ${SEQAE_SIZE}" >&2
        exit 2 ;;
esac

wheels=${SEQAE_WHEELS:-$repo/.whl}
if compgen -G "$wheels/*.whl" > /dev/null; then
    "$python" -m pip install --quiet --no-index --no-deps --target "$work/site" "$wheels"/*.whl
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3
pipe() { "$python" -m pipelines "$@"; }

"$python" -c "import jax; print('device:', jax.devices()[0].device_kind, '(' + jax.default_backend() + ')')"

if [ "$mode" = study ]; then
    results=${SEQAE_RESULTS:-${OUT:-$PWD/seqae-study}}
    started=$SECONDS
    chosen=()
    [ -n "${SEQAE_STUDY_MODELS:-}" ] && chosen=(--models "$SEQAE_STUDY_MODELS")
    pipe study --run "$work/run" --corpus "$corpus" "${embed[@]}" --w2v-epochs "$w2v_epochs" \
        "${model[@]}" "${study[@]}" --seeds "${SEQAE_STUDY_SEEDS:-0,1,2}" "${chosen[@]}" \
        --backend jax -q
    mkdir -p "$results/steps"
    cp "$work/run/config.json" "$work/run/study/"*.json "$work/run/study/"*.md \
        "$work/run/study/"*.png "$results/"
    for trace in "$work/run/models/"*/steps.csv; do  # the traces behind the report's readings
        name=$(basename "$(dirname "$trace")")
        cp "$trace" "$results/steps/$name.csv"
    done
    echo "study: $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s, report in $results"
    exit 0
fi

pipe embed --run "$work/run" --corpus "$corpus" "${embed[@]}" --epochs "$w2v_epochs" -q > /dev/null
# A fixed time: Ctrl-C (SIGINT) when it is up; training saves a checkpoint and exits 130.
status=0
timeout --signal=INT --kill-after=300 "$seconds" \
    "$python" -m pipelines train-ae --run "$work/run" --backend jax --patience 0 --name gpu \
    "${model[@]}" "${train[@]}" -q || status=$?
case $status in
    0|124|130) ;;
    *) echo "train-ae failed (exit $status)" >&2; exit "$status" ;;
esac
"$python" - "$work/run/models/gpu/history.csv" <<'PY'
import csv
import sys

rows = [r for r in csv.DictReader(open(sys.argv[1], newline="")) if r["status"] == "ok"]
if not rows:
    sys.exit("no epoch finished in the time given: raise SEQAE_SECONDS")
timed = rows[1:] or rows  # the first epoch also compiles
print(f"epochs: {len(rows)} ({len(timed)} timed)")
print(f"sentences/s: {sum(float(r['sentences_per_s']) for r in timed) / len(timed):.0f}")
print(f"padding share: {float(rows[-1]['padding_share']):.3f}")
print(f"validation token accuracy: {float(rows[-1]['val_token_accuracy']):.4f}")
PY
