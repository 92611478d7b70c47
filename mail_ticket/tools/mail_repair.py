"""Repair, in place, what would make a parsed mail fail in Odoo's mail gateway.

Python's ``email`` package parses anything, but reading some values back raises, and
Odoo's gateway reads them all: a charset Python does not know (``ansi_x3.110-1983``,
``_iso-2022-jp$ESC``) makes ``get_content()`` raise ``LookupError``; some malformed
address lists make the header parser raise ``AttributeError`` (a known CPython bug);
a ``multipart`` without boundary or a ``message/rfc822`` that is no message keeps a
string where a list of parts is expected; a ``Date`` with a three-digit year is written
as a short year and cannot be read back (``stray % in format``); an unknown main type
has no content handler.

:func:`repair_message` walks an :class:`email.message.EmailMessage` once and fixes only
what is broken: a well-formed mail is left exactly as it was. It decodes no payload of a
well-formed mail and parses only the few headers the gateway parses too. The original
bytes are not touched; callers keep them.

Decoding falls back in this order: the charset as declared, a cleaned-up or known alias
of it, then the bytes decide: UTF-8 when they are valid UTF-8, else what ``chardet``
detects, else Latin-1, which maps every byte to a character and so loses nothing.

Pure Python: the standard library, ``chardet`` and ``dateutil`` (both required by
Odoo), no Odoo.
"""

import base64
import binascii
import codecs
import contextlib
import functools
import re
import warnings
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime

import chardet
from dateutil import parser as date_parser

__all__ = [
    "ReadOncePolicy",
    "bound_headers",
    "decode_bytes",
    "decode_header_value",
    "read_headers_once",
    "read_once_policy",
    "repair_message",
    "resolve_charset",
]

#: Misspelled or unofficial charset names seen in real mail, and the codec that reads
#: them. Names Python knows need no entry.
CHARSET_ALIASES = {
    "ansi_x3.110-1983": "latin-1",  # ISO-IR-99: ASCII plus diacritics, close to Latin-1
    "iso-0646-6": "ascii",
    "iso-646": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "x-sjis": "shift_jis",
    "x-euc-jp": "euc-jp",
    "windows-874": "cp874",
    "x-windows-874": "cp874",
    "x-gbk": "gbk",
    "gb2312-80": "gb2312",
    "unicode-1-1-utf-7": "utf-7",
    "x-user-defined": None,
    "unknown-8bit": None,
    "x-unknown": None,
    "unknown": None,
    "default": None,
    "charset": None,
}

#: Bytes of 8-bit text given to chardet (about 0.3 s on 2 cores).
DETECT_SAMPLE = 64 * 1024

#: Content-Type main types that ``email.contentmanager.raw_data_manager`` can read
#: (``multipart`` is walked, never read).
READABLE_MAINTYPES = frozenset(
    {"text", "image", "audio", "video", "application", "message", "multipart"}
)

#: Headers Odoo's gateway reads through the header parser (message_parse, bounce
#: detection, loop detection, routing), lowercase.
PARSED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "reply-to",
        "return-path",
        "delivered-to",
        "resent-from",
        "resent-to",
        "resent-cc",
        "subject",
        "message-id",
        "in-reply-to",
        "references",
        "date",
    }
)

#: Of those, the ones read as unstructured text: plain ASCII without encoded words reads
#: as it is, without the parser.
UNSTRUCTURED_HEADERS = frozenset({"subject", "references", "in-reply-to"})

#: A header value longer than this is bounded before anything parses it: Python's
#: header parser takes quadratic time on long address lists and runs of encoded words
#: (20,000 encoded words in a From: 28 s and 7 GB). Authentication-Results headers are
#: left as they are: they are read by :mod:`.mail_trust`, in linear time, never parsed.
MAX_HEADER_LENGTH = 8000
#: Text without encoded words is read in linear time: bounded only beyond this.
MAX_TEXT_LENGTH = 64 * 1024
#: An address list keeps at most that many addresses; an address longer than
#: MAX_MAILBOX_LENGTH keeps its angle-addr only.
MAX_ADDRESSES = 100
MAX_MAILBOX_LENGTH = 998
#: A list of message ids keeps the last that many (Odoo reads the last 32).
MAX_REFERENCES = 100
ADDRESS_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "reply-to",
        "return-path",
        "delivered-to",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-sender",
    }
)
UNBOUNDED_HEADERS = frozenset({"authentication-results"})

_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS_RE = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?)")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_ADDRESS_SEPARATORS_RE = re.compile(r"[\s<>()\[\]\"',;:]+")
_JUNK_RE = re.compile(r"[^a-z0-9_.:-].*$")
_Q_HEX_RE = re.compile(rb"=([0-9A-Fa-f]{2})")
#: Python codecs that are no charset: they turn bytes into lone surrogates, which
#: PostgreSQL refuses.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape"})
_SAMPLE = b"\x1b$B\x80 abc \xc3\xa9\xff"


