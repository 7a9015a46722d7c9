"""Idempotency keys on the web tier: every write form carries one, every write call forwards it.

Post, "Redundancy and failover": with redundant web and platform servers, a
write can be sent twice: a user double-clicks "Submit", a browser re-posts a
form after a dropped connection, or this tier's client retries a call whose
answer was lost (see ``platform_client.build_session``). The platform applies a
write once per ``Idempotency-Key`` and answers a repeat with the first answer
(docs/platform-api.md), so:

- every write form gets a hidden ``idempotency_key`` field, a fresh uuid4 each
  time the form is rendered (``{% idempotency_field %}`` from the
  ``idempotency_tags`` library). Two submissions of one rendering are one
  write; a form rendered again (after an error, say) is a new attempt;
- the view reads it with :func:`form_key` and passes it to the client, which
  sends it as the ``Idempotency-Key`` header;
- a POST without the field (an old page, curl) gets a key made here, so the
  client's retries are still safe; a malformed value is a 400.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from django.core.exceptions import BadRequest
from django.http import HttpRequest

FORM_FIELD = "idempotency_key"
HEADER = "Idempotency-Key"
# The platform's rule (platform_api.idempotency.KEY_PATTERN).
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def new_key() -> str:
    """A fresh key: a random uuid4 (36 characters of hex digits and ``-``)."""
    return str(uuid.uuid4())


def form_key(request: HttpRequest) -> str:
    """The key the posted form carries, or a new one if it carries none.

    Raises :class:`~django.core.exceptions.BadRequest` (the 400 page) for a
    value the platform would refuse, before any platform call.
    """
    raw = request.POST.get(FORM_FIELD, "")
    if not raw:
        return new_key()
    if KEY_PATTERN.fullmatch(raw) is None:
        raise BadRequest(f"malformed {FORM_FIELD}")
    return raw


def keyed_write(method: str | None, headers: Mapping[str, str]) -> bool:
    """Whether a request is a write that carries an ``Idempotency-Key``."""
    return (method or "").upper() in WRITE_METHODS and bool(headers.get(HEADER))


def safe_to_resend(method: str | None, headers: Mapping[str, str]) -> bool:
    """Whether a request may be sent again after it may have reached the platform.

    Reads always may. A write may only with an ``Idempotency-Key``: the
    platform then answers the copy from the first attempt's stored answer (or
    does the write, if the first attempt never got to it) instead of applying
    it twice.
    """
    return (method or "").upper() in ("GET", "HEAD") or keyed_write(method, headers)
