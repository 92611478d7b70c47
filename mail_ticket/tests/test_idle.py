from unittest.mock import patch

from odoo.tests import Form, tagged

from .common import MailTicketCommon


class ConfirmingImapConnection:
    """An IMAP connection that logs in and opens the folder, announcing ``capabilities``
    once logged in."""

    def __init__(self, capabilities):
        self.announced = capabilities

    def capability(self):
        return "OK", [self.announced.encode()]

    def select(self, folder):
        return "OK", [b"0"]

    def response(self, code):
        return code, [b"7"]

    def disconnect(self):
        pass


@tagged("post_install", "-at_install", "mail_ticket")
class TestIdleSetting(MailTicketCommon):
    def new_mailbox(self, **vals):
        return self.env["fetchmail.server"].create(
            {
                "name": "Support",
                "server_type": "imap",
                "server": "imap.example.com",
                "user": "support@example.com",
                "password": "x",
                "object_id": self.env["ir.model"]._get_id("mail.ticket"),
                **vals,
            }
        )

    def confirm(self, server, capabilities):
        connection = ConfirmingImapConnection(capabilities)
        Server = self.registry["fetchmail.server"]
        with patch.object(Server, "_connect__", return_value=connection, autospec=True):
            server.button_confirm_login()

    def test_on_when_the_server_announces_idle(self):
        server = self.new_mailbox()
        self.assertTrue(server.ticket_idle, "instant by default")
        self.confirm(server, "IMAP4rev1 SASL-IR IDLE UIDPLUS MOVE")
        self.assertEqual((server.state, server.ticket_idle), ("done", True))

    def test_off_when_the_server_cannot_push(self):
        server = self.new_mailbox()
        self.confirm(server, "IMAP4rev1 UIDPLUS")
        self.assertEqual((server.state, server.ticket_idle), ("done", False))
        server.set_draft()
        self.confirm(server, "IMAP4rev1 IDLE")
        self.assertFalse(server.ticket_idle, "an admin's or a previous choice is kept")

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
