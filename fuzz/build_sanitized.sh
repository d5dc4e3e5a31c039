#!/usr/bin/env bash
# Builds dracula's two C extensions (_cscan, _ctheader) with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer, with libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link),
# as Atheris documents for native extensions (its native_extension_fuzzing.md). The in-place .so
# files of the normal build are left alone: the sanitized package goes to $FUZZ_BUILD (default
# build/fuzz/pkg: dracula's Python files and the sanitized .so files), which fuzz/run.sh puts
# first on the path.
#
# Needs clang (Debian: clang, libclang-rt-14-dev) and atheris built against that clang's
# libFuzzer, which gives asan_with_fuzzer.so; fuzz/run.sh installs it that way when missing.
# Idempotent: it rebuilds from scratch each time (about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="${FUZZ_BUILD:-$root/build/fuzz}"
command -v clang >/dev/null || { echo "build_sanitized: clang is not installed (apt-get install clang)" >&2; exit 1; }

rm -rf "$out/pkg" "$out/lib" "$out/tmp"
mkdir -p "$out/pkg"
# -O1 -g: ASan reports with line numbers; -fno-omit-frame-pointer: whole stacks;
# -fno-sanitize-recover: a UBSan finding aborts like an ASan one (a crash the fuzzer saves).
flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
CC=clang CXX=clang++ LDSHARED="clang -shared" CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
    python setup.py -q build_ext --build-lib "$out/lib" --build-temp "$out/tmp" --force >"$out/build.log" 2>&1 \
    || { cat "$out/build.log" >&2; exit 1; }
# The Python package around them (never the in-place .so files of the normal build).
tar -C "$root" --exclude='*.so' --exclude='__pycache__' --exclude='*.c' -cf - dracula | tar -C "$out/pkg" -xf -
cp "$out"/lib/dracula/wire/*.so "$out/pkg/dracula/wire/"
for so in "$out"/pkg/dracula/wire/*.so; do
    # A build that silently lost its flags (setup.py's optional build skips failures) fails here.
    symbols=$(nm -D "$so")
    grep -q __asan_report <<<"$symbols" || { echo "build_sanitized: $so has no ASan instrumentation" >&2; exit 1; }
    grep -q __ubsan_handle <<<"$symbols" || { echo "build_sanitized: $so has no UBSan instrumentation" >&2; exit 1; }
    grep -q __sanitizer_cov_8bit_counters_init <<<"$symbols" \
        || { echo "build_sanitized: $so has no coverage instrumentation" >&2; exit 1; }
done
echo "build_sanitized: ASan+UBSan+coverage build of _cscan and _ctheader in $out/pkg"
