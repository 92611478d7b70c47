from datetime import timedelta
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import MailTicketCommon


class EmptyImapConnection:
    """An IMAP connection whose INBOX holds no new mail (what a working mailbox answers)."""

    capabilities = ("IMAP4REV1", "UIDPLUS", "MOVE")

    def status(self, folder, items):
        return "OK", [b'"INBOX" (UIDNEXT 1 UIDVALIDITY 7)']

    def select(self, folder):
        return "OK", [b"0"]

    def response(self, code):
        return code, [b"7"]

    def uid(self, command, *args):
        return "OK", [b""]

    def disconnect(self):
        pass


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailboxAlert(MailTicketCommon):
    """An outage of a ticket mailbox is reported once it lasts, and its end too."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.env["fetchmail.server"].create(
            {
                "name": "Support Hotline",
                "server_type": "imap",
                "server": "imap.example.com",
                "user": "support@test.mycompany.com",
                "password": "x",
                "object_id": cls.env["ir.model"]._get_id("mail.ticket"),
                "state": "done",
            }
        )
        cls.channel_admin = cls.env.ref("mail.channel_admin")
        cls.env["ir.config_parameter"].set_param("mail_ticket.mailbox_alert_minutes", 60)

    def fetch(self, connection=None, error=None):
        """One fetch of the server, its connection failing with ``error`` or working."""

        def _connect__(server, allow_archived=False):
            if error:
                raise error
            return connection

        Server = self.registry["fetchmail.server"]
        with (
            self.enter_registry_test_mode(),
            self.registry.cursor() as cr,
            patch.object(Server, "_connect__", side_effect=_connect__, autospec=True),
            mute_logger(
                "odoo.addons.mail_ticket.models.fetchmail_server",
                "odoo.addons.base.models.ir_cron",
            ),
        ):
            return self.server.with_env(self.server.env(cr=cr))._fetch_mail()

    def admin_posts(self):
        return self.env["mail.message"].search(
            [("model", "=", "discuss.channel"), ("res_id", "=", self.channel_admin.id)],
            order="id",
        )

    def notifications_of(self, user):
        return self.env["mail.message"].search(
            [
                ("message_type", "=", "user_notification"),
                ("partner_ids", "in", user.partner_id.ids),
            ],
            order="id",
        )

    def test_outage_reported_once_then_its_end(self):
        posts_before = self.admin_posts()
        refused = ConnectionRefusedError(111, "Connection refused")
        self.assertIs(self.fetch(error=refused), refused)
        self.assertTrue(self.server.error_date)
        self.assertIn("Connection refused", self.server.error_message)
        self.assertFalse(self.server.date_ticket_alert, "not after one failed run")
        self.assertEqual(self.admin_posts(), posts_before)

        self.server.error_date -= timedelta(minutes=61)
        self.fetch(error=refused)
        self.assertTrue(self.server.date_ticket_alert)
        alert = self.admin_posts() - posts_before
        self.assertEqual(len(alert), 1, "the administrators are told in their channel")
        self.assertIn("Support Hotline", alert.body)
        self.assertIn("Connection refused", alert.body)
        (notice,) = self.notifications_of(self.user_manager)
        self.assertEqual(notice.subject, "Mailbox Support Hotline fails")
        self.assertIn("Connection refused", notice.body)
        self.assertFalse(self.notifications_of(self.user_agent), "agents are not bothered")
        self.assertFalse(
            self.notifications_of(self.user_admin), "administrators read it in their channel"
        )

        self.fetch(error=refused)
        self.assertEqual(self.admin_posts() - posts_before, alert, "once per outage")
        self.assertEqual(len(self.notifications_of(self.user_manager)), 1)

        self.assertIsNone(self.fetch(connection=EmptyImapConnection()))
        self.assertFalse(self.server.error_date)
        self.assertFalse(self.server.date_ticket_alert)
        recovery = self.admin_posts() - posts_before - alert
        self.assertEqual(len(recovery), 1)
        self.assertIn("Support Hotline works again", recovery.body)
        notice = self.notifications_of(self.user_manager)[-1]
        self.assertEqual(notice.subject, "Mailbox Support Hotline works again")
        self.assertEqual(self.server.ticket_fetch_run_ids[0].error, False)

    def test_short_outage_is_not_reported(self):
        posts_before = self.admin_posts()
        self.fetch(error=OSError("Network is unreachable"))
        self.fetch(error=OSError("Network is unreachable"))
        self.fetch(connection=EmptyImapConnection())
        self.assertFalse(self.server.error_date)
        self.assertEqual(self.admin_posts(), posts_before, "neither failure nor recovery told")
        self.assertFalse(self.notifications_of(self.user_manager))
        self.assertEqual(
            [bool(run.error) for run in self.server.ticket_fetch_run_ids], [False, True, True]
        )

    def test_idle_runs_share_one_history_row(self):
        self.fetch(connection=EmptyImapConnection())
        self.fetch(connection=EmptyImapConnection())
        self.fetch(connection=EmptyImapConnection())
        (idle,) = self.server.ticket_fetch_run_ids
        self.assertEqual(idle.check_count, 3)
        self.assertTrue(idle.date_last_check)
        self.assertTrue(self.server.date, "the server tells when it was last read")
        self.fetch(error=OSError("Network is unreachable"))
        self.fetch(connection=EmptyImapConnection())
        self.fetch(connection=EmptyImapConnection())
        self.assertEqual(
            [(bool(run.error), run.check_count) for run in self.server.ticket_fetch_run_ids],
            [(False, 2), (True, 1), (False, 3)],
            "an error is a row of its own",
        )

    def test_alert_delay_setting(self):
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.mail_ticket_mailbox_alert_minutes, 60)
        settings.mail_ticket_mailbox_alert_minutes = 15
        settings.execute()
        self.assertEqual(self.server._ticket_alert_delay(), timedelta(minutes=15))
        self.env["ir.config_parameter"].set_param("mail_ticket.mailbox_alert_minutes", 0)
        self.fetch(error=OSError("Network is unreachable"))
        self.assertTrue(self.server.date_ticket_alert, "0: told at the first failed run")


@tagged("post_install", "-at_install", "mail_ticket")
class TestUnsentAcknowledgement(MailTicketCommon):
    """Mails Odoo could not hand to the outgoing server stay in its queue."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls._create_ticket_mailbox()

    def notifications(self, mail):
        return self.env["mail.notification"].search([("mail_mail_id", "=", mail.id)])

    def smtp_down(self):
        return patch("smtplib.SMTP", side_effect=ConnectionRefusedError(111, "Connection refused"))

    @mute_logger("odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_mail")
    def test_acknowledgement_waits_for_the_smtp_server(self):
        ticket = self.receive_mail(server=self.server)
        with self.mock_mail_gateway(), self.smtp_down():
            ticket._send_acknowledgement()
        self.assertFalse(self._mails, "nothing was sent")
        ack = self._new_mails
        self.assertEqual(len(ack), 1)
        self.assertEqual(ack.state, "outgoing", "back in the queue, not failed")
        self.assertIn("Connection refused", ack.failure_reason)
        self.assertEqual(self.notifications(ack).notification_status, "ready")
        self.assertFalse(ticket.ack_pending, "the acknowledgement is not posted twice")
        queue = self.env.ref("mail.ir_cron_mail_scheduler_action")
        self.assertTrue(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", queue.id)]),
            "the mail queue tries again",
        )

        with self.mock_mail_gateway(), self.smtp_down():
            self.env["mail.mail"].process_email_queue()
        self.assertFalse(self._mails)
        self.assertEqual(ack.state, "outgoing", "still waiting while the server is down")

        with self.mock_mail_gateway():
            self.env["mail.mail"].process_email_queue()
            self.env["mail.mail"].process_email_queue()
        self.assertEqual(len(self._mails), 1, "sent once the server is back, once")
        self.assertEqual(self._mails[0]["subject"], f"[{ticket.number}] {ticket.name}")
        self.assertEqual(ack.state, "sent")
        self.assertEqual(self.notifications(ack).notification_status, "sent")

    @mute_logger("odoo.addons.mail.models.mail_mail", "odoo.addons.mail_ticket.models.mail_mail")
    def test_other_mails_fail_as_in_odoo(self):
        ticket = self._create_customer_ticket()
        Mail = self.env["mail.mail"]
        other = Mail.create({"email_to": "x@example.com", "subject": "Other", "body_html": "x"})
        old = Mail.create(
            {
                "email_to": "x@example.com",
                "subject": "Old",
                "body_html": "x",
                "model": "mail.ticket",
                "res_id": ticket.id,
            }
        )
        self.env.cr.execute(
            "UPDATE mail_mail SET create_date = NOW() - INTERVAL '3 days' WHERE id = %s",
            [old.id],
        )
        old.invalidate_recordset(["create_date"])
        with self.mock_mail_gateway(), self.smtp_down():
            (other + old).send()
        self.assertEqual((other.state, old.state), ("exception", "exception"))
