"""The email conversation over a real IMAP mailbox and a real SMTP server.

The customer only uses email: their mails go into the Dovecot mailbox that Odoo's
fetchmail cron reads, and everything Odoo sends is captured by the SMTP sink, from which
the customer's replies are built, as a mail client would.
"""

import re
from email.utils import getaddresses, make_msgid

from odoo_env import make_mail

from odoo.tools import html2plaintext

CUSTOMER = '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>'


def run_acknowledgements(odoo_db):
    with odoo_db.env() as env:
        env.ref("mail_ticket.ir_cron_mail_ticket_ack").method_direct_trigger()


def addresses(message, header):
    return [address.lower() for _name, address in getaddresses(message.get_all(header, []))]


def reply_to(received, body, sender=CUSTOMER, threaded=True):
    """The customer's answer to a mail they received, as their mail client writes it."""
    headers = {}
    if threaded:
        headers = {
            "In-Reply-To": received["Message-ID"],
            "References": f"{received.get('References', '')} {received['Message-ID']}".strip(),
        }
    part = received.get_body(("plain", "html"))
    text = part.get_content()
    if part.get_content_type() == "text/html":
        text = html2plaintext(text)
    quoted = "\n".join(f"> {line}" for line in text.splitlines())

    return make_mail(
        f"Re: {received['Subject']}",
        sender=sender,
        to=received["Reply-To"],
        body=f"{body}\n\nAm Dienstag schrieb Support:\n{quoted}",
        headers=headers,
    )


def make_agent(env, login, name="Agnes Agent"):
    return (
        env["res.users"]
        .with_context(no_reset_password=True)
        .create(
            {
                "name": name,
                "login": login,
                "email": f"agnes.{login}@support.example.com",
                "group_ids": [(4, env.ref("mail_ticket.mail_ticket_group_user").id)],
            }
        )
    )


def test_round_trip(odoo_db, ticket_server, imap_account, smtp_outbox):
    server_id = ticket_server()
    with odoo_db.env() as env:
        agent_id = make_agent(env, f"agent-{imap_account.login}").id
    support = imap_account.login
    imap_account.append(make_mail("Drucker druckt nicht", to=support))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)])
        number, ticket_id = ticket.number, ticket.id

    # the acknowledgement reaches the customer, with the number, answering to the mailbox
    run_acknowledgements(odoo_db)
    (ack,) = smtp_outbox.wait_for(1)
    assert addresses(ack, "To") == ["sylvie.lelitre@agrolait.example.com"]
    assert ack["Subject"] == f"[{number}] Drucker druckt nicht"
    assert addresses(ack, "Reply-To") == [support]
    assert number in ack.get_body(("html",)).get_content()

    # the customer answers it from their mail client: a comment on the same ticket
    imap_account.append(reply_to(ack, "Der Neustart hat leider nicht geholfen."))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].browse(ticket_id)
        assert env["mail.ticket"].search_count([("fetchmail_server_id", "=", server_id)]) == 1
        (comment,) = ticket.comment_ids
        assert comment.is_from_email and "nicht geholfen" in comment.body
        assert "Am Dienstag schrieb" not in comment.body, "the quoted history is left out"

    # an agent answers from the ticket
    smtp_outbox.clear()
    with odoo_db.env() as env:
        agent = env["res.users"].browse(agent_id)
        env["mail.ticket"].browse(ticket_id).with_user(agent).message_post(
            body="Bitte ziehen Sie das Netzkabel für zehn Sekunden.",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
    (answer,) = smtp_outbox.wait_for(1)
    assert addresses(answer, "To") == ["sylvie.lelitre@agrolait.example.com"]
    assert answer["Subject"] == f"[{number}] Drucker druckt nicht"
    assert addresses(answer, "Reply-To") == [support]
    assert ack["Message-ID"] in answer["References"], "threads in the customer's mail client"
    html = answer.get_body(("html",)).get_content()
    assert "Netzkabel" in html and f"Ticket {number}" in html
    assert re.search(r'href="[^"]*access_token=', html), "a link to see the ticket"

    # the customer answers from a client that drops the threading headers
    imap_account.append(reply_to(answer, "Jetzt geht es, danke!", threaded=False))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].browse(ticket_id)
        assert [c.is_from_email for c in ticket.comment_ids] == [True, False, True]
        assert "Jetzt geht es" in ticket.comment_ids[-1].body

    # internal notes never leave
    smtp_outbox.clear()
    with odoo_db.env() as env:
        env["mail.ticket"].browse(ticket_id).with_user(
            env["res.users"].browse(agent_id)
        ).message_post(
            body="Kunde hat Wartungsvertrag.", message_type="comment", subtype_xmlid="mail.mt_note"
        )
    assert not [m for m in smtp_outbox.messages() if "agrolait" in m["To"]]


