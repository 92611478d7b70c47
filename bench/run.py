"""Mail gateway benchmark: mail_ticket against OCA helpdesk_mgmt, mail for mail.

    python bench/run.py [--mails 300] [--reuse] [--helpdesk-path DIR] [--addons-path P]
    ./dev bench [options]          (the same, with the repository's venv and Odoo)

Installs each product into a fresh database (``bench_mail_ticket`` and
``bench_helpdesk_mgmt``, dropped first unless ``--reuse`` finds them installed), then
runs one worker process per product. Each worker loads the registry, creates the same
known customers, and feeds the same synthetic customer mails through the real gateway,
``env["mail.thread"].message_process(<model>, raw)`` with fetchmail's context, committing
after each mail as fetchmail does. Per mail it records the wall time and the SQL queries
(message_process plus the commit), and per gateway step (parse, route, create, post ...)
where those queries go. Nothing is sent: notifications are only queued (context
``mail_notify_force_send=False``) and any SMTP connection is refused and reported.

Without helpdesk_mgmt (``--helpdesk-path``, env HELPDESK_MGMT_PATH, /opt/oca-helpdesk) the
comparison is skipped and mail_ticket is measured alone. Results: a table on stdout and
bench/results/<timestamp>.json (git-ignored). See bench/README.md.
"""

import argparse
import contextlib
import functools
import importlib.util
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_ODOO_SRC = "/opt/odoo-19.0"
DEFAULT_HELPDESK_PATH = "/opt/oca-helpdesk"
DB_PREFIX = "bench_"
SUPPORT_ADDRESS = "support@example.com"

TARGETS = {
    "mail_ticket": {"module": "mail_ticket", "model": "mail.ticket"},
    "helpdesk_mgmt": {"module": "helpdesk_mgmt", "model": "helpdesk.ticket"},
}
# gateway steps whose queries and time are recorded (inclusive); (registry, method, label)
PHASES = [
    ("thread", "message_parse", "parse"),
    ("thread", "message_route", "route"),
    ("thread", "_detect_loop_sender", "loop detection"),
    ("thread", "_message_parse_post_process", "parse post-process"),
    ("thread", "_message_route_process", "route process"),
    ("model", "message_new", "  message_new"),
    ("model", "message_update", "  message_update"),
    ("model", "message_subscribe", "  message_subscribe"),
    ("model", "message_post", "  message_post"),
    ("model", "_notify_thread", "    _notify_thread"),
]
KIND_LABELS = {
    "new": "new mail -> new ticket",
    "reply": "reply by In-Reply-To",
    "subject_reply": "reply by subject [TICKET-n]",
}


def log(text):
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# synthetic mail
# ---------------------------------------------------------------------------

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


def _paragraphs(rng, pool, size):
    paragraphs, length = [], 0
    while length < size:
        paragraph = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 5)))
        paragraphs.append(paragraph)
        length += len(paragraph) + 2
    return paragraphs


def _tiny_pdf(title, lines):
    """A small valid one-page PDF with some text (1-3 KB)."""
    text = ["BT /F1 11 Tf 50 790 Td 14 TL", f"({title}) Tj"]
    text += [f"T* ({line.replace('(', '[').replace(')', ']')}) Tj" for line in lines]
    stream = ("\n".join([*text, "ET"]) + "\n").encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _compose(person, subject, paragraphs, message_id, date, cc=None, thread=None, pdf=None):
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
    msg["X-Mailer"] = "bench/run.py"
    msg.set_content("\n\n".join(paragraphs) + f"\n\n-- \n{person['name']}\n")
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    msg.add_alternative(
        f'<html><body><div style="font-family:Arial">{html}'
        f"<p>--<br/>{person['name']}</p></div></body></html>",
        subtype="html",
    )
    if pdf:
        msg.add_attachment(pdf[1], maintype="application", subtype="pdf", filename=pdf[0])
    return msg.as_bytes(policy=SMTP)


