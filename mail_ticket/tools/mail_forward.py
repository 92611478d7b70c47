"""The customer's mail inside an agent's forward.

An agent who got a customer's mail personally forwards it to the support mailbox, from
their own mail client: either attached (``message/rfc822``, "forward as attachment") or
inline, below a block that the client writes in the agent's language. The inline
blocks of the common clients, in English and German:

Gmail::

    ---------- Forwarded message ---------          (---------- Weitergeleitete Nachricht ---------)
    From: Sylvie Lelitre <sylvie@agrolait.example>   (Von:)
    Date: Fri, Aug 10, 2026 at 4:16 PM               (Date:/Datum:)
    Subject: Drucker druckt nicht                    (Subject:/Betreff:)
    To: <agnes@mycompany.example>                    (To:/An:)

Thunderbird: ``-------- Forwarded Message --------`` (``-------- Weitergeleitete
Nachricht --------``), then Subject/Betreff, Date/Datum, From/Von, To/An. Apple Mail:
``Begin forwarded message:`` (``Anfang der weitergeleiteten Nachricht:``), then From/Von,
Subject/Betreff, Date/Datum, To/An. Outlook: no title, or ``-----Original Message-----``
(``-----Ursprüngliche Nachricht-----``) or a rule of underscores, then From/Von,
Sent/Gesendet, To/An, Subject/Betreff (``From: Name [mailto:address]`` in older ones).

Nothing here decides whether a forward is honoured: that is the ticket's business
(only a verified agent's forward speaks for a customer).
"""

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from lxml import html as lxml_html

from odoo import tools

