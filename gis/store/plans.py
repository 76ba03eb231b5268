"""Plans and follow-up orders (督办) in the store: baselines, targets, their status, orders.

Tables (migration in gis/store/schema.py, both back ends):
    plan_baselines   one row per baseline (年初目标, 承诺书目标, a campaign such as 百日攻坚);
                     ``adopted_at`` is set once, by ``adopt_baseline``
    plan_targets     append-only: every set, change or withdrawal of a target is a new row
                     (a revision) of the target ``(baseline, object, stage)``
    followups        append-only: the orders as issued
    followup_events  append-only: issue, reply, close, return — the order's state is its last row

Rules, decided here and not by the UI:
  * a target's object is a parcel, a village (all its parcels) or a site (all parcels of a park);
    its stage must belong to the object's pipeline; its date must be a date (``plan_date``: the
    forms offices write, never an ambiguous 12/31/2026); its baseline must exist (the built-in
    ones are made on first use; a typo is refused, never a new baseline);
  * an order's due date is today or later; the target it names (``baseline/object/stage``) must
    be set and concern the order's object; filters (``--unit``, ``--baseline``) name what exists;
  * an adopted baseline is never overwritten: every later change needs a reason and is a new
    revision, so the original stays comparable (``plan_targets(original=True)``);
  * who may plan: an admin or a leader (领导/督查) anywhere, an editor only in their area, a
    viewer never; who may issue an order: an admin or a leader; who replies: the editor whose
    area holds the order's object (or an admin); who closes or returns: its issuer (or an admin);
  * every write is audited (refusals too) and bumps the data version.
"""
from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pandas as pd

from gis.auth import accounts
from gis.base import i18n
from gis.base.clock import office_today
from gis.base.errors import ConflictError, InputError, NotFoundError, PermissionRefused
from gis.model import plans as model
from gis.model.timeline import parse_as_recorded
from gis.store.base import parse_date, utcnow_iso

#: built-in baselines and their labels; any other name is created on first use, labelled by its name
BUILTIN_BASELINES = {
    "annual": ("年初目标", "Plan at the start of the year"),
    "commitment": ("承诺书目标", "Signed commitment"),
}
DEFAULT_BASELINE = "annual"
TARGET_COLUMNS = ("id", "baseline", "object_type", "object", "stage", "due_date", "unit", "note", "revision",
                  "action", "reason", "recorded_at", "recorded_by")
PLANNERS = ("admin", "leader")
#: the state an action leaves an order in, when doing it again would change nothing
FOLLOWUP_DONE = {"close": "closed", "reply": "replied"}


def plan_date(value) -> dt.date:
    """A planned date (``model.parse_plan_date``: 2026-12-31, 2026/12/31, 2026.12.31, 2026年12月31日, a date).

    Raises:
        InputError: not a date, an ambiguous one (12/31/2026), a bare number (an Excel serial).
    """
    try:
        return model.parse_plan_date(value)
    except model.PlanDateError as e:
        raise InputError(f"plans.due_{e.reason}", value=e.value) from None


def _both(key: str, **params) -> dict:
    """A message parameter in both languages (``RenewalError`` picks the one of the message)."""
    return {lang: i18n.t(key, lang, **params) for lang in ("zh", "en")}


def _plain(record: dict) -> dict:
    """A row of a frame as plain values: pandas' missing (NaN, None in a string column) as None, numpy numbers
    as Python ones."""
    out = {}
    for k, v in record.items():
        if hasattr(v, "item") and type(v).__module__ == "numpy":
            v = v.item()
        out[k] = None if v is not None and not isinstance(v, str) and pd.isna(v) else v
    return out


def _frame(con, sql: str, params: tuple = ()) -> pd.DataFrame:
    cur = con.execute(sql, params)
    if isinstance(cur, sqlite3.Cursor):
        cur.row_factory = None  # plain tuples: several times faster than sqlite3.Row for a whole table
    names = [d[0] for d in cur.description]
    rows = [tuple(r) for r in cur.fetchall()]
    cols = list(zip(*rows)) if rows else [()] * len(names)
    return pd.DataFrame({n: pd.Series(c, dtype=object) for n, c in zip(names, cols)})


def _recorded_by(values: pd.Series, instant) -> np.ndarray:
    """Which of the recorded times ``values`` (ISO text, UTC) are at or before ``instant`` (aware)."""
    at = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce")
    return (at <= pd.Timestamp(instant)).to_numpy()


def _by(value, instant) -> bool:
    """A recorded time (ISO text) at or before ``instant``; an empty one is not."""
    return bool(value) and bool(_recorded_by(pd.Series([value]), instant)[0])


