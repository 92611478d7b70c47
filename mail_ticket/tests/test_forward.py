import time
from email.message import EmailMessage
from email.utils import make_msgid

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mail_ticket.tools.mail_forward import html_to_text, parse_forward

from .common import SUPPORT_ADDRESS, MailTicketCommon

TRUSTED_MX = "mx.test.mycompany.com"
AGENT_DOMAIN = "test.mycompany.com"
CUSTOMER = '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>'
NEW_CUSTOMER = "paul@pinguin.example.com"
ORIGINAL_BODY = "Unser Drucker im Lager druckt seit heute Morgen nur leere Seiten."

# the inline forward blocks of the common clients, as they write them in text/plain
GMAIL_EN = f"""Kannst du das übernehmen?

---------- Forwarded message ---------
From: Sylvie Lelitre <sylvie.lelitre@agrolait.example.com>
Date: Fri, 10 Aug 2026 16:16:39 +0200
Subject: Drucker druckt nicht
To: Agnes Agent <agnes.agent@test.mycompany.com>


{ORIGINAL_BODY}

Sylvie
"""
GMAIL_DE = f"""---------- Weitergeleitete Nachricht ---------
Von: Paul Pinguin <{NEW_CUSTOMER}>
Date: Fr., 10. Aug. 2026 um 16:16 Uhr
Subject: Bildschirm flackert
To: <agnes.agent@test.mycompany.com>


Der Bildschirm flackert.
"""
OUTLOOK_DE = f"""Bitte an die Technik.

________________________________
Von: Paul Pinguin [mailto:{NEW_CUSTOMER}]
Gesendet: Freitag, 10. August 2026 16:16
An: Agnes Agent
Betreff: Bildschirm flackert

Der Bildschirm flackert.
"""
OUTLOOK_EN = f"""From: Paul Pinguin <{NEW_CUSTOMER}>
Sent: Friday, August 10, 2026 4:16 PM
To: Agnes Agent <agnes.agent@test.mycompany.com>
Subject: RE: Bildschirm flackert

Der Bildschirm flackert.
"""
APPLE_EN = f"""Begin forwarded message:

From: Paul Pinguin <{NEW_CUSTOMER}>
Subject: Bildschirm flackert
Date: 10. August 2026 at 16:16:39 CEST
To: Agnes Agent <agnes.agent@test.mycompany.com>

Der Bildschirm flackert.
"""
APPLE_DE = f"""Anfang der weitergeleiteten Nachricht:

Von: Paul Pinguin <{NEW_CUSTOMER}>
Betreff: Bildschirm flackert
Datum: 10. August 2026 um 16:16:39 MESZ
An: Agnes Agent <agnes.agent@test.mycompany.com>

Der Bildschirm flackert.
"""
THUNDERBIRD_EN = f"""-------- Forwarded Message --------
Subject: 	Bildschirm flackert
Date: 	Fri, 10 Aug 2026 16:16:39 +0200
From: 	Paul Pinguin <{NEW_CUSTOMER}>
To: 	agnes.agent@test.mycompany.com

Der Bildschirm flackert.
"""
# Thunderbird's HTML part (German), with its header table
THUNDERBIRD_DE_HTML = f"""<html><body><p>Zur Info</p>
<div class="moz-forward-container"><br><br>-------- Weitergeleitete Nachricht --------
<table class="moz-email-headers-table" cellspacing="0" cellpadding="0" border="0"><tbody>
<tr><th nowrap="nowrap">Betreff: </th><td>Bildschirm flackert</td></tr>
<tr><th nowrap="nowrap">Datum: </th><td>Fri, 10 Aug 2026 16:16:39 +0200</td></tr>
<tr><th nowrap="nowrap">Von: </th>
<td>Paul Pinguin <a href="mailto:{NEW_CUSTOMER}">&lt;{NEW_CUSTOMER}&gt;</a></td></tr>
<tr><th nowrap="nowrap">An: </th><td>agnes.agent@test.mycompany.com</td></tr>
</tbody></table><br><p>Der Bildschirm <b>flackert</b>.</p></div></body></html>"""


def forward_mail(body, subject="Fwd: Drucker druckt nicht", sender=None, html=None, attached=None):
    mail = EmailMessage()
    mail["From"] = sender or '"Agnes Agent" <agnes.agent@test.mycompany.com>'
    mail["To"] = SUPPORT_ADDRESS
    mail["Subject"] = subject
    mail["Date"] = "Fri, 10 Aug 2026 17:00:00 +0200"
    mail["Message-ID"] = make_msgid(domain="test.mycompany.com")
    if html is not None and body is None:
        mail.set_content(html, subtype="html")
    else:
        mail.set_content(body)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    if attached is not None:
        mail.add_attachment(attached)
    return mail


