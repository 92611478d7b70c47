from email import message_from_bytes
from email.policy import SMTP

from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from odoo.addons.mail_ticket.tools.mail_language import (
    MAX_CONTENT_LANGUAGE_LENGTH,
    declared_languages,
    detect_language,
    installed_language,
    mail_language,
    parse_content_language,
)

from .common import MailTicketCommon
from .test_forward import AGENT_DOMAIN, NEW_CUSTOMER, TRUSTED_MX, forward_mail

# A plain text mail whose headers and text the test chooses.
MAIL_LANGUAGE_TEMPLATE = """Return-Path: {return_path}
To: {to}
Cc: {cc}
From: {email_from}
Subject: {subject}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit
Date: Fri, 10 Aug 2026 16:16:39 +0200
Message-ID: {msg_id}
{extra}

{body}
"""

# A mail whose text part declares the language, not the message.
MAIL_LANGUAGE_PART_TEMPLATE = """Return-Path: {return_path}
To: {to}
Cc: {cc}
From: {email_from}
Subject: {subject}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"
Date: Fri, 10 Aug 2026 16:16:39 +0200
Message-ID: {msg_id}
{extra}

--b1
Content-Type: text/plain; charset=utf-8
Content-Language: {part_language}

{body}
--b1
Content-Type: text/html; charset=utf-8
Content-Language: {part_language}

<html><body><p>{body}</p></body></html>
--b1--
"""

GERMAN = (
    "Guten Tag, seit gestern kann ich mich nicht mehr in mein Kundenkonto einloggen. "
    "Können Sie mir bitte helfen?"
)
GERMAN_SHORT = "Unser Drucker im Lager druckt seit heute Morgen nur leere Seiten."
ENGLISH = (
    "Hello, since yesterday I cannot log into my customer account anymore. "
    "Could you please help me?"
)
FRENCH = (
    "Bonjour, depuis hier je ne peux plus me connecter à mon compte client. "
    "Pourriez-vous m'aider, s'il vous plaît ?"
)
# Russian: its Cyrillic letters are meant (RUF001 would take them for Latin look-alikes)
RUSSIAN = "Здравствуйте, со вчерашнего дня я не могу войти в свой аккаунт. Помогите, пожалуйста."  # noqa: RUF001
KURT = '"Kurt Neu" <kurt.neu@lager.example.com>'


