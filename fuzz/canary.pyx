# cython: language_level=3
"""Two planted bugs, built like the extensions (fuzz/build_sanitized.sh): the build checks that
AddressSanitizer reports the heap overflow and UBSan the shift, so a sanitizer that is not
really live (a runtime not preloaded, flags lost) cannot pass for one."""
from libc.stdlib cimport free, malloc


def heap_overflow(int i):
    cdef unsigned char* p = <unsigned char*>malloc(8)
    cdef int v = p[i]
    free(p)
    return v


def bad_shift(int s):
    cdef int one = 1
    return one << s
