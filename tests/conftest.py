"""Fixtures for the end-to-end tests in tests/: real IMAP (Dovecot) and SMTP servers.

Nothing here is Odoo-specific (Odoo fixtures live in tests/odoo_env.py).

* ``dovecot`` (session): a private Dovecot on 127.0.0.1, see :class:`mailbed.Dovecot`;
  besides passwords it accepts OAuth 2.0 (XOAUTH2) logins with the access tokens issued
  by ``oauth_tokens``.
* ``oauth_tokens`` (session): its token introspection endpoint on loopback, a
  :class:`mailbed.TokenIntrospection` (``issue(login)``, ``revoke(token)``).
* ``imap_account`` (function): a fresh account on it, a :class:`mailbed.ImapAccount`
  (``login``, ``password``, ``host``, ``port``, ``append()``, ``uids()``, ``flags()``,
  ``folders()``, ``uidvalidity()``, ``fetch()``, ``client()``).
* ``smtp_sink`` (session): an aiosmtpd sink, see :class:`mailbed.SmtpSink`.
* ``smtp_outbox`` (function): the same sink, emptied before the test.

Both servers live in one scratch directory (``mailbed_dir``), removed after the session
unless the environment variable ``MAILBED_KEEP`` is set (to read ``imap/dovecot.log``).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# the mail test bed lives in tools/: the tests, ./dev run's demo and the benchmarks use it
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from mailbed import Dovecot, SmtpSink, TokenIntrospection


@pytest.fixture(scope="session")
def mailbed_dir():
    """Scratch directory of the session's mail servers, removed at the end.

    Not pytest's tmp_path: that lives under a 0700 root directory, which the
    ``dovecot`` user (mail and auth processes, when run as root) cannot traverse.
    """
    path = Path(tempfile.mkdtemp(prefix="mailbed-"))
    path.chmod(0o711)
    yield path
    if not os.environ.get("MAILBED_KEEP"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def oauth_tokens():
    with TokenIntrospection() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def dovecot(mailbed_dir, oauth_tokens):
    with Dovecot(mailbed_dir / "imap", introspection=oauth_tokens) as server:
        yield server


@pytest.fixture
def imap_account(dovecot):
    return dovecot.new_account()


@pytest.fixture(scope="session")
def smtp_sink(mailbed_dir):
    with SmtpSink(mailbed_dir / "smtp") as sink:
        yield sink


@pytest.fixture
def smtp_outbox(smtp_sink):
    smtp_sink.clear()
    return smtp_sink


# Odoo side: a real database driven like Odoo's cron (tests/odoo_env.py)
from odoo_env import odoo_db, odoo_smtp, ticket_server  # noqa: E402, F401 - fixtures re-exported
