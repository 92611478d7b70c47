"""Who wrote an incoming mail, read as the receiving mail server read it.

Anybody can put any address in ``From``. What the receiving MTA checked (SPF, DKIM,
DMARC) it records in an ``Authentication-Results`` header (RFC 8601), whose first token
names the host that wrote it: the authserv-id. Anybody can write such a header too, so
only the headers of the authserv-ids the administrator trusts count (a conforming MTA
removes incoming headers that claim its own id, RFC 8601 section 5).

A verdict is worth something only for the address it was given for. DMARC is evaluated
by the MTA on the ``From`` header as RFC 5322 reads it, byte for byte; Python's parser
and the repair of broken headers (:mod:`.mail_repair`) read it more leniently. So the
sender is decided here from the raw ``From`` header, before any repair, by a strict
RFC 5322 (and RFC 6532: UTF-8) reading of one mailbox; whatever that reading finds odd
(several From headers or addresses, an address or an encoded address in the display
name, a quoted local part, a header that needed repair, a trusted verdict for another
domain) makes the sender ambiguous, with the reason, and an ambiguous sender is never
verified.

Everything here runs in time linear in the size of the headers, and reads bounded
lengths: no regular expression runs on unbounded input, no pattern nests quantifiers.

Pure Python (the standard library and ``odoo.tools``' address normalization).
"""

import contextlib
import re
from dataclasses import dataclass, replace

from odoo import tools
from odoo.tools.translate import LazyTranslate

from .mail_repair import decode_header_value
from .ticket_reference import one_line

_lt = LazyTranslate(__name__)

__all__ = [
    "FromHeader",
    "MailSender",
    "check_sender",
    "dmarc_verdict",
    "parse_authentication_results",
    "read_from",
    "remember_from",
    "trusted_authserv_ids",
]

#: A From header longer than this names no sender (RFC 5322: 998 characters a line).
MAX_FROM_LENGTH = 2000
#: An Authentication-Results header longer than this cannot be read; nor more headers
#: of one trusted server than this.
MAX_AUTHRES_LENGTH = 16 * 1024
MAX_AUTHRES_HEADERS = 20
#: Nested comments deeper than this cannot be read (RFC 5322 sets no limit; mail has 1).
MAX_COMMENT_DEPTH = 8
#: An address longer than this is none (RFC 5321: 254).
MAX_ADDRESS_LENGTH = 254

_WSP = frozenset(" \t\r\n")
#: RFC 5322 specials, but the dot: dots belong to the atoms (dot-atom)
_SPECIALS = frozenset('()<>[]:;@\\,"')
_ATOM_STOPS = _SPECIALS | _WSP
#: Characters that end a word of a display name when looking for addresses in it.
_NAME_SEPARATORS = str.maketrans(dict.fromkeys("<>()[]\"',;:\t\r\n", " "))
#: Characters an unquoted authserv-id, method, result or property value may not hold.
_AUTHRES_STOPS = frozenset(' \t\r\n;()"=')
#: Where the receiving server remembers the sender of a message it read (an attribute
#: of the ``email.message.EmailMessage``, which lives as long as the mail is processed).
_FROM_ATTRIBUTE = "_mail_ticket_from_header"


@dataclass(frozen=True, eq=False)
class FromHeader:
    """The sender a ``From`` header names, read strictly.

    ``email``: the normalized address (False when the header names none that can be
    read); ``doubt``: why the header does not name exactly one sender plainly (a lazy
    translation, see ``env._``), else False.
    """

    email: str | bool = False
    doubt: str | bool = False
    ascii: bool = True  # the header as it came is ASCII (else RFC 6532 UTF-8, or broken)


@dataclass(frozen=True, eq=False)
class MailSender:
    """The sender of one incoming mail and what the trusted mail server said of it.

    ``email``: the normalized ``From`` address (False when there is none);
    ``ambiguous``: why the mail does not name one sender that a verdict can apply to
    (see :func:`read_from`, :func:`dmarc_verdict`), else False;
    ``dmarc``: the trusted DMARC result for the ``From`` domain: ``"pass"``,
    ``"fail"``, another result (``"none"``, ``"temperror"`` ...), or None when no
    trusted server wrote a verdict.
    """

    email: str | bool = False
    ambiguous: str | bool = False
    dmarc: str | None = None

    @property
    def dmarc_pass(self):
        return self.dmarc == "pass" and not self.ambiguous

    @property
    def dmarc_fail(self):
        return self.dmarc == "fail"


