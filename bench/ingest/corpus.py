"""The mails of the benchmark: seeded, so every product gets the same bytes.

Two thirds new mails (German or English after the sender, plain text, text + HTML or
HTML only, one in seven with a Cc), a third replies to an earlier new mail of the same
customer: half threaded by ``In-Reply-To``/``References``, half naming the ticket only in
the subject (``Re: [TICKET-012] ...``, no threading headers). About one mail in twenty
carries a 200 KB attachment.

Subject replies name the ticket number mail_ticket gives the n-th new mail
(``first_number + n``), so they only make sense for mail_ticket: helpdesk_mgmt has no
subject routing and gets the new mails and the header replies only.

``mix=True`` makes the realistic mix: the same kinds of mail, but half of the distinct
senders have a portal account (``portal_users``, created in the database first; every
other sender among the known customers and among the others, so that portal users,
known partners and strangers all write), about one mail in five is copied (Cc) to one
or two known contacts (partners in the database) instead of one in seven to strangers,
and about one in twenty is written by a machine: out-of-office replies (``Auto-Submitted:
auto-replied``, threaded to the ticket by ``References`` as replies to the support's
acknowledgement are) and bounces from MAILER-DAEMON (``multipart/report`` with a delivery
status, about a mail no database knows). The mix's choices come from a second generator
seeded from ``seed``: deterministic too.
"""

import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

SUPPORT_ADDRESS = "support@example.com"
ATTACHMENT_SIZE = 200 * 1024
NUMBER_FORMAT = "TICKET-{:03d}"

FIRST_NAMES = [
    "Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hannes", "Ines", "Jonas",
    "Katrin", "Lukas", "Mara", "Nico", "Olga", "Paul", "Rosa", "Samir", "Tina", "Uwe",
    "Vera", "Wim", "Yara", "Zoe", "Marc",
]  # fmt: skip
LAST_NAMES = [
    "Schmidt", "Meyer", "Dubois", "Rossi", "Nowak", "Jansen", "Keller", "Lehmann",
    "Martin", "Bauer", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Klein",
]  # fmt: skip
COMPANIES = [
    "agrolait", "azure-interior", "deco-addict", "gemini-furniture", "lumber-inc",
    "ready-mat", "wood-corner", "jackson-group", "the-jackson", "acme-logistics",
]  # fmt: skip
SUBJECTS = [
    "Drucker druckt nur leere Seiten",
    "Invoice {n} shows the wrong VAT rate",
    "Login to the portal fails since this morning",
    "Lieferung {n} unvollständig",
    "Cannot download my order confirmation",
    "Password reset mail never arrives",
    "Rechnung {n}: falsche Lieferadresse",
    "Question about the maintenance contract",
    "Scanner in building B is offline",
    "Bitte Zugang für neue Mitarbeiterin einrichten",
    "Wrong item delivered with order {n}",
    "VPN disconnects every ten minutes",
    "Export to CSV breaks umlauts",
    "Rückruf erbeten wegen Angebot {n}",
]
SENTENCES = [
    "Since yesterday afternoon the problem occurs on every workstation in our office.",
    "Seit gestern Nachmittag tritt das Problem an jedem Arbeitsplatz in unserem Büro auf.",
    "We already restarted the device twice and checked the cables, without any change.",
    "Wir haben das Gerät bereits zweimal neu gestartet und die Kabel geprüft.",
    "The error message reads: 'Connection reset by peer (code 104)'.",
    "Could you please have a look at it today, our month-end closing depends on it?",
    "Könnten Sie sich das bitte heute noch ansehen? Der Monatsabschluss hängt davon ab.",
    "Attached you will find a screenshot and the last page of the log file.",
    "Our contract number is 4711-2025 and the affected site is Hamburg-Altona.",
    "The colleague who usually handles this is on holiday until next Monday.",
    "Please call me back on +49 40 1234567 between 9:00 and 12:00.",
    "It worked fine until the update that your technician installed last week.",
    "Three other users report the same behaviour on their laptops as well.",
    "We need a solution quickly because customers are waiting for their documents.",
    "Vielen Dank im Voraus für Ihre schnelle Unterstützung in dieser Sache.",
    "Thank you in advance, and sorry for bothering you with this again.",
]
REPLY_SENTENCES = [
    "Thanks for the quick answer, unfortunately the problem is still there.",
    "Danke für die Rückmeldung, leider besteht das Problem weiterhin.",
    "I tried what you suggested; it helped for an hour, then it started again.",
    "Here is the additional information you asked for.",
    "Any news on this? We are still blocked.",
    "Kurze Nachfrage: gibt es schon einen Termin für den Techniker?",
]