#: Lines of a forward read for its block: the block must start within the first lines,
#: and a line is matched on its first characters only (RFC 5322: 998 a line), so that the
#: forward is read in time linear in the size of the mail.
MAX_LINES = 2000
MAX_LINE_LENGTH = 998
# matched on a line made one line: quote marks, bold stars and white space around it
# stripped, white space runs made one space (see _core)
_MARKER_RE = re.compile(
    r"-{2,} ?(?:forwarded message|weitergeleitete nachricht|original message"
    r"|urspr(?:ü|ue)ngliche nachricht) ?-{2,}"
    r"|(?:begin forwarded message|anfang der weitergeleiteten nachricht) ?:"
    r"|_{10,}",
    re.IGNORECASE,
)
_HEADERS = {
    "from": "from",
    "von": "from",
    "subject": "subject",
    "betreff": "subject",
    "date": "date",
    "datum": "date",
    "sent": "date",
    "gesendet": "date",
    "to": "to",
    "an": "to",
    "cc": "cc",
    "kopie (cc)": "cc",
    "reply-to": "reply_to",
    "antwort an": "reply_to",
}
_HEADER_RE = re.compile(
    r"(?P<name>{}) ?\*{{0,2}} ?: ?\*{{0,2}} ?(?P<value>.*)".format(
        "|".join(re.escape(name) for name in sorted(_HEADERS, key=len, reverse=True))
    ),
    re.IGNORECASE,
)
_SPACES_RE = re.compile(r"\s+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_MAILTO_RE = re.compile(r"\[mailto:([^\]\s]+)\]", re.IGNORECASE)
# forward prefixes of the usual clients, chained ("WG: Fwd: ...")
_FORWARD_PREFIX_RE = re.compile(r"^\s*(?:(?:fwd?|wg|tr|weitergeleitet)\s*:\s*)+", re.IGNORECASE)
_BLOCK_TAGS = {
    "p", "div", "br", "tr", "li", "ul", "ol", "table", "blockquote", "pre", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip


@dataclass(frozen=True)
class ForwardedMail:
    """The customer's mail found in a forward.

    ``email_from``: the customer, formatted (``"Name" <address>``); ``subject``
    without forward prefixes; ``date`` (an aware datetime, or None when the client
    wrote it for humans only); ``body`` as HTML; ``note``: what the agent wrote
    above it, as plain text (empty when nothing).
    """

    email_from: str
    subject: str
    date: object
    body: str
    note: str


def strip_forward_prefixes(subject):
    return _FORWARD_PREFIX_RE.sub("", subject or "").strip()


def parse_forward(message: EmailMessage):
    """Return the :class:`ForwardedMail` inside ``message``, or None if it holds none.

    The inline block of the agent's own mail wins: an attached ``message/rfc822`` counts
    only when the mail has none (a stranger's mail that an agent forwards inline may
    carry any message attached, naming any sender)."""
    return _inline_forward(message) or _attached_forward(message)


def _attached_forward(message):
    for part in message.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if inner is None:
            return None
        email_from = _single_address(str(inner.get("From", "")))
        if not email_from:
            return None
        body_part = inner.get_body(("html", "plain"))
        body = ""
        if body_part is not None:
            body = body_part.get_content()
            if body_part.get_content_type() == "text/plain":
                body = tools.plaintext2html(body)
        return ForwardedMail(
            email_from=email_from,
            subject=strip_forward_prefixes(str(inner.get("Subject", ""))),
            date=_parse_date(str(inner.get("Date", ""))),
            body=body,
            note=_text_of(message).strip(),
        )
    return None


def _core(line):
    """A line as the patterns read it: its first characters, without the quote marks,
    bold stars and white space around it, white space runs made one space."""
    return " ".join(line[:MAX_LINE_LENGTH].strip(" \t>*\xa0").split())


def _header(line):
    """``(header, value)`` of a line of a forward's header block, or None."""
    match = _HEADER_RE.fullmatch(_core(line))
    return (_HEADERS[match["name"].lower()], match["value"].strip(" *")) if match else None


def _inline_forward(message):
    lines = _text_of(message).splitlines()
    start = _block_start(lines)
    if start is None:
        return None
    marker, index = start
    headers = {}
    while index < len(lines):
        if header := _header(lines[index]):
            headers.setdefault(*header)
            index += 1
        elif not lines[index].strip():
            # blank lines end the header block, unless a header follows them
            following = _skip_blank(lines, index + 1)
            index = following
            if following >= len(lines) or not _header(lines[following]):
                break
        else:
            break
    email_from = _single_address(headers.get("from", ""))
    if not email_from:
        return None
    body = "\n".join(_unquote(lines[index:])).strip()
    return ForwardedMail(
        email_from=email_from,
        subject=strip_forward_prefixes(headers.get("subject") or str(message.get("Subject", ""))),
        date=_parse_date(headers.get("date", "")),
        body=tools.plaintext2html(body) if body else "",
        note="\n".join(lines[:marker]).strip(),
    )


def _block_start(lines):
    """(index of the first line of the forward block, index of its first header),
    or None."""
    for index, line in enumerate(lines[:MAX_LINES]):
        core = _core(line)
        if _MARKER_RE.fullmatch(core):
            return index, _skip_blank(lines, index + 1)
        header = _header(line)
        if header and header[0] == "from":
            # Outlook without a title: From, then Sent/Date and Subject among the next lines
            following = {found[0] for found in map(_header, lines[index + 1 : index + 6]) if found}
            if {"date", "subject"} <= following:
                return index, index
    return None


def _skip_blank(lines, index):
    """The index of the first line from ``index`` on that is not blank."""
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


def _unquote(lines):
    """The lines of the forwarded mail, without the one quote level some clients add."""
    content = [line.lstrip() for line in lines if line.strip()]
    if not content or not all(line.startswith(">") for line in content):
        return lines
    unquoted = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(">"):
            stripped = stripped[1:]
            line = stripped[1:] if stripped.startswith(" ") else stripped
        unquoted.append(line)
    return unquoted


def _single_address(value):
    value = _MAILTO_RE.sub(r"<\1>", value)
    addresses = [(name, email) for name, email in getaddresses([value]) if "@" in email]
    if len(addresses) != 1:
        return False
    name, email = addresses[0]
    if not tools.email_normalize(email):
        return False
    return tools.formataddr((name.strip("\"' "), email))


def _parse_date(value):
    try:
        date = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return date if date and date.tzinfo else None


def _text_of(message):
    """The text of a mail's own body (not of the mails attached to it)."""
    part = message.get_body(("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        return html_to_text(content)
    return content


def html_to_text(html):
    """The text of an HTML body, line by line as it is shown (links as their text)."""
    if not html or not html.strip():
        return ""
    tree = lxml_html.fromstring(html)
    for element in tree.xpath("//script|//style|//head|//title"):
        element.drop_tree()
    # white space in HTML is one space (line breaks are the elements' business)
    for element in tree.iter():
        if element.text and not _in_pre(element):
            element.text = _SPACES_RE.sub(" ", element.text)
        if element.tail and not _in_pre(element.getparent()):
            element.tail = _SPACES_RE.sub(" ", element.tail)
    for element in tree.iter():
        if isinstance(element.tag, str) and element.tag in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
            if element.tag != "br":
                element.text = "\n" + (element.text or "")
    lines = tree.text_content().replace("\xa0", " ").splitlines()
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(line.strip() for line in lines))


def _in_pre(element):
    return element is not None and (
        element.tag == "pre" or next(element.iterancestors("pre"), None) is not None
    )
