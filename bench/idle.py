"""Push ingestion (IMAP IDLE): how soon an appended mail is a committed ticket.

    ./dev bench idle [--mails 40] [--mails-50 100] [--idle-seconds 60] [--keep-db]
    # by hand, from the repository root:
    PYTHONPATH=/opt/odoo-19.0 /opt/mail_ticket/venv/bin/python bench/idle.py \\
        --addons-path /opt/odoo-19.0/addons,$PWD --db-user mail_ticket

A fresh database with mail_ticket, a private Dovecot (tools/mailbed.py), ticket mailboxes
that poll once an hour, and two real Odoo processes: ``odoo-bin mail_ticket_idle`` (the
listener alone, so that its memory and CPU can be read) and a cron-only ``odoo-bin``
(two cron threads) that fetches what the listener triggers. Mails are appended one by
one at random intervals to random mailboxes; the delay runs from just before APPEND to
the moment the ticket is visible to another PostgreSQL session (committed), polled every
20 ms. Then, with 50 mailboxes held, the listener's RSS and CPU over an idle minute, and
after a Dovecot restart, the time until a mail appended at once is a ticket again.

Writes bench/IDLE.md. A benchmark, not a test: nothing here is asserted.
"""

import argparse
import contextlib
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg2

HERE = Path(__file__).resolve().parent
# the mail test bed (tools/) and make_mail of the tests
sys.path[:0] = [str(HERE.parent / "tools"), str(HERE.parent / "tests")]

from mailbed import Dovecot  # noqa: E402
from odoo_options import odoo_options as database_options  # noqa: E402 (bench/, as this script)

TARGETS = {"p50": 2.0, "p95": 5.0, "cpu": 1.0, "rss": 50.0, "restart": 30.0}


def odoo_options(args):
    return [*database_options(args), f"--db-filter=^{args.db}$"]


def odoo_cmd(args, *extra, command=None):
    head = [sys.executable, "-m", "odoo"]
    if command:
        head += [f"--addons-path={args.addons_path}", command]
    return [*head, *odoo_options(args), *extra]


