"""The language a customer writes in, read from their mail.

A mail may declare its language: a ``Content-Language`` header (RFC 3282: a list of
BCP 47 tags such as ``de-DE, en``) on the message or on its text part. A mail that
declares none is read: the language of its first few KB of text is guessed by
trigrams (``guess_language``, pure Python, a 300-trigram model per language). Either
way, a language counts only if the database has it installed: a tag is mapped to an
installed Odoo language code (``de`` -> ``de_DE``, ``de-AT`` -> ``de_DE`` when only
``de_DE`` is installed, ``pt-BR`` -> ``pt_BR``, ``sr-Latn`` -> ``sr@latin``), or to
none.

Short texts are where trigrams err: a two-line German mail may score closest to
Norwegian, with German a close second. So a guess that is not installed gives way to
the best installed language only when that one scores within ``DETECT_MARGIN`` of it
(German then; never English for a French mail, which scores far apart).

Mails are hostile input: headers are read to bounded lengths, a few parts of the
message at most are looked at, the text is cut before it is read (the guess is linear
in its length), and nothing here raises on what a mail contains.
"""

import contextlib
import logging
import re
import warnings
from importlib import import_module
from itertools import islice

from babel.core import LOCALE_ALIASES

from odoo.tools import html2plaintext

with warnings.catch_warnings():
    # without PyEnchant (not needed: trigram models only) the package warns on import
    warnings.simplefilter("ignore", ImportWarning)
    import guess_language

_logger = logging.getLogger(__name__)

# the package's scoring, read to compare a guess with its runners-up (guess_language
# 0.5.4 returns the best language only); without it, only the best guess counts
_SCORING = all(
    hasattr(guess_language, name)
    for name in ("WORD_RE", "MODEL_ROOT", "create_ordered_model", "distance")
)

__all__ = [
    "declared_languages",
    "detect_language",
    "installed_language",
    "mail_language",
    "parse_content_language",
]

#: A Content-Language header longer than this is cut: tags are short, lists too.
MAX_CONTENT_LANGUAGE_LENGTH = 200
#: At most so many tags of one header are read.
MAX_TAGS = 8
#: At most so many parts of a message are looked at for a text part's header.
MAX_PARTS = 20
#: The HTML read to find the text (a mail body can be megabytes).
DETECT_HTML_LENGTH = 32 * 1024
#: The text whose language is guessed (``guess_language`` reads no more either).
DETECT_TEXT_LENGTH = 4 * 1024
#: Fewer different words than this (of two letters or more) say nothing reliable about
#: the language of a text.
MIN_DETECT_WORDS = 5
#: An installed language scoring within this fraction of the best guess is taken.
DETECT_MARGIN = 0.05

# a BCP 47 tag as mail clients write it: language, then script, region, variants
_TAG_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,5}")
_SUBTAG_SPLIT_RE = re.compile(r"[-_]")
_BASE_SPLIT_RE = re.compile(r"[_@]")
# comments (RFC 5322 CFWS) may surround the tags: none nested in practice
_COMMENT_RE = re.compile(r"\([^()]{0,200}\)")
# scripts Odoo names as variants of a language code
_SCRIPTS = {"latn": "latin", "cyrl": "Cyrl"}


def parse_content_language(value):
    """The language tags a ``Content-Language`` header value lists, in its order,
    normalized (``de-DE``, ``en``); an empty tuple for an empty or unreadable value."""
    if not isinstance(value, str) or not value:
        return ()
    value = _COMMENT_RE.sub(" ", value[:MAX_CONTENT_LANGUAGE_LENGTH])
    tags = []
    for token in islice(value.split(","), MAX_TAGS):
        token = token.strip()
        if token.lower() in ("", "*", "i-default", "und", "mul", "zxx"):
            continue
        if not _TAG_RE.fullmatch(token):
            continue
        language, *subtags = _SUBTAG_SPLIT_RE.split(token)
        tags.append("-".join([language.lower(), *subtags]))
    return tuple(tags)


def _header(part, name):
    """The first value of header ``name`` of ``part``, as it is carried, bounded."""
    name = name.lower()
    for key, value in part.raw_items():
        if key.lower() == name:
            return str(value)[:MAX_CONTENT_LANGUAGE_LENGTH]
    return ""


