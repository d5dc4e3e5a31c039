"""Builds dracula's optional C extensions: the compiled message scanners (dracula/wire/_cscan.pyx),
the compiled THeader parser and encoder (dracula/wire/_ctheader.pyx), the client's compiled
per-call code (dracula/client/_cclient.pyx, built against thriftpy2's Cython transport) and the
compiled fast path of a plain call (dracula/server/_cfast.pyx).

Everything else lives in pyproject.toml. The extension is optional: without a C compiler (or
without Cython) the install still succeeds and dracula runs its pure-Python scanners, saying so
in one warning line when a server starts.
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

SOURCES = [os.path.join("dracula", "wire", name) for name in ("_cscan.pyx", "_ctheader.pyx")] + [
    os.path.join("dracula", "client", "_cclient.pyx"),
    os.path.join("dracula", "server", "_cfast.pyx"),
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
    built = []
    for source in SOURCES:  # one at a time: the client's needs thriftpy2's .pxd, the scanners nothing
        try:
            built += cythonize([source], compiler_directives={"language_level": "3"}, quiet=True)
        except Exception as e:
            print("dracula: not compiling %s (%s); its pure-Python twin will be used" % (source, e), file=sys.stderr)
    return built


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
