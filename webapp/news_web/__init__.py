"""news_web: the web tier of scalestack, a small Digg-like news site.

Post, "Load balancing": one of several identical, stateless web servers behind
nginx. Post, "Platform layer": it reads and writes only through the platform
API (see ``platform_client``).
"""