def trusted_authserv_ids(value):
    """The set of authserv-ids named by a comma separated setting."""
    return frozenset(
        authserv_id.strip().lower()
        for authserv_id in (value or "").split(",")
        if authserv_id.strip()
    )


# ------------------------------------------------------------
# FROM
# ------------------------------------------------------------


def _raw_values(message, name):
    """The values of header ``name`` as the mail carries them (folded, undecoded)."""
    name = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == name]


def remember_from(message, repaired=False):
    """Read the ``From`` header of ``message`` now, before anything repairs or parses
    it, and keep the reading with the message (see :func:`from_header`).

    :param repaired: the repair had to rewrite the header (Odoo reads another value
        than the one the mail carries)
    """
    reading = getattr(message, _FROM_ATTRIBUTE, None) or read_from(_raw_values(message, "From"))
    # UTF-8 (RFC 6532) that Python's parser reads as undecodable bytes is only decoded by
    # the repair, as the receiving server decodes it; anything else it had to rewrite is
    # a header the receiving server may have read otherwise
    if repaired and not reading.doubt and reading.ascii:
        reading = replace(reading, doubt=_lt("the From header could not be read as it is"))
    setattr(message, _FROM_ATTRIBUTE, reading)
    return reading


def from_header(message):
    """The :class:`FromHeader` kept by :func:`remember_from`, else read now."""
    return getattr(message, _FROM_ATTRIBUTE, None) or read_from(_raw_values(message, "From"))


def read_from(values):
    """The sender the raw ``From`` header values name (:class:`FromHeader`).

    The value is read as RFC 5322 section 3.4 (with RFC 6532's UTF-8) defines a mailbox:
    an optional display name, then an addr-spec in angle brackets, or an addr-spec
    alone; comments and folding white space anywhere between. Obsolete forms, groups,
    quoted local parts and address literals are not read: their sender is in doubt.
    """
    if len(values) != 1:
        return FromHeader(doubt=_lt("several From headers") if values else _lt("no From header"))
    value = values[0]
    if not value.isascii():
        return replace(_read_mailbox(value), ascii=False)
    return _read_mailbox(value)


def _read_mailbox(value):
    """:func:`read_from` of the one value of a ``From`` header."""
    if len(value) > MAX_FROM_LENGTH:
        return FromHeader(doubt=_lt("the From header is too long"))
    try:  # 8-bit bytes (kept as surrogates by the parser) must be UTF-8 (RFC 6532)
        text = value.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return FromHeader(doubt=_lt("the From header is not valid UTF-8"))
    try:
        mailboxes = _mailboxes(_lex(text))
    except ValueError as error:
        return FromHeader(doubt=_lt("the From header cannot be read: %(error)s", error=str(error)))
    if len(mailboxes) != 1:
        return FromHeader(
            doubt=_lt("several addresses in From") if mailboxes else _lt("no address in From")
        )
    try:
        name, address = _mailbox(mailboxes[0])
    except ValueError as error:
        return FromHeader(doubt=_lt("the From address cannot be read: %(error)s", error=str(error)))
    email = tools.email_normalize(address) if len(address) <= MAX_ADDRESS_LENGTH else False
    if not email:
        return FromHeader(doubt=_lt("the From address is not an address"))
    for candidate in _addresses_in(name):
        if candidate != email:
            return FromHeader(email=email, doubt=_lt("another address in the display name of From"))
    return FromHeader(email=email)


