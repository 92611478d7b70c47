from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from odoo.addons.mail_ticket.tools.imap_mailbox import imap_utf7_encode, parse_fetch, uid_set
from odoo.addons.mail_ticket.tools.mailbox_ingestion import fetch_batches, headers_vals

from .common import MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestTicketMailServer(MailTicketCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.env["fetchmail.server"].create(
            {
                "name": "Support",
                "server_type": "imap",
                "server": "127.0.0.1",
                "port": 143,
                "user": "support",
                "password": "secret",
                "object_id": cls.env["ir.model"]._get_id("mail.ticket"),
            }
        )

    def test_ticket_server_defaults(self):
        self.assertTrue(self.server.is_ticket_server)
        self.assertEqual(
            (
                self.server.ticket_folder,
                self.server.ticket_processed_action,
                self.server.ticket_max_attempts,
                self.server.ticket_max_size,
            ),
            ("INBOX", "seen", 3, 25),
        )
        partner_server = self.server.copy(
            {"object_id": self.env["ir.model"]._get_id("res.partner")}
        )
        self.assertFalse(partner_server.is_ticket_server)
        self.assertEqual(self.server._ticket_imap_servers(), self.server)
        self.assertFalse(partner_server._ticket_imap_servers())

    def test_default_values_of_new_tickets(self):
        self.assertEqual(
            self.server._ticket_default_values(),
            {
                "priority": "1",
                "fetchmail_server_id": self.server.id,
                "company_id": self.env.company.id,
            },
        )
        tag = self.env["mail.ticket.tag"].create({"name": "Hotline"})
        team = self.env["mail.ticket.team"].create(
            {"name": "Hotline", "assignment": "user", "assign_user_id": self.user_agent.id}
        )
        self.server.write(
            {"ticket_team_id": team.id, "ticket_priority": "3", "ticket_tag_ids": tag.ids}
        )
        for fetched in (False, True):
            with self.subTest(fetched=fetched):
                self.fetched = fetched  # the mailbox's values, through both ways in
                ticket = self.receive_mail(server=self.server, subject=f"Neu {fetched}")
                self.assertEqual(
                    (ticket.user_id, ticket.priority, ticket.tag_ids, ticket.fetchmail_server_id),
                    (self.user_agent, "3", tag, self.server),
                )
                self.assertEqual(ticket.team_id, team)

    def test_support_address_defaults_to_the_login(self):
        self.assertFalse(self.server.ticket_reply_to, "'support' is no address")
        self.server.user = "Support@Example.com"
        self.assertEqual(self.server.ticket_reply_to, "support@example.com")
        self.server.ticket_reply_to = "help@example.com"
        self.server.user = "other@example.com"
        self.assertEqual(self.server.ticket_reply_to, "help@example.com", "an address set is kept")

    def test_answers_reply_to_the_support_mailbox(self):
        self.server.ticket_reply_to = "help@example.com"
        from_mailbox = self.Ticket.create(
            {
                "name": "Drucker",
                "partner_id": self.customer.id,
                "fetchmail_server_id": self.server.id,
            }
        )
        by_hand = self.Ticket.create({"name": "Anruf", "partner_id": self.customer.id})
        expected = f'"{self.company_admin.name}" <help@example.com>'
        for ticket in from_mailbox + by_hand:
            with self.subTest(ticket=ticket.name), self.mock_mail_gateway():
                ticket.with_user(self.user_agent).message_post(
                    body="<p>Bitte neu starten.</p>",
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                )
            self.assertEqual(len(self._mails), 1, "the customer, a follower, gets the answer")
            mail = self._mails[0]
            self.assertEqual(mail["email_to"], [self.customer.email_formatted])
            self.assertEqual(mail["reply_to"], expected)
            self.assertEqual(mail["subject"], f"[{ticket.number}] {ticket.name}")

        self.server.object_id = self.env["ir.model"]._get_id("res.partner")
        self.assertNotIn(
            "help@example.com", by_hand._notify_get_reply_to()[by_hand.id], "no ticket mailbox left"
        )

    def test_constraints(self):
        with self.assertRaises(ValidationError):
            self.server.ticket_max_attempts = 0
        with self.assertRaises(ValidationError):
            self.server.ticket_max_size = 0
        with self.assertRaises(ValidationError):
            self.server.write(
                {"ticket_processed_action": "move", "ticket_processed_folder": "INBOX"}
            )
        self.server.write(
            {"ticket_processed_action": "move", "ticket_processed_folder": "Erledigt"}
        )

    def test_fetch_batches_bounded_in_count_and_bytes(self):
        batches = list(fetch_batches(range(1, 121), {}, 10))
        self.assertEqual([len(batch) for batch in batches], [50, 50, 20])
        mb = 1024 * 1024
        sizes = {1: 20 * mb, 2: 20 * mb, 3: 30 * mb, 4: 1000 * mb}
        batches = list(fetch_batches([1, 2, 3, 4], sizes, 100 * mb))
        self.assertEqual(batches, [[1], [2], [3, 4]], "an oversized mail is not downloaded")

    def test_each_mailbox_has_its_own_job(self):
        server = self.server
        job = server.ticket_cron_id
        self.assertEqual(job.code, f"model._cron_fetch_ticket_mailbox({server.id})")
        self.assertEqual((job.interval_number, job.interval_type), (1, "minutes"))
        self.assertEqual(job.user_id, self.env.ref("base.user_root"))
        self.assertFalse(job.active, "not before Test & Confirm")
        server.write({"state": "done"})
        self.assertTrue(job.active)
        server.ticket_fetch_interval = 5
        self.assertEqual(job.interval_number, 5)
        server.active = False
        self.assertFalse(job.active)
        server.active = True
        self.assertTrue(job.active)
        server.set_draft()
        self.assertFalse(job.active)
        with self.assertRaises(ValidationError):
            server.ticket_fetch_interval = 0

        copy = server.copy()
        self.assertTrue(copy.ticket_cron_id)
        self.assertNotEqual(copy.ticket_cron_id, job)
        copy_job = copy.ticket_cron_id
        copy_action = copy_job.ir_actions_server_id
        copy.unlink()
        self.assertFalse(copy_job.exists(), "removed with its mail server")
        self.assertFalse(copy_action.exists(), "and its server action")

        server.object_id = self.env["ir.model"]._get_id("res.partner")
        self.assertFalse(server.ticket_cron_id)
        self.assertFalse(job.exists(), "Odoo's shared cron reads the other mail servers")
        server.object_id = self.env["ir.model"]._get_id("mail.ticket")
        self.assertTrue(server.ticket_cron_id)
        pop = self.env["fetchmail.server"].create(
            {"name": "POP", "server_type": "pop", "object_id": server.object_id.id}
        )
        self.assertFalse(pop.ticket_cron_id, "POP mailboxes are read as Odoo does")

    def test_mailboxes_created_before_get_their_job(self):
        self.server._ticket_unlink_crons(self.server.ticket_cron_id)
        self.assertFalse(self.server.ticket_cron_id)
        self.env["fetchmail.server"]._ticket_sync_all_crons()  # on update of the addon
        self.assertEqual(
            self.server.ticket_cron_id.code, f"model._cron_fetch_ticket_mailbox({self.server.id})"
        )

    def test_job_of_a_mailbox_gone_stops(self):
        job = self.server.ticket_cron_id
        self.server.write({"state": "done"})
        self.server.active = False  # archived, its job could not be updated (running)
        job.active = True
        progress = self.env["ir.cron.progress"].create({"cron_id": job.id})
        with self.enter_registry_test_mode(), self.registry.cursor() as cr:
            self.env(cr=cr)["fetchmail.server"].with_context(
                cron_id=job.id, ir_cron_progress_id=progress.id
            )._cron_fetch_ticket_mailbox(self.server.id)
        progress.invalidate_recordset()
        self.assertTrue(progress.deactivate, "the job deactivates itself")

    def test_fetch_interval_setting(self):
        cron = self.env.ref("mail.ir_cron_mail_gateway_action")
        cron.write({"interval_number": 5, "interval_type": "minutes"})
        with Form(self.env["res.config.settings"]) as settings:
            self.assertEqual(settings.mail_ticket_fetch_interval, 5)
            settings.mail_ticket_fetch_interval = 2
        self.assertEqual((cron.interval_number, cron.interval_type), (2, "minutes"))
        cron.write({"interval_number": 1, "interval_type": "hours"})
        self.assertEqual(self.env["res.config.settings"].create({}).mail_ticket_fetch_interval, 60)


@tagged("post_install", "-at_install", "mail_ticket")
class TestInboundHeaders(MailTicketCommon):
    def test_headers_are_always_storable(self):
        raw = (
            b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n"
            b"Subject: =?utf-8?q?Hallo=00Welt?=\r\n"
            b"Message-ID: <m1@example.com>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n\r\nx\r\n"
        )
        vals = headers_vals(raw)
        self.assertEqual(vals["subject"], "HalloWelt")
        self.assertEqual(vals["email_from"], "Jürgen <j@example.com>")
        self.assertEqual(vals["message_id"], "<m1@example.com>")
        self.assertEqual(str(vals["date"]), "2026-11-24 09:00:00")
        vals = headers_vals(b"Date: nonsense\r\n\r\nx")
        self.assertEqual(
            vals, {"message_id": False, "email_from": False, "subject": False, "date": False}
        )


@tagged("post_install", "-at_install", "mail_ticket")
class TestImapHelpers(MailTicketCommon):
    def test_uid_set(self):
        self.assertEqual(uid_set([9, 1, 2, 3, 7, 10]), "1:3,7,9:10")
        self.assertEqual(uid_set([4]), "4")
        self.assertEqual(uid_set([]), "")

    def test_modified_utf7(self):
        self.assertEqual(imap_utf7_encode("INBOX"), "INBOX")
        self.assertEqual(imap_utf7_encode("Geprüft"), "Gepr&APw-ft")
        self.assertEqual(imap_utf7_encode("A&B"), "A&-B")
        self.assertEqual(imap_utf7_encode("日本語"), "&ZeVnLIqe-")

    def test_parse_fetch(self):
        data = [
            (b"1 (UID 17 RFC822.SIZE 12 BODY[] {12}", b"Subject: x\r\n"),
            b")",
            b"2 (UID 18 RFC822.SIZE 300)",
        ]
        parsed = parse_fetch(data)
        self.assertEqual(sorted(parsed), [17, 18])
        self.assertEqual(parsed[17][1], b"Subject: x\r\n")
        self.assertIsNone(parsed[18][1])

    def test_parse_fetch_keys_each_body_to_its_uid(self):
        """An untagged FETCH that a server sends besides (another client marked a mail
        read) never replaces a body, even with its UID; a UID named after the body
        (in the trailer) is the body's; UIDs not asked for are left out."""
        data = [
            (b"1 (UID 17 BODY[] {12}", b"Subject: x\r\n"),
            b")",
            (b"2 (BODY[] {12}", b"Subject: y\r\n"),
            b" UID 18)",
            b"1 (UID 17 MODSEQ (5) FLAGS (\\Seen))",
            b"3 (UID 99 FLAGS (\\Seen))",
        ]
        parsed = parse_fetch(data, {17, 18})
        self.assertEqual(sorted(parsed), [17, 18])
        self.assertEqual(parsed[17][1], b"Subject: x\r\n")
        self.assertEqual(parsed[18][1], b"Subject: y\r\n")
        self.assertIn(b"FLAGS", parsed[17][0], "the attributes of both responses")
