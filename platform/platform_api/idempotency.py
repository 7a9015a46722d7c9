"""Idempotency keys: a replayed write is answered again, never applied twice.

The post's "Redundancy and failover" makes every layer redundant, and
redundancy means retries: HAProxy and the web tier's clients send a request
again when a server died under it, and a user presses "submit" twice. A write
whose answer was lost cannot tell the sender whether it was applied. So a
client may send ``Idempotency-Key: <1-64 of A-Z a-z 0-9 _ ->`` with any write,
and sending the same request again with the same key is then always safe
(Stripe's design, on PostgreSQL's unique index):

1. The write runs in ONE transaction on the primary, which first claims the
   key: ``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key``.
2. If the claim succeeds, the endpoint runs inside that transaction, and its
   2xx answer (status and JSON text) is stored in the key's row before the
   commit: the key and the write commit together or not at all. An error
   answer rolls both back, so the key can be used again.
3. If another transaction holds the key, uncommitted, PostgreSQL makes the
   INSERT wait for it to end (at most :data:`IN_FLIGHT_WAIT`, then ``409``).
   When it commits, the INSERT does nothing and this request gets the stored
   answer with ``Idempotent-Replayed: true``; when it rolls back, this request
   claims the key and does the write itself.
4. The same key with another request (method, path or body) is a ``422``.

The endpoints' own ``transaction.atomic`` blocks nest inside the key's
transaction as savepoints, so their after-commit hooks (write-through, outbox
relay, task publishing) run once the whole transaction has committed, as
before. Without the header nothing changes: no extra transaction, no row.

The key is looked at only after django-ninja has checked the service token and
the input, so a stored answer is never replayed to a caller without the token,
and a malformed request never opens a transaction.

Usage, under the route decorator (so that django-ninja sees it first)::

    @api.post("/stories", ...)
    @idempotent
    def submit_story(...): ...

Every write endpoint carries it, which also makes it a write for
:mod:`platform_api.read_only`: while the primary is known to be down
(:func:`platform_api.primary.ensure_writable`) it answers the read-only 503 at
once. ``@idempotent(needs_primary=False)`` is for a write that can succeed
without PostgreSQL (a click, which only needs RabbitMQ) unless it carries a key.
"""
from __future__ import annotations

import functools
import hashlib
import re
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from django.db import OperationalError, connections, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from ninja.decorators import decorate_view
from ninja.utils import contribute_operation_callback
from psycopg.errors import LockNotAvailable

from platform_api import primary, read_only

WRITE_DB = "default"
KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# How long a request waits for another one holding the same key. Writes take
# milliseconds; a holder that takes longer is stuck, and the client should
# get an answer (409, try again) rather than a connection tied up with it.
IN_FLIGHT_WAIT = "10s"
# Namespace of the event ids derived from keys (:func:`event_id`).
EVENT_NAMESPACE = uuid.UUID("0b6f3a52-6c2e-4f0e-9d3b-5b1f6d0c2a71")

# Per-request state shared by the two wrappers (see :func:`idempotent`).
_STACK_ATTRIBUTE = "_scalestack_idempotency_stack"
_OPENED_ATTRIBUTE = "_scalestack_idempotency_transaction"
_CLAIM_ATTRIBUTE = "_scalestack_idempotency_claim"
_MARK_ATTRIBUTE = "_scalestack_idempotent"

F = TypeVar("F", bound=Callable[..., Any])

CLAIM_SQL = """
    INSERT INTO idempotency_keys (key, method, path, body_sha256, created_at)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (key) DO NOTHING
    RETURNING key
"""
STORED_SQL = """
    SELECT method, path, body_sha256, response_status, response_body
    FROM idempotency_keys WHERE key = %s
"""
STORE_SQL = "UPDATE idempotency_keys SET response_status = %s, response_body = %s WHERE key = %s"


