from odoo.tools import SQL, sql

# where the mailboxes' assignments wait for their teams (see post-migration.py)
SAVED_TABLE = "mail_ticket_mig_mailbox_assignment"


def migrate(cr, version):
    """19.0.1.1.0 moves who gets a mailbox's new tickets from the mailbox to a team:
    keep the assignment of each mailbox that had one (one agent, or a team in turn)
    before the ORM drops the mailbox's columns, for the post-migration to make teams."""
    save_mailbox_assignments(cr)


def save_mailbox_assignments(cr):
    if not sql.column_exists(cr, "fetchmail_server", "ticket_assignment"):
        return
    members = SQL("ARRAY[]::integer[]")
    if sql.table_exists(cr, "fetchmail_server_ticket_team_rel"):
        members = SQL(
            "ARRAY(SELECT rel.user_id FROM fetchmail_server_ticket_team_rel rel "
            "WHERE rel.server_id = server.id ORDER BY rel.user_id)"
        )
    cr.execute(SQL("DROP TABLE IF EXISTS %s", SQL.identifier(SAVED_TABLE)))
    cr.execute(
        SQL(
            """CREATE TABLE %(table)s AS
            SELECT server.id AS server_id, server.ticket_assignment AS assignment,
                   server.ticket_user_id AS user_id, %(members)s AS member_ids
              FROM fetchmail_server server
             WHERE server.ticket_assignment = 'team'
                OR (server.ticket_assignment = 'user' AND server.ticket_user_id IS NOT NULL)""",
            table=SQL.identifier(SAVED_TABLE),
            members=members,
        )
    )
