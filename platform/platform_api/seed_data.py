"""Deterministic demo data: users, stories, follows and votes that feel real.

Pure Python (no Django), so it is unit-tested without a database; the ``seed``
management command only loads what :func:`generate` returns. Everything comes
from one ``random.Random(seed)``, so the same seed gives the same site (the
timestamps are relative to ``now``, so the front page always looks current).

The shapes follow real social sites, because caching behaves differently on
skewed data than on uniform data: a few users have hundreds of followers and
many have a handful (Zipf-distributed popularity, Pareto-distributed activity),
and a few stories collect most of the votes.
"""
from __future__ import annotations

import bisect
import itertools
import math
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Sequence

from platform_api import rules
from platform_api import seed_words as words

STORY_DAYS = 30  # stories are spread over the last month
JOIN_DAYS = (31, 900)  # members joined before the first seeded story
MAX_FOLLOWING = 300  # nobody follows more than this many people
ASK_SHARE = 0.08  # text-only "Ask" posts
VOTE_DELAY_HOURS = 6.0  # mean time from posting to a vote
CLICK_DAYS = 3  # clicks are spread over the last three days
CLICKS = 30_000  # default number of clicks
ANONYMOUS_CLICK_SHARE = 0.2  # clicks by visitors who are not logged in
INTEREST_GROUPS = 8  # readers mostly click stories of their own interests
IN_GROUP_SHARE = 0.6  # ... this share of the time
# Where clicks come from ("" is a direct visit), with rough weights: a link
# aggregator sends most, search and social media some.
REFERRERS: tuple[tuple[str, float], ...] = (
    ("", 0.28), ("news.ycombinator.com", 0.24), ("twitter.com", 0.11), ("reddit.com", 0.1),
    ("google.com", 0.12), ("lobste.rs", 0.06), ("duckduckgo.com", 0.03), ("mastodon.social", 0.03),
    ("bing.com", 0.015), ("t.co", 0.015),
)


class SeedUser(NamedTuple):
    """A row of ``users`` (the command adds the shared password hash)."""

    id: int
    username: str
    date_joined: datetime


class SeedStory(NamedTuple):
    """A row of ``stories`` (``votes`` is counted afterwards, in SQL)."""

    id: int
    author_id: int
    title: str
    url: str
    text: str
    created_at: datetime


class SeedFollow(NamedTuple):
    """A row of ``follows``."""

    id: int
    follower_id: int
    followee_id: int
    created_at: datetime


class SeedVote(NamedTuple):
    """A row of ``votes``."""

    id: int
    story_id: int
    user_id: int
    created_at: datetime


class SeedClick(NamedTuple):
    """A row of ``clicks``: one visit through a story's link."""

    id: int
    event_id: str
    story_id: int
    user_id: int | None
    referrer_domain: str
    clicked_at: datetime


@dataclass(frozen=True)
class SeedData:
    """Everything :func:`generate` made, ids starting at 1 in each table."""

    users: list[SeedUser]
    stories: list[SeedStory]
    follows: list[SeedFollow]
    votes: list[SeedVote]
    clicks: list[SeedClick] = field(default_factory=list)


def generate(
    users: int = 1000,
    stories: int = 10_000,
    votes: int | None = None,
    seed: int = 42,
    now: datetime | None = None,
    clicks: int = CLICKS,
) -> SeedData:
    """Build the whole data set; ``votes`` defaults to five per story.

    Clicks are drawn last, from a random generator of their own, so adding
    them left every other table exactly as it was for a given seed.
    """
    if users < 2:
        raise ValueError("at least two users are needed (they follow and vote for each other)")
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    user_rows = make_users(rng, users, now)
    story_rows = make_stories(rng, user_rows, stories, now)
    follow_rows = make_follows(rng, user_rows, now)
    vote_rows = make_votes(rng, user_rows, story_rows, 5 * stories if votes is None else votes, now)
    click_rows = make_clicks(random.Random(f"clicks-{seed}"), user_rows, story_rows, vote_rows, clicks, now)
    return SeedData(user_rows, story_rows, follow_rows, vote_rows, click_rows)


