from pathlib import Path

from lxml import html

from odoo.tests import Form, tagged
from odoo.tools.safe_eval import safe_eval

from .common import MailTicketCommon

README = Path(__file__).parents[1] / "README.rst"


@tagged("post_install", "-at_install", "mail_ticket")
class TestFirstRun(MailTicketCommon):
    def test_empty_tickets_view_leads_to_the_mailbox_form(self):
        """The empty Tickets view explains the mailbox and opens a new ticket mailbox."""
        action = self.env.ref("mail_ticket.mail_ticket_action")
        mailbox_action = self.env.ref("mail_ticket.fetchmail_server_action_ticket_mailbox")
        help_html = html.fromstring(action.help)
        self.assertTrue(help_html.xpath("//p[hasclass('o_view_nocontent_smiling_face')]"))
        [button] = help_html.xpath("//a[@type='action']")
        self.assertEqual(int(button.get("name")), mailbox_action.id)

        context = safe_eval(mailbox_action.context)
        self.assertEqual(mailbox_action.res_model, "fetchmail.server")
        server_form = Form(self.env["fetchmail.server"].with_context(**context))
        server_form.name = "Support"
        server_form.server = "imap.example.com"
        server_form.user = "support@example.com"
        server_form.password = "secret"
        server = server_form.save()
        self.assertTrue(server.is_ticket_server)
        self.assertEqual(server.server_type, "imap")

    def test_settings_page_shows_every_helpdesk_setting(self):
        """Every helpdesk setting is in the Helpdesk block of Settings and named in README."""
        settings = self.env["res.config.settings"]
        fields = [name for name in settings._fields if name.startswith("mail_ticket_")]
        self.assertTrue(fields)
        arch = html.fromstring(settings.get_view(view_type="form")["arch"])
        [block] = arch.xpath("//app[@name='mail_ticket']")
        readme = README.read_text()
        for name in fields:
            with self.subTest(setting=name):
                self.assertTrue(block.xpath(f".//field[@name='{name}']"))
                self.assertIn(settings._fields[name].string, readme)