# --------------------------------------------------------------------------
# Errors (answered by the API's exception handler with their ``status``)
# --------------------------------------------------------------------------
class IdempotencyError(Exception):
    """A request whose key cannot be honoured; ``status`` is the HTTP answer."""

    status = 400


class InvalidKey(IdempotencyError):
    """The header is not 1-64 characters of letters, digits, ``_`` and ``-``."""

    status = 400


class KeyReused(IdempotencyError):
    """The key was used before for another request (method, path or body)."""

    status = 422


class KeyInFlight(IdempotencyError):
    """Another request holds the key and did not finish within :data:`IN_FLIGHT_WAIT`."""

    status = 409


# --------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Fingerprint:
    """What makes two requests "the same request": method, path and body."""

    method: str
    path: str
    body_sha256: str

    @classmethod
    def of(cls, request: HttpRequest) -> Fingerprint:
        """The fingerprint of ``request`` (the body hashed as sent, byte for byte)."""
        return cls(str(request.method), request.get_full_path(), hashlib.sha256(request.body).hexdigest())


def valid_key(key: str) -> bool:
    """Whether ``key`` is an acceptable ``Idempotency-Key`` value."""
    return KEY_PATTERN.fullmatch(key) is not None


def claimed_key(request: HttpRequest) -> str | None:
    """The key this request claimed (and is now doing the write for), if any."""
    return getattr(request, _CLAIM_ATTRIBUTE, None)


def event_id(request: HttpRequest) -> uuid.UUID | None:
    """An event id derived from the request's claimed key, or ``None`` without a key.

    For side effects that leave the database before the commit (publishing a
    click to RabbitMQ): if the transaction then fails and the client retries,
    the event is published again with the same id, and the consumer's unique
    ``event_id`` counts it once.
    """
    key = claimed_key(request)
    return None if key is None else uuid.uuid5(EVENT_NAMESPACE, key)


# --------------------------------------------------------------------------
# The decorator
# --------------------------------------------------------------------------
def idempotent(view: F | None = None, *, needs_primary: bool = True) -> Any:
    """Make a django-ninja write operation honour ``Idempotency-Key`` (see the module docstring).

    Two wrappers, installed when django-ninja builds the operation:

    * around ``Operation.run`` (auth, input parsing, the view, the JSON
      answer): marks the request a write, holds the key's transaction open
      until the answer is ready, stores the answer in it and commits;
    * around the view function, so after auth and input validation: the
      primary check, opening the transaction, and the claim (then the view)
      or the replay of the stored answer.
    """

    def install(function: F) -> F:
        contribute_operation_callback(function, functools.partial(_wrap_view_function, needs_primary=needs_primary))
        decorate_view(_in_write_request)(function)
        return function

    return install(view) if view is not None else install


def is_idempotent(operation: Any) -> bool:
    """Whether a django-ninja operation was built with :func:`idempotent` (for tests and audits)."""
    return bool(getattr(operation.view_func, _MARK_ATTRIBUTE, False))


def _wrap_view_function(operation: Any, needs_primary: bool) -> None:
    """Swap the operation's view function for :func:`_claim_or_replay` around it.

    Done on the built operation rather than on the function itself because
    django-ninja reads the function's signature and annotations when it
    builds the operation.
    """
    operation.view_func = _claim_or_replay(operation.view_func, needs_primary)