def test_stranger_naming_a_ticket_gets_nothing_and_reaches_no_one(
    odoo_db, ticket_server, imap_account, smtp_outbox
):
    server_id = ticket_server(ticket_send_ack=False)
    imap_account.append(make_mail("Drucker druckt nicht"))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)])
        number, ticket_id = ticket.number, ticket.id
    smtp_outbox.clear()

    imap_account.append(
        make_mail(f"Re: [{number}] Zahlungsdaten", sender="Mallory <mallory@evil.example>")
    )
    odoo_db.run_cron()
    run_acknowledgements(odoo_db)
    assert smtp_outbox.messages() == [], "neither the stranger nor the customer gets mail"
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].browse(ticket_id)
        note = ticket.message_ids[0]
        assert note.subtype_id == env.ref("mail.mt_note") and "Unverified sender" in note.body
        assert "mallory@evil.example" not in ticket.message_partner_ids.mapped("email")
        assert not ticket.comment_ids


def test_auto_responder_storm_ends_at_the_rate_limit(
    odoo_db, ticket_server, imap_account, smtp_outbox
):
    """An auto-responder that answers every mail with a new one (no threading, no
    RFC 3834 header): each answer opens a ticket, which is acknowledged, which it
    answers... until the acknowledgements to it stop."""
    ticket_server()
    bot = "Abwesenheit <assistent@autoresponder.example>"
    imap_account.append(make_mail("Frage zur Rechnung", sender=bot, to=imap_account.login))
    acks = []
    for _round in range(10):
        odoo_db.run_cron()
        run_acknowledgements(odoo_db)
        new = smtp_outbox.messages()[len(acks) :]
        if not new:
            break
        acks += new
        for _ack in new:  # the bot answers each mail it receives with a new one
            imap_account.append(
                make_mail(
                    f"Ich bin nicht im Büro ({len(acks)})",
                    sender=bot,
                    to=imap_account.login,
                    message_id=make_msgid(),
                )
            )
    assert len(acks) == 5, "at most 5 acknowledgements per sender and hour"
    assert all("assistent@autoresponder.example" in addresses(ack, "To") for ack in acks)


def test_german_customer_acknowledged_in_german(odoo_db, ticket_server, imap_account, smtp_outbox):
    """An English database with German installed: a new customer who writes German, no
    Content-Language header, gets a German contact and a German acknowledgement."""
    ticket_server()
    with odoo_db.env() as env:
        was_active = bool(env["res.lang"]._lang_get("de_DE"))
        env["res.lang"]._activate_lang("de_DE")
        env["ir.module.module"]._load_module_terms(["mail_ticket"], ["de_DE"])
    sender = f"kurt.neu.{imap_account.login.split('@')[0]}@lager.example.com"
    try:
        imap_account.append(
            make_mail(
                "Kein Zugang zum Kundenkonto",
                sender=f'"Kurt Neu" <{sender}>',
                to=imap_account.login,
                body="Guten Tag, seit gestern kann ich mich nicht mehr in mein Kundenkonto "
                "einloggen. Können Sie mir bitte helfen?",
            )
        )
        odoo_db.run_cron()
        with odoo_db.env() as env:
            (partner,) = env["res.partner"].search([("email_normalized", "=", sender)])
            assert partner.lang == "de_DE"
        run_acknowledgements(odoo_db)
        (ack,) = smtp_outbox.wait_for(1)
        assert addresses(ack, "To") == [sender]
        html = ack.get_body(("html",)).get_content()
        assert "vielen Dank für Ihre Nachricht" in html
    finally:
        if not was_active:  # the session's other tests run in an English-only database
            with odoo_db.env() as env:
                env["res.partner"].search([("email_normalized", "=", sender)]).lang = "en_US"
                env["res.lang"]._lang_get("de_DE").active = False