def _lex(text):
    """Tokens of a header value: ``(kind, text)`` with kind ``atom`` (a run of atext and
    dots), ``quoted`` (the content of a quoted string), ``literal`` (of a domain
    literal), or a special character itself; comments and white space are dropped."""
    tokens, index, length = [], 0, len(text)
    while index < length:
        char = text[index]
        if char in _WSP:
            index += 1
        elif char == "(":
            index = _skip_comment(text, index)
        elif char == '"':
            content, index = _quoted(text, index)
            tokens.append(("quoted", content))
        elif char == "[":
            end = text.find("]", index)
            if end < 0:
                raise ValueError("an unclosed [")
            tokens.append(("literal", text[index + 1 : end]))
            index = end + 1
        elif char in _SPECIALS:
            if char in ")]\\":
                raise ValueError(f"a stray {char}")
            tokens.append((char, char))
            index += 1
        else:
            start = index
            while index < length and text[index] not in _ATOM_STOPS:
                index += 1
            tokens.append(("atom", text[start:index]))
    return tokens


def _skip_comment(text, index):
    """The index after the comment that opens at ``index`` (nested, escapes allowed)."""
    depth, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
            if depth > MAX_COMMENT_DEPTH:
                raise ValueError("comments nested too deep")
        elif char == ")":
            depth -= 1
            if not depth:
                return index + 1
        index += 1
    raise ValueError("an unclosed comment")


def _quoted(text, index):
    """``(content, index after it)`` of the quoted string that opens at ``index``."""
    content, index, length = [], index + 1, len(text)
    while index < length:
        char = text[index]
        if char == "\\" and index + 1 < length:
            content.append(text[index + 1])
            index += 2
        elif char == '"':
            return "".join(content), index + 1
        else:
            content.append(char)
            index += 1
    raise ValueError("an unclosed quoted string")


def _mailboxes(tokens):
    """The tokens of each mailbox of a mailbox-list (empty ones dropped)."""
    if any(kind in (":", ";") for kind, __ in tokens):
        raise ValueError("a group of addresses")
    mailboxes, current, in_angle = [], [], False
    for token in tokens:
        if token[0] == "<":
            in_angle = True
        elif token[0] == ">":
            in_angle = False
        if token[0] == "," and not in_angle:
            if current:
                mailboxes.append(current)
            current = []
        else:
            current.append(token)
    if current:
        mailboxes.append(current)
    return mailboxes


def _mailbox(tokens):
    """``(display name, addr-spec)`` of the tokens of one mailbox."""
    kinds = [kind for kind, __ in tokens]
    if "<" in kinds:
        start = kinds.index("<")
        if kinds.count("<") != 1 or kinds.count(">") != 1 or kinds[-1] != ">":
            raise ValueError("angle brackets out of place")
        name_tokens, address_tokens = tokens[:start], tokens[start + 1 : -1]
    elif ">" in kinds:
        raise ValueError("a stray >")
    else:
        name_tokens, address_tokens = [], tokens
    if any(kind not in ("atom", "quoted") for kind, __ in name_tokens):
        raise ValueError("the display name holds special characters")
    return _display_name(name_tokens), _addr_spec(address_tokens)


def _display_name(tokens):
    """The display name as a person reads it: encoded words decoded (RFC 2047), also
    inside quoted strings, where many mail clients decode them too."""
    return " ".join(
        decode_header_value(text) if "=?" in text else text for __, text in tokens
    ).strip()


def _addr_spec(tokens):
    """``local@domain`` of the tokens of an addr-spec: dot-atoms on both sides."""
    kinds = [kind for kind, __ in tokens]
    if kinds != ["atom", "@", "atom"]:
        if kinds[:1] == ["quoted"]:
            raise ValueError("a quoted local part")
        if "literal" in kinds:
            raise ValueError("an address literal as domain")
        raise ValueError("not one local-part@domain")
    local, domain = tokens[0][1], tokens[2][1]
    if not all(local.split(".")) or not all(
        label and label[0] != "-" and label[-1] != "-" for label in domain.split(".")
    ):
        raise ValueError("an empty or malformed part")
    return f"{local}@{domain}"


def _addresses_in(name):
    """The normalized addresses a display name shows (``customer@their.example``)."""
    if "@" not in name:
        return
    for word in name.translate(_NAME_SEPARATORS).split():
        local, at, domain = word.partition("@")
        if at and local and "." in domain and len(word) <= MAX_ADDRESS_LENGTH:
            email = tools.email_normalize(word)
            if email:
                yield email


