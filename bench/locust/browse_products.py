"""Load test for the storefront demo — the lesson's locustfiles/browse_products.py.

Run it with Debian's locust (``/usr/bin/locust``), against a running storefront:

    /usr/bin/locust -f bench/locust/browse_products.py --host http://127.0.0.1:8000 \
        --headless -u 500 -r 10 --run-time 3m

Tasks are tagged so one run can measure one thing (``--tags hello`` or ``--tags store``).
Environment variables choose the endpoints, so the same file measures before and after caching:

    HELLO_PATH      the say_hello task's URL (default /playground/hello/, the cached version;
                    /playground/hello/nocache/ is the baseline)
    STORE_PATH      the product report's URL (default /store/products/, cached with the
                    low-level API; /store/products/uncached/ queries the database every time)
    PRODUCTS        product ids the detail task picks from (default 1000, the seeded store)
    WAIT_MIN/MAX    seconds a user waits between tasks (default 1 and 5, as in the lesson)
    STOP_AFTER_REQUESTS
                    stop the run once this many requests were made (the lesson ran "until about
                    7,000 requests"); 0 or unset: run until --run-time
"""

import os
import random

import gevent
from locust import HttpUser, between, events, tag, task

HELLO_PATH = os.environ.get("HELLO_PATH", "/playground/hello/")
STORE_PATH = os.environ.get("STORE_PATH", "/store/products/")
WAIT_MIN = float(os.environ.get("WAIT_MIN", "1"))
WAIT_MAX = float(os.environ.get("WAIT_MAX", "5"))
STOP_AFTER_REQUESTS = int(os.environ.get("STOP_AFTER_REQUESTS", "0"))
COLLECTIONS = 10
PRODUCTS = int(os.environ.get("PRODUCTS", "1000"))
SORTS = ("revenue", "orders", "price", "title")


class WebsiteUser(HttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    @tag("store")
    @task(2)
    def view_products(self):
        collection_id = random.randint(1, COLLECTIONS)
        sort = random.choice(SORTS)
        self.client.get(
            f"{STORE_PATH}?collection={collection_id}&sort={sort}",
            name=f"{STORE_PATH}?collection=[id]&sort=[sort]",
        )

    @tag("store")
    @task(1)
    def view_product(self):
        product_id = random.randint(1, PRODUCTS)
        self.client.get(f"/store/products/{product_id}/", name="/store/products/[id]/")

    @tag("hello")
    @task(1)
    def say_hello(self):
        self.client.get(HELLO_PATH, name=HELLO_PATH)


def _stop_after_requests(environment):
    """Quits the run once the requested number of requests was made."""
    while True:
        gevent.sleep(0.5)
        runner = environment.runner
        if runner is None:
            continue
        if runner.stats.total.num_requests >= STOP_AFTER_REQUESTS:
            runner.quit()
            return


@events.init.add_listener
def _on_init(environment, **_kwargs):
    if STOP_AFTER_REQUESTS > 0:
        gevent.spawn(_stop_after_requests, environment)
