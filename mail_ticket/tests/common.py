from types import SimpleNamespace

from odoo.addons.mail.tests.common import MailCommon, mail_new_test_user
from odoo.addons.mail_ticket.tools.mailbox_ingestion import FetchedMail, MailboxIngestion

# A customer mail as Thunderbird sends it: text and HTML alternatives.
MAIL_TICKET_TEMPLATE = """Return-Path: {return_path}
To: {to}
Cc: {cc}
From: {email_from}
Subject: {subject}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="----=_Part_4200734"
Date: Fri, 10 Aug 2026 16:16:39 +0200
Message-ID: {msg_id}
{extra}
------=_Part_4200734
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Unser Drucker im Lager druckt seit heute Morgen nur leere Seiten.

--=20
Sylvie
------=_Part_4200734
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body><p>Unser Drucker im Lager druckt seit heute Morgen nur leere Seiten.</p>
<p>--<br/>Sylvie</p></body></html>
------=_Part_4200734--
"""

# A mail with a PDF attachment.
MAIL_TICKET_ATTACHMENT_TEMPLATE = """Return-Path: {return_path}
To: {to}
Cc: {cc}
From: {email_from}
Subject: {subject}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"
Date: Fri, 10 Aug 2026 16:16:39 +0200
Message-ID: {msg_id}
{extra}
--b1
Content-Type: text/plain; charset=utf-8

Anbei das Fehlerprotokoll.
--b1
Content-Type: application/pdf; name="fehlerprotokoll.pdf"
Content-Disposition: attachment; filename="fehlerprotokoll.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK
--b1--
"""

# A customer's answer above the quoted conversation, as Thunderbird writes it.
MAIL_TICKET_QUOTED_REPLY_TEMPLATE = """Return-Path: {return_path}
To: {to}
Cc: {cc}
From: {email_from}
Subject: {subject}
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Date: Fri, 10 Aug 2026 16:16:39 +0200
Message-ID: {msg_id}
{extra}
<html><body><p>Der Neustart hat leider nicht geholfen.</p>
<div class="moz-cite-prefix">Am 10.08.2026 um 15:00 schrieb Support:</div>
<blockquote type="cite"><p>Bitte starten Sie den Drucker neu.</p></blockquote>
</body></html>
"""

# A reply with a screenshot inline and a log file attached.
MAIL_TICKET_INLINE_IMAGE_TEMPLATE = """Return-Path: {return_path}
To: {to}
Cc: {cc}
From: {email_from}
Subject: {subject}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"
Date: Fri, 10 Aug 2026 16:16:39 +0200
Message-ID: {msg_id}
{extra}
--outer
Content-Type: multipart/related; boundary="related"

--related
Content-Type: text/html; charset=utf-8

<html><body><p>So sieht die Fehlermeldung aus:</p><img src="cid:screenshot@agrolait"/></body></html>
--related
Content-Type: image/png; name="screenshot.png"
Content-Disposition: inline; filename="screenshot.png"
Content-ID: <screenshot@agrolait>
Content-Transfer-Encoding: base64

iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGM8wYAATAxEcQAo3ADQQD5s4QAAAABJRU5ErkJggg==
--related--
--outer
Content-Type: text/plain; name="druckerlog.txt"
Content-Disposition: attachment; filename="druckerlog.txt"

Fehler 0x42 beim Drucken
--outer--
"""

SUPPORT_ADDRESS = "support@test.mycompany.com"


