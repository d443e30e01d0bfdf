#!/usr/bin/env bash
# Training throughput of the reference autoencoder on the JAX backend, for a GPU machine that
# has Python and JAX but neither TensorFlow nor a network.
#
#   benchmarks/gpu.sh [CORPUS]
#
# CORPUS: a 20news-bydate.tar.gz (or any corpus `pipe embed --corpus` reads); default
# $SEQAE_CORPUS. Environment:
#   SEQAE_SIZE      reference (word2vec dim 2000, latent 256, seq-len 50, batch 256; default)
#                   or tiny (a few seconds of CPU, for tests)
#   SEQAE_SECONDS   training time; Ctrl-C is sent then, and the epochs finished count
#                   [default: 300 reference, 120 tiny]
#   SEQAE_WORK      scratch folder [default: a new temporary one]
#   SEQAE_WHEELS    folder of wheels to install [default: .whl beside the repository's files]
#   PYTHON          the interpreter [default: python3]
# Wheels found in .whl/ in the repository's folder (git-ignored) (seqae's dependencies, built for that Python) are
# installed first with no index and no dependency resolution: nothing is downloaded.
# Prints the device, sentences/s (mean over the epochs after the first, which compiles),
# padding share and validation token accuracy.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-${SEQAE_CORPUS:-}}
if [ -z "$corpus" ]; then
    echo "usage: $0 CORPUS (or set SEQAE_CORPUS): a 20news-bydate.tar.gz" >&2
    exit 2
fi
python=${PYTHON:-python3}
work=${SEQAE_WORK:-$(mktemp -d)}
case ${SEQAE_SIZE:-reference} in
    reference)
        embed=(--vector-size 2000 --epochs 1)
        train=(--seq-len 50 --latent 256 --batch-size 256 --max-sentences 20000
               --val-sentences 1000 --epochs 100000)
        seconds=${SEQAE_SECONDS:-300} ;;
    tiny)
        embed=(--vector-size 16 --min-count 1 --epochs 1 --workers 1)
        train=(--seq-len 12 --latent 8 --batch-size 32 --max-sentences 200
               --val-sentences 20 --epochs 2)
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
pipe embed --run "$work/run" --corpus "$corpus" "${embed[@]}" -q > /dev/null
# A fixed time: Ctrl-C (SIGINT) when it is up; training saves a checkpoint and exits 130.
status=0
timeout --signal=INT --kill-after=300 "$seconds" \
    "$python" -m pipelines train-ae --run "$work/run" --backend jax --patience 0 --name gpu \
    "${train[@]}" -q || status=$?
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
