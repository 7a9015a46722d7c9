"""Exercise ``PUT /v1/users/{user_id}/avatar`` end to end: middleware, Pillow, files, row, answer.

Run by ``test_platform_avatar.py`` (through ``platform_support.run_probe``)
under ``platform_sqlite_settings``, with ``MEDIA_ROOT`` in a temporary
directory. The requests go through Django's own test client, so the whole
stack runs as under gunicorn: the upload limit and ninja's PUT multipart
parsing (middleware), the service token, the idempotency wrapper and the
view. Prints one JSON line.
"""
from __future__ import annotations

import hashlib
import io
import json
import stat
import struct
import zlib
from pathlib import Path
from typing import Any

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.client import encode_multipart  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from PIL import Image  # noqa: E402

from platform_api import avatars  # noqa: E402
from platform_api.models import IdempotencyKey, User  # noqa: E402

AUTH = {"Authorization": "Bearer unit-test-token"}
BOUNDARY = "probe-boundary-5f1e"


def png(size: tuple[int, int], colour: tuple[int, ...], mode: str = "RGB") -> bytes:
    """A PNG of one colour, with opaque white in its top-left quarter."""
    image = Image.new(mode, size, colour)
    image.paste((255, 255, 255, 255)[: len(mode)], (0, 0, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels: a decompression bomb's shape."""
    data = bytearray(png((8, 8), (1, 2, 3)))
    # The IHDR chunk follows the 8-byte signature: length (4), type (4), width (4), height (4), ...
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def image_file(fmt: str, size: tuple[int, int] = (40, 30), **save: Any) -> bytes:
    """An image of ``size`` saved as ``fmt`` (a Pillow format name)."""
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format=fmt, **save)
    return out.getvalue()


def rotated_jpeg() -> bytes:
    """A 60x20 JPEG whose EXIF says "rotate 90 degrees": upright it is 20x60 (left half red)."""
    image = Image.new("RGB", (60, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 30, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90 degrees clockwise to show
    exif[0x010F] = "Probe Camera"  # Make: metadata that must not survive
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=95)
    return out.getvalue()


def put(client: Client, user_id: int, data: bytes, key: str | None = None, name: str = "me.png") -> dict[str, Any]:
    """Upload ``data`` as the multipart field ``file``; ``{status, body, headers}``."""
    body = encode_multipart(BOUNDARY, {"file": _named(data, name)})
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    response = client.put(
        f"/v1/users/{user_id}/avatar",
        data=body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers=headers,
    )
    return {
        "status": response.status_code,
        "body": json.loads(response.content or b"null"),
        "replayed": response.get("Idempotent-Replayed") == "true",
    }


def _named(data: bytes, name: str) -> io.BytesIO:
    """A file object with a name, as ``encode_multipart`` wants for a file part."""
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def media_files() -> list[str]:
    """Every file under MEDIA_ROOT (relative paths), temporary files included."""
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def describe(name: str) -> dict[str, Any]:
    """What a stored avatar is: format, size, mode, metadata, permissions, whether its name is its hash."""
    path = Path(settings.MEDIA_ROOT) / name
    data = path.read_bytes()
    with Image.open(path) as image:
        image.load()
        return {
            "format": image.format,
            "size": list(image.size),
            "mode": image.mode,
            "metadata": sorted(key for key in ("exif", "icc_profile", "xmp") if image.info.get(key)),
            "permissions": oct(stat.S_IMODE(path.stat().st_mode)),
            "name_is_hash": path.stem == hashlib.sha256(data).hexdigest()[:16],
            "top_left": list(image.getpixel((10, 10))),
            "top_right": list(image.getpixel((245, 10))),
        }


def user_row(user_id: int) -> dict[str, Any]:
    """The user's avatar and version as stored."""
    row = User.objects.using("default").values("avatar", "version").get(id=user_id)
    return dict(row)


def main() -> None:
    """Run every case and print the report."""
    setup_test_environment()  # lets the test client's "testserver" host in
    call_command("migrate", verbosity=0)
    alice = User.objects.create_user("alice", password="password123").id
    bob = User.objects.create_user("bob", password="password123").id
    client = Client()
    red, green = png((300, 200), (200, 0, 0)), png((300, 200), (0, 160, 0))
    report: dict[str, Any] = {"alice": alice, "initial_user": client.get("/v1/users/alice", headers=AUTH).json()}

    # Bad input first, while nothing is stored: each must leave no file and no change.
    before = user_row(alice)
    report["rejected"] = {
        "text": put(client, alice, b"just some text, not an image\n" * 10, name="notes.png"),
        "bmp": put(client, alice, image_file("BMP"), name="pic.png"),
        "truncated_png": put(client, alice, red[: len(red) // 2]),
        "too_wide": put(client, alice, image_file("PNG", (4097, 8))),
        "huge_header": put(client, alice, png_claiming(5000, 5000)),
        "bomb": put(client, alice, png_claiming(30000, 30000)),
        "too_large": put(client, alice, b"\0" * (avatars.MAX_UPLOAD_BYTES + 1)),
        "body_too_large": put(client, alice, b"\0" * (avatars.MAX_UPLOAD_BYTES + avatars.MULTIPART_OVERHEAD_BYTES)),
        "unknown_user": put(client, 999999, red),
        "no_file": client.put(
            f"/v1/users/{alice}/avatar", data=encode_multipart(BOUNDARY, {"other": "x"}),
            content_type=f"multipart/form-data; boundary={BOUNDARY}", headers=AUTH,
        ).status_code,
    }
    report["after_rejected"] = {"files": media_files(), "row_unchanged": user_row(alice) == before}

    # Accepted uploads.
    first = put(client, alice, red, key="avatar-1")
    report["first"] = first
    report["first_file"] = describe(first["body"]["avatar"])
    report["first_row"] = user_row(alice)
    report["profile_after_first"] = client.get("/v1/users/alice", headers=AUTH).json()
    report["replay"] = put(client, alice, red, key="avatar-1")
    report["same_image_again"] = put(client, alice, red)
    second = put(client, alice, green)
    report["second"] = second
    report["profile_after_second"] = client.get("/v1/users/alice", headers=AUTH).json()
    report["bob_same_image"] = put(client, bob, red)
    report["jpeg"] = put(client, bob, rotated_jpeg(), name="photo.jpg")
    report["jpeg_file"] = describe(report["jpeg"]["body"]["avatar"])
    report["transparent"] = put(client, bob, png((64, 64), (0, 0, 0, 0), mode="RGBA"))
    report["transparent_file"] = describe(report["transparent"]["body"]["avatar"])
    report["gif"] = put(client, bob, image_file("GIF"))
    report["webp"] = put(client, bob, image_file("WEBP"))
    report["largest_side"] = put(client, bob, image_file("PNG", (4096, 16)))
    report["files"] = media_files()
    report["keys"] = sorted(IdempotencyKey.objects.using("default").values_list("key", flat=True))
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
