from . import controllers, models, service, tools, wizard


def uninstall_hook(env):
    """The scheduled actions of the ticket mailboxes run this addon's code: remove them."""
    servers = env["fetchmail.server"].with_context(active_test=False).search([])
    servers._ticket_unlink_crons(servers.ticket_cron_id)
