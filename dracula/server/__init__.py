"""Serving: the server's lifecycle, the per-call path, shared state, the two backends."""
