"""URLs of the platform service: the v1 API, and JSON for Django's own errors.

The API is versioned in its path (``/v1/``) so a v2 can be served beside it
while clients move over (post, "Platform layer": a stable interface lets
teams on either side of it move independently).
"""
from django.urls import path

from platform_api.api import api

urlpatterns = [path("v1/", api.urls)]

# Django answers these itself (no route matched, a bad Host header, a bug);
# they are JSON too so every answer of this service has the same shape.
handler400 = "platform_api.api.bad_request_view"
handler404 = "platform_api.api.not_found_view"
handler500 = "platform_api.api.server_error_view"
