"""Send HTTP from a chosen loopback address: all of 127.0.0.0/8 is this machine.

The front door's per-client rate limit tells clients apart by address and
exempts the load generators' network (``topology.LOAD_GENERATOR_NETWORK``), so
a load generator binds an address of its own, and a test can play several
clients. Used by the benchmark, the fault suite's Locust users and the tests.
"""
from __future__ import annotations

from typing import Any

from requests.adapters import HTTPAdapter


class SourceAddressAdapter(HTTPAdapter):
    """A transport adapter whose pooled connections are bound to one local address."""

    def __init__(self, source: str, **kwargs: Any) -> None:
        self.source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Bind every connection of the pool to ``source`` (any free port)."""
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)
