"""The scenarios of the benchmark; each returns a JSON-able dict for the report.

e2e      the same mails APPENDed to one Dovecot account per product, drained by each
         product's own fetch as its cron runs it (a separate Odoo process per product)
process  the same mails through ``message_process`` alone, for both products
mix      e2e and process again on the realistic mix: portal customers, Cc to known
         contacts, out-of-office replies and bounces
scale    mail_ticket's per-mail cost on top of 1,000 and 100,000 existing tickets
views    the agents' kanban, list and searches on the largest base of ``scale``
cron     two mailboxes drained by a real Odoo server with one, then two cron workers
idle     a mail_ticket fetch run on a drained mailbox (measured in e2e)
"""

import json
import os
import socket
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil

from . import corpus as corpus_mod
from . import dataset
from .mailbox import append_all, free_port

PRODUCTS = {
    "mail_ticket": {"module": "mail_ticket", "model": "mail.ticket"},
    "helpdesk_mgmt": {"module": "helpdesk_mgmt", "model": "helpdesk.ticket"},
}
REPO = Path(__file__).resolve().parents[2]


class Bench:
    """What every scenario needs: PostgreSQL, the Python, the addons paths, the servers."""

    def __init__(self, args, workdir, log, dovecot, sink, helpdesk_dir):
        self.args = args
        self.workdir = workdir
        self.log = log
        self.pg = dataset.Postgres(args.db_host, args.db_port, args.db_user)
        self.python = args.python
        self.dovecot = dovecot
        self.sink = sink
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.odoo_src, str(REPO)])}
        self.addons = {"mail_ticket": args.addons_path}
        if helpdesk_dir:
            self.addons["helpdesk_mgmt"] = f"{args.addons_path},{helpdesk_dir}"
        self.products = list(self.addons)
        self._jobs = 0
        #: refused SMTP connections and counted mail.mail.send() calls of the workers
        self.outgoing = Counter()

    def template(self, product):
        return f"{self.args.db_prefix}tpl_{product}"

    def install_templates(self):
        seconds = {}
        for product in self.products:
            self.log(f"installing {product} into {self.template(product)}")
            seconds[product] = dataset.install(
                self.pg,
                self.python,
                self.env,
                self.template(product),
                PRODUCTS[product]["module"],
                self.addons[product],
                self.workdir / f"install-{product}.log",
                reuse=self.args.reuse,
            )
        return seconds

    def fresh_db(self, product, name):
        dbname = f"{self.args.db_prefix}{name}"
        self.pg.copy(self.template(product), dbname)
        return dbname

    def worker(self, task, product, db, **job):
        """Run one worker process; returns its JSON result."""
        self._jobs += 1
        stem = self.workdir / f"{self._jobs:03d}-{task}-{db}"
        job.update(
            task=task,
            db=db,
            product=product,
            addons_path=self.addons[product],
            db_host=self.args.db_host,
            db_port=self.args.db_port,
            db_user=self.args.db_user,
            logfile=f"{stem}.log",
            result=f"{stem}.json",
            log_level=self.args.log_level,
        )
        job_file = Path(f"{stem}.job")
        job_file.write_text(json.dumps(job))
        proc = subprocess.run(
            [self.python, "-m", "bench.ingest.worker", str(job_file)],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            tail = "\n".join(Path(f"{stem}.log").read_text().splitlines()[-25:])
            raise RuntimeError(
                f"worker {task} on {db} failed ({proc.returncode}):\n{proc.stderr[-3000:]}\n{tail}"
            )
        result = json.loads(Path(f"{stem}.json").read_text())
        self.outgoing[f"{product} smtp_attempts"] += result.get("smtp_attempts", 0)
        self.outgoing[f"{product} send_calls"] += result.get("send_calls", 0)
        return result

    def setup(self, product, db, corpus=None, servers=(), **extra):
        step = _setup_step(self, corpus, servers, **extra)
        del step["task"]
        return self.worker("setup", product, db, **step)

    def steps(self, product, db, steps):
        """Several tasks in one worker process; their results in order."""
        label = "+".join(step["task"] for step in steps)
        return self.worker(label, product, db, steps=steps).get("steps") or []

    def server_spec(self, product, account, confirm=True):
        return {
            "name": f"Support {account.login}",
            "host": account.host,
            "port": account.port,
            "login": account.login,
            "password": account.password,
            "model": PRODUCTS[product]["model"],
            "address": corpus_mod.SUPPORT_ADDRESS,
            "confirm": confirm,
        }

    def write_mails(self, name, mails):
        folder = self.workdir / "mails" / name
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, mail in enumerate(mails):
            path = folder / f"{index:05d}.eml"
            path.write_bytes(mail["raw"])
            paths.append(str(path))
        return paths

    def drop(self, db):
        if not self.args.keep_dbs:
            self.pg.drop(db)


def _setup_step(bench, corpus, servers, **extra):
    return {
        "task": "setup",
        "partners": corpus["known_partners"] if corpus else [],
        "portal_users": corpus.get("portal_users", []) if corpus else [],
        "smtp": {"host": bench.sink.host, "port": bench.sink.port},
        "servers": list(servers),
        **extra,
    }


def _profile(bench, name):
    if not bench.args.profile:
        return {}
    return {"profile": str(bench.workdir / f"profile-{name}")}


def _imap(account):
    return {
        "host": account.host,
        "port": account.port,
        "login": account.login,
        "password": account.password,
    }


# ---------------------------------------------------------------------------
# end to end from Dovecot, with the idle poll
# ---------------------------------------------------------------------------


def e2e(bench, corpus, reps, name="e2e"):
    """Per repetition and product: fresh database and mailbox, drain, then an idle poll.

    ``name`` prefixes the databases, accounts and log lines (``mix`` runs it again)."""
    common, subject = corpus_mod.split(corpus)
    repetitions = []
    for rep in range(reps):
        order = bench.products if rep % 2 == 0 else bench.products[::-1]
        row = {}
        for product in order:
            db = bench.fresh_db(product, f"{name}_{product}")
            account = bench.dovecot.new_account(f"{name}-{product[:4]}-r{rep}")
            append_all(account, [m["raw"] for m in common])
            bench.log(f"{name} rep {rep + 1}/{reps}: {product} drains {len(common)} mails")
            drain = {"task": "drain", "imap": _imap(account)}
            idle = {**drain, "max_runs": 1}
            steps = [
                _setup_step(bench, corpus, [bench.server_spec(product, account)]),
                {**drain, **_ids(common), **_profile(bench, f"{name}-drain-{product}-r{rep}")},
            ]
            if product != "mail_ticket" or not subject:
                steps.append(idle)
            done = bench.steps(product, db, steps)
            setup, result = done[0], {"common": done[1]}
            result["common"]["mails"] = len(common)
            if product == "mail_ticket" and subject:
                append_all(account, [m["raw"] for m in subject])
                bench.log(f"{name} rep {rep + 1}/{reps}: {product} drains {len(subject)} more")
                server = {"server_id": setup["servers"][0]["id"]}
                phase, result["idle"] = bench.steps(
                    product,
                    db,
                    [
                        {**drain, **server, **_ids(subject)},
                        {**idle, **server},
                    ],
                )
                phase["mails"] = len(subject)
                result["subject_replies"] = phase
            else:
                result["idle"] = done[2]
            row[product] = result
            bench.drop(db)
        if "helpdesk_mgmt" in row:
            mt, hd = row["mail_ticket"]["common"], row["helpdesk_mgmt"]["common"]
            row["ratio"] = (mt["mails"] / mt["seconds"]) / (hd["mails"] / hd["seconds"])
        repetitions.append(row)
    return {"repetitions": repetitions, "mails": len(common), "subject_replies": len(subject)}


# ---------------------------------------------------------------------------
# message_process alone
# ---------------------------------------------------------------------------


def _ids(mails):
    """The Message-IDs a drain or process step counts in ``mail_message``, with kinds."""
    return {
        "message_ids": [m["message_id"] for m in mails],
        "message_kinds": [m["kind"] for m in mails],
    }


def _kinds(rows):
    out = {}
    for kind in corpus_mod.KINDS:
        picked = [r for r in rows if r["kind"] == kind and not r["error"]]
        if picked:
            out[kind] = {
                "mails": len(picked),
                "median_ms": statistics.median(r["seconds"] for r in picked) * 1000,
                "queries_mean": statistics.fmean(r["queries"] for r in picked),
                "queries_max": max(r["queries"] for r in picked),
            }
    out["errors"] = sum(1 for r in rows if r["error"])
    out["error_samples"] = [r["error"] for r in rows if r["error"]][:3]
    return out


def process(bench, corpus, reps, name="mp", label="message_process"):
    common, subject = corpus_mod.split(corpus)
    paths = bench.write_mails(name, common + subject)
    kinds = [m["kind"] for m in common + subject]
    repetitions = []
    for rep in range(reps):
        order = bench.products if rep % 2 == 0 else bench.products[::-1]
        row = {}
        for product in order:
            db = bench.fresh_db(product, f"{name}_{product}")
            account = bench.dovecot.new_account(f"{name}-{product[:4]}-r{rep}")
            count = len(paths) if product == "mail_ticket" else len(common)
            bench.log(f"{label} rep {rep + 1}/{reps}: {product}, {count} mails")
            _setup, result = bench.steps(
                product,
                db,
                [
                    _setup_step(bench, corpus, [bench.server_spec(product, account, False)]),
                    {
                        "task": "process",
                        "model": PRODUCTS[product]["model"],
                        "mails": paths[:count],
                        "kinds": kinds[:count],
                        **_ids((common + subject)[:count]),
                        **_profile(bench, f"{name}-{product}-r{rep}"),
                    },
                ],
            )
            rows = result.pop("rows")
            shared = rows[: len(common)]
            result["common"] = {
                "mails": len(shared),
                "seconds": sum(r["seconds"] for r in shared),
                "queries": sum(r["queries"] for r in shared),
            }
            result["kinds"] = _kinds(rows)
            row[product] = result
            bench.drop(db)
        if "helpdesk_mgmt" in row:
            mt, hd = row["mail_ticket"]["common"], row["helpdesk_mgmt"]["common"]
            row["ratio"] = hd["seconds"] / mt["seconds"]
        repetitions.append(row)
    return {"repetitions": repetitions, "mails": len(common), "subject_replies": len(subject)}


# ---------------------------------------------------------------------------
# the realistic mix: portal customers, Cc to known contacts, auto-replies, bounces
# ---------------------------------------------------------------------------


def mix(bench, corpus, reps):
    """The realistic mix end to end and through ``message_process``, as ``e2e`` and
    ``process`` measure the plain corpus, on databases of their own (the portal users are
    made by the setup step, in one batch, before anything is timed)."""
    return {
        "corpus": corpus_mod.describe(corpus),
        "e2e": e2e(bench, corpus, reps, name="mix"),
        "process": process(bench, corpus, reps, name="mixmp", label="mix message_process"),
    }


# ---------------------------------------------------------------------------
# database size, then the agents' views on the largest base
# ---------------------------------------------------------------------------


def scale(bench, sizes, mails, seed, views_repeat, chunks=3):
    """The same mails on top of each database size, in chunks that alternate between the
    sizes (so that the machine's drift hits every size alike); then the views."""
    bases = []
    for size in sizes:
        db = bench.fresh_db("mail_ticket", f"scale_{size}")
        bench.log(f"scale: populating {size:,} tickets")
        populated = dataset.populate(bench.pg, db, size) if size else {"seconds": 0, "rows": {}}
        # the same bytes on every size, but for the ticket numbers the subject replies name
        mails_corpus = corpus_mod.build(mails, seed=seed, token="s", first_number=size + 1)
        # then other mails through the fetch, from the mailbox, numbered after those
        created = sum(1 for m in mails_corpus["mails"] if m["kind"] == "new")
        fetch_corpus = corpus_mod.build(
            mails, seed=seed + 1, token="f", first_number=size + 1 + created
        )
        account = bench.dovecot.new_account(f"scale-{size}")
        setup = bench.setup(
            "mail_ticket",
            db,
            mails_corpus,
            [bench.server_spec("mail_ticket", account)],
            sequence_next=size + 1,
            agent=size == max(sizes),
        )
        bases.append(
            {
                "size": size,
                "db": db,
                "populated": populated,
                "setup": setup,
                "paths": bench.write_mails(f"scale-{size}", mails_corpus["mails"]),
                "kinds": [m["kind"] for m in mails_corpus["mails"]],
                "rows": [],
                "account": account,
                "fetch_mails": fetch_corpus["mails"],
                "fetch_chunks": [],
            }
        )
    step = -(-mails // chunks)
    for chunk, begin in enumerate(range(0, mails, step)):
        for base in bases if chunk % 2 == 0 else bases[::-1]:
            bench.log(
                f"scale: mails {begin + 1}-{min(begin + step, mails)} through message_process "
                f"on {base['size']:,} tickets"
            )
            result = bench.worker(
                "process",
                "mail_ticket",
                base["db"],
                server_id=base["setup"]["servers"][0]["id"],
                model="mail.ticket",
                mails=base["paths"][begin : begin + step],
                kinds=base["kinds"][begin : begin + step],
            )
            base["rows"] += result["rows"]
    for chunk, begin in enumerate(range(0, mails, step)):
        for base in bases if chunk % 2 == 0 else bases[::-1]:
            batch = base["fetch_mails"][begin : begin + step]
            bench.log(
                f"scale: mails {begin + 1}-{begin + len(batch)} through the fetch "
                f"on {base['size']:,} tickets"
            )
            append_all(base["account"], [m["raw"] for m in batch])
            (result,) = bench.steps(
                "mail_ticket",
                base["db"],
                [
                    {
                        "task": "drain",
                        "imap": _imap(base["account"]),
                        "server_id": base["setup"]["servers"][0]["id"],
                        "message_ids": [m["message_id"] for m in batch],
                    }
                ],
            )
            result["mails"] = len(batch)
            base["fetch_chunks"].append(result)
    results = []
    for base in bases:
        rows = base["rows"]
        ok = [r for r in rows if not r["error"]]
        results.append(
            {
                "tickets": base["size"],
                "populated": base["populated"],
                "kinds": _kinds(rows),
                "median_ms": statistics.median(r["seconds"] for r in ok) * 1000 if ok else None,
                "queries_mean": statistics.fmean(r["queries"] for r in ok) if ok else None,
                **_fetch_figures(base["fetch_chunks"]),
            }
        )
    largest = bases[-1] if bases else None
    views = None
    if largest and largest["setup"].get("agent_id"):
        size = largest["size"]
        bench.log(f"views: kanban, list and searches on {size:,} tickets")
        views = bench.worker(
            "views",
            "mail_ticket",
            largest["db"],
            agent_id=largest["setup"]["agent_id"],
            number=f"TICKET-{max(size // 2, 1):03d}",
            title="Lieferung",
            email="customer4242@populated",
            repeat=views_repeat,
        )
        views["tickets"] = size
        views["messages"] = largest["populated"]["rows"].get("mail_message")
    for base in bases:
        bench.drop(base["db"])
    return {"sizes": results, "chunks": chunks}, views


def _fetch_figures(chunks):
    """Median ms per mail over the drained chunks, queries per mail, mails ingested."""
    done = [c for c in chunks if c.get("mails") and c.get("seconds")]
    if not done:
        return {}
    mails = sum(c["mails"] for c in done)
    return {
        "fetch_ms": statistics.median(c["seconds"] / c["mails"] for c in done) * 1000,
        "fetch_queries": sum(c["queries"] for c in done) / mails,
        "fetch_mails": mails,
        "fetch_ingested": sum(c.get("ingested", 0) for c in done),
    }


# ---------------------------------------------------------------------------
# one and two cron workers on two mailboxes, a real Odoo server
# ---------------------------------------------------------------------------


def _wait_port(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def _cpu_times():
    """(busy, total) jiffies of the whole machine (/proc/stat), or None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _cpu_busy(before, after):
    """Share of the machine's CPU time that was busy between two _cpu_times()."""
    if not before or not after or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def _notify(bench, db):
    """Wake the cron threads as Odoo does: they LISTEN on the ``postgres`` database."""
    conn = bench.pg.connect("postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("NOTIFY cron_trigger, %s", [db])
    finally:
        conn.close()


def _wait_listeners(conn, threads, proc, timeout=120):
    """Wait until the server's cron workers have their connection to ``postgres``, on which
    they LISTEN to ``cron_trigger`` (the trigger is notified again until mail comes in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        pids = [proc.pid, *(child.pid for child in psutil.Process(proc.pid).children())]
        with conn.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = 'postgres' AND application_name = ANY(%s)",
                [[f"odoo-{pid}" for pid in pids]],  # Odoo's default db_app_name
            )
            if cr.fetchone()[0] >= threads:
                time.sleep(0.5)  # from its connection to its LISTEN
                return True
        time.sleep(0.1)
    return False


def cron(bench, mails, seed, reps=2, timeout=600):
    """Drain two mailboxes with a real server; time from the trigger until all mail is in.

    One and two cron threads in the order 1, 2, 2, 1, ... (drift hits both alike)."""
    results = []
    order = [t for rep in range(reps) for t in ((1, 2) if rep % 2 == 0 else (2, 1))]
    for index, threads in enumerate(order):
        db = bench.fresh_db("mail_ticket", f"cron_{threads}")
        corpora = [
            corpus_mod.build(mails, seed=seed + box, token=f"c{index}x{box}") for box in (1, 2)
        ]
        for c in corpora:  # both mailboxes get new mails and header replies only
            c["mails"] = [m for m in c["mails"] if m["kind"] != "subject_reply"]
        accounts = []
        for box, c in enumerate(corpora, 1):
            account = bench.dovecot.new_account(f"cron{threads}-box{box}")
            append_all(account, [m["raw"] for m in c["mails"]])
            accounts.append(account)
        setup = bench.setup(
            "mail_ticket",
            db,
            {"known_partners": corpora[0]["known_partners"] + corpora[1]["known_partners"]},
            [bench.server_spec("mail_ticket", a) for a in accounts],
        )
        own = [s["cron_id"] for s in setup["servers"] if s["cron_id"]]
        jobs = own if len(own) == 2 else [setup["shared_cron_id"]]
        message_ids = [m["message_id"] for c in corpora for m in c["mails"]]
        conn = bench.pg.connect(db)
        with conn.cursor() as cr:  # only the measured jobs run, and only when triggered
            cr.execute("UPDATE ir_cron SET active = (id = ANY(%s))", [jobs])
            cr.execute(
                "UPDATE ir_cron SET nextcall = now() at time zone 'UTC' + interval '1 day'"
                " WHERE id = ANY(%s)",
                [jobs],
            )
            cr.execute("DELETE FROM ir_cron_trigger")
        port = free_port()
        logfile = bench.workdir / f"cron-{index}-threads{threads}-server.log"
        bench.log(f"cron: odoo server with --max-cron-threads={threads}, jobs {jobs}")
        proc = subprocess.Popen(
            [
                bench.python,
                "-m",
                "odoo",
                "server",
                "-d",
                db,
                f"--db-filter=^{db}$",
                f"--addons-path={bench.addons['mail_ticket']}",
                f"--db_host={bench.pg.host}",
                f"--db_port={bench.pg.port}",
                f"--db_user={bench.pg.user}",
                f"--http-port={port}",
                f"--gevent-port={free_port()}",
                "--http-interface=127.0.0.1",
                f"--max-cron-threads={threads}",
                "--workers=1",  # prefork: each cron worker is a process, as in production
                f"--logfile={logfile}",
                "--log-level=info",
            ],
            cwd=REPO,
            # a job run that stops half-way (its time budget) is re-run at once by a free
            # worker, not at the workers' next wake-up a minute later (see RESULTS.md)
            env={**bench.env, "ODOO_NOTIFY_CRON_CHANGES": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if not _wait_port(port, proc) or not _wait_listeners(conn, threads, proc):
                raise RuntimeError(f"odoo server did not start its cron threads: see {logfile}")
            started, cpu_before = time.monotonic(), _cpu_times()
            with conn.cursor() as cr:
                for job in jobs:
                    cr.execute(
                        "INSERT INTO ir_cron_trigger (cron_id, call_at)"
                        " VALUES (%s, now() at time zone 'UTC')",
                        [job],
                    )
            _notify(bench, db)
            notified = time.monotonic()
            ingested, seconds, cpu_busy = 0, None, None
            while time.monotonic() - started < timeout:
                with conn.cursor() as cr:
                    cr.execute(
                        "SELECT count(*) FROM mail_message WHERE message_id = ANY(%s)",
                        [message_ids],
                    )
                    ingested = cr.fetchone()[0]
                if ingested >= len(message_ids):
                    seconds = time.monotonic() - started
                    cpu_busy = _cpu_busy(cpu_before, _cpu_times())
                    break
                if not ingested and time.monotonic() - notified > 1:
                    _notify(bench, db)
                    notified = time.monotonic()
                time.sleep(0.1)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            conn.close()
        results.append(
            {
                "threads": threads,
                "mails": len(message_ids),
                "ingested": ingested,
                "seconds": seconds,
                "cpu_busy": cpu_busy,
                "jobs": "per-mailbox ticket_cron_id" if len(own) == 2 else "shared fetchmail cron",
            }
        )
        bench.drop(db)
    out = {"runs": results, "sink_messages": len(bench.sink.messages())}
    medians = {
        str(threads): statistics.median(r["seconds"] for r in results if r["threads"] == threads)
        for threads in (1, 2)
        if all(r["seconds"] for r in results if r["threads"] == threads)
    }
    if len(medians) == 2:
        out["median_seconds"] = medians
        out["speedup"] = medians["1"] / medians["2"]
    out["shared"] = any(r["jobs"] == "shared fetchmail cron" for r in results)
    return out
