"""``PUT /v1/users/{user_id}/avatar``: Pillow's checks, the stored WebP, its versioned name, the user row.

The API runs in a child process (``platform_avatar_probe.py``) under
``platform_sqlite_settings`` with ``MEDIA_ROOT`` in this test's temporary
directory, through Django's test client, so the upload middleware and the
idempotency wrapper run as in production.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.platform_support import run_probe

PROBE = Path(__file__).resolve().parent / "platform_avatar_probe.py"


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MEDIA_ROOT for the probe: empty before it runs."""
    return tmp_path_factory.mktemp("platform-media")


@pytest.fixture(scope="module")
def report(media_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One child process uploads every case (a couple of seconds)."""
    return run_probe(
        PROBE,
        {
            "DJANGO_SETTINGS_MODULE": "platform_sqlite_settings",
            "PROBE_SQLITE_PATH": str(tmp_path_factory.mktemp("platform-avatar") / "db.sqlite3"),
            "MEDIA_ROOT": str(media_root),
            "DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
            "READ_FENCE_ENABLED": "false",
        },
    )


def test_a_valid_png_becomes_a_256_pixel_webp_under_media_root(report: dict[str, Any], media_root: Path) -> None:
    first = report["first"]
    assert first["status"] == 200
    name = first["body"]["avatar"]
    assert name.startswith(f"avatars/{report['alice']}/") and name.endswith(".webp")
    assert (media_root / name).is_file()
    stored = report["first_file"]
    assert (stored["format"], stored["size"], stored["mode"]) == ("WEBP", [256, 256], "RGB")
    assert stored["name_is_hash"], "the name is the first 16 hex digits of the file's SHA-256"
    assert stored["permissions"] == "0o644"
    # Centre-cropped, not squashed: the white quarter of a 300x200 image stays top left.
    assert stored["top_left"] == [255, 255, 255]
    assert stored["top_right"][0] > 150 and stored["top_right"][1] < 50


def test_the_user_payload_and_row_carry_the_new_avatar(report: dict[str, Any]) -> None:
    assert report["initial_user"]["avatar"] == ""
    name = report["first"]["body"]["avatar"]
    assert report["first"]["body"]["version"] == report["initial_user"]["version"] + 1
    assert report["first_row"] == {"avatar": name, "version": report["first"]["body"]["version"]}
    assert report["profile_after_first"] == report["first"]["body"]
    assert report["profile_after_second"]["avatar"] == report["second"]["body"]["avatar"]


def test_another_image_gets_another_name_and_the_old_file_is_kept(report: dict[str, Any], media_root: Path) -> None:
    first, second = report["first"]["body"]["avatar"], report["second"]["body"]["avatar"]
    assert first != second
    assert (media_root / first).is_file() and (media_root / second).is_file()


def test_the_same_image_gets_the_same_name(report: dict[str, Any]) -> None:
    assert report["same_image_again"]["status"] == 200
    assert report["same_image_again"]["body"]["avatar"] == report["first"]["body"]["avatar"]
    # Names are per user: bob's copy of the same image is his own file, under the same hash.
    bob = report["bob_same_image"]["body"]
    alice_hash = Path(report["first"]["body"]["avatar"]).name
    assert bob["avatar"] == f"avatars/{bob['id']}/{alice_hash}"


def test_an_upload_retried_with_its_key_is_replayed(report: dict[str, Any]) -> None:
    assert report["replay"]["replayed"] and not report["first"]["replayed"]
    assert report["replay"]["body"] == report["first"]["body"]
    assert report["keys"] == ["avatar-1"]


def test_exif_orientation_is_applied_and_metadata_dropped(report: dict[str, Any]) -> None:
    stored = report["jpeg_file"]
    assert report["jpeg"]["status"] == 200
    # The JPEG is 60x20 with its left half red and says "rotate 90 degrees":
    # upright, red is on top, so both top corners of the avatar are red.
    for corner in ("top_left", "top_right"):
        red, green, blue = stored[corner]
        assert red > 200 and blue < 50, (corner, stored[corner])
    assert stored["metadata"] == []


def test_transparency_is_kept(report: dict[str, Any]) -> None:
    stored = report["transparent_file"]
    assert stored["mode"] == "RGBA"
    assert stored["top_left"] == [255, 255, 255, 255] and stored["top_right"][3] == 0


@pytest.mark.parametrize("case", ["gif", "webp", "largest_side"])
def test_every_accepted_format_and_the_largest_size_are_accepted(report: dict[str, Any], case: str) -> None:
    assert report[case]["status"] == 200
    assert report[case]["body"]["avatar"].endswith(".webp")


@pytest.mark.parametrize("case", ["text", "bmp", "truncated_png"])
def test_a_file_that_is_not_an_accepted_image_is_a_415(report: dict[str, Any], case: str) -> None:
    answer = report["rejected"][case]
    assert answer["status"] == 415
    assert answer["body"] == {"detail": "the file is not a JPEG, PNG, GIF or WebP image"}


@pytest.mark.parametrize("case", ["too_wide", "huge_header", "bomb"])
def test_too_many_pixels_is_a_422(report: dict[str, Any], case: str) -> None:
    answer = report["rejected"][case]
    assert answer["status"] == 422
    assert answer["body"] == {"detail": "the image is larger than 4096x4096 pixels"}


@pytest.mark.parametrize("case", ["too_large", "body_too_large"])
def test_more_than_2_mib_is_a_413(report: dict[str, Any], case: str) -> None:
    # "too_large" passes the middleware's limit on the whole body and is
    # caught by the view; "body_too_large" is refused before it is read.
    answer = report["rejected"][case]
    assert answer["status"] == 413
    assert answer["body"] == {"detail": "the image is larger than 2 MiB"}


def test_an_unknown_user_or_a_missing_file_is_refused(report: dict[str, Any]) -> None:
    assert report["rejected"]["unknown_user"]["status"] == 404
    assert report["rejected"]["no_file"] == 422


def test_bad_input_writes_no_file_and_changes_no_row(report: dict[str, Any]) -> None:
    assert report["after_rejected"] == {"files": [], "row_unchanged": True}


def test_only_finished_avatars_are_left_in_media_root(report: dict[str, Any]) -> None:
    # No temporary file survives the atomic writes.
    assert all(name.endswith(".webp") and "/." not in name for name in report["files"])
    assert len(report["files"]) == len(set(report["files"]))
