"""A single-process Django site serving the stack's read pages straight from PostgreSQL and memcached.

The benchmark's baseline (issue 7), not part of the stack: see ``bench/baseline/README.md``.
"""
