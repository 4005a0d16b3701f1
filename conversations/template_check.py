"""The content check a message template passes before Meta sees it: every finding with its reason, as an error
(the template is not submitted) or a warning (it may be, but Meta may reject, re-categorise or pause it, and a
paused or rejected template costs the number its quality rating).

What is checked, each from Meta's template guidelines and its Commerce and Business Policies:
- the template's name, category and language;
- prohibited content (word lists in English and Indonesian: conversations/policy/prohibited.txt);
- promotional wording in a UTILITY template (policy/promotional.txt);
- variables: positional `{{1}}` or named `{{order_id}}`, not both; numbered from 1 without gaps; none at the
  start or end of a text, no two side by side, each with an example, not too many for the words around them;
- length limits per component and button;
- link shorteners (policy/url_shorteners.txt);
- a MARKETING template without an opt-out hint (policy/opt_out.txt).

The lists are data files: add words there. `check_template` takes the body of `POST /api/v1/templates/check/`
(the same as a template's creation) and never raises for odd input: an odd shape is itself a finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

POLICY_DIR = Path(__file__).resolve().parent / "policy"
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
NAME = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
NAMED = re.compile(r"^[a-z][a-z0-9_]*$")
WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Meta's limits, in characters.
LIMITS = {"HEADER": 60, "BODY": 1024, "FOOTER": 60}
BUTTON_TEXT_LIMIT = 25
BUTTON_URL_LIMIT = 2000
MAX_BUTTONS = 10
# Fewer words than this per variable reads as a form to fill, and Meta rejects it ("too many variables").
WORDS_PER_VARIABLE = 3


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" blocks submission; "warning" does not
    code: str
    message: str
    component: str  # "name", "category", "language", "HEADER", "BODY", "FOOTER", "BUTTONS", or ""

    def as_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "component": self.component,
        }


def is_blocking(findings: list[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


# The word lists; a tenant adds its own phrases to each (conversations.models.PolicyWords).
WORD_LISTS = ("prohibited", "promotional", "opt_out", "url_shorteners")


@dataclass(frozen=True)
class WordLists:
    prohibited: dict[str, list[str]]  # topic -> phrases
    promotional: list[str]
    opt_out: list[str]
    url_shorteners: list[str]


def word_lists(additions: dict[str, list[str]] | None = None) -> WordLists:
    """The built-in lists, with a tenant's `additions` ({list name: phrases}) added."""
    extra = {
        name: [phrase.strip().casefold() for phrase in (additions or {}).get(name, []) if phrase.strip()]
        for name in WORD_LISTS
    }
    prohibited = dict(_prohibited())
    if extra["prohibited"]:
        prohibited["own_list"] = extra["prohibited"]
    return WordLists(
        prohibited=prohibited,
        promotional=_phrases("promotional.txt") + extra["promotional"],
        opt_out=_phrases("opt_out.txt") + extra["opt_out"],
        url_shorteners=_phrases("url_shorteners.txt") + extra["url_shorteners"],
    )


def built_in_lists() -> dict[str, list[str]]:
    """The lists as shipped (the prohibited phrases of every topic together)."""
    lists = word_lists()
    return {
        "prohibited": [phrase for phrases in lists.prohibited.values() for phrase in phrases],
        "promotional": lists.promotional,
        "opt_out": lists.opt_out,
        "url_shorteners": lists.url_shorteners,
    }


def check_template(draft: Any, additions: dict[str, list[str]] | None = None) -> list[Finding]:
    """Every finding of a template draft (name, category, language, components), errors first; `additions` are
    the tenant's own phrases for the word lists."""
    if not isinstance(draft, dict):
        return [Finding("error", "invalid_shape", _("The template must be a JSON object."), "")]
    findings = list(_check_identity(draft))
    components = draft.get("components")
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        findings.append(Finding("error", "invalid_shape", _("`components` must be a list of objects."), ""))
        components = []
    by_type = {str(component.get("type", "")).upper(): component for component in components}
    if not isinstance(by_type.get("BODY", {}).get("text"), str) or not by_type["BODY"]["text"].strip():
        findings.append(Finding("error", "body_missing", _("A template needs a body with text."), "BODY"))
    category = str(draft.get("category", "")).upper()
    texts: list[tuple[str, str]] = []  # (component, text) for the word checks
    for kind in ("HEADER", "BODY", "FOOTER"):
        component = by_type.get(kind)
        text = component.get("text") if component else None
        if not isinstance(text, str):
            continue
        texts.append((kind, text))
        findings += _check_length(kind, text)
        if kind in ("HEADER", "BODY"):
            findings += _check_variables(kind, text, component.get("example"))  # type: ignore[union-attr]
        elif VARIABLE.search(text):
            findings.append(
                Finding("error", "variable_not_allowed", _("A footer cannot hold variables."), kind)
            )
    buttons = _buttons_of(by_type.get("BUTTONS"))
    findings += _check_buttons(buttons)
    texts += [("BUTTONS", text) for text in _button_texts(buttons)]
    findings += _check_words(category, texts, buttons, word_lists(additions))
    return sorted(findings, key=lambda finding: finding.severity != "error")