class MailTicketCommon(MailCommon):
    """Incoming mail goes through `message_process` with the ticket model as
    fallback, as a fetchmail server whose "Create a New Record" is Ticket does."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_agent = mail_new_test_user(
            cls.env,
            login="agent",
            name="Agnes Agent",
            email="agnes.agent@test.mycompany.com",
            groups="base.group_user,mail_ticket.mail_ticket_group_user",
            company_id=cls.company_admin.id,
        )
        cls.user_manager = mail_new_test_user(
            cls.env,
            login="helpdesk_manager",
            name="Manfred Manager",
            email="manfred.manager@test.mycompany.com",
            groups="base.group_user,mail_ticket.mail_ticket_group_manager",
            company_id=cls.company_admin.id,
        )
        cls.stage_open = cls.env.ref("mail_ticket.stage_open")
        cls.stage_in_progress = cls.env.ref("mail_ticket.stage_in_progress")
        cls.stage_waiting = cls.env.ref("mail_ticket.stage_waiting")
        cls.stage_solved = cls.env.ref("mail_ticket.stage_solved")
        cls.stage_closed = cls.env.ref("mail_ticket.stage_closed")
        cls.customer = cls.env["res.partner"].create(
            {"name": "Sylvie Lelitre", "email": "sylvie.lelitre@agrolait.example.com"}
        )
        cls.Ticket = cls.env["mail.ticket"]
        cls.Comment = cls.env["mail.ticket.comment"]

    @classmethod
    def _create_agent(cls, login, name):
        """Another helpdesk agent: ``Bernd Agent`` is bernd.agent@test.mycompany.com."""
        return mail_new_test_user(
            cls.env,
            login=login,
            name=name,
            email=f"{name.split()[0].lower()}.agent@test.mycompany.com",
            groups="base.group_user,mail_ticket.mail_ticket_group_user",
        )

    @classmethod
    def _create_ticket_mailbox(cls, **vals):
        """An incoming mail server feeding tickets, never connected (the unit tests hand
        its mails to the gateway themselves; tests/ fetch from a real IMAP server)."""
        return cls.env["fetchmail.server"].create(
            {
                "name": "Support",
                "server": "127.0.0.1",
                "user": SUPPORT_ADDRESS,
                "password": "x",
                "object_id": cls.env["ir.model"]._get_id("mail.ticket"),
                **vals,
            }
        )

    @classmethod
    def _create_customer_ticket(cls):
        """A ticket of the test customer, as an agent or an earlier mail opened it."""
        return cls.env["mail.ticket"].create(
            {"name": "Drucker druckt nicht", "partner_id": cls.customer.id}
        )

    #: how ``receive_mail`` hands mail with a server to the gateway: as one mail through
    #: ``message_process`` (False), or as a batch fetched from the mailbox (True), the
    #: batched gateway first and ``message_process`` for what it leaves (subclasses of
    #: the gateway suites run every case both ways)
    fetched = False
    #: the ticket mailbox ``receive_mail`` receives from when given no ``server``
    mailbox = None

    def receive_mail(
        self,
        subject="Drucker druckt nicht",
        email_from='"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>',
        to=SUPPORT_ADDRESS,
        template=MAIL_TICKET_TEMPLATE,
        model="mail.ticket",
        custom_values=None,
        server=None,
        raw=None,
        **kwargs,
    ):
        """Process one incoming mail as fetchmail does; return the thread it went to.

        :param raw: the mail as bytes, instead of ``template`` filled in
        """
        server = server or self.mailbox
        if raw is None:
            kwargs.setdefault("msg_id", f"<{self._next_msg_id()}@agrolait.example.com>")
            raw = self.format(
                template, to=to, subject=subject, email_from=email_from, **kwargs
            ).encode()
        if server and self.fetched and model == "mail.ticket":
            return self.receive_fetched([raw], server)[0]
        gateway = self.env["mail.thread"].sudo()
        if server:  # as the mailbox's fetch does: the mailbox is named in the context
            gateway = gateway.with_context(default_fetchmail_server_id=server.id)
        thread_id = gateway.message_process(model, raw, custom_values=custom_values)
        return self.env[model or "mail.ticket"].browse(thread_id or [])

    def receive_fetched(self, raws, server):
        """Process mails as one FETCH batch of ``server``'s mailbox does (no IMAP: the
        mails are given); return the ticket of each (empty where none)."""
        MailTicketCommon._uid_counter = getattr(MailTicketCommon, "_uid_counter", 0) + 1
        first = MailTicketCommon._uid_counter * 1000
        mailbox = SimpleNamespace(folder="INBOX", uidvalidity=1)  # what the records read of it
        fetched = [FetchedMail(first + n, raw, len(raw)) for n, raw in enumerate(raws)]
        ingestion = MailboxIngestion(server.with_env(self.env).sudo(), mailbox)
        inbounds = ingestion._process_batch(fetched)
        return [inbound.ticket_id.with_env(self.env) for inbound in inbounds]

    def _next_msg_id(self):
        MailTicketCommon._msg_counter = getattr(MailTicketCommon, "_msg_counter", 0) + 1
        return f"mail-ticket-test-{self._msg_counter}"
