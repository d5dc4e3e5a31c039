#!/usr/bin/env bash
# One benchmark run on a many-core machine, all parts in one go, bounded in time.
#
#   bash benchmarks/device_run.sh OUTDIR          # from the repo root (any cwd works)
#   QUICK=1 bash benchmarks/device_run.sh OUTDIR  # a smoke run: short rows, few connections, no (c)
#
# Parts (each writes OUTDIR/<part>.md and OUTDIR/<part>.json; the whole log goes to OUTDIR/log.txt):
#   a_pinned    ping_qps.py, all six servers, 50 and 1,000 connections, the server pinned to
#               CPU 0 and the load generator to CPUs 1..N-1: every server gets exactly one core
#   a_unpinned  the same six at 50 connections, nothing pinned (threaded servers may use more)
#   b_workers   dracula uv with --workers 1,2,4,8 at 1,000 connections, server (supervisor +
#               workers) on CPUs 0..N/2-1, load generator (8 processes) on N/2..N-1
#   c_seed      qps_table.py (md_five, 400 KB, think 0.1-1 s) at 1,000/2,000/5,000 connections,
#               uv vs thread vs uv+pool, 20 s per cell, unpinned: as many connection counts as
#               the time left allows (OUTDIR/c_seed/qps_table.{md,json,png})
#
# Carried packages: the device has Python 3.12, uvloop, prometheus-client and matplotlib but
# not thriftpy2, ply, ijson or thrift. .whl/ (ignored by git, see .git/info/exclude) holds
# cp312 manylinux wheels of thriftpy2, ply and ijson, installed here into $SITE_DIR
# (/tmp/site), and Apache thrift's pure-Python package in .whl/site (no fastbinary: the
# apache-nonblocking row then runs pure Python, and its table says so). Each is used only when
# this Python cannot already import it; dracula itself runs from the repo root (PYTHONPATH).
#
# Environment: QUICK=1 (smoke run), RUN_C=1 (run part c in QUICK mode too), BUDGET (seconds for
# the whole script, default 540), PYTHON (default python3), SITE_DIR (default /tmp/site);
# overrides: SECS WARM A_CONNS A2_CONNS A_CLIENTS B_CONNS B_WORKERS ("1 2 4 8") B_CLIENTS
# C_CONNS ("1000 2000 5000") C_SECS C_WARM C_CLIENTS.
set -u -o pipefail

OUT=${1:?usage: bash benchmarks/device_run.sh OUTDIR}
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

main() {
PY=${PYTHON:-python3}
SITE=${SITE_DIR:-/tmp/site}
QUICK=${QUICK:-0}
BUDGET=${BUDGET:-540}
SECONDS=0
FAILED=()

say() { printf '\n=== [%4ds] %s\n' "$SECONDS" "$*"; }
left() { echo $((BUDGET - SECONDS)); }

say "dracula device run: $(date -Is), repo $ROOT, out $OUT, QUICK=$QUICK, budget ${BUDGET}s"
echo "nproc: $(nproc)  (os cpus: $(getconf _NPROCESSORS_ONLN))"
echo "python: $(command -v "$PY") $("$PY" -VV 2>&1)"
echo "kernel: $(uname -srm)"
grep -m1 'model name' /proc/cpuinfo 2>/dev/null || true
echo "ulimit -n: $(ulimit -n) soft, $(ulimit -Hn) hard; somaxconn: $(cat /proc/sys/net/core/somaxconn 2>/dev/null)"
echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short 2>/dev/null | wc -l) changed/untracked paths"

# -- carried packages ---------------------------------------------------------------------------
say "packages"
EXTRA=""
if ! "$PY" -c "import thriftpy2, ply, ijson" 2>/dev/null; then
    shopt -s nullglob
    wheels=("$ROOT"/.whl/*.whl)
    shopt -u nullglob
    if [ ${#wheels[@]} -eq 0 ]; then
        echo "thriftpy2/ply/ijson missing and no wheels in $ROOT/.whl: cannot run" >&2
        exit 2
    fi
    echo "installing ${#wheels[@]} wheel(s) into $SITE: ${wheels[*]##*/}"
    mkdir -p "$SITE"
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "${wheels[@]}"; then
        echo "pip failed; unpacking the wheels with zipfile instead"
        "$PY" - "$SITE" "${wheels[@]}" <<'EOF' || exit 2
import sys, zipfile
site, wheels = sys.argv[1], sys.argv[2:]
for w in wheels:
    with zipfile.ZipFile(w) as z:
        z.extractall(site)
    print("unpacked", w)