GERMAN_SUBJECTS = [s for s in SUBJECTS if any(c in s for c in "äöüß") or s.split()[0] in {
    "Drucker", "Lieferung", "Rechnung", "Bitte", "Rückruf"}]  # fmt: skip
ENGLISH_SUBJECTS = [s for s in SUBJECTS if s not in GERMAN_SUBJECTS]
GERMAN_SENTENCES = [
    s for s in SENTENCES if any(w in s for w in ("Seit", "Wir ", "Könnten", "Vielen"))
]
ENGLISH_SENTENCES = [s for s in SENTENCES if s not in GERMAN_SENTENCES]


def _paragraphs(rng, pool, size):
    paragraphs, length = [], 0
    while length < size:
        paragraph = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 5)))
        paragraphs.append(paragraph)
        length += len(paragraph) + 2
    return paragraphs


def _compose(rng, person, subject, paragraphs, message_id, date, cc=None, thread=None, blob=None):
    msg = EmailMessage()
    msg["From"] = f'"{person["name"]}" <{person["email"]}>'
    msg["To"] = SUPPORT_ADDRESS
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if thread:
        msg["In-Reply-To"] = thread[-1]
        msg["References"] = " ".join(thread[-8:])
    msg["X-Mailer"] = "bench/ingest"
    text = "\n\n".join(paragraphs) + f"\n\n-- \n{person['name']}\n"
    html = (
        '<html><body><div style="font-family:Arial">'
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + f"<p>--<br/>{person['name']}</p></div></body></html>"
    )
    shape = rng.random()
    if shape < 0.4:  # plain text
        msg.set_content(text)
    elif shape < 0.8:  # text and HTML
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    else:  # HTML only
        msg.set_content(html, subtype="html")
    if blob:
        msg.add_attachment(
            blob[1], maintype="application", subtype="octet-stream", filename=blob[0]
        )
    return msg.as_bytes(policy=SMTP)


AUTO_REPLY_SHARE = 0.03  # of the mix: out-of-office replies
BOUNCE_SHARE = 0.02  # of the mix: delivery status notifications
CC_SHARE = 0.2  # of the mix's customer mails: copied to known contacts
OUT_OF_OFFICE = {
    True: (
        "Automatische Antwort: ",
        "Vielen Dank für Ihre Nachricht. Ich bin bis zum {day}. März nicht im Büro und "
        "habe keinen Zugriff auf meine E-Mails. In dringenden Fällen wenden Sie sich bitte "
        "an zentrale@{domain}.",
    ),
    False: (
        "Automatic reply: ",
        "Thank you for your message. I am out of the office until March {day} with no "
        "access to my mail. For urgent matters please contact office@{domain}.",
    ),
}


def _auto_reply(rng, person, thread, message_id, date, support_id):
    """An out-of-office reply to the acknowledgement ``support_id`` of ``thread``'s
    ticket: threaded by References to the customer's first mail, as mail clients do."""
    prefix, text = OUT_OF_OFFICE[person["german"]]
    msg = EmailMessage()
    msg["From"] = f'"{person["name"]}" <{person["email"]}>'
    msg["To"] = SUPPORT_ADDRESS
    msg["Subject"] = prefix + thread[1]
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = support_id
    msg["References"] = f"{thread[2][0]} {support_id}"
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    domain = person["email"].partition("@")[2]
    msg.set_content(text.format(day=rng.randint(10, 28), domain=domain) + "\n")
    return msg.as_bytes(policy=SMTP)