def _in_write_request(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Wrap ``Operation.run``: the key's transaction (if the view wrapper opens one) ends here."""

    @functools.wraps(run)
    def run_write(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        read_only.mark_write(request)
        try:
            # The view wrapper enters the transaction on this stack; leaving
            # the block commits it, or rolls it back if it was marked so.
            with ExitStack() as stack:
                setattr(request, _STACK_ATTRIBUTE, stack)
                response = run(request, *args, **kwargs)
                key = getattr(request, _OPENED_ATTRIBUTE, None)
                if key is not None:
                    if claimed_key(request) == key and 200 <= response.status_code < 300:
                        _store(key, response)
                    else:
                        # An error answer (or a replay, which wrote nothing): the
                        # key is not kept, and neither is anything the view wrote.
                        transaction.set_rollback(True, using=WRITE_DB)
        except read_only.DATABASE_ERRORS as exc:
            # Storing or committing failed. If the commit's fate is unknown,
            # the client's retry with the same key finds out safely.
            return read_only.unavailable_response(request, exc)
        return response

    return run_write


def _claim_or_replay(view: Callable[..., Any], needs_primary: bool) -> Callable[..., Any]:
    """Wrap the view function: open the key's transaction, claim the key and run the view, or replay."""

    @functools.wraps(view)
    def claim_or_replay(request: HttpRequest, **values: Any) -> Any:
        key = request.headers.get(KEY_HEADER)
        if key is not None and not valid_key(key):
            raise InvalidKey(f"{KEY_HEADER} must be 1-64 characters of letters, digits, '_' and '-'")
        if needs_primary or key is not None:
            primary.ensure_writable()  # a primary known to be down: the read-only 503 at once
        if key is None:
            return view(request, **values)
        fingerprint = Fingerprint.of(request)
        stack: ExitStack = getattr(request, _STACK_ATTRIBUTE)
        stack.enter_context(transaction.atomic(using=WRITE_DB))
        setattr(request, _OPENED_ATTRIBUTE, key)
        if _claim(key, fingerprint):
            setattr(request, _CLAIM_ATTRIBUTE, key)
            return view(request, **values)
        return _replay(key, fingerprint)

    setattr(claim_or_replay, _MARK_ATTRIBUTE, True)
    return claim_or_replay


def _claim(key: str, fingerprint: Fingerprint) -> bool:
    """Insert the key's row in the current transaction; ``False`` if it exists (committed).

    Raises :class:`KeyInFlight` if another transaction held the key for longer
    than :data:`IN_FLIGHT_WAIT`.
    """
    connection = connections[WRITE_DB]
    if not connection.in_atomic_block:
        raise RuntimeError("an idempotency key must be claimed inside the write's transaction")
    bounded = connection.vendor == "postgresql"
    params = [key, fingerprint.method, fingerprint.path, fingerprint.body_sha256, timezone.now()]
    try:
        with connection.cursor() as cursor:
            if bounded:
                # Only the wait for the key is bounded; the write itself runs
                # with the server's settings again.
                cursor.execute(f"SET LOCAL lock_timeout = '{IN_FLIGHT_WAIT}'")
            cursor.execute(CLAIM_SQL, params)
            claimed = cursor.fetchone() is not None
            if bounded:
                cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
    except OperationalError as exc:
        if isinstance(exc.__cause__, LockNotAvailable):
            raise KeyInFlight(f"a request with this {KEY_HEADER} is still in progress; try again") from exc
        raise
    return claimed


def _replay(key: str, fingerprint: Fingerprint) -> HttpResponse:
    """The stored answer for ``key``, if it was given to the same request."""
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(STORED_SQL, [key])
        row = cursor.fetchone()
    if row is None or row[3] is None:
        # Purged between the INSERT and this SELECT: vanishingly rare, and
        # a retry then simply claims the key.
        raise KeyInFlight(f"this {KEY_HEADER} is being released; try again")
    method, path, body_sha256, status, body = row
    if Fingerprint(method, path, body_sha256) != fingerprint:
        raise KeyReused(f"this {KEY_HEADER} was already used for another request ({method} {path})")
    response = HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
    response[REPLAYED_HEADER] = "true"
    return response


def _store(key: str, response: HttpResponseBase) -> None:
    """Record the finished answer in the key's row (same transaction as the write)."""
    body = response.content.decode("utf-8") if isinstance(response, HttpResponse) else ""
    with connections[WRITE_DB].cursor() as cursor:
        cursor.execute(STORE_SQL, [response.status_code, body, key])