def build_corpus(total, warmup, probe, seed, token):
    """The mails both products get, as raw bytes, in processing order.

    Two thirds are new mails from 50 senders (every other one a known partner), a
    third replies threaded by In-Reply-To/References to an earlier mail of the same
    customer. About 1 in 6 mails carries a small PDF, 1 in 7 new mails a Cc.
    """
    rng = random.Random(seed)
    people = []
    for index in range(50):
        first, last = FIRST_NAMES[index % 25], LAST_NAMES[(index * 7) % 16]
        company = COMPANIES[index % len(COMPANIES)]
        people.append(
            {
                "name": f"{first} {last}",
                "email": f"{first}.{last}@{company}-{token}.example.com".lower(),
                "known": index % 2 == 0,
            }
        )
    colleagues = [
        {
            "name": f"{FIRST_NAMES[-1 - i]} {LAST_NAMES[i]}",
            "email": f"team{i}@{COMPANIES[i]}-{token}.example.com",
            "known": i % 2 == 0,
        }
        for i in range(10)
    ]
    date = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    mails, threads = [], []  # threads: [sender index, subject, [message ids], first mail index]
    for index in range(total + probe):
        date += timedelta(seconds=rng.randint(20, 400))
        message_id = f"<{token}.{index:05d}.{rng.getrandbits(32):08x}@mail.example.com>"
        pdf = None
        if rng.random() < 1 / 6:
            pdf = (
                f"screenshot-{index}.pdf",
                _tiny_pdf(f"Report {index}", _paragraphs(rng, SENTENCES, rng.randint(300, 1200))),
            )
        probe_mail = index >= total
        if (index - total) % 2 if probe_mail else index % 3 == 2 and threads:
            # probe mails: each new one is answered right away
            thread = threads[-1] if probe_mail else rng.choice(threads[-60:])
            person = people[thread[0]]
            prefix = rng.choice(["Re: ", "RE: ", "AW: "])
            paragraphs = _paragraphs(rng, REPLY_SENTENCES, rng.randint(400, 1200))
            paragraphs += [f"> {p}" for p in _paragraphs(rng, SENTENCES, rng.randint(700, 2200))]
            raw = _compose(
                person, prefix + thread[1], paragraphs, message_id, date, None, thread[2], pdf
            )
            mails.append({"kind": "reply", "raw": raw, "parent": thread[3], "sender": thread[0]})
            thread[2].append(message_id)
        else:
            sender = rng.randrange(len(people))
            subject = rng.choice(SUBJECTS).format(n=rng.randint(10000, 99999))
            paragraphs = _paragraphs(rng, SENTENCES, rng.randint(1100, 3500))
            cc = None
            if probe_mail:  # a known colleague in Cc: will anyone get mail, and how?
                cc = [rng.choice([c for c in colleagues if c["known"]])["email"]]
            elif rng.random() < 1 / 7:
                cc = [rng.choice(colleagues)["email"]]
            raw = _compose(people[sender], subject, paragraphs, message_id, date, cc, None, pdf)
            mails.append(
                {"kind": "new", "raw": raw, "parent": None, "sender": sender, "subject": subject}
            )
            threads.append([sender, subject, [message_id], index])
    for position, mail in enumerate(mails):
        mail["index"] = position
        mail["warmup"] = position < warmup
        mail["probe"] = position >= total
    return {
        "token": token,
        "people": people,
        "known_partners": [p for p in people + colleagues if p["known"]],
        "mails": mails,
        "seed": seed,
    }


def subject_reply(corpus, mail, number, index, rng):
    """A reply that only names the ticket in its subject: no threading headers."""
    person = corpus["people"][mail["sender"]]
    subject = mail["subject"]
    paragraphs = _paragraphs(rng, REPLY_SENTENCES, rng.randint(400, 1200))
    paragraphs += [f"> {p}" for p in _paragraphs(rng, SENTENCES, rng.randint(700, 2200))]
    message_id = f"<{corpus['token']}.subj{index:05d}.{rng.getrandbits(32):08x}@mail.example.com>"
    date = datetime(2026, 3, 9, 8, 0, tzinfo=UTC) + timedelta(minutes=index)
    return _compose(person, f"Re: [{number}] {subject}", paragraphs, message_id, date)


# ---------------------------------------------------------------------------
# worker: one process per product, the registry loaded as fetchmail's cron has it
# ---------------------------------------------------------------------------


class QueryRecorder:
    """Counts (and keeps the text of) every query run by this thread, on any cursor."""

    def __init__(self):
        self.count = 0
        self.queries = []
        self.keep = False

    def __call__(self, cr, query, params, start, delay):
        self.count += 1
        if self.keep:
            self.queries.append(query)

    def install(self):
        thread = threading.current_thread()
        thread.query_hooks = (*getattr(thread, "query_hooks", ()), self)


class PhaseProbe:
    """Inclusive query count, time and calls of some gateway methods, per mail."""

    def __init__(self, recorder):
        self.recorder = recorder
        self.current = defaultdict(lambda: [0, 0.0, 0])
        self.depth = Counter()

    def wrap(self, cls, name, label):
        original = getattr(cls, name, None)
        if original is None:
            return
        probe = self

        @functools.wraps(original)
        def wrapper(record, *args, **kwargs):
            probe.depth[label] += 1
            q0, t0 = probe.recorder.count, time.perf_counter()
            try:
                return original(record, *args, **kwargs)
            finally:
                probe.depth[label] -= 1
                if not probe.depth[label]:
                    acc = probe.current[label]
                    acc[0] += probe.recorder.count - q0
                    acc[1] += time.perf_counter() - t0
                    acc[2] += 1

        setattr(cls, name, wrapper)

    def take(self):
        current = {label: list(values) for label, values in self.current.items()}
        self.current.clear()
        return current


