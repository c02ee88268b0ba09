#!/usr/bin/env bash
# Proves the wheel is complete: build it, install it with its pinned dependencies into a fresh venv
# (pip takes torch & co. from the machine's local wheel folders when they are there), and from a folder
# outside the source tree run `segstudio --version`, `segstudio info` on the shipped demo, and an
# offscreen window start (packaging/smoke_test.py). Usage: bash packaging/check_wheel.sh [PYTHON]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${1:-${PYTHON:-python3.11}}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/build-venv"
"$WORK/build-venv/bin/pip" install --quiet "setuptools>=68" wheel
# build from a copy, so the source tree gets no build/ or egg-info
mkdir "$WORK/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard 2>/dev/null || find . -type f -not -path './.git/*' -print0) \
    | (cd "$ROOT" && xargs -0 cp --parents -t "$WORK/src")
"$WORK/build-venv/bin/pip" wheel --quiet --no-deps --no-build-isolation "$WORK/src" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/segstudio-*.whl)"
echo "built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KB)"

"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet "$WHEEL"
"$WORK/venv/bin/pip" check  # 1: every pinned dependency installed and consistent

cd "$WORK"  # nothing of the source tree is importable from here
export QT_QPA_PLATFORM=offscreen SEGSTUDIO_SETTINGS_DIR="$WORK/settings" SEGSTUDIO_LOG_DIR="$WORK/logs"
version="$("$WORK/venv/bin/segstudio" --version)"  # 2
test "$version" = "$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")"
echo "segstudio --version: $version"
demo="$("$WORK/venv/bin/python" -c 'from segstudio.assets import demo_dir; print(demo_dir())')"
cp -r "$demo" "$WORK/demo"
"$WORK/venv/bin/segstudio" info "$WORK/demo"  # 3
"$WORK/venv/bin/python" "$ROOT/packaging/smoke_test.py"  # 4: installed package, shipped files, window
echo "wheel check: all 4 steps OK"
