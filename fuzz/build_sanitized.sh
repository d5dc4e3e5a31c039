#!/usr/bin/env bash
# Builds dracula's two C extensions (_cscan, _ctheader) with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer, with libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link),
# as Atheris documents for native extensions (its native_extension_fuzzing.md). The in-place .so
# files of the normal build are left alone: the sanitized package goes to $FUZZ_BUILD (default
# build/fuzz/pkg: dracula's Python files and the sanitized .so files), which fuzz/run.sh puts
# first on the path.
#
# Needs clang (Debian's clang 14 does) and atheris, whose wheel ships asan_with_fuzzer.so (the
# ASan runtime, UBSan's handlers included, linked with libFuzzer) that the fuzzers preload.
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
# The canary: the sanitizers must report its planted bugs, under the same preload as the fuzzers.
mkdir -p "$out/canary"
cython -3 fuzz/canary.pyx -o "$out/canary/canary.c"
clang $flags -shared -fPIC $(python -c 'import sysconfig; print("-I" + sysconfig.get_paths()["include"])') \
    "$out/canary/canary.c" -o "$out/canary/canary$(python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
preload="$(python -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"
canary() {
    (cd "$out/canary" && LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0 python -c "import canary; canary.$1" 2>&1 || true)
}
report=$(canary "heap_overflow(9)")
grep -q "AddressSanitizer: heap-buffer-overflow" <<<"$report" \
    || { echo "build_sanitized: AddressSanitizer did not report the canary's overflow" >&2; exit 1; }
report=$(canary "bad_shift(40)")
grep -q "runtime error: shift exponent" <<<"$report" \
    || { echo "build_sanitized: UBSan did not report the canary's shift" >&2; exit 1; }
touch "$out/pkg/.built"  # fuzz/run.sh rebuilds when a source is newer than this
echo "build_sanitized: ASan+UBSan+coverage build of _cscan and _ctheader in $out/pkg (the canary's bugs reported)"