# ------------------------------------------------------------
# AUTHENTICATION-RESULTS
# ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AuthResult:
    """One result of an ``Authentication-Results`` header: ``method`` (``dmarc``),
    ``result`` (``pass``), ``properties`` (``{"header.from": "example.com"}``), all
    lowercase but the property values."""

    method: str
    result: str
    properties: dict


def parse_authentication_results(value):
    """``(authserv_id, [AuthResult])`` of a raw ``Authentication-Results`` value.

    Reads RFC 8601's grammar, and what real servers write besides it: address literals
    (``smtp.helo=[10.0.0.7]``), quoted or non-ASCII local parts
    (``smtp.mailfrom="a b"@example.com``), unknown ``key=value`` extras (Exchange's
    ``action=none``), comments anywhere. Raise ValueError when the header cannot be
    read (unclosed quotes or comments, a result without a method, too long).
    """
    if len(value) > MAX_AUTHRES_LENGTH:
        raise ValueError("too long")
    head, *statements = _authres_statements(value)
    if not head or head[0] == "=" or len(head) > 2 or (len(head) == 2 and not head[1].isdigit()):
        raise ValueError("no authserv-id [version] before the results")
    authserv_id = head[0].lower()
    results = []
    for words in statements:
        if not words or words == ["none"]:  # "none": no method was applied
            continue
        if len(words) < 3 or words[1] != "=":
            raise ValueError(f"no method=result in {' '.join(words)[:80]!r}")
        method = words[0].split("/", 1)[0].lower()
        result, properties, rest = words[2].lower(), {}, words[3:]
        while rest:
            if len(rest) < 3 or rest[1] != "=":
                raise ValueError(f"no property=value in {' '.join(rest)[:80]!r}")
            key, pvalue, rest = rest[0].lower(), rest[2], rest[3:]
            if "." in key:  # ptype.property; reason= and extras are not properties
                properties[key] = pvalue
        results.append(AuthResult(method, result, properties))
    return authserv_id, results


def _authres_statements(value):
    """The words of each ``;``-separated statement, comments dropped: a word is a run of
    characters up to white space, ``;``, ``=`` or a comment, quoted strings kept within
    it (``"a b"@example.com`` is one word); ``=`` is a word of its own."""
    statements, words, word, index, length = [], [], [], 0, len(value)

    def end_word():
        if word:
            words.append("".join(word))
            word.clear()

    while index < length:
        char = value[index]
        if char in " \t\r\n":
            end_word()
            index += 1
        elif char == "(":
            end_word()
            index = _skip_comment(value, index)
        elif char == '"':
            content, index = _quoted(value, index)
            word.append(f'"{content}"')
        elif char == "=":
            end_word()
            words.append("=")
            index += 1
        elif char == ";":
            end_word()
            statements.append(words)
            words = []
            index += 1
        elif char == ")":
            raise ValueError("a stray )")
        else:
            word.append(char)
            index += 1
    end_word()
    statements.append(words)
    return statements


def _authserv_id(value):
    """The authserv-id a raw header value starts with (lowercase), or None."""
    index, length = 0, min(len(value), 1024)
    while index < length and (value[index] in _WSP or value[index] == "("):
        if value[index] == "(":
            try:
                index = _skip_comment(value, index)
            except ValueError:
                return None
        else:
            index += 1
    start = index
    while index < length and value[index] not in _AUTHRES_STOPS:
        index += 1
    return value[start:index].lower() or None


