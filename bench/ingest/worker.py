"""One Odoo process of the benchmark: ``python -m bench.ingest.worker JOB.json``.

The driver (``bench/ingest/__main__.py``) writes a job file and reads back the JSON the
worker writes to ``job["result"]``. Odoo logs to ``job["logfile"]``. Only public entry
points are used, so the benchmark measures whatever the addon's code is today:

setup    known customers and portal users, an SMTP sink as outgoing server, the
         Incoming Mail Servers (and the sequence's next number, an agent user)
drain    run the fetch the way the cron does, until the mailbox is drained
process  ``mail.thread.message_process`` with fetchmail's context, one commit per mail
views    the agents' kanban and list loads and searches, as the web client calls them

A job runs one task, or several in a row (``steps``, each with its own parameters) to
spare a second registry load; a step without ``server_id`` takes the setup's server.

Nothing is sent: every SMTP connection in the worker is refused and ``mail.mail.send``
only counts its calls (both reported, both should stay 0).
"""

import ast
import imaplib
import json
import re
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from lxml import etree


class QueryRecorder:
    """Counts every query this thread runs, on any cursor (``odoo.sql_db`` query hook)."""

    def __init__(self):
        self.count = 0

    def __call__(self, cr, query, params, start, delay):
        self.count += 1

    def install(self):
        thread = threading.current_thread()
        thread.query_hooks = (*getattr(thread, "query_hooks", ()), self)


class QueryOrigins:
    """Where the queries of the profiled mails come from (``--profile``): per query, the
    innermost frame of the product's own addon (``mail_ticket/``, ``helpdesk_mgmt/``),
    the Odoo function it called, and the statement's verb and table, so that a query of
    core that the addon's hook triggered is told from one core makes alone (the flush
    at commit has no addon frame: its table tells what it writes)."""

    STATEMENT = re.compile(
        r'^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM|WITH)\b.*?(?:FROM|INTO|UPDATE)?\s*"(\w+)"',
        re.IGNORECASE | re.DOTALL,
    )

    def __init__(self, product):
        self.marker = f"/{product}/"
        self.active = False
        self.origins = Counter()

    def __call__(self, cr, query, params, start, delay):
        if not self.active:
            return
        frame, own, callee = sys._getframe(1), "-", "-"
        while frame:
            path = frame.f_code.co_filename
            if self.marker in path and "/bench/" not in path:
                own = f"{path.split(self.marker)[-1]}:{frame.f_code.co_name}"
                break
            if "/odoo/" in path and "/sql_db.py" not in path:
                callee = f"{path.split('/odoo/')[-1]}:{frame.f_code.co_name}"
            frame = frame.f_back
        text = query if isinstance(query, str) else getattr(query, "code", str(query))
        match = self.STATEMENT.match(text[:2000])
        statement = f"{match[1].upper()} {match[2]}" if match else text[:40].replace("\n", " ")
        self.origins[f"{own} > {callee} | {statement}"] += 1

    def install(self):
        thread = threading.current_thread()
        thread.query_hooks = (*getattr(thread, "query_hooks", ()), self)


class ImapCounter:
    """Counts the IMAP commands of every ``imaplib`` connection of this process."""

    def __init__(self):
        self.commands = Counter()
        self.active = False

    def install(self):
        original = imaplib.IMAP4._command
        counter = self

        def _command(connection, name, *args):
            if counter.active:
                counter.commands[name] += 1
            return original(connection, name, *args)

        imaplib.IMAP4._command = _command


class SendGuard:
    """Refuses every SMTP connection and counts ``mail.mail.send()`` calls."""

    def __init__(self):
        self.smtp_attempts = 0
        self.send_calls = 0

    def install(self, registry):
        import smtplib  # noqa: PLC0415

        guard = self

        def refuse(self, *args, **kwargs):
            guard.smtp_attempts += 1
            raise OSError("bench: outgoing SMTP is disabled")

        smtplib.SMTP.connect = refuse
        smtplib.SMTP_SSL.connect = refuse

        def send(records, *args, **kwargs):
            guard.send_calls += 1
            return True

        registry["mail.mail"].send = send


def _unseen(imap, folder="INBOX"):
    """UNSEEN messages of ``folder``, read on the driver's own connection (not counted)."""
    typ, data = imap.select(f'"{folder}"', readonly=True)
    if typ != "OK":
        return 0
    typ, data = imap.uid("SEARCH", "UNSEEN")
    return len(b" ".join(d for d in data if d).split())


# ---------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------


