"""The WSGI entry point gunicorn serves: `gunicorn storefront.wsgi`."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'storefront.settings')

application = get_wsgi_application()