# --------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------
def make_username(rng: random.Random) -> str:
    """One plausible handle: ``jsmith``, ``maria_garcia``, ``quietfalcon``, ``otter-rs`` ..."""
    first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
    adjective, noun = rng.choice(words.HANDLE_ADJECTIVES), rng.choice(words.HANDLE_NOUNS)
    style = rng.random()
    if style < 0.2:
        return f"{first[0]}{last}"
    if style < 0.35:
        return f"{first}_{last}"
    if style < 0.55:
        return f"{adjective}{noun}"
    if style < 0.7:
        return f"{first}{rng.choice([rng.randint(1, 99), rng.randint(1970, 2006)])}"
    if style < 0.8:
        return f"{noun}-{rng.choice(words.HANDLE_SUFFIXES)}"
    if style < 0.9:
        return f"{adjective.capitalize()}{noun.capitalize()}"
    return f"{first}{last[:3]}"


def make_users(rng: random.Random, count: int, now: datetime) -> list[SeedUser]:
    """``count`` users with distinct (ignoring case) valid names, joined over ~2.5 years."""
    taken: set[str] = set()
    rows: list[SeedUser] = []
    while len(rows) < count:
        name = make_username(rng)
        while name.lower() in taken:
            name = f"{name[:26]}{rng.randint(1, 999)}"
        if not rules.is_valid_username(name):
            continue
        taken.add(name.lower())
        joined = now - timedelta(days=rng.uniform(*JOIN_DAYS))
        rows.append(SeedUser(len(rows) + 1, name, joined))
    return rows


# --------------------------------------------------------------------------
# Stories
# --------------------------------------------------------------------------
def zipf_cum_weights(count: int, exponent: float, rng: random.Random) -> tuple[list[int], list[float]]:
    """Items ``0..count-1`` in a random order with cumulative Zipf weights.

    The first item in the returned order is the most popular; shuffling first
    means popularity does not follow ids.
    """
    order = list(range(count))
    rng.shuffle(order)
    weights = [1.0 / (rank + 1) ** exponent for rank in range(count)]
    return order, list(itertools.accumulate(weights))


