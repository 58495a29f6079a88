"""The lesson's views, with the caching left to a shared cache in front of the app.

The lesson cached say_hello inside Django (`@cache_page`). Here Django only says how long the
page may be kept, and by whom, in the Cache-Control header — the Django way, with
`@cache_control` — and any HTTP cache in front (`cachekit proxy`, nginx, Varnish, a CDN) honours
it. Nothing in this file knows which cache, if any, is there.
"""
import json
import os
import urllib.request
from datetime import datetime, timezone

from django.conf import settings
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_POST


# The list of pages. It says nothing about caching, so a shared cache does not store it (RFC 9111
# gives no freshness to a page without Cache-Control, Expires or Last-Modified).
def index(request):
    return render(request, 'playground/index.html')


# Anyone may be sent the same page for a minute: the proxy may store it and share it.
# If the API fails, urlopen raises and Django answers 500, which the decorator never sees, so an
# error page is never marked cacheable.
@cache_control(public=True, max_age=60)
def say_hello(request):
    # The lesson: `requests.get('https://httpbin.org/delay/2')`, here with the standard library
    # and a bound on how long a hung API may hold this worker.
    with urllib.request.urlopen(settings.UPSTREAM_URL, timeout=15) as response:
        data = json.load(response)
    return render(request, 'playground/hello.html', {
        'name': 'Mosh',
        'data': data,
        # Every rendering differs from the one before: a cached copy shows the time and the
        # worker of the rendering it was stored from.
        'rendered_at': datetime.now(timezone.utc).isoformat(timespec='microseconds'),
        'worker_pid': os.getpid(),
    })


# Signs a user in: the name goes into the session (a signed cookie). A POST is never stored by
# a cache; never_cache says so for any other reader as well.
@require_POST
@never_cache
def login(request):
    request.session['user'] = request.POST.get('user', '').strip()[:40]
    return redirect('account')


# One user's own page. `private`: a browser may keep it for a minute, a shared cache must not
# store it at all. Reading the session also makes SessionMiddleware add `Vary: Cookie`.
@cache_control(private=True, max_age=60)
def account(request):
    return render(request, 'playground/account.html', {
        'user': request.session.get('user'),
        'rendered_at': datetime.now(timezone.utc).isoformat(timespec='microseconds'),
    })
