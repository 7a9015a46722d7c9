"""The platform layer: the only code that touches PostgreSQL and the data cache.

Implements the post's "Platform layer" section: the web tier (and any other
product) talks to this versioned JSON API instead of to the databases, so the
two tiers scale independently behind their own HAProxy pools.
"""
