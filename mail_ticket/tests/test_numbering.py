from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from odoo.addons.mail_ticket.tools.ticket_reference import split_number

from .common import MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestNumbering(MailTicketCommon):
    """The company chooses the prefix and the digits of its ticket numbers; mail
    naming a number routes by the stored counter and the prefix it was issued with."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sequence = cls.env.ref("mail_ticket.seq_mail_ticket")

    def set_numbering(self, prefix, padding):
        with Form(self.env["res.config.settings"]) as settings:
            settings.mail_ticket_number_prefix = prefix
            settings.mail_ticket_number_padding = padding
        settings.save().execute()

    def test_split_number(self):
        self.assertEqual(split_number("TICKET-007"), ("TICKET-", 7))
        self.assertEqual(split_number("TICKET-1000"), ("TICKET-", 1000))
        self.assertEqual(split_number("HD/2026/0042"), ("HD/2026/", 42))
        self.assertEqual(split_number("New"), (False, 0))
        self.assertEqual(split_number("42"), (False, 0))
        self.assertEqual(split_number(False), (False, 0))

    def test_settings_default_and_new_numbers(self):
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(
            (settings.mail_ticket_number_prefix, settings.mail_ticket_number_padding),
            ("TICKET-", 3),
        )
        self.sequence.number_next_actual = 42
        old = self.Ticket.create({"name": "Alt"})
        self.assertEqual(
            (old.number, old.number_prefix, old.number_int), ("TICKET-042", "TICKET-", 42)
        )
        self.set_numbering("HD-", 5)
        self.assertEqual((self.sequence.prefix, self.sequence.padding), ("HD-", 5))
        new = self.Ticket.create({"name": "Neu"})
        self.assertEqual((new.number, new.number_prefix, new.number_int), ("HD-00043", "HD-", 43))

    def test_settings_refuse_prefixes_that_do_not_split(self):
        for prefix in ("", "T1", "[T]-", " T-", "1-", "%(year)s-"):
            with self.subTest(prefix=prefix), self.assertRaises(ValidationError):
                self.set_numbering(prefix, 3)
        with self.assertRaises(ValidationError):
            self.set_numbering("T-", 12)
        self.assertEqual(self.sequence.prefix, "TICKET-")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_routing_after_renaming_the_prefix(self):
        """Numbers issued under an earlier prefix keep routing to their tickets, also
        when the prefix is renamed in the sequence itself, not in Settings."""
        self.sequence.number_next_actual = 7
        old = self._create_customer_ticket()
        self.set_numbering("SUP-", 4)
        settings_ticket = self._create_customer_ticket()
        self.sequence.write({"prefix": "HD/2026/", "padding": 2})
        sequence_ticket = self._create_customer_ticket()
        self.assertEqual(
            [old.number, settings_ticket.number, sequence_ticket.number],
            ["TICKET-007", "SUP-0008", "HD/2026/09"],
        )
        cases = [
            ("Re: [TICKET-007] Drucker", old),
            ("AW: [ticket-7]", old),
            ("Re: [SUP-0008] Drucker", settings_ticket),
            ("Re: [SUP-8]", settings_ticket),
            ("Re: [HD/2026/09] Drucker", sequence_ticket),
            ("Re: [HD/2026/0009]", sequence_ticket),
            ("WG: Ticket #8", settings_ticket),
            ("Re: #9 Drucker", sequence_ticket),
        ]
        for subject, ticket in cases:
            with self.subTest(subject=subject):
                self.assertEqual(self.receive_mail(subject=subject), ticket)
        for subject in ("Re: [SUP-0007] Drucker", "Re: [HD/2026/08]", "Re: [TICKET-009]"):
            with self.subTest(subject=subject):
                thread = self.receive_mail(subject=subject)
                self.assertNotIn(thread, old | settings_ticket | sequence_ticket)
                self.assertEqual(thread.name, subject, "a number never issued with that prefix")
