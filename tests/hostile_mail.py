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


def _sender_mail(from_value, subject=b"Absender", headers=()):
    """A mail whose From header is ``from_value`` (bytes, as on the wire)."""
    return _mail(subject, b"Der Absender ist seltsam.", headers=headers).replace(
        b"From: Sylvie Lelitre <sylvie.lelitre@agrolait.example.com>", b"From: " + from_value
    )


def _folded(items, separator=b" "):
    """Header value of ``items`` folded every ten of them (lines stay under 998 bytes)."""
    lines = [separator.join(items[index : index + 10]) for index in range(0, len(items), 10)]
    return (separator.rstrip() + b"\r\n ").join(lines)


def folded_whitespace_subject(spaces=80000):
    """``Re`` and then nothing but folded white space: a reply prefix without its colon."""
    line = b" " * 76
    return _mail(b"Re" + b"\r\n".join([line] * (spaces // len(line))), b"Nur Leerraum.")


def long_display_name(length=100000):
    return _sender_mail(b"S" * length + b" <sylvie.lelitre@agrolait.example.com>")


def long_quoted_display_name(length=100000):
    return _sender_mail(b'"' + b"S " * (length // 2) + b'" <sylvie.lelitre@agrolait.example.com>')


def nested_comments_in_from(depth=20000):
    return _sender_mail(
        b"(" * depth + b"x" + b")" * depth + b" <sylvie.lelitre@agrolait.example.com>"
    )


def many_addresses_in_from(count=20000):
    addresses = [b"kollege%d@agrolait.example.com" % number for number in range(count)]
    return _sender_mail(_folded(addresses, b", "))


def encoded_words_in_from(count=20000):
    words = [b"=?utf-8?q?S=C3=BC?=" for __ in range(count)]
    return _sender_mail(_folded(words) + b" <sylvie.lelitre@agrolait.example.com>")


def many_subject_tags(count=20000):
    tags = [b"[TICKET-%d]" % number for number in range(1, count + 1)]
    return _mail(b"Re: " + _folded(tags), b"Viele Ticketnummern.")


def many_recipients(count=20000):
    addresses = [b"kollege%d@agrolait.example.com" % number for number in range(count)]
    return _mail(b"Viele Empfaenger", b"An alle.", headers=[b"Cc: " + _folded(addresses, b", ")])


def many_references(count=20000):
    ids = [b"<%d.%s@agrolait.example.com>" % (n, uuid.uuid4().hex.encode()) for n in range(count)]
    return _mail(b"Viele Verweise", b"Lange Kette.", headers=[b"References: " + _folded(ids)])


def many_authentication_results(count=2000):
    header = (
        b"Authentication-Results: mx.support.example.com;"
        b" spf=pass smtp.mailfrom=agrolait.example.com; dkim=pass header.d=agrolait.example.com;"
        b" dmarc=pass header.from=agrolait.example.com"
    )
    return _mail(b"Viele Pruefergebnisse", b"Gepruefte Post.", headers=[header] * count)


def long_authentication_results(length=1000000):
    results = [b"spf=pass smtp.mailfrom=x%d.example" % number for number in range(length // 40)]
    header = b"Authentication-Results: mx.support.example.com; " + _folded(results, b"; ")
    return _mail(b"Langes Pruefergebnis", b"Gepruefte Post.", headers=[header])


def long_content_language(length=1000000):
    tags = [b"de-x%d" % number for number in range(length // 10)]
    header = b"Content-Language: " + _folded(tags, b", ")
    return _mail(b"Lange Sprachangabe", b"Guten Tag, unser Drucker druckt nicht.", [header])


def many_content_languages(count=20000):
    headers = [b"Content-Language: (Deutsch) de-DE, en"] * count
    return _mail(b"Viele Sprachangaben", b"Guten Tag, unser Drucker druckt nicht.", headers)


#: adversarial headers, each about 1 MB or built to hit a quadratic path: name -> builder
HOSTILE_HEADERS = {
    "Re and 80,000 folded spaces": folded_whitespace_subject,
    "100,000-character display name": long_display_name,
    "100,000-character quoted name": long_quoted_display_name,
    "20,000 nested comments in From": nested_comments_in_from,
    "20,000 addresses in From": many_addresses_in_from,
    "20,000 encoded words in From": encoded_words_in_from,
    "20,000 ticket tags in Subject": many_subject_tags,
    "20,000 addresses in Cc": many_recipients,
    "20,000 References": many_references,
    "2,000 Authentication-Results": many_authentication_results,
    "1 MB Authentication-Results": long_authentication_results,
    "1 MB Content-Language": long_content_language,
    "20,000 Content-Language": many_content_languages,
}

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
