"""User avatars: check an upload with Pillow, normalise it, store it under a name that changes with it.

The post's "Introduction to architecting systems for scale" serves user
uploads from a separate static host behind a CDN, not from the application
servers. nginx (the origin) serves ``MEDIA_ROOT`` at the web tier's
``MEDIA_URL``, and a CDN edge caches it; this module is the application's side:

* **Limits.** At most :data:`MAX_UPLOAD_BYTES` (413), one of JPEG, PNG, GIF or
  WebP as Pillow reads the bytes, whatever the file name or content type says
  (415), and at most :data:`MAX_SIDE` pixels a side (422). Pillow only parses
  the header to learn the size, so a small file that claims a huge canvas (a
  decompression bomb) is refused before any pixel is decoded.
* **One shape.** Turned upright (EXIF orientation), centre-cropped to a square,
  scaled to :data:`AVATAR_SIDE` pixels and re-encoded as WebP. Re-encoding also
  drops every piece of metadata (EXIF with GPS positions, XMP, ICC): Pillow's
  WebP writer only writes what it is given, and it is given nothing.
* **Versioned names.** The file is ``avatars/<user id>/<16 hex of the SHA-256
  of the WebP bytes>.webp`` under ``MEDIA_ROOT``. A new avatar is a new URL, so
  the CDN may cache every avatar URL forever (``immutable``) and is never asked
  to purge one: a page rendered after the change names the new file, and none
  can be served a stale image under it.

:class:`UploadLimitMiddleware` enforces the size limit on the whole request
before Django reads it.
"""
from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from PIL import Image, ImageOps

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
# Room for the multipart framing around the file: boundaries, part headers.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_SIDE = 4096
AVATAR_SIDE = 256
WEBP_QUALITY = 85
# Pillow format names; only these decoders are ever run on an upload.
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
# 16 hex digits are 64 bits: two different avatars of one user never share a name.
NAME_HASH_HEX = 16

TOO_LARGE_DETAIL = f"the image is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB"
UNSUPPORTED_DETAIL = "the file is not a JPEG, PNG, GIF or WebP image"
TOO_MANY_PIXELS_DETAIL = f"the image is larger than {MAX_SIDE}x{MAX_SIDE} pixels"

# What a damaged or hostile file makes Pillow's decoders raise.
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error)


class AvatarRejected(Exception):
    """The upload cannot become an avatar; ``status`` is the HTTP answer, the message its detail."""

    status = 422


class TooLarge(AvatarRejected):
    """More than :data:`MAX_UPLOAD_BYTES`."""

    status = 413


class UnsupportedImage(AvatarRejected):
    """Not an image Pillow can read as one of :data:`ACCEPTED_FORMATS`."""

    status = 415


class TooManyPixels(AvatarRejected):
    """Wider or taller than :data:`MAX_SIDE`, or a decompression bomb."""

    status = 422


def read_upload(upload: UploadedFile) -> bytes:
    """The upload's bytes, or :class:`TooLarge` without reading more than the limit allows."""
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise TooLarge(TOO_LARGE_DETAIL)
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(TOO_LARGE_DETAIL)
    return data


def normalise(data: bytes) -> bytes:
    """Check ``data`` and return the avatar: a 256x256 WebP without metadata.

    Raises :class:`AvatarRejected` (one of its subclasses) for anything that is
    not an acceptable image; nothing is written either way.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(TOO_LARGE_DETAIL)
    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as probe:
            width, height = probe.size
            if width > MAX_SIDE or height > MAX_SIDE:
                raise TooManyPixels(TOO_MANY_PIXELS_DETAIL)
            # verify() checks the file's structure without decoding it, and
            # leaves the image unusable, hence the second open below.
            probe.verify()
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            upright = ImageOps.exif_transpose(image)
            has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
            square = ImageOps.fit(
                upright.convert("RGBA" if has_alpha else "RGB"),
                (AVATAR_SIDE, AVATAR_SIDE),
                method=Image.Resampling.LANCZOS,
            )
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(TOO_MANY_PIXELS_DETAIL) from exc
    except _DECODE_ERRORS as exc:
        raise UnsupportedImage(UNSUPPORTED_DETAIL) from exc
    out = io.BytesIO()
    square.save(out, format="WEBP", quality=WEBP_QUALITY)
    return out.getvalue()


def avatar_name(user_id: int, webp: bytes) -> str:
    """Where an avatar lives under ``MEDIA_ROOT``: named by its content, so a new one is a new URL."""
    return f"avatars/{int(user_id)}/{hashlib.sha256(webp).hexdigest()[:NAME_HASH_HEX]}.webp"


def store(user_id: int, webp: bytes) -> str:
    """Write the avatar under ``MEDIA_ROOT`` atomically; return its name (relative to ``MEDIA_ROOT``).

    A temporary file in the same directory, then ``os.replace``: nginx never
    serves a half-written file, whatever it is asked for. Old avatars are kept
    on purpose: pages (and CDN copies of pages) rendered before the change
    still name them, and they should not break.
    """
    name = avatar_name(user_id, webp)
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(webp)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; nginx runs as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return name


class UploadLimitMiddleware:
    """Refuse a multipart request larger than an avatar allows before reading it, and buffer the rest.

    Two reasons to do this before the view: Django would otherwise read any
    size of upload into memory or a temporary file, before the service token
    or the size had been checked; and reading the body here, into
    ``request.body``, before the multipart is parsed keeps that body available
    to the ``Idempotency-Key`` fingerprint (``platform_api.idempotency``),
    which hashes it. Parsed straight from the stream, it would be gone.
    Must come before ninja's ``fix_request_files_middleware``, which parses
    multipart bodies of PUT requests.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Answer 413 for an oversized multipart body; otherwise read it into memory and go on."""
        if request.content_type == "multipart/form-data":
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0  # Django reads no body without a valid length either
            if length > MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES:
                return JsonResponse({"detail": TOO_LARGE_DETAIL}, status=413)
            request.body  # noqa: B018 - reads and keeps the body (see the class docstring)
        return self.get_response(request)
