"""Stage pipelines per kind of site, read from ``layers/pipelines.toml``.

A parcel's stage is ``None`` (not started) or one stage key of its kind's
pipeline. Moving forward by exactly one stage is an ordinary advance; going
back, or skipping, is allowed only as a correction with a reason.
"""
from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gis.base import clock
from gis.base.errors import InputError, StageTransitionError
from gis.base.i18n import label, t

NOT_STARTED = "not_started"
#: what a stage's ``evidence`` may require (None: nothing)
EVIDENCE_KINDS = (None, "document", "photo")


@dataclass(frozen=True)
class Phase:
    key: str
    label_zh: str
    label_en: str
    color: str

    def label(self, lang: str = "zh") -> str:
        return label(self, lang)


@dataclass(frozen=True)
class Stage:
    key: str
    label_zh: str
    label_en: str
    phase: str
    min_days: int = 0
    min_share: float | None = None
    gate_zh: str = ""
    gate_en: str = ""
    past_clearance: bool = False
    max_days: int = 0
    #: evidence an advance to this stage must carry: "document", "photo" or None (gis/store/attachments.py)
    evidence: str | None = None
    #: the evidence of this stage is personal (signed agreements): shown only to roles allowed
    evidence_restricted: bool = False

    def label(self, lang: str = "zh") -> str:
        return label(self, lang)

    def gate(self, lang: str = "zh") -> str:
        return self.gate_en if lang == "en" else self.gate_zh

    @property
    def labels(self) -> dict:
        """Both labels, for bilingual error messages."""
        return {"zh": self.label_zh, "en": self.label_en}


@dataclass(frozen=True)
class Pipeline:
    key: str
    stages: tuple[Stage, ...]

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.stages]

    def index(self, stage: str | None) -> int:
        """Position of a stage; -1 for not started. Raises StageTransitionError for a foreign key."""
        if stage is None or stage == NOT_STARTED:
            return -1
        try:
            return self.keys.index(stage)
        except ValueError:
            raise StageTransitionError(
                "error.stage_not_in_pipeline", stage=stage, pipeline=self.key
            ) from None

    def stage(self, key: str) -> Stage:
        return self.stages[self.index(key)]

    def key_of(self, value) -> str | None:
        """The key of the stage ``value`` names: its key, its Chinese or English label (case-insensitive), or
        the Chinese label's part before a bracket (入库 for 入库（标图建库）); None when none of this pipeline's."""
        v = str(value or "").strip()
        low = v.lower()
        for s in self.stages:
            if low in (s.key.lower(), s.label_zh.lower(), s.label_en.lower()) or v == s.label_zh.split("（")[0]:
                return s.key
        return None

    def next_stage(self, current: str | None) -> str | None:
        i = self.index(current)
        return self.keys[i + 1] if i + 1 < len(self.stages) else None

    def progress(self, current: str | None) -> float:
        """Share of the pipeline done: 0 when not started, 1 when finished."""
        return (self.index(current) + 1) / len(self.stages)


@dataclass(frozen=True)
class Kind:
    key: str
    label_zh: str
    label_en: str
    pipeline: str

    def label(self, lang: str = "zh") -> str:
        return label(self, lang)


