"""Databases of the benchmark: installed templates, fresh copies, large ticket bases.

Each product is installed once per run into a template database
(``bench_tpl_<product>``, ``python -m odoo -i ... --stop-after-init``, no demo data); every
repetition works on a fresh copy (``CREATE DATABASE ... TEMPLATE``, a few seconds).

``populate`` adds existing tickets with plain SQL (``INSERT ... SELECT generate_series``):
customers, followers, ten messages per ticket (the first the customer's mail, then mails
and agents' notes), one ``mail.ticket.comment`` per later message, so that a base of
100,000 tickets has 1,000,000 ``mail_message`` rows. ``ANALYZE`` follows, as autovacuum
would do on a production base.
"""

import subprocess
import time

import psycopg2
from psycopg2 import sql as pg_sql

MESSAGES_PER_TICKET = 10


class Postgres:
    def __init__(self, host, port, user):
        self.host, self.port, self.user = host, port, user

    def connect(self, dbname="postgres"):
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=dbname)
        conn.autocommit = True
        return conn

    def _run(self, query, params=(), dbname="postgres"):
        """Run one statement on a connection of its own; return the first row or None."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cr:
                cr.execute(query, params)
                return cr.fetchone() if cr.description else None
        finally:
            conn.close()

    def exists(self, dbname):
        return bool(self._run("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]))

    def drop(self, dbname):
        self._run(
            pg_sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pg_sql.Identifier(dbname))
        )

    def copy(self, template, dbname):
        self.drop(dbname)
        self._run(
            pg_sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                pg_sql.Identifier(dbname), pg_sql.Identifier(template)
            )
        )

    def installed(self, dbname, module):
        if not self.exists(dbname):
            return False
        try:
            return bool(
                self._run(
                    "SELECT 1 FROM ir_module_module WHERE name = %s AND state = 'installed'",
                    [module],
                    dbname,
                )
            )
        except psycopg2.Error:
            return False

    def version(self):
        return self._run("SHOW server_version")[0]


def install(pg, python, env, dbname, module, addons_path, logfile, reuse=False):
    """Install ``module`` into a new database ``dbname``; seconds taken (0 when reused)."""
    if reuse and pg.installed(dbname, module):
        return 0.0
    pg.drop(dbname)
    started = time.monotonic()
    with open(logfile, "w") as log:
        subprocess.run(
            [
                python,
                "-m",
                "odoo",
                "-d",
                dbname,
                "-i",
                module,
                "--stop-after-init",
                f"--addons-path={addons_path}",
                f"--db_host={pg.host}",
                f"--db_port={pg.port}",
                f"--db_user={pg.user}",
                "--without-demo=all",
                "--log-level=warn",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    if not pg.installed(dbname, module):
        raise RuntimeError(f"{module} did not install into {dbname}: see {logfile}")
    return time.monotonic() - started


POPULATE_SQL = """
CREATE TEMP TABLE bench_ctx AS SELECT
    (SELECT id FROM res_company ORDER BY id LIMIT 1) AS company_id,
    (SELECT res_id FROM ir_model_data WHERE module = 'mail' AND name = 'mt_comment') AS mt_comment,
    (SELECT res_id FROM ir_model_data WHERE module = 'mail' AND name = 'mt_note') AS mt_note,
    (SELECT array_agg(id ORDER BY sequence, id) FROM mail_ticket_stage) AS stages,
    (SELECT partner_id FROM res_users WHERE id = 2) AS agent_partner;

-- customers: one per ten tickets
CREATE TEMP TABLE bench_partner AS
WITH new AS (
    INSERT INTO res_partner (name, complete_name, email, email_normalized, active, type,
                             is_company, create_uid, write_uid, create_date, write_date, lang)
    SELECT 'Customer ' || i, 'Customer ' || i, 'customer' || i || '@populated.example.com',
           'customer' || i || '@populated.example.com', true, 'contact', false, 1, 1,
           now(), now(), 'en_US'
      FROM generate_series(1, %(partners)s) AS i
    RETURNING id
) SELECT row_number() OVER (ORDER BY id) AS n, id FROM new;

INSERT INTO mail_ticket (number, number_int, number_prefix, name, stage_id, priority,
                         partner_id, email_from, company_id, active, created_from_email,
                         color, create_uid, write_uid, create_date, write_date,
                         date_last_customer_message)