class SendGuard:
    """Refuses every SMTP connection and counts mail.mail.send() calls: nothing leaves."""

    def __init__(self):
        self.smtp_attempts = 0
        self.send_calls = 0
        self.sent_mail_ids = []

    def install_smtp(self):
        import smtplib  # noqa: PLC0415

        guard = self

        def refuse(self, *args, **kwargs):
            guard.smtp_attempts += 1
            raise OSError("bench: outgoing SMTP is disabled")

        smtplib.SMTP.connect = refuse
        smtplib.SMTP_SSL.connect = refuse

    def install_mail_mail(self, registry):
        cls = registry["mail.mail"]
        guard = self

        def send(records, *args, **kwargs):
            guard.send_calls += 1
            guard.sent_mail_ids.extend(records.ids)
            return True

        cls.send = send


def _query_kind(query):
    text = query if isinstance(query, str) else bytes(query).decode(errors="replace")
    text = " ".join(text.split())
    op = text.split(" ", 1)[0].upper()
    table = None
    if op in {"SELECT", "WITH"}:
        match = re.search(r'\bFROM\s+"?(\w+)"?', text, re.I)
    elif op == "INSERT":
        match = re.search(r'\bINTO\s+"?(\w+)"?', text, re.I)
    elif op == "UPDATE":
        match = re.search(r'^UPDATE\s+"?(\w+)"?', text, re.I)
    elif op == "DELETE":
        match = re.search(r'\bFROM\s+"?(\w+)"?', text, re.I)
    else:
        match = None
    table = match.group(1) if match else ""
    shape = re.sub(r"\b\d+\b", "N", text)
    shape = re.sub(r"'[^']*'", "'?'", shape)
    return f"{op} {table}".strip(), shape[:220]


def _percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _process(env, thread, model, mail, recorder, phases):
    """One mail through the gateway and the commit, as fetchmail does it."""
    cr = env.cr
    recorder.queries = []
    recorder.keep = True
    phases.take()
    q0, log0 = recorder.count, cr.sql_log_count
    t0 = time.perf_counter()
    error = None
    try:
        thread_id = thread.message_process(model, mail["raw"])
        t_commit, q_commit = time.perf_counter(), recorder.count
        cr.commit()
    except Exception as exc:  # fetchmail rolls back and goes on
        cr.rollback()
        thread_id, error = False, f"{type(exc).__name__}: {exc}"
        t_commit, q_commit = time.perf_counter(), recorder.count
    t1 = time.perf_counter()
    recorder.keep = False
    steps = phases.take()
    steps["commit"] = [recorder.count - q_commit, t1 - t_commit, 1]
    return {
        "thread_id": thread_id or False,
        "seconds": t1 - t0,
        "queries": recorder.count - q0,
        "cursor_queries": cr.sql_log_count - log0,
        "steps": steps,
        "query_texts": recorder.queries,
        "error": error,
    }


def _summarise(rows):
    seconds = [row["seconds"] for row in rows]
    queries = [row["queries"] for row in rows]
    if not rows:
        return {"mails": 0}
    return {
        "mails": len(rows),
        "median_ms": statistics.median(seconds) * 1000,
        "p95_ms": _percentile(seconds, 0.95) * 1000,
        "mean_ms": statistics.fmean(seconds) * 1000,
        "total_s": sum(seconds),
        "queries_mean": statistics.fmean(queries),
        "queries_median": statistics.median(queries),
        "queries_max": max(queries),
        "errors": sum(1 for row in rows if row["error"]),
    }


def _breakdowns(rows):
    steps = defaultdict(lambda: [0, 0.0, 0])
    kinds, shapes = Counter(), Counter()
    for row in rows:
        for label, (queries, seconds, calls) in row["steps"].items():
            steps[label][0] += queries
            steps[label][1] += seconds
            steps[label][2] += calls
        for query in row["query_texts"]:
            kind, shape = _query_kind(query)
            kinds[kind] += 1
            shapes[shape] += 1
    count = len(rows) or 1
    return {
        "steps": {
            label: {
                "queries_per_mail": q / count,
                "ms_per_mail": s * 1000 / count,
                "calls_per_mail": c / count,
            }
            for label, (q, s, c) in steps.items()
        },
        "query_kinds": {k: v / count for k, v in kinds.most_common(25)},
        "query_shapes": [[v / count, k] for k, v in shapes.most_common(15)],
    }


def _reply(word):
    """A line to the driver on the real stdout (Odoo logs to its log file)."""
    sys.__stdout__.write(f"@bench {word}\n")
    sys.__stdout__.flush()