def declared_languages(message):
    """The language tags ``message`` (an ``email.message.Message``) declares: those of
    its ``Content-Language`` header, else of its first text part's."""
    try:
        tags = parse_content_language(_header(message, "Content-Language"))
        if tags or not message.is_multipart():
            return tags
        for part in islice(message.walk(), MAX_PARTS):
            if part.get_content_maintype() == "text" and not part.is_attachment():
                return parse_content_language(_header(part, "Content-Language"))
    except Exception:  # a header that cannot be read declares nothing
        _logger.debug("Could not read the Content-Language of a mail", exc_info=True)
    return ()


def _base(code):
    """The language of Odoo language code ``code``: ``de`` of ``de_DE``, ``sr@latin``."""
    return _BASE_SPLIT_RE.split(code, maxsplit=1)[0]


def installed_language(tag, installed):
    """The installed Odoo language code (of ``installed``, an iterable of codes) that
    language tag ``tag`` (``de``, ``de-CH``, ``pt_BR``, ``sr-Latn-RS``) names, or False.

    The region's variant if installed, else the language's main variant (``de_DE``,
    ``en_US``, ``fr_FR``), else any installed variant of the language.
    """
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag[:50]):
        return False
    by_lower = {code.lower(): code for code in installed}
    language, *subtags = _SUBTAG_SPLIT_RE.split(tag.lower())
    candidates = []
    for subtag in subtags:
        if subtag in _SCRIPTS:
            candidates.append(f"{language}@{_SCRIPTS[subtag]}")
        elif len(subtag) == 2 or subtag.isdigit():  # a region: DE, 419
            candidates.append(f"{language}_{subtag}")
    candidates += [language, LOCALE_ALIASES.get(language, ""), f"{language}_{language}"]
    for candidate in candidates:
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    variants = sorted(code for lower, code in by_lower.items() if _base(lower) == language)
    return variants[0] if variants else False


def _text(html):
    """The first ``DETECT_TEXT_LENGTH`` characters of the text of mail body ``html``."""
    if not isinstance(html, str) or not html.strip():
        return ""
    try:
        text = html2plaintext(html[:DETECT_HTML_LENGTH], include_references=False)
    except Exception:  # markup that lxml cannot read has no text to tell
        _logger.debug("Could not read the text of a mail body", exc_info=True)
        return ""
    return text[:DETECT_TEXT_LENGTH]


def _distances(text, languages):
    """The trigram distance of ``text`` to each of ``languages`` that has a model (the
    package's own scoring, ``guess_language.check_with_models``)."""
    words = guess_language.WORD_RE.findall(text.replace("\u2019", "'"))
    model = guess_language.create_ordered_model(" ".join(words))
    distances = {}
    for language in languages:
        with contextlib.suppress(ImportError):
            known = import_module(guess_language.MODEL_ROOT + language.lower()).model
            distances[language] = guess_language.distance(model, known)
    return distances


def detect_language(html, installed):
    """The installed language code (of ``installed``) the text of mail body ``html``
    is written in, or False when it cannot be told."""
    text = _text(html)
    words = {word for word in text.lower().split() if sum(map(str.isalpha, word)) >= 2}
    if len(words) < MIN_DETECT_WORDS:
        return False
    guess = guess_language.guess_language(text)
    if not guess:
        return False
    if code := installed_language(guess, installed):
        return code
    if not _SCORING:
        return False
    # a close second that is installed: short texts do not tell neighbours apart
    bases = {_base(code) for code in installed}
    distances = _distances(text, {guess, *bases})
    others = sorted((distance, base) for base, distance in distances.items() if base != guess)
    if guess in distances and others:  # else told by its script alone (Greek...)
        distance, base = others[0]
        if distance <= distances[guess] * (1 + DETECT_MARGIN):
            return installed_language(base, installed)
    return False


def mail_language(html, declared, installed):
    """The installed language code of a mail: the first of the ``declared`` tags that
    is installed, else the one its body ``html`` is detected in, else False.

    Never raises: a mail whose language cannot be told simply has none.
    """
    installed = list(installed)
    try:
        for tag in declared or ():
            if code := installed_language(tag, installed):
                return code
        return detect_language(html, installed)
    except Exception:  # detection is a courtesy: never a reason to fail a mail
        _logger.warning("Could not detect the language of a mail", exc_info=True)
        return False
