"""The batched ingestion steps aside for an integrator's override of the gateway.

A database where a module that mail_ticket does not know overrides ``message_new`` of
tickets (``tests/addons/mail_ticket_test_override``, installed here with mail_ticket
into a database of its own): mails drained from a real Dovecot mailbox by the real fetch all
go through ``message_process``, so the override applies to every one of them, and the
log and the mailbox form say why the batches are off.
"""

import logging
import os

import pytest
from odoo_env import create_ticket_server, load_registry, make_mail, send_to_sink
from test_clean_install import _drop, odoo, odoo_conf
from test_imap_ingestion import drain, tickets_of

from odoo.modules.registry import Registry

ADDON = "mail_ticket_test_override"
TAG = "Via Integrator"


@pytest.fixture(scope="module")
def override_db(tmp_path_factory):
    """A database with mail_ticket and the test addon, installed as an admin would."""
    base = os.environ.get("MAIL_TICKET_E2E_DB")
    if not base:
        raise pytest.UsageError("MAIL_TICKET_E2E_DB names no database: run with ./dev test")
    dbname = f"{base}_override"
    _drop(dbname)
    conf = odoo_conf(tmp_path_factory.mktemp("override"))
    odoo("-c", str(conf), "-d", dbname, "-i", ADDON, "--stop-after-init")
    yield dbname
    Registry.delete(dbname)
    _drop(dbname)


def test_override_applies_to_every_fetched_mail(override_db, imap_account, smtp_sink, caplog):
    with caplog.at_level(logging.WARNING, logger="odoo.addons.mail_ticket"):
        odoo_db = load_registry(override_db)  # the log says why the batches are off
    assert any(
        "not in batches" in record.getMessage() and ADDON in record.getMessage()
        for record in caplog.records
    )
    with odoo_db.env() as env:
        send_to_sink(env, smtp_sink)
        server = create_ticket_server(env, imap_account)
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