def original_mail():
    original = EmailMessage()
    original["From"] = CUSTOMER
    original["To"] = "agnes.agent@test.mycompany.com"
    original["Subject"] = "Drucker druckt nicht"
    original["Date"] = "Fri, 10 Aug 2026 16:16:39 +0200"
    original["Message-ID"] = "<original@agrolait.example.com>"
    original.set_content(ORIGINAL_BODY)
    return original


@tagged("post_install", "-at_install", "mail_ticket")
class TestForwardParsing(MailTicketCommon):
    """The customer's mail is found in the forwards of the common clients."""

    def test_inline_blocks(self):
        cases = {
            "gmail_en": GMAIL_EN,
            "gmail_de": GMAIL_DE,
            "outlook_de": OUTLOOK_DE,
            "outlook_en": OUTLOOK_EN,
            "apple_en": APPLE_EN,
            "apple_de": APPLE_DE,
            "thunderbird_en": THUNDERBIRD_EN,
        }
        for client, body in cases.items():
            with self.subTest(client=client):
                forward = parse_forward(forward_mail(body))
                self.assertTrue(forward)
                if client == "gmail_en":
                    self.assertEqual(forward.email_from, CUSTOMER)
                    self.assertEqual(forward.subject, "Drucker druckt nicht")
                    self.assertEqual(forward.note, "Kannst du das übernehmen?")
                    self.assertIn(ORIGINAL_BODY, forward.body)
                    self.assertEqual(forward.date.isoformat(), "2026-08-10T16:16:39+02:00")
                else:
                    self.assertEqual(forward.email_from, f'"Paul Pinguin" <{NEW_CUSTOMER}>')
                    self.assertEqual(forward.subject.removeprefix("RE: "), "Bildschirm flackert")
                    self.assertIn("Der Bildschirm flackert.", forward.body)
                    self.assertNotIn("Betreff", forward.body)
                    self.assertNotIn("Subject", forward.body)

    def test_html_only_and_attached(self):
        forward = parse_forward(forward_mail(None, html=THUNDERBIRD_DE_HTML))
        self.assertEqual(forward.email_from, f'"Paul Pinguin" <{NEW_CUSTOMER}>')
        self.assertEqual(forward.subject, "Bildschirm flackert")
        self.assertEqual(forward.note, "Zur Info")
        self.assertIn("Der Bildschirm flackert.", forward.body)
        forward = parse_forward(forward_mail("Siehe Anhang", attached=original_mail()))
        self.assertEqual(forward.email_from, CUSTOMER)
        self.assertEqual(forward.subject, "Drucker druckt nicht")
        self.assertEqual(forward.note, "Siehe Anhang")
        self.assertIn(ORIGINAL_BODY, forward.body)

    def test_linear_time_on_white_space(self):
        """Long lines of white space and quote marks, everywhere a forward is looked for:
        read in time linear in the size of the mail (a budget far above what it takes,
        which a quadratic reading would exceed by far)."""
        filler = "\n".join([" " * 20000, "> " * 10000, "*" * 20000, "-" * 20000] * 25)
        body = f"{filler}\n---------- Forwarded message ---------\n{filler}\nFrom: x\n"
        started = time.process_time()
        self.assertIsNone(parse_forward(forward_mail(body)))
        self.assertLess(time.process_time() - started, 5)

    def test_no_forward(self):
        for body in (
            "Hallo,\nvon: mir\nBitte um Rückruf.",
            "From: Paul <paul@pinguin.example.com>\n\nkein Block",
            "---------- Forwarded message ---------\nFrom: niemand\n\nText",
            "---------- Forwarded message ---------\nFrom: a@x.example, b@y.example\n\nText",
        ):
            with self.subTest(body=body):
                self.assertIsNone(parse_forward(forward_mail(body)))
        self.assertEqual(html_to_text("<p>a<br>b</p><div>c</div>").split(), ["a", "b", "c"])