def task_setup(env, job):
    """Customers, the SMTP sink, mail servers; returns their ids and scheduled jobs."""
    from odoo import Command  # noqa: PLC0415

    partners = env["res.partner"].create(job.get("partners", []))
    portal = env.ref("base.group_portal")
    users = (
        env["res.users"]
        .with_context(no_reset_password=True)
        .create(
            [
                {
                    "name": user["name"],
                    "login": user["email"],
                    "email": user["email"],
                    "group_ids": [Command.set(portal.ids)],
                }
                for user in job.get("portal_users", [])
            ]
        )
    )
    if job.get("smtp"):
        env["ir.mail_server"].search([]).unlink()
        env["ir.mail_server"].create(
            {
                "name": "bench sink",
                "smtp_host": job["smtp"]["host"],
                "smtp_port": job["smtp"]["port"],
                "smtp_encryption": "none",
            }
        )
    result = {"partners": len(partners), "portal_users": len(users), "servers": []}
    Server = env["fetchmail.server"]
    for spec in job.get("servers", []):
        server = Server.create(
            {
                "name": spec["name"],
                "server_type": "imap",
                "server": spec["host"],
                "port": spec["port"],
                "is_ssl": False,
                "user": spec["login"],
                "password": spec["password"],
                "object_id": env["ir.model"]._get_id(spec["model"]),
            }
        )
        if spec.get("address") and "ticket_reply_to" in server._fields:
            # the address the customers write to, as an admin sets it on a mailbox whose
            # login is no address (mail_ticket's "Support Address")
            server.ticket_reply_to = spec["address"]
        if spec.get("confirm", True):
            server.button_confirm_login()
        cron = server.ticket_cron_id if "ticket_cron_id" in server._fields else None
        result["servers"].append({"id": server.id, "cron_id": cron.id if cron else False})
    if job.get("sequence_next"):
        sequence = env["ir.sequence"].search([("code", "=", "mail.ticket")], limit=1)
        sequence.number_next = job["sequence_next"]
    if job.get("agent"):
        user = env["res.users"].create(
            {
                "name": "Bench Agent",
                "login": "bench_agent",
                "email": "agent@example.com",
                "group_ids": [(4, env.ref("mail_ticket.mail_ticket_group_user").id)],
            }
        )
        result["agent_id"] = user.id
    result["shared_cron_id"] = env.ref("mail.ir_cron_mail_gateway_action").id
    return result


def _fetch_job(server):
    """The scheduled job that fetches ``server``: its own when the addon gives it one."""
    own = server.ticket_cron_id if "ticket_cron_id" in server._fields else None
    if own:
        return own, "ticket_cron_id"
    return server.env.ref("mail.ir_cron_mail_gateway_action"), "shared fetchmail cron"


def _runs(server):
    """The model of the server's fetch run records (``ticket_fetch_run_ids``), or None."""
    field = server._fields.get("ticket_fetch_run_ids")
    if field is None:
        return None, None
    return server.env[field.comodel_name].sudo(), field.inverse_name


def _new_runs(server, after_id):
    Run, inverse = _runs(server)
    return Run.search([(inverse, "=", server.id), ("id", ">", after_id)], order="id")


def task_drain(env, job, recorder, imap_counter):
    """Run the server's scheduled job until its mailbox is drained, timing only the runs.

    helpdesk_mgmt (stock fetchmail): drained when the folder has no UNSEEN mail left.
    mail_ticket: drained when the fetch runs of the last job run left nothing (a job run
    that records no fetch run fetched nothing); without fetch run records, as stock.
    """
    server = env["fetchmail.server"].browse(job["server_id"])
    cron, job_kind = _fetch_job(server)
    account = job["imap"]
    check = imaplib.IMAP4(account["host"], account["port"], timeout=30)
    check.login(account["login"], account["password"])
    folder = server.ticket_folder if "ticket_folder" in server._fields else "INBOX"
    Run, _inverse = _runs(server)
    by_runs = job["product"] == "mail_ticket" and Run is not None
    last_id = Run.search([], order="id desc", limit=1).id or 0 if by_runs else 0
    first_id = last_id
    runs, seconds, queries, drained = 0, 0.0, 0, False
    imap_counter.commands.clear()
    profiler, origins = _profiler(job)
    while runs < job.get("max_runs", 50):
        env.cr.commit()
        q0, t0 = recorder.count, time.perf_counter()
        imap_counter.active = True
        if profiler:
            origins.active = True
            profiler.enable()
        cron.method_direct_trigger()
        if profiler:
            profiler.disable()
            origins.active = False
        imap_counter.active = False
        seconds += time.perf_counter() - t0
        queries += recorder.count - q0
        runs += 1
        env.cr.commit()  # a new snapshot: see what the run committed
        env.invalidate_all()
        if by_runs:
            new = _new_runs(server, last_id)
            last_id = max([last_id, *new.ids])
            drained = not any(
                getattr(run, "left_count", 0) or getattr(run, "error", False) for run in new
            )
        else:
            drained = _unseen(check, folder) == 0
        if drained:
            break
    check.logout()
    if profiler:
        _write_profile(job["profile"], profiler, origins, len(job.get("message_ids", ())) or 1)
    ingested, by_kind = _ingested(env, job)
    return {
        "ingested_by_kind": by_kind,
        "job": job_kind,
        "runs": runs,
        "drained": drained,
        "seconds": seconds,
        "queries": queries,
        "imap_commands": dict(imap_counter.commands),
        "ingested": ingested,
        "fetch_run_records": len(_new_runs(server, first_id)) if by_runs else None,
    }


