from types import SimpleNamespace
from unittest.mock import patch

from odoo.tests import tagged, users, warmup
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.mail_ticket.tools.mailbox_ingestion import FetchedMail, MailboxIngestion

from .common import MAIL_TICKET_TEMPLATE, SUPPORT_ADDRESS, MailTicketCommon

SYLVIE = '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>'


@tagged("post_install", "-at_install", "mail_ticket")
class TestBatchGateway(MailTicketCommon):
    """A fetched batch of plain customer mails is processed together, with the same
    result as mail by mail through ``message_process``; the rest is left to it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls._create_ticket_mailbox()
        cls.ticket = cls._create_customer_ticket()
        cls.ticket.message_subscribe(cls.user_agent.partner_id.ids)

    def batch_mail(self, subject="Drucker druckt nicht", email_from=SYLVIE, **kwargs):
        kwargs.setdefault("msg_id", f"<{self._next_msg_id()}@agrolait.example.com>")
        kwargs.setdefault("to", SUPPORT_ADDRESS)
        mail = self.format(MAIL_TICKET_TEMPLATE, subject=subject, email_from=email_from, **kwargs)
        return mail.encode()

    def process_batch(self, raws):
        """Process ``raws`` as one fetched batch; return the batch's results (None for
        the mails it left to ``message_process``, which processed them in their turn)."""
        self.left = []

        def process_alone(index):
            self.left.append(index)
            self.process_alone(raws[index])

        return (
            self.env["mail.ticket"].sudo()._message_process_batch(self.server, raws, process_alone)
        )

    def process_alone(self, raw):
        thread_id = (
            self.env["mail.thread"]
            .sudo()
            .with_context(default_fetchmail_server_id=self.server.id)
            .message_process("mail.ticket", raw)
        )
        return self.env["mail.ticket"].browse(thread_id)

    @staticmethod
    def chatter(ticket):
        """What the chatter shows of the mails of a ticket, oldest first."""
        return [
            (
                message.message_type,
                message.subtype_id,
                message.author_id,
                message.email_from,
                message.partner_ids,
                message.notification_ids.res_partner_id,
            )
            for message in ticket.message_ids.sorted("id")
        ]

    def test_new_tickets_as_the_gateway_opens_them(self):
        known = SYLVIE
        unknown = '"Kurt Neu" <kurt.neu@lager.example.com>'
        with self.mock_mail_gateway():
            alone = self.process_alone(self.batch_mail("Drucker im Lager", known))
            results = self.process_batch(
                [
                    self.batch_mail("Scanner im Büro", known, cc="lager@agrolait.example.com"),
                    self.batch_mail("Toner leer", unknown),
                    self.batch_mail("Papierstau", unknown),
                ]
            )
        self.assertEqual([result.is_new for result in results], [True, True, True])
        tickets = self.Ticket.union(*(result.ticket for result in results))
        self.assertEqual(tickets.mapped("name"), ["Scanner im Büro", "Toner leer", "Papierstau"])
        numbers = [int(number.rsplit("-", 1)[1]) for number in (alone | tickets).mapped("number")]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 4)), "in mail order")
        kurt = self.env["res.partner"].search([("email", "=", "kurt.neu@lager.example.com")])
        self.assertEqual(len(kurt), 1, "one contact for an unknown sender of two mails")
        self.assertEqual(kurt.name, "Kurt Neu")
        self.assertEqual(tickets.partner_id, self.customer | kurt)
        for ticket in tickets:
            self.assertTrue(ticket.created_from_email)
            self.assertTrue(ticket.ack_pending)
            self.assertEqual(ticket.fetchmail_server_id, self.server)
            self.assertEqual(ticket.stage_id, self.stage_open)
            self.assertIn("nur leere Seiten", ticket.description)
            self.assertEqual(ticket.message_partner_ids, ticket.partner_id)
            self.assertEqual(
                ticket.message_follower_ids.subtype_ids,
                alone.message_follower_ids.subtype_ids,
                "the customer follows with a customer's subtypes",
            )
        self.assertEqual(self.chatter(tickets[0]), self.chatter(alone))
        self.assertFalse(tickets.comment_ids, "the first mail is the description")
        self.assertEqual(tickets.mapped("email_cc"), ["lager@agrolait.example.com", "", ""])

    def test_replies_as_the_gateway_posts_them(self):
        self.ticket.stage_id = self.stage_solved
        other = self._create_customer_ticket()
        other.message_subscribe(self.user_agent.partner_id.ids)
        with self.mock_mail_gateway():
            opening = self.process_alone(self.batch_mail("Drucker im Lager"))
            alone = self.process_alone(self.batch_mail(f"Re: [{other.number}] Drucker"))
            results = self.process_batch(
                [
                    self.batch_mail(f"AW: [{self.ticket.number}] Drucker"),
                    self.batch_mail(
                        "Re: Drucker im Lager",
                        extra=f"In-Reply-To: {opening.message_ids.message_id}\n",
                    ),
                ]
            )
        self.assertEqual(
            [(result.ticket, result.is_new) for result in results],
            [(self.ticket, False), (opening, False)],
        )
        self.assertEqual(self.ticket.stage_id, self.stage_open, "a customer reply reopens")
        self.assertEqual(len(self.ticket.comment_ids), 1)
        self.assertTrue(self.ticket.comment_ids.is_from_email)
        self.assertEqual(self.ticket.comment_ids.message_id.author_id, self.customer)
        self.assertTrue(self.ticket.date_last_customer_message)
        self.assertEqual(len(opening.comment_ids), 1)
        reply = opening.message_ids.sorted("id")[-1]
        self.assertEqual(reply.parent_id, opening.message_ids.sorted("id")[0])
        # the chatter and the notifications are those of a mail processed alone
        self.assertEqual(self.chatter(self.ticket)[-1], self.chatter(alone)[-1])
        self.assertIn(
            self.user_agent.partner_id,
            self.ticket.message_ids.sorted("id")[-1].notification_ids.res_partner_id,
            "the agent who follows the ticket is notified",
        )

    @mute_logger("odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models")
    def test_left_to_the_gateway(self):
        """Mail that is not plain customer mail is left to message_process (None)."""
        existing = self.batch_mail("Schon da")
        self.process_alone(existing)
        catchall = f"{self.alias_catchall}@{self.alias_domain}"
        first = self.batch_mail("Neu")
        raws = {
            "duplicate": existing,
            "first": first,
            "same Message-ID in the batch": first,
            "bounce": self.batch_mail("Undelivered", "MAILER-DAEMON@agrolait.example.com"),
            "automated": self.batch_mail("Abwesend", extra="Auto-Submitted: auto-replied\n"),
            "internal user": self.batch_mail(
                "Intern", '"Agnes Agent" <agnes.agent@test.mycompany.com>'
            ),
            "unverified sender on a ticket": self.batch_mail(
                f"Re: [{self.ticket.number}] Drucker", "fremder@evil.example.com"
            ),
            "to an alias": self.batch_mail("Katalog", to=f"{SUPPORT_ADDRESS}, {catchall}"),
            "two senders": self.batch_mail(
                "Zwei", "a@agrolait.example.com, b@agrolait.example.com"
            ),
        }
        with self.mock_mail_gateway():
            results = dict(zip(raws, self.process_batch(list(raws.values())), strict=True))
        self.assertTrue(results.pop("first"))
        self.assertEqual(results, dict.fromkeys(results), "all left to message_process")
        self.assertEqual(len(self.left), len(results), "which processed each in its turn")
        opened = self.Ticket.search([("name", "in", ["Undelivered", "Abwesend", "Intern"])])
        self.assertEqual(sorted(opened.mapped("name")), ["Abwesend", "Intern"], "not the bounce")

    @mute_logger("odoo.addons.mail_ticket.models.mail_ticket_gateway")
    def test_machine_replies_take_the_batch(self):
        """An out-of-office answering a ticket is posted there by the batch and changes
        nothing on it, as message_process posts it; a machine's new mail is left."""
        self.ticket.stage_id = self.stage_solved
        before = self.ticket.date_last_customer_message
        out_of_office = self.batch_mail(
            f"Automatische Antwort: [{self.ticket.number}] Drucker",
            extra="Auto-Submitted: auto-replied\nX-Auto-Response-Suppress: All\n",
        )
        with self.mock_mail_gateway():
            (result,) = self.process_batch([out_of_office])
        self.assertFalse(self.left, "taken by the batch")
        self.assertEqual(result.ticket, self.ticket)
        self.assertEqual(self.ticket.stage_id, self.stage_solved, "no reopening")
        self.assertEqual(self.ticket.date_last_customer_message, before)
        posted = self.ticket.message_ids.sorted("id")[-1]
        self.assertEqual(posted.author_id, self.customer)
        self.assertEqual(posted.message_type, "email")
        self.assertIn("Automatische Antwort", posted.subject)

    def test_portal_customers_take_the_batch(self):
        """A customer with a portal account is a customer like any other: the batch
        takes their mails, running as their user as message_process does."""
        portal = mail_new_test_user(
            self.env,
            login="hanna_portal",
            name="Hanna Portal",
            email="hanna.portal@kunde.example.com",
            groups="base.group_portal",
        )
        hanna = '"Hanna Portal" <hanna.portal@kunde.example.com>'
        with self.mock_mail_gateway():
            (opened,) = self.process_batch([self.batch_mail("Scanner kaputt", hanna)])
            ticket = opened.ticket
            (reply,) = self.process_batch([self.batch_mail(f"Re: [{ticket.number}] ok", hanna)])
        self.assertEqual(self.left, [], "none left to message_process")
        self.assertTrue(opened.is_new)
        self.assertEqual((reply.ticket, reply.is_new), (ticket, False))
        self.assertEqual(ticket.partner_id, portal.partner_id)
        self.assertEqual(ticket.create_uid, portal)
        self.assertEqual(ticket.message_ids.author_id, portal.partner_id)
        self.assertEqual(len(ticket.comment_ids), 1)

    def test_batch_runs_beside_known_modules(self):
        """On a database of stock modules the batch does not step aside."""
        self.assertEqual(self.Ticket._mail_ticket_batch_blockers(), {})
        self.assertFalse(self.server.ticket_batch_blocked)

    @mute_logger("odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models")
    def test_numbers_follow_arrival(self):
        """A mail left to message_process is processed in its turn: the tickets of a
        batch are numbered in the order their mails arrived."""
        subjects = ["Erste", "Abwesend", "Dritte", "Intern", "Fünfte"]
        raws = [
            self.batch_mail("Erste"),
            self.batch_mail("Abwesend", extra="Auto-Submitted: auto-replied\n"),
            self.batch_mail("Dritte"),
            self.batch_mail("Intern", '"Agnes Agent" <agnes.agent@test.mycompany.com>'),
            self.batch_mail("Fünfte"),
        ]
        with self.mock_mail_gateway():
            results = self.process_batch(raws)
        self.assertEqual([bool(result) for result in results], [True, False, True, False, True])
        tickets = self.Ticket.search([("name", "in", subjects)])
        self.assertEqual(tickets.sorted("number").mapped("name"), subjects)
        self.assertEqual(tickets.sorted("id").mapped("name"), subjects)

    def test_numbers_follow_arrival_with_portal_customers(self):
        """Portal customers' tickets are created as their users: between other mails of
        the batch, they keep their place in the numbering."""
        mail_new_test_user(
            self.env,
            login="hanna_portal",
            name="Hanna Portal",
            email="hanna.portal@kunde.example.com",
            groups="base.group_portal",
        )
        hanna = '"Hanna Portal" <hanna.portal@kunde.example.com>'
        subjects = ["Erste", "Zweite", "Dritte", "Vierte"]
        senders = [SYLVIE, hanna, SYLVIE, hanna]
        raws = [self.batch_mail(s, sender) for s, sender in zip(subjects, senders, strict=True)]
        with self.mock_mail_gateway():
            results = self.process_batch(raws)
        self.assertTrue(all(results), "all taken by the batch")
        tickets = self.Ticket.search([("name", "in", subjects)])
        self.assertEqual(tickets.sorted("number").mapped("name"), subjects)
        self.assertEqual(
            [ticket.create_uid.name for ticket in tickets.sorted("number")],
            ["OdooBot", "Hanna Portal", "OdooBot", "Hanna Portal"],
        )

    @mute_logger("odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models")
    def test_answers_within_a_batch(self):
        """A reply to a mail of the same batch lands on its ticket, as it would mail
        by mail; a reply to a mail left to message_process finds it processed."""
        first = self.batch_mail("Drucker im Lager")
        internal = self.batch_mail("Intern", '"Agnes Agent" <agnes.agent@test.mycompany.com>')

        def answer(raw):
            return self.batch_mail(
                "Re: Drucker",
                extra=f"In-Reply-To: {self.from_string(raw.decode())['Message-Id']}\n",
            )

        with self.mock_mail_gateway():
            results = self.process_batch([first, answer(first), internal, answer(internal)])
        first_result, reply, left, left_reply = results
        ticket = first_result.ticket
        self.assertTrue(first_result.is_new)
        self.assertEqual((reply.ticket, reply.is_new), (ticket, False))
        self.assertEqual(len(ticket.comment_ids), 1)
        messages = ticket.message_ids.sorted("id")
        self.assertEqual(messages[1].parent_id, messages[0])
        self.assertIsNone(left)
        self.assertIsNone(left_reply, "its sender does not speak on the agent's ticket")
        agent_ticket = self.Ticket.search([("name", "=", "Intern")])
        self.assertEqual(len(agent_ticket.message_ids), 2, "but is kept there, unverified")
        self.assertTrue(agent_ticket.message_ids.sorted("id")[1].is_internal)

    @mute_logger(
        "odoo.addons.mail.models.mail_thread",
        "odoo.addons.mail_ticket.models",
        "odoo.addons.mail_ticket.tools.mailbox_ingestion",
    )
    def test_failing_batch_falls_back_mail_by_mail(self):
        """Whatever a mail makes the batch raise, the batch is rolled back and its mails
        are processed one by one: that mail fails alone, kept, the others go through."""
        Ticket = self.registry["mail.ticket"]
        original = Ticket._mail_ticket_new_values

        for uidvalidity, error in enumerate((ZeroDivisionError, KeyError, RecursionError), 1):

            def new_values(ticket, msg_dict, *args, error=error, **kwargs):
                if msg_dict.get("subject") == "Kaputt":
                    raise error("unexpected")
                return original(ticket, msg_dict, *args, **kwargs)

            raws = [
                self.batch_mail("Vorher"),
                self.batch_mail("Kaputt"),
                self.batch_mail("Nachher"),
            ]
            mailbox = SimpleNamespace(folder="INBOX", uidvalidity=uidvalidity)
            fetched = [FetchedMail(uid, raw, len(raw)) for uid, raw in enumerate(raws, 1)]
            with (
                self.subTest(error=error.__name__),
                patch.object(Ticket, "_mail_ticket_new_values", new_values),
                self.mock_mail_gateway(),
            ):
                inbounds = MailboxIngestion(self.server, mailbox)._process_batch(fetched)
            self.assertEqual(inbounds.mapped("uid"), [1, 2, 3])
            self.assertEqual(inbounds.mapped("state"), ["done", "failed", "done"])
            self.assertEqual(inbounds[0::2].ticket_id.mapped("name"), ["Vorher", "Nachher"])
            self.assertIn(error.__name__, inbounds[1].error)
            self.assertEqual(inbounds[1]._stored_raw(), raws[1], "kept to be retried")
            self.assertFalse(self.Ticket.search([("name", "=", "Kaputt")]))

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_looping_sender_left_to_the_gateway(self):
        self.env["ir.config_parameter"].sudo().set_param("mail.gateway.loop.threshold", 4)
        with self.mock_mail_gateway():
            results = self.process_batch([self.batch_mail(f"Frage {n}") for n in range(5)])
        self.assertEqual([bool(result) for result in results], [True, True, True, False, False])


