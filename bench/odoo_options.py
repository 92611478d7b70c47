"""The command-line options by which a benchmark script's Odoo reaches its database."""


def odoo_options(args):
    """``-d``, the addons path and the PostgreSQL connection of ``args`` (argparse:
    ``db``, ``addons_path``, ``db_host``, ``db_port``, ``db_user``), as Odoo's options."""
    options = ["-d", args.db, f"--addons-path={args.addons_path}"]
    for flag, value in (
        ("db_host", args.db_host),
        ("db_port", args.db_port),
        ("db_user", args.db_user),
    ):
        if value:
            options.append(f"--{flag}={value}")
    return options