def _bounce(rng, token, index, message_id, date):
    """A delivery status notification (RFC 3464) from MAILER-DAEMON about a mail whose
    Message-ID no database knows (it replies to nothing known)."""
    company = rng.choice(COMPANIES)
    mta = f"mx.{company}-{token}.example.com"
    recipient = f"former.employee{index}@{company}-{token}.example.com"
    lost = f"<lost.{index:05d}.{rng.getrandbits(32):08x}@{SUPPORT_ADDRESS.partition('@')[2]}>"
    boundary = f"bench-dsn-{rng.getrandbits(48):012x}"
    when = format_datetime(date)
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{mta}>",
        f"To: {SUPPORT_ADDRESS}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {when}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f' boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is the mail system at host {mta}.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients.",
        "",
        f"<{recipient}>: host {mta} said: 550 5.1.1 <{recipient}>:",
        "    Recipient address rejected: User unknown in virtual mailbox table",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {mta}",
        f"Arrival-Date: {when}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        "Status: 5.1.1",
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected",
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
        f"From: Support <{SUPPORT_ADDRESS}>",
        f"To: {recipient}",
        "Subject: Re: your request",
        f"Message-ID: {lost}",
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def build(count, seed=42, token="b", first_number=1, mix=False):
    """``count`` mails in delivery order, as dicts: ``kind`` (new, reply, subject_reply,
    and in the mix auto_reply, bounce), ``raw`` (bytes), ``message_id``, ``parent`` (index
    of the new mail a reply answers), ``number`` (the ticket number a new mail gets in
    mail_ticket, or a reply names), ``sender`` (index of the customer, None for a bounce),
    ``cc`` (how many addresses it is copied to)."""
    rng = random.Random(seed)
    mix_rng = random.Random(seed * 7919 + 3) if mix else None
    people = []
    for index in range(50):
        first, last = FIRST_NAMES[index % 25], LAST_NAMES[(index * 7) % 16]
        company = COMPANIES[index % len(COMPANIES)]
        people.append(
            {
                "name": f"{first} {last}",
                "email": f"{first}.{last}@{company}-{token}.example.com".lower(),
                "known": index % 2 == 0,
                "german": index % 3 == 0,
            }
        )
    colleagues = [f"team{i}@{COMPANIES[i]}-{token}.example.com" for i in range(10)]
    # the mix's known contacts: partners in the database that customers copy
    contacts = [
        {
            "name": f"{FIRST_NAMES[(i * 3 + 1) % 25]} {LAST_NAMES[(i * 5 + 2) % 16]}",
            "email": f"contact{i}@{COMPANIES[i]}-{token}.example.com",
        }
        for i in range(10)
    ]
    date = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    mails, threads = [], []  # [sender, subject, [message ids], mail index, number]
    reply_turn = 0
    for index in range(count):
        date += timedelta(seconds=rng.randint(20, 400))
        message_id = f"<{token}.{index:05d}.{rng.getrandbits(32):08x}@mail.example.com>"
        cc = None
        if mix:
            machine = mix_rng.random()
            if machine < AUTO_REPLY_SHARE + BOUNCE_SHARE and threads:
                if machine < AUTO_REPLY_SHARE:
                    thread = mix_rng.choice(threads[-60:])
                    support_id = f"<ack.{thread[3]:05d}.{token}@support.example.com>"
                    raw = _auto_reply(
                        mix_rng, people[thread[0]], thread, message_id, date, support_id
                    )
                    kind, parent, number, sender = "auto_reply", thread[3], thread[4], thread[0]
                else:
                    raw = _bounce(mix_rng, token, index, message_id, date)
                    kind, parent, number, sender = "bounce", None, None, None
                mails.append(
                    {
                        "kind": kind,
                        "raw": raw,
                        "message_id": message_id,
                        "parent": parent,
                        "number": number,
                        "sender": sender,
                        "cc": 0,
                    }
                )
                continue
            if mix_rng.random() < CC_SHARE:
                cc = [
                    f'"{c["name"]}" <{c["email"]}>'
                    for c in mix_rng.sample(contacts, mix_rng.choice((1, 1, 2)))
                ]
        blob = None
        if rng.random() < 1 / 20:
            blob = (f"diagnostics-{index}.bin", rng.randbytes(ATTACHMENT_SIZE))
        if index % 3 == 2 and threads:
            thread = rng.choice(threads[-60:])
            person = people[thread[0]]
            paragraphs = _paragraphs(rng, REPLY_SENTENCES, rng.randint(400, 1200))
            paragraphs += [f"> {p}" for p in _paragraphs(rng, SENTENCES, rng.randint(700, 2200))]
            by_subject = reply_turn % 2 == 1
            reply_turn += 1
            reply_cc = cc if mix else None
            if by_subject:
                subject = f"Re: [{thread[4]}] {thread[1]}"
                raw = _compose(
                    rng, person, subject, paragraphs, message_id, date, reply_cc, blob=blob
                )
            else:
                prefix = rng.choice(["Re: ", "RE: ", "AW: "])
                raw = _compose(
                    rng, person, prefix + thread[1], paragraphs, message_id, date, reply_cc,
                    thread=thread[2], blob=blob,
                )  # fmt: skip
                thread[2].append(message_id)
            mails.append(
                {
                    "kind": "subject_reply" if by_subject else "reply",
                    "raw": raw,
                    "message_id": message_id,
                    "parent": thread[3],
                    "number": thread[4],
                    "sender": thread[0],
                    "cc": len(reply_cc or ()),
                }
            )
        else:
            sender = rng.randrange(len(people))
            person = people[sender]
            subjects = GERMAN_SUBJECTS if person["german"] else ENGLISH_SUBJECTS
            sentences = GERMAN_SENTENCES if person["german"] else ENGLISH_SENTENCES
            subject = rng.choice(subjects).format(n=rng.randint(10000, 99999))
            paragraphs = _paragraphs(rng, sentences, rng.randint(1100, 3500))
            stranger = [rng.choice(colleagues)] if rng.random() < 1 / 7 else None
            if not mix:
                cc = stranger
            raw = _compose(rng, person, subject, paragraphs, message_id, date, cc, None, blob)
            number = NUMBER_FORMAT.format(first_number + len(threads))
            mails.append(
                {
                    "kind": "new",
                    "raw": raw,
                    "message_id": message_id,
                    "parent": None,
                    "number": number,
                    "sender": sender,
                    "cc": len(cc or ()),
                }
            )
            threads.append([sender, subject, [message_id], index, number])
    portal = set()
    if mix:  # every other distinct sender among the known and among the others
        senders = sorted({m["sender"] for m in mails if m["sender"] is not None})
        for known in (True, False):
            portal.update([i for i in senders if people[i]["known"] is known][::2])
    known = [
        {"name": p["name"], "email": p["email"]}
        for index, p in enumerate(people)
        if p["known"] and index not in portal
    ]
    return {
        "mails": mails,
        "known_partners": known + (contacts if mix else []),
        "portal_users": [
            {"name": people[i]["name"], "email": people[i]["email"]} for i in sorted(portal)
        ],
    }


def split(corpus):
    """(mails both products get, mail_ticket's subject replies) in delivery order."""
    common = [m for m in corpus["mails"] if m["kind"] != "subject_reply"]
    subject = [m for m in corpus["mails"] if m["kind"] == "subject_reply"]
    return common, subject


KINDS = ("new", "reply", "subject_reply", "auto_reply", "bounce")


def describe(corpus):
    mails = corpus["mails"]
    sizes = sorted(len(m["raw"]) for m in mails)
    kinds = {k: sum(1 for m in mails if m["kind"] == k) for k in KINDS}
    return {
        **kinds,
        "total": len(mails),
        "senders": len({m["sender"] for m in mails if m["sender"] is not None}),
        "portal_users": len(corpus.get("portal_users", ())),
        "known_partners": len(corpus["known_partners"]),
        "with_cc": sum(1 for m in mails if m.get("cc")),
        "with_attachment": sum(1 for s in sizes if s > ATTACHMENT_SIZE),
        "median_bytes": sizes[len(sizes) // 2] if sizes else 0,
        "total_bytes": sum(sizes),
    }
