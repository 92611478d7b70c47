from odoo.tests import BaseCase, Form, tagged

from odoo.addons.mail_ticket.service.idle_listener import LOCK_KEY as IDLE_LOCK_KEY
from odoo.addons.mail_ticket.service.idle_listener import LineReader

from .common import MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestIdleSetting(MailTicketCommon):
    def test_instant_by_default(self):
        """Test & Confirm switches it off where the server cannot push (tests/test_idle.py,
        against Dovecot)."""
        self.assertTrue(self._create_ticket_mailbox(server_type="imap").ticket_idle)

    def test_shown_for_imap_ticket_mailboxes_only(self):
        form = Form(self.env["fetchmail.server"], view="mail.view_email_server_form")
        form.name = "Support"
        form.object_id = self.env["ir.model"]._get("mail.ticket")
        shown = {}
        for server_type in ("imap", "pop", "local", "gmail", "outlook"):
            form.server_type = server_type
            shown[server_type] = not form._get_modifier("ticket_idle", "invisible")
        self.assertEqual(
            shown, {"imap": True, "pop": False, "local": False, "gmail": True, "outlook": True}
        )
        form.server_type = "imap"
        form.object_id = self.env["ir.model"]._get("res.partner")
        self.assertTrue(form._get_modifier("ticket_idle", "invisible"), "not a ticket mailbox")


@tagged("post_install", "-at_install", "mail_ticket")
class TestIdleState(MailTicketCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.env["fetchmail.server"].create(
            {
                "name": "Support",
                "server_type": "imap",
                "server": "imap.example.com",
                "user": "support@example.com",
                "password": "x",
                "object_id": cls.env["ir.model"]._get_id("mail.ticket"),
                "state": "done",
            }
        )

    def test_listed_for_the_listener_while_instant_and_confirmed(self):
        Server = self.env["fetchmail.server"]
        signature = Server._ticket_idle_mailboxes()[self.server.id]
        self.server.ticket_max_size = 10
        self.assertEqual(Server._ticket_idle_mailboxes()[self.server.id], signature)
        self.server.ticket_folder = "Support"
        self.assertNotEqual(
            Server._ticket_idle_mailboxes()[self.server.id], signature, "reconnect elsewhere"
        )
        self.server.ticket_idle = False
        self.assertNotIn(self.server.id, Server._ticket_idle_mailboxes())
        self.server.write({"ticket_idle": True, "state": "draft"})
        self.assertNotIn(self.server.id, Server._ticket_idle_mailboxes())

    def test_live_only_while_the_listener_holds_the_lock(self):
        self.assertEqual(self.server.ticket_idle_state, "waiting")
        self.server._ticket_idle_record("connected", "odoo-1:42")
        self.server.invalidate_recordset()
        self.assertEqual(self.server.ticket_idle_state, "waiting", "its listener was killed")
        self.env.cr.execute("SELECT pg_advisory_lock(%s, %s)", (IDLE_LOCK_KEY, self.server.id))
        try:
            self.server.invalidate_recordset()
            self.assertEqual(
                (self.server.ticket_idle_state, self.server.ticket_idle_holder),
                ("connected", "odoo-1:42"),
            )
            self.assertTrue(self.server.ticket_idle_date_connected)
            self.server._ticket_idle_record("reconnecting", "odoo-1:42", error="refused")
            self.server.invalidate_recordset()
            self.assertEqual(
                (self.server.ticket_idle_state, self.server.ticket_idle_error),
                ("reconnecting", "refused"),
            )
            self.server._ticket_idle_record("reconnecting", "odoo-1:42", error="no_answer")
            self.server.invalidate_recordset()
            self.assertEqual(
                self.server.ticket_idle_error, "The mail server did not answer in time."
            )
            self.server.ticket_idle = False
            self.assertEqual(self.server.ticket_idle_state, "off")
        finally:
            self.env.cr.execute(
                "SELECT pg_advisory_unlock(%s, %s)", (IDLE_LOCK_KEY, self.server.id)
            )

    def test_new_mail_triggers_the_mailbox_job(self):
        cron = self.server.ticket_cron_id
        self.assertTrue(cron)
        before = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        self.server._ticket_idle_record("connected", "odoo-1:42", event=True)
        self.assertEqual(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), before + 1
        )
        session = self.env["mail.ticket.idle.session"].search([("server_id", "=", self.server)])
        self.assertEqual(session.event_count, 1)
        self.assertTrue(session.date_event)

    def test_fetch_runs_tell_what_started_them(self):
        no_run = self.env["mail.ticket.fetch.run"]
        self.assertEqual(self.server._ticket_fetch_trigger(no_run), ("manual", 0))
        server = self.server.with_context(cron_id=self.server.ticket_cron_id.id)
        self.assertEqual(server._ticket_fetch_trigger(no_run), ("cron", 0))
        self.server._ticket_idle_record("connected", "odoo-1:42", event=True)
        self.assertEqual(server._ticket_fetch_trigger(no_run), ("push", 1))
        pushed = no_run.create({"server_id": self.server.id, "idle_event_count": 1})
        self.assertEqual(server._ticket_fetch_trigger(pushed), ("cron", 1), "already fetched")


@tagged("mail_ticket")
class TestLineReader(BaseCase):
    def test_responses_split_with_their_literals(self):
        reader = LineReader(b"* 3 EXISTS\r\n* 1 RECENT\r\n* 2 FETCH (BODY[] {5}\r\nab\r\n")
        self.assertEqual(reader.pop(), b"* 3 EXISTS")
        self.assertEqual(reader.pop(), b"* 1 RECENT")
        self.assertIsNone(reader.pop(), "the literal is not complete")
        reader.feed(b"c)\r\n+ idling\r")
        self.assertEqual(reader.pop(), b"* 2 FETCH (BODY[] {5}\r\nab\r\nc)")
        self.assertIsNone(reader.pop())
        reader.feed(b"\n")
        self.assertEqual(reader.pop(), b"+ idling")