def dmarc_verdict(values, trusted_ids, domain):
    """``(result, doubt)``: the DMARC result the trusted mail server gave for ``domain``,
    from the raw ``Authentication-Results`` values of a mail (topmost first).

    The headers of the topmost trusted authserv-id are read together (a server writes
    one per milter): ``(None, False)`` when no trusted server wrote any; ``(result,
    False)`` when they give one DMARC result for ``domain``; ``(None, reason)`` when they
    are in doubt: one of them cannot be read (never the next header down instead), they
    give no DMARC result, or give it for another domain only, or contradict each other.
    """
    if not trusted_ids:
        return None, False
    block, block_id = [], None
    for value in values:
        authserv_id = _authserv_id(value)
        if block_id is None:
            if authserv_id in trusted_ids:
                block_id = authserv_id
                block.append(value)
        elif authserv_id == block_id:
            block.append(value)
        else:
            break  # the trusted server's headers end where another server's begin
    if block_id is None:
        return None, False
    if len(block) > MAX_AUTHRES_HEADERS:
        return None, _lt(
            "%(count)s Authentication-Results headers of %(server)s",
            count=len(block),
            server=block_id,
        )
    checked, results = set(), set()
    for value in block:
        try:
            __, parsed = parse_authentication_results(value)
        except ValueError as error:
            return None, _lt(
                "an Authentication-Results header of %(server)s cannot be read (%(error)s)",
                server=block_id,
                error=str(error),
            )
        for result in parsed:
            if result.method != "dmarc":
                continue
            header_from = _domain(result.properties.get("header.from", ""))
            checked.add(header_from)
            if header_from and header_from == _domain(domain):
                results.add(result.result)
    if len(results) == 1:
        return results.pop(), False
    if results:
        return None, _lt(
            "%(server)s gave contradicting DMARC results (%(results)s)",
            server=block_id,
            results=", ".join(sorted(results)),
        )
    if checked - {""}:
        other = ", ".join(sorted(checked - {""}))
        return None, _lt(
            "%(server)s checked DMARC for another domain (%(other)s) than %(domain)s",
            server=block_id,
            other=other,
            domain=domain,
        )
    return None, _lt(
        "%(server)s gave no DMARC result for %(domain)s", server=block_id, domain=domain
    )


def _domain(value):
    """A domain as DMARC names it: lowercase, IDNA-encoded when it can be."""
    value = (value or "").strip().strip('"').lower().rstrip(".")
    if value and not value.isascii():
        with contextlib.suppress(UnicodeError):  # not a domain IDNA can encode: as it is
            value = value.encode("idna").decode("ascii")
    return value


def check_sender(message, email_from, trusted_ids):
    """A :class:`MailSender` for an incoming ``email.message.EmailMessage``.

    :param email_from: the ``From`` Odoo's gateway read (after the repair): a sender
        that reads otherwise than the raw header is ambiguous
    """
    reading = from_header(message)
    email = reading.email
    ambiguous = reading.doubt
    odoo_email = tools.email_normalize(email_from or "") or False
    if not ambiguous and odoo_email != email:
        ambiguous = _lt("the From header reads differently than the mail server read it")
    dmarc, doubt = dmarc_verdict(
        _raw_values(message, "Authentication-Results"),
        trusted_ids,
        tools.email_domain_extract(email or odoo_email or ""),
    )
    return MailSender(email=email or odoo_email, ambiguous=ambiguous or doubt, dmarc=dmarc)


# ------------------------------------------------------------
# SPAM
# ------------------------------------------------------------

#: ``X-Spamd-Result: default: True [15.10 / 15.00]`` (Rspamd): its first word after
#: the settings name says whether the mail is spam.
_RSPAMD_RESULT = re.compile(r"^\s*[\w-]+\s*:\s*(true|false)\b", re.IGNORECASE)


def spam_verdict(message, trusted_ids):
    """Why the receiving mail server says ``message`` is spam, or False.

    Only the verdict of a trusted mail server counts (a configured authserv-id): the
    headers of SpamAssassin (``X-Spam-Flag: YES``, ``X-Spam-Status: Yes, ...``) and of
    Rspamd (``X-Spam: Yes``, ``X-Spamd-Result: default: True [...]``). Without a trusted
    server the headers may be anybody's and are not read.
    """
    if not trusted_ids:
        return False
    for name in ("X-Spam-Flag", "X-Spam"):
        for value in _raw_values(message, name):
            if value.strip().lower() == "yes":
                return f"{name}: {value.strip()}"
    for value in _raw_values(message, "X-Spam-Status"):
        if value.strip().lower().startswith("yes"):
            return f"X-Spam-Status: {one_line(value.strip())[:80]}"
    for value in _raw_values(message, "X-Spamd-Result"):
        match = _RSPAMD_RESULT.match(value)
        if match and match.group(1).lower() == "true":
            return f"X-Spamd-Result: {one_line(value.strip())[:80]}"
    return False