# ------------------------------------------------------------------ name, category, language, lengths


def _check_identity(draft: dict[str, Any]) -> Iterator[Finding]:
    name = draft.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        yield Finding(
            "error",
            "invalid_name",
            _("The name may hold only lower-case letters, digits and underscores (at most 512)."),
            "name",
        )
    if str(draft.get("category", "")).upper() not in CATEGORIES:
        yield Finding(
            "error",
            "invalid_category",
            _("The category must be MARKETING, UTILITY or AUTHENTICATION."),
            "category",
        )
    language = draft.get("language")
    if not isinstance(language, str) or not LANGUAGE.match(language):
        yield Finding(
            "error", "invalid_language", _("The language must be a code such as id, en or en_US."), "language"
        )


def _check_length(kind: str, text: str) -> Iterator[Finding]:
    if len(text) > LIMITS[kind]:
        yield Finding(
            "error",
            "too_long",
            _("%(component)s holds %(length)d characters; at most %(limit)d are allowed.")
            % {"component": kind, "length": len(text), "limit": LIMITS[kind]},
            kind,
        )


def _buttons_of(component: Any) -> list[dict[str, Any]]:
    buttons = component.get("buttons") if isinstance(component, dict) else None
    return [button for button in buttons if isinstance(button, dict)] if isinstance(buttons, list) else []


def _button_texts(buttons: list[dict[str, Any]]) -> list[str]:
    return [str(button.get("text") or "") for button in buttons]


def _check_buttons(buttons: list[dict[str, Any]]) -> Iterator[Finding]:
    if len(buttons) > MAX_BUTTONS:
        yield Finding(
            "error", "too_many_buttons", _("At most %(limit)d buttons.") % {"limit": MAX_BUTTONS}, "BUTTONS"
        )
    for button in buttons:
        text = str(button.get("text") or "")
        if not text.strip() or len(text) > BUTTON_TEXT_LIMIT:
            yield Finding(
                "error",
                "invalid_button",
                _("Every button needs a label of 1 to %(limit)d characters.") % {"limit": BUTTON_TEXT_LIMIT},
                "BUTTONS",
            )
        if (
            str(button.get("type", "")).upper() == "URL"
            and len(str(button.get("url") or "")) > BUTTON_URL_LIMIT
        ):
            yield Finding("error", "too_long", _("A button's URL is too long."), "BUTTONS")


# ------------------------------------------------------------------ variables


def _check_variables(kind: str, text: str, example: Any) -> Iterator[Finding]:
    names = [match.group(1) for match in VARIABLE.finditer(text)]
    if not names:
        return
    positional = [name for name in names if name.isdigit()]
    named = [name for name in names if not name.isdigit()]
    if positional and named:
        yield Finding("error", "mixed_variables", _("Use numbered or named variables, not both."), kind)
    if any(not NAMED.match(name) for name in named):
        yield Finding(
            "error",
            "invalid_variable",
            _("A named variable holds lower-case letters, digits and underscores, such as {{order_id}}."),
            kind,
        )
    distinct = sorted({int(name) for name in positional})
    if distinct and distinct != list(range(1, len(distinct) + 1)):
        yield Finding(
            "error", "variables_not_sequential", _("Number variables {{1}}, {{2}}, ... without gaps."), kind
        )
    stripped = text.strip()
    if VARIABLE.match(stripped):
        yield Finding("error", "variable_at_start", _("The text cannot start with a variable."), kind)
    if re.search(r"\{\{[^{}]*\}\}[\s.!?]*$", stripped):
        yield Finding("error", "variable_at_end", _("The text cannot end with a variable."), kind)
    if re.search(r"\}\}\s*\{\{", text):
        yield Finding("error", "adjacent_variables", _("Two variables cannot stand side by side."), kind)
    words = len(WORD.findall(VARIABLE.sub(" ", text)))
    if words < WORDS_PER_VARIABLE * len(names):
        yield Finding(
            "warning",
            "too_many_variables",
            _("Too many variables for the words around them: Meta rejects templates that read like a form."),
            kind,
        )
    if len(_examples(kind, example, positional, named)) < len(set(names)):
        yield Finding(
            "error",
            "variable_without_example",
            _("Every variable needs an example value for Meta's review."),
            kind,
        )


