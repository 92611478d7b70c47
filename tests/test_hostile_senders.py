"""Hostile senders over a real IMAP mailbox and a real SMTP server.

What a stranger can do by mail: open a ticket (acknowledged to them alone, within the
limits). What they cannot: make the helpdesk mail the people they copied, speak as an
agent or as the customer on a ticket, or change a ticket they are not part of.
"""

import uuid

import pytest
from odoo_env import make_mail
from test_conversation import CUSTOMER, addresses, make_agent, run_acknowledgements

TRUSTED_MX = "mx.support.example.com"


def auth_results(dmarc, domain, authserv_id=TRUSTED_MX):
    return (
        f"{authserv_id}; spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain};"
        f" dmarc={dmarc} (p=reject) header.from={domain}"
    )


def recipients(message):
    """Whom the SMTP server was asked to deliver to (the envelope, not the headers)."""
    return sorted(addresses(message, "X-RcptTo"))


@pytest.fixture
def trusted_mx(odoo_db):
    with odoo_db.env() as env:
        env["ir.config_parameter"].set_param("mail_ticket.authserv_id", TRUSTED_MX)
    yield TRUSTED_MX
    with odoo_db.env() as env:
        env["ir.config_parameter"].set_param("mail_ticket.authserv_id", False)


def open_ticket(odoo_db, imap_account, server_id, subject="Drucker druckt nicht"):
    imap_account.append(make_mail(subject, to=imap_account.login))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].search(
            [("fetchmail_server_id", "=", server_id), ("name", "=", subject)]
        )
        assert len(ticket) == 1
        return ticket.id, ticket.number


def test_spam_amplifier_mails_the_sender_alone(odoo_db, ticket_server, imap_account, smtp_outbox):
    """A first mail copied to 33 addresses of the company's own domain: one
    acknowledgement leaves, to its sender; nobody copied gets mail or a contact."""
    server_id = ticket_server()
    copied = [f"kollege{index}@agrolait.example.com" for index in range(33)]
    imap_account.append(
        make_mail(
            "Bitte alle informieren",
            to=", ".join([imap_account.login, *copied[:20]]),
            headers={"Cc": ", ".join(copied[20:])},
        )
    )
    odoo_db.run_cron()
    run_acknowledgements(odoo_db)
    sent = smtp_outbox.wait_for(1)
    assert [recipients(mail) for mail in sent] == [["sylvie.lelitre@agrolait.example.com"]]
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)])
        assert ticket.message_partner_ids.mapped("email") == ["sylvie.lelitre@agrolait.example.com"]
        assert not env["res.partner"].search([("email", "in", copied)])
        assert len(ticket.email_cc.split(",")) == 33, "offered to the agents as recipients"
        # the agent's answer goes to the customer alone too
        smtp_outbox.clear()
        agent = make_agent(env, f"agent-{uuid.uuid4().hex[:8]}")
        ticket.with_user(agent).message_post(
            body="Wir kümmern uns.", message_type="comment", subtype_xmlid="mail.mt_comment"
        )
    (answer,) = smtp_outbox.wait_for(1)
    assert recipients(answer) == ["sylvie.lelitre@agrolait.example.com"]
    assert not answer.get_all("Cc")


def test_ack_flood_is_capped_per_mailbox(odoo_db, ticket_server, imap_account, smtp_outbox):
    """Ever new senders never hit the per-sender limit; the mailbox's hourly cap holds."""
    ticket_server(ticket_ack_hourly_limit=3)
    for index in range(6):
        imap_account.append(make_mail(f"Gewinnspiel {index}", sender=f"opfer{index}@flut.example"))
    odoo_db.run_cron()
    run_acknowledgements(odoo_db)
    run_acknowledgements(odoo_db)
    sent = smtp_outbox.wait_for(3)
    assert sorted(recipients(mail)[0] for mail in sent) == [
        f"opfer{index}@flut.example" for index in range(3)
    ]