SELECT 'TICKET-' || CASE WHEN i < 100 THEN lpad(i::text, 3, '0') ELSE i::text END, i, 'TICKET-',
       (ARRAY['Drucker druckt nur leere Seiten', 'Invoice shows the wrong VAT rate',
              'Login to the portal fails', 'Lieferung unvollständig',
              'VPN disconnects every ten minutes'])[1 + i %% 5] || ' #' || i,
       c.stages[1 + (i %% array_length(c.stages, 1))],
       (i %% 4)::text, p.id, 'customer' || p.n || '@populated.example.com', c.company_id,
       true, true, 0, 1, 1,
       now() - make_interval(mins => %(tickets)s - i),
       now() - make_interval(mins => %(tickets)s - i),
       now() - make_interval(mins => %(tickets)s - i)
  FROM generate_series(1, %(tickets)s) AS i
  CROSS JOIN bench_ctx AS c
  JOIN bench_partner AS p ON p.n = 1 + (i %% %(partners)s);

CREATE TEMP TABLE bench_ticket AS
SELECT id, partner_id, email_from, number_int, create_date FROM mail_ticket
 WHERE email_from LIKE '%%@populated.example.com';

INSERT INTO mail_followers (res_model, res_id, partner_id)
SELECT 'mail.ticket', t.id, t.partner_id FROM bench_ticket AS t
UNION ALL
SELECT 'mail.ticket', t.id, c.agent_partner FROM bench_ticket AS t CROSS JOIN bench_ctx AS c
 WHERE t.number_int %% 3 = 0;

INSERT INTO mail_followers_mail_message_subtype_rel (mail_followers_id, mail_message_subtype_id)
SELECT f.id, c.mt_comment FROM mail_followers AS f CROSS JOIN bench_ctx AS c
 WHERE f.res_model = 'mail.ticket' AND f.res_id IN (SELECT id FROM bench_ticket);

INSERT INTO mail_message (model, res_id, record_company_id, message_type, subtype_id, body,
                          subject, author_id, email_from, date, message_id, reply_to,
                          create_uid, write_uid, create_date, write_date, is_internal)
SELECT 'mail.ticket', t.id, c.company_id,
       CASE WHEN k %% 3 = 2 THEN 'comment' ELSE 'email' END,
       CASE WHEN k %% 3 = 2 THEN c.mt_note ELSE c.mt_comment END,
       '<p>Message ' || k || ' of the ticket: the printer in room ' || (t.id %% 97)
           || ' still prints blank pages.</p>',
       CASE WHEN k = 0 THEN 'Ticket ' || t.number_int ELSE NULL END,
       CASE WHEN k %% 3 = 2 THEN c.agent_partner ELSE t.partner_id END,
       CASE WHEN k %% 3 = 2 THEN 'agent@example.com' ELSE t.email_from END,
       t.create_date + make_interval(hours => k),
       '<populated.' || t.id || '.' || k || '@mail.example.com>', NULL, 1, 1,
       t.create_date + make_interval(hours => k), t.create_date + make_interval(hours => k),
       k %% 3 = 2
  FROM bench_ticket AS t
  CROSS JOIN generate_series(0, %(per_ticket)s - 1) AS k
  CROSS JOIN bench_ctx AS c;

INSERT INTO mail_ticket_comment (ticket_id, message_id, is_from_email, create_uid, write_uid,
                                 create_date, write_date)
SELECT m.res_id, m.id, m.message_type = 'email', 1, 1, m.date, m.date
  FROM mail_message AS m
 WHERE m.model = 'mail.ticket' AND m.message_id LIKE '<populated.%%'
   AND m.message_id NOT LIKE '%%.0@mail.example.com>';
"""


def populate(pg, dbname, tickets, per_ticket=MESSAGES_PER_TICKET):
    """Add ``tickets`` tickets with ``per_ticket`` messages each; returns what was added."""
    started = time.monotonic()
    conn = pg.connect(dbname)
    conn.autocommit = False
    try:
        with conn.cursor() as cr:
            cr.execute(
                POPULATE_SQL,
                {
                    "tickets": tickets,
                    "partners": max(tickets // 10, 1),
                    "per_ticket": per_ticket,
                },
            )
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute("ANALYZE")
            counts = {}
            for table in (
                "mail_ticket",
                "mail_message",
                "mail_ticket_comment",
                "res_partner",
                "mail_followers",
            ):
                cr.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cr.fetchone()[0]
    finally:
        conn.close()
    return {"seconds": time.monotonic() - started, "rows": counts}
