"""Handlers for idl/hash.thrift, the seed benchmark's HashService.

HashHandler hashes on the reactor thread; BlockingHashHandler marks md_five as blocking so it
runs in dracula's thread pool (hashlib releases the GIL on large inputs, so the hashing can use
every core while the loop keeps serving).
"""

import hashlib

import dracula


class HashHandler:
    def md_five(self, input_str):
        return hashlib.md5(input_str.encode()).hexdigest()


class BlockingHashHandler:
    @dracula.blocking
    def md_five(self, input_str):
        return hashlib.md5(input_str.encode()).hexdigest()
