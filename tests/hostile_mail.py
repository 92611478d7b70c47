"""Hostile mails: huge, deep, many-parted or broken in their encoding, as raw bytes.

Shared by tests/test_hostile_mail.py (through the real IMAP fetch) and
bench/hostile.py (time and memory of each through ``message_process``).
"""

import base64
import uuid

CRLF = b"\r\n"


def _mail(subject, body, headers=(), content_type=b"text/plain; charset=utf-8", extra=b""):
    """A raw mail; ``subject`` and ``body`` are bytes as they go on the wire."""
    lines = [
        b"From: Sylvie Lelitre <sylvie.lelitre@agrolait.example.com>",
        b"To: support@example.com",
        b"Subject: " + subject,
        b"Date: Tue, 24 Nov 2026 10:00:00 +0100",
        b"Message-ID: <%s@agrolait.example.com>" % uuid.uuid4().hex.encode(),
        b"MIME-Version: 1.0",
        b"Content-Type: " + content_type,
        *headers,
    ]
    return CRLF.join(lines) + extra + CRLF + CRLF + body + CRLF


def big_body(megabytes=20):
    line = b"Das Protokoll des Druckers, Zeile fuer Zeile, damit der Support sieht was los ist."
    count = megabytes * 1024 * 1024 // (len(line) + 2)
    return _mail(b"Riesiges Protokoll", CRLF.join([line] * count))


def big_body_without_charset(megabytes=20):
    """20 MB of Latin-1 text that declares no charset: detection must stay cheap."""
    line = "Grüße aus Köln: das Protokoll des Druckers im Büro, Zeile für Zeile.".encode("latin-1")
    count = megabytes * 1024 * 1024 // (len(line) + 2)
    return _mail(
        b"Riesiges Protokoll ohne Zeichensatz",
        CRLF.join([line] * count),
        content_type=b"text/plain",
        extra=b"\r\nContent-Transfer-Encoding: 8bit",
    )


def many_attachments(count=500):
    parts = [b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei die Dateien.\r\n"]
    for number in range(count):
        parts.append(
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="datei-%d.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            % number
            + base64.b64encode(b"%d" % number)
            + CRLF
        )
    return _mail(
        b"Viele Anhaenge", b"".join(parts) + b"--b--", content_type=b'multipart/mixed; boundary="b"'
    )


def nested_multipart(depth=100):
    body = b"Content-Type: text/plain; charset=utf-8\r\n\r\nGanz innen.\r\n"
    for level in range(depth - 1, 0, -1):
        boundary = b"level%d" % level
        body = b'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n--%s\r\n%s\r\n--%s--\r\n' % (
            boundary,
            boundary,
            body,
            boundary,
        )
    return _mail(
        b"Tief verschachtelt",
        b"--level0\r\n" + body + b"\r\n--level0--",
        content_type=b'multipart/mixed; boundary="level0"',
    )


def many_headers(count=10000):
    headers = [b"X-Spam-Check-%d: passed" % number for number in range(count)]
    return _mail(b"Zehntausend Kopfzeilen", b"Viele Kopfzeilen.", headers=headers)


def long_subject(length=10000):
    return _mail(b"Lang " + b"x" * (length - 5), b"Ein langer Betreff.")


def from_parser_bug():
    """A From that makes Python's header parser raise AttributeError."""
    return _mail(b"Absender kaputt", b"Der Absender ist kaputt.").replace(
        b"From: Sylvie Lelitre <sylvie.lelitre@agrolait.example.com>",
        b"From: . <sylvie.lelitre@agrolait.example.com>",
    )


def charset_misspelled():
    return _mail(
        b"Zeichensatz ansi",
        b"Gr\xfc\xdfe aus K\xf6ln",
        content_type=b"text/plain; charset=ansi_x3.110-1983",
        extra=b"\r\nContent-Transfer-Encoding: 8bit",
    )


def charset_with_escape():
    return _mail(
        b"Zeichensatz iso-2022-jp",
        "こんにちは、プリンターが壊れました。".encode("iso-2022-jp"),
        content_type=b'text/plain; charset="_iso-2022-jp$ESC"',
    )


def date_percent():
    return _mail(b"Datum kaputt", b"Das Datum ist kaputt.").replace(
        b"Date: Tue, 24 Nov 2026 10:00:00 +0100", b"Date: Mon, 2 Apr 101 04:20:10 %z"
    )


def eight_bit_without_charset():
    text = "Grüße aus Köln. Der Drucker im Büro druckt nur noch leere Seiten, schöne Grüße."
    return _mail(
        b"Ohne Zeichensatz",
        text.encode("latin-1"),
        content_type=b"text/plain",
        extra=b"\r\nContent-Transfer-Encoding: 8bit",
    )


def subject_crlf():
    return _mail(b"=?utf-8?q?Drucker=0D=0ABcc:_victim@example.com?=", b"Kopfzeile versteckt.")


#: name -> (builder, what the ticket must show: a fragment of its description or None)
HOSTILE = {
    "500 attachments": (many_attachments, "Anbei die Dateien"),
    "100-level nesting": (nested_multipart, "Ganz innen"),
    "10,000 headers": (many_headers, "Viele Kopfzeilen"),
    "10,000-character subject": (long_subject, "langer Betreff"),
    "From parser bug": (from_parser_bug, "Absender ist kaputt"),
    "charset ansi_x3.110-1983": (charset_misspelled, "Grüße aus Köln"),
    "charset _iso-2022-jp$ESC": (charset_with_escape, "プリンターが壊れました"),
    "Date with %": (date_percent, "Datum ist kaputt"),
    "8-bit without charset": (eight_bit_without_charset, "Grüße aus Köln"),
    "CR/LF in encoded subject": (subject_crlf, "Kopfzeile versteckt"),
}