@tagged("post_install", "-at_install", "mail_ticket")
class TestForwardOnBehalf(MailTicketCommon):
    """An agent forwards a customer's mail to the support mailbox: the ticket is the
    customer's. Only a verified agent's forward is honoured."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].set_param("mail_ticket.authserv_id", TRUSTED_MX)
        cls.server = cls._create_ticket_mailbox()

    def receive_forward(self, mail, dmarc="pass", domain=AGENT_DOMAIN):
        if dmarc:
            mail["Authentication-Results"] = (
                f"{TRUSTED_MX}; spf=pass smtp.mailfrom={domain}; dmarc={dmarc} header.from={domain}"
            )
        with self.mock_mail_gateway():
            return self.receive_mail(raw=mail.as_bytes(), server=self.server)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_verified_agent_forward(self):
        ticket = self.receive_forward(forward_mail(GMAIL_EN))
        self.assertEqual(ticket.fetchmail_server_id, self.server)
        self.assertEqual(ticket.partner_id, self.customer)
        self.assertEqual(ticket.email_from, CUSTOMER)
        self.assertEqual(ticket.name, "Drucker druckt nicht")
        self.assertIn(ORIGINAL_BODY, ticket.description)
        self.assertNotIn("übernehmen", ticket.description)
        self.assertTrue(ticket.ack_pending, "the customer learns the number")
        self.assertIn(self.customer, ticket.message_partner_ids)
        self.assertEqual(str(ticket.date_last_customer_message), "2026-08-10 14:16:39")
        (note,) = ticket.message_ids
        self.assertTrue(note.is_internal)
        self.assertEqual(note.author_id, self.user_agent.partner_id)
        self.assertIn("Kannst du das übernehmen?", note.body)
        self.assertFalse(note.notified_partner_ids, "the agent's words reach nobody")
        self.assertFalse(self._new_mails)
        self.assertFalse(ticket.comment_ids, "no comment of the customer conversation")
        self.assertFalse(ticket.date_first_answer, "a forward is no answer")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_verified_agent_forwards_new_contact_as_attachment_and_inline(self):
        attached = self.receive_forward(forward_mail("", attached=original_mail()))
        self.assertEqual(
            (attached.partner_id, attached.name), (self.customer, "Drucker druckt nicht")
        )
        self.assertIn(ORIGINAL_BODY, attached.description)
        self.assertIn("on behalf of", attached.message_ids.body, "no words: a note says who")
        html = self.receive_forward(
            forward_mail(None, subject="WG: Bildschirm flackert", html=THUNDERBIRD_DE_HTML)
        )
        self.assertEqual(html.partner_id.email, NEW_CUSTOMER, "a contact for the customer")
        self.assertEqual(html.name, "Bildschirm flackert")
        outlook = self.receive_forward(forward_mail(OUTLOOK_DE, subject="WG: Bildschirm flackert"))
        self.assertEqual(outlook.partner_id, html.partner_id)
        self.assertIn("Bitte an die Technik.", outlook.message_ids.body)

    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_unverified_agent_forward_is_not_honoured(self):
        for dmarc, domain in (
            (False, AGENT_DOMAIN),
            ("fail", AGENT_DOMAIN),
            ("pass", "other.example"),
        ):
            with self.subTest(dmarc=dmarc, domain=domain):
                ticket = self.receive_forward(forward_mail(GMAIL_DE), dmarc=dmarc, domain=domain)
                self.assertNotEqual(ticket.partner_id.email, NEW_CUSTOMER)
                self.assertEqual(ticket.name, "Fwd: Drucker druckt nicht")
                self.assertFalse(ticket.ack_pending)
                self.assertIn("Unverified sender", ticket.message_ids.body)
        self.assertFalse(
            self.env["res.partner"].search([("email", "=", NEW_CUSTOMER)]),
            "the address the forward names gets no contact",
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_inline_forward_wins_over_its_attachment(self):
        """An agent forwards inline a stranger's mail that carries a message attached:
        the customer is who wrote to the agent, not whoever the attachment names."""
        decoy = original_mail()
        decoy.replace_header("From", '"Geschäftsführer" <chef@grosskunde.example>')
        ticket = self.receive_forward(forward_mail(GMAIL_DE, attached=decoy))
        self.assertEqual(ticket.partner_id.email, NEW_CUSTOMER)
        self.assertEqual(ticket.name, "Bildschirm flackert")
        self.assertFalse(
            self.env["res.partner"].search([("email", "=", "chef@grosskunde.example")])
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_customer_forward_is_an_ordinary_ticket(self):
        ticket = self.receive_forward(
            forward_mail(GMAIL_DE, sender=CUSTOMER), domain="agrolait.example.com"
        )
        self.assertEqual(ticket.partner_id, self.customer, "the sender's ticket")
        self.assertEqual(ticket.name, "Fwd: Drucker druckt nicht")
        self.assertTrue(ticket.ack_pending, "acknowledged to its sender only")
        self.assertEqual(ticket.message_partner_ids, self.customer)
        self.assertFalse(self.env["res.partner"].search([("email", "=", NEW_CUSTOMER)]))

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_forward_naming_a_ticket_is_a_comment(self):
        ticket = self._create_customer_ticket()
        thread = self.receive_forward(
            forward_mail(GMAIL_DE, subject=f"Fwd: [{ticket.number}] Drucker")
        )
        self.assertEqual(thread, ticket)
        self.assertEqual(ticket.partner_id, self.customer)


@tagged("post_install", "-at_install", "mail_ticket")
class TestForwardOnBehalfFetched(TestForwardOnBehalf):
    """The same forwards, fetched in a batch from the mailbox."""

    fetched = True
