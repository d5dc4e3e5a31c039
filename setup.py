"""Builds dracula's optional C extensions: the compiled message scanners (dracula/wire/_cscan.pyx),
the compiled THeader parser and encoder (dracula/wire/_ctheader.pyx) and the compiled fast path
of a plain call (dracula/server/_cfast.pyx).

Everything else lives in pyproject.toml. The extension is optional: without a C compiler (or
without Cython) the install still succeeds and dracula runs its pure-Python scanners, saying so
in one warning line when a server starts.
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

SOURCES = [os.path.join("dracula", "wire", name) for name in ("_cscan.pyx", "_ctheader.pyx")] + [
    os.path.join("dracula", "server", "_cfast.pyx")
]


class OptionalBuildExt(build_ext):
    """A failed compile leaves the pure-Python fallback in place instead of failing the install."""

    def run(self):
        try:
            super().run()
        except Exception as e:  # no compiler, no Python headers, ...
            self._skip(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:
            self._skip(e)

    @staticmethod
    def _skip(error):
        print("dracula: not building the compiled scanner (%s); the pure-Python one will be used"
              % error, file=sys.stderr)


def extensions():
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("dracula: Cython is not installed; the pure-Python scanner will be used", file=sys.stderr)
        return []
    return cythonize(SOURCES, compiler_directives={"language_level": "3"}, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