@dataclass
class Catalog:
    """Kinds, their pipelines and the colour phases, as declared in TOML."""

    kinds: dict[str, Kind]
    pipelines: dict[str, Pipeline]
    phases: dict[str, Phase]
    _all_stage_keys: set[str] = field(default_factory=set)
    #: ``[plans]``: due_soon_days, blocked_max_days (gis/model/plans.py)
    plan_rules: dict = field(default_factory=dict)

    def __post_init__(self):
        self._all_stage_keys = {k for p in self.pipelines.values() for k in p.keys}

    def kind(self, key: str) -> Kind:
        try:
            return self.kinds[key]
        except KeyError:
            raise InputError("error.unknown_kind", kind=key, known=self.known_kinds()) from None

    def known_kinds(self) -> dict:
        """The kinds with their labels, ``{"zh": "village（旧村改造地块）、…", "en": "village (Old-village parcel), …"}``,
        for messages that list what may be given."""
        return {"zh": "、".join(f"{k}（{v.label_zh}）" for k, v in self.kinds.items()),
                "en": ", ".join(f"{k} ({v.label_en})" for k, v in self.kinds.items())}

    def kind_key(self, value: str, aliases: dict | None = None) -> str | None:
        """The kind a key, a Chinese or English label or an alias (e.g. a map layer's name,
        ``LayerCatalog.kind_aliases``) stands for, case-insensitive; None when none does."""
        v = str(value or "").strip().lower()
        if not v:
            return None
        for key, k in self.kinds.items():
            if v in (key.lower(), k.label_zh.lower(), k.label_en.lower()):
                return key
        for name, key in (aliases or {}).items():
            if v == str(name).lower() and key in self.kinds:
                return key
        return None

    def pipeline_for(self, kind: str) -> Pipeline:
        return self.pipelines[self.kind(kind).pipeline]

    def phase_of(self, kind: str, stage: str | None) -> Phase:
        if stage is None or stage == NOT_STARTED:
            return self.phases[NOT_STARTED]
        return self.phases[self.pipeline_for(kind).stage(stage).phase]

    def stage_label(self, kind: str, stage: str | None, lang: str = "zh") -> str:
        if stage is None or stage == NOT_STARTED:
            return self.phases[NOT_STARTED].label(lang)
        return self.pipeline_for(kind).stage(stage).label(lang)

    def stage_label_or_key(self, kind: str, stage: str | None, lang: str = "zh") -> str:
        """``stage_label``, except that a key outside the kind's pipeline (a bad event already stored) is
        shown as itself, marked, rather than stopping the page that shows it."""
        try:
            return self.stage_label(kind, stage, lang)
        except (StageTransitionError, InputError):
            return f"{stage}（?）"

    def bad_events(self, kind: str, events) -> list[tuple[int, str]]:
        """``(event id, stage)`` of each event (StageEvent or dict) naming a stage outside the kind's pipeline."""
        keys = set(self.pipeline_for(kind).keys) | {NOT_STARTED}
        out = []
        for e in events:
            get = e.get if isinstance(e, dict) else lambda k, e=e: getattr(e, k)
            bad = next((s for s in (get("from_stage"), get("to_stage")) if s and s not in keys), None)
            if bad:
                out.append((get("id"), bad))
        return out

    def stage_labels(self, kind: str, stage: str | None) -> dict:
        """``{"zh": ..., "en": ...}`` of a stage, for messages in both languages."""
        return {lang: self.stage_label(kind, stage, lang) for lang in ("zh", "en")}

    def is_stage(self, key: str) -> bool:
        return key in self._all_stage_keys

    def stage_key(self, value, kind: str | None = None) -> str:
        """The stage key a user typed names — the one resolver of stage names for parcels (``advance --to``,
        ``--stage`` selections, filters): a key as it is, else a Chinese or English label of the stage
        (:meth:`Pipeline.key_of`) in ``kind``'s pipeline, or, with no kind, in that of any parcel kind.
        ``not_started``, 未启动 and "not started" give :data:`NOT_STARTED`.

        Raises:
            StageTransitionError: ``stage_input.unknown``, naming the stages one may give.
        """
        v = str(value or "").strip()
        if v in self._all_stage_keys:
            return v  # a key: check_transition says if it is not of this pipeline
        if v.lower() in (NOT_STARTED, "not started") or v == self.phases[NOT_STARTED].label_zh:
            return NOT_STARTED
        pipes = [self.pipeline_for(kind)] if kind else list(dict.fromkeys(
            self.pipelines[k.pipeline] for k in self.kinds.values()))
        for pipe in pipes:
            key = pipe.key_of(v)
            if key is not None:
                return key
        stages: dict = {}
        for s in (s for pipe in pipes for s in pipe.stages):
            stages.setdefault(s.key, s)  # a key shared by pipelines (clearance, construction) named once
        stages = list(stages.values())
        raise StageTransitionError("stage_input.unknown", stage=v, known={
            "zh": "、".join(f"{s.label_zh}（{s.key}）" for s in stages),
            "en": ", ".join(f"{s.label_en} ({s.key})" for s in stages)})

    def move_needs(self, kind: str, current: str | None, target: str, lang: str = "zh") -> dict:
        """What a form moving a parcel from ``current`` to ``target`` must ask, by the rules
        :meth:`check_transition` applies: ``share`` (the stage gate's minimum share, or None when
        the stage has no such gate), ``correction`` (True when the move goes back or skips a stage:
        it needs a reason), ``gate`` (the gate's text) and ``evidence`` (``"document"`` or ``"photo"``
        when the stage needs an upload with the advance, else None)."""
        pipe = self.pipeline_for(kind)
        i_from, i_to = pipe.index(current), pipe.index(target)
        stage = pipe.stage(target) if target != NOT_STARTED else None
        forward = i_to == i_from + 1
        return {"share": stage.min_share if stage is not None and forward else None,
                "correction": not forward, "gate": stage.gate(lang) if stage is not None else "",
                "evidence": stage.evidence if stage is not None and forward else None}

    def check_transition(
        self,
        kind: str,
        current: str | None,
        target: str,
        date: dt.date,
        *,
        current_date: dt.date | None = None,
        correction: str | None = None,
        share: float | None = None,
        today: dt.date | None = None,
        evidence: list[str] | tuple[str, ...] = (),
    ) -> str:
        """Validate a move from ``current`` to ``target`` on ``date``.

        ``evidence``: the kinds (``"photo"``, ``"document"``) of the uploads the move carries; a stage
        whose ``evidence`` names a kind needs one of it (a correction passes no gate).

        Returns the action to record: ``"advance"`` or ``"correction"``.

        Raises:
            StageTransitionError: unknown stage, stage of another pipeline,
                date in the future or before the current stage's date,
                a skip or a step back without a correction reason, an unmet gate.
            InputError: ``evidence.required``, the stage's evidence is missing; ``stage_input.bad_share``,
                a share that is not a number from 0 to 1.
        """
        pipe = self.pipeline_for(kind)
        if not self.is_stage(target) and target != NOT_STARTED:
            raise StageTransitionError("error.unknown_stage", stage=target)
        i_to = pipe.index(target)
        i_from = pipe.index(current)
        today = today or clock.office_today()
        if date > today:
            raise StageTransitionError("error.future_date", date=date.isoformat())
        if correction is not None and not correction.strip():
            raise StageTransitionError("error.correction_reason")
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))
                                  or not math.isfinite(share) or not 0 <= share <= 1):
            raise InputError("stage_input.bad_share", value=str(share))  # never stored: nan, 85 or -1
        name = self.stage_labels(kind, target)
        if i_to == i_from:
            raise StageTransitionError("error.same_stage", stage=name)
        if correction:
            return "correction"
        if i_to < i_from:
            raise StageTransitionError("error.backwards", stage=name)
        if i_to > i_from + 1:
            expected = self.stage_labels(kind, pipe.keys[i_from + 1])
            raise StageTransitionError("error.skip", stage=name, expected=expected)
        if current_date and date < current_date:
            raise StageTransitionError(
                "error.date_before_current", date=date.isoformat(), current=current_date.isoformat()
            )
        stage = pipe.stages[i_to]
        gate = {"zh": stage.gate_zh or stage.label_zh, "en": stage.gate_en or stage.label_en}
        if stage.min_days and current_date and (date - current_date).days < stage.min_days:
            raise StageTransitionError("error.gate_days", stage=name, days=stage.min_days, gate=gate)
        if stage.min_share is not None:
            if share is None or not (0 <= share <= 1) or share + 1e-9 < stage.min_share:
                raise StageTransitionError(
                    "error.gate_share", stage=name, share=f"{stage.min_share:.0%}", gate=gate
                )
        if stage.evidence and stage.evidence not in tuple(evidence or ()):
            need = {lang: t(f"evidence.need_{stage.evidence}", lang) for lang in ("zh", "en")}
            raise InputError("evidence.required", stage=name, need=need)
        return "advance"


