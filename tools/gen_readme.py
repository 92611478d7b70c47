"""Generate an addon's README.rst from its readme/*.md fragments, the OCA way.

OCA writes an addon's documentation as Markdown fragments in ``readme/`` (DESCRIPTION,
INSTALL, CONFIGURE, USAGE, ROADMAP, HISTORY, CONTRIBUTORS, CREDITS) and assembles
README.rst from them with ``oca-gen-addon-readme`` (OCA maintainer-tools, which is not
on the package index). This script produces the same layout: title, badges, the
description, a table of contents, the sections in OCA's order, Bug Tracker and Credits
(authors from the manifest, contributors, maintainers). It converts the Markdown the
fragments use: paragraphs, ``-`` and ``1.`` lists (with indented continuation lines),
``##`` headings, fenced code blocks, images on a line of their own, inline code, links,
emphasis. Anything else it does not guess at: it stops with the fragment and line.

    python tools/gen_readme.py [--addon mail_ticket]            write README.rst
    python tools/gen_readme.py --check [--addon mail_ticket]    fail when README.rst is
        not what the fragments give, or is not valid reStructuredText (docutils, warnings
        count as errors), or when it, the store page or the manifest's images show a
        picture that does not exist; ./dev lint runs this
"""

import argparse
import ast
import hashlib
import io
import re
import sys
from pathlib import Path

import docutils.core
import docutils.utils

REPO = Path(__file__).resolve().parent.parent

# fragment -> section title, in OCA's order (DESCRIPTION has no title of its own)
SECTIONS = [
    ("INSTALL", "Installation"),
    ("CONFIGURE", "Configuration"),
    ("USAGE", "Usage"),
    ("ROADMAP", "Known issues / Roadmap"),
    ("DEVELOP", "Development"),
    ("HISTORY", "Changelog"),
]
LICENSES = {
    "LGPL-3": ("LGPL--3", "http://www.gnu.org/licenses/lgpl-3.0-standalone.html"),
    "AGPL-3": ("AGPL--3", "http://www.gnu.org/licenses/agpl-3.0-standalone.html"),
}

_INLINE_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_HEADING = re.compile(r"^(#{1,3}) (.+)$")
_BULLET = re.compile(r"^[-*] ")
_NUMBERED = re.compile(r"^\d+\. ")


class FragmentError(ValueError):
    pass


def _links(text):
    return _LINK.sub(r"`\1 <\2>`__", _AUTOLINK.sub(r"\1", text))


def inline(text):
    """Markdown inline markup to reStructuredText (code, links; emphasis is the same)."""
    parts = []
    pos = 0
    for match in _INLINE_CODE.finditer(text):
        parts.append(_links(text[pos : match.start()]))
        parts.append(f"``{match.group(1)}``")
        pos = match.end()
    parts.append(_links(text[pos:]))
    return "".join(parts)


def markdown_to_rst(markdown, where):
    """Convert one fragment; ``where`` names it in errors."""
    out = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        lineno = f"{where}:{i + 1}"
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise FragmentError(f"{lineno}: unclosed code block")
            language = line[3:].strip() or "text"
            out += [f".. code-block:: {language}", ""]
            out += [f"   {code}".rstrip() for code in lines[i + 1 : end]]
            out.append("")
            i = end + 1
            continue
        if heading := _HEADING.match(line):
            title = inline(heading.group(2))
            out += [title, "-" * len(title)]
        elif image := _IMAGE.match(line):
            out += [f".. image:: {image.group(2)}", f"   :alt: {image.group(1)}", ""]
        elif _NUMBERED.match(line):
            out.append(_NUMBERED.sub("#. ", inline(line)))
        elif _BULLET.match(line):
            out.append("- " + inline(line[2:]))
        elif line.startswith(("|", ">", "<", "+ ", "***", "---", "===")):
            raise FragmentError(f"{lineno}: Markdown this generator does not convert: {line!r}")
        else:
            out.append(inline(line))
        i += 1
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def read_manifest(addon_dir):
    return ast.literal_eval((addon_dir / "__manifest__.py").read_text())


def fragments(addon_dir):
    readme = addon_dir / "readme"
    return {path.stem: path.read_text() for path in sorted(readme.glob("*.md"))}


