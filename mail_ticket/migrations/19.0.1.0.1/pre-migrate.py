from odoo.tools import sql


def migrate(cr, version):
    """Indexes of the agents' views at scale: the ticket number is searched with
    ``ilike`` (a trigram index, created by the ORM under the name of the former
    B-tree one, which must go first), and the single-column indexes of the stage and
    the priority give way to the composite ones in the model's order."""
    for column in ("number", "priority", "stage_id"):
        sql.drop_index(cr, sql.make_index_name("mail_ticket", column), "mail_ticket")
