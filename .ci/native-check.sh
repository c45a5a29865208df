#!/usr/bin/env bash
# .ci/native-check.sh - build tests/native/kernel_check.c (no Python) against the
# C kernels and run it: natively with this machine's paths, then the aarch64
# NEON path cross-compiled and run under qemu-user.
#
#   bash .ci/native-check.sh [--quick]      (--quick is passed on to kernel_check)
#
# Environment: CC (native compiler, default gcc), CROSS_CC (default
# aarch64-linux-gnu-gcc), QEMU (default qemu-aarch64), CROSS_SYSROOT (default
# /usr/aarch64-linux-gnu).  When the cross tools are missing and this runs as
# root with CI set, they are installed with apt-get (gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, qemu-user); if that is not possible the NEON run is
# skipped with a 'SKIP neon: ...' line, which is not a failure.
#
# Exits non-zero if a build fails or any check fails.  The last line is the
# combined 'N passed, N failed' of every run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CC=${CC:-gcc}
CROSS_CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}
CROSS_SYSROOT=${CROSS_SYSROOT:-/usr/aarch64-linux-gnu}
COMMON_FLAGS=(-O2 -std=c11 -Wall -Wextra -Werror -Icsrc)
CHECK_ARGS=("$@")

work=$(mktemp -d "${TMPDIR:-/tmp}/pyscan-native-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

status=0
total_pass=0
total_fail=0

# compile CC OUTDIR SOURCE [EXTRA FLAGS...]
compile() {
    local cc=$1 outdir=$2 src=$3
    shift 3
    local obj
    obj="$outdir/$(basename "$src" .c).o"
    echo "+ $cc ${COMMON_FLAGS[*]} $* -c $src -o $obj"
    "$cc" "${COMMON_FLAGS[@]}" "$@" -c "$src" -o "$obj"
}

# Add the closing 'N passed, N failed' line of a log to the totals.
tally() {
    local line
    line=$(tail -n 1 "$1")
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        total_pass=$((total_pass + BASH_REMATCH[1]))
        total_fail=$((total_fail + BASH_REMATCH[2]))
    else
        total_fail=$((total_fail + 1)) # crashed or printed no summary
    fi
}

# run_check LABEL LOG COMMAND...
run_check() {
    local label=$1 log=$2
    shift 2
    echo "== $label: $*"
    if "$@" 2>&1 | tee "$log"; then
        echo "== $label: OK"
    else
        echo "== $label: FAILED"
        status=1
    fi
    tally "$log"
}

# --- native ------------------------------------------------------------------
native_dir="$work/native"
mkdir -p "$native_dir"
arch=$(uname -m)
# set -e does not apply inside a function called from an || list, hence the explicit returns.
build_native() {
    case "$arch" in
    x86_64 | amd64)
        # As CMakeLists.txt: sse2.c at the baseline, -mavx2 -mf16c / -mavx512f -mavx512bw per file.
        defs=(-DPYSCAN_HAVE_X86)
        compile "$CC" "$native_dir" csrc/dispatch.c "${defs[@]}" || return 1
        compile "$CC" "$native_dir" csrc/guard.c "${defs[@]}" || return 1
        compile "$CC" "$native_dir" csrc/kernels/scalar.c "${defs[@]}" || return 1
        compile "$CC" "$native_dir" csrc/kernels/sse2.c "${defs[@]}" || return 1
        compile "$CC" "$native_dir" csrc/kernels/avx2.c "${defs[@]}" -mavx2 -mf16c || return 1
        compile "$CC" "$native_dir" csrc/kernels/avx512.c "${defs[@]}" -mavx512f -mavx512bw || return 1
        ;;
    aarch64 | arm64)
        defs=(-DPYSCAN_HAVE_NEON)
        compile "$CC" "$native_dir" csrc/dispatch.c "${defs[@]}" || return 1
        compile "$CC" "$native_dir" csrc/guard.c "${defs[@]}" || return 1
        compile "$CC" "$native_dir" csrc/kernels/scalar.c "${defs[@]}" || return 1
        compile "$CC" "$native_dir" csrc/kernels/neon.c "${defs[@]}" || return 1
        ;;
    *)
        defs=()
        compile "$CC" "$native_dir" csrc/dispatch.c || return 1
        compile "$CC" "$native_dir" csrc/guard.c || return 1
        compile "$CC" "$native_dir" csrc/kernels/scalar.c || return 1
        ;;
    esac
    compile "$CC" "$native_dir" tests/native/kernel_check.c ${defs[@]+"${defs[@]}"} || return 1
    echo "+ $CC -o $native_dir/kernel_check $native_dir/*.o"
    "$CC" -o "$native_dir/kernel_check" "$native_dir"/*.o -lpthread -lm
}
native_ok=1
build_native || native_ok=0

if [[ $native_ok == 1 ]]; then
    # The sweep of every F32 word runs natively (about 20 s; hours under qemu), not with --quick.
    sweep=(--every-f32-word)
    [[ " ${CHECK_ARGS[*]-} " == *" --quick "* ]] && sweep=()
    run_check "native ($arch)" "$work/native.log" "$native_dir/kernel_check" ${CHECK_ARGS[@]+"${CHECK_ARGS[@]}"} \
        ${sweep[@]+"${sweep[@]}"}
else
    echo "== native ($arch): BUILD FAILED"
    status=1
    total_fail=$((total_fail + 1))
fi

# --- NEON under qemu-aarch64 ---------------------------------------------------
have_cross() {
    command -v "$CROSS_CC" >/dev/null 2>&1 && command -v "$QEMU" >/dev/null 2>&1 &&
        [[ -d $CROSS_SYSROOT ]]
}

neon_skip=""
if [[ $arch == aarch64 || $arch == arm64 ]]; then
    neon_skip="this machine is aarch64; the native run above covered the NEON path"
elif ! have_cross; then
    if [[ $(id -u) == 0 && -n ${CI:-} ]] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing the aarch64 cross compiler and qemu-user with apt-get"
        if { apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; } >"$work/apt.log" 2>&1; then
            echo "   installed"
        else
            tail -n 20 "$work/apt.log" || true
        fi
    fi
    if ! have_cross; then
        neon_skip="no $CROSS_CC / $QEMU / $CROSS_SYSROOT here (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user, or run as root with CI set)"
    fi
fi

if [[ -z $neon_skip ]]; then
    # Can qemu run an aarch64 binary at all here?  If not, that is the environment, not the kernel.
    probe_dir="$work/probe"
    mkdir -p "$probe_dir"
    printf 'int main(void) { return 0; }\n' >"$probe_dir/probe.c"
    if ! "$CROSS_CC" -o "$probe_dir/probe" "$probe_dir/probe.c" >"$probe_dir/log" 2>&1; then
        neon_skip="$CROSS_CC cannot link a trivial program: $(head -n 3 "$probe_dir/log" | tr '\n' ' ')"
    elif ! "$QEMU" -L "$CROSS_SYSROOT" "$probe_dir/probe" >"$probe_dir/log" 2>&1; then
        neon_skip="$QEMU cannot run a trivial aarch64 program: $(head -n 3 "$probe_dir/log" | tr '\n' ' ')"
    fi
fi

if [[ -n $neon_skip ]]; then
    echo "SKIP neon: $neon_skip"
else
    neon_dir="$work/neon"
    mkdir -p "$neon_dir"
    build_neon() {
        # As CMakeLists.txt on aarch64: neon.c needs no extra flags there.
        compile "$CROSS_CC" "$neon_dir" csrc/dispatch.c -DPYSCAN_HAVE_NEON || return 1
        compile "$CROSS_CC" "$neon_dir" csrc/guard.c -DPYSCAN_HAVE_NEON || return 1
        compile "$CROSS_CC" "$neon_dir" csrc/kernels/scalar.c -DPYSCAN_HAVE_NEON || return 1
        compile "$CROSS_CC" "$neon_dir" csrc/kernels/neon.c -DPYSCAN_HAVE_NEON || return 1
        compile "$CROSS_CC" "$neon_dir" tests/native/kernel_check.c -DPYSCAN_HAVE_NEON || return 1
        echo "+ $CROSS_CC -o $neon_dir/kernel_check $neon_dir/*.o"
        "$CROSS_CC" -o "$neon_dir/kernel_check" "$neon_dir"/*.o -lpthread -lm
    }
    neon_ok=1
    build_neon || neon_ok=0
    if [[ $neon_ok == 1 ]]; then
        run_check "neon (aarch64 under $QEMU)" "$work/neon.log" \
            "$QEMU" -L "$CROSS_SYSROOT" "$neon_dir/kernel_check" ${CHECK_ARGS[@]+"${CHECK_ARGS[@]}"}
    else
        echo "== neon: BUILD FAILED (see the compiler output above)"
        status=1
        total_fail=$((total_fail + 1))
    fi
fi

echo "native-check: $([[ $status == 0 ]] && echo OK || echo FAILED)"
echo "$total_pass passed, $total_fail failed"
exit "$status"