def worker(args):
    """Runs in its own process: load the registry, feed the corpus, write a JSON."""
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415
    from odoo.modules.registry import Registry  # noqa: PLC0415
    from odoo.release import version  # noqa: PLC0415
    from odoo.tools import config  # noqa: PLC0415

    corpus = json.loads(Path(args.corpus).read_text())
    for mail in corpus["mails"]:
        mail["raw"] = mail["raw"].encode("latin-1")
    target = TARGETS[args.worker]
    model = target["model"]
    options = [
        "-d",
        args.db,
        f"--addons-path={args.addons_path}",
        f"--db_host={args.db_host}",
        f"--db_port={args.db_port}",
        f"--db_user={args.db_user}",
        f"--log-level={args.log_level}",
        f"--logfile={args.logfile}",
    ]
    config.parse_config(options, setup_logging=True)
    guard = SendGuard()
    guard.install_smtp()
    recorder = QueryRecorder()
    recorder.install()
    t0 = time.perf_counter()
    registry = Registry(args.db)
    load_seconds = time.perf_counter() - t0
    guard.install_mail_mail(registry)
    phases = PhaseProbe(recorder)
    for owner, name, label in PHASES:
        phases.wrap(registry["mail.thread" if owner == "thread" else model], name, label)

    out = {"target": args.worker, "db": args.db, "odoo": version, "registry_load_s": load_seconds}
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        module = env["ir.module.module"].search([("name", "=", target["module"])])
        out["module_version"] = module.latest_version
        out["module_state"] = module.state
        partners = env["res.partner"].create(
            [{"name": p["name"], "email": p["email"]} for p in corpus["known_partners"]]
        )
        out["known_partners"] = len(partners)
        cr.commit()
        cr.execute("ANALYZE")
        cr.commit()
        env.cr.execute("SELECT COALESCE(MAX(id), 0) FROM mail_mail")
        mail_mail_start = cr.fetchone()[0]
        env.cr.execute("SELECT COALESCE(MAX(id), 0) FROM res_partner")
        partner_start = cr.fetchone()[0]

        # the mailbox the mails come from, as an Incoming Mail Server record (never
        # connected to): fetchmail puts it in the context of everything it processes
        server = env["fetchmail.server"].create(
            {
                "name": "Bench support mailbox",
                "server_type": "imap",
                "server": "127.0.0.1",
                "port": 1,
                "user": "support@example.com",
                "password": "unused",
                "object_id": env["ir.model"]._get_id(model),
            }
        )
        cr.commit()
        # fetchmail's context, except that notifications are queued instead of sent
        thread = env["mail.thread"].with_context(
            fetchmail_cron_running=True,
            mail_notify_force_send=False,
            default_fetchmail_server_id=server.id,
        )
        thread_ids, rows = {}, []
        # the driver hands out the mails one at a time, alternating between the
        # products, so that any drift of the machine hits both alike
        _reply("ready")
        for line in sys.stdin:
            command = line.split()
            if not command or command[0] == "finish":
                break
            mail = corpus["mails"][int(command[1])]
            row = _process(env, thread, model, mail, recorder, phases)
            thread_ids[mail["index"]] = row["thread_id"]
            expected = thread_ids.get(mail["parent"]) if mail["kind"] == "reply" else None
            row.update(
                kind=mail["kind"],
                warmup=mail["warmup"],
                size=len(mail["raw"]),
                routed_ok=bool(row["thread_id"])
                and (expected is None or row["thread_id"] == expected),
            )
            if mail["kind"] == "new":
                row["routed_ok"] = row["routed_ok"] and row["thread_id"] not in {
                    tid for i, tid in thread_ids.items() if i != mail["index"]
                }
            rows.append(row)
            _reply("ok")

        # mail_ticket only: replies that name the ticket in the subject, no headers
        if args.worker == "mail_ticket" and args.subject_replies:
            rng = random.Random(corpus["seed"] + 1)
            new_mails = [
                m
                for m in corpus["mails"]
                if m["kind"] == "new" and not m["warmup"] and not m["probe"]
            ]
            picks = [rng.choice(new_mails) for _ in range(args.subject_replies)]
            numbers = {
                t.id: t.number for t in env[model].browse({thread_ids[m["index"]] for m in picks})
            }
            cr.commit()
            for position, mail in enumerate(picks):
                ticket_id = thread_ids[mail["index"]]
                raw = subject_reply(corpus, mail, numbers[ticket_id], position, rng)
                row = _process(env, thread, model, {"raw": raw}, recorder, phases)
                row.update(
                    kind="subject_reply",
                    warmup=False,
                    size=len(raw),
                    routed_ok=row["thread_id"] == ticket_id,
                )
                rows.append(row)

        # the notifications the run queued, and the partners it created
        cr.execute(
            "SELECT state, COUNT(*) FROM mail_mail WHERE id > %s GROUP BY state", [mail_mail_start]
        )
        out["mail_mail_queued"] = dict(cr.fetchall())
        cr.execute(
            "SELECT COUNT(*) FROM res_partner WHERE id > %s AND id NOT IN %s",
            [partner_start, tuple(partners.ids) or (0,)],
        )
        out["partners_created"] = cr.fetchone()[0]
        out["send_calls_queued_run"] = guard.send_calls
        out["smtp_attempts_queued_run"] = guard.smtp_attempts

        # probe: a few more mails with fetchmail's stock context (force_send on):
        # does the product send synchronously? mail.mail.send() is stubbed, SMTP refused.
        stock = env["mail.thread"].with_context(
            fetchmail_cron_running=True, default_fetchmail_server_id=server.id
        )
        probe_rows = []
        guard.send_calls, guard.sent_mail_ids = 0, []
        for mail in corpus["mails"]:
            if mail["probe"]:
                probe_rows.append(_process(env, stock, model, mail, recorder, phases))
        out["probe"] = {
            "mails": len(probe_rows),
            "send_calls": guard.send_calls,
            "mails_sent_synchronously": len(guard.sent_mail_ids),
            "smtp_attempts": guard.smtp_attempts,
        }
        cr.commit()

    measured = [row for row in rows if not row["warmup"]]
    main = [row for row in measured if row["kind"] in {"new", "reply"}]
    out["summary"] = {"all": _summarise(main)}
    for kind in ("new", "reply", "subject_reply"):
        kind_rows = [row for row in measured if row["kind"] == kind]
        if kind_rows:
            out["summary"][kind] = _summarise(kind_rows)
            out["summary"][kind]["routed_ok"] = sum(row["routed_ok"] for row in kind_rows)
    out["summary"]["warmup"] = _summarise([row for row in rows if row["warmup"]])
    out["breakdown"] = {"all": _breakdowns(main)}
    for kind in ("new", "reply", "subject_reply"):
        kind_rows = [row for row in measured if row["kind"] == kind]
        if kind_rows:
            out["breakdown"][kind] = _breakdowns(kind_rows)
    out["errors"] = [row["error"] for row in rows if row["error"]][:10]
    out["per_mail"] = [
        {
            "kind": row["kind"],
            "warmup": row["warmup"],
            "bytes": row["size"],
            "ms": round(row["seconds"] * 1000, 3),
            "queries": row["queries"],
            "cursor_queries": row["cursor_queries"],
            "routed_ok": row["routed_ok"],
        }
        for row in rows
    ]
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    _reply("done")
    return 0


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


