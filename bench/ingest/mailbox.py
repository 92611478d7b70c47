"""A private Dovecot (tools/mailbed.py) and an SMTP sink, both on 127.0.0.1 only.

Each product and each repetition gets a new IMAP account, filled by APPEND on one
connection; Odoo's outgoing server is the sink, so even a cron that sends mail during the
benchmark sends it nowhere but into a local Maildir.
"""

import imaplib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from mailbed import Dovecot, SmtpSink, free_port  # noqa: F401 (free_port: for scenarios)


def append_all(account, raws, folder="INBOX"):
    """APPEND every message to ``account``'s ``folder`` on one connection."""
    imap = imaplib.IMAP4(account.host, account.port, timeout=60)
    try:
        imap.login(account.login, account.password)
        for raw in raws:
            typ, data = imap.append(f'"{folder}"', None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND to {account.login}: {data!r}")
    finally:
        imap.logout()


def unseen(account, folder="INBOX"):
    imap = imaplib.IMAP4(account.host, account.port, timeout=60)
    try:
        imap.login(account.login, account.password)
        imap.select(f'"{folder}"', readonly=True)
        _typ, data = imap.uid("SEARCH", "UNSEEN")
        return len(b" ".join(d for d in data if d).split())
    finally:
        imap.logout()


__all__ = ["Dovecot", "SmtpSink", "append_all", "unseen"]