def _ingested(env, job):
    """How many of the job's ``message_ids`` are in ``mail_message``, in all and per kind
    (``message_kinds``, in the same order, when given)."""
    ids = job.get("message_ids", [])
    found = set(env["mail.message"].search([("message_id", "in", ids)]).mapped("message_id"))
    by_kind = {}
    for message_id, kind in zip(ids, job.get("message_kinds") or [], strict=False):
        by_kind.setdefault(kind, [0, 0])
        by_kind[kind][0] += message_id in found
        by_kind[kind][1] += 1
    return sum(1 for message_id in ids if message_id in found), by_kind


def task_process(env, job, recorder):
    """Each mail through ``message_process`` with fetchmail's context, then a commit.

    With ``profile`` (a path prefix), the mails also run under cProfile (``.prof``, and
    the top functions in ``.txt``) and every query is counted by where it comes from
    (``QueryOrigins``, in the ``.txt``): the timings of such a run are the profiler's."""
    server = env["fetchmail.server"].browse(job["server_id"])
    thread = env["mail.thread"].with_context(
        fetchmail_cron_running=True,
        default_fetchmail_server_id=server.id,
    )
    profiler, origins = _profiler(job)
    rows = []
    for path, kind in zip(job["mails"], job["kinds"], strict=True):
        raw = Path(path).read_bytes()
        q0, t0 = recorder.count, time.perf_counter()
        error = None
        if profiler:
            origins.active = True
            profiler.enable()
        try:
            thread.message_process(job["model"], raw)
            env.cr.commit()
        except Exception as exc:  # fetchmail rolls back and goes on
            env.cr.rollback()
            error = f"{type(exc).__name__}: {exc}"
        if profiler:
            profiler.disable()
            origins.active = False
        rows.append(
            {
                "kind": kind,
                "seconds": time.perf_counter() - t0,
                "queries": recorder.count - q0,
                "error": error,
            }
        )
        env.invalidate_all()
    if profiler:
        _write_profile(job["profile"], profiler, origins, len(rows))
    ingested, by_kind = _ingested(env, job)
    return {"rows": rows, "ingested": ingested, "ingested_by_kind": by_kind}


def _profiler(job):
    """``(cProfile.Profile, QueryOrigins)`` when the job asks for a profile, else Nones."""
    if not job.get("profile"):
        return None, None
    import cProfile  # noqa: PLC0415

    origins = QueryOrigins(job["product"])
    origins.install()
    return cProfile.Profile(), origins


