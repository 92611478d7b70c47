from odoo.tests import TransactionCase, tagged

from odoo.addons.mail_ticket.tools.mail_trust import (
    dmarc_verdict,
    parse_authentication_results,
    read_from,
)

TRUSTED = frozenset({"mx.example.com"})


@tagged("post_install", "-at_install", "mail_ticket")
class TestFromReading(TransactionCase):
    """The From header read as the receiving server reads it: one mailbox, plainly."""

    def test_plain_senders(self):
        for value, email in (
            (
                "Sylvie Lelitre <sylvie.lelitre@agrolait.example.com>",
                "sylvie.lelitre@agrolait.example.com",
            ),
            ('"Lelitre, Sylvie" <SYLVIE@Agrolait.Example.com>', "sylvie@agrolait.example.com"),
            ("sylvie@agrolait.example.com", "sylvie@agrolait.example.com"),
            ("<sylvie@agrolait.example.com>", "sylvie@agrolait.example.com"),
            ("J. R. Smith (Büro) <j@x.example>", "j@x.example"),
            ("Jürgen Müller <j@x.example>", "j@x.example"),  # RFC 6532 UTF-8
            ("=?utf-8?q?J=C3=BCrgen?= <j@x.example>", "j@x.example"),
            ("Sylvie\r\n Lelitre <s@x.example>", "s@x.example"),  # folded
            ('"s@x.example" <s@x.example>', "s@x.example"),  # its own address as name
        ):
            with self.subTest(value=value):
                reading = read_from([value])
                self.assertFalse(reading.doubt, reading.doubt and self.env._(reading.doubt))
                self.assertEqual(reading.email, email)

    def test_senders_in_doubt(self):
        for values, reason in (
            ([], "no From header"),
            (["a@x.example", "b@y.example"], "several From headers"),
            (["a@x.example, b@y.example"], "several addresses"),
            (["Gruppe: a@x.example;"], "a group of addresses"),
            (['"a@x.example" <b@y.example>'], "another address in the display name"),
            (["a@x.example <b@y.example>"], "special characters"),
            (["=?utf-8?q?a=40x.example?= <b@y.example>"], "another address in the display name"),
            (["=?utf-8?q?a=40x=2Eexample?="], "not one local-part@domain"),
            (['"a b"@x.example'], "a quoted local part"),
            (["a@[10.0.0.1]"], "an address literal"),
            (["a@x..example"], "an empty or malformed part"),
            (["J\udce4rgen <j@x.example>"], "not valid UTF-8"),  # a Latin-1 byte
            (['"unclosed <a@x.example>'], "an unclosed quoted string"),
            (["(" * 20 + ")" * 20 + " <a@x.example>"], "nested too deep"),
            (["S" * 100000 + " <a@x.example>"], "too long"),
            (["Name <a@x.example> more"], "angle brackets out of place"),
        ):
            with self.subTest(values=[value[:60] for value in values]):
                reading = read_from(values)
                self.assertIn(reason, self.env._(reading.doubt))


@tagged("post_install", "-at_install", "mail_ticket")
class TestAuthenticationResults(TransactionCase):
    """RFC 8601 headers as real servers write them, read in linear time."""

    def test_parse(self):
        authserv_id, results = parse_authentication_results(
            'mx.example.com 1; spf=pass smtp.helo=[10.0.0.7] smtp.mailfrom="a b"@x.example;'
            " dkim=pass (good signature) header.d=x.example; dmarc=pass action=none"
            " (p=NONE sp=NONE) header.from=x.example; spf=pass smtp.mailfrom=jürgen@x.example"
        )
        self.assertEqual(authserv_id, "mx.example.com")
        self.assertEqual(
            [(r.method, r.result, r.properties) for r in results],
            [
                ("spf", "pass", {"smtp.helo": "[10.0.0.7]", "smtp.mailfrom": '"a b"@x.example'}),
                ("dkim", "pass", {"header.d": "x.example"}),
                ("dmarc", "pass", {"header.from": "x.example"}),
                ("spf", "pass", {"smtp.mailfrom": "jürgen@x.example"}),
            ],
        )
        self.assertEqual(
            parse_authentication_results("mx.example.com; none"), ("mx.example.com", [])
        )

    def test_unreadable(self):
        for value in (
            "mx.example.com; spf pass",
            "mx.example.com; spf=pass (unclosed",
            'mx.example.com; spf=pass smtp.mailfrom="unclosed',
            "; spf=pass",
            "mx.example.com extra words; spf=pass",
            "mx.example.com; spf=pass smtp.mailfrom",
            "mx.example.com; " + "spf=pass " * 5000,
        ):
            with self.subTest(value=value[:60]), self.assertRaises(ValueError):
                parse_authentication_results(value)

    def test_verdict_of_the_topmost_trusted_server(self):
        dmarc = "mx.example.com; dmarc={} header.from={}"
        for values, expected in (
            ([], (None, False)),
            (["mx.evil.example; dmarc=pass header.from=x.example"], (None, False)),
            ([dmarc.format("pass", "x.example")], ("pass", False)),
            ([dmarc.format("pass", "X.Example.")], ("pass", False)),
            (
                ["mx.example.com; spf=pass smtp.helo=[1.2.3.4]", dmarc.format("fail", "x.example")],
                ("fail", False),
            ),
            (
                [
                    dmarc.format("fail", "x.example"),
                    "other; x=y",
                    dmarc.format("pass", "x.example"),
                ],
                ("fail", False),
            ),
            ([dmarc.format("pass", "evil.example")], (None, "another domain (evil.example)")),
            (["mx.example.com; spf=pass"], (None, "gave no DMARC result")),
            (
                [dmarc.format("fail", "x.example"), dmarc.format("pass", "x.example")],
                (None, "contradicting DMARC results (fail, pass)"),
            ),
            (
                ["mx.example.com; spf=pass (broken", dmarc.format("pass", "x.example")],
                (None, "cannot be read"),
            ),
            ([dmarc.format("pass", "x.example")] * 21, (None, "21 Authentication-Results")),
        ):
            with self.subTest(values=values[:2]):
                result, doubt = dmarc_verdict(values, TRUSTED, "x.example")
                self.assertEqual(result, expected[0])
                if expected[1]:
                    self.assertIn(expected[1], self.env._(doubt))
                else:
                    self.assertFalse(doubt)
        self.assertEqual(
            dmarc_verdict([dmarc.format("fail", "x.example")], frozenset(), "x.example"),
            (None, False),
        )
