import email
from email.policy import SMTP, compat32
from types import SimpleNamespace
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tests.common import BaseCase
from odoo.tools import mute_logger

from odoo.addons.mail_ticket.tools.mail_repair import (
    decode_header_value,
    read_headers_once,
    read_once_policy,
    repair_message,
    resolve_charset,
)
from odoo.addons.mail_ticket.tools.mailbox_ingestion import MailboxIngestion, headers_vals

from .common import MAIL_TICKET_ATTACHMENT_TEMPLATE, MAIL_TICKET_TEMPLATE, MailTicketCommon

HEADERS = (
    b"From: Sylvie Lelitre <sylvie.lelitre@agrolait.example.com>\r\n"
    b"To: support@test.mycompany.com\r\n"
    b"Message-ID: <%(msg_id)s@agrolait.example.com>\r\n"
    b"Subject: %(subject)s\r\n"
    b"Date: Tue, 24 Nov 2026 10:00:00 +0100\r\n"
)


def python_reads(header_value):
    """Whether this Python's header parser reads ``header_value`` (a display name of a
    single ``.`` raises AttributeError in Python 3.10 to 3.12, not in 3.13)."""
    try:
        str(parse(b"From: " + header_value + b"\r\nSubject: x\r\n\r\nHallo\r\n")["From"])
    except Exception:  # what the parser raises varies (AttributeError, TypeError...)
        return False
    return True


def parse(raw):
    return email.message_from_bytes(raw, policy=SMTP)