def _slug(text: str, limit: int = 60) -> str:
    """``"Notes on cache invalidation"`` -> ``"notes-on-cache-invalidation"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "post"


def _slots(rng: random.Random, now: datetime) -> dict[str, str]:
    """Random values for every placeholder a title template may use."""
    system, system2 = rng.sample(words.SYSTEMS, 2)
    return {
        "adjective": rng.choice(words.ADJECTIVES),
        "company": rng.choice(words.COMPANIES),
        "concept": rng.choice(words.CONCEPTS),
        "language": rng.choice(words.LANGUAGES),
        "news_topic": rng.choice(words.NEWS_TOPICS),
        "news_verb": rng.choice(words.NEWS_VERBS),
        "number": f"{rng.choice([10, 50, 100, 250, 500])}k",
        "project": rng.choice(words.PROJECT_NAMES),
        "science": rng.choice(words.SCIENCE_TOPICS),
        "system": system,
        "system2": system2,
        "thing": rng.choice(words.THINGS),
        "year": str(now.year),
    }


def _title(template: str, slots: dict[str, str]) -> str:
    """Fill a template: "a" before a vowel becomes "an", and the first letter is a capital."""
    title = re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", template.format(**slots))
    return title[0].upper() + title[1:]


# Where links of each kind of story point, with rough weights.
DOMAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "project": (("github.com", 0.65), ("gitlab.com", 0.1), ("codeberg.org", 0.1), ("project.dev", 0.15)),
    "essay": (
        ("lethain.com", 0.1), ("jvns.ca", 0.1), ("danluu.com", 0.08), ("martinfowler.com", 0.08),
        ("blog.cloudflare.com", 0.12), ("brooker.co.za", 0.06), ("eli.thegreenplace.net", 0.06),
        ("medium.com", 0.15), ("substack.com", 0.15), ("fly.io", 0.1),
    ),
    "paper": (("arxiv.org", 0.7), ("dl.acm.org", 0.15), ("www.usenix.org", 0.15)),
    "news": (
        ("www.nytimes.com", 0.2), ("www.theverge.com", 0.15), ("arstechnica.com", 0.2), ("www.bbc.co.uk", 0.1),
        ("www.reuters.com", 0.1), ("www.theguardian.com", 0.1), ("www.wired.com", 0.05),
        ("www.quantamagazine.org", 0.1),
    ),
    "wiki": (("en.wikipedia.org", 1.0),),
}
CATEGORY_WEIGHTS = (("project", 0.25), ("essay", 0.35), ("paper", 0.09), ("news", 0.24), ("wiki", 0.07))


def _pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    return rng.choices([name for name, _ in weighted], weights=[w for _, w in weighted])[0]


def make_url(rng: random.Random, domain: str, title: str, author: str, slots: dict[str, str], when: datetime) -> str:
    """A real-looking link on ``domain`` for a story called ``title``."""
    slug = _slug(title)
    day = f"{when:%Y/%m/%d}"
    project = slots["project"].lower()
    builders = {
        "github.com": lambda: f"https://github.com/{author.lower()}/{project}",
        "gitlab.com": lambda: f"https://gitlab.com/{author.lower()}/{project}",
        "codeberg.org": lambda: f"https://codeberg.org/{author.lower()}/{project}",
        "project.dev": lambda: f"https://{project}.dev/",
        "medium.com": lambda: f"https://medium.com/@{author.lower()}/{slug}-{rng.getrandbits(48):012x}",
        "substack.com": lambda: f"https://{author.lower().replace('_', '')}.substack.com/p/{slug}",
        "fly.io": lambda: f"https://fly.io/blog/{slug}/",
        "jvns.ca": lambda: f"https://jvns.ca/blog/{day}/{slug}/",
        "eli.thegreenplace.net": lambda: f"https://eli.thegreenplace.net/{when:%Y}/{slug}",
        "martinfowler.com": lambda: f"https://martinfowler.com/articles/{slug}.html",
        "brooker.co.za": lambda: f"https://brooker.co.za/blog/{day}/{slug}.html",
        "arxiv.org": lambda: f"https://arxiv.org/abs/{when:%y%m}.{rng.randint(1, 29999):05d}",
        "dl.acm.org": lambda: f"https://dl.acm.org/doi/10.1145/{rng.randint(3500000, 3699999)}",
        "www.usenix.org": lambda: f"https://www.usenix.org/conference/nsdi{when:%y}/presentation/{slug}",
        "www.nytimes.com": lambda: f"https://www.nytimes.com/{day}/technology/{slug}.html",
        "www.theverge.com": lambda: f"https://www.theverge.com/{day}/{rng.randint(23000000, 24999999)}/{slug}",
        "arstechnica.com": lambda: f"https://arstechnica.com/information-technology/{when:%Y/%m}/{slug}/",
        "www.bbc.co.uk": lambda: f"https://www.bbc.co.uk/news/technology-{rng.randint(60000000, 69999999)}",
        "www.reuters.com": lambda: f"https://www.reuters.com/technology/{slug}-{when:%Y-%m-%d}/",
        "www.theguardian.com": lambda: f"https://www.theguardian.com/technology/{when:%Y/%b/%d}/{slug}".lower(),
        "www.wired.com": lambda: f"https://www.wired.com/story/{slug}/",
        "www.quantamagazine.org": lambda: f"https://www.quantamagazine.org/{slug}-{when:%Y%m%d}/",
        "en.wikipedia.org": lambda: "https://en.wikipedia.org/wiki/" + re.sub(r"\s+", "_", title.strip()),
    }
    builder = builders.get(domain, lambda: f"https://{domain}/{slug}/")
    return builder()


def _ask_text(rng: random.Random, slots: dict[str, str]) -> str:
    """Two or three short paragraphs for a text-only post."""
    sentences = rng.sample(words.ASK_SENTENCES, rng.randint(3, 6))
    paragraphs = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]
    return "\n\n".join(paragraphs).format(**slots)


def make_story(rng: random.Random, story_id: int, author: SeedUser, when: datetime) -> SeedStory:
    """One story: mostly links of various kinds, some text-only "Ask" posts."""
    slots = _slots(rng, when)
    if rng.random() < ASK_SHARE:
        title = _title(rng.choice(words.ASK_TEMPLATES), slots)
        return SeedStory(story_id, author.id, title, "", _ask_text(rng, slots), when)
    category = _pick(rng, CATEGORY_WEIGHTS)
    title = _title(rng.choice(words.TITLE_TEMPLATES[category]), slots)[: rules.TITLE_MAX_LENGTH]
    domain = _pick(rng, DOMAINS[category])
    url = make_url(rng, domain, title, author.username, slots, when)[: rules.URL_MAX_LENGTH]
    return SeedStory(story_id, author.id, title, url, "", when)


def make_stories(rng: random.Random, users: Sequence[SeedUser], count: int, now: datetime) -> list[SeedStory]:
    """``count`` stories over the last month; a few prolific authors post most.

    Ids follow time, as they would on a live site.
    """
    order, cum = zipf_cum_weights(len(users), 0.5, rng)
    authors = [users[order[i]] for i in _draw(rng, cum, count)]
    times = sorted(now - timedelta(seconds=rng.uniform(0, STORY_DAYS * 86400)) for _ in range(count))
    return [make_story(rng, i + 1, author, when) for i, (author, when) in enumerate(zip(authors, times))]


def _draw(rng: random.Random, cum_weights: Sequence[float], count: int) -> list[int]:
    """``count`` indexes drawn with replacement by cumulative weights."""
    total = cum_weights[-1]
    return [bisect.bisect_left(cum_weights, rng.random() * total) for _ in range(count)]


# --------------------------------------------------------------------------
# Follows and votes
# --------------------------------------------------------------------------
def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + (end - start) * rng.random() if end > start else end


def make_follows(rng: random.Random, users: Sequence[SeedUser], now: datetime) -> list[SeedFollow]:
    """The social graph: Pareto-many follows per user, followees by Zipf popularity.

    So a few users end up with hundreds of followers, most with a handful.
    """
    order, cum = zipf_cum_weights(len(users), 1.1, rng)
    limit = min(MAX_FOLLOWING, len(users) - 1)
    rows: list[SeedFollow] = []
    for follower in users:
        wanted = min(int(rng.paretovariate(1.2) * 6), limit)
        chosen: dict[int, None] = {}  # insertion-ordered set, for determinism
        for _ in range(20):  # popular users are drawn often; a few rounds fill the set
            if len(chosen) >= wanted:
                break
            for index in _draw(rng, cum, 2 * wanted):
                followee = users[order[index]]
                if followee.id != follower.id and len(chosen) < wanted:
                    chosen[followee.id] = None
        for followee_id in chosen:
            start = max(follower.date_joined, users[followee_id - 1].date_joined)
            rows.append(SeedFollow(len(rows) + 1, follower.id, followee_id, _between(rng, start, now)))
    return rows


def make_votes(
    rng: random.Random, users: Sequence[SeedUser], stories: Sequence[SeedStory], count: int, now: datetime
) -> list[SeedVote]:
    """About ``count`` distinct votes, most of them on a few stories.

    Each story's appeal is Pareto-distributed, and a story still young has had
    less time to collect votes. Nobody votes on their own story.
    """
    if not stories:
        return []
    count = min(count, len(stories) * (len(users) - 1) // 2)
    appeal = [
        min(rng.paretovariate(1.15), 400.0) * min(1.0, (now - s.created_at).total_seconds() / 86400) ** 0.5
        for s in stories
    ]
    cum = list(itertools.accumulate(w + 1e-9 for w in appeal))
    seen: set[tuple[int, int]] = set()
    rows: list[SeedVote] = []
    for _ in range(50):
        if len(rows) >= count:
            break
        for index in _draw(rng, cum, count - len(rows)):
            story = stories[index]
            voter = users[rng.randrange(len(users))].id
            if voter == story.author_id or (story.id, voter) in seen:
                continue
            seen.add((story.id, voter))
            delay = timedelta(hours=rng.expovariate(1 / VOTE_DELAY_HOURS))
            rows.append(SeedVote(len(rows) + 1, story.id, voter, min(story.created_at + delay, now)))
    return rows


# --------------------------------------------------------------------------
# Clicks (the click log behind analytics, trending and suggested stories)
# --------------------------------------------------------------------------
def _diurnal_weight(when: datetime) -> float:
    """Relative traffic at ``when``: busiest mid-afternoon UTC, quietest before dawn."""
    hour = when.hour + when.minute / 60
    return 0.55 + 0.45 * math.cos((hour - 15.0) / 24 * 2 * math.pi)


def _click_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A time in [start, end] with the daily rhythm of real traffic (rejection sampling)."""
    for _ in range(20):
        when = _between(rng, start, end)
        if rng.random() < _diurnal_weight(when):
            return when
    return when