def parse_share(value) -> float | None:
    """A share as a user gives it (a gated stage's vote or signing rate): a fraction from 0 to 1 (``0.85``),
    or a percentage written with its sign (``85%``, ``85 %``, ``85％``). A bare number above 1 is refused
    rather than guessed (is ``1`` 100 % or 1 %?). None or blank: None.

    Raises:
        InputError: ``stage_input.bad_share``: not a number, not finite, negative, above 1 (or 100 %).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    percent = text.endswith(("%", "％"))
    try:
        v = float(text.rstrip("%％").strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InputError("stage_input.bad_share", value=text) from None
    v = v / 100 if percent else v
    if not math.isfinite(v) or not 0 <= v <= 1:
        raise InputError("stage_input.bad_share", value=text)
    return v


def default_layers_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "layers"


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Read ``pipelines.toml`` (default: the checkout's ``layers/``).

    Raises:
        InputError: the file is missing or malformed.
    """
    path = Path(path) if path else default_layers_dir() / "pipelines.toml"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        phases = {k: Phase(key=k, **v) for k, v in data["phases"].items()}
        pipelines = {
            k: Pipeline(key=k, stages=tuple(Stage(**s) for s in v["stages"]))
            for k, v in data["pipelines"].items()
        }
        kinds = {k: Kind(key=k, **v) for k, v in data["kinds"].items()}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as e:
        raise InputError("error.bad_catalog", path=str(path), detail=str(e)) from e
    for kind in kinds.values():
        if kind.pipeline not in pipelines:
            raise InputError("error.bad_catalog", path=str(path), detail=f"kind {kind.key}: no pipeline {kind.pipeline}")
    for p in pipelines.values():
        for s in p.stages:
            if s.evidence not in EVIDENCE_KINDS:
                raise InputError("error.bad_catalog", path=str(path),
                                 detail=f"stage {s.key}: evidence must be one of document, photo")
            if s.phase not in phases:
                raise InputError("error.bad_catalog", path=str(path), detail=f"stage {s.key}: no phase {s.phase}")
    return Catalog(kinds=kinds, pipelines=pipelines, phases=phases, plan_rules=dict(data.get("plans", {})))


def stage_timeline(catalog: Catalog, kind: str, stage: str | None, events, lang: str = "zh") -> list[dict]:
    """Every stage of a parcel's pipeline with its status and date.

    ``status`` is ``done`` (with the date it was reached), ``current`` or
    ``ahead``. Dates come from the latest event that entered each stage, so a
    correction that went back and forward again shows the newer date.
    ``events``: StageEvent objects or dicts, oldest first.
    """
    pipe = catalog.pipeline_for(kind)
    cur = pipe.index(stage)
    reached: dict[str, str] = {}
    for e in events:
        get = e.get if isinstance(e, dict) else lambda k: getattr(e, k)
        if get("action") in ("advance", "correction") and get("to_stage"):
            reached[get("to_stage")] = get("event_date")
    out = []
    for i, s in enumerate(pipe.stages):
        status = "done" if i < cur else "current" if i == cur else "ahead"
        out.append({
            "key": s.key,
            "label": s.label(lang),
            "status": status,
            "date": reached.get(s.key) if i <= cur else None,
            "gate": s.gate(lang),
            "color": catalog.phases[s.phase].color,
        })
    return out
