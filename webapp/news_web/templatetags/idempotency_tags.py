"""``{% idempotency_field %}``: the hidden idempotency key every write form carries.

See :mod:`news_web.idempotency`. A tag rather than a context variable because
one page holds many forms (a vote button per story): each needs a key of its
own, or a vote on one story would reuse the key of a vote on another.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from news_web.idempotency import FORM_FIELD, new_key

register = template.Library()


@register.simple_tag
def idempotency_field() -> SafeString:
    """A hidden input holding a fresh key, new each time it is rendered."""
    return format_html('<input type="hidden" name="{}" value="{}">', FORM_FIELD, new_key())