EOF
    fi
    EXTRA="$SITE"
else
    echo "thriftpy2, ply, ijson: already importable, not installing the carried wheels"
fi
if ! "$PY" -c "import thrift" 2>/dev/null; then
    [ -d "$ROOT/.whl/site/thrift" ] || { echo "thrift missing and not in $ROOT/.whl/site" >&2; exit 2; }
    echo "thrift: the carried pure-Python package ($ROOT/.whl/site)"
    EXTRA="${EXTRA:+$EXTRA:}$ROOT/.whl/site"
else
    echo "thrift: already importable"
fi
export PYTHONPATH="${EXTRA:+$EXTRA:}$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
echo "PYTHONPATH=$PYTHONPATH"
"$PY" - <<'EOF' || { echo "imports failed" >&2; exit 2; }
import importlib, os
for name in ("dracula", "thriftpy2", "thrift", "uvloop", "prometheus_client", "ply", "ijson"):
    m = importlib.import_module(name)
    print("  %-18s %-10s %s" % (name, getattr(m, "__version__", ""), os.path.dirname(m.__file__)))
from thriftpy2._compat import CYTHON
print("  thriftpy2 Cython extensions:", CYTHON)
try:
    from thrift.protocol import fastbinary  # noqa: F401
    print("  thrift fastbinary: yes")
except ImportError:
    print("  thrift fastbinary: no (apache-nonblocking runs pure Python)")
EOF
"$PY" -m dracula serve --help >/dev/null || { echo "python -m dracula does not run" >&2; exit 2; }
echo "python -m dracula: ok"

# -- settings -------------------------------------------------------------------------------------
N=$(nproc)
if [ "$QUICK" = 1 ]; then
    SECS=${SECS:-2}; WARM=${WARM:-1}; A_CONNS=${A_CONNS:-20,200}; A2_CONNS=${A2_CONNS:-20}
    B_CONNS=${B_CONNS:-200}; B_WORKERS=${B_WORKERS:-"1 2"}; A_CLIENTS=${A_CLIENTS:-2}; B_CLIENTS=${B_CLIENTS:-2}
    C_CONNS=${C_CONNS:-"20"}; C_SECS=${C_SECS:-3}; C_WARM=${C_WARM:-1}; C_CLIENTS=${C_CLIENTS:-2}
else
    SECS=${SECS:-8}; WARM=${WARM:-2}; A_CONNS=${A_CONNS:-50,1000}; A2_CONNS=${A2_CONNS:-50}
    B_CONNS=${B_CONNS:-1000}; B_WORKERS=${B_WORKERS:-"1 2 4 8"}; A_CLIENTS=${A_CLIENTS:-4}; B_CLIENTS=${B_CLIENTS:-8}
    C_CONNS=${C_CONNS:-"1000 2000 5000"}; C_SECS=${C_SECS:-20}; C_WARM=${C_WARM:-3}; C_CLIENTS=${C_CLIENTS:-4}
fi
if [ "$N" -ge 2 ]; then
    A_SERVER=0; A_CLIENT="1-$((N - 1))"
    HALF=$((N / 2)); [ "$HALF" -ge 1 ] || HALF=1
    if [ "$N" -ge 4 ]; then
        B_SERVER="0-$((HALF - 1))"; B_CLIENT="$HALF-$((N - 1))"
    else
        B_SERVER=0; B_CLIENT="1-$((N - 1))"
    fi
else
    A_SERVER=""; A_CLIENT=""; B_SERVER=""; B_CLIENT=""
    echo "only one CPU: nothing can be pinned apart"
fi
[ "$A_CLIENT" = "1-1" ] && A_CLIENT=1
[ "$B_CLIENT" = "1-1" ] && B_CLIENT=1
BW=""
for w in $B_WORKERS; do BW="${BW:+$BW,}dracula-uv-w$w"; done
COMMON=(--seconds "$SECS" --warmup "$WARM" --pause 0.5)
pin() { [ -n "$1" ] && echo "--server-cpus $1 --client-cpus $2"; }
echo "rows: $SECS s measured after $WARM s warm-up"
echo "a: server CPUs ${A_SERVER:-any}, client CPUs ${A_CLIENT:-any}, $A_CLIENTS client processes"
echo "b: server CPUs ${B_SERVER:-any}, client CPUs ${B_CLIENT:-any}, $B_CLIENTS client processes; $BW"

