"""The platform's writes with real transactions: idempotency keys, read-only mode, health checks.

The API runs in child processes (``platform_write_probe.py``) under
``platform_sqlite_settings``: SQLite files stand in for PostgreSQL, and an alias
pointed at a port nothing listens on stands for a database that is down. See
the probe's docstring for the three modes; ``primary_down`` and
``replica_down`` run on the file the ``sqlite`` mode seeded.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.unit.platform_support import run_probe

PROBE = Path(__file__).resolve().parent / "platform_write_probe.py"
READ_ONLY = "The site is read-only for now: the primary database is unavailable. Try again in a few seconds."
DATABASE_DOWN = "the database is unavailable; try again shortly"
WRITE_CASES = ["story", "story_keyed", "vote", "follow", "unfollow", "signup", "click", "export"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run the three modes: ``sqlite`` first (it seeds the file), then both outages side by side."""
    base = {
        "DJANGO_SETTINGS_MODULE": "platform_sqlite_settings",
        "PROBE_SQLITE_PATH": str(tmp_path_factory.mktemp("platform-writes") / "db.sqlite3"),
        # Fast hashing: these tests are about transactions, not passwords.
        "DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
        # The read fence asks PostgreSQL for WAL positions, which SQLite cannot answer.
        "READ_FENCE_ENABLED": "false",
        # How long a call waits for the alias that is down; short, to keep the tests quick.
        "DATABASE_POOL_TIMEOUT": "0.25",
    }

    def run(mode: str, aliases: str) -> dict[str, Any]:
        return run_probe(PROBE, {**base, "PROBE_MODE": mode, "PROBE_SQLITE_ALIASES": aliases})

    found = {"sqlite": run("sqlite", "default,replica")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        primary_down = pool.submit(run, "primary_down", "replica")
        replica_down = pool.submit(run, "replica_down", "default")
        found["primary_down"] = primary_down.result()
        found["replica_down"] = replica_down.result()
    return found


@pytest.fixture(scope="module")
def keyed(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Idempotency-Key cases (mode ``sqlite``)."""
    return reports["sqlite"]


def replayed(answer: dict[str, Any]) -> bool:
    """Whether an answer came from a stored response."""
    return answer["headers"].get("Idempotent-Replayed") == "true"


def assert_one_write_two_answers(first: dict[str, Any], second: dict[str, Any], status: int) -> None:
    """The first answer did the write; the second is the stored copy, marked as such."""
    assert first["status"] == second["status"] == status, (first, second)
    assert second["body"] == first["body"]
    assert not replayed(first) and replayed(second)


# --------------------------------------------------------------------------
# Idempotency keys
# --------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["space", "too_long", "empty", "accent", "slash"])
def test_a_malformed_key_is_a_400(keyed: dict[str, Any], case: str) -> None:
    answer = keyed["validation"][case]
    assert answer["status"] == 400
    assert "Idempotency-Key must be 1-64 characters" in answer["body"]["detail"]


def test_a_malformed_key_writes_nothing_and_64_characters_are_fine(keyed: dict[str, Any]) -> None:
    validation = keyed["validation"]
    assert validation["stories_written"] == 0
    assert validation["keys_stored"] == 0
    assert validation["longest"]["status"] == 201


def test_a_story_sent_twice_with_one_key_is_stored_once(keyed: dict[str, Any]) -> None:
    replay = keyed["replay"]
    assert_one_write_two_answers(*replay["story"], status=201)
    assert replay["story_rows"] == 1
    # Without a key the same two requests make two stories: the key is what saves us.
    assert replay["story_unkeyed_rows"] == 2


def test_a_vote_sent_twice_with_one_key_counts_once_and_answers_counted_both_times(keyed: dict[str, Any]) -> None:
    replay = keyed["replay"]
    assert_one_write_two_answers(*replay["vote"], status=200)
    assert replay["vote"][1]["body"]["counted"] is True
    assert replay["vote_rows"] == 1
    assert replay["story_votes"] == 1
    # Unkeyed, the retry is not applied either, but its answer differs from the
    # first one: a client whose first answer was lost would be told "already voted".
    assert [answer["body"]["counted"] for answer in replay["vote_unkeyed"]] == [True, False]


def test_a_sign_up_retried_with_its_key_is_the_same_201_not_a_409(keyed: dict[str, Any]) -> None:
    replay = keyed["replay"]
    assert_one_write_two_answers(*replay["signup"], status=201)
    assert replay["signup_unkeyed_again"]["status"] == 409


def test_follow_and_unfollow_replay_their_first_answer(keyed: dict[str, Any]) -> None:
    replay = keyed["replay"]
    assert_one_write_two_answers(*replay["follow"], status=200)
    assert_one_write_two_answers(*replay["unfollow"], status=200)
    assert replay["follow"][1]["body"]["changed"] is True
    assert replay["unfollow"][1]["body"]["changed"] is True
    assert replay["follow_rows"] == 0


@pytest.mark.parametrize("case", ["other_body", "other_path", "other_method"])
def test_a_key_reused_for_another_request_is_a_422(keyed: dict[str, Any], case: str) -> None:
    answer = keyed["fingerprint"][case]
    assert answer["status"] == 422
    assert answer["body"]["detail"].startswith("this Idempotency-Key was already used for another request")


def test_a_key_reused_for_another_request_writes_nothing(keyed: dict[str, Any]) -> None:
    assert keyed["fingerprint"]["alice_voted"] is False
    assert keyed["fingerprint"]["still_following"] is False


def test_an_error_answer_does_not_keep_its_key(keyed: dict[str, Any]) -> None:
    fingerprint = keyed["fingerprint"]
    assert fingerprint["error_first"]["status"] == 404
    assert fingerprint["error_key_stored"] is False
    reused = fingerprint["error_key_reused"]
    assert reused["status"] == 200 and reused["body"]["counted"] is True and not replayed(reused)


def test_a_stored_answer_is_never_replayed_without_the_service_token(keyed: dict[str, Any]) -> None:
    answer = keyed["fingerprint"]["unauthenticated_replay"]
    assert answer["status"] == 401
    assert not replayed(answer)


def test_the_key_and_the_write_commit_together_or_not_at_all(keyed: dict[str, Any]) -> None:
    atomicity = keyed["atomicity"]
    # Storing the answer failed: the story, the key and the after-commit hook are all gone.
    assert atomicity["failed"]["status"] == 503
    assert atomicity["after_failure"] == {"stories": 0, "key": False, "relayed": 0}
    # So the retry with the same key does the write, once.
    assert_one_write_two_answers(*atomicity["retried"], status=201)
    assert atomicity["stories"] == 1


def test_after_commit_hooks_run_once_after_the_key_transaction_commits(keyed: dict[str, Any]) -> None:
    atomicity = keyed["atomicity"]
    assert len(atomicity["relayed"]) == 1 and len(atomicity["relayed"][0]) == 1
    assert atomicity["outbox_for_story"] == 1


def test_concurrent_requests_with_one_key_apply_once(keyed: dict[str, Any]) -> None:
    first, second = keyed["concurrency"]["results"]
    assert_one_write_two_answers(first, second, status=201)
    # The second was sent while the first was in flight (0.5 s) and waited for it.
    assert second["seconds"] >= 0.3
    assert keyed["concurrency"]["stories"] == 1


def test_a_keyed_click_is_one_event_whose_id_comes_from_the_key(keyed: dict[str, Any]) -> None:
    offline = keyed["offline"]
    assert_one_write_two_answers(*offline["clicks"], status=202)
    assert offline["click_event_ids"] == [offline["expected_event_id"]]


def test_a_keyed_export_is_one_job_published_once(keyed: dict[str, Any]) -> None:
    offline = keyed["offline"]
    assert_one_write_two_answers(*offline["exports"], status=202)
    assert offline["export_jobs"] == 1
    assert offline["export_published"] == [offline["exports"][0]["body"]["id"]]


def test_the_purge_deletes_keys_older_than_a_day_only(keyed: dict[str, Any]) -> None:
    purge = keyed["purge"]
    assert purge["deleted"] == 1
    assert purge["old_left"] is False and purge["young_left"] is True


def test_every_write_endpoint_honours_idempotency_keys_except_sign_in(keyed: dict[str, Any]) -> None:
    operations = keyed["write_operations"]
    assert operations.pop("POST /sessions") == [False]  # signing in writes nothing
    assert len(operations) == 8
    assert "PUT /users/{user_id}/avatar" in operations
    assert all(flag == [True] for flag in operations.values()), operations


# --------------------------------------------------------------------------
# Read-only mode: the primary is down
# --------------------------------------------------------------------------
@pytest.mark.parametrize("case", WRITE_CASES)
def test_without_the_primary_every_write_is_a_quick_read_only_503(
    reports: dict[str, dict[str, Any]], case: str
) -> None:
    answer = reports["primary_down"]["writes"][case]
    assert answer["status"] == 503
    assert answer["body"] == {"detail": READ_ONLY}
    assert answer["headers"]["Retry-After"] == "5"
    assert answer["headers"]["X-Read-Only"] == "true"
    assert answer["seconds"] < 2.0


@pytest.mark.parametrize("case", ["story", "user", "sign_in"])
def test_without_the_primary_reads_and_sign_in_still_work(reports: dict[str, dict[str, Any]], case: str) -> None:
    answer = reports["primary_down"]["reads"][case]
    assert answer["status"] == 200, answer
    assert answer["body"]["id"] >= 1


@pytest.mark.parametrize("case", ["story", "story_keyed", "follow", "click_keyed"])
def test_a_primary_known_to_be_down_refuses_writes_at_once(keyed: dict[str, Any], case: str) -> None:
    answer = keyed["known_down"][case]
    assert answer["status"] == 503
    assert answer["body"] == {"detail": READ_ONLY}
    assert answer["headers"]["X-Read-Only"] == "true"
    assert answer["seconds"] < 0.2  # no wait for a connection
    assert keyed["known_down"]["stories"] == 0 and keyed["known_down"]["keys"] == 0


def test_a_primary_known_to_be_down_still_checks_the_token_first_and_lets_reads_and_clicks_through(
    keyed: dict[str, Any],
) -> None:
    known_down = keyed["known_down"]
    assert known_down["unauthenticated"]["status"] == 401
    assert known_down["read"]["status"] == 200
    # An unkeyed click needs only RabbitMQ.
    assert known_down["click"]["status"] == 202 and known_down["click"]["body"]["queued"] == "broker"
    assert known_down["published"] == ["click"]


def test_without_the_replica_a_write_that_reads_it_is_not_called_read_only(reports: dict[str, dict[str, Any]]) -> None:
    # A click and an export look their story or user up through the read pool.
    for case in ("click", "export"):
        answer = reports["replica_down"]["writes"][case]
        assert answer["status"] == 503
        assert answer["body"] == {"detail": DATABASE_DOWN}
        assert "X-Read-Only" not in answer["headers"]
        assert answer["headers"]["Retry-After"] == "5"


def test_without_the_replica_writes_on_the_primary_alone_still_work(reports: dict[str, dict[str, Any]]) -> None:
    writes = reports["replica_down"]["writes"]
    assert [writes[case]["status"] for case in ("story", "vote", "follow", "signup")] == [201, 200, 200, 201]
    assert reports["replica_down"]["reads"]["story"]["body"] == {"detail": DATABASE_DOWN}


# --------------------------------------------------------------------------
# Health checks
# --------------------------------------------------------------------------
def test_healthz_reports_a_dead_primary_without_failing(reports: dict[str, dict[str, Any]]) -> None:
    answer = reports["primary_down"]["health"]["plain"]
    assert answer["status"] == 200
    assert answer["body"] == {
        "status": "degraded", "server": "platform-unit", "database": True, "primary": False, "cache": False,
    }
    # Inside HAProxy's one-second check even with the primary's check timing out.
    assert answer["seconds"] < 1.0


def test_healthz_fails_without_the_read_pool(reports: dict[str, dict[str, Any]]) -> None:
    answer = reports["replica_down"]["health"]["plain"]
    assert answer["status"] == 503
    assert answer["body"]["status"] == "unavailable"
    assert (answer["body"]["database"], answer["body"]["primary"]) == (False, True)


@pytest.mark.parametrize("mode", ["primary_down", "replica_down"])
def test_healthz_is_503_draining_while_the_drain_file_exists(reports: dict[str, dict[str, Any]], mode: str) -> None:
    health = reports[mode]["health"]
    assert health["draining"]["status"] == 503
    assert health["draining"]["body"]["status"] == "draining"
    # An empty setting never drains.
    assert health["unset"]["body"]["status"] != "draining"


def test_healthz_stops_draining_when_the_file_is_gone(reports: dict[str, dict[str, Any]]) -> None:
    health = reports["primary_down"]["health"]
    assert [health[case]["status"] for case in ("plain", "draining", "unset")] == [200, 503, 200]