def _pg_connect(args, dbname="postgres"):
    import psycopg2  # noqa: PLC0415 - from Odoo's venv

    connection = psycopg2.connect(
        dbname=dbname, host=args.db_host, port=args.db_port, user=args.db_user
    )
    connection.autocommit = True
    return connection


def _module_state(args, db, module):
    with contextlib.closing(_pg_connect(args)) as connection, connection.cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db])
        if not cr.fetchone():
            return None
    try:
        with contextlib.closing(_pg_connect(args, db)) as connection, connection.cursor() as cr:
            cr.execute("SELECT state FROM ir_module_module WHERE name = %s", [module])
            row = cr.fetchone()
            return row[0] if row else "absent"
    except Exception:  # not an Odoo database
        return "broken"


def _drop_db(args, db):
    assert db.startswith(DB_PREFIX), db
    with contextlib.closing(_pg_connect(args)) as connection, connection.cursor() as cr:
        cr.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def install(args, name, db, env, logfile):
    """Install the product into ``db`` (fresh unless --reuse finds it); None or an error."""
    module = TARGETS[name]["module"]
    if args.reuse and _module_state(args, db, module) == "installed":
        log(f"{name}: reusing database {db}")
        return None
    command = [
        args.python,
        "-m",
        "odoo",
        "-d",
        db,
        "-i",
        module,
        "--stop-after-init",
        f"--db_host={args.db_host}",
        f"--db_port={args.db_port}",
        f"--db_user={args.db_user}",
        f"--addons-path={args.full_addons_path}",
        "--log-level=warn",
        f"--logfile={logfile}",
    ]
    error = None
    for attempt in range(1, args.install_attempts + 1):
        _drop_db(args, db)
        log(f"{name}: installing {module} into a new database {db} (attempt {attempt})")
        t0 = time.monotonic()
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        state = _module_state(args, db, module)
        if result.returncode == 0 and state == "installed":
            log(f"{name}: installed in {time.monotonic() - t0:.0f} s")
            return None
        tail = (Path(logfile).read_text(errors="replace") if Path(logfile).exists() else "")[
            -1500:
        ] + result.stderr[-500:]
        error = f"install of {module} failed (exit {result.returncode}, state {state}): {tail}"
        log(error)
        if attempt < args.install_attempts:
            log(f"{name}: retrying in {args.install_retry_wait} s (a transient edit?)")
            time.sleep(args.install_retry_wait)
    return error