@functools.lru_cache(maxsize=256)
def _usable(name):
    """The canonical name of a text codec that decodes any bytes, or None."""
    if not name:
        return None
    try:
        info = codecs.lookup(name)
        # non-text codecs (base64, zlib) and codecs without "replace" (idna) refuse this
        _SAMPLE.decode(info.name, "replace")
    except (LookupError, ValueError, TypeError, UnicodeError):
        return None
    return None if info.name in _NOT_CHARSETS else info.name


@functools.lru_cache(maxsize=256)
def _charset_from_name(name):
    """The codec for a declared charset name, cleaned up or through an alias; None if
    the name says nothing usable (then the bytes decide)."""
    if not isinstance(name, str):
        return None
    cleaned = name.strip().strip("\"'").strip().lower()
    candidates = [cleaned, _JUNK_RE.sub("", cleaned).strip("_.:-")]
    for candidate in list(candidates):
        if candidate.startswith(("x-", "x_")):
            candidates.append(candidate[2:])
        candidates.append(candidate.replace("_", "-"))
    for candidate in candidates:
        if candidate in CHARSET_ALIASES:
            return _usable(CHARSET_ALIASES[candidate])
        if codec := _usable(candidate):
            return codec
    return None


def _detect(data):
    """The codec of 8-bit text: UTF-8 if it is valid, else chardet's guess, else Latin-1.

    chardet reads a sample only: it takes seconds per megabyte."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        guess = chardet.detect(data[:DETECT_SAMPLE])
    else:
        return "utf-8"
    confident = (guess.get("confidence") or 0) >= 0.5
    return (confident and _usable(guess.get("encoding"))) or "iso8859-1"  # Latin-1


def resolve_charset(name, data=b""):
    """A codec name that reads ``data`` labelled with charset ``name`` (never fails)."""
    if codec := (_usable(name) if isinstance(name, str) else None):
        return codec
    return _charset_from_name(name) or (_detect(data) if not data.isascii() else "ascii")


def decode_bytes(data, charset=None):
    """Text of ``data`` in ``charset`` (resolved as :func:`resolve_charset` does)."""
    return data.decode(resolve_charset(charset, data), "replace")


def _decode_word(charset, encoding, text):
    data = text.encode("utf-8", "surrogateescape")
    if encoding in "bB":
        try:
            data = base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return text
    else:
        data = _Q_HEX_RE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    return decode_bytes(data, charset)


def decode_header_value(value):
    """Decode a raw header value leniently: unfolded, RFC 2047 words decoded with charset
    fallback, 8-bit bytes decoded as :func:`decode_bytes` does, control characters
    (CR, LF among them) turned into spaces."""
    value = _BETWEEN_WORDS_RE.sub("", str(value))
    pieces, position = [], 0
    for match in _ENCODED_WORD_RE.finditer(value):
        pieces.append(_decode_raw(value[position : match.start()]))
        pieces.append(_decode_word(*match.groups()))
        position = match.end()
    pieces.append(_decode_raw(value[position:]))
    return _CONTROL_RE.sub(" ", "".join(pieces)).strip()


def _decode_raw(text):
    """Header text as the parser keeps it (undecodable bytes as surrogates) to str."""
    data = text.encode("utf-8", "surrogateescape")
    return text if data.isascii() else decode_bytes(data)


def _read_header(policy, name, value):
    """The header as Odoo reads it, or None when it cannot be read (the parser raises,
    or decoding loses characters that a lenient decoding keeps)."""
    if name.lower() in UNSTRUCTURED_HEADERS and value.isascii() and "=?" not in value:
        return value  # plain ASCII text: read as it is, no parser needed
    try:
        header = policy.header_fetch_parse(name, value)
        text = str(header)
    except Exception:  # any parser error makes the header unreadable
        return None
    return header if "\ufffd" not in text or "\ufffd" in str(value) else None


def _repaired_header(policy, name, value):
    """A readable replacement for a broken header value, or None to drop it."""
    decoded = decode_header_value(value)
    candidates = [decoded]
    if name.lower() != "subject":
        # split, not findall: a pattern around "@" is quadratic on a long run without one
        addresses = [
            token
            for token in _ADDRESS_SEPARATORS_RE.split(decoded)
            if token.count("@") == 1 and not token.startswith("@") and not token.endswith("@")
        ]
        candidates.append(", ".join(f"<{address}>" for address in addresses))
        candidates.append(", ".join(addresses))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            header = policy.header_factory(name, candidate)
            str(header)
        except Exception:  # try the next, simpler, candidate
            continue
        return candidate
    return None


def split_addresses(value):
    """The mailboxes of a raw address list, as raw text: split at the commas outside
    quoted strings, comments and angle brackets, in one pass."""
    mailboxes, start, quoted, comments, angle, index = [], 0, False, 0, 0, 0
    length = len(value)
    while index < length:
        char = value[index]
        if char == "\\":
            index += 1
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            comments += 1
        elif char == ")" and comments:
            comments -= 1
        elif comments:
            pass
        elif char == "<":
            angle += 1
        elif char == ">" and angle:
            angle -= 1
        elif char == "," and not angle:
            mailboxes.append(value[start:index])
            start = index + 1
        index += 1
    mailboxes.append(value[start:])
    return [mailbox.strip() for mailbox in mailboxes if mailbox.strip()]


def _bounded_addresses(value):
    """At most MAX_ADDRESSES mailboxes of MAX_MAILBOX_LENGTH characters at most, within
    MAX_HEADER_LENGTH: a longer mailbox keeps its angle-addr, or is dropped."""
    kept, length = [], 0
    for mailbox in split_addresses(value):
        if len(mailbox) > MAX_MAILBOX_LENGTH:
            start = mailbox.rfind("<")
            end = mailbox.find(">", start)
            mailbox = mailbox[start : end + 1] if 0 <= start < end <= start + 256 else ""
        if not mailbox:
            continue
        length += len(mailbox) + 2
        if len(kept) >= MAX_ADDRESSES or length > MAX_HEADER_LENGTH:
            break
        kept.append(mailbox)
    return ", ".join(kept)


def _needs_bound(key, value):
    """Whether the value of header ``key`` (lowercase) is too long for the parser."""
    if key in UNBOUNDED_HEADERS:
        return False
    if key in ADDRESS_HEADERS:
        return len(value) > MAX_HEADER_LENGTH or value.count(",") >= MAX_ADDRESSES
    if len(value) <= MAX_HEADER_LENGTH:
        return False
    # plain text is read in linear time: bounded only when very long
    return key in ("references", "in-reply-to") or "=?" in value or len(value) > MAX_TEXT_LENGTH


def _bounded_value(key, value):
    """``value`` of header ``key`` (lowercase), bounded for the parser."""
    if key in ADDRESS_HEADERS:
        return _bounded_addresses(value)
    if key in ("references", "in-reply-to"):
        ids = [word for word in value.split() if word.startswith("<")]
        return " ".join(ids[-MAX_REFERENCES:])
    # anything else is read as text: decoded here, in linear time, and cut
    return decode_header_value(value)[:MAX_HEADER_LENGTH]


def bound_headers(part, repairs):
    """Bound, in place, the header values of ``part`` that Python's parser would take
    too long to read (see MAX_HEADER_LENGTH); their order is kept."""
    long_values = {}
    for name, value in part.raw_items():
        if _needs_bound(name.lower(), value):
            long_values.setdefault(name.lower(), name)
    for key, name in long_values.items():
        values = [value for header, value in part.raw_items() if header.lower() == key]
        new_values = [
            _bounded_value(key, value) if _needs_bound(key, value) else value for value in values
        ]
        if new_values == values:
            continue
        if len(values) == 1:
            part.replace_header(name, new_values[0])
        else:
            del part[name]
            for value in new_values:
                with contextlib.suppress(ValueError):  # a second From, Date...: dropped
                    part[name] = value
        repairs.append(f"header {name} bounded")


def _repair_headers(part, repairs):
    broken, date = {}, None
    for name, value in part.raw_items():
        key = name.lower()
        if key not in PARSED_HEADERS:
            continue
        header = _read_header(part.policy, name, value)
        if header is None:
            broken.setdefault(key, name)
        elif key == "date" and date is None:
            date = header
    for key, name in broken.items():
        values = [value for header, value in part.raw_items() if header.lower() == key]
        del part[name]
        for value in values:
            if _read_header(part.policy, name, value) is None:
                value = _repaired_header(part.policy, name, value)
            if value is not None:
                with contextlib.suppress(ValueError):  # a second From, Date...: dropped
                    part[name] = value
        repairs.append(f"header {name}")
    if "date" in broken:
        date = part.get("Date")
    if date is not None:
        _repair_date(part, date, repairs)


def _repair_date(part, header, repairs):
    """A Date Odoo reads as a year before 1000 (``Mon, 2 Apr 101``) fails when stored:
    read a three-digit year as RFC 5322 section 4.3 says (+1900), else drop the date
    (Odoo then takes the time of reception, as for any unreadable date).

    Odoo reads the header's text (the parser's rendering of the date it understood)
    with dateutil's fuzzy parser; dateutil is asked only when the strict parser did not
    understand the date."""
    moment = getattr(header, "datetime", None)
    if moment is None:
        try:
            with warnings.catch_warnings():  # unknown time zone names: Odoo warns itself
                warnings.simplefilter("ignore")
                moment = date_parser.parse(str(header), fuzzy=True)
        except Exception:  # Odoo catches any error of this parse itself
            return
    if moment.year >= 1000:
        return
    del part["Date"]
    with contextlib.suppress(ValueError, OverflowError):  # no such day in that year
        part["Date"] = format_datetime(moment.replace(year=moment.year + 1900))
    repairs.append("header Date")


def _retype(part, content_type, repairs, why, charset=None):
    """Rewrite the Content-Type header (set_param cannot replace an empty value)."""
    dropped = {"boundary", "charset"} if charset else {"boundary"}
    params = [
        (key, value)
        for key, value in (part.get_params(failobj=[]) or [])[1:]
        if key.lower() not in dropped
    ]
    del part["Content-Type"]
    part["Content-Type"] = content_type
    for key, value in params:
        part.set_param(key, value)
    if charset:
        part.set_param("charset", charset)
    repairs.append(why)


def _repair_part(part, repairs):
    maintype = part.get_content_maintype()
    if maintype not in READABLE_MAINTYPES:
        _retype(part, "application/octet-stream", repairs, f"type {part.get_content_type()}")
        return
    if maintype in {"multipart", "message"} and not part.is_multipart():
        # no boundary, or a message/rfc822 that is no message: its text is all there is
        _retype(part, "text/plain", repairs, f"unreadable {part.get_content_type()}")
        maintype = "text"
    if maintype != "text":
        return
    charset = part.get_param("charset")  # RFC 2231 decoded by the policy: a str
    if charset is None:
        # Odoo reads text without charset as UTF-8: only 8-bit text that is not needs help
        data = part.get_payload(decode=True) or b""
        if data.isascii():
            return
        codec = _detect(data)
    elif _usable(str(charset)):
        return
    else:  # unknown, misspelled, or empty
        codec = _charset_from_name(str(charset)) or _detect(part.get_payload(decode=True) or b"")
    why = f"charset {'none' if charset is None else repr(charset)} as {codec}"
    _retype(part, part.get_content_type(), repairs, why, charset=codec)


def repair_message(message):
    """Repair ``message`` (an :class:`email.message.EmailMessage`) in place so that
    Odoo's gateway can read every value of it; return what was repaired (a list of
    short descriptions, empty for a well-formed mail)."""
    repairs = []
    for part in message.walk():
        bound_headers(part, repairs)
        _repair_headers(part, repairs)
        _repair_part(part, repairs)
    return repairs


class ReadOncePolicy(EmailPolicy):
    """Python's ``email.policy.SMTP``, parsing each header of a message once.

    Python's ``email`` parses a header anew each time it is read
    (``EmailPolicy.header_fetch_parse``), and the gateway reads the same headers over
    and over: the content type of a part some ten times while a mail is parsed, the
    addresses several times each. This policy keeps, per message (``parsed``), what it
    parsed and returns it when the same header is read again. Parsed headers are
    immutable: the values read are the same, and the message is written back as it was
    received (nothing is stored refolded). Memory: one parsed header per distinct
    header read, as many as the mail has.
    """

    #: ``{(name, value): header}`` of one message; None (the class's) keeps nothing
    parsed = None

    def header_fetch_parse(self, name, value):
        if self.parsed is None or hasattr(value, "name"):
            return super().header_fetch_parse(name, value)
        key = (name, value)
        header = self.parsed.get(key)
        if header is None:
            header = self.parsed[key] = super().header_fetch_parse(name, value)
        return header


def read_once_policy(policy=SMTP):
    """A :class:`ReadOncePolicy` for one message, with the settings of ``policy``
    (``email.policy.SMTP``, which Odoo's gateway parses mail with)."""
    # a policy's settings are its instance's attributes (as EmailPolicy.clone copies)
    settings = {**vars(policy), "header_factory": policy.header_factory}
    return ReadOncePolicy(**settings, parsed={})


def read_headers_once(message):
    """Make ``message`` and its parts, parsed with an ``email.policy`` policy, read each
    of their headers once (:class:`ReadOncePolicy`, with the same settings); a message
    parsed with it, or with the legacy ``compat32`` policy, is left as it is."""
    policy = message.policy
    if isinstance(policy, ReadOncePolicy) or not isinstance(policy, EmailPolicy):
        return
    read_once = read_once_policy(policy)
    for part in message.walk():
        if part.policy is policy:
            part.policy = read_once
