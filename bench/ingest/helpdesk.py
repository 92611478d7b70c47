"""Where OCA's helpdesk_mgmt 19.0 comes from: a directory given, else PyPI (--no-deps).

helpdesk_mgmt is never copied into the repository: the wheel is downloaded with
``pip download --no-deps 'odoo-addon-helpdesk-mgmt>=19.0,<19.1'`` into a cache directory
outside it (``$XDG_CACHE_HOME/mail_ticket-bench``, default ``~/.cache/...``) and unpacked
there.
"""

import ast
import os
import subprocess
import zipfile
from pathlib import Path

REQUIREMENT = "odoo-addon-helpdesk-mgmt>=19.0,<19.1"
DEFAULT_PATHS = ["/opt/oca-helpdesk"]


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "mail_ticket-bench"


def check(path, addons_roots):
    """(directory holding helpdesk_mgmt/, manifest) or (None, why it cannot be used)."""
    path = Path(path)
    if (path / "__manifest__.py").exists() and path.name == "helpdesk_mgmt":
        path = path.parent
    manifest = path / "helpdesk_mgmt" / "__manifest__.py"
    if not manifest.exists():
        return None, f"no helpdesk_mgmt/__manifest__.py under {path}"
    data = ast.literal_eval(manifest.read_text())
    if not str(data.get("version", "")).startswith("19.0."):
        return None, f"helpdesk_mgmt at {path} is version {data.get('version')}, not 19.0.x"
    roots = [Path(p) for p in addons_roots] + [path]
    missing = [
        dep
        for dep in data.get("depends", [])
        if not any((root / dep / "__manifest__.py").exists() for root in roots)
    ]
    if missing:
        return None, f"helpdesk_mgmt needs {', '.join(missing)}, on no addons path"
    return path, data


def download(python, log):
    """The OCA wheel from PyPI, unpacked into the cache; returns the addons directory."""
    target = cache_dir() / "helpdesk"
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"downloading {REQUIREMENT} (--no-deps) into {wheels}")
    subprocess.run(
        [python, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), REQUIREMENT],
        check=True,
    )
    wheel = max(wheels.glob("odoo_addon_helpdesk_mgmt-19.0*.whl"), key=os.path.getmtime)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("odoo/addons/helpdesk_mgmt/"):
                archive.extract(name, target)
    return target / "odoo" / "addons"


def locate(given, python, addons_roots, log, fetch=True):
    """(directory, manifest, None) or (None, None, reason): given, env, /opt, cache, PyPI."""
    candidates = [given] if given else []
    if os.environ.get("HELPDESK_MGMT_PATH"):
        candidates.append(os.environ["HELPDESK_MGMT_PATH"])
    candidates += [*DEFAULT_PATHS, str(cache_dir() / "helpdesk" / "odoo" / "addons")]
    reasons = []
    for candidate in candidates:
        path, data = check(candidate, addons_roots)
        if path:
            return path, data, None
        reasons.append(data)
        if given:  # an explicit path is not second-guessed
            return None, None, data
    if not fetch:
        return None, None, "; ".join(reasons)
    try:
        path, data = check(download(python, log), addons_roots)
    except (subprocess.CalledProcessError, ValueError, OSError) as error:
        return None, None, f"download failed: {error}"
    if not path:
        return None, None, data
    return path, data, None
