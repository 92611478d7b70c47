"""Install and uninstall mail_ticket the way a business does, on a database with other apps.

One database, ``<e2e database>_clean``, gets crm, project, website and portal first (no
demo data, as in production). mail_ticket is then installed and uninstalled with Odoo's
``module`` command, which presses the Apps list's *Install* and *Uninstall* buttons
(``button_immediate_install`` / ``button_immediate_uninstall``) in a separate process.
Neither may log a warning or an error, and the uninstall must leave none of the addon's
scheduled actions, server actions, sequences or mail templates behind.

This is the slowest test of the suite (installing website, crm and project takes minutes
on two cores); its database is dropped when it passes and kept for inspection when not.
"""

import contextlib
import os
import subprocess
import sys

import psycopg2
import pytest

from odoo.tools import config

OTHER_APPS = "crm,project,website,portal"
# With log_level = warn Odoo prints nothing else on a clean run: any other line (a logged
# warning or error, a docutils or Python warning on stderr) is a problem.
NOT_A_PROBLEM = {"Running as user 'root' is a security risk."}


def _connect(dbname):
    conn = psycopg2.connect(
        dbname=dbname,
        host=config["db_host"] or None,
        port=config["db_port"] or None,
        user=config["db_user"] or None,
    )
    conn.autocommit = True
    return conn


def _drop(dbname):
    with contextlib.closing(_connect("postgres")) as conn, conn.cursor() as cr:
        cr.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture
def clean_db(tmp_path):
    base = os.environ.get("MAIL_TICKET_E2E_DB")
    if not base:
        raise pytest.UsageError("MAIL_TICKET_E2E_DB names no database: run with ./dev test")
    dbname = f"{base}_clean"
    _drop(dbname)
    yield dbname, odoo_conf(tmp_path)
    _drop(dbname)


def odoo_conf(directory):
    """An Odoo configuration file for Odoo's command line on the tests' databases, its
    addons path the tests' own; warnings and errors only."""
    addons_path = config["addons_path"]
    if not isinstance(addons_path, str):
        addons_path = ",".join(addons_path)
    conf = directory / "odoo.conf"
    conf.write_text(
        "[options]\n"
        f"addons_path = {addons_path}\n"
        f"db_host = {config['db_host'] or ''}\n"
        f"db_port = {config['db_port'] or ''}\n"
        f"db_user = {config['db_user'] or ''}\n"
        "log_level = warn\n"
        "http_enable = False\n"
    )
    return conf


def odoo(*args):
    """Run Odoo's command line; return the lines it printed, but for the expected ones."""
    result = subprocess.run(
        [sys.executable, "-m", "odoo", *args],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"odoo {' '.join(args)} failed:\n{output[-5000:]}"
    return [line for line in output.splitlines() if line.strip() not in NOT_A_PROBLEM]


TABLES = {
    "ir.cron": "ir_cron",
    "ir.actions.server": "ir_act_server",
    "ir.sequence": "ir_sequence",
    "mail.template": "mail_template",
}


def _query(dbname, query, params=None):
    with contextlib.closing(_connect(dbname)) as conn, conn.cursor() as cr:
        cr.execute(query, params)
        return cr.fetchall()


def addon_records(dbname):
    """Ids of the addon's scheduled actions, server actions, sequences and mail templates
    (those of its data files, and any other that names its model)."""
    records = {model: set() for model in TABLES}
    for model, res_id in _query(
        dbname,
        "SELECT model, res_id FROM ir_model_data WHERE module = 'mail_ticket' AND model IN %s",
        [tuple(TABLES)],
    ):
        records[model].add(res_id)
    for model, query in {
        "ir.cron": """
            SELECT c.id FROM ir_cron c JOIN ir_act_server a ON a.id = c.ir_actions_server_id
              JOIN ir_model m ON m.id = a.model_id WHERE m.model LIKE 'mail.ticket%'""",
        "ir.actions.server": """
            SELECT a.id FROM ir_act_server a JOIN ir_model m ON m.id = a.model_id
             WHERE m.model LIKE 'mail.ticket%'""",
        "ir.sequence": "SELECT id FROM ir_sequence WHERE code LIKE 'mail.ticket%'",
        "mail.template": "SELECT id FROM mail_template WHERE model LIKE 'mail.ticket%'",
    }.items():
        records[model].update(row[0] for row in _query(dbname, query))
    return records


def leftovers(dbname, records):
    """What is left of ``records`` (from :func:`addon_records`) and of the addon's data."""
    found = {}
    for model, ids in records.items():
        if ids and (
            rows := _query(dbname, f"SELECT id FROM {TABLES[model]} WHERE id IN %s", [tuple(ids)])
        ):
            found[model] = [row[0] for row in rows]
    for kind, query in {
        "xml ids": "SELECT name FROM ir_model_data WHERE module = 'mail_ticket'",
        "models": "SELECT model FROM ir_model WHERE model LIKE 'mail.ticket%'",
        "sequences": "SELECT code FROM ir_sequence WHERE code LIKE 'mail.ticket%'",
        "mail templates": "SELECT id FROM mail_template WHERE model LIKE 'mail.ticket%'",
        "server actions": """
            SELECT id FROM ir_act_server WHERE code LIKE '%_cron_send_acknowledgements%'""",
    }.items():
        if rows := _query(dbname, query):
            found[kind] = [row[0] for row in rows]
    return found


def test_install_and_uninstall_next_to_other_apps(clean_db):
    dbname, conf = clean_db
    odoo("-c", str(conf), "-d", dbname, "-i", OTHER_APPS, "--stop-after-init")

    assert odoo("module", "install", "-c", str(conf), "-d", dbname, "mail_ticket") == []
    state = "SELECT state FROM ir_module_module WHERE name = 'mail_ticket'"
    assert _query(dbname, state) == [("installed",)]
    records = addon_records(dbname)
    # what is checked below exists: the acknowledgement job, its server action, the ticket
    # sequence and the acknowledgement template
    assert all(records.values()), records

    assert odoo("module", "uninstall", "-c", str(conf), "-d", dbname, "mail_ticket") == []
    assert _query(dbname, state) == [("uninstalled",)]
    assert leftovers(dbname, records) == {}
