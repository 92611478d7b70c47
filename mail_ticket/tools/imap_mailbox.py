"""UID-based access to one IMAP folder, on top of the connection fetchmail opens.

Stock fetchmail reads ``SEARCH UNSEEN`` with message sequence numbers: a mail that a
person already read is never fetched, and ``FETCH (RFC822)`` marks mail read before it
is processed. This wrapper addresses mail by UID only, reads it with ``BODY.PEEK[]``
(flags untouched) and sends every command for a whole set of UIDs at once.

An idle mailbox costs one round trip: ``STATUS folder (UIDNEXT UIDVALIDITY)`` tells,
without selecting the folder, whether a mail arrived above the last UID read
(RFC 3501 6.3.10: UIDNEXT only grows while UIDVALIDITY stays).
"""

import base64
import imaplib
import re

_FETCH_UID_RE = re.compile(rb"\bUID (\d+)")
_FETCH_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_STATUS_ITEM_RE = re.compile(rb"\b(UIDNEXT|UIDVALIDITY) (\d+)", re.IGNORECASE)


class ImapMailboxError(imaplib.IMAP4.error):
    """The IMAP server refused a command."""


def imap_utf7_encode(name):
    """Encode a folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3)."""
    result, pending = [], []

    def flush():
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            result.append(
                "&" + base64.b64encode(utf16).decode().rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            result.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(result)


def quote_folder(name):
    encoded = imap_utf7_encode(name)
    return '"{}"'.format(encoded.replace("\\", "\\\\").replace('"', '\\"'))


def uid_set(uids):
    """Compact IMAP sequence set for sorted UIDs: ``1:3,7,9:10``."""
    ranges, start, prev = [], None, None
    for uid in sorted(uids):
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            ranges.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


def parse_fetch(data, uids=None):
    """Map UID -> (attributes, literal or None) from an imaplib FETCH answer.

    imaplib gives a response with a literal as ``(head, literal)`` followed by its
    trailer (``b")"``, or ``b" UID 12)"`` when the server names the UID after the
    body), and a response without one as bytes. Each literal is keyed to the UID of its
    own response; the attributes of all the responses of a UID are joined. A response a
    server sends besides the ones asked for (another client marking a mail read while we
    fetch: ``* 5 FETCH (UID 12 FLAGS (\\Seen))``) never replaces a body already read,
    and a UID that was not asked for (``uids``, when given) is left out.
    """
    responses, current = [], None
    for item in data or ():
        if isinstance(item, tuple):
            if current is not None:
                responses.append(current)
            current = (item[0], item[1])
        elif isinstance(item, bytes):
            if current is not None:  # the trailer of the response of the literal
                responses.append((current[0] + item, current[1]))
                current = None
            else:
                responses.append((item, None))
    if current is not None:
        responses.append(current)
    result = {}
    for head, literal in responses:
        match = _FETCH_UID_RE.search(head)
        if not match:
            continue
        uid = int(match.group(1))
        if uids is not None and uid not in uids:
            continue
        known_head, known_literal = result.get(uid, (b"", None))
        result[uid] = (
            known_head + b" " + head if known_head else head,
            known_literal if known_literal is not None else literal,
        )
    return result


class ImapMailbox:
    """One selected folder of an authenticated ``imaplib.IMAP4`` connection."""

    def __init__(self, connection, folder="INBOX"):
        self.connection = connection
        self.folder = folder or "INBOX"
        self.uidvalidity = None

    def _check(self, response, what):
        typ, data = response
        if typ != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise ImapMailboxError(f"{what}: {typ} {detail}".strip())
        return data

    @property
    def capabilities(self):
        return {cap.upper() for cap in self.connection.capabilities}

    def authenticated_capabilities(self):
        """The capabilities announced after login (RFC 3501 6.1.1: they may differ from
        the greeting's, which imaplib keeps)."""
        data = self._check(self.connection.capability(), "CAPABILITY")
        return {
            cap.upper()
            for line in data
            if isinstance(line, bytes)
            for cap in line.decode(errors="replace").split()
        }

    def status(self):
        """``(uidvalidity, uidnext)`` of the folder, without selecting it."""
        data = self._check(
            self.connection.status(quote_folder(self.folder), "(UIDNEXT UIDVALIDITY)"),
            f'cannot read the status of folder "{self.folder}"',
        )
        items = {
            name.upper(): int(value)
            for line in data
            if isinstance(line, bytes)
            # the items follow the (quoted) folder name: '"INBOX" (UIDNEXT 5 UIDVALIDITY 7)'
            for name, value in _STATUS_ITEM_RE.findall(line[line.rfind(b"(") :])
        }
        if b"UIDVALIDITY" not in items or b"UIDNEXT" not in items:
            raise ImapMailboxError(f'folder "{self.folder}" announces no UIDNEXT or UIDVALIDITY')
        return items[b"UIDVALIDITY"], items[b"UIDNEXT"]

    def select(self):
        """Select the folder read-write and return its UIDVALIDITY."""
        self._check(
            self.connection.select(quote_folder(self.folder)),
            f'cannot open folder "{self.folder}"',
        )
        # imaplib files the "[UIDVALIDITY n]" response code under its own name
        raw = next(filter(None, self.connection.response("UIDVALIDITY")[1]), None)
        if raw is None:
            raise ImapMailboxError(f'folder "{self.folder}" announces no UIDVALIDITY')
        self.uidvalidity = int(raw)
        return self.uidvalidity

    def search_after(self, last_uid):
        """UIDs above ``last_uid``, oldest first."""
        data = self._check(
            self.connection.uid("SEARCH", None, f"UID {last_uid + 1}:*"), "UID SEARCH"
        )
        uids = [int(uid) for uid in b" ".join(d for d in data if d).split()]
        # "n:*" always matches the highest UID, even when it is below n
        return sorted(uid for uid in uids if uid > last_uid)

    def existing(self, uids):
        """Those of ``uids`` that are still in the folder, sorted."""
        if not uids:
            return []
        data = self._check(
            self.connection.uid("SEARCH", None, f"UID {uid_set(uids)}"), "UID SEARCH"
        )
        wanted = set(uids)
        return sorted(
            uid
            for uid in (int(uid) for uid in b" ".join(d for d in data if d).split())
            if uid in wanted
        )

    def sizes(self, uids):
        """Map UID -> RFC822.SIZE, for every UID that still exists."""
        if not uids:
            return {}
        data = self._check(
            self.connection.uid("FETCH", uid_set(uids), "(UID RFC822.SIZE)"), "UID FETCH size"
        )
        sizes = {}
        for uid, (head, _literal) in parse_fetch(data, set(uids)).items():
            match = _FETCH_SIZE_RE.search(head)
            if match:
                sizes[uid] = int(match.group(1))
        return sizes

    def fetch(self, uids, max_bytes=None):
        """Map UID -> raw source, read with BODY.PEEK[] so no flag changes.

        :param max_bytes: read at most that many bytes plus one of each mail
            (``BODY.PEEK[]<0.n>``): a mail whose size the server did not tell is never
            read whole into memory when it is over the limit; a source longer than
            ``max_bytes`` is cut and tells so by its length
        """
        if not uids:
            return {}
        item = "BODY.PEEK[]" if max_bytes is None else f"BODY.PEEK[]<0.{max_bytes + 1}>"
        data = self._check(
            self.connection.uid("FETCH", uid_set(uids), f"(UID {item})"), "UID FETCH body"
        )
        return {
            uid: literal
            for uid, (_head, literal) in parse_fetch(data, set(uids)).items()
            if literal is not None
        }

    def mark_seen(self, uids):
        if uids:
            self._check(
                self.connection.uid("STORE", uid_set(uids), "+FLAGS.SILENT", r"(\Seen)"),
                "UID STORE \\Seen",
            )

    def ensure_folder(self, folder):
        typ, data = self.connection.create(quote_folder(folder))
        if typ != "OK" and not any(b"ALREADYEXISTS" in d.upper() for d in data if d):
            # servers without the ALREADYEXISTS code: accept the folder if it is listed
            typ, listed = self.connection.list('""', quote_folder(folder))
            if typ != "OK" or not any(listed):
                detail = b" ".join(d for d in data if d).decode(errors="replace")
                raise ImapMailboxError(f'cannot create folder "{folder}": {detail}')

    def move(self, uids, folder):
        if not uids:
            return
        self.ensure_folder(folder)
        if "MOVE" in self.capabilities:
            self._check(
                self.connection.uid("MOVE", uid_set(uids), quote_folder(folder)), "UID MOVE"
            )
        else:
            self._check(
                self.connection.uid("COPY", uid_set(uids), quote_folder(folder)), "UID COPY"
            )
            self.delete(uids)

    def delete(self, uids):
        if not uids:
            return
        self._check(
            self.connection.uid("STORE", uid_set(uids), "+FLAGS.SILENT", r"(\Deleted)"),
            "UID STORE \\Deleted",
        )
        if "UIDPLUS" in self.capabilities:
            # expunge only our mail, not what a person flagged deleted
            self._check(self.connection.uid("EXPUNGE", uid_set(uids)), "UID EXPUNGE")
        else:
            self._check(self.connection.expunge(), "EXPUNGE")
