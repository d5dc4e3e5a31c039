#!/usr/bin/env bash
# Runs the fuzzers on the sanitized build (fuzz/build_sanitized.sh), each from its committed
# corpus (fuzz/corpus/<fuzzer>/) for SECONDS (default 60). A finding (a crash, a sanitizer
# report, an oracle's AssertionError, an input slower than 10 s, RSS past 2 GB or one malloc
# past 64 MB) fails the run; its input is saved in build/fuzz/findings/ and the log in
# build/fuzz/logs/. The committed corpus is not changed: new inputs go to a scratch copy.
#
#   fuzz/run.sh [SECONDS] [FUZZER...]     FUZZER: binary_scan compact_scan theader reader
#   fuzz/run.sh --merge [FUZZER...]       minimize: the committed corpus plus the last run's
#                                         new inputs, merged back into fuzz/corpus/<fuzzer>/
#   fuzz/run.sh --seed                    rewrite the seeds (fuzz/seed_corpus.py) into the corpus
#   fuzz/run.sh --coverage [FUZZER...]    the C code's edges the committed corpus reaches
#
# FUZZ_WORKERS=N runs N fuzzing processes per fuzzer (libFuzzer -fork); default 1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="${FUZZ_BUILD:-$root/build/fuzz}" && export FUZZ_BUILD="$out"
mode=run
case "${1:-}" in
    --merge) mode=merge; shift ;;
    --seed) mode=seed; shift ;;
    --coverage) mode=coverage; shift ;;
    [0-9]*) seconds=$1; shift ;;
esac
seconds="${seconds:-60}"
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=(binary_scan compact_scan theader reader)

python -c "import atheris" 2>/dev/null || pip install -q atheris
if [ "$mode" = seed ]; then
    python -m fuzz.seed_corpus fuzz/corpus
    exit 0
fi
# Rebuild the sanitized package when it is missing or older than any of dracula's sources.
if [ ! -f "$out/pkg/.built" ] || [ -n "$(find dracula setup.py -newer "$out/pkg/.built" \
        \( -name '*.py' -o -name '*.pyx' \) 2>/dev/null | head -1)" ]; then
    fuzz/build_sanitized.sh
fi

preload="$(python -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"
[ -f "$preload" ] || { echo "fuzz: $preload is missing: atheris was installed without its sanitizer runtimes" >&2; exit 1; }
export DRACULA_FUZZ_BUILD="$out/pkg"
# Python's own allocations are never freed at exit: leak reports would be noise.
# A smaller quarantine than ASan's 256 MB keeps a fuzzer near 500 MB on a shared machine.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:quarantine_size_mb=64:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
mkdir -p "$out/logs" "$out/findings"

fuzz() {  # fuzz NAME [libFuzzer arguments...]
    local name=$1; shift
    local max_len=4096
    [ "$name" = reader ] && max_len=20000  # past the Reader's first 8 KiB buffer: it must grow
    LD_PRELOAD="$preload" python "fuzz/fuzz_$name.py" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=64 \
        -max_len=$max_len -artifact_prefix="$out/findings/$name-" "$@"
}

failed=()
for name in "${fuzzers[@]}"; do
    corpus="fuzz/corpus/$name"
    scratch="$out/scratch/$name"
    if [ "$mode" = merge ]; then
        # The smallest set of inputs that keeps every feature the corpus and the scratch reach.
        merged="$out/merged/$name"
        rm -rf "$merged" && mkdir -p "$merged" "$scratch"
        fuzz "$name" -merge=1 "$merged" "$corpus" "$scratch" >"$out/logs/$name.merge.log" 2>&1
        # The committed corpus is replaced only by a merge that kept something.
        [ -n "$(ls "$merged")" ] || { echo "fuzz: $name merge kept nothing (log: $out/logs/$name.merge.log)" >&2; exit 1; }
        rm -rf "$corpus" && mkdir -p "$corpus" && cp "$merged"/* "$corpus"/
        echo "fuzz: $name corpus minimized to $(ls "$corpus" | wc -l) inputs, $(cat "$corpus"/* | wc -c) bytes"
        continue
    fi
    if [ "$mode" = coverage ]; then
        # Python left uninstrumented: libFuzzer's "cov:" counts the extensions' edges alone.
        DRACULA_FUZZ_PYTHON_COVERAGE=0 fuzz "$name" -runs=0 "$corpus" >"$out/logs/$name.coverage.log" 2>&1
        total=$(grep -oE 'Loaded [0-9]+ modules +\([0-9]+ inline 8-bit counters' "$out/logs/$name.coverage.log" \
                | grep -oE '[0-9]+ inline' | grep -oE '[0-9]+' || true)
        echo "fuzz: $name corpus ($(ls "$corpus" | wc -l) inputs) reaches C edges:" \
            "$(grep -oE 'INITED cov: [0-9]+ ft: [0-9]+' "$out/logs/$name.coverage.log" | tail -1) of ${total:-?} instrumented"
        continue
    fi
    rm -rf "$scratch" && mkdir -p "$scratch"
    cp "$corpus"/* "$scratch"/ 2>/dev/null || true
    log="$out/logs/$name.log"
    start=$(date +%s)
    if fuzz "$name" -max_total_time="$seconds" -print_final_stats=1 ${FUZZ_WORKERS:+-fork=$FUZZ_WORKERS} \
            "$scratch" >"$log" 2>&1; then
        status=ok
    else
        status=FINDING
        failed+=("$name")
    fi
    stats=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    echo "fuzz: $name $status in $(( $(date +%s) - start )) s: ${runs:-?} executions, ${stats:-no stats} (log: $log)"
    if [ "$status" = FINDING ]; then
        grep -E 'ERROR|Error|assert|Traceback|Test unit written' "$log" | head -20 >&2 || true
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]}: inputs in $out/findings/, replay with python -m fuzz.replay FILE" >&2
    exit 1
fi
