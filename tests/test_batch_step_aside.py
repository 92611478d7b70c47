"""The batched ingestion steps aside for an integrator's override of the gateway.

A database where a module that mail_ticket does not know overrides ``message_new`` of
tickets (``tests/addons/mail_ticket_test_override``, installed here on a copy of the
end-to-end database): mails drained from a real Dovecot mailbox by the real fetch all
go through ``message_process``, so the override applies to every one of them, and the
log and the mailbox form say why the batches are off.
"""

import contextlib
import logging
import os
import subprocess
import sys

import psycopg2
import pytest
from odoo_env import OdooDb, make_mail
from test_imap_ingestion import drain, tickets_of

from odoo.modules.registry import Registry
from odoo.tools import config

ADDON = "mail_ticket_test_override"
TAG = "Via Integrator"


def _admin_connection():
    connection = psycopg2.connect(
        dbname="postgres",
        host=config["db_host"] or None,
        port=config["db_port"] or None,
        user=config["db_user"] or None,
    )
    connection.autocommit = True
    return connection


def _libpq_options():
    return [
        f"--{option}={config[key]}"
        for option, key in (("host", "db_host"), ("port", "db_port"), ("username", "db_user"))
        if config[key]
    ]


@pytest.fixture(scope="module")
def override_db():
    """A copy of the end-to-end database with the test addon installed."""
    source = os.environ.get("MAIL_TICKET_E2E_DB")
    if not source:
        raise pytest.UsageError("MAIL_TICKET_E2E_DB names no database: run with ./dev test")
    dbname = f"{source}_override"
    with contextlib.closing(_admin_connection()) as conn, conn.cursor() as cr:
        cr.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        cr.execute(f'CREATE DATABASE "{dbname}"')
    dump = subprocess.Popen(
        ["pg_dump", "--no-owner", *_libpq_options(), source],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    subprocess.run(
        ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", *_libpq_options(), "-d", dbname],
        stdin=dump.stdout,
        check=True,
        capture_output=True,
    )
    dump.stdout.close()
    assert dump.wait() == 0, "pg_dump failed"
    addons_path = config["addons_path"]
    if not isinstance(addons_path, str):
        addons_path = ",".join(addons_path)
    install = subprocess.run(
        [
            sys.executable, "-m", "odoo", "-d", dbname, "-i", ADDON, "--stop-after-init",
            f"--addons-path={addons_path}", "--log-level=warn",
            *(f"--{key}={config[key]}" for key in ("db_host", "db_port", "db_user") if config[key]),
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    yield dbname
    Registry.delete(dbname)
    with contextlib.closing(_admin_connection()) as conn, conn.cursor() as cr:
        cr.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def test_override_applies_to_every_fetched_mail(override_db, imap_account, smtp_sink, caplog):
    # the registry is loaded as a server loads it (not running the addons' own tests)
    test_enable, config["test_enable"] = config["test_enable"], False
    try:
        with caplog.at_level(logging.WARNING, logger="odoo.addons.mail_ticket"):
            odoo_db = OdooDb(override_db)  # the log says why the batches are off
    finally:
        config["test_enable"] = test_enable
    assert any(
        "not in batches" in record.getMessage() and ADDON in record.getMessage()
        for record in caplog.records
    )
    with odoo_db.env() as env:
        env["ir.mail_server"].search([]).unlink()
        env["ir.mail_server"].create(
            {
                "name": "Test sink",
                "smtp_host": smtp_sink.host,
                "smtp_port": smtp_sink.port,
                "smtp_encryption": "none",
            }
        )
        server = env["fetchmail.server"].create(
            {
                "name": "Support (override)",
                "server_type": "imap",
                "server": imap_account.host,
                "port": imap_account.port,
                "is_ssl": False,
                "user": imap_account.login,
                "password": imap_account.password,
                "object_id": env["ir.model"]._get_id("mail.ticket"),
            }
        )
        server.button_confirm_login()
        server_id = server.id
        # the mailbox form tells the admin why
        assert ADDON in server.ticket_batch_blocked
        assert "message_new" in server.ticket_batch_blocked
    senders = [f'"Kunde {n}" <kunde.{n}@override.example>' for n in range(6)]
    for n, sender in enumerate(senders):
        imap_account.append(make_mail(f"Anfrage {n}", sender=sender))
    drain(odoo_db, server_id)
    with odoo_db.env() as env:
        tickets = tickets_of(env, server_id)
        assert tickets.mapped("name") == [f"Anfrage {n}" for n in range(6)]
        assert all(TAG in ticket.tag_ids.mapped("name") for ticket in tickets), (
            "the integrator's message_new ran for every mail"
        )
        inbound = env["mail.ticket.inbound"].search([("server_id", "=", server_id)])
        assert set(inbound.mapped("state")) == {"done"}
        assert len(inbound) == 6