class WorkerProcess:
    """One product's worker: started, handed mails one by one, then asked for its result."""

    def __init__(self, args, name, db, corpus_path, env, stamp):
        self.name = name
        self.out = args.results_dir / f"{stamp}-{name}.worker.json"
        self.logfile = args.results_dir / f"{stamp}-{name}.log"
        self.stderr = (args.results_dir / f"{stamp}-{name}.stderr").open("w")
        command = [
            args.python,
            str(Path(__file__).resolve()),
            "--worker",
            name,
            "--db",
            db,
            "--corpus",
            str(corpus_path),
            "--out",
            str(self.out),
            "--logfile",
            str(self.logfile),
            "--log-level",
            args.log_level,
            "--subject-replies",
            str(args.subject_replies),
            "--addons-path",
            args.full_addons_path,
            "--db-host",
            args.db_host,
            "--db-port",
            str(args.db_port),
            "--db-user",
            args.db_user,
        ]
        log(f"{name}: starting the worker on {db} (Odoo log: {self.logfile})")
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
        )
        self.error = None

    def expect(self, word):
        for line in self.proc.stdout:
            if line.startswith("@bench "):
                if line.split()[1] == word:
                    return True
                break
        self.fail(f"worker said nothing, or not {word!r}")
        return False

    def send(self, line, expected):
        if self.error:
            return False
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            self.fail(f"worker is gone ({exc})")
            return False
        return self.expect(expected)

    def fail(self, reason):
        if self.error:
            return
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        self.stderr.flush()
        stderr = Path(self.stderr.name).read_text(errors="replace")[-2000:]
        self.error = f"{reason} (exit {self.proc.returncode}): {stderr}"
        log(f"{self.name}: {self.error}")

    def result(self):
        if self.error or not self.send("finish", "done"):
            return None, self.error
        self.proc.wait()
        self.stderr.close()
        data = json.loads(self.out.read_text())
        self.out.unlink()
        Path(self.stderr.name).unlink()
        return data, None