def make_clicks(
    rng: random.Random,
    users: Sequence[SeedUser],
    stories: Sequence[SeedStory],
    votes: Sequence[SeedVote],
    count: int,
    now: datetime,
) -> list[SeedClick]:
    """About ``count`` clicks over the last :data:`CLICK_DAYS` days, ordered by time.

    Skewed the way real traffic is: a story is clicked in proportion to its
    votes and its youth, a few readers click far more than most, a fifth of
    the clicks are anonymous, and referrers follow :data:`REFERRERS`. Readers
    and stories fall into :data:`INTEREST_GROUPS` groups and readers mostly
    click their own group's stories, so "people who clicked this also clicked
    these" finds something real. A story is only clicked after it was posted.
    """
    start = now - timedelta(days=CLICK_DAYS)
    candidates = [s for s in stories if s.created_at < now]
    if not candidates or count <= 0:
        return []
    vote_counts = Counter(v.story_id for v in votes)
    group_of_story = {s.id: rng.randrange(INTEREST_GROUPS) for s in candidates}
    group_of_user = {u.id: rng.randrange(INTEREST_GROUPS) for u in users}

    def appeal(story: SeedStory) -> float:
        age_days = max((now - story.created_at).total_seconds(), 0.0) / 86400
        return (vote_counts.get(story.id, 0) + 1) ** 0.8 / (1 + age_days / 2) ** 2

    everyone = list(itertools.accumulate(appeal(s) for s in candidates))
    by_group: dict[int, tuple[list[SeedStory], list[float]]] = {}
    for group in range(INTEREST_GROUPS):
        members = [s for s in candidates if group_of_story[s.id] == group] or candidates
        by_group[group] = (members, list(itertools.accumulate(appeal(s) for s in members)))
    reader_order, reader_cum = zipf_cum_weights(len(users), 0.5, rng)
    referrer_names = [name for name, _ in REFERRERS]
    referrer_cum = list(itertools.accumulate(weight for _, weight in REFERRERS))

    rows: list[tuple[str, int, int | None, str, datetime]] = []
    for _ in range(count):
        user: SeedUser | None = None
        if rng.random() >= ANONYMOUS_CLICK_SHARE:
            user = users[reader_order[_draw(rng, reader_cum, 1)[0]]]
        if user is not None and rng.random() < IN_GROUP_SHARE:
            members, cum = by_group[group_of_user[user.id]]
            story = members[_draw(rng, cum, 1)[0]]
        else:
            story = candidates[_draw(rng, everyone, 1)[0]]
        when = _click_time(rng, max(start, story.created_at), now)
        referrer = referrer_names[bisect.bisect_left(referrer_cum, rng.random() * referrer_cum[-1])]
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        rows.append((event_id, story.id, user.id if user else None, referrer, when))
    rows.sort(key=lambda row: row[4])
    return [SeedClick(i + 1, *row) for i, row in enumerate(rows)]

