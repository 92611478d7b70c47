"""An agent forwards a customer's mail to the support mailbox, over real IMAP and SMTP.

The agent got the customer's mail personally and forwards it from their own mail client
to the support mailbox that Odoo's fetch cron reads: the ticket is the customer's, the
acknowledgement goes to the customer, the agent's words stay internal. A forward whose
sender the trusted receiving server did not vouch for is an ordinary mail of its sender.
"""

import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from odoo_env import make_mail, make_team
from test_conversation import make_agent, run_acknowledgements
from test_hostile_senders import auth_results, recipients, trusted_mx  # noqa: F401 - fixture


def forwarded_inline(agent_from, support, customer_email, subject, headers=None):
    """Gmail's "Forward" in German, as the agent's mail client sends it."""
    body = (
        "Bitte übernehmt das, ich bin im Urlaub.\n\n"
        "---------- Weitergeleitete Nachricht ---------\n"
        f"Von: Paul Pinguin <{customer_email}>\n"
        "Date: Fr., 10. Aug. 2026 um 16:16 Uhr\n"
        f"Subject: {subject}\n"
        f"To: Agnes Agent <{agent_from}>\n\n\n"
        "Der Bildschirm im Lager flackert seit heute Morgen.\n\nPaul\n"
    )
    return make_mail(f"WG: {subject}", sender=agent_from, to=support, body=body, headers=headers)


def forwarded_as_attachment(agent_from, support, customer_email, subject, headers):
    """Thunderbird's "Forward As Attachment": the customer's mail as message/rfc822."""
    original = EmailMessage()
    original["From"] = f"Paul Pinguin <{customer_email}>"
    original["To"] = agent_from
    original["Subject"] = subject
    original["Date"] = formatdate(localtime=True)
    original["Message-ID"] = make_msgid(domain="pinguin.example.com")
    original.set_content("Der Drucker im Büro druckt nur leere Seiten.")
    mail = EmailMessage()
    mail["From"] = agent_from
    mail["To"] = support
    mail["Subject"] = f"Fwd: {subject}"
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain="support.example.com")
    for name, value in headers.items():
        mail[name] = value
    mail.set_content("")
    mail.add_attachment(original)
    return mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))


def test_agent_forwards_on_behalf_of_a_customer(
    odoo_db,
    ticket_server,
    imap_account,
    smtp_outbox,
    trusted_mx,  # noqa: F811
):
    with odoo_db.env() as env:
        agent = make_agent(env, f"agent-{uuid.uuid4().hex[:8]}")
        agent_id, agent_email = agent.id, agent.email
        domain = agent_email.split("@")[1]
        # the mailbox's team gives its new tickets to its members in turn: the agent alone
        team_id = make_team(env, assignment="balanced", member_ids=[agent_id])
    server_id = ticket_server(ticket_team_id=team_id)
    customer_email = f"paul.{uuid.uuid4().hex[:8]}@pinguin.example.com"
    verified = {"Authentication-Results": auth_results("pass", domain)}
    inline = forwarded_inline(
        agent_email, imap_account.login, customer_email, "Bildschirm", verified
    )
    imap_account.append(inline)
    imap_account.append(
        forwarded_as_attachment(
            agent_email, imap_account.login, customer_email, "Drucker im Büro", verified
        )
    )
    odoo_db.run_cron()
    run_acknowledgements(odoo_db)

    with odoo_db.env() as env:
        tickets = env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)], order="id")
        assert tickets.mapped("name") == ["Bildschirm", "Drucker im Büro"]
        assert tickets.partner_id.email == customer_email, "one contact: the customer"
        assert tickets.mapped("email_from") == [f'"Paul Pinguin" <{customer_email}>'] * 2
        assert "flackert seit heute Morgen" in tickets[0].description
        assert "Urlaub" not in tickets[0].description
        assert "leere Seiten" in tickets[1].description
        assert tickets.user_id.id == agent_id
        note = tickets[0].message_ids.filtered(lambda message: "Urlaub" in message.body)
        assert note.is_internal and note.author_id == env["res.users"].browse(agent_id).partner_id
        numbers = tickets.mapped("number")

    # each acknowledgement goes to the customer, never to the agent
    acks = smtp_outbox.wait_for(2)
    assert sorted(recipients(ack) for ack in acks) == [[customer_email], [customer_email]]
    assert sorted(ack["Subject"] for ack in acks) == sorted(
        f"[{number}] {name}"
        for number, name in zip(numbers, ["Bildschirm", "Drucker im Büro"], strict=True)
    )
    bodies = "".join(ack.get_body(("html", "plain")).get_content() for ack in acks)
    assert "Urlaub" not in bodies


def test_unverified_forward_is_the_senders_mail(
    odoo_db,
    ticket_server,
    imap_account,
    smtp_outbox,
    trusted_mx,  # noqa: F811
):
    """Without the trusted server's DMARC pass, an agent's address proves nothing: the
    forward is a flagged ticket of its sender, and the address it names gets nothing."""
    with odoo_db.env() as env:
        agent_email = make_agent(env, f"agent-{uuid.uuid4().hex[:8]}").email
        # what earlier tests left to acknowledge or in the mail queue leaves now
        env.ref("mail_ticket.ir_cron_mail_ticket_ack").method_direct_trigger()
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
    smtp_outbox.clear()
    server_id = ticket_server()
    customer_email = f"paul.{uuid.uuid4().hex[:8]}@pinguin.example.com"
    imap_account.append(
        forwarded_inline(agent_email, imap_account.login, customer_email, "Bildschirm")
    )
    odoo_db.run_cron()
    run_acknowledgements(odoo_db)
    with odoo_db.env() as env:
        ticket = env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)])
        assert ticket.name == "WG: Bildschirm"
        assert ticket.partner_id.email != customer_email and not ticket.ack_pending
        assert "Unverified sender" in ticket.message_ids.body
        assert not env["res.partner"].search([("email", "=", customer_email)])
        env.ref("mail.ir_cron_mail_scheduler_action").method_direct_trigger()
    assert smtp_outbox.messages() == [], "nobody is mailed"
