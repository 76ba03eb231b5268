"""Search as you type: parcels, villages and responsible units matching a few characters.

Ranking (best first): a parcel whose code is the text, then codes starting
with it; names, village names and units starting with it; then codes, names,
village names and units containing it. Case-insensitive; Chinese text is
matched as typed (no pinyin needed or used). Ties keep code order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

KINDS = ("parcel", "village", "unit")


@dataclass(frozen=True)
class Suggestion:
    """One entry of the search index: a parcel, a village or a responsible unit."""

    kind: str       # "parcel", "village" or "unit"
    key: str        # parcel code, village code or the unit's name
    label: str      # what the list shows
    code: str = ""  # parcel or village code ("" for a unit)
    name: str = ""
    village: str = ""  # the parcel's village name
    unit: str = ""
    count: int = 1  # parcels it stands for
    rank: int = 99

    @property
    def option(self) -> str:
        """A stable option value for a select widget: ``p:V07-023``, ``v:V07``, ``u:凤凰街道办事处``."""
        return f"{self.kind[0]}:{self.key}"

    def as_dict(self) -> dict:
        return asdict(self)


def _text(v) -> str:
    return v.strip() if isinstance(v, str) else ""


def build_index(parcels: pd.DataFrame, village_names: dict[str, str] | None = None) -> list[Suggestion]:
    """Every village, every responsible unit and every parcel, each in code (or name) order.

    ``parcels``: code, name, village, unit; ``village_names``: ``{code: name}`` in the reader's language.
    """
    village_names = village_names or {}
    index: list[Suggestion] = []
    rows = parcels.sort_values("code")
    counts = rows["village"].value_counts() if "village" in rows else pd.Series(dtype=int)
    # villages and units first: with nothing typed yet, or a village's name typed, they lead the list
    for vcode, vname in sorted(village_names.items()):
        n = int(counts.get(vcode, 0))
        index.append(Suggestion("village", vcode, f"{vname}（{vcode}）", code=vcode, name=vname, village=vname,
                                count=n))
    units = rows["unit"].map(_text) if "unit" in rows else pd.Series(dtype=str)
    for unit, n in sorted(units[units != ""].value_counts().items()):
        index.append(Suggestion("unit", unit, unit, unit=unit, count=int(n)))
    for r in rows.itertuples(index=False):
        code, name = str(r.code), _text(r.name)
        vname = village_names.get(_text(getattr(r, "village", "")), "")
        unit = _text(getattr(r, "unit", ""))
        label = " · ".join(x for x in (code, name, vname) if x)
        index.append(Suggestion("parcel", code, label, code=code, name=name, village=vname, unit=unit))
    return index


INDEXED = ("code", "name", "village", "unit")  # the parcels' columns the index is made of


class SearchIndexes:
    """The index of :func:`build_index` kept while what it is made of stays the same.

    A write (a stage update) gives the app a new parcel table; the index only reads codes, names,
    villages and units, so a new table with the same values in those columns (and the same
    village names) gives back the index already built (≈30 ms saved per write on the demo).
    Not thread-safe by itself: hold one per language behind a lock, or per process and language.
    """

    def __init__(self):
        self._held: tuple | None = None  # (parcels, key columns, village names, index)

    def of(self, parcels: pd.DataFrame, village_names: dict[str, str] | None = None) -> list[Suggestion]:
        names = dict(village_names or {})
        held = self._held
        if held is not None and held[0] is parcels and held[2] == names:
            return held[3]
        keys = [parcels[c].to_numpy(object) if c in parcels else None for c in INDEXED]
        if held is not None and held[2] == names and all(
                (a is None and b is None) or (a is not None and b is not None and pd.Series(a).equals(pd.Series(b)))
                for a, b in zip(keys, held[1])):
            self._held = (parcels, keys, names, held[3])
            return held[3]
        index = build_index(parcels, names)
        self._held = (parcels, keys, names, index)
        return index


def _rank(s: Suggestion, q: str) -> int | None:
    """0 exact code; 1 code prefix; 2 name/village/unit prefix; 3 code contains; 4 name contains;
    5 village or unit contains; None: no match."""
    code, name, village, unit = s.code.lower(), s.name.lower(), s.village.lower(), s.unit.lower()
    if s.kind != "unit" and code == q:
        return 0
    if s.kind != "unit" and code.startswith(q):
        return 1
    if any(x.startswith(q) for x in (name, village, unit) if x):
        return 2
    if s.kind != "unit" and q in code:
        return 3
    if q in name:
        return 4
    if q in village or q in unit:
        return 5
    return None


def rank(index: list[Suggestion], text: str, limit: int | None = 10) -> list[Suggestion]:
    """The entries of ``index`` matching ``text``, best first (see the module's ranking); [] for blank text.

    At equal rank a village or unit comes before its parcels (choosing it selects them all)."""
    q = (text or "").strip().lower()
    if not q:
        return []
    hits = []
    kind_order = {"village": 0, "unit": 1, "parcel": 2}
    for i, s in enumerate(index):
        r = _rank(s, q)
        if r is not None:
            hits.append((r, kind_order[s.kind], i, s))
    hits.sort(key=lambda h: h[:3])
    out = [Suggestion(**{**s.as_dict(), "rank": r}) for r, _, _, s in hits]
    return out[:limit] if limit else out


def suggest(store, text: str, limit: int | None = 10, lang: str = "zh") -> list[Suggestion]:
    """Ranked suggestions for ``text`` from a store (anything with ``parcels`` and ``names``)."""
    return rank(build_index(store.parcels(geometry=False), village_names(store, lang)), text, limit)


def village_names(store, lang: str = "zh") -> dict[str, str]:
    """``{village code: name}`` of a store in a language."""
    return {c: (en if lang == "en" and en else zh) or c for c, (zh, en) in store.names("villages").items()}


def matches(parcels: pd.DataFrame, text: str, village_names: dict[str, str] | None = None) -> pd.Series:
    """Which rows of ``parcels`` the text finds: code, name, village (code or name) or unit containing it."""
    q = (text or "").strip().lower()
    if not q:
        return pd.Series(True, index=parcels.index)
    village_names = village_names or {}
    col = (lambda c: parcels[c].fillna("").astype(str).str.lower() if c in parcels else
           pd.Series("", index=parcels.index))
    vname = parcels["village"].map(lambda v: village_names.get(v, "") if isinstance(v, str) else "") \
        if "village" in parcels else pd.Series("", index=parcels.index)
    hit = col("code").str.contains(q, regex=False) | col("name").str.contains(q, regex=False)
    hit |= col("unit").str.contains(q, regex=False) | vname.str.lower().str.contains(q, regex=False)
    return hit | col("village").str.lower().eq(q)