def _examples(kind: str, example: Any, positional: list[str], named: list[str]) -> set[str]:
    """The variables of `kind` that have a non-empty example (Meta's `example` shapes)."""
    if not isinstance(example, dict):
        return set()
    found: set[str] = set()
    prefix = "header_text" if kind == "HEADER" else "body_text"
    values = example.get(prefix)
    if isinstance(values, list) and values and kind == "BODY":
        values = values[0]  # body examples are one list per sample
    if isinstance(values, list):
        found |= {str(index + 1) for index, value in enumerate(values) if str(value or "").strip()}
    for item in example.get(f"{prefix}_named_params") or []:
        if isinstance(item, dict) and str(item.get("example") or "").strip():
            found.add(str(item.get("param_name") or ""))
    return found & (set(positional) | set(named))


# ------------------------------------------------------------------ words and links


def _check_words(
    category: str, texts: list[tuple[str, str]], buttons: list[dict[str, Any]], lists: WordLists
) -> Iterator[Finding]:
    for kind, text in texts:
        for topic, phrase in _matches(lists.prohibited, text):
            reason = (
                _("“%(phrase)s” is on your helpdesk's own list of prohibited words.")
                if topic == "own_list"
                else _("“%(phrase)s” is %(topic)s content, which WhatsApp's Commerce Policy prohibits.")
            )
            yield Finding(
                "error", "prohibited_content", reason % {"phrase": phrase, "topic": _topic(topic)}, kind
            )
        yield from _shorteners_in(text, kind, lists)
        if category == "UTILITY":
            for _topic_name, phrase in _matches({"promotional": lists.promotional}, text):
                yield Finding(
                    "warning",
                    "promotional_in_utility",
                    _("“%(phrase)s” is promotional: Meta moves such a template to MARKETING.")
                    % {"phrase": phrase},
                    kind,
                )
    for button in buttons:
        yield from _shorteners_in(str(button.get("url") or ""), "BUTTONS", lists)
    if category == "MARKETING":
        hinted = [text for kind, text in texts if kind in ("BODY", "FOOTER", "BUTTONS")]
        if not any(_matches({"opt_out": lists.opt_out}, text) for text in hinted):
            yield Finding(
                "warning",
                "no_opt_out",
                _("A marketing template should tell how to stop them (for example “Reply STOP to opt out”)."),
                "FOOTER",
            )


def _topic(topic: str) -> str:
    names = {
        "gambling": _("gambling"),
        "drugs": _("drug"),
        "adult": _("adult"),
        "weapons": _("weapons"),
        "hate": _("hateful (SARA)"),
        "counterfeit": _("counterfeit goods"),
        "tobacco_alcohol": _("tobacco or alcohol"),
        "financial_fraud": _("deceptive financial"),
    }
    return names.get(topic, topic)


def _matches(lists: dict[str, list[str]], text: str) -> list[tuple[str, str]]:
    """(list name, phrase) of every phrase of `lists` found in `text` as whole words, any case."""
    lowered = text.casefold()
    found = [
        (topic, phrase)
        for topic, phrases in lists.items()
        for phrase in phrases
        if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", lowered)
    ]
    # "judi" inside "judi online" is one finding, not two
    return [
        (topic, phrase) for topic, phrase in found if not any(phrase != o and phrase in o for _t, o in found)
    ]


def _shorteners_in(text: str, component: str, lists: WordLists) -> Iterator[Finding]:
    hosts = {
        match.group(1).casefold() for match in re.finditer(r"(?:https?://)?(?:www\.)?([\w.-]+\.\w+)/", text)
    }
    for host in sorted(hosts & set(lists.url_shorteners)):
        yield Finding(
            "error",
            "url_shortener",
            _("%(host)s is a link shortener: Meta rejects templates that hide where a link goes.")
            % {"host": host},
            component,
        )


@cache
def _phrases(filename: str) -> list[str]:
    return [
        line.strip().casefold()
        for line in (POLICY_DIR / filename).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@cache
def _prohibited() -> dict[str, list[str]]:
    """prohibited.txt: `[topic]` headings, each followed by its phrases."""
    lists: dict[str, list[str]] = {}
    topic = "prohibited"
    for line in _phrases("prohibited.txt"):
        if line.startswith("[") and line.endswith("]"):
            topic = line[1:-1]
            lists.setdefault(topic, [])
        else:
            lists.setdefault(topic, []).append(line)
    return lists