def test_forged_agent_cannot_answer_the_customer(
    odoo_db, ticket_server, imap_account, smtp_outbox, trusted_mx
):
    """Phishing "from support": a mail from an agent's address naming the ticket is an
    internal note unless the receiving server vouches for it with DMARC pass."""
    server_id = ticket_server(ticket_send_ack=False)
    ticket_id, number = open_ticket(odoo_db, imap_account, server_id)
    with odoo_db.env() as env:
        agent = make_agent(env, f"agent-{uuid.uuid4().hex[:8]}")
        agent_from = f'"Agnes Agent" <{agent.email}>'
        domain = agent.email.split("@")[1]
        # what other tests left in Odoo's mail queue leaves now, not during this test
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
    smtp_outbox.clear()

    for headers in (
        {},  # no verdict
        {"Authentication-Results": auth_results("pass", domain, "mx.attacker.example")},
        {"Authentication-Results": auth_results("fail", domain)},
    ):
        imap_account.append(
            make_mail(
                f"Re: [{number}] Bitte Zahlungsdaten bestätigen",
                sender=agent_from,
                to=imap_account.login,
                body="Bitte senden Sie uns Ihre Kreditkartennummer.",
                headers=headers,
            )
        )
    odoo_db.run_cron()
    with odoo_db.env() as env:
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
    assert smtp_outbox.messages() == [], "nothing reaches the customer"
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].browse(ticket_id)
        notes = ticket.message_ids.filtered(lambda m: "Kreditkartennummer" in m.body)
        assert len(notes) == 3
        assert all(note.is_internal and "Unverified sender" in note.body for note in notes)
        assert not notes.author_id, "not shown as the agent's"
        assert not ticket.comment_ids

    # the genuine agent, vouched for by the trusted receiving server
    imap_account.append(
        make_mail(
            f"Re: [{number}] Drucker druckt nicht",
            sender=agent_from,
            to=imap_account.login,
            body="Bitte prüfen Sie das Netzkabel.",
            headers={"Authentication-Results": auth_results("pass", domain)},
        )
    )
    odoo_db.run_cron()
    with odoo_db.env() as env:  # the fetch queues the notifications: Odoo's mail queue
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
    (answer,) = smtp_outbox.wait_for(1)
    assert recipients(answer) == ["sylvie.lelitre@agrolait.example.com"]
    assert "Netzkabel" in answer.get_body(("html", "plain")).get_content()


def test_forged_customer_changes_nothing(
    odoo_db, ticket_server, imap_account, smtp_outbox, trusted_mx
):
    """The customer's address with DMARC fail: no reopening, no Cc merged, no follower."""
    server_id = ticket_server(ticket_send_ack=False)
    ticket_id, number = open_ticket(odoo_db, imap_account, server_id)
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].browse(ticket_id)
        ticket.stage_id = env.ref("mail_ticket.stage_solved")
        before = (ticket.email_cc, ticket.date_last_customer_message, ticket.message_partner_ids)
    imap_account.append(
        make_mail(
            f"Re: [{number}] Bitte wieder öffnen",
            sender=CUSTOMER,
            headers={
                "Cc": "Komplize <komplize@evil.example>",
                "Authentication-Results": auth_results("fail", "agrolait.example.com"),
            },
        )
    )
    odoo_db.run_cron()
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].browse(ticket_id)
        assert ticket.stage_id == env.ref("mail_ticket.stage_solved")
        assert (
            ticket.email_cc,
            ticket.date_last_customer_message,
            ticket.message_partner_ids,
        ) == before
        assert "Unverified sender" in ticket.message_ids[0].body
        assert not env["res.partner"].search([("email", "ilike", "komplize@evil.example")])
        inbound = env["mail.ticket.inbound"].search(
            [("server_id", "=", server_id)], order="id desc", limit=1
        )
        assert inbound.state == "done" and inbound.ticket_id == ticket
    assert smtp_outbox.messages() == []


def test_crlf_in_encoded_subject_does_not_break_answers(
    odoo_db, ticket_server, imap_account, smtp_outbox
):
    server_id = ticket_server(ticket_send_ack=False)
    raw = make_mail("PLACEHOLDER").replace(
        b"Subject: PLACEHOLDER", b"Subject: =?utf-8?q?Drucker=0D=0ABcc:_victim@example.com?="
    )
    imap_account.append(raw)
    odoo_db.run_cron()
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)])
        assert ticket.name == "Drucker Bcc: victim@example.com"
        agent = make_agent(env, f"agent-{uuid.uuid4().hex[:8]}")
        ticket.with_user(agent).message_post(
            body="Erledigt.", message_type="comment", subtype_xmlid="mail.mt_comment"
        )
        number = ticket.number
    (answer,) = smtp_outbox.wait_for(1)
    assert answer["Subject"] == f"[{number}] Drucker Bcc: victim@example.com"
    assert addresses(answer, "To") == ["sylvie.lelitre@agrolait.example.com"]
    assert not answer.get_all("Bcc")


