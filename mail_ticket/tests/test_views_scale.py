from lxml import etree

from odoo.fields import Command
from odoo.tests import tagged, users

from .common import MailTicketCommon

OPEN = [("is_closed", "=", False)]
PROGRESS_BAR = {
    "field": "activity_state",
    "colors": {"planned": "success", "today": "warning", "overdue": "danger"},
}
# what the activity widgets of the kanban and the list read besides activity_ids
ACTIVITY_FIELDS = (
    "activity_exception_decoration",
    "activity_exception_icon",
    "activity_state",
    "activity_summary",
    "activity_type_icon",
    "activity_type_id",
)


@tagged("post_install", "-at_install", "mail_ticket", "mail_performance")
class TestMailTicketViewsQueries(MailTicketCommon):
    """The agents' views answer in as many queries for 30 tickets as for 3: nothing
    is read ticket by ticket (comment counts, stage counts, activities, tags,
    customers), so that the number of tickets shown or stored does not matter."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tags = cls.env["mail.ticket.tag"].create([{"name": "Drucker"}, {"name": "VPN"}])
        cls._add_tickets(3)

    @classmethod
    def _add_tickets(cls, count):
        """``count`` tickets spread over the open stages, each as the views meet
        them: a customer of its own, an agent, a tag, an activity and a comment."""
        env = cls.env(su=True)
        offset = env["mail.ticket"].search_count([])
        partners = env["res.partner"].create(
            [
                {"name": f"Kunde {n}", "email": f"kunde{n}@agrolait.example.com"}
                for n in range(offset, offset + count)
            ]
        )
        stages = cls.stage_open | cls.stage_in_progress | cls.stage_waiting
        tickets = env["mail.ticket"].create(
            [
                {
                    "name": f"Drucker druckt nicht {n}",
                    "partner_id": partner.id,
                    "stage_id": stages[n % len(stages)].id,
                    "user_id": cls.user_agent.id,
                    "priority": str(n % 4),
                    "tag_ids": [Command.link(cls.tags[n % len(cls.tags)].id)],
                }
                for n, partner in enumerate(partners, start=offset)
            ]
        )
        for ticket in tickets:
            ticket.activity_schedule("mail.mail_activity_data_todo", user_id=cls.user_agent.id)
        messages = env["mail.message"].create(
            [
                {
                    "model": "mail.ticket",
                    "res_id": ticket.id,
                    "message_type": "email",
                    "body": "<p>Immer noch kaputt.</p>",
                    "author_id": ticket.partner_id.id,
                }
                for ticket in tickets
            ]
        )
        env["mail.ticket.comment"].sudo().create(
            [
                {"ticket_id": message.res_id, "message_id": message.id, "is_from_email": True}
                for message in messages
            ]
        )
        return tickets

    def _specification(self, view_type):
        """The fields a view reads, as the web client asks for them."""
        Ticket = self.env["mail.ticket"]
        arch = Ticket.get_views([(False, view_type)])["views"][view_type]["arch"]
        specification = {}
        for node in etree.fromstring(arch).iter("field"):
            field = Ticket._fields[node.get("name")]
            if field.type == "many2one":
                specification[field.name] = {"fields": {"display_name": {}}}
            elif field.type == "many2many":
                specification[field.name] = {"fields": {"display_name": {}, "color": {}}}
            elif field.type == "one2many":
                specification[field.name] = {"fields": {}}
            else:
                specification[field.name] = {}
        if "activity_ids" in specification:
            specification.update({key: {} for key in ACTIVITY_FIELDS})
            specification["activity_type_id"] = {"fields": {"display_name": {}}}
        return specification

    def _assert_flat_queries(self, queries, call):
        """``call`` runs in ``queries`` queries with 3 tickets, and with 30 (each
        time as in a new request: nothing of the tickets in memory)."""
        call()  # the caches of the registry (views, rules, access rights) are warm
        self.env.invalidate_all()
        with self.assertQueryCount(agent=queries):
            call()
        self._add_tickets(27)
        self.env.invalidate_all()
        with self.assertQueryCount(agent=queries):
            call()

    @users("agent")
    def test_kanban(self):
        """The kanban of open tickets: the columns with their counts, the cards of
        each open column, the progress bars."""
        specification = self._specification("kanban")
        self.assertIn("activity_ids", specification)
        Ticket = self.env["mail.ticket"].with_context(read_group_expand=True)

        def kanban():
            columns = Ticket.web_read_group(
                OPEN,
                ["stage_id"],
                auto_unfold=True,
                unfold_read_specification=specification,
                unfold_read_default_limit=40,
            )
            Ticket.read_progress_bar(OPEN, "stage_id", PROGRESS_BAR)
            return columns

        self._assert_flat_queries(20, kanban)
        columns = {group["stage_id"][0]: group for group in kanban()["groups"]}
        self.assertEqual(columns[self.stage_open.id]["__count"], 10)
        self.assertEqual(len(columns[self.stage_open.id]["__records"]), 10)
        self.assertEqual(columns[self.stage_closed.id]["__count"], 0)

    @users("agent")
    def test_list(self):
        """The list of open tickets, every optional column shown."""
        specification = self._specification("list")
        self.assertIn("comment_count", specification)
        Ticket = self.env["mail.ticket"]

        def list_view():
            return Ticket.web_search_read(OPEN, specification, limit=80, count_limit=10001)

        self._assert_flat_queries(19, list_view)
        result = list_view()
        self.assertEqual(result["length"], 30)
        self.assertEqual({record["comment_count"] for record in result["records"]}, {1})

    @users("agent")
    def test_my_tickets(self):
        """*My Tickets*: the list of the agent's open tickets."""
        specification = self._specification("list")
        Ticket = self.env["mail.ticket"]

        def my_tickets():
            domain = [*OPEN, ("user_id", "=", self.env.uid)]
            return Ticket.web_search_read(domain, specification, limit=80, count_limit=10001)

        self._assert_flat_queries(19, my_tickets)
        self.assertEqual(my_tickets()["length"], 30)

    @users("agent")
    def test_stage_counts(self):
        """The columns of all tickets, open or not: one grouped count."""
        Ticket = self.env["mail.ticket"].with_context(read_group_expand=True)

        def counts():
            return Ticket.web_read_group([], ["stage_id"])

        self._assert_flat_queries(6, counts)
        self.assertEqual(sum(group["__count"] for group in counts()["groups"]), 30)

    @users("agent")
    def test_search_number_title(self):
        """The search view's "Ticket" field: by number or by title."""
        specification = self._specification("list")
        Ticket = self.env["mail.ticket"]
        search_view = Ticket.get_views([(False, "search")])["views"]["search"]["arch"]
        ticket_field = etree.fromstring(search_view).find("field[@name='name']")
        self.assertEqual(
            ticket_field.get("filter_domain"),
            "['|', ('number', 'ilike', self), ('name', 'ilike', self)]",
        )

        def search(term):
            domain = [*OPEN, "|", ("number", "ilike", term), ("name", "ilike", term)]
            return Ticket.web_search_read(domain, specification, limit=80, count_limit=10001)

        self._assert_flat_queries(19, lambda: search("drucker"))
        self.assertEqual(search("drucker")["length"], 30)
        ticket = Ticket.search([], limit=1)
        found = search(ticket.number)["records"]
        self.assertEqual([record["id"] for record in found], ticket.ids)

    @users("agent")
    def test_search_email(self):
        """The search view's "Email" field."""
        specification = self._specification("list")
        Ticket = self.env["mail.ticket"]

        def search():
            domain = [*OPEN, ("email_from", "ilike", "@agrolait.example")]
            return Ticket.web_search_read(domain, specification, limit=80, count_limit=10001)

        self._assert_flat_queries(19, search)
        self.assertEqual(search()["length"], 30)

    @users("agent")
    def test_name_search(self):
        """A ticket chosen in a many2one field (the merge wizard, a link), by
        number or by title."""
        Ticket = self.env["mail.ticket"]
        self._assert_flat_queries(1, lambda: Ticket.name_search("drucker", limit=8))
        ticket = Ticket.search([], limit=1)
        self.assertEqual(Ticket.name_search(ticket.number), [(ticket.id, ticket.display_name)])


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailTicketOpenFilter(MailTicketCommon):
    @users("helpdesk_manager")
    def test_open_follows_stage(self):
        """The "Open" filter follows the stages: a stage made closing closes its
        tickets, and made open again reopens them."""
        ticket = self.env["mail.ticket"].create(
            {"name": "Drucker druckt nicht", "stage_id": self.stage_waiting.id}
        )
        Ticket = self.env["mail.ticket"]
        self.assertIn(ticket, Ticket.search(OPEN))
        self.stage_waiting.sudo().is_closed = True
        self.assertTrue(ticket.is_closed)
        self.assertNotIn(ticket, Ticket.search(OPEN))
        self.assertIn(ticket, Ticket.search([("is_closed", "=", True)]))
        self.stage_waiting.sudo().is_closed = False
        self.assertIn(ticket, Ticket.search(OPEN))
        ticket.stage_id = self.stage_closed
        self.assertNotIn(ticket, Ticket.search(OPEN))
