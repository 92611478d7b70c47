import base64
import os
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import config, mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.mail_ticket.tools.mailbox_ingestion import headers_vals

from .common import MAIL_TICKET_TEMPLATE, SUPPORT_ADDRESS, MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket", "security")
class TestInboundSecurity(MailTicketCommon):
    """Fetched mails and fetch runs are evidence: read-only, per company, and their raw
    source readable only through them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_manager_c2 = mail_new_test_user(
            cls.env,
            login="helpdesk_manager_c2",
            name="Marta Manager",
            email="marta.manager@test.mycompany.com",
            groups="base.group_user,mail_ticket.mail_ticket_group_manager",
            company_id=cls.company_2.id,
            company_ids=[(6, 0, cls.company_2.ids)],
        )
        cls.user_sysadmin = mail_new_test_user(
            cls.env,
            login="sysadmin",
            name="Siggi Sysadmin",
            email="siggi.sysadmin@test.mycompany.com",
            groups="base.group_user,base.group_system",
            company_id=cls.company_admin.id,
        )
        cls.server = cls._create_server("Support", cls.company_admin)
        cls.server_c2 = cls._create_server("Support C2", cls.company_2)
        cls.raw = cls._raw_mail("Drucker druckt nicht", "<evidence-1@agrolait.example.com>")
        cls.failed = cls._create_inbound(cls.server, 1, raw=cls.raw)
        cls.failed_c2 = cls._create_inbound(
            cls.server_c2,
            1,
            raw=cls._raw_mail("Rechnung falsch", "<evidence-2@agrolait.example.com>"),
        )
        cls.fetch_run = cls.env["mail.ticket.fetch.run"].create({"server_id": cls.server.id})
        cls.fetch_run_c2 = cls.env["mail.ticket.fetch.run"].create({"server_id": cls.server_c2.id})

    @classmethod
    def _create_server(cls, name, company):
        return cls.env["fetchmail.server"].create(
            {
                "name": name,
                "server_type": "imap",
                "server": "imap.test.mycompany.com",
                "port": 993,
                "is_ssl": True,
                "user": SUPPORT_ADDRESS,
                "password": "secret",
                "object_id": cls.env["ir.model"]._get_id("mail.ticket"),
                "ticket_company_id": company.id,
            }
        )

    @classmethod
    def _raw_mail(cls, subject, msg_id):
        return MAIL_TICKET_TEMPLATE.format(
            return_path="",
            to=SUPPORT_ADDRESS,
            cc="",
            email_from='"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>',
            subject=subject,
            msg_id=msg_id,
            extra="",
        ).encode()

    @classmethod
    def _create_inbound(cls, server, uid, raw=None, **vals):
        """A mail as the fetch records it (the superuser writes these records)."""
        Inbound = cls.env["mail.ticket.inbound"]
        inbound = Inbound.create(
            {
                **(headers_vals(raw) if raw else {}),
                "server_id": server.id,
                "folder": "INBOX",
                "uidvalidity": 7,
                "uid": uid,
                "state": "failed",
                "attempts": 1,
                "error": "OperationalError: the database was down",
                "date_processed": fields.Datetime.now(),
                **({"raw_source": base64.b64encode(raw)} if raw else {}),
                **vals,
            }
        )
        return inbound

    def _attachment_of(self, inbound):
        return (
            self.env["ir.attachment"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "mail.ticket.inbound"),
                    ("res_field", "=", "raw_source"),
                    ("res_id", "=", inbound.id),
                ]
            )
        )

    def _download(self, inbound):
        """What /web/content/mail.ticket.inbound/<id>/raw_source checks, as the user, before
        it streams the field (streaming itself needs an HTTP request)."""
        record = self.env["ir.binary"]._find_record(
            res_model="mail.ticket.inbound", res_id=inbound.id, field="raw_source"
        )
        record._check_field_access(record._fields["raw_source"], "read")
        return base64.b64decode(record.with_context(bin_size=False).raw_source)

    # ------------------------------------------------------------
    # READ-ONLY
    # ------------------------------------------------------------

    @users("helpdesk_manager", "admin")
    @mute_logger("odoo.models", "odoo.addons.base.models.ir_model")
    def test_fetched_mails_and_runs_are_read_only(self):
        inbound = self.failed.with_env(self.env)
        self.assertEqual(inbound.subject, "Drucker druckt nicht")
        raw = base64.b64encode(b"Subject: forged\r\n\r\n")
        # the UID would skip all later mail, the state hide a failure, the raw source
        # feed anything to the superuser's retry
        for vals in ({"uid": 99999}, {"state": "done"}, {"attempts": 0}, {"raw_source": raw}):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                inbound.write(vals)
        with self.assertRaises(AccessError):
            inbound.unlink()
        with self.assertRaises(AccessError):
            self.env["mail.ticket.inbound"].create(
                {
                    "server_id": self.server.id,
                    "folder": "INBOX",
                    "uidvalidity": 7,
                    "uid": 99999,
                    "state": "done",
                }
            )
        run = self.fetch_run.with_env(self.env)
        self.assertEqual(run.server_id, self.server)
        with self.assertRaises(AccessError):
            run.write({"error": False})
        with self.assertRaises(AccessError):
            run.unlink()
        with self.assertRaises(AccessError):
            self.env["mail.ticket.fetch.run"].create({"server_id": self.server.id})
        self.assertEqual(self.failed.sudo().uid, 1)
        self.assertEqual(self._stored_raw(self.failed), self.raw)

    def _stored_raw(self, inbound):
        return inbound.sudo()._stored_raw()

    @users("helpdesk_manager")
    def test_manager_opens_fetched_mails(self):
        views = self.env["mail.ticket.inbound"].get_views([(False, "list"), (False, "form")])
        names = list(views["models"]["mail.ticket.inbound"]["fields"])
        self.assertIn("raw_source", names)
        inbound = self.failed.with_env(self.env).with_context(bin_size=True)
        values = inbound.read(names)[0]
        self.assertEqual(values["server_id"], (self.server.id, "Support"))
        self.assertEqual(values["company_id"], (self.company_admin.id, self.company_admin.name))
        self.assertTrue(values["raw_source"])
        self.assertEqual(values["max_attempts"], 3)

    @users("agent", "employee")
    @mute_logger("odoo.models", "odoo.addons.base.models.ir_model")
    def test_agents_see_no_fetched_mail(self):
        with self.assertRaises(AccessError):
            self.env["mail.ticket.inbound"].search([])
        with self.assertRaises(AccessError):
            self.env["mail.ticket.fetch.run"].search([])
        with self.assertRaises(AccessError):
            self.failed.with_env(self.env).action_retry()
        with self.assertRaises(AccessError):
            self._download(self.failed)
        with self.assertRaises(AccessError):
            self._attachment_of(self.failed).with_env(self.env).read(["raw"])

    # ------------------------------------------------------------
    # RETRY AND DOWNLOAD
    # ------------------------------------------------------------

    @users("helpdesk_manager")
    def test_manager_retries_a_failed_mail(self):
        inbound = self.failed.with_env(self.env)
        self.assertFalse(self.env.user.has_group("base.group_system"))
        with self.mock_mail_gateway():
            inbound.action_retry()
        self.assertEqual(inbound.state, "done")
        self.assertEqual(inbound.attempts, 1, "a manual retry starts the attempts anew")
        ticket = inbound.ticket_id
        self.assertEqual(ticket.name, "Drucker druckt nicht")
        self.assertEqual(ticket.company_id, self.company_admin)
        self.assertEqual(ticket.fetchmail_server_id, self.server)
        self.assertTrue(inbound.is_new_ticket)
        self.assertFalse(self._attachment_of(inbound), "a processed mail keeps no raw source")

    @users("helpdesk_manager")
    def test_manager_downloads_through_the_record(self):
        inbound = self.failed.with_env(self.env)
        action = inbound.action_open_raw_source()
        self.assertEqual(
            action["url"],
            f"/web/content/mail.ticket.inbound/{inbound.id}/raw_source"
            "?download=true&filename=mail-7-1.eml",
        )
        self.assertEqual(self._download(inbound), self.raw)
        # the attachment is no attachment of its own: hidden, readable through its record
        attachment = self._attachment_of(inbound)
        self.assertFalse(
            self.env["ir.attachment"].search([("res_model", "=", "mail.ticket.inbound")])
        )
        self.assertEqual(attachment.with_env(self.env).raw, self.raw)

        kept_nothing = self._create_inbound(self.server, 2).with_env(self.env)
        with self.assertRaises(UserError):
            kept_nothing.action_open_raw_source()

    @users("sysadmin")
    @mute_logger("odoo.models")
    def test_retry_and_download_need_the_manager_group(self):
        inbound = self.failed.with_env(self.env)
        self.assertEqual(inbound.state, "failed", "an admin reads fetched mails")
        with self.assertRaises(AccessError):
            inbound.action_retry()
        with self.assertRaises(AccessError):
            inbound.action_open_raw_source()
        self.assertEqual(self.failed.attempts, 1)

    # ------------------------------------------------------------
    # MULTI-COMPANY
    # ------------------------------------------------------------

    def test_mailbox_company(self):
        server = self.env["fetchmail.server"].create(
            {"name": "Neu", "server_type": "imap", "object_id": self.server.object_id.id}
        )
        self.assertEqual(server.ticket_company_id, self.env.company, "the tickets' company")
        self.assertEqual(self.failed_c2.company_id, self.company_2)
        self.assertEqual(self.fetch_run_c2.company_id, self.company_2)
        self.assertEqual(self.server_c2._ticket_default_values()["company_id"], self.company_2.id)
        ticket = self.receive_mail(subject="Lieferung fehlt", server=self.server_c2)
        self.assertEqual(ticket.company_id, self.company_2)
        self.assertTrue(ticket.number)

        self.server_c2.ticket_company_id = self.company_admin
        self.assertEqual(self.failed_c2.company_id, self.company_admin)
        self.assertEqual(self.fetch_run_c2.company_id, self.company_admin)

    @users("helpdesk_manager")
    def test_manager_sees_the_mailboxes_of_their_company(self):
        self.assertEqual(self.env["mail.ticket.inbound"].search([]), self.failed)
        self.assertEqual(self.env["mail.ticket.fetch.run"].search([]), self.fetch_run)

    @users("helpdesk_manager_c2")
    @mute_logger("odoo.models", "odoo.addons.base.models.ir_rule")
    def test_manager_of_another_company_sees_nothing(self):
        self.assertEqual(self.env["mail.ticket.inbound"].search([]), self.failed_c2)
        self.assertEqual(self.env["mail.ticket.fetch.run"].search([]), self.fetch_run_c2)
        inbound = self.failed.with_env(self.env)
        with self.assertRaises(AccessError):
            inbound.read(["subject"])
        with self.assertRaises(AccessError):
            self.fetch_run.with_env(self.env).read(["error"])
        with self.assertRaises(AccessError):
            inbound.action_retry()
        with self.assertRaises(AccessError):
            self._download(self.failed)
        self.assertEqual(self._download(self.failed_c2.with_env(self.env))[:9], b"Return-Pa")

    @users("admin")
    def test_admin_deletes_a_mail_server_and_its_evidence(self):
        server = self.server_c2.with_env(self.env)
        attachment = self._attachment_of(self.failed_c2)
        self.assertTrue(attachment)
        server.unlink()
        self.assertFalse(self.failed_c2.exists())
        self.assertFalse(self.fetch_run_c2.exists())
        self.assertFalse(attachment.exists(), "no raw source is left behind")
        self.assertTrue(self.failed.exists())

    # ------------------------------------------------------------
    # RETENTION
    # ------------------------------------------------------------

    def _run_purge_cron(self):
        with self.enter_registry_test_mode():
            self.env.ref(
                "mail_ticket.ir_cron_mail_ticket_purge_raw_sources"
            ).sudo().method_direct_trigger()
        self.env.invalidate_all()

    @mute_logger("odoo.addons.mail_ticket.models.mail_ticket_inbound")
    def test_raw_sources_of_mails_that_gave_up_are_removed(self):
        now = fields.Datetime.now()
        self.server.ticket_max_attempts = 3
        gave_up_old = self._create_inbound(
            self.server, 10, raw=self.raw, attempts=3, date_processed=now - timedelta(days=31)
        )
        gave_up_recent = self._create_inbound(
            self.server, 11, raw=self.raw, attempts=4, date_processed=now - timedelta(days=5)
        )
        trying_old = self._create_inbound(
            self.server, 12, raw=self.raw, attempts=2, date_processed=now - timedelta(days=31)
        )
        done_old = self._create_inbound(
            self.server_c2, 13, state="done", attempts=1, date_processed=now - timedelta(days=60)
        )
        old_attachment = self._attachment_of(gave_up_old)

        self._run_purge_cron()
        self.assertTrue(gave_up_old.exists(), "the record of the mail stays")
        self.assertEqual(gave_up_old.state, "failed")
        self.assertFalse(gave_up_old.raw_source)
        self.assertFalse(old_attachment.exists())
        self.assertTrue(gave_up_old.date_raw_source_removed)
        for kept in (gave_up_recent, trying_old):
            self.assertEqual(kept._stored_raw(), self.raw)
            self.assertFalse(kept.date_raw_source_removed)
        self.assertFalse(done_old.date_raw_source_removed)

        settings = self.env["res.config.settings"].create(
            {"mail_ticket_raw_source_retention_days": 0}
        )
        settings.execute()
        self._run_purge_cron()
        self.assertEqual(gave_up_recent._stored_raw(), self.raw, "0 days: kept for ever")

        settings.mail_ticket_raw_source_retention_days = 3
        settings.execute()
        self.assertEqual(
            self.env["ir.config_parameter"].get_param("mail_ticket.raw_source_retention_days"),
            "3",
        )
        self._run_purge_cron()
        self.assertFalse(gave_up_recent.raw_source)
        self.assertEqual(trying_old._stored_raw(), self.raw, "still retried: kept")


@tagged("post_install", "-at_install", "mail_ticket", "security")
class TestMailboxSecret(MailTicketCommon):
    """A mailbox password from odoo.conf or the environment, not the database (the login
    itself is tested against a real IMAP server in tests/test_mailbox_secret.py)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.env["fetchmail.server"].create(
            {
                "name": "Support",
                "server_type": "imap",
                "user": SUPPORT_ADDRESS,
                "object_id": cls.env["ir.model"]._get_id("mail.ticket"),
                "ticket_secret_key": "support_c1",
            }
        )

    def test_password_from_configuration_file_then_environment(self):
        self.assertFalse(self.server.password)
        server = self.server.copy({"ticket_secret_key": False, "password": "in-der-datenbank"})
        self.assertEqual(server.password, "in-der-datenbank")
        server.ticket_secret_key = "support_c1"
        self.assertFalse(server.password, "a password from the configuration leaves none here")

        with self.assertRaises(UserError) as caught:
            self.server._ticket_secret_password()
        self.assertIn("mail_ticket_password_support_c1", str(caught.exception))
        self.assertIn("MAIL_TICKET_PASSWORD_SUPPORT_C1", str(caught.exception))

        with patch.dict(os.environ, {"MAIL_TICKET_PASSWORD_SUPPORT_C1": "aus-der-umgebung"}):
            self.assertEqual(self.server._ticket_secret_password(), "aus-der-umgebung")
            config["mail_ticket_password_support_c1"] = "aus-der-odoo-conf"
            self.addCleanup(config.options.pop, "mail_ticket_password_support_c1", None)
            self.assertEqual(self.server._ticket_secret_password(), "aus-der-odoo-conf")

    def test_secret_key_is_a_technical_name_of_an_imap_server(self):
        for key in ("Support", "support-box", "support box", "../etc"):
            with self.subTest(key=key), self.assertRaises(ValidationError), self.env.cr.savepoint():
                self.server.ticket_secret_key = key
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.server.server_type = "pop"
        self.server.ticket_secret_key = False
        self.server.server_type = "pop"
