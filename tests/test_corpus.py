"""Some 250 real-world mails from public test suites, through the real IMAP fetch.

The mails come from pinned packages (tests/corpus.py, tests/data/README). Each must end
a ticket, a comment, or ignored with its reason (a bounce, a duplicate, a loop): none
fails and none keeps the mailbox from draining.
"""

import corpus
import pytest
from test_imap_ingestion import drain, inbound_of


@pytest.fixture(scope="session")
def corpus_mails():
    return corpus.load()


def test_real_world_corpus(odoo_db, ticket_server, imap_account, corpus_mails):
    assert len(corpus_mails) >= 200
    server_id = ticket_server()
    names = {imap_account.append(mail.raw): f"{mail.source}/{mail.name}" for mail in corpus_mails}
    drain(odoo_db, server_id, max_runs=60)

    with odoo_db.env() as env:
        inbounds = inbound_of(env, server_id)
        assert sorted(inbounds.mapped("uid")) == sorted(names), "every mail is recorded"
        failed = {names[i.uid]: i.error for i in inbounds if i.state == "failed"}
        assert failed == {}
        unexplained = [names[i.uid] for i in inbounds if i.state == "ignored" and not i.error]
        assert unexplained == []
        done = inbounds.filtered(lambda i: i.state == "done")
        assert done and all(done.mapped("ticket_id")), "each done mail names its ticket"
        assert all(inbounds.mapped("mailbox_done"))
    assert not imap_account.uids("INBOX", "UNSEEN"), "the mailbox is drained"
