"""The project's settings for the test suite (pytest-django's DJANGO_SETTINGS_MODULE).

Tests run with DEBUG off, as production does, so they need a SECRET_KEY: when none is set, a fixed test-only
key, put in the environment so that the processes the tests start (tests/e2e) share it.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-never-used-outside-the-test-suite-0123456789")

from helpdesk.settings import *  # noqa: F403

# Files of the test run, apart from a development server's (var/media); the processes tests/e2e starts get the same.
os.environ.setdefault("MEDIA_ROOT", "/tmp/helpdesk-test-media")
MEDIA_ROOT = os.environ["MEDIA_ROOT"]