class PlansMixin:
    """Plans, their status and follow-up orders. Mixed into ``Store`` (see gis/store/store.py)."""

    # ------------------------------------------------------------------ objects
    def _plan_universe(self, con) -> dict:
        """What a target or an order may name: parcels, villages, sites, with their area and unit."""
        parcels = {r["code"]: dict(r) for r in con.execute(
            "SELECT code, kind, zone, village, park, unit FROM parcels")}
        tables = self._tables(con)
        villages = {r["code"]: dict(r) for r in con.execute("SELECT code, name, name_en, zone FROM villages")} \
            if "villages" in tables else {}
        parks = {r["code"]: dict(r) for r in con.execute("SELECT code, name, name_en FROM parks")} \
            if "parks" in tables else {}
        members: dict = {}
        for p in parcels.values():
            if p.get("village"):
                members.setdefault(("village", p["village"]), []).append(p)
            if p.get("park"):
                members.setdefault(("site", p["park"]), []).append(p)
        # key projects (gis/store/projects.py): an order may name one; its members are the parcels under it
        projects = {r["code"]: dict(r) for r in con.execute("SELECT code, name, unit FROM projects")} \
            if "projects" in tables else {}
        for r in (con.execute("SELECT project, object_type, code FROM project_parcels ORDER BY id") if projects else []):
            if r["object_type"] == "parcel" and r["code"] in parcels:
                members.setdefault(("project", r["project"]), []).append(parcels[r["code"]])
            else:
                members.setdefault(("project", r["project"]), []).extend(members.get((r["object_type"], r["code"]), []))
        return {"parcels": parcels, "villages": villages, "parks": parks, "projects": projects, "members": members}

    def _resolve_object(self, universe: dict, code: str) -> tuple[str, str, list[dict]]:
        """``(object_type, code, member parcels)`` of a parcel code, a village or a site (code or name).

        Raises:
            NotFoundError: nothing of that code or name.
        """
        code = str(code or "").strip()
        if code in universe["parcels"]:
            return "parcel", code, [universe["parcels"][code]]
        for otype, table in (("village", "villages"), ("site", "parks")):
            for c, r in universe[table].items():
                if code in (c, r.get("name"), r.get("name_en")):
                    return otype, c, universe["members"].get((otype, c), [])
        if code in universe.get("projects", {}):
            return "project", code, universe["members"].get(("project", code), [])
        raise NotFoundError("plans.unknown_object", object=code)

    def _plan_stage(self, members: list[dict], stage: str, object_code: str) -> str:
        """The stage key of ``stage`` (key, Chinese or English label) in the pipeline of every member.

        Raises:
            InputError: the object has no parcels; the stage is not in its pipeline.
        """
        if not members:
            raise InputError("plans.empty_object", object=object_code)
        stage = str(stage or "").strip()
        key = None
        for kind in sorted({m["kind"] for m in members}):
            pipe = self.catalog.pipeline_for(kind)
            found = pipe.key_of(stage)  # the one resolver the CLI and the importer use
            if found is None or (key is not None and found != key):
                raise InputError("plans.stage_not_in_pipeline", stage=stage, object=object_code,
                                 pipeline={lang: self.catalog.kind(kind).label(lang) for lang in ("zh", "en")})
            key = found
        return key

    @staticmethod
    def _area_of(members: list[dict]) -> list[dict]:
        return [{"code": m["code"], "zone": m.get("zone"), "village": m.get("village") or None} for m in members]

    # ------------------------------------------------------------------ permissions
    def _acting(self, con, by: str):
        """``(name to record, User or None)``; None when the store has no accounts.

        Raises:
            PermissionRefused: an unknown or disabled account.
        """
        if not self._accounts_on(con):
            return by, None
        user = self._user(con, by)
        if user is None:
            raise PermissionRefused("error.unknown_user", user=by)
        return user.username, user

    @staticmethod
    def _require_plan(user, object_code: str, members: list[dict]) -> None:
        if user is None or user.role in PLANNERS:
            return
        if user.role == "editor" and all(accounts.may_edit(user, m) for m in members):
            return
        raise PermissionRefused("plans.refused_plan", user=user.username, role=user.role, object=object_code)

    @staticmethod
    def _require_leader(user, action: str) -> None:
        if user is not None and user.role not in PLANNERS:
            raise PermissionRefused("plans.refused_issue", user=user.username, role=user.role, action=action)

    # ------------------------------------------------------------------ baselines
    def _baseline_row(self, con, name: str, create: bool = False, by: str = "") -> dict:
        row = con.execute("SELECT * FROM plan_baselines WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return dict(row)
        if not create:
            raise NotFoundError("plans.unknown_baseline", baseline=name)
        label = BUILTIN_BASELINES.get(name, (name, name))
        con.execute("INSERT INTO plan_baselines (name, label, label_en, kind, created_at, created_by)"
                    " VALUES (?,?,?,?,?,?)", (name, label[0], label[1], "plan", utcnow_iso(), by))
        return dict(con.execute("SELECT * FROM plan_baselines WHERE name = ?", (name,)).fetchone())

    def _existing_baseline(self, con, name: str) -> str:
        """``name`` if it is a baseline (or a built-in one, made on first use), else the refusal.

        Raises:
            NotFoundError: no such baseline (the message lists them and says how to add one).
        """
        name = (name or "").strip()
        if name in BUILTIN_BASELINES or con.execute("SELECT 1 FROM plan_baselines WHERE name = ?",
                                                    (name,)).fetchone():
            return name
        known = sorted({*BUILTIN_BASELINES, *(r[0] for r in con.execute("SELECT name FROM plan_baselines"))})
        raise NotFoundError("plans.no_such_baseline", baseline=name, known=", ".join(known))

    def baseline_name(self, name: str) -> str:
        """``name`` checked against the baselines (a filter such as ``status --baseline``).

        Raises:
            NotFoundError: no such baseline.
        """
        with self._connect() as con:
            return self._existing_baseline(con, name)

    def unit_names(self) -> list[str]:
        """Every responsible unit the store knows: of parcels, targets, orders and projects."""
        with self._connect() as con:
            tables = self._tables(con)
            units = {r[0] for r in con.execute("SELECT DISTINCT unit FROM parcels")}
            for table in ("plan_targets", "followups", "projects"):
                if table in tables:
                    units |= {r[0] for r in con.execute(f"SELECT DISTINCT unit FROM {table}")}
        return sorted(u for u in units if u)

    def unit_name(self, unit: str) -> str:
        """``unit`` checked against :meth:`unit_names` (a filter such as ``status --unit``).

        Raises:
            NotFoundError: no such unit (the message lists the known ones).
        """
        unit = (unit or "").strip()
        known = self.unit_names()
        if unit in known:
            return unit
        near = [u for u in known if unit and (unit in u or u in unit)]
        shown = near or known
        more = "…" if len(shown) > 20 else ""
        raise NotFoundError("plans.no_such_unit", unit=unit,
                            known={"zh": "、".join(shown[:20]) + more, "en": ", ".join(shown[:20]) + more})

    def plan_baselines(self, as_recorded=None) -> list[dict]:
        """Every baseline: name, label, kind (``plan``/``campaign``), start/end, adopted_at/by, targets.

        ``as_recorded`` (an aware instant): the baselines as the system knew them then — one created
        later is left out, one adopted later is not adopted yet, and only targets recorded by then count.
        """
        with self._connect() as con:
            rows = [dict(r) for r in con.execute("SELECT * FROM plan_baselines ORDER BY id")]
            targets = _frame(con, "SELECT baseline, object, stage, recorded_at FROM plan_targets")
        if as_recorded is not None:
            rows = [r for r in rows if _by(r.get("created_at"), as_recorded)]
            for r in rows:
                if not _by(r.get("adopted_at"), as_recorded):
                    r["adopted_at"] = r["adopted_by"] = None
            targets = targets[_recorded_by(targets["recorded_at"], as_recorded)]
        counts = targets.drop_duplicates(["baseline", "object", "stage"]).groupby("baseline").size().to_dict() \
            if len(targets) else {}
        for r in rows:
            r["targets"] = int(counts.get(r["name"], 0))
        return rows

    def _baseline_names(self, as_recorded=None) -> list[dict]:
        """The baselines' names and labels in order (what a parcel's plan rows are labelled with), without
        :meth:`plan_baselines`' count of targets; kept for the page run (``one_connection``)."""
        def read():
            with self._connect() as con:
                return [dict(r) for r in con.execute(
                    "SELECT name, label, label_en, created_at FROM plan_baselines ORDER BY id")]
        rows = self._memoized("baseline_names", read)
        return [r for r in rows if as_recorded is None or _by(r.get("created_at"), as_recorded)]

    def add_baseline(self, name: str, by: str, label: str = "", kind: str = "plan", start=None, end=None,
                     note: str = "") -> dict:
        """A new baseline, or a campaign (``kind="campaign"`` with a start and an end date).

        Raises:
            InputError: no name, a bad date, an end before the start, the name exists.
            PermissionRefused: ``by`` is not an admin or a leader.
        """
        by = self._require_author(by)
        name = (name or "").strip()
        if not name or kind not in ("plan", "campaign"):
            raise InputError("plans.bad_baseline", baseline=name)
        s = plan_date(start).isoformat() if start else None
        e = plan_date(end).isoformat() if end else None
        if kind == "campaign" and not (s and e):
            raise InputError("plans.campaign_dates", baseline=name)
        if s and e and e < s:
            raise InputError("plans.campaign_dates", baseline=name)
        with self._refusals_logged(by, "plan_baseline", name), self._connect(write=True) as con:
            by, user = self._acting(con, by)
            self._require_leader(user, "plan baseline")
            if con.execute("SELECT 1 FROM plan_baselines WHERE name = ?", (name,)).fetchone():
                raise InputError("plans.baseline_exists", baseline=name)
            builtin = BUILTIN_BASELINES.get(name, (label or name, label or name))
            con.execute("INSERT INTO plan_baselines (name, label, label_en, kind, start_date, end_date, created_at,"
                        " created_by, note) VALUES (?,?,?,?,?,?,?,?,?)",
                        (name, label or builtin[0], label or builtin[1], kind, s, e, utcnow_iso(), by, note or None))
            row = self._baseline_row(con, name)
            self._bump(con)
            self._audit(con, by, "plan_baseline", name, "ok", None, row, note)
        return row

    def adopt_baseline(self, name: str, by: str) -> dict:
        """Adopt a baseline: from now on a change to it needs a reason, and its first revision stays.

        Raises:
            NotFoundError, PermissionRefused; ConflictError: adopted already.
        """
        by = self._require_author(by)
        with self._refusals_logged(by, "plan_adopt", name), self._connect(write=True) as con:
            by, user = self._acting(con, by)
            self._require_leader(user, "plan adopt")
            row = self._baseline_row(con, name, create=name in BUILTIN_BASELINES, by=by)
            if row["adopted_at"]:  # a repeat of a finished action: a conflict (exit 4) that says so
                raise ConflictError("plans.adopted_already", baseline=name, at=i18n.local_time(row["adopted_at"]),
                                    by=row["adopted_by"] or "-")
            con.execute("UPDATE plan_baselines SET adopted_at = ?, adopted_by = ? WHERE name = ?",
                        (utcnow_iso(), by, name))
            after = self._baseline_row(con, name)
            self._bump(con)
            self._audit(con, by, "plan_adopt", name, "ok", row, after)
        return after

    # ------------------------------------------------------------------ targets
    def _current_targets(self, con, baseline: str | None = None) -> dict:
        """``{(baseline, object, stage): latest revision row}``."""
        sql = f"SELECT {', '.join(TARGET_COLUMNS)} FROM plan_targets"
        params: tuple = ()
        if baseline:
            sql += " WHERE baseline = ?"
            params = (baseline,)
        out: dict = {}
        for r in con.execute(sql + " ORDER BY id", params):
            out[(r["baseline"], r["object"], r["stage"])] = dict(r)
        return out

    def _check_row(self, universe: dict, r: dict, seen: dict) -> dict:
        """One plan row resolved, or its error raised (NotFoundError, InputError)."""
        otype, code, members = self._resolve_object(universe, r.get("object"))
        if otype == "project":  # a project's target is its monthly investment plan (gis/store/projects.py)
            raise InputError("projects.target_on_project", object=code)
        stage = self._plan_stage(members, r.get("stage"), code)
        due = r.get("due")
        if due is None or not str(due).strip():
            raise InputError("plans.no_due", object=code)
        due = plan_date(due).isoformat()
        n = r.get("row")
        if (code, stage) in seen:
            raise InputError("plans.duplicate_row", object=code, row=seen[(code, stage)])
        seen[(code, stage)] = n
        return {"row": n, "object_type": otype, "object": code, "stage": stage, "due_date": due,
                "unit": (str(r.get("unit") or "").strip() or None),
                "note": (str(r.get("note") or "").strip() or None), "_members": members}

    def check_targets(self, rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """Validate plan rows (``object``, ``stage``, ``due``, ``unit``, ``note``, ``row``) without writing.

        Returns ``(valid, rejected)``: valid rows resolved (object_type, object, stage key, due ISO);
        rejected ``{"row", "object", "reason"}`` with the reason in Chinese and English.
        """
        with self._connect() as con:
            universe = self._plan_universe(con)
        valid, rejected, seen = [], [], {}
        for i, r in enumerate(rows):
            r = {"row": i + 1, **r}
            if r.get("example"):  # the template's example row (gis/io/plans_io.py): never a target
                continue
            try:
                valid.append(self._check_row(universe, r, seen))
            except (InputError, NotFoundError) as e:
                rejected.append({"row": r["row"], "object": str(r.get("object") or ""), "reason": e.bilingual()})
        return valid, rejected

    def set_targets(self, rows: list[dict], by: str, baseline: str = DEFAULT_BASELINE,
                    reason: str | None = None) -> dict:
        """Set many targets in one transaction (a plan import): all land, or none.

        Rows marked ``example`` (the template's example rows, see gis/io/plans_io.py) are skipped and
        counted. Returns ``{"baseline", "added", "changed", "unchanged", "skipped_examples", "rejected": [],
        "data_version"}``.

        Raises:
            NotFoundError: no such baseline (only the built-in ones are made on first use; others are
                added with ``add_baseline``); nothing is written.
            InputError: a row is bad (``params["rejected"]`` lists every bad row with its number
                and reason) or the baseline is adopted and no reason is given; nothing is written.
            PermissionRefused: ``by`` may not plan one of the objects (the row is named).
        """
        return self._write_targets(rows, by, baseline, reason, single=False)

    def _write_targets(self, rows: list[dict], by: str, baseline: str | None, reason: str | None,
                       single: bool) -> dict:
        """:meth:`set_targets`; ``single``: one target set by hand, whose refusal names no row."""
        by = self._require_author(by)
        baseline = (baseline or DEFAULT_BASELINE).strip()
        with self._connect() as con:
            baseline = self._existing_baseline(con, baseline)
        skipped = sum(1 for r in rows if r.get("example"))
        valid, rejected = self.check_targets(rows)
        if rejected:
            one = len(rejected) == 1
            raise InputError("plans.import_rejected_one" if one else "plans.import_rejected", n=len(rejected),
                             rows=", ".join(str(r["row"]) for r in rejected), rejected=rejected)
        reason = (reason or "").strip() or None
        now = utcnow_iso()
        with self._refusals_logged(by, "plan_set", baseline), self._connect(write=True) as con:
            by, user = self._acting(con, by)
            for v in valid:
                try:
                    self._require_plan(user, v["object"], v["_members"])
                except PermissionRefused as e:
                    if single:
                        raise
                    raise PermissionRefused("plans.refused_row", row=v["row"],
                                            detail={lang: e.message(lang) for lang in ("zh", "en")}) from None
            base = self._baseline_row(con, baseline, create=True, by=by)
            current = self._current_targets(con, baseline)
            added = changed = unchanged = 0
            inserts = []
            for v in valid:
                old = current.get((baseline, v["object"], v["stage"]))
                unit = v["unit"] or (old or {}).get("unit") or self._unit_of(v["_members"])
                new = (v["due_date"], unit, v["note"] if v["note"] is not None else (old or {}).get("note"))
                if old and old["action"] != "withdraw" and (old["due_date"], old["unit"], old["note"]) == new:
                    unchanged += 1
                    continue
                if base["adopted_at"] and not reason:
                    raise InputError("plans.reason_needed", baseline=baseline, object=v["object"])
                action = "change" if old else "set"
                added += action == "set"
                changed += action == "change"
                inserts.append((baseline, v["object_type"], v["object"], v["stage"], new[0], new[1], new[2],
                                (old["revision"] + 1) if old else 1, action, reason, now, by))
            if inserts:
                con.executemany(
                    "INSERT INTO plan_targets (baseline, object_type, object, stage, due_date, unit, note, revision,"
                    " action, reason, recorded_at, recorded_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", inserts)
                self._bump(con)
            for r in inserts:
                self._audit(con, by, "plan_set" if r[8] == "set" else "plan_change", r[2], "ok",
                            None, {"baseline": r[0], "stage": r[3], "due_date": r[4], "unit": r[5],
                                   "revision": r[7]}, reason or "")
            version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
        return {"baseline": baseline, "added": added, "changed": changed, "unchanged": unchanged,
                "skipped_examples": skipped, "rejected": [], "data_version": int(version)}

    def set_target(self, obj: str, stage: str, due, by: str, baseline: str = DEFAULT_BASELINE,
                   unit: str | None = None, note: str | None = None, reason: str | None = None) -> dict:
        """Set (or change) one target: ``obj`` reaches ``stage`` by ``due``. Returns the target as stored.

        Raises:
            NotFoundError: unknown object; InputError: bad stage or date, or a change of an adopted
            baseline without a reason; PermissionRefused: ``by`` may not plan the object.
        """
        row = {"row": 1, "object": obj, "stage": stage, "due": due, "unit": unit, "note": note}
        with self._connect() as con:
            baseline = self._existing_baseline(con, baseline or DEFAULT_BASELINE)
            v = self._check_row(self._plan_universe(con), row, {})  # its own error, not an import summary
        self._write_targets([row], by, baseline, reason, single=True)
        t = self.plan_targets(baseline=baseline)
        return _plain(t[(t["object"] == v["object"]) & (t["stage"] == v["stage"])].iloc[0].to_dict())

    @staticmethod
    def _unit_of(members: list[dict]) -> str | None:
        units = pd.Series([m.get("unit") for m in members if m.get("unit")], dtype=object)
        return str(units.mode().iloc[0]) if len(units) else None

    def plan_targets(self, baseline: str | None = None, village: str | None = None, original: bool = False,
                     withdrawn: bool = False, as_recorded=None) -> pd.DataFrame:
        """The targets, one row per ``(baseline, object, stage)``: the latest revision (``original``:
        the first), with ``original_due`` and ``revisions``. ``village`` (code or name) keeps the
        village's own targets and those of its parcels. ``as_recorded`` (an aware instant): the plan
        as recorded then — only the revisions recorded by that instant (a target set later is not
        there; a later change is not applied yet).
        """
        with self._connect() as con:
            cur = con.execute(f"SELECT {', '.join(TARGET_COLUMNS)} FROM plan_targets"
                              + (" WHERE baseline = ?" if baseline else "") + " ORDER BY id",
                              (baseline,) if baseline else ())
            df = pd.DataFrame([tuple(r) for r in cur.fetchall()], columns=list(TARGET_COLUMNS))
            village_of = {r[0]: r[1] for r in con.execute("SELECT code, village FROM parcels")} if village else {}
        if as_recorded is not None and len(df):
            df = df[_recorded_by(df["recorded_at"], as_recorded)].reset_index(drop=True)
        if not len(df):
            return df.assign(original_due=pd.Series(dtype=object), revisions=pd.Series(dtype="int64"))
        key = ["baseline", "object", "stage"]
        first = df.groupby(key, sort=False).head(1).set_index(key)
        pick = first if original else df.groupby(key, sort=False).tail(1).set_index(key)
        out = pick.copy()
        out["original_due"] = first["due_date"].reindex(out.index)
        out["revisions"] = df.groupby(key, sort=False).size().reindex(out.index).astype("int64")
        out = out.reset_index()
        if not withdrawn:
            out = out[out["action"] != "withdraw"]
        if village:
            code = self.village_code(village)
            out = out[(out["object"] == code) | (out["object"].map(village_of) == code)]
        return out[[*TARGET_COLUMNS, "original_due", "revisions"]].sort_values(["baseline", "object", "stage"]) \
            .reset_index(drop=True)

    def target_history(self, obj: str, baseline: str | None = None) -> pd.DataFrame:
        """Every revision of the targets of one object, oldest first."""
        with self._connect() as con:
            universe = self._plan_universe(con)
            _, code, _ = self._resolve_object(universe, obj)
            cur = con.execute(f"SELECT {', '.join(TARGET_COLUMNS)} FROM plan_targets WHERE object = ?"
                              + (" AND baseline = ?" if baseline else "") + " ORDER BY id",
                              (code, baseline) if baseline else (code,))
            return pd.DataFrame([tuple(r) for r in cur.fetchall()], columns=list(TARGET_COLUMNS))

    # ------------------------------------------------------------------ status
    def plan_status(self, as_of=None, baseline: str | None = None, original: bool = False,
                    rules: model.PlanRules | None = None, as_recorded=None) -> model.Evaluation:
        """Every target's status and every parcel's plan status as of ``as_of`` (default: the office's today).

        A date before today replays the event log; today uses the parcels' current stage.
        ``as_recorded`` (an aware instant): only the stage events and the plan revisions recorded by
        then count (the targets as the system said then).
        """
        today = office_today()
        when = parse_date(as_of, today=today)
        targets = self.plan_targets(baseline=baseline, original=original, as_recorded=as_recorded)
        parcels, events = self.plan_inputs()  # only the columns the status needs, read in one go
        if as_recorded is not None and len(events):
            events = events[_recorded_by(events["recorded_at"], as_recorded)]
        events = events.drop(columns="recorded_at")
        return model.evaluate(targets, parcels, events, self.catalog, when, rules,
                              current=when >= today and as_recorded is None)

    # what a plan evaluation kept in memory (gis.store.live.LivePlan) reads to patch itself
    def plan_marks(self) -> dict:
        """How far the plan's inputs go: ``targets`` and ``events`` as ``(rows, largest id)`` (both tables are
        append-only, so a new row shows as a larger id, a restore or a removal as a count that does not add
        up) and ``updated``, the newest ``updated_at`` of a parcel."""
        with self._connect() as con:
            t = con.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM plan_targets").fetchone()
            e = con.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM stage_events").fetchone()
            u = con.execute("SELECT MAX(updated_at) FROM parcels").fetchone()
        return {"targets": (int(t[0]), int(t[1])), "events": (int(e[0]), int(e[1])), "updated": u[0]}

    def plan_changes(self, after_event: int, stamp: str | None) -> tuple[dict[str, int], set[str], int]:
        """What changed for the plan since a read: ``{code: version}`` of the parcels whose ``updated_at``
        is ``stamp`` or later (every parcel for None), the parcels with a stage event after id
        ``after_event``, and how many such events there are."""
        with self._connect() as con:
            new = [r[0] for r in con.execute("SELECT parcel FROM stage_events WHERE id > ?", (after_event,))]
            rows = con.execute("SELECT code, version FROM parcels" + (" WHERE updated_at >= ?" if stamp else ""),
                               (stamp,) if stamp else ()).fetchall()
        return {r[0]: int(r[1] or 0) for r in rows}, set(new), len(new)

    def plan_inputs(self, codes=None, groups=()) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The parcels (code order) and stage events (id order) that :meth:`plan_status` evaluates: all of
        them, or those of the parcels ``codes`` and of every parcel in a village or park of ``groups``."""
        pcols = "code, kind, zone, village, park, unit, stage, stage_date, blocked, area_m2"
        ecols = "id, parcel, action, from_stage, to_stage, event_date, recorded_at"
        with self._connect() as con:
            if codes is None:
                return (_frame(con, f"SELECT {pcols} FROM parcels ORDER BY code"),
                        _frame(con, f"SELECT {ecols} FROM stage_events ORDER BY id"))
            keys = sorted({*codes})
            names = sorted({g for g in groups if g})
            cond = " OR ".join(c for c in (f"code IN ({', '.join('?' * len(keys))})" if keys else "",
                                           f"village IN ({', '.join('?' * len(names))})" if names else "",
                                           f"park IN ({', '.join('?' * len(names))})" if names else "") if c)
            args = (*keys, *names, *names)
            if not cond:
                return _frame(con, f"SELECT {pcols} FROM parcels WHERE 1 = 0"), \
                    _frame(con, f"SELECT {ecols} FROM stage_events WHERE 1 = 0")
            parcels = _frame(con, f"SELECT {pcols} FROM parcels WHERE {cond} ORDER BY code", args)
            events = _frame(con, f"SELECT {ecols} FROM stage_events WHERE parcel IN"
                                 f" (SELECT code FROM parcels WHERE {cond}) ORDER BY id", args)
        return parcels, events

    def status_rows(self, as_of=None, village: str | None = None, zone: str | None = None,
                    unit: str | None = None, baseline: str | None = None, lang: str = "zh",
                    evaluation: model.Evaluation | None = None) -> list[dict]:
        """``renewal status``: one row per target (object, stage, due, status, days_late, unit, …),
        most late first, then one per stalled parcel (``status: "stalled"``, days_in_stage).

        Raises:
            NotFoundError: unknown village, zone, unit or baseline.
        """
        if baseline:
            baseline = self.baseline_name(baseline)
        if unit:
            unit = self.unit_name(unit)
        ev = evaluation or self.plan_status(as_of, baseline=baseline)
        t, p = ev.targets, ev.stalled()
        if village:
            code = self.village_code(village)
            t, p = t[t["village"] == code], p[p["village"] == code]
        if zone:
            z = self.zone_code(zone)
            t, p = t[t["zone"] == z], p[p["zone"] == z]
        if unit:
            t, p = t[t["unit"] == unit], p[p["unit"] == unit]
        label = self.catalog.stage_label
        pick = 1 if lang == "en" else 0
        names = {c: (n[pick] or n[0]) for t_ in ("villages", "parks") for c, n in self.names(t_).items()}
        with self._connect() as con:
            names.update(_frame(con, "SELECT code, name FROM parcels").set_index("code")["name"].to_dict())
        bases = {b["name"]: (b["label_en"] if lang == "en" else b["label"]) or b["name"] for b in self.plan_baselines()}
        rows = [{"object": r.object, "name": names.get(r.object), "object_type": r.object_type,
                 "baseline": r.baseline, "baseline_label": bases.get(r.baseline, r.baseline), "stage": r.stage,
                 "stage_label": label(r.kind, r.stage, lang) if r.kind else r.stage, "due": r.due_date,
                 "original_due": r.original_due, "status": r.status, "days_late": int(r.days_late),
                 "days_left": int(r.days_left), "reached_on": r.reached_on, "unit": r.unit, "village": r.village or None,
                 "zone": r.zone, "parcels": int(r.parcels), "parcels_done": int(r.parcels_done)}
                for r in t.sort_values(["days_late", "object"], ascending=[False, True]).itertuples()]
        rows += [{"object": r.code, "name": names.get(r.code), "object_type": "parcel", "stage": r.stage or None,
                  "stage_label": label(r.kind, r.stage or None, lang), "status": "stalled",
                  "stalled_why": r.stalled_why, "days_in_stage": int(r.days_in_stage), "max_days": int(r.max_days),
                  "blocked_days": int(r.blocked_days), "days_late": 0, "unit": r.unit,
                  "village": r.village or None, "zone": r.zone}
                 for r in p.sort_values(["days_in_stage", "code"], ascending=[False, True]).itertuples()]
        return rows

    def _neighbourhood_status(self, p: dict, as_of=None, as_recorded=None) -> model.Evaluation:
        """The plan status of one parcel's targets only: its own, its village's and its site's, evaluated
        on the parcels they name (a briefing page needs no district-wide evaluation)."""
        today = office_today()
        when = parse_date(as_of, today=today)
        # an empty village or park names no group (parcels outside any village have village = '')
        keys = (p["code"], p.get("village") or p["code"], p.get("park") or p["code"])
        targets = self.plan_targets(as_recorded=as_recorded)
        targets = targets[targets["object"].isin(keys)]
        with self._connect() as con:
            parcels = _frame(con, "SELECT code, kind, zone, village, park, unit, stage, stage_date, blocked, area_m2"
                                  " FROM parcels WHERE code = ? OR village = ? OR park = ? ORDER BY code", keys)
            events = _frame(con, "SELECT e.id, e.parcel, e.action, e.from_stage, e.to_stage, e.event_date,"
                                 " e.recorded_at FROM stage_events e JOIN parcels q ON q.code = e.parcel"
                                 " WHERE q.code = ? OR q.village = ? OR q.park = ? ORDER BY e.id", keys)
        if as_recorded is not None and len(events):
            events = events[_recorded_by(events["recorded_at"], as_recorded)]
        return model.evaluate(targets, parcels, events.drop(columns="recorded_at"), self.catalog, when,
                              current=when >= today and as_recorded is None)

    def parcel_plan(self, code: str, as_of=None, lang: str = "zh",
                    evaluation: model.Evaluation | None = None, as_recorded=None,
                    parcel: dict | None = None) -> list[dict]:
        """The targets that concern one parcel — its own and its village's or site's — with planned
        (``due``, ``original_due``) against actual (``reached_on``), ``status`` and ``days_late``.
        ``parcel``: its record from :meth:`parcel` in ``lang``, when the caller has it already.

        Raises:
            NotFoundError: unknown parcel.
        """
        p = parcel if parcel is not None and parcel.get("code") == code else self.parcel(code, lang)
        ev = evaluation or self._neighbourhood_status(p, as_of, as_recorded)
        keys = [("parcel", code)] + [(kind, p.get(field)) for kind, field in (("village", "village"), ("site", "park"))
                                     if p.get(field)]
        mine = ev.targets_of(keys)
        labels = {b["name"]: (b["label_en"] if lang == "en" else b["label"]) or b["name"]
                  for b in self._baseline_names(as_recorded)}
        own = {"parcel": p["name"], "village": p.get("village_name"), "site": p.get("park_name")}
        order = {n: i for i, n in enumerate(labels)}
        rows = [{"baseline": r.baseline, "baseline_label": labels.get(r.baseline, r.baseline),
                 "object": r.object, "object_type": r.object_type, "object_label": own.get(r.object_type) or r.object,
                 "stage": r.stage, "stage_label": self.catalog.stage_label(p["kind"], r.stage, lang), "due": r.due_date,
                 "original_due": r.original_due, "reached_on": r.reached_on, "status": r.status,
                 "days_late": int(r.days_late), "unit": r.unit}
                for r in mine.itertuples()]
        return sorted(rows, key=lambda r: (order.get(r["baseline"], 99), r["due"]))

    def campaigns(self, as_of=None) -> list[dict]:
        """Every campaign baseline with its countdown and completion (``model.campaign_summary``)."""
        camps = [b for b in self.plan_baselines() if b["kind"] == "campaign"]
        if not camps:
            return []
        ev = self.plan_status(as_of)
        return [{"label": b["label"], **model.campaign_summary(ev, b["name"], b["start_date"], b["end_date"])}
                for b in camps]

    # ------------------------------------------------------------------ follow-up orders
    def _followup(self, con, fid) -> dict:
        try:
            fid = int(fid)
        except (TypeError, ValueError):
            raise NotFoundError("plans.unknown_followup", id=str(fid)) from None
        row = con.execute("SELECT * FROM followups WHERE id = ?", (fid,)).fetchone()
        if row is None:
            raise NotFoundError("plans.unknown_followup", id=str(fid))
        out = dict(row)
        last = con.execute("SELECT state, at, actor, text FROM followup_events WHERE followup = ?"
                           " ORDER BY id DESC LIMIT 1", (fid,)).fetchone()
        out["state"], out["last_at"] = last["state"], last["at"]
        return out

    def issue_followup(self, on: str, unit: str | None, due, text: str, by: str, target: str | None = None) -> dict:
        """Issue an order (督办) on a parcel, village or site, to ``unit``, due on ``due``.

        ``target`` (optional) names the target the order is about, ``baseline/object/stage``
        (``annual/V07/签约``: object and stage by code or label); it is stored as
        ``baseline/code/stage key``.

        Raises:
            NotFoundError: unknown object, baseline or target; InputError: no text, a bad date, a due
            date before today (the order would be overdue the moment it is issued), a target that is not
            ``baseline/object/stage`` or is about other parcels than the order;
            PermissionRefused: ``by`` is not a leader or an admin.
        """
        by = self._require_author(by)
        text = (text or "").strip()
        if not text:
            raise InputError("plans.no_text")
        if due is None or not str(due).strip():
            raise InputError("plans.no_due", object=str(on))
        due_d = plan_date(due)
        today = office_today()
        if due_d < today:
            raise InputError("plans.followup_due_past", due=due_d.isoformat(), today=today.isoformat())
        due_s = due_d.isoformat()
        with self._refusals_logged(by, "followup_issue", str(on)), self._connect(write=True) as con:
            by, user = self._acting(con, by)
            self._require_leader(user, "followup add")
            universe = self._plan_universe(con)
            otype, code, members = self._resolve_object(universe, on)
            if target is not None and str(target).strip():
                target = self._target_ref(con, universe, str(target).strip(), code, members)
            else:
                target = None
            unit = (unit or "").strip() or (self._project_row(con, code)["unit"] if otype == "project" else None) \
                or self._unit_of(members) or ""
            now = utcnow_iso()
            fid = con.execute("INSERT INTO followups (on_type, on_code, target, unit, due_date, text, issued_at,"
                              " issued_by) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
                              (otype, code, target, unit, due_s, text, now, by)).fetchone()[0]
            con.execute("INSERT INTO followup_events (followup, action, state, text, at, actor) VALUES (?,?,?,?,?,?)",
                        (fid, "issue", "issued", text, now, by))
            self._bump(con)
            after = {"id": int(fid), "on": code, "unit": unit, "due": due_s, "state": "issued"}
            self._audit(con, by, "followup_issue", code, "ok", None, after, text)
        return self.followup(fid)

    def _target_ref(self, con, universe: dict, ref: str, on: str, on_members: list[dict]) -> str:
        """``baseline/object/stage`` checked: the baseline exists, the object and the stage resolve, the
        target is set (not withdrawn), and it concerns the parcels of the order's object ``on``.

        Raises:
            InputError: not three parts, or a target about other parcels; NotFoundError: unknown
            baseline or object, no such target.
        """
        parts = [x.strip() for x in ref.split("/")]
        if len(parts) != 3 or not all(parts):
            raise InputError("plans.bad_target_ref", target=ref)
        baseline = self._existing_baseline(con, parts[0])
        _, code, members = self._resolve_object(universe, parts[1])
        stage = self._plan_stage(members, parts[2], code)
        current = self._current_targets(con, baseline).get((baseline, code, stage))
        if current is None or current["action"] == "withdraw":
            raise NotFoundError("plans.no_such_target", target=ref, baseline=baseline, object=code, stage=parts[2])
        if not {m["code"] for m in members} & {m["code"] for m in on_members}:
            raise InputError("plans.target_elsewhere", target=ref, object=code, on=on)
        return f"{baseline}/{code}/{stage}"

    def _move_followup(self, fid, action: str, text: str, by: str, text_needed: bool) -> dict:
        by = self._require_author(by)
        text = (text or "").strip()
        if text_needed and not text:
            raise InputError("plans.no_text")
        with self._connect() as con:
            on = self._followup(con, fid)["on_code"]  # refusals are audited on the order's object
        with self._refusals_logged(by, f"followup_{action}", on), self._connect(write=True) as con:
            f = self._followup(con, fid)
            by, user = self._acting(con, by)
            if user is not None and user.role != "admin":
                if action == "reply" and f["on_type"] == "project":  # the project's unit replies
                    self._require_report(con, user, self._project_row(con, f["on_code"]))
                elif action == "reply":
                    members = self._plan_universe(con)["members"].get((f["on_type"], f["on_code"])) \
                        if f["on_type"] != "parcel" else [dict(self._row(con, f["on_code"]))]
                    if user.role != "editor" or not members or not all(accounts.may_edit(user, m) for m in members):
                        raise PermissionRefused("plans.refused_reply", user=user.username, role=user.role,
                                                id=f["id"], object=f["on_code"])
                elif user.username != f["issued_by"]:
                    raise PermissionRefused("plans.refused_close", user=user.username, id=f["id"],
                                            issuer=f["issued_by"])
            state = model.followup_next(f["state"], action)
            if state is None:  # a repeat of a finished action (closing a closed order) is a conflict too: exit 4
                done = FOLLOWUP_DONE.get(action) == f["state"]
                raise ConflictError("plans.followup_done_already" if done else "plans.followup_state", id=f["id"],
                                    state=_both(f"plans.state_{f['state']}"), action=_both(f"plans.verb_{action}"),
                                    at=i18n.local_time(f.get("last_at")) or "-")
            con.execute("INSERT INTO followup_events (followup, action, state, text, at, actor) VALUES (?,?,?,?,?,?)",
                        (f["id"], action, state, text or None, utcnow_iso(), by))
            self._bump(con)
            self._audit(con, by, f"followup_{action}", f["on_code"], "ok", {"id": f["id"], "state": f["state"]},
                        {"id": f["id"], "state": state}, text)
        return self.followup(f["id"])

    def reply_followup(self, fid, text: str, by: str) -> dict:
        """The unit's reply. Raises PermissionRefused (not the editor of the object's area),
        ConflictError (the order is not waiting for a reply), InputError (no text)."""
        return self._move_followup(fid, "reply", text, by, text_needed=True)

    def close_followup(self, fid, by: str, text: str = "") -> dict:
        """The issuer closes the order. Raises PermissionRefused (not its issuer), ConflictError (closed)."""
        return self._move_followup(fid, "close", text, by, text_needed=False)

    def return_followup(self, fid, text: str, by: str) -> dict:
        """The issuer sends the reply back. Raises PermissionRefused, ConflictError (no reply to return)."""
        return self._move_followup(fid, "return", text, by, text_needed=True)

    def followup_trail(self, fid) -> list[dict]:
        """Every step of one order, oldest first."""
        with self._connect() as con:
            f = self._followup(con, fid)
            return [dict(r) for r in con.execute(
                "SELECT id, action, state, text, at, actor FROM followup_events WHERE followup = ? ORDER BY id",
                (f["id"],))]

    def followup(self, fid, as_of=None) -> dict:
        """One order with its state, ``overdue`` flag and trail."""
        rows = [r for r in self.followups(as_of=as_of) if r["id"] == int(fid)]
        if not rows:
            raise NotFoundError("plans.unknown_followup", id=str(fid))
        return rows[0] | {"trail": self.followup_trail(fid)}

    def followups(self, open_only: bool = False, unit: str | None = None, on: str | None = None,
                  as_of=None, codes=None, as_recorded=None) -> list[dict]:
        """The orders, newest first: id, on, on_type, target, unit, due, text, issued_by, issued_at,
        state, last_at, last_by, last_text, overdue. ``on``: an object code; ``codes``: orders on any
        of these objects (a parcel and its village, say).

        ``as_of`` (a date): the orders as they stood at the end of that day (office's time) — one
        issued later is not there, and each has the state of its last step by then (an order closed
        later is still open); ``as_recorded`` (an aware instant): the same, cut at that instant.
        """
        when = parse_date(as_of, today=office_today())
        cut = parse_as_recorded(when.isoformat()) if as_of not in (None, "") else None
        if as_recorded is not None:
            cut = min(cut, as_recorded) if cut is not None else as_recorded
        with self._connect() as con:
            orders = [dict(r) for r in con.execute("SELECT * FROM followups ORDER BY id DESC")]
            steps = _frame(con, "SELECT followup, state, at, actor, text FROM followup_events ORDER BY id")
        if cut is not None:
            orders = [f for f in orders if _by(f["issued_at"], cut)]
            steps = steps[_recorded_by(steps["at"], cut)] if len(steps) else steps
        last: dict = {}
        for r in steps.to_dict("records"):
            last[r["followup"]] = r
        out = []
        for f in orders:
            ev = last.get(f["id"], {})
            state = ev.get("state", "issued")
            row = {"id": int(f["id"]), "on": f["on_code"], "on_type": f["on_type"], "target": f["target"],
                   "unit": f["unit"], "due": f["due_date"], "text": f["text"], "issued_by": f["issued_by"],
                   "issued_at": f["issued_at"], "state": state, "last_at": ev.get("at"), "last_by": ev.get("actor"),
                   "last_text": ev.get("text"), "overdue": model.followup_overdue(state, f["due_date"], when)}
            if open_only and state not in model.FOLLOWUP_OPEN:
                continue
            if unit and row["unit"] != unit:
                continue
            if on and row["on"] != on:
                continue
            if codes is not None and row["on"] not in codes:
                continue
            out.append(row)
        return out

    def my_work(self, username: str, as_of=None) -> dict:
        """What waits for one user: overdue and due-soon targets of their area, orders to reply to
        (an editor: on objects of their area) and replies to close (a leader: orders they issued)."""
        when = parse_date(as_of, today=office_today())
        user = self.user(username) if username else None
        ev = self.plan_status(when)
        t = ev.targets
        with self._connect() as con:
            universe = self._plan_universe(con)

        def mine(otype, code) -> bool:
            if user is None or user.role in PLANNERS:
                return True
            if user.role != "editor":
                return False
            members = [universe["parcels"][code]] if otype == "parcel" and code in universe["parcels"] else \
                universe["members"].get((otype, code), [])
            return bool(members) and all(accounts.may_edit(user, m) for m in members)

        late = t[t["status"].isin(("overdue", "due_soon"))]
        late = late[[mine(o, c) for o, c in zip(late["object_type"], late["object"])]] if len(late) else late
        orders = self.followups(open_only=True, as_of=when)
        to_reply = [f for f in orders if f["state"] in ("issued", "returned") and user is not None
                    and user.role in ("editor", "admin") and mine(f["on_type"], f["on"])]
        to_close = [f for f in orders if f["state"] == "replied" and user is not None
                    and (user.role == "admin" or f["issued_by"] == user.username)]
        return {"as_of": when.isoformat(), "targets": late.sort_values(["status", "days_late"], ascending=[True, False])
                .reset_index(drop=True), "to_reply": to_reply, "to_close": to_close}