def run_workers(args, names, dbs, corpus, corpus_path, env, stamp):
    """Feed the mails to all workers in turn, mail by mail; return {name: (data, error)}."""
    workers = [WorkerProcess(args, n, dbs[n], corpus_path, env, stamp) for n in names]

    def watchdog():
        for worker in workers:
            if worker.proc.poll() is None:
                log(f"{worker.name}: killed after {args.worker_timeout} s")
                worker.proc.kill()

    timer = threading.Timer(args.worker_timeout, watchdog)
    timer.start()
    try:
        for worker in workers:
            worker.expect("ready")
        log(f"feeding {len(corpus['mails']) - args.probe_mails} mails to {', '.join(names)}")
        t0 = time.monotonic()
        indexes = [mail["index"] for mail in corpus["mails"] if not mail["probe"]]
        for start in range(0, len(indexes), args.block):
            # blocks of --block mails per product, alternating who goes first
            order = workers if (start // args.block) % 2 == 0 else workers[::-1]
            for worker in order:
                for index in indexes[start : start + args.block]:
                    worker.send(f"mail {index}", "ok")
        log(f"mails fed in {time.monotonic() - t0:.0f} s; subject replies, probe and stats")
        return {worker.name: worker.result() for worker in workers}
    finally:
        timer.cancel()
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.kill()


def helpdesk_addons_dir(path, addons_path, odoo_src):
    """The directory to put on the addons path, and None or why it can't be used."""
    path = Path(path)
    if (path / "__manifest__.py").exists() and path.name == "helpdesk_mgmt":
        path = path.parent
    manifest = path / "helpdesk_mgmt" / "__manifest__.py"
    if not manifest.exists():
        return None, f"no helpdesk_mgmt/__manifest__.py under {path}"
    import ast  # noqa: PLC0415

    data = ast.literal_eval(manifest.read_text())
    if not str(data.get("version", "")).startswith("19.0."):
        return None, f"helpdesk_mgmt at {path} is version {data.get('version')}, not 19.0.x"
    roots = [Path(p) for p in addons_path.split(",")] + [path, Path(odoo_src) / "odoo" / "addons"]
    missing = [
        dep
        for dep in data.get("depends", [])
        if not any((root / dep / "__manifest__.py").exists() for root in roots)
    ]
    if missing:
        return None, f"helpdesk_mgmt needs {', '.join(missing)}, on no addons path"
    return path, None


def _fmt(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def print_report(result):
    targets = result["targets"]
    names = [n for n in TARGETS if targets.get(n, {}).get("summary")]
    width = 17
    print()
    print(
        f"Gateway benchmark: {result['config']['mails']} mails "
        f"(+{result['config']['warmup']} warm-up), Odoo {result['odoo']}, "
        f"{result['machine']['cpus']} CPUs"
    )
    header = f"{'':<36}" + "".join(f"{n:>{width}}" for n in names)
    print(header)
    print("-" * len(header))
    rows = [
        ("median ms/mail", "median_ms", ".1f"),
        ("p95 ms/mail", "p95_ms", ".1f"),
        ("mean ms/mail", "mean_ms", ".1f"),
        ("total s", "total_s", ".2f"),
        ("queries/mail (mean)", "queries_mean", ".1f"),
        ("queries/mail (max)", "queries_max", "d"),
    ]
    for kind, title in [("all", "all (new + In-Reply-To replies)"), *KIND_LABELS.items()]:
        summaries = [targets[n]["summary"].get(kind) for n in names]
        if not any(summaries):
            continue
        mails = next(s["mails"] for s in summaries if s)
        extra = " - mail_ticket only" if kind == "subject_reply" else ""
        print(f"{title} ({mails} mails){extra}")
        for label, key, spec in rows:
            cells = "".join(f"{_fmt(s.get(key) if s else None, spec):>{width}}" for s in summaries)
            print(f"  {label:<34}{cells}")
        ratio = (result.get("comparison") or {}).get(kind)
        if ratio:
            print(
                f"  {'speedup vs helpdesk_mgmt':<34}{'':>{width}}"
                f"{'median ' + format(ratio['speedup_median'], '.2f') + 'x':>{width}}"
            )
            print(
                f"  {'':<34}{'':>{width}}"
                f"{'total ' + format(ratio['speedup_total'], '.2f') + 'x':>{width}}"
            )
        if kind != "all":
            cells = "".join(
                f"{(str(s['routed_ok']) + '/' + str(s['mails'])) if s else '-':>{width}}"
                for s in summaries
            )
            print(f"  {'routed to the right ticket':<34}{cells}")
    print()
    print("queries | ms per mail by gateway step (inclusive; all measured new + reply mails)")
    labels = [label for _, _, label in PHASES] + ["commit"]
    for label in labels:
        cells = ""
        for name in names:
            step = targets[name]["breakdown"]["all"]["steps"].get(label)
            cells += (
                f"{step['queries_per_mail']:>8.1f} |{step['ms_per_mail']:>6.1f}"
                if step
                else f"{'-':>8} |{'-':>6}"
            )
        print(f"  {label:<34}{cells}")
    print()
    for name in names:
        data = targets[name]
        kinds = data["breakdown"]["all"]["query_kinds"]
        top = ", ".join(f"{k} {v:.1f}" for k, v in list(kinds.items())[:12])
        print(f"{name}: queries/mail by statement and table: {top}")
    print()
    for name in names:
        data = targets[name]
        probe = data["probe"]
        print(
            f"{name}: queued during the run: {data['mail_mail_queued'] or 'no mail.mail'}; "
            f"send() calls {data['send_calls_queued_run']}, SMTP attempts "
            f"{data['smtp_attempts_queued_run']}; partners created by the gateway: "
            f"{data['partners_created']}"
        )
        print(
            f"{name}: stock fetchmail context probe ({probe['mails']} mails, force_send on): "
            f"{probe['send_calls']} synchronous send() calls for "
            f"{probe['mails_sent_synchronously']} mail.mail"
        )
    for name, data in targets.items():
        if data.get("skipped"):
            print(f"COMPARISON SKIPPED: {name} was not benchmarked - {data['skipped']}")
    print()
    print(result["final_line"])


def comparison(targets):
    """helpdesk_mgmt over mail_ticket, per kind of mail both got (None when skipped)."""
    mt = targets.get("mail_ticket", {}).get("summary")
    hd = targets.get("helpdesk_mgmt", {}).get("summary")
    if not (mt and hd):
        return None
    return {
        kind: {
            "speedup_median": hd[kind]["median_ms"] / mt[kind]["median_ms"],
            "speedup_p95": hd[kind]["p95_ms"] / mt[kind]["p95_ms"],
            "speedup_total": hd[kind]["total_s"] / mt[kind]["total_s"],
            "query_ratio": hd[kind]["queries_mean"] / mt[kind]["queries_mean"],
        }
        for kind in ("all", "new", "reply")
        if kind in mt and kind in hd
    }


def final_line(targets):
    parts = []
    for name in TARGETS:
        summary = targets.get(name, {}).get("summary", {}).get("all")
        if summary:
            parts.append(
                f"{name} {summary['median_ms']:.1f} ms/mail {summary['queries_mean']:.0f} q/mail"
            )
        else:
            parts.append(f"{name} skipped")
    mt = targets.get("mail_ticket", {}).get("summary", {}).get("all")
    hd = targets.get("helpdesk_mgmt", {}).get("summary", {}).get("all")
    if mt and hd:
        parts.append(f"speedup {hd['median_ms'] / mt['median_ms']:.2f}x")
    else:
        parts.append("speedup n/a (comparison skipped)")
    return " | ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=300, help="measured mails (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="mails not counted (default 20)")
    parser.add_argument(
        "--subject-replies",
        type=int,
        default=None,
        help="mail_ticket-only replies by [TICKET-n] subject (default: a third of --mails)",
    )
    parser.add_argument(
        "--probe-mails",
        type=int,
        default=15,
        help="extra mails run with fetchmail's stock context to detect synchronous sends",
    )
    parser.add_argument(
        "--block",
        type=int,
        default=10,
        help="the products take turns by blocks of this many mails (1: strict alternation; "
        "a huge value: one product after the other)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep installed bench databases")
    parser.add_argument(
        "--helpdesk-path",
        default=os.environ.get("HELPDESK_MGMT_PATH") or DEFAULT_HELPDESK_PATH,
        help="directory holding OCA's helpdesk_mgmt (env HELPDESK_MGMT_PATH, "
        f"default {DEFAULT_HELPDESK_PATH})",
    )
    parser.add_argument("--targets", default="mail_ticket,helpdesk_mgmt")
    parser.add_argument("--odoo-src", default=os.environ.get("ODOO_SRC"))
    parser.add_argument("--addons-path", help="default: <odoo-src>/addons,<this repository>")
    parser.add_argument("--db-host", default=os.environ.get("PGHOST") or "127.0.0.1")
    parser.add_argument("--db-port", default=os.environ.get("PGPORT") or "5432")
    parser.add_argument("--db-user", default="mail_ticket")
    parser.add_argument("--python", default=sys.executable, help="Python with Odoo's deps")
    parser.add_argument("--log-level", default="info", help="Odoo log level of the workers")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--install-attempts", type=int, default=3)
    parser.add_argument("--install-retry-wait", type=int, default=60)
    parser.add_argument("--worker-timeout", type=int, default=360)
    # internal: the worker process
    parser.add_argument("--worker", choices=list(TARGETS), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--logfile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subject_replies is None:
        args.subject_replies = args.mails // 3

    if args.worker:
        return worker(args)

    started = time.monotonic()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    args.results_dir.mkdir(parents=True, exist_ok=True)

    # Odoo: the source tree to import, and the addons path
    odoo_src = args.odoo_src
    if not odoo_src:
        spec = importlib.util.find_spec("odoo")
        if spec and spec.submodule_search_locations:
            odoo_src = str(Path(next(iter(spec.submodule_search_locations))).parent)
        else:
            odoo_src = DEFAULT_ODOO_SRC
    addons_path = args.addons_path or f"{odoo_src}/addons,{REPO}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [odoo_src, env.get("PYTHONPATH")]))

    wanted = [name.strip() for name in args.targets.split(",") if name.strip()]
    targets = {}
    helpdesk_dir, helpdesk_error = helpdesk_addons_dir(args.helpdesk_path, addons_path, odoo_src)
    if "helpdesk_mgmt" in wanted and helpdesk_error:
        targets["helpdesk_mgmt"] = {"skipped": helpdesk_error}
        log(f"helpdesk_mgmt: COMPARISON SKIPPED - {helpdesk_error}")
        wanted.remove("helpdesk_mgmt")
    paths = [addons_path] + ([str(helpdesk_dir)] if helpdesk_dir else [])
    args.full_addons_path = ",".join(paths)

    token = format(int(time.time()), "x")[-6:]
    corpus = build_corpus(args.mails + args.warmup, args.warmup, args.probe_mails, args.seed, token)
    sizes = [len(m["raw"]) for m in corpus["mails"]]
    with_pdf = sum(b"application/pdf" in m["raw"] for m in corpus["mails"])
    log(
        f"{len(sizes)} mails, {min(sizes)}-{max(sizes)} bytes "
        f"(median {statistics.median(sizes):.0f}), {with_pdf} with a PDF"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(
            {
                **corpus,
                "mails": [{**m, "raw": m["raw"].decode("latin-1")} for m in corpus["mails"]],
            },
            handle,
        )
        corpus_path = Path(handle.name)

    try:
        dbs = {}
        for name in wanted:
            db = f"{DB_PREFIX}{name}"
            error = install(args, name, db, env, args.results_dir / f"{stamp}-install-{name}.log")
            if error:
                targets[name] = {"skipped": error}
            else:
                dbs[name] = db
        if dbs:
            outcomes = run_workers(args, list(dbs), dbs, corpus, corpus_path, env, stamp)
            for name, (data, error) in outcomes.items():
                targets[name] = data if data else {"skipped": error}
    finally:
        corpus_path.unlink(missing_ok=True)

    odoo_version = next((t["odoo"] for t in targets.values() if t.get("odoo")), "?")
    result = {
        "timestamp": stamp,
        "odoo": odoo_version,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {
            "mails": args.mails,
            "warmup": args.warmup,
            "subject_replies": args.subject_replies,
            "probe_mails": args.probe_mails,
            "seed": args.seed,
            "block": args.block,
            "reuse": args.reuse,
            "addons_path": args.full_addons_path,
            "helpdesk_path": args.helpdesk_path,
            "mail_sizes": {
                "min": min(sizes),
                "max": max(sizes),
                "median": statistics.median(sizes),
            },
            "context": {"fetchmail_cron_running": True, "mail_notify_force_send": False},
        },
        "targets": targets,
    }
    result["comparison"] = comparison(targets)
    result["final_line"] = final_line(targets)
    result["wall_s"] = time.monotonic() - started
    out = args.results_dir / f"{stamp}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print_report(result)
    log(f"results: {out} (whole run {result['wall_s']:.0f} s)")
    return 0 if targets.get("mail_ticket", {}).get("summary") else 1


if __name__ == "__main__":
    sys.exit(main())