def test_from_read_as_the_receiving_server_read_it(
    odoo_db, ticket_server, imap_account, smtp_outbox, trusted_mx
):
    """Posted publicly as the ticket's customer, each with the trusted server's verdict
    for the attacker's own domain: internal notes marked unverified, nothing reopens,
    nobody is mailed."""
    server_id = ticket_server(ticket_send_ack=False)
    ticket_id, number = open_ticket(odoo_db, imap_account, server_id)
    with odoo_db.env() as env:
        env["mail.ticket"].browse(ticket_id).stage_id = env.ref("mail_ticket.stage_solved")
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
    smtp_outbox.clear()
    customer = "sylvie.lelitre@agrolait.example.com"
    evil = {"Authentication-Results": auth_results("pass", "evil.example")}
    subject = f"Re: [{number}] Bitte wieder öffnen"
    imap_account.append(
        make_mail(subject, sender=f"{customer} <mallory@evil.example>", headers=evil)
    )
    imap_account.append(
        make_mail(subject, sender="PLACEHOLDER", headers=evil).replace(
            b"PLACEHOLDER", b"=?utf-8?q?sylvie.lelitre=40agrolait=2Eexample.com?="
        )
    )
    # two From headers, the first with an 8-bit byte: the repair would keep one
    imap_account.append(
        make_mail(subject, sender="Mallory <mallory@evil.example>").replace(
            b"From: Mallory",
            b"From: Sylvie L\xe9litre <sylvie.lelitre@agrolait.example.com>\r\nFrom: Mallory",
        )
    )
    odoo_db.run_cron()
    with odoo_db.env() as env:
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
        ticket = env["mail.ticket"].browse(ticket_id)
        notes = ticket.message_ids.filtered(lambda m: "Bitte wieder öffnen" in (m.subject or ""))
        assert len(notes) == 3
        assert all(n.is_internal and "Unverified sender" in n.body for n in notes), notes.mapped(
            "body"
        )
        assert not notes.author_id
        assert ticket.stage_id == env.ref("mail_ticket.stage_solved")
        assert not ticket.comment_ids
    assert smtp_outbox.messages() == []


def test_forged_agent_below_an_unusual_trusted_header(
    odoo_db, ticket_server, imap_account, smtp_outbox, trusted_mx
):
    """The trusted server's own header holds what real servers write (an address-literal
    HELO, a quoted envelope sender) and DMARC fail; a forged pass with the same id below
    it is not taken instead: the forged agent's phishing stays an internal note."""
    server_id = ticket_server(ticket_send_ack=False)
    ticket_id, number = open_ticket(odoo_db, imap_account, server_id)
    with odoo_db.env() as env:
        agent_email = make_agent(env, f"agent-{uuid.uuid4().hex[:8]}").email
        domain = agent_email.split("@")[1]
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
    smtp_outbox.clear()
    real = (
        f'{TRUSTED_MX}; spf=pass smtp.helo=[10.0.0.7] smtp.mailfrom="x y"@{domain};'
        f" dmarc=fail header.from={domain}"
    )
    forged = auth_results("pass", domain)
    # the real header on top (the trusted server wrote it last), the forged one below
    raw = f"Authentication-Results: {real}\r\nAuthentication-Results: {forged}\r\n".encode()
    raw += make_mail(
        f"Re: [{number}] Bitte Zahlungsdaten bestätigen",
        sender=f'"Agnes Agent" <{agent_email}>',
        to=imap_account.login,
        body="Bitte senden Sie uns Ihre Kreditkartennummer.",
    )
    imap_account.append(raw)
    odoo_db.run_cron()
    with odoo_db.env() as env:
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
        ticket = env["mail.ticket"].browse(ticket_id)
        note = ticket.message_ids.filtered(lambda m: "Kreditkartennummer" in m.body)
        assert note.is_internal and "Unverified sender" in note.body
        assert "contradicting DMARC results" in note.body
    assert smtp_outbox.messages() == []