@tagged("post_install", "-at_install", "mail_ticket")
class TestCustomerLanguage(MailTicketCommon):
    """A contact created from a mail speaks the mail's language, when it is installed,
    and its acknowledgement is in that language; existing contacts keep theirs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls._create_ticket_mailbox()
        cls.env["res.lang"]._activate_lang("de_DE")
        cls.env["ir.module.module"]._load_module_terms(["mail_ticket"], ["de_DE"])
        # an English database: what a new contact gets when the mail's language is not known
        cls.default_lang = "en_US"

    def mail(self, body, email_from=KURT, template=MAIL_LANGUAGE_TEMPLATE, **kwargs):
        kwargs.setdefault("subject", f"Anfrage {self._next_msg_id()}")
        return self.receive_mail(
            email_from=email_from, template=template, server=self.server, body=body, **kwargs
        )

    def send_acknowledgements(self):
        with self.mock_mail_gateway():
            self.Ticket.search([("ack_pending", "=", True)])._send_acknowledgement()
        return self._mails

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_german_mail_german_contact_and_acknowledgement(self):
        ticket = self.mail(GERMAN)
        kurt = ticket.partner_id
        self.assertEqual(kurt.email_normalized, "kurt.neu@lager.example.com")
        self.assertEqual(kurt.lang, "de_DE")
        english = self.mail(ENGLISH, email_from="anna.smith@customer.example.com")
        self.assertEqual(english.partner_id.lang, "en_US")
        acks = {ack["email_to"][0]: ack for ack in self.send_acknowledgements()}
        german_ack = acks[kurt.email_formatted]
        self.assertEqual(german_ack["subject"], f"[{ticket.number}] {ticket.name}")
        self.assertIn("vielen Dank für Ihre Nachricht", german_ack["body"])
        self.assertIn("im Betreff", german_ack["body"])
        english_ack = acks[english.partner_id.email_formatted]
        self.assertIn("thank you for your message", english_ack["body"])
        self.assertNotIn("vielen Dank", english_ack["body"])

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_short_german_mail(self):
        # trigrams find Norwegian closest to these few words, German a close second
        self.assertEqual(self.mail(GERMAN_SHORT).partner_id.lang, "de_DE")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_declared_language_wins_over_the_text(self):
        for header, lang in (
            ("Content-Language: de", "de_DE"),
            ("Content-Language: de-AT", "de_DE"),  # the installed variant
            ("Content-Language: fr-FR, de-DE", "de_DE"),  # the first installed one
            ("Content-Language: en-GB", "en_US"),
        ):
            with self.subTest(header=header):
                email = f"{lang.lower()}.{len(header)}@customer.example.com"
                body = GERMAN if lang == "en_US" else ENGLISH
                ticket = self.mail(body, email_from=email, extra=header)
                self.assertEqual(ticket.partner_id.lang, lang)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_declared_by_the_text_part(self):
        ticket = self.mail(ENGLISH, template=MAIL_LANGUAGE_PART_TEMPLATE, part_language="de-DE")
        self.assertEqual(ticket.partner_id.lang, "de_DE")
        (ack,) = self.send_acknowledgements()
        self.assertIn("vielen Dank für Ihre Nachricht", ack["body"])

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_language_not_installed_gets_the_default(self):
        declared = self.mail(FRENCH, extra="Content-Language: fr")
        self.assertEqual(declared.partner_id.lang, self.default_lang)
        detected = self.mail(FRENCH, email_from="jean@client.example.fr")
        self.assertEqual(detected.partner_id.lang, self.default_lang, "no German for French")
        cyrillic = self.mail(RUSSIAN, email_from="ivan@client.example.ru")
        self.assertEqual(cyrillic.partner_id.lang, self.default_lang)
        acks = [
            ack
            for ack in self.send_acknowledgements()
            if ack["email_to"] == [declared.partner_id.email_formatted]
        ]
        self.assertIn("thank you for your message", acks[0]["body"])

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_existing_contact_keeps_their_language(self):
        self.assertEqual(self.customer.lang, "en_US")
        ticket = self.mail(GERMAN, email_from=self.customer.email, extra="Content-Language: de")
        self.assertEqual(ticket.partner_id, self.customer)
        self.assertEqual(self.customer.lang, "en_US")
        self.customer.lang = "de_DE"
        self.mail(ENGLISH, email_from=self.customer.email, extra="Content-Language: en")
        self.assertEqual(self.customer.lang, "de_DE")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_forwarded_customer_gets_the_language_of_the_forwarded_text(self):
        self.env["ir.config_parameter"].set_param("mail_ticket.authserv_id", TRUSTED_MX)
        mail = forward_mail(
            "Please take this one.\n\n---------- Forwarded message ---------\n"
            f"From: Paul Pinguin <{NEW_CUSTOMER}>\n"
            "Date: Fri, 10 Aug 2026 16:16:39 +0200\nSubject: Kein Zugang\n"
            "To: Agnes Agent <agnes.agent@test.mycompany.com>\n\n\n"
            f"{GERMAN}\n",
            subject="Fwd: Kein Zugang",
        )
        mail["Content-Language"] = "en-US"  # the agent's language, not the customer's
        mail["Authentication-Results"] = (
            f"{TRUSTED_MX}; spf=pass smtp.mailfrom={AGENT_DOMAIN}; "
            f"dmarc=pass header.from={AGENT_DOMAIN}"
        )
        ticket = self.receive_mail(raw=mail.as_bytes(), server=self.server)
        self.assertEqual(ticket.partner_id.email, NEW_CUSTOMER)
        self.assertEqual(ticket.partner_id.lang, "de_DE")
        self.assertEqual(self.user_agent.lang, "en_US", "the agent keeps theirs")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_unreadable_mails_open_tickets(self):
        for name, extra, body, lang in (
            ("garbage", "Content-Language: ((( =?x?q?=00?= ;;; **, -de, de--DE", GERMAN, "de_DE"),
            ("long header", "Content-Language: " + "x" * 5000 + ", de", ENGLISH, "en_US"),
            ("many headers", "\n".join(["Content-Language: (de) de"] * 2000), ENGLISH, "de_DE"),
            ("empty body", "", "", self.default_lang),
            ("no letters", "", "1234 5678 !!! ---", self.default_lang),
            ("huge body", "", (GERMAN + "\n") * 3000, "de_DE"),
            ("markup only", "", "<" * 50000, self.default_lang),
        ):
            with self.subTest(name):
                email = f"{name.replace(' ', '.')}@customer.example.com"
                ticket = self.mail(body, email_from=email, extra=extra)
                self.assertTrue(ticket, "the mail opens its ticket")
                self.assertEqual(ticket.partner_id.email_normalized, email)
                self.assertEqual(ticket.partner_id.lang, lang)


@tagged("post_install", "-at_install", "mail_ticket")
class TestCustomerLanguageFetched(TestCustomerLanguage):
    """The same, each mail fetched in a batch from the mailbox."""

    fetched = True

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_one_batch_of_several_languages(self):
        raws = [
            self.format(
                MAIL_LANGUAGE_TEMPLATE,
                to="support@test.mycompany.com",
                subject=f"Anfrage {index}",
                email_from=email_from,
                msg_id=f"<{self._next_msg_id()}@customer.example.com>",
                body=body,
            ).encode()
            for index, (email_from, body) in enumerate(
                [
                    (KURT, GERMAN),
                    ("anna.smith@customer.example.com", ENGLISH),
                    (KURT, ENGLISH),  # the contact of the sender's first mail
                    (self.customer.email, GERMAN),
                ]
            )
        ]
        tickets = self.receive_fetched(raws, self.server)
        self.assertEqual(
            [ticket.partner_id.lang for ticket in tickets], ["de_DE", "en_US", "de_DE", "en_US"]
        )
        self.assertEqual(tickets[0].partner_id, tickets[2].partner_id)


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailLanguageTools(TransactionCase):
    """Reading the declared language, detecting it, mapping tags to installed codes."""

    INSTALLED = ("en_US", "de_DE", "de_CH", "pt_BR", "sr@latin", "es_419")

    def test_parse_content_language(self):
        for value, tags in (
            ("de", ("de",)),
            (" DE-de ", ("de-de",)),
            ("de-DE, en", ("de-DE", "en")),
            ("en (English), de", ("en", "de")),
            ("sr-Latn-RS", ("sr-Latn-RS",)),
            ("*, und, zxx", ()),
            ("", ()),
            (None, ()),
            (b"de", ()),
            ("=?utf-8?q?de?=", ()),
            ("de--DE, -de, d e, 1234", ()),
            ("x" * 10000 + ", de", ()),  # beyond what is read
            (", ".join(["de"] * 100), ("de",) * 8),
        ):
            with self.subTest(value=value if not value or len(value) < 50 else value[:50]):
                self.assertEqual(parse_content_language(value), tags)
        value = "x" * (MAX_CONTENT_LANGUAGE_LENGTH - 3) + ", de"
        self.assertEqual(parse_content_language(value), (), "cut before the second tag")

    def test_declared_languages(self):
        def message(headers, part_headers=""):
            headers = f"{headers}\n" if headers else ""
            part_headers = f"{part_headers}\n" if part_headers else ""
            raw = (
                f"From: a@b.example\n{headers}Content-Type: multipart/mixed; boundary=x\n\n"
                f"--x\nContent-Type: text/plain\n{part_headers}\nHallo\n--x--\n"
            )
            return message_from_bytes(raw.encode("utf-8", "surrogateescape"), policy=SMTP)

        self.assertEqual(declared_languages(message("Content-Language: de-CH")), ("de-CH",))
        self.assertEqual(declared_languages(message("", "Content-Language: de")), ("de",))
        self.assertEqual(
            declared_languages(message("Content-Language: en", "Content-Language: de")), ("en",)
        )
        self.assertEqual(declared_languages(message("X-Other: 1")), ())
        self.assertEqual(declared_languages(message("Content-Language: \udcff")), ())

    def test_installed_language(self):
        for tag, code in (
            ("de", "de_DE"),
            ("DE", "de_DE"),
            ("de-DE", "de_DE"),
            ("de_CH", "de_CH"),
            ("de-AT", "de_DE"),  # the language's main variant
            ("pt", "pt_BR"),  # the only installed variant
            ("pt-PT", "pt_BR"),
            ("sr-Latn", "sr@latin"),
            ("es-MX", "es_419"),
            ("en-GB", "en_US"),
            ("fr", False),
            ("", False),
            (None, False),
            ("d", False),
            ("de-" + "x" * 500, False),
        ):
            with self.subTest(tag=tag):
                self.assertEqual(installed_language(tag, self.INSTALLED), code)

    def test_detect_language(self):
        installed = ("en_US", "de_DE")
        for body, code in (
            (f"<p>{GERMAN}</p>", "de_DE"),
            (f"<p>{GERMAN_SHORT}</p><p>--<br/>Sylvie</p>", "de_DE"),
            (f"<p>{ENGLISH}</p>", "en_US"),
            (f"<p>{FRENCH}</p>", False),  # far from English and German alike
            (f"<p>{RUSSIAN}</p>", False),
            ("<p>Danke!</p>", False),  # too short to tell
            ("<p>Vielen Dank, Kurt</p>", False),
            ("<div><b>x</b></div>" * 5000, False),  # no words
            ("<p>" + "Drucker " * 500 + "</p>", False),  # one word
            ("", False),
            (None, False),
            ("<" * 50000, False),
            (f"<p>{'1 ' * 20000}</p><p>{GERMAN}</p>", False),  # beyond what is read
        ):
            with self.subTest(body=(body or "")[:40]):
                self.assertEqual(detect_language(body, installed), code)
        self.assertEqual(detect_language(f"<p>{FRENCH}</p>", ("fr_FR", "en_US")), "fr_FR")
        self.assertEqual(detect_language(f"<p>{RUSSIAN}</p>", ("ru_RU", "en_US")), "ru_RU")

    def test_mail_language(self):
        installed = ("en_US", "de_DE")
        self.assertEqual(mail_language(f"<p>{ENGLISH}</p>", ("de",), installed), "de_DE")
        self.assertEqual(mail_language(f"<p>{ENGLISH}</p>", ("fr", "de"), installed), "de_DE")
        self.assertEqual(mail_language(f"<p>{ENGLISH}</p>", ("fr",), installed), "en_US")
        self.assertEqual(mail_language(f"<p>{GERMAN}</p>", (), installed), "de_DE")
        self.assertEqual(mail_language("", (), installed), False)
        self.assertEqual(mail_language(f"<p>{GERMAN}</p>", (), ()), False)