def _write_profile(prefix, profiler, origins, mails):
    import io  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    profiler.dump_stats(f"{prefix}.prof")
    out = io.StringIO()
    out.write(f"{mails} mails, {sum(origins.origins.values())} queries\n\n")
    out.write("queries per mail by origin (own addon frame > innermost Odoo frame)\n")
    for origin, count in origins.origins.most_common(70):
        out.write(f"{count / mails:8.2f}  {origin}\n")
    out.write("\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    Path(f"{prefix}.txt").write_text(out.getvalue())


def _view_spec(env, model, view_type):
    """The fields the web client reads for a view: its top-level ``<field>`` nodes."""
    Model = env[model]
    arch = Model.get_views([(False, view_type)])["views"][view_type]["arch"]
    root = etree.fromstring(arch.encode())
    spec = {}
    for node in root.iter("field"):
        if any(parent.tag == "field" for parent in node.iterancestors()):
            continue
        if node.get("optional") == "hide":
            continue
        name = node.get("name")
        field = Model._fields.get(name)
        if field is None:
            continue
        if field.type in ("many2one", "one2many", "many2many"):
            sub = {"display_name": {}}
            if "color" in env[field.comodel_name]._fields and field.type == "many2many":
                sub["color"] = {}
            spec[name] = {"fields": sub}
        else:
            spec[name] = {}
    return spec


def _default_domain(env, model):
    """The domain of the action's default filter (``search_default_open``), if literal."""
    arch = env[model].get_views([(False, "search")])["views"]["search"]["arch"]
    root = etree.fromstring(arch.encode())
    for node in root.iter("filter"):
        if node.get("name") == "open" and node.get("domain"):
            try:
                return ast.literal_eval(node.get("domain"))
            except (ValueError, SyntaxError):
                return []
    return []


def task_views(env, job, recorder):
    """Kanban and list loads and searches of ``mail.ticket`` as an agent, timed."""
    model = "mail.ticket"
    user_env = env(user=job["agent_id"])
    Ticket = user_env[model].with_context(lang="en_US", tz="UTC")
    list_spec = _view_spec(user_env, model, "list")
    kanban_spec = _view_spec(user_env, model, "kanban")
    domain = _default_domain(user_env, model)
    number = job["number"]
    calls = {
        "kanban: stage columns, counts and first cards (web_read_group)": lambda: (
            Ticket.web_read_group(
                domain,
                ["stage_id"],
                ["__count"],
                auto_unfold=True,
                unfold_read_specification=kanban_spec,
                unfold_read_default_limit=40,
            )
        ),
        "list: first 80 rows (web_search_read)": lambda: Ticket.web_search_read(
            domain, list_spec, limit=80, count_limit=10001
        ),
        "list grouped by stage (web_read_group)": lambda: Ticket.web_read_group(
            domain, ["stage_id"], ["__count"]
        ),
        f"name_search by number {number}": lambda: Ticket.name_search(number, limit=8),
        "search by number (list)": lambda: Ticket.web_search_read(
            [("number", "ilike", number)], list_spec, limit=80, count_limit=10001
        ),
        "search by title (list)": lambda: Ticket.web_search_read(
            [("name", "ilike", job["title"])], list_spec, limit=80, count_limit=10001
        ),
        "search by email (list)": lambda: Ticket.web_search_read(
            [("email_from", "ilike", job["email"])], list_spec, limit=80, count_limit=10001
        ),
    }
    result = {}
    for label, call in calls.items():
        env.invalidate_all()
        env.registry.clear_cache()  # the first load after a restart: cold ORM caches
        q0, t0 = recorder.count, time.perf_counter()
        call()
        cold = (time.perf_counter() - t0, recorder.count - q0)
        timings, queries = [], []
        for _ in range(job.get("repeat", 5)):
            env.invalidate_all()
            q0, t0 = recorder.count, time.perf_counter()
            call()
            timings.append(time.perf_counter() - t0)
            queries.append(recorder.count - q0)
        env.cr.rollback()
        result[label] = {
            "median_ms": statistics.median(timings) * 1000,
            "queries": max(queries),
            "cold_ms": cold[0] * 1000,
            "cold_queries": cold[1],
        }
    return {"calls": result, "domain": repr(domain)}


def main():
    job = json.loads(Path(sys.argv[1]).read_text())
    from odoo import SUPERUSER_ID, api, release  # noqa: PLC0415
    from odoo.modules.registry import Registry  # noqa: PLC0415
    from odoo.tools import config  # noqa: PLC0415

    options = [
        "-d",
        job["db"],
        f"--addons-path={job['addons_path']}",
        f"--db_host={job['db_host']}",
        f"--db_port={job['db_port']}",
        f"--db_user={job['db_user']}",
        f"--log-level={job.get('log_level', 'info')}",
        f"--logfile={job['logfile']}",
    ]
    config.parse_config(options, setup_logging=True)
    recorder = QueryRecorder()
    recorder.install()
    imap_counter = ImapCounter()
    imap_counter.install()
    registry = Registry(job["db"])
    guard = SendGuard()
    guard.install(registry)
    tasks = {
        "setup": lambda env, step: task_setup(env, step),
        "drain": lambda env, step: task_drain(env, step, recorder, imap_counter),
        "process": lambda env, step: task_process(env, step, recorder),
        "views": lambda env, step: task_views(env, step, recorder),
    }
    # one task, or several in a row in this process ("steps"): saves a registry load
    steps = job.get("steps") or [{}]
    results = []
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        for params in steps:
            step = {**job, **params}
            if "server_id" not in step and results and results[0].get("servers"):
                step["server_id"] = results[0]["servers"][0]["id"]
            results.append(tasks[step["task"]](env, step))
            cr.commit()
    result = {"steps": results} if job.get("steps") else results[0]
    result["smtp_attempts"] = guard.smtp_attempts
    result["send_calls"] = guard.send_calls
    result["odoo_version"] = release.version
    Path(job["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
