"""Replays inputs through a fuzzer's oracle without atheris, on whichever build is importable
(the normal in-place one, or the sanitized one with DRACULA_FUZZ_BUILD and its LD_PRELOAD):

    python -m fuzz.replay FILE...              # the fuzzer named by the file's prefix or folder
    python -m fuzz.replay --target reader FILE...

Exits 1 on the first input whose oracle fails, after printing its traceback.
"""

from __future__ import annotations

import os
import sys
import traceback

build = os.environ.get("DRACULA_FUZZ_BUILD")
if build:
    sys.path.insert(0, build)

from fuzz.targets import TARGETS  # noqa: E402


def target_of(path: str) -> str:
    parts = [os.path.basename(path), os.path.basename(os.path.dirname(path))]
    for name in sorted(TARGETS, key=len, reverse=True):
        if any(part == name or part.startswith(name + "-") for part in parts):
            return name
    raise SystemExit("replay: which fuzzer is %s for? (--target NAME)" % path)


def main(argv: list[str]) -> int:
    target = None
    if argv[:1] == ["--target"]:
        target, argv = argv[1], argv[2:]
    for path in argv:
        files = sorted(os.path.join(path, f) for f in os.listdir(path)) if os.path.isdir(path) else [path]
        for file in files:
            name = target or target_of(file)
            with open(file, "rb") as f:
                data = f.read()
            try:
                TARGETS[name](data)
            except BaseException:
                print("replay: %s fails %s:" % (file, name), file=sys.stderr)
                traceback.print_exc()
                return 1
        print("replay: %s: %d inputs pass" % (path, len(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
