import time

from psycopg2 import IntegrityError

from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from .common import MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailTicket(MailTicketCommon):
    def test_number_sequence(self):
        tickets = self.Ticket.create([{"name": "Eins"}, {"name": "Zwei"}])
        first, second = (int(t.number.removeprefix("TICKET-")) for t in tickets)
        self.assertRegex(tickets[0].number, r"^TICKET-\d{3,}$")
        self.assertEqual(second, first + 1)
        self.assertEqual(tickets[0].display_name, f"[{tickets[0].number}] Eins")

    def test_number_padding_and_growth(self):
        sequence = self.env.ref("mail_ticket.seq_mail_ticket")
        sequence.number_next_actual = 7
        self.assertEqual(self.Ticket.create({"name": "Sieben"}).number, "TICKET-007")
        sequence.number_next_actual = 999
        self.assertEqual(self.Ticket.create({"name": "999"}).number, "TICKET-999")
        self.assertEqual(self.Ticket.create({"name": "1000"}).number, "TICKET-1000")

    def test_number_readonly_and_unique_per_company(self):
        ticket = self.Ticket.create({"name": "Eins"})
        self.assertTrue(self.Ticket._fields["number"].readonly)
        copy = ticket.copy()
        self.assertNotEqual(copy.number, ticket.number)
        other_company = self.Ticket.create({"name": "Zwei", "company_id": self.company_2.id})
        other_company.number = ticket.number  # another company may reuse a number
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"), self.cr.savepoint():
            copy.number = ticket.number
            copy.flush_recordset()

    def test_defaults(self):
        ticket = self.Ticket.with_user(self.user_agent).create({"name": "Neu"})
        self.assertEqual(ticket.stage_id, self.stage_open, "new tickets start in the first stage")
        self.assertEqual(ticket.priority, "1")
        self.assertFalse(ticket.created_from_email)
        self.assertEqual(ticket.company_id, self.company_admin)

    def test_search_by_number_or_title(self):
        printer = self.Ticket.create({"name": "Drucker druckt nicht"})
        screen = self.Ticket.create({"name": "Bildschirm flackert"})
        self.assertEqual(self.Ticket.name_search(printer.number)[0][0], printer.id)
        self.assertEqual([r[0] for r in self.Ticket.name_search("flackert")], [screen.id])
        self.assertEqual(self.Ticket.search([("display_name", "ilike", screen.number)]), screen)

    def test_partner_sets_email_and_follower(self):
        ticket = self.Ticket.create({"name": "Neu"})
        ticket.partner_id = self.customer
        self.assertEqual(ticket.email_from, self.customer.email)
        self.assertIn(self.customer, ticket.message_partner_ids)

    def test_customer_who_already_follows(self):
        """An agent opening a ticket for their own contact, or assigned to it."""
        own_partner = self.user_agent.partner_id
        ticket = self.Ticket.with_user(self.user_agent).create(
            {"name": "Eigenes Ticket", "partner_id": own_partner.id, "user_id": self.user_agent.id}
        )
        self.assertEqual(ticket.message_partner_ids, own_partner)

    def test_closing_stage_dates(self):
        ticket = self.Ticket.create({"name": "Neu"})
        self.assertFalse(ticket.is_closed)
        ticket.stage_id = self.stage_solved
        self.assertTrue(ticket.is_closed)
        self.assertTrue(ticket.date_closed)
        ticket.stage_id = self.stage_open
        self.assertFalse(ticket.date_closed)

    def test_kanban_shows_all_stages(self):
        self.Ticket.create({"name": "Neu"})
        result = self.Ticket.with_context(read_group_expand=True).web_read_group(
            [], ["stage_id"], ["__count"]
        )
        stage_ids = [group["stage_id"][0] for group in result["groups"]]
        self.assertEqual(
            stage_ids,
            (
                self.stage_open
                + self.stage_in_progress
                + self.stage_waiting
                + self.stage_solved
                + self.stage_closed
            ).ids,
        )

    def test_form(self):
        with Form(self.Ticket.with_user(self.user_agent)) as form:
            form.name = "Per Telefon gemeldet"
            form.partner_id = self.customer
        ticket = form.record
        self.assertEqual(ticket.email_from, self.customer.email)
        self.assertTrue(ticket.number.startswith("TICKET-"))

    def test_parse_ticket_reference(self):
        parse = self.Ticket._parse_ticket_reference
        self.assertEqual(parse("Re: [TICKET-0042] Drucker"), [("TICKET-", 42)])
        self.assertEqual(parse("Re: [HD/2026/0042] Drucker"), [("HD/2026/", 42)])
        self.assertEqual(parse("[ Support 7 ]"), [("Support", 7)])
        self.assertEqual(parse("AW: WG: #7"), [(None, 7)])
        self.assertEqual(parse("Ticket #0012"), [(None, 12)])
        self.assertEqual(
            parse("[Extern 2] Re: [TICKET-3] Ticket #4"),
            [("Extern", 2), ("TICKET-", 3), (None, 4)],
        )
        self.assertEqual(parse("Problem mit Ticket 123"), [])
        self.assertEqual(parse("Rechnung #123"), [])
        self.assertEqual(parse("[2026] Drucker"), [], "no prefix, no reference")
        self.assertEqual(parse("[TICKET-12x]"), [])
        self.assertEqual(parse("#0"), [])
        self.assertEqual(parse(False), [])
        self.assertEqual(parse("Re: #5", bracketed_only=True), [])
        self.assertEqual(parse("Re: [TICKET-5]", bracketed_only=True), [("TICKET-", 5)])
        self.assertEqual(parse("Re:\r\n   AW:\t #5"), [(None, 5)], "white space of any kind")

    def test_parse_ticket_reference_linear_time(self):
        """What arrives cannot make the subject references expensive: white space runs,
        tags by the thousand; at most MAX_REFERENCES are looked up, in one query. The
        budget is far above what it takes, far below what a quadratic reading takes."""
        parse = self.Ticket._parse_ticket_reference
        hostile = [
            "Re" + "\r\n " * 80000,
            "Re: " + "AW: " * 20000 + "x",
            "[" + " " * 80000 + "]",
            "Ticket #" + "0" * 80000,
            " ".join(f"[TICKET-{n}]" for n in range(1, 20001)),
        ]
        started = time.process_time()
        results = [parse(subject) for subject in hostile]
        self.assertLess(time.process_time() - started, 5)
        self.assertEqual(results[:4], [[], [], [], []])
        self.assertEqual(results[4], [("TICKET-", n) for n in range(1, 11)])
        tickets = self.Ticket.create([{"name": f"T{n}"} for n in range(3)])
        with self.assertQueryCount(1):
            found = self.Ticket._search_by_references([hostile[4], f"Re: #{tickets[0].number_int}"])
        self.assertEqual(found[1], tickets[0])


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailTicketGerman(MailTicketCommon):
    """The first customers write German: what agents see is translated."""

    def test_german_translation(self):
        self.env["res.lang"]._activate_lang("de_DE")
        self.env["ir.module.module"]._load_module_terms(["mail_ticket"], ["de_DE"])
        german = self.env(context={**self.env.context, "lang": "de_DE"})
        self.assertEqual(
            (self.stage_open + self.stage_waiting + self.stage_solved)
            .with_env(german)
            .mapped("name"),
            ["Offen", "Warten auf Kunde", "Gelöst"],
        )
        priorities = dict(german["mail.ticket"].fields_get(["priority"])["priority"]["selection"])
        self.assertEqual(priorities["3"], "Dringend")
        self.assertEqual(german["mail.ticket"].create({"name": "Neu"}).number[:7], "TICKET-")
        self.assertEqual(
            german["mail.ticket"]._fields["number"].get_description(german)["string"], "Nummer"
        )
        self.assertEqual(german.ref("mail_ticket.mail_ticket_menu_root").name, "Helpdesk")
