"""Settings of the example storefront: the lesson's Django app, served by gunicorn behind
`cachekit proxy`.

Kept minimal: no database (no app here needs one; sessions live in signed cookies), no
static files. Everything a deployment changes comes from the environment.
"""
import os

# The slow third-party API the hello view calls: the lesson's https://httpbin.org/delay/2, or
# cachekit's slow-upstream on loopback (`slow-upstream --port 8001`), which serves the same
# /delay/{n} and counts its calls at /stats.
UPSTREAM_URL = os.environ.get('UPSTREAM_URL', 'http://127.0.0.1:8001/delay/2')

# Signs the session cookie. Every gunicorn worker must share it (they do: same settings).
SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'example-only-not-a-secret-change-me')

DEBUG = os.environ.get('DJANGO_DEBUG', '') == '1'

ALLOWED_HOSTS = os.environ.get('DJANGO_ALLOWED_HOSTS', '127.0.0.1,localhost,[::1]').split(',')

INSTALLED_APPS = [
    'playground',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

ROOT_URLCONF = 'storefront.urls'

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [],
        'APP_DIRS': True,
        'OPTIONS': {},
    },
]

WSGI_APPLICATION = 'storefront.wsgi.application'

# No database: nothing here stores rows.
DATABASES = {}

# The session is the cookie itself (signed with SECRET_KEY), so it needs no table.
SESSION_ENGINE = 'django.contrib.sessions.backends.signed_cookies'

# Django's own cache is not used: the shared cache is the proxy in front, and what it may keep,
# and for how long, is said by each view's Cache-Control header.

LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'
USE_I18N = False
USE_TZ = True
