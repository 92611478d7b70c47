from odoo.exceptions import UserError
from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from .common import MAIL_TICKET_ATTACHMENT_TEMPLATE, MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestMerge(MailTicketCommon):
    """Duplicate tickets of one customer become one: everything moves to the ticket
    that stays, and mail to the merged ones lands there."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_customer = cls.env["res.partner"].create(
            {"name": "Paul Pinguin", "email": "paul@pinguin.example.com"}
        )

    def merge_wizard(self, tickets, target=None, **values):
        wizard_form = Form(
            self.env["mail.ticket.merge"].with_context(
                active_model="mail.ticket", active_ids=tickets.ids
            )
        )
        if target:
            wizard_form.target_ticket_id = target
        for name, value in values.items():
            setattr(wizard_form, name, value)
        return wizard_form.save()

    @users("agent")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_merge_moves_everything(self):
        first = self.receive_mail(subject="Drucker druckt nicht", msg_id="<first@agrolait>")
        second = self.receive_mail(
            subject="Drucker immer noch kaputt",
            msg_id="<second@agrolait>",
            template=MAIL_TICKET_ATTACHMENT_TEMPLATE,
        )
        first, second = first.with_env(self.env), second.with_env(self.env)
        second.message_post(
            body="Antwort an Sylvie", message_type="comment", subtype_xmlid="mail.mt_comment"
        )
        second.message_post(body="Interne Notiz", subtype_xmlid="mail.mt_note")
        colleague = (
            self.env["res.partner"]
            .sudo()
            .create({"name": "Kollege", "email": "kollege@agrolait.example.com"})
        )
        second.message_subscribe(colleague.ids)
        activity = second.activity_schedule(
            "mail.mail_activity_data_todo", user_id=self.user_agent.id
        )
        second_messages = second.message_ids
        second_comments = second.comment_ids
        self.assertTrue(second_comments)
        attachments = self.env["ir.attachment"].search(
            [("res_model", "=", "mail.ticket"), ("res_id", "=", second.id)]
        )
        self.assertTrue(attachments)

        wizard = self.merge_wizard(first | second)
        self.assertEqual(wizard.target_ticket_id, first, "the oldest stays by default")
        self.assertFalse(wizard.different_customers)
        action = wizard.action_merge()
        self.assertEqual((action["res_model"], action["res_id"]), ("mail.ticket", first.id))

        self.assertFalse(second.active)
        self.assertEqual(second.merged_into_id, first)
        self.assertIn(first.number, second.message_ids[0].body, "a note names the target")
        self.assertTrue(first.active)
        self.assertLessEqual(second_messages, first.message_ids)
        self.assertEqual(first.message_ids.ids, sorted(first.message_ids.ids, reverse=True))
        chatter = first.message_ids.sorted("id")
        self.assertEqual(
            chatter.mapped("date"), sorted(chatter.mapped("date")), "the chatter in date order"
        )
        self.assertLessEqual(second_comments, first.comment_ids)
        self.assertEqual(
            self.env["ir.attachment"].search(
                [("res_model", "=", "mail.ticket"), ("res_id", "=", first.id)]
            ),
            attachments,
        )
        self.assertEqual(activity.res_id, first.id)
        self.assertIn(colleague, first.message_partner_ids)
        self.assertIn(second.number, first.message_ids[0].body)
        self.assertEqual(
            self.Ticket.search([("id", "in", (first | second).ids)]), first, "archived"
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_mail_to_a_merged_ticket_lands_on_the_target(self):
        first = self._create_customer_ticket()
        second = self.receive_mail(subject="Noch ein Drucker", msg_id="<dup@agrolait.example.com>")
        third = self._create_customer_ticket()
        self.merge_wizard(second | third, target=third).action_merge()
        self.merge_wizard(first | third, target=first).action_merge()
        self.assertEqual(third.merged_into_id, first)
        self.assertEqual(second.merged_into_id, first, "earlier merges follow")
        for subject in (f"Re: [{second.number}] Drucker", f"AW: #{third.number_int}"):
            with self.subTest(subject=subject):
                self.assertEqual(self.receive_mail(subject=subject), first)
        threaded = self.receive_mail(
            subject="Re: Noch ein Drucker",
            extra="In-Reply-To: <dup@agrolait.example.com>\n",
        )
        self.assertEqual(threaded, first, "threading onto a merged ticket's mail")
        self.assertFalse(second.comment_ids | third.comment_ids)

    @users("agent")
    def test_different_customers_need_confirmation(self):
        first = self._create_customer_ticket()
        other = self.Ticket.create({"name": "Andere", "partner_id": self.other_customer.id})
        wizard = self.merge_wizard(first | other)
        self.assertTrue(wizard.different_customers)
        with self.assertRaises(UserError):
            wizard.action_merge()
        self.assertTrue(other.active)
        wizard.confirm_different_customers = True
        wizard.action_merge()
        self.assertFalse(other.active)
        self.assertIn(self.other_customer, first.message_partner_ids)

    @users("admin")
    def test_different_companies_never(self):
        first = self._create_customer_ticket()
        other = self.Ticket.create({"name": "Andere Firma", "company_id": self.company_2.id})
        wizard = self.env["mail.ticket.merge"].create(
            {
                "ticket_ids": (first | other).ids,
                "target_ticket_id": first.id,
                "confirm_different_customers": True,
            }
        )
        with self.assertRaises(UserError):
            wizard.action_merge()
        self.assertTrue(other.active)

    def test_reachable_from_the_action_menus(self):
        action = self.env.ref("mail_ticket.mail_ticket_merge_action")
        self.assertEqual(action.binding_model_id.model, "mail.ticket")
        self.assertEqual(set(action.binding_view_types.split(",")), {"list", "form"})
        self.assertEqual(action.group_ids, self.env.ref("mail_ticket.mail_ticket_group_user"))
