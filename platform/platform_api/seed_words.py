"""Word lists the demo data is built from (see :mod:`platform_api.seed_data`).

Kept apart from the generator so the logic stays short and readable. The lists
lean towards what a Hacker News-like site talks about, so the seeded front page
reads as real.
"""
from __future__ import annotations

FIRST_NAMES = (
    "ada", "alan", "alice", "amara", "ana", "andrei", "anya", "arjun", "ben", "bruno", "carla", "chen",
    "chloe", "dan", "dana", "diego", "dmitri", "elena", "eli", "emma", "erik", "fatima", "felix", "grace",
    "hana", "hugo", "ines", "ivan", "jack", "jamal", "jana", "javier", "jin", "joao", "jonas", "julia",
    "kai", "kamala", "kenji", "lars", "leila", "lena", "leo", "liam", "lin", "lucia", "luis", "maya",
    "marco", "maria", "mei", "mia", "miguel", "nadia", "nina", "noah", "olga", "omar", "oscar", "pablo",
    "paula", "priya", "rahul", "rosa", "ruth", "sam", "sara", "sofia", "sven", "tariq", "theo", "tom",
    "uma", "vera", "viktor", "wei", "yara", "yuki", "zane", "zoe",
)

LAST_NAMES = (
    "adams", "ahmed", "alvarez", "andersen", "baker", "bauer", "becker", "brown", "chen", "costa",
    "cruz", "das", "dubois", "evans", "fischer", "garcia", "gomez", "gupta", "hall", "hansen", "ito",
    "jensen", "kato", "khan", "kim", "kowalski", "kumar", "larsen", "lee", "lopez", "martin", "meyer",
    "miller", "moreau", "muller", "nguyen", "novak", "obrien", "okafor", "park", "patel", "perez",
    "petrov", "rossi", "santos", "sato", "schmidt", "silva", "singh", "smith", "suzuki", "tanaka",
    "taylor", "walker", "wang", "weber", "wilson", "wong", "yamada", "zhang",
)

HANDLE_ADJECTIVES = (
    "quiet", "grumpy", "lazy", "rusty", "sleepy", "clever", "brave", "tiny", "cosmic", "async", "static",
    "dark", "lucky", "silent", "frozen", "stale", "atomic", "lambda", "binary", "null", "idle", "eager",
    "wild", "gentle", "random", "hidden", "sharp", "mellow", "curious", "nomadic",
)

HANDLE_NOUNS = (
    "falcon", "otter", "hacker", "coder", "owl", "fox", "panda", "badger", "yak", "penguin", "gopher",
    "crab", "kernel", "pointer", "monad", "socket", "packet", "compiler", "daemon", "thread", "byte",
    "cursor", "shell", "vector", "turtle", "heron", "lynx", "raven", "wombat", "koala",
)

HANDLE_SUFFIXES = ("dev", "ops", "io", "rs", "py", "js", "hq", "lab", "sys", "net")

LANGUAGES = (
    "Rust", "Go", "Python", "C", "C++", "Zig", "OCaml", "Haskell", "Elixir", "Erlang", "Clojure",
    "TypeScript", "JavaScript", "Kotlin", "Swift", "Julia", "Lua", "Nim", "Racket", "Scala", "Ruby",
    "Java", "WebAssembly", "SQL", "Lisp", "Fortran",
)

SYSTEMS = (
    "PostgreSQL", "SQLite", "Redis", "memcached", "Kafka", "RabbitMQ", "HAProxy", "nginx", "Kubernetes",
    "Linux", "FreeBSD", "ZFS", "Git", "Emacs", "Vim", "Cassandra", "DuckDB", "ClickHouse", "etcd",
    "Nomad", "Envoy", "Varnish", "systemd", "LLVM", "Firefox", "Chromium",
)

THINGS = (
    "database", "compiler", "scheduler", "cache", "load balancer", "message queue", "garbage collector",
    "hash table", "B-tree", "LSM tree", "text editor", "type checker", "web server", "key-value store",
    "query planner", "CRDT", "file system", "HTTP client", "regex engine", "build system", "kernel",
    "interpreter", "static site generator", "search engine", "time series database", "shell",
    "package manager", "debugger", "profiler", "emulator",
)

CONCEPTS = (
    "cache invalidation", "consistent hashing", "backpressure", "idempotency", "eventual consistency",
    "load shedding", "read replicas", "write-ahead logging", "connection pooling", "rate limiting",
    "sharding", "leader election", "tail latency", "observability", "feature flags", "code review",
    "on-call", "technical debt", "capacity planning", "incident response", "zero-downtime deploys",
    "schema migrations", "queueing theory", "memory safety", "structured concurrency", "vector search",
    "formal verification", "property-based testing", "fuzzing", "distributed tracing",
)

ADJECTIVES = (
    "tiny", "fast", "boring", "minimal", "practical", "surprising", "hidden", "forgotten", "modern",
    "simple", "pragmatic", "unreasonable", "elegant", "lock-free", "embeddable", "self-hosted",
    "open-source", "visual", "incremental", "portable",
)