# part NAME LIMIT_S COMMAND...: run with its own time limit (SIGINT, so the harness prints the
# rows it has), stdout (the markdown) to OUTDIR/NAME.md and the log, the status recorded.
part() {
    local name=$1 limit=$2; shift 2
    if [ "$limit" -gt "$(left)" ]; then limit=$(left); fi
    if [ "$limit" -lt 20 ]; then
        say "$name: skipped, ${limit}s left of the budget"
        FAILED+=("$name(skipped)")
        return
    fi
    say "$name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout -s INT -k 20 "$limit" "$PY" "$@" | tee "$OUT/$name.md"
    local rc=$?
    echo "--- $name: exit $rc after $((SECONDS - t0))s"
    [ "$rc" -eq 0 ] || FAILED+=("$name(exit $rc)")
}

# -- (a) the peer table: one core for the server, then unpinned ------------------------------------
part a_pinned 300 benchmarks/ping_qps.py --connections "$A_CONNS" --clients "$A_CLIENTS" "${COMMON[@]}" \
    $(pin "$A_SERVER" "$A_CLIENT") --json "$OUT/a_pinned.json"
part a_unpinned 130 benchmarks/ping_qps.py --connections "$A2_CONNS" --clients "$A_CLIENTS" "${COMMON[@]}" \
    --json "$OUT/a_unpinned.json"

# -- (b) dracula uv workers -----------------------------------------------------------------------
part b_workers 120 benchmarks/ping_qps.py --servers "$BW" --baseline dracula-uv-w1 --connections "$B_CONNS" \
    --clients "$B_CLIENTS" "${COMMON[@]}" $(pin "$B_SERVER" "$B_CLIENT") --json "$OUT/b_workers.json"

# -- (d) cost per idle connection -----------------------------------------------------------------
part d_idle_rss 60 benchmarks/idle_rss.py --servers dracula-uv,dracula-thread,thriftpy2-threaded \
    --connections "${D_CONNS:-10000}"

# -- (c) the seed table, if time allows -----------------------------------------------------------
if [ "$QUICK" = 1 ] && [ "${RUN_C:-0}" != 1 ]; then
    say "c_seed: skipped (QUICK=1; RUN_C=1 runs it)"
else
    # ~ per cell: server start + ramp + warm-up + measured + stop + pause
    CELL=$((C_SECS + C_WARM + 5))
    room=$(( $(left) - 25 ))
    counts=""
    n=0
    for c in $C_CONNS; do
        if [ $(( (n + 1) * 3 * CELL )) -le "$room" ]; then counts="${counts:+$counts,}$c"; n=$((n + 1)); fi
    done
    if [ -z "$counts" ]; then
        say "c_seed: skipped, $(left)s left (a connection count needs ~$((3 * CELL))s)"
        FAILED+=("c_seed(skipped)")
    else
        [ "$counts" = "$(echo $C_CONNS | tr ' ' ,)" ] || echo "c_seed: time for connections $counts only (of $C_CONNS)"
        part c_seed $(( $(left) - 10 )) benchmarks/qps_table.py --connections "$counts" \
            --backends uv,thread,uv+pool --seconds "$C_SECS" --warmup "$C_WARM" --clients "$C_CLIENTS" \
            --pause 0.5 --out "$OUT/c_seed"
        # qps_table rewrites c_seed/qps_table.{md,json} after every cell: an interrupted run keeps them
        if [ -f "$OUT/c_seed/qps_table.md" ] && ! grep -q . "$OUT/c_seed.md" 2>/dev/null; then
            cp "$OUT/c_seed/qps_table.md" "$OUT/c_seed.md"
        fi
        [ -f "$OUT/c_seed/qps_table.json" ] && cp "$OUT/c_seed/qps_table.json" "$OUT/c_seed.json"
    fi
fi

# -- summary --------------------------------------------------------------------------------------
{
    echo "# dracula device run, $(date -Is)"
    echo
    echo "$(nproc) CPUs, $("$PY" -V 2>&1), QUICK=$QUICK, ${SECONDS}s in all."
    for name in a_pinned a_unpinned b_workers d_idle_rss c_seed; do
        [ -s "$OUT/$name.md" ] || continue
        echo
        echo "## $name"
        echo
        cat "$OUT/$name.md"
    done
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo
        echo "Not clean: ${FAILED[*]}"
    fi
} > "$OUT/summary.md"
say "done in ${SECONDS}s; outputs in $OUT:"
ls -la "$OUT" "$OUT/c_seed" 2>/dev/null
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "not clean: ${FAILED[*]}"
    return 1
fi
}

main 2>&1 | tee -a "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
