"""Two teams, each with its own support mailbox, over a real IMAP server and SMTP sink.

Mail goes into two Dovecot accounts; each Incoming Mail Server routes its tickets to its
team. The tickets start in the team's first stage, go to the team's agents, carry the
deadline of the team's SLA policy on the team's working hours, and closing one in a
stage that asks for a rating sends the customer the rating mail, captured by the sink.
"""

import re
import time
from datetime import timedelta

from odoo_env import create_ticket_server, make_mail
from test_conversation import make_agent

from odoo import Command

RATE_LINK = re.compile(r"/rate/([0-9a-f]{32})/5\b")


def working_deadline(start, hours, days=range(5), day_start=8, day_end=17):
    """``start`` plus ``hours`` of working time, Monday to Friday 8:00-17:00 (UTC),
    counted minute by minute: the deadline worked out without Odoo's calendar code."""
    moment, left = start.replace(second=0, microsecond=0), round(hours * 60)
    while left:
        if moment.weekday() in days and day_start <= moment.hour < day_end:
            left -= 1
        moment += timedelta(minutes=1)
    return moment


def wait_for_rating_mail(smtp_outbox, timeout=10):
    """The mails of the sink that ask for a rating, once one has come."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            mail
            for mail in smtp_outbox.messages()
            if "/rate/" in mail.get_body(("html", "plain")).get_content()
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_two_mailboxes_of_two_teams(odoo_db, odoo_smtp, dovecot, imap_account, smtp_outbox):
    care_box, tech_box = imap_account, dovecot.new_account()
    login = care_box.login.split("@")[0]
    with odoo_db.env() as env:
        care_agent = make_agent(env, f"care-{login}", "Carla Care")
        tech_agents = make_agent(env, f"tech1-{login}", "Tim Technik") | make_agent(
            env, f"tech2-{login}", "Tina Technik"
        )
        office_hours = env["resource.calendar"].create(
            {
                "name": f"Technik {login}",
                "tz": "UTC",
                "attendance_ids": [
                    Command.create(
                        {
                            "name": f"day {day}",
                            "dayofweek": str(day),
                            "hour_from": 8,
                            "hour_to": 17,
                            "day_period": "full_day",
                        }
                    )
                    for day in range(5)
                ],
            }
        )
        analysis = env["mail.ticket.stage"].create({"name": "Analyse", "sequence": 0})
        done = env["mail.ticket.stage"].create(
            {
                "name": "Behoben",
                "sequence": 90,
                "is_closed": True,
                "rating_template_id": env.ref("mail_ticket.mail_template_ticket_rating").id,
            }
        )
        care = env["mail.ticket.team"].create(
            {
                "name": f"Kundenservice {login}",
                "member_ids": [Command.set(care_agent.ids)],
                "assignment": "user",
                "assign_user_id": care_agent.id,
                "resource_calendar_id": False,  # around the clock
            }
        )
        tech = env["mail.ticket.team"].create(
            {
                "name": f"Technik {login}",
                "member_ids": [Command.set(tech_agents.ids)],
                "stage_ids": [Command.set((analysis | done).ids)],
                "assignment": "balanced",
                "resource_calendar_id": office_hours.id,
                "visibility": "members",
            }
        )
        for team, hours, target in ((care, 4, "mail_ticket.stage_solved"), (tech, 2, None)):
            env["mail.ticket.sla"].create(
                {
                    "name": f"Antwort in {hours} Stunden",
                    "team_id": team.id,
                    "time": hours,
                    "stage_id": done.id if target is None else env.ref(target).id,
                }
            )
        servers = {
            "care": create_ticket_server(
                env, care_box, ticket_team_id=care.id, ticket_send_ack=False
            ),
            "tech": create_ticket_server(
                env, tech_box, ticket_team_id=tech.id, ticket_send_ack=False
            ),
        }
        ids = {
            "care": care.id,
            "tech": tech.id,
            "care_agent": care_agent.id,
            "tech_agents": set(tech_agents.ids),
            "analysis": analysis.id,
            "done": done.id,
            "stages": (analysis | done).ids,
            "calendar": office_hours.id,
        }
        server_ids = {key: server.id for key, server in servers.items()}
    try:
        care_box.append(make_mail("Rechnung doppelt abgebucht", to=care_box.login))
        for index in range(2):
            tech_box.append(
                make_mail(
                    f"Server {index + 1} antwortet nicht",
                    sender=f'"Kunde {index}" <kunde{index}.{login}@example.org>',
                    to=tech_box.login,
                )
            )
        odoo_db.run_cron()
        with odoo_db.env() as env:
            Ticket = env["mail.ticket"]
            (billing,) = Ticket.search([("fetchmail_server_id", "=", server_ids["care"])])
            outages = Ticket.search([("fetchmail_server_id", "=", server_ids["tech"])], order="id")
            assert len(outages) == 2

            # each mailbox's tickets are its team's, in the team's first stage
            assert billing.team_id.id == ids["care"]
            assert billing.stage_id == env.ref("mail_ticket.stage_open"), "the shared first stage"
            assert billing.user_id.id == ids["care_agent"]
            assert set(outages.team_id.ids) == {ids["tech"]}
            assert set(outages.stage_id.ids) == {ids["analysis"]}, "the team's own first stage"
            assert set(outages.user_id.ids) == ids["tech_agents"], "members in turn"

            # the SLA deadline on each team's hours: around the clock, or office hours
            assert billing.sla_status == "ongoing"
            assert abs(billing.sla_deadline - (billing.create_date + timedelta(hours=4))) < (
                timedelta(minutes=2)
            )
            for outage in outages:
                assert outage.sla_status == "ongoing"
                expected = working_deadline(outage.create_date, 2)
                assert abs(outage.sla_deadline - expected) < timedelta(minutes=2), (
                    outage.create_date,
                    outage.sla_deadline,
                    expected,
                )

            # an agent of the other team does not see the members-only team's tickets
            assert not Ticket.with_user(ids["care_agent"]).search([("id", "in", outages.ids)])

            # the agent solves an outage: SLA reached, the customer is asked to rate
            outage = outages[0]
            agent = outage.user_id
            outage.with_user(agent).stage_id = ids["done"]
            assert outage.sla_status == "reached"
            number, customer = outage.number, outage.partner_id.email_normalized
        smtp_outbox.clear()
        with odoo_db.env() as env:
            env["mail.mail"].sudo().process_email_queue()
        (rating_mail,) = wait_for_rating_mail(smtp_outbox)
        assert f"[{number}]" in rating_mail["Subject"]
        assert customer in rating_mail["To"].lower()
        html = rating_mail.get_body(("html",)).get_content()
        (token,) = set(RATE_LINK.findall(html))
        with odoo_db.env() as env:
            rating = env["mail.ticket"].browse(outage.id).rating_ids
            assert rating.access_token == token and not rating.consumed
            assert rating.parent_res_model == "mail.ticket.team"
            assert rating.parent_res_id == ids["tech"], "the team's ratings"
    finally:
        with odoo_db.env() as env:
            env["mail.ticket"].search(
                [("fetchmail_server_id", "in", list(server_ids.values()))]
            ).unlink()
            env["fetchmail.server"].browse(list(server_ids.values())).unlink()
            env["mail.ticket.team"].browse([ids["care"], ids["tech"]]).unlink()
            env["mail.ticket.stage"].browse(ids["stages"]).unlink()
            env["resource.calendar"].browse(ids["calendar"]).unlink()