PROJECT_NAMES = (
    "Tern", "Quill", "Lattice", "Ember", "Pebble", "Harbor", "Sprocket", "Cinder", "Marmot", "Kestrel",
    "Bramble", "Drift", "Foxglove", "Gantry", "Halyard", "Juniper", "Larch", "Mosaic", "Nimbus",
    "Orchid", "Parsnip", "Quokka", "Rivet", "Sable", "Thistle", "Umber", "Vellum", "Wicket", "Yarrow",
    "Zephyr",
)

COMPANIES = (
    "Stripe", "Cloudflare", "GitHub", "Mozilla", "Apple", "Google", "Microsoft", "Amazon", "Meta",
    "Netflix", "Shopify", "Figma", "Discord", "Dropbox", "Tailscale", "Fly.io", "Fastly", "Intel",
    "AMD", "Nvidia", "OpenAI", "Valve", "Spotify", "Uber", "Airbnb", "SpaceX", "IBM", "Oracle",
)

NEWS_VERBS = (
    "announces", "acquires", "open-sources", "lays off staff behind", "deprecates", "launches",
    "is sued over", "delays", "quietly drops", "doubles down on",
)

NEWS_TOPICS = (
    "its new chip", "a privacy feature", "a cloud region in Africa", "its AI assistant",
    "a right-to-repair program", "a browser engine", "an antitrust probe", "end-to-end encryption",
    "a satellite network", "a programming language", "its developer platform", "a data center in Iceland",
)

SCIENCE_TOPICS = (
    "dark matter", "CRISPR", "fusion reactors", "the gut microbiome", "sleep", "octopus cognition",
    "battery chemistry", "quantum error correction", "glaciers", "ancient DNA", "bird migration",
    "exoplanets", "protein folding", "deep-sea vents", "urban heat islands",
)

TITLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "project": (
        "Show: {project} – a {adjective} {thing} in {language}",
        "{project}: a {adjective} {thing} written in {language}",
        "I built a {thing} in {language} over a weekend",
        "{project} 1.0 released",
        "A {adjective} {thing} for {system}",
        "Writing a {thing} from scratch in {language}",
        "{project} – {adjective} {concept} for {system}",
    ),
    "essay": (
        "Notes on {concept}",
        "Why {concept} is harder than it looks",
        "What I learned running {system} in production for five years",
        "The {adjective} guide to {concept}",
        "{concept} in practice: lessons from a decade of outages",
        "How we cut our {system} bill in half",
        "Against {concept}",
        "Scaling {system} to {number} requests per second",
        "You might not need a {thing}",
        "{language} is not slow; your {thing} is",
        "An illustrated introduction to {concept}",
        "Migrating from {system} to {system2}",
        "The case for boring technology, revisited",
        "Things I wish I knew before adopting {system}",
        "Debugging a {adjective} {thing} bug in {system}",
    ),
    "paper": (
        "A {adjective} approach to {concept} [pdf]",
        "{concept} at scale: an empirical study",
        "Towards {adjective} {concept} in {thing}s",
        "On the limits of {concept}",
        "Learned {thing}s: a survey",
        "New results on {science}",
    ),
    "news": (
        "{company} {news_verb} {news_topic}",
        "{company} outage takes down large parts of the web",
        "Researchers make progress on {science}",
        "The surprising science of {science}",
        "{company}'s {system} migration, one year later",
        "EU fines {company} over {news_topic}",
    ),
    "wiki": (
        "{science}",
        "{concept}",
        "{thing} (computing)",
        "History of {language}",
    ),
}

ASK_TEMPLATES = (
    "Ask: How do you handle {concept} with {system}?",
    "Ask: What is your favourite {adjective} {thing}?",
    "Ask: Is {language} worth learning in {year}?",
    "Ask: How do you keep up with {concept}?",
    "Ask: What did you build this year?",
    "Ask: Best resources to learn {concept}?",
    "Ask: Anyone running {system} on a single box?",
    "Ask: How big is your on-call rotation?",
    "Ask: Do you still write tests for {thing}s?",
    "Ask: Who is hiring for {language} roles?",
)

ASK_SENTENCES = (
    "We are a small team and our {system} setup has grown organically over the years.",
    "Most of the advice I find assumes a much larger company than ours.",
    "I have tried a few approaches to {concept} but none of them felt right.",
    "Curious what has worked for others, and what you would avoid.",
    "Bonus points for war stories.",
    "Our current {thing} is written in {language} and it has served us well so far.",
    "I am asking because we are about to make a decision we cannot easily undo.",
    "Links to write-ups or talks are very welcome.",
    "For context, we handle a few thousand requests per second at peak.",
    "I keep reading that {concept} is solved, but it does not feel solved to me.",
)

REPO_WORDS = (
    "awesome", "tiny", "mini", "fast", "simple", "micro", "hyper", "lazy", "safe", "open",
)
