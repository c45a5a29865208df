#!/usr/bin/env bash
# .ci/fuzz.sh - a short fuzzing pass for CI: fuzz/run.sh with FUZZ_SECONDS (default 30) per target.
# Exits non-zero on a finding (crash, sanitizer report, kernel mismatch, unexpected Python exception);
# the reproducers are left in build/fuzz/findings/.  Uses .venv (as .ci/run creates it) when there is
# one; installs atheris into it if missing, and clang with apt-get when running as root with CI set.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    [[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python
fi
"$PYTHON" -c 'import atheris' 2>/dev/null || "$PYTHON" -m pip install --quiet atheris

CC=${CC:-clang}
if ! command -v "$CC" >/dev/null && [[ $(id -u) == 0 && -n ${CI:-} ]] && command -v apt-get >/dev/null; then
    # libclang-rt-dev holds libFuzzer and the sanitizer runtimes.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-dev >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
fi

PYTHON=$PYTHON CC=$CC exec bash fuzz/run.sh "$seconds"