@tagged("post_install", "-at_install", "mail_ticket", "mail_performance")
class TestBatchGatewayPerformance(MailTicketCommon):
    """Query budget of a fetched batch: what the batch shares costs about 30
    queries, each new ticket or reply about 10 more (a mail through
    message_process alone: 51 and 45, see test_performance)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls._create_ticket_mailbox()
        cls.tickets = cls.env["mail.ticket"].create(
            [
                {
                    "name": f"Drucker {n}",
                    "partner_id": cls.customer.id,
                    "fetchmail_server_id": cls.server.id,
                }
                for n in range(10)
            ]
        )

    def batch(self, count, reply=False, portal=False):
        """``count`` new mails by unknown senders (every second one by a customer with
        a portal account, with ``portal``), or replies by subject to the tickets."""
        mails = []
        for n in range(count):
            msg_id = f"<{self._next_msg_id()}@agrolait.example.com>"
            subject = f"Neues Problem {msg_id}"
            email_from = f'"Kunde {n}" <kunde.{self._msg_counter}@example.com>'
            if reply:
                subject = f"Re: [{self.tickets[n].number}] Drucker"
                email_from = SYLVIE
            elif portal and n % 2 == 0:
                email = f"portal.{self._msg_counter}@kunde.example.com"
                mail_new_test_user(
                    self.env,
                    login=email,
                    name=f"Portal {n}",
                    email=email,
                    groups="base.group_portal",
                )
                email_from = f'"Portal {n}" <{email}>'
            mails.append(
                self.format(
                    MAIL_TICKET_TEMPLATE,
                    to=SUPPORT_ADDRESS,
                    subject=subject,
                    email_from=email_from,
                    msg_id=msg_id,
                ).encode()
            )
        return mails

    def process(self, raws):
        results = (
            self.env["mail.ticket"]
            .sudo()
            ._message_process_batch(
                self.server, raws, lambda index: self.fail(f"mail {index} left to message_process")
            )
        )
        self.assertTrue(all(results))

    @users("admin")
    @warmup
    def test_new_tickets_queries(self):
        raws = self.batch(10)
        # rating.mixin computes its stored rating_last_value at create (1 per batch)
        with self.assertQueryCount(admin=113), self.mock_mail_gateway():
            self.process(raws)

    @users("admin")
    @warmup
    def test_lone_new_ticket_queries(self):
        raws = self.batch(1)
        with self.assertQueryCount(admin=42), self.mock_mail_gateway():
            self.process(raws)

    @users("admin")
    @warmup
    def test_replies_queries(self):
        raws = self.batch(10, reply=True)
        with self.assertQueryCount(admin=125), self.mock_mail_gateway():
            self.process(raws)

    @users("admin")
    @warmup
    def test_new_tickets_of_portal_customers_queries(self):
        raws = self.batch(10, portal=True)
        # the 113 of ten mails of unknown senders, and 41 for creating each ticket as
        # its sender's portal user, in arrival order (one insert per ticket here, the
        # users' defaults and accounts): the numbers and the first stage are drawn once
        # for all (they were drawn per create(): 172)
        with self.assertQueryCount(admin=154), self.mock_mail_gateway():
            self.process(raws)
        tickets = self.env["mail.ticket"].sudo().search([], order="id desc", limit=10)
        self.assertEqual(
            [(ticket.name, ticket.create_uid.name) for ticket in tickets.sorted("number")],
            [
                (self.from_string(raw.decode())["Subject"], name)
                for raw, name in zip(
                    raws,
                    [name for n in range(0, 10, 2) for name in (f"Portal {n}", self.env.user.name)],
                    strict=True,
                )
            ],
        )
        self.assertEqual(tickets.sorted("id"), tickets.sorted("number"))

    def _team_mailbox(self):
        """The mailbox's team gives its tickets a stage of its own and an SLA policy on
        working hours (an assignee would cost what it costs without a team: following
        the ticket)."""
        stage = self.env["mail.ticket.stage"].sudo().create({"name": "Eingang", "sequence": 0})
        team = (
            self.env["mail.ticket.team"]
            .sudo()
            .create({"name": "Kundendienst", "stage_ids": stage.ids})
        )
        self.env["mail.ticket.sla"].sudo().create(
            {"name": "4 Stunden", "team_id": team.id, "stage_id": self.stage_solved.id, "time": 4}
        )
        self.server.sudo().ticket_team_id = team
        return team

    @users("admin")
    @warmup
    def test_new_tickets_of_a_team_queries(self):
        self._team_mailbox()
        raws = self.batch(10)
        # the tickets without team's 113, and 6 for the whole batch, none per mail: the
        # team's first stage (instead of the shared one), the team's policies, its
        # calendar (attendances, leaves) for one deadline planned for all (they share
        # their creation date), one insert of their SLA statuses
        with self.assertQueryCount(admin=119), self.mock_mail_gateway():
            self.process(raws)

    @users("admin")
    @warmup
    def test_lone_new_ticket_of_a_team_queries(self):
        self._team_mailbox()
        raws = self.batch(1)
        # the 42 of a ticket without team, and the same 6 as a batch of 10
        with self.assertQueryCount(admin=48), self.mock_mail_gateway():
            self.process(raws)
