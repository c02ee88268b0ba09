#!/usr/bin/env bash
# Fetch, on a machine with a package index, what the device machine's image lacks for bench/gpu_proof.sh:
# segment-anything (pure Python wheel) and pydensecrf2 (an sdist: no cp312 wheel exists; the proof
# script's `deps` step builds it there offline, with the image's Cython, numpy and compiler).
# They land in .whl/ at the repository root, ignored by git (.git/info/exclude), to be carried:
#   bench/gpu_wheels.sh && run(command="bash bench/gpu_proof.sh", carry=[".whl", ...])
set -eu
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
cd "$repo"
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")" .whl
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl segment-anything==1.0
"$py" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d .whl pydensecrf2==1.1
ls -l .whl
