"""The fuzzers' shared entry point: atheris instruments dracula's Python (the pure-Python twins
the oracles compare against) and runs one target of fuzz/targets.py under libFuzzer. The
compiled extensions are instrumented at build time instead (fuzz/build_sanitized.sh).

    fuzz/run.sh [SECONDS] [FUZZER...]                        # the sanitized build, the corpus
    python fuzz/fuzz_reader.py [libFuzzer options] [corpus dirs]   # the normal build

DRACULA_FUZZ_PYTHON_COVERAGE=0 leaves the Python uninstrumented. With DRACULA_FUZZ_BUILD set
(fuzz/run.sh sets it to the sanitized package's folder) dracula is imported from there, and the
fuzzer refuses to start if it is not.
"""

from __future__ import annotations

import os
import sys

import atheris


def main(name: str) -> None:
    build = os.environ.get("DRACULA_FUZZ_BUILD")
    if build:
        sys.path.insert(0, build)
    if os.environ.get("DRACULA_FUZZ_PYTHON_COVERAGE", "1") == "1":
        with atheris.instrument_imports(include=["dracula.wire"]):
            from fuzz import targets
    else:  # the C code's edges alone (fuzz/run.sh --coverage): libFuzzer's cov: counts only them
        from fuzz import targets
    from dracula.wire import _cscan, _ctheader

    for module in (_cscan, _ctheader):
        if build and not os.path.abspath(str(module.__file__)).startswith(os.path.abspath(build)):
            raise SystemExit(
                "fuzz: %s comes from %s, not the sanitized build in %s" % (module.__name__, module.__file__, build)
            )
        print("fuzz: %s from %s" % (module.__name__, module.__file__), file=sys.stderr)
    atheris.Setup(sys.argv, targets.TARGETS[name])
    atheris.Fuzz()