def pg_connect(args):
    connection = psycopg2.connect(
        dbname=args.db,
        user=args.db_user or None,
        host=args.db_host or None,
        port=args.db_port or None,
    )
    connection.autocommit = True
    return connection


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.processes = []
        self.accounts = []  # (server id, ImapAccount)
        self.seen = {}  # ticket name -> time it was seen committed
        self.watching = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    # ------------------------------------------------------------ set up

    def install(self):
        subprocess.run(
            ["dropdb", "--if-exists", "--force", *self.pg_flags(), self.args.db], check=True
        )
        print(f"installing mail_ticket into {self.args.db}", flush=True)
        subprocess.run(
            odoo_cmd(self.args, "-i", "mail_ticket", "--stop-after-init", "--log-level=warn"),
            check=True,
        )

    def pg_flags(self):
        flags = []
        for flag, value in (
            ("-h", self.args.db_host),
            ("-p", self.args.db_port),
            ("-U", self.args.db_user),
        ):
            if value:
                flags += [flag, str(value)]
        return flags

    def env(self):
        from odoo import SUPERUSER_ID, api  # noqa: PLC0415
        from odoo.modules.registry import Registry  # noqa: PLC0415

        @contextlib.contextmanager
        def scope():
            with Registry(self.args.db).cursor() as cr:
                yield api.Environment(cr, SUPERUSER_ID, {})

        return scope()

    def add_mailboxes(self, dovecot, count):
        with self.env() as env:
            for _i in range(count):
                account = dovecot.new_account()
                server = env["fetchmail.server"].create(
                    {
                        "name": f"Support {account.login}",
                        "server_type": "imap",
                        "server": account.host,
                        "port": account.port,
                        "is_ssl": False,
                        "user": account.login,
                        "password": account.password,
                        "object_id": env["ir.model"]._get_id("mail.ticket"),
                        "ticket_fetch_interval": 60,
                        "ticket_send_ack": False,  # no SMTP server here
                    }
                )
                server.button_confirm_login()
                self.accounts.append((server.id, account))

    def start(self, name, argv):
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the bench
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.processes.append((process, log))
        return process

    def connected(self, since=None):
        """Mailboxes held by a live listener (its lock), connected after ``since``."""
        with contextlib.closing(pg_connect(self.args)) as pg, pg.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM mail_ticket_idle_session s JOIN pg_locks l "
                "ON l.locktype = 'advisory' AND l.granted AND l.classid = %s "
                "AND l.objid = s.server_id AND l.objsubid = 2 "
                "WHERE s.state = 'connected' AND (%s IS NULL OR s.date_connected >= %s)",
                (0x6D746964, since, since),
            )
            return cr.fetchone()[0]

    def wait_connected(self, count, since=None, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected(since) >= count:
                return time.monotonic()
            time.sleep(0.1)
        raise SystemExit(f"only {self.connected(since)} of {count} mailboxes connected")

    # ------------------------------------------------------------ measure

    def watch(self):
        """Record when each awaited ticket is first visible to another session."""
        with contextlib.closing(pg_connect(self.args)) as pg, pg.cursor() as cr:
            while not self.stop.is_set():
                with self.lock:
                    names = list(self.watching)
                if names:
                    cr.execute("SELECT name FROM mail_ticket WHERE name = ANY(%s)", (names,))
                    now = time.time()
                    found = [name for (name,) in cr.fetchall()]
                    with self.lock:
                        for name in found:
                            self.seen.setdefault(name, now)
                            self.watching.discard(name)
                time.sleep(0.02)

    def append(self, account, subject):
        from odoo_env import make_mail  # noqa: PLC0415

        raw = make_mail(subject)
        with self.lock:
            self.watching.add(subject)
        started = time.time()
        account.append(raw)
        return started

    def latencies(self, mails, accounts, gap=(0.3, 2.5), events=None):
        """Delays of ``mails`` appended at random intervals; ``events`` maps a mail's
        index to what happens just before it is appended (a process killed)."""
        sent = {}
        for i in range(mails):
            time.sleep(random.uniform(*gap))
            if events and i in events:
                events[i]()
            _server_id, account = random.choice(accounts)
            subject = f"Bench {uuid.uuid4().hex[:12]}"
            sent[subject] = self.append(account, subject)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self.lock:
                if not self.watching:
                    break
            time.sleep(0.1)
        with self.lock:
            lost = sorted(self.watching)
            self.watching.clear()
            delays = [
                self.seen[name] - started for name, started in sent.items() if name in self.seen
            ]
        return delays, lost

    def server_delay(self, dovecot, mails=10):
        """APPEND to ``* n EXISTS`` on a plain IDLE client: the IMAP server's own share."""
        import imaplib  # noqa: PLC0415

        account = dovecot.new_account()
        client = imaplib.IMAP4(account.host, account.port)
        client.login(account.login, account.password)
        client.select("INBOX")
        client.send(b"A1 IDLE\r\n")
        client.readline()
        client.sock.settimeout(30)
        delays = []
        for _i in range(mails):
            started = time.time()
            account.append(b"Subject: probe\r\n\r\nprobe\r\n")
            while b"EXISTS" not in client.readline():
                pass
            delays.append(time.time() - started)
            time.sleep(random.uniform(0.2, 1.0))
        client.shutdown()
        return delays

    def duplicates(self):
        with contextlib.closing(pg_connect(self.args)) as pg, pg.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM (SELECT name FROM mail_ticket WHERE name LIKE 'Bench %%' "
                "OR name LIKE 'Restart %%' GROUP BY name HAVING count(*) > 1) d"
            )
            return cr.fetchone()[0]

    def idle_cost(self, listener, seconds):
        process = psutil.Process(listener.pid)
        before = process.cpu_times()
        started = time.monotonic()
        time.sleep(seconds)
        after = process.cpu_times()
        elapsed = time.monotonic() - started
        cpu = max(0.0, (after.user + after.system - before.user - before.system) / elapsed * 100)
        return cpu, process.memory_info().rss / 2**20

    def run(self):
        args = self.args
        random.seed(args.seed)
        self.install()
        results = {}
        with Dovecot(self.workdir / "imap", ssl=False) as dovecot:
            results["server"] = self.server_delay(dovecot)
            print(f"IMAP server alone: {self.summary(results['server'])}", flush=True)
            self.add_mailboxes(dovecot, 1)
            cron_argv = odoo_cmd(args, "--no-http", "--max-cron-threads=2", "--load=base,web")
            listener_argv = odoo_cmd(args, command="mail_ticket_idle")
            cron = self.start("cron", cron_argv)
            listener = self.start("listener", listener_argv)
            watcher = threading.Thread(target=self.watch, daemon=True)
            watcher.start()
            try:
                self.wait_connected(1)
                time.sleep(3)  # the fetches that follow the connection
                _cpu, rss_one = self.idle_cost(listener, 5)
                results["one"] = self.latencies(args.mails, self.accounts)
                print(f"1 mailbox: {self.summary(results['one'][0])}", flush=True)

                self.add_mailboxes(dovecot, 49)
                self.wait_connected(50)
                time.sleep(5)
                results["fifty"] = self.latencies(args.mails_50, self.accounts)
                print(f"50 mailboxes: {self.summary(results['fifty'][0])}", flush=True)

                time.sleep(5)
                cpu, rss = self.idle_cost(listener, args.idle_seconds)
                results["idle"] = (cpu, rss, rss_one)
                print(f"idle over 50 mailboxes: {cpu:.3f}% CPU, RSS {rss:.1f} MB", flush=True)

                with contextlib.closing(pg_connect(args)) as pg, pg.cursor() as cr:
                    cr.execute("SELECT (now() AT TIME ZONE 'UTC')::timestamp(0)")
                    restart_mark = cr.fetchone()[0]
                dovecot.stop()
                stopped = time.monotonic()
                time.sleep(1)
                dovecot.start()
                restarted = time.monotonic()
                subject = f"Restart {uuid.uuid4().hex[:12]}"
                appended = self.append(self.accounts[0][1], subject)
                all_back = self.wait_connected(50, since=restart_mark)
                deadline = time.monotonic() + 120
                while subject not in self.seen and time.monotonic() < deadline:
                    time.sleep(0.05)
                back = self.seen.get(subject)
                results["restart"] = (
                    back - appended if back else None,
                    all_back - restarted,
                    restarted - stopped,
                )
                print(f"after the Dovecot restart: {results['restart']}", flush=True)

                def kill(name, process, argv):
                    def event():
                        process.kill()  # SIGKILL, mid-run
                        process.wait()
                        print(f"killed {name}, started it again", flush=True)
                        self.start(f"{name}-again", argv)

                    return event

                time.sleep(5)
                third = args.mails_kill // 3
                results["kills"] = self.latencies(
                    args.mails_kill,
                    self.accounts,
                    events={
                        third: kill("listener", listener, listener_argv),
                        2 * third: kill("cron", cron, cron_argv),
                    },
                )
                print(f"with kills: {self.summary(results['kills'][0])}", flush=True)
                results["duplicates"] = self.duplicates()
            finally:
                self.stop.set()
                for process, log in self.processes:
                    process.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(15)
                    if process.poll() is None:
                        process.kill()
                    log.close()
        if not args.keep_db:
            subprocess.run(["dropdb", "--if-exists", "--force", *self.pg_flags(), args.db])
        return results

    @staticmethod
    def summary(delays):
        if not delays:
            return "no delay measured"
        return (
            f"p50 {statistics.median(delays):.2f}s, p95 {percentile(delays, 0.95):.2f}s, "
            f"max {max(delays):.2f}s over {len(delays)} mails"
        )


def verdict(value, target):
    return "yes" if value is not None and value <= target else "**no**"


def report(args, results, path):
    dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
    lines = [
        "# Push ingestion (IMAP IDLE) benchmark",
        "",
        "Written by `./dev bench idle` (bench/idle.py): a fresh database, a private Dovecot "
        f"{dovecot.split()[0]}"
        ", ticket mailboxes polling once an hour, `odoo-bin mail_ticket_idle` (the listener "
        "alone) and a cron-only `odoo-bin` with two cron threads. Mails appended one by one "
        "at random intervals (0.3-2.5 s) to random mailboxes; the delay runs from just before "
        "APPEND to the ticket visible to another PostgreSQL session (polled every 20 ms).",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" (seed {args.seed}).{' ' + args.note if args.note else ''}",
        "",
        "## APPEND to committed ticket",
        "",
        "| Mailboxes held | Mails | p50 | p95 | max | lost | target p50 <= 2 s, p95 <= 5 s |",
        "|---:|---:|---:|---:|---:|---:|:--|",
    ]
    for key, count in (("one", 1), ("fifty", 50)):
        delays, lost = results[key]
        if delays:
            p50, p95 = statistics.median(delays), percentile(delays, 0.95)
            met = p50 <= TARGETS["p50"] and p95 <= TARGETS["p95"] and not lost
            met = "yes" if met else "**no**"
            lines.append(
                f"| {count} | {len(delays) + len(lost)} | {p50:.2f} s | {p95:.2f} s | "
                f"{max(delays):.2f} s | {len(lost)} | {met} |"
            )
    server = results["server"]
    lines += [
        f"| plain IDLE client, no Odoo | {len(server)} | {statistics.median(server):.2f} s | "
        f"{percentile(server, 0.95):.2f} s | {max(server):.2f} s | 0 | APPEND to `* n EXISTS` |",
        "",
        "The last row is the IMAP server's own share, measured with a plain IMAP client: "
        "Dovecot announces a new mail about half a second after it is stored. The rest is "
        "the trigger, the cron worker waking and the fetch. With another IMAP server, its "
        "own delay takes the place of Dovecot's.",
    ]
    cpu, rss, rss_one = results["idle"]
    found, all_back, downtime = results["restart"]
    lines += [
        "",
        f"Duplicated tickets over the whole run: {results['duplicates']}.",
        "",
        "## Idle cost of the listener (50 mailboxes, no mail)",
        "",
        "| Measure | Value | Target | Met |",
        "|:--|---:|---:|:--|",
        f"| CPU over {args.idle_seconds:.0f} s | {cpu:.3f} % | < 1 % | "
        f"{verdict(cpu, TARGETS['cpu'])} |",
        f"| RSS of the process, 50 mailboxes | {rss:.1f} MB | | |",
        f"| RSS of the same process with 1 mailbox | {rss_one:.1f} MB | | |",
        f"| RSS that 49 more mailboxes cost | {rss - rss_one:.1f} MB | < 50 MB | "
        f"{verdict(rss - rss_one, TARGETS['rss'])} |",
        "",
        "The process is a whole Odoo (`odoo-bin mail_ticket_idle` loads the registry to log "
        "in as the fetch does); inside `odoo-bin` with mail_ticket server-wide the listener "
        "shares the server's process and costs only the growth.",
        "",
        "## Dovecot restart",
        "",
        f"Dovecot stopped, started again {downtime:.1f} s later, a mail appended at once:",
        "",
        "| Measure | Value | Target | Met |",
        "|:--|---:|---:|:--|",
        f"| Restart to that mail's ticket committed | "
        f"{f'{found:.2f} s' if found is not None else 'never'} | <= 30 s | "
        f"{verdict(found, TARGETS['restart'])} |",
        f"| Restart to all 50 mailboxes held again | {all_back:.2f} s | | |",
        "",
        "The listener retries with exponential backoff (1 s, 2 s, 4 s, ... up to "
        "`mail_ticket_idle_backoff_max`, 120 s), and each connection triggers a fetch for "
        "what arrived while it was away.",
        "",
    ]
    delays, lost = results["kills"]
    lines += [
        "## Processes killed mid-run",
        "",
        f"{len(delays) + len(lost)} more mails over the 50 mailboxes; before mail "
        f"{args.mails_kill // 3 + 1} the listener is killed (SIGKILL) and started again, "
        f"before mail {2 * (args.mails_kill // 3) + 1} the cron-only Odoo is. A mail "
        "that arrives while nobody listens is fetched when the new listener connects "
        "(each connection triggers a fetch), or by the restarted cron workers.",
        "",
        "| Mails | lost | duplicated (whole run) | p50 | max |",
        "|---:|---:|---:|---:|---:|",
        f"| {len(delays) + len(lost)} | {len(lost)} | {results['duplicates']} | "
        f"{statistics.median(delays):.2f} s | {max(delays):.2f} s |",
    ]
    path.write_text("\n".join(lines).rstrip("\n") + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db", default="bench_idle")
    parser.add_argument("--db-user", default=os.environ.get("PGUSER", ""))
    parser.add_argument("--db-host", default=os.environ.get("PGHOST", ""))
    parser.add_argument("--db-port", default=os.environ.get("PGPORT", ""))
    parser.add_argument("--mails", type=int, default=40, help="mails with 1 mailbox")
    parser.add_argument("--mails-50", type=int, default=100, help="mails with 50 mailboxes")
    parser.add_argument("--mails-kill", type=int, default=30, help="mails while processes die")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--note", default="")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--output", default=str(HERE / "IDLE.md"))
    args = parser.parse_args()

    from odoo.tools import config  # noqa: PLC0415

    config.parse_config(odoo_options(args), setup_logging=False)
    workdir = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    workdir.chmod(0o711)  # Dovecot's user traverses it
    print(f"logs in {workdir}", flush=True)
    results = Bench(args, workdir).run()
    report(args, results, Path(args.output))
    print(f"wrote {args.output}", flush=True)


if __name__ == "__main__":
    main()
