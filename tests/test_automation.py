"""Odoo's automation rules on tickets: "on stage Solved, after 7 days, close".

base_automation is no dependency of mail_ticket, so this test installs both into a
database of its own, ``<e2e database>_automation`` (no demo data), with Odoo's command
line as an admin would (mail_ticket's install may log nothing); then, in that
database, it creates the rule as the rule form does (time-based trigger on the
tickets' *Closed On*, an *Update Record* action) and runs the automation rules'
scheduled action. The database is dropped when the test passes and kept for
inspection when not.
"""

import os
from datetime import timedelta

import pytest
from odoo_env import load_registry
from test_clean_install import _drop, odoo, odoo_conf

from odoo import fields
from odoo.modules.registry import Registry


@pytest.fixture
def automation_db(tmp_path):
    base = os.environ.get("MAIL_TICKET_E2E_DB")
    if not base:
        raise pytest.UsageError("MAIL_TICKET_E2E_DB names no database: run with ./dev test")
    dbname = f"{base}_automation"
    _drop(dbname)
    conf = odoo_conf(tmp_path)
    # the rules' module first (installing mail there prints docutils' complaints about
    # mail's description: not ours), then the addon next to it, as an admin would
    odoo("-c", str(conf), "-d", dbname, "-i", "base_automation", "--stop-after-init")
    assert odoo("module", "install", "-c", str(conf), "-d", dbname, "mail_ticket") == []
    db = load_registry(dbname)
    yield db
    Registry.delete(dbname)
    _drop(dbname)


def test_solved_tickets_close_after_seven_days(automation_db):
    db = automation_db
    with db.env() as env:
        solved = env.ref("mail_ticket.stage_solved")
        closed = env.ref("mail_ticket.stage_closed")
        customer = env["res.partner"].create({"name": "Sylvie", "email": "sylvie@example.com"})
        Ticket = env["mail.ticket"]
        old, recent, open_ticket = Ticket.create(
            [
                {"name": "Solved eight days ago", "partner_id": customer.id},
                {"name": "Solved two days ago", "partner_id": customer.id},
                {"name": "Still open", "partner_id": customer.id},
            ]
        )
        (old | recent).stage_id = solved
        now = fields.Datetime.now()
        old.date_closed = now - timedelta(days=8)
        recent.date_closed = now - timedelta(days=2)
        open_ticket.date_closed = False

        rule = env["base.automation"].create(
            {
                "name": "Close solved tickets after 7 days",
                "model_id": env["ir.model"]._get_id("mail.ticket"),
                "trigger": "on_time",
                "trg_date_id": env["ir.model.fields"]._get("mail.ticket", "date_closed").id,
                "trg_date_range": 7,
                "trg_date_range_type": "day",
                "filter_domain": repr([("stage_id", "=", solved.id)]),
            }
        )
        env["ir.actions.server"].create(
            {
                "name": "Set the stage Closed",
                "model_id": env["ir.model"]._get_id("mail.ticket"),
                "base_automation_id": rule.id,
                "state": "object_write",
                "update_path": "stage_id",
                "evaluation_type": "value",
                "value": str(closed.id),
            }
        )
        cron = env.ref("base_automation.ir_cron_data_base_automation_check")
        assert cron.active, "a time-based rule switches the rules' scheduled action on"
        ids = old.id, recent.id, open_ticket.id

    with db.env() as env:
        env.ref("base_automation.ir_cron_data_base_automation_check").method_direct_trigger()

    with db.env() as env:
        old, recent, open_ticket = env["mail.ticket"].browse(ids)
        assert old.stage_id == env.ref("mail_ticket.stage_closed")
        assert recent.stage_id == env.ref("mail_ticket.stage_solved"), "not 7 days yet"
        assert open_ticket.stage_id == env.ref("mail_ticket.stage_open")
        # the agents see it in the ticket's history, as any stage change
        tracked = old.message_ids.tracking_value_ids.filtered(
            lambda value: value.field_id.name == "stage_id"
        )
        assert "Closed" in tracked.mapped("new_value_char")