def generate(addon_dir):
    manifest = read_manifest(addon_dir)
    parts = fragments(addon_dir)
    if "DESCRIPTION" not in parts:
        raise FragmentError(f"{addon_dir}/readme/DESCRIPTION.md is missing")
    digest = hashlib.sha256(
        "".join(f"{name}\n{text}" for name, text in sorted(parts.items())).encode()
    ).hexdigest()
    name = manifest["name"]
    rule = "=" * len(name)
    badge_license, license_url = LICENSES[manifest["license"]]
    website = manifest.get("website", "")
    out = [
        rule,
        name,
        rule,
        "",
        "..",
        "   !! This file is generated by tools/gen_readme.py from the readme/ fragments !!",
        "   !! (the layout of OCA's oca-gen-addon-readme). Edit those, then run:         !!",
        "   !! ./dev readme                                                              !!",
        f"   !! source digest: sha256:{digest}",
        "",
        ".. |badge1| image:: https://img.shields.io/badge/maturity-Beta-yellow.png",
        "    :target: https://odoo-community.org/page/development-status",
        "    :alt: Beta",
        f".. |badge2| image:: https://img.shields.io/badge/licence-{badge_license}-blue.png",
        f"    :target: {license_url}",
        f"    :alt: License: {manifest['license']}",
        "",
        "|badge1| |badge2|",
        "",
        markdown_to_rst(parts["DESCRIPTION"], "DESCRIPTION.md"),
        "",
        "**Table of contents**",
        "",
        ".. contents::",
        "   :local:",
        "",
    ]
    for fragment, title in SECTIONS:
        if fragment in parts:
            out += [title, "=" * len(title), "", markdown_to_rst(parts[fragment], fragment), ""]
    out += [
        "Bug Tracker",
        "===========",
        "",
        f"Bugs are tracked on `GitHub Issues <{website}/issues>`__. In case of trouble,",
        "please check there if your issue has already been reported.",
        "",
        "Credits",
        "=======",
        "",
        "Authors",
        "-------",
        "",
        *(f"- {author.strip()}" for author in manifest["author"].split(",")),
        "",
    ]
    if "CONTRIBUTORS" in parts:
        out += ["Contributors", "------------", ""]
        out += [markdown_to_rst(parts["CONTRIBUTORS"], "CONTRIBUTORS.md"), ""]
    if "CREDITS" in parts:
        out += ["Other credits", "-------------", ""]
        out += [markdown_to_rst(parts["CREDITS"], "CREDITS.md"), ""]
    out += [
        "Maintainers",
        "-----------",
        "",
        f"This module is maintained by the {manifest['author']}.",
        "",
        f"This module is part of the `{website.rstrip('/').rsplit('/', 1)[-1]} <{website}>`__",
        "project on GitHub. You are welcome to contribute.",
        "",
    ]
    return "\n".join(out)


def missing_pictures(addon_dir, readme):
    """Pictures that README.rst, the store page or the manifest's ``images`` name but that
    do not exist (paths relative to the addon, or to static/description/ in index.html)."""
    names = re.findall(r"^\.\. image:: (\S+)$", readme, re.MULTILINE)
    names += read_manifest(addon_dir).get("images", [])
    store_page = addon_dir / "static" / "description" / "index.html"
    if store_page.is_file():
        names += [
            f"static/description/{src}"
            for src in re.findall(r'<img[^>]* src="([^"]+)"', store_page.read_text())
        ]
    return [name for name in names if "://" not in name and not (addon_dir / name).is_file()]


def rst_problems(text, source):
    """docutils' warnings and errors on ``text`` (none when it is valid)."""
    stream = io.StringIO()
    docutils.core.publish_doctree(
        text,
        source_path=str(source),
        settings_overrides={
            "report_level": docutils.utils.Reporter.WARNING_LEVEL,
            "halt_level": docutils.utils.Reporter.SEVERE_LEVEL + 1,
            "warning_stream": stream,
            "file_insertion_enabled": False,
            "raw_enabled": False,
        },
    )
    return stream.getvalue().splitlines()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--addon", default="mail_ticket")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    addon_dir = REPO / args.addon
    target = addon_dir / "README.rst"
    try:
        text = generate(addon_dir)
    except FragmentError as error:
        print(f"gen_readme: {error}", file=sys.stderr)
        return 1
    if missing := missing_pictures(addon_dir, text):
        print(f"gen_readme: missing pictures: {', '.join(missing)}", file=sys.stderr)
        return 1
    if problems := rst_problems(text, target):
        print("\n".join(["gen_readme: README.rst would not be valid:", *problems]), file=sys.stderr)
        return 1
    if not args.check:
        target.write_text(text)
        print(f"wrote {target.relative_to(REPO)}")
        return 0
    if not target.exists() or target.read_text() != text:
        print(
            f"gen_readme: {target.relative_to(REPO)} is not generated from "
            f"{args.addon}/readme/: run ./dev readme",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
