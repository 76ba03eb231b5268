"""String catalogues: a folder per language under ``gis/base/locales``, every
``*.toml`` in it merged (a feature keeps its strings in a file of its own; a key
defined twice is an error).

``t(key, lang, **params)`` looks a key up and formats it; an unknown key falls
back to Chinese, then to the key itself, so a missing string never crashes a
page (a test keeps the catalogues complete).
"""
from __future__ import annotations

import datetime as dt
import tomllib
from functools import cache
from pathlib import Path

from gis.base import clock

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
_DIR = Path(__file__).with_name("locales")


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Flattened ``{"section.key": text}`` for a language."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict, source: Path) -> None:
        for k, v in node.items():
            name = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                walk(name, v, source)
            elif name in flat:
                raise ValueError(f"{source}: string {name!r} is defined twice in the {lang} catalogue")
            else:
                flat[name] = str(v)

    for path in sorted((_DIR / lang).glob("*.toml")):
        with open(path, "rb") as f:
            walk("", tomllib.load(f), path)
    return flat


def t(key: str, lang: str = DEFAULT_LANGUAGE, **params) -> str:
    text = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def label(obj, lang: str) -> str:
    """``label_zh``/``label_en`` (or ``name``/``name_en``) of a record in a language."""
    get = obj.get if isinstance(obj, dict) else lambda k, d=None: getattr(obj, k, d)
    if lang == "en":
        return get("label_en") or get("name_en") or get("label_zh") or get("name") or ""
    return get("label_zh") or get("name") or get("label_en") or ""


def local_time(stamp: str | None) -> str:
    """A stored UTC timestamp (ISO 8601) as planners read it: in the office's time zone (Beijing's
    unless the settings say otherwise), to the minute. Text that is not a timestamp comes back unchanged."""
    if not stamp:
        return ""
    try:
        t = dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(clock.office_zone()).strftime("%Y-%m-%d %H:%M")
