#!/usr/bin/env bash
# Download the wheels benchmarks/gpu.sh installs on a GPU machine that has Python 3.12 and JAX
# (with numpy, scipy, scikit-learn, matplotlib, click, tqdm) but neither TensorFlow nor a network.
#
#   benchmarks/fetch_wheels.sh [DEST]
#
# DEST: the folder of wheels [default: .whl in the repository's folder, git-ignored, which
# gpu.sh reads and the device tool carries]. Run it on a machine with a package index. The
# versions are those installed in the Python that runs this script (PYTHON, default python3)
# where it has them, so the GPU run uses the libraries the CPU runs used; the others are the
# index's latest. Environment: PY_VERSION (3.12), PLATFORM (x86_64).
set -euo pipefail
case ${1:-} in
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$0: unknown option $1 (DEST is a folder; --help says more)" >&2; exit 2 ;;
esac
if [ $# -gt 1 ]; then
    echo "$0: one DEST at most, got $#" >&2; exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/.whl}
python=${PYTHON:-python3}
arch=${PLATFORM:-x86_64}
# seqae's dependencies that the device lacks, and theirs (Keras needs absl-py, rich with
# markdown-it-py, mdurl and pygments, h5py, packaging, and optree's typing_extensions;
# sacrebleu needs portalocker, regex, tabulate, colorama and lxml).
packages=(keras optree namex gensim smart_open wrapt nltk regex joblib typing_extensions absl-py
          rich markdown-it-py mdurl pygments h5py packaging sacrebleu portalocker tabulate colorama
          lxml)
pinned=$("$python" - "${packages[@]}" <<'PY'
import sys
from importlib import metadata

for name in sys.argv[1:]:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(name)
PY
)
mkdir -p "$dest"
# shellcheck disable=SC2086  # one requirement a word
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest" \
    --python-version "${PY_VERSION:-3.12}" --implementation cp \
    --platform "manylinux2014_$arch" --platform "manylinux_2_17_$arch" \
    --platform "manylinux_2_28_$arch" --platform any $pinned
du -sh "$dest"
ls "$dest"