# A display name that makes this Python's header parser raise: "." (as seen on real mail)
# in Python 3.10 to 3.12; "a@[" where that bug is fixed (3.13), as everywhere.
PARSER_BREAKER = b"a@[" if python_reads(b". <sylvie@agrolait.example.com>") else b"."
BREAKER_REASON = {
    b".": "the From header could not be read as it is",
    b"a@[": "the From header cannot be read: an unclosed [",
}[PARSER_BREAKER]


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailRepair(BaseCase):
    """The repair module on its own: pure Python, no database."""

    def test_resolve_charset(self):
        for name, data, expected in [
            ("utf-8", b"", "utf-8"),
            ("UTF8", b"", "utf-8"),
            ("ISO-8859-1", b"", "iso8859-1"),
            ("ansi_x3.110-1983", b"", "iso8859-1"),
            ("_iso-2022-jp$ESC", b"", "iso2022_jp"),
            ('"windows-1252"', b"", "cp1252"),
            ("x-mac-roman", b"", "mac-roman"),
            ("iso-0646-6", b"", "ascii"),
            # no text codec: decided by the bytes
            ("base64", b"plain", "ascii"),
            ("unicode_escape", b"\\ud800", "ascii"),  # would give a lone surrogate
            ("idna", "Grüße".encode(), "utf-8"),
            ("unknown-8bit", "Grüße".encode(), "utf-8"),
            ("x-no-such-charset", "Здравствуйте, принтер сломался".encode("koi8-r"), "koi8-r"),
            (None, b"Gr\xfc\xdfe", "iso8859-1"),
            ("", b"\x81\x8d\x8f\x90\x9d", "iso8859-1"),  # nothing detected: lossless
        ]:
            with self.subTest(name=name, data=data):
                self.assertEqual(resolve_charset(name, data), expected)

    def test_decode_header_value(self):
        for raw, expected in [
            ("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
            ("=?x-unknown?q?Gr=FC=DFe_aus_K=F6ln?=", "Grüße aus Köln"),
            ("=?iso-8859-1?b?R3L832U=?= =?iso-8859-1?q?_aus_K=F6ln?=", "Grüße aus Köln"),
            ("=?utf-8?b?broken base64?=", "=?utf-8?b?broken base64?="),
            ("=?utf-8?q?Drucker=0D=0ABcc:_x@example.com?=", "Drucker Bcc: x@example.com"),
            ("Gr\udcfc\udcdfe", "Grüße"),  # raw 8-bit bytes as the parser keeps them
            ("Mehrere\r\n Zeilen", "Mehrere  Zeilen"),
        ]:
            with self.subTest(raw=raw):
                self.assertEqual(decode_header_value(raw), expected)

    def test_well_formed_mail_is_left_as_it_is(self):
        for template in (MAIL_TICKET_TEMPLATE, MAIL_TICKET_ATTACHMENT_TEMPLATE):
            raw = template.format(
                return_path="",
                to="support@example.com",
                cc="",
                email_from="Hans Müller <hans@example.com>",
                subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
                msg_id="<1@example.com>",
                extra="",
            ).encode()
            message = parse(raw)
            self.assertEqual(repair_message(message), [])
            self.assertEqual(message.as_bytes(), parse(raw).as_bytes())

    def test_unknown_charsets(self):
        message = parse(
            HEADERS % {b"msg_id": b"1", b"subject": b"=?x-unknown?q?Gr=FC=DFe?="}
            + b"Content-Type: text/plain; charset=ansi_x3.110-1983\r\n\r\nGr\xfc\xdfe\r\n"
        )
        self.assertEqual(
            repair_message(message),
            ["header Subject", "charset 'ansi_x3.110-1983' as iso8859-1"],
        )
        self.assertEqual(message["Subject"], "Grüße")
        self.assertEqual(message.get_content().strip(), "Grüße")

    def test_empty_charset(self):
        message = parse(
            HEADERS % {b"msg_id": b"1", b"subject": b"x"}
            + b'Content-Type: text/plain; charset=""\r\n\r\nHallo\r\n'
        )
        self.assertEqual(repair_message(message), ["charset '' as utf-8"])
        self.assertEqual(message.get_content().strip(), "Hallo")

    def test_eight_bit_without_charset(self):
        text = "Der Drucker im Büro druckt nur noch leere Seiten, schöne Grüße aus Köln."
        message = parse(
            HEADERS % {b"msg_id": b"1", b"subject": b"Drucker"}
            + b"Content-Type: text/plain\r\n\r\n"
            + text.encode("latin-1")
        )
        # chardet may name a Latin-1 superset (ISO-8859-9, cp1252): same letters here
        self.assertRegex(" ".join(repair_message(message)), r"^charset none as \S+$")
        self.assertEqual(message.get_content(), text)

    def test_from_header_parser_bug(self):
        raw = HEADERS.replace(b"Sylvie Lelitre", PARSER_BREAKER) % {
            b"msg_id": b"1",
            b"subject": b"x",
        }
        with self.assertRaises(AttributeError):  # CPython's bug, as seen on real mail
            str(parse(raw)["From"])
        message = parse(raw)
        self.assertEqual(repair_message(message), ["header From"])
        self.assertEqual(str(message["From"]), "sylvie.lelitre@agrolait.example.com")

    def test_broken_address_list(self):
        for raw, expected in [
            (b". <sylvie@agrolait.example.com>", "sylvie@agrolait.example.com"),
            (
                b". <sylvie@agrolait.example.com>, .. <hans@beispiel.example>",
                "sylvie@agrolait.example.com, hans@beispiel.example",
            ),
        ]:
            with self.subTest(raw=raw[:60]):
                message = parse(b"From: " + raw + b"\r\nSubject: x\r\n\r\nHallo\r\n")
                if python_reads(raw):
                    self.assertEqual(repair_message(message), [])
                    addresses = [a.addr_spec for a in message["From"].addresses]
                    self.assertEqual(", ".join(addresses), expected)
                    continue
                self.assertEqual(repair_message(message), ["header From"])
                self.assertEqual(message["From"] and str(message["From"]), expected)

    def test_long_headers_are_bounded_before_parsing(self):
        """Python's header parser is quadratic on long address lists and runs of encoded
        words: such headers are bounded before anything parses them."""
        addresses = b", ".join(b"kollege%d@agrolait.example.com" % n for n in range(5000))
        words = b" ".join([b"=?utf-8?q?S=C3=BC?="] * 5000)
        message = parse(
            b"From: " + b"S" * 100000 + b" <sylvie@agrolait.example.com>\r\n"
            b"Cc: " + addresses + b"\r\n"
            b"Subject: " + words + b"\r\n"
            b"References: "
            + b" ".join(b"<%d@agrolait.example.com>" % n for n in range(5000))
            + b"\r\n\r\nHallo\r\n"
        )
        self.assertEqual(
            repair_message(message),
            [
                "header From bounded",
                "header Cc bounded",
                "header Subject bounded",
                "header References bounded",
            ],
        )
        self.assertEqual(str(message["From"]), "sylvie@agrolait.example.com")
        self.assertEqual(len(str(message["Cc"]).split(", ")), 100)
        self.assertTrue(str(message["Subject"]).startswith("SüSüSü"))
        self.assertLessEqual(len(str(message["Subject"])), 8000)
        references = str(message["References"]).split()
        self.assertEqual(len(references), 100)
        self.assertEqual(references[-1], "<4999@agrolait.example.com>", "the newest are kept")
        # an address of 100,000 characters is no address: dropped
        message = parse(b"From: . <" + b"x" * 100000 + b">\r\nSubject: x\r\n\r\nHallo\r\n")
        self.assertEqual(repair_message(message), ["header From bounded"])
        self.assertFalse(str(message["From"] or ""))

    def test_dates(self):
        for date, expected in [
            (b"Mon, 2 Apr 101 04:20:10 %z", "Mon, 02 Apr 2001 04:20:10 -0000"),
            (b"Mon, 2 Apr 101 04:20:10 -0600", "Mon, 02 Apr 2001 04:20:10 -0600"),
            (b"Tue, 24 Nov 2026 10:00:00 +0100", "Tue, 24 Nov 2026 10:00:00 +0100"),
            (b"Tue, 32 Nov 2026 10:00:00 +0100", "Tue, 32 Nov 2026 10:00:00 +0100"),
            (b"Garbage", "Garbage"),  # Odoo takes the time of reception for these
            (b"Sun, 1 Jan 0 00:00:00 +0000", "Sat, 01 Jan 2000 00:00:00 +0000"),
            (b"Thu, 1 Apr 0099 00:00:00 %z", "Thu, 01 Apr 1999 00:00:00 -0000"),
            (b"Sat, 1 Jan 1 BC", "Sat, 1 Jan 1 BC"),
            # the parser renders this one as year 100, and Odoo reads that rendering
            (b"Tue, 19 Apr boundary=2016 15:37:12 +0100", "Wed, 19 Apr 2000 15:37:12 -0000"),
        ]:
            with self.subTest(date=date):
                message = parse(
                    (HEADERS % {b"msg_id": b"1", b"subject": b"x"}).replace(
                        b"Tue, 24 Nov 2026 10:00:00 +0100", date
                    )
                )
                repair_message(message)
                self.assertEqual(message["Date"] and str(message["Date"]), expected)

    def test_unreadable_structure(self):
        message = parse(
            HEADERS
            % {b"msg_id": b"1", b"subject": b"x"}
            + b"Content-Type: multipart/report; report-type=delivery-status;\r\n\tbo\r\n\r\n"
            b"--lost\r\nContent-Type: text/plain\r\n\r\nNicht zustellbar.\r\n--lost--\r\n"
        )
        self.assertEqual(repair_message(message), ["unreadable multipart/report"])
        self.assertIn("Nicht zustellbar", message.get_content())
        message = parse(
            HEADERS % {b"msg_id": b"1", b"subject": b"x"}
            + b'Content-Type: "application"/pdf; name="a.pdf"\r\n\r\n%PDF-1.4\r\n'
        )
        repair_message(message)
        self.assertEqual(message.get_content_type(), "application/octet-stream")
        self.assertEqual(message.get_filename(), "a.pdf")

    def test_read_headers_once(self):
        """Headers read the same, each parsed once; the message is written as it came."""
        attached = (
            b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\nSubject: =?utf-8?q?Alt?=\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nAlte Mail\r\n"
        )
        raw = (
            HEADERS
            % {b"msg_id": b"1", b"subject": b"=?utf-8?q?Gr=C3=BC=C3=9Fe?="}
            + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n"
            b"--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
            + attached
            + b"--b--\r\n"
        )

        def read(message):
            return [
                (str(part.get("Subject")), str(part.get("From")), part.get_content_type())
                for part in message.walk()
            ]

        expected = read(parse(raw))
        for message in (parse(raw), email.message_from_bytes(raw, policy=read_once_policy())):
            read_headers_once(message)
            self.assertEqual(read(message), expected)
            self.assertEqual(str(message["Subject"]), "Grüße")
            self.assertIs(message["Subject"], message["Subject"], "parsed once")
            self.assertEqual(message.as_bytes(), parse(raw).as_bytes())
            inner = message.get_payload()[1].get_payload()[0]
            self.assertIs(inner["From"], inner["From"])
        legacy = email.message_from_bytes(raw, policy=compat32)
        read_headers_once(legacy)
        self.assertIs(legacy.policy, compat32, "a legacy message is left")


@tagged("post_install", "-at_install", "mail_ticket")
class TestGatewayBrokenMail(MailTicketCommon):
    """Mail that Odoo's own gateway fails on becomes a ticket."""

    def process(self, subject, content_type, body, headers=HEADERS):
        self._counter = getattr(self, "_counter", 0) + 1
        raw = (
            headers.replace(b"%z", b"%%z")
            % {b"msg_id": b"broken-%d" % self._counter, b"subject": subject}
            + b"Content-Type: "
            + content_type
            + b"\r\n\r\n"
            + body
        )
        thread_id = self.env["mail.thread"].sudo().message_process("mail.ticket", raw)
        return self.Ticket.browse(thread_id)

    @mute_logger("odoo.addons.mail_ticket.models.mail_thread")
    def test_header_pre_parsing_failure_fails_no_mail(self):
        """Pre-parsing the headers is a speed-up: whatever it raises, the mail is read."""
        target = "odoo.addons.mail_ticket.models.mail_thread.read_headers_once"
        for error in (RuntimeError("boom"), RecursionError(), AttributeError("x")):
            with self.subTest(error=type(error).__name__), patch(target, side_effect=error):
                ticket = self.process(b"Vorab", b"text/plain; charset=utf-8", b"Hallo")
                self.assertEqual(ticket.name, "Vorab")

    @mute_logger("odoo.addons.mail_ticket.models.mail_thread")
    def test_unknown_charsets(self):
        ticket = self.process(
            b"Zeichensatz", b"text/plain; charset=ansi_x3.110-1983", b"Gr\xfc\xdfe aus K\xf6ln"
        )
        self.assertIn("Grüße aus Köln", ticket.description)
        text = "プリンターが壊れました"
        ticket = self.process(
            b"Zeichensatz", b'text/plain; charset="_iso-2022-jp$ESC"', text.encode("iso-2022-jp")
        )
        self.assertIn(text, ticket.description)
        ticket = self.process(b"=?x-unknown?q?Gr=FC=DFe?=", b"text/plain", b"Hallo")
        self.assertEqual(ticket.name, "Grüße")

    @mute_logger("odoo.addons.mail_ticket.models.mail_thread")
    def test_eight_bit_without_charset(self):
        text = "Der Drucker im Büro druckt nur noch leere Seiten, schöne Grüße aus Köln."
        ticket = self.process(b"Drucker", b"text/plain", text.encode("latin-1"))
        self.assertIn(text, ticket.description)

    @mute_logger("odoo.addons.mail_ticket.models.mail_thread")
    def test_from_header_parser_bug(self):
        ticket = self.process(
            b"Absender",
            b"text/plain",
            b"Hallo",
            headers=HEADERS.replace(b"Sylvie Lelitre", PARSER_BREAKER),
        )
        self.assertEqual(ticket.name, "Absender")
        # a From that had to be repaired is not the one the receiving server read
        self.assertFalse(ticket.partner_id, "an unverified sender is nobody's customer")
        self.assertEqual(ticket.unverified_reason, BREAKER_REASON)

    @mute_logger(
        "odoo.addons.mail_ticket.models.mail_thread", "odoo.addons.mail.models.mail_thread"
    )
    def test_impossible_date(self):
        ticket = self.process(
            b"Datum",
            b"text/plain",
            b"Hallo",
            headers=HEADERS.replace(
                b"Tue, 24 Nov 2026 10:00:00 +0100", b"Mon, 2 Apr 101 04:20:10 %z"
            ),
        )
        self.assertEqual(ticket.name, "Datum")
        self.assertEqual(ticket.message_ids[-1].date.year, 2001)

    def test_headers_vals_never_fail(self):
        broken = (
            HEADERS.replace(b"Sylvie Lelitre", PARSER_BREAKER).replace(
                b"Tue, 24 Nov 2026 10:00:00 +0100", b"Mon, 2 Apr 101 04:20:10 %%z"
            )
            % {b"msg_id": b"x", b"subject": b"Hallo\x00Welt"}
            + b"\r\nHallo"
        )
        self.assertEqual(
            headers_vals(broken),
            {
                "message_id": "<x@agrolait.example.com>",
                "email_from": False,
                "subject": "HalloWelt",
                "date": False,
            },
        )
        self.assertEqual(
            headers_vals(b"\x00\xff"),
            {"message_id": False, "email_from": False, "subject": False, "date": False},
        )

    @mute_logger("odoo.addons.mail_ticket.models.mail_thread")
    def test_ingest_mail_whose_from_breaks_the_parser(self):
        """The mail that blocked a mailbox: its From made recording it raise."""
        server = self.env["fetchmail.server"].create(
            {
                "name": "Support",
                "server_type": "imap",
                "server": "127.0.0.1",
                "user": "support",
                "password": "secret",
                "object_id": self.env["ir.model"]._get_id("mail.ticket"),
            }
        )
        mailbox = SimpleNamespace(folder="INBOX", uidvalidity=7)  # what _ingest reads of it
        raw = (
            HEADERS.replace(b"Sylvie Lelitre", PARSER_BREAKER)
            % {b"msg_id": b"blocker", b"subject": b"Hilfe"}
            + b"Content-Type: text/plain\r\n\r\nHallo"
        )
        inbound = MailboxIngestion(server, mailbox)._ingest(1, raw, len(raw))
        self.assertEqual(inbound.state, "done")
        self.assertEqual(inbound.ticket_id.name, "Hilfe")
        self.assertFalse(inbound.email_from)
