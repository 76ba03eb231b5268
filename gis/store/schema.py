"""Versioned schema migrations, one list for both back ends.

``meta.schema_version`` says which migrations a store has. Opening a store
applies the missing ones in one transaction. Version 1 is the base layout of
docs/DATA_MODEL.md (written by GDAL into a GeoPackage; created by SQL on
PostGIS); version 2 adds accounts, assignments and the audit trail, and makes
the event and audit tables append-only with triggers.
"""
from __future__ import annotations

POLY_LAYERS = ("district", "sea", "zones", "devzone", "parks", "villages")
LAYER_FIELDS = {
    "district": ("name", "name_en"),
    "sea": ("name", "name_en"),
    "zones": ("code", "name", "name_en", "strategy", "roles", "roles_en"),
    "devzone": ("code", "name", "name_en"),
    "parks": ("code", "name", "name_en", "industry"),
    "villages": ("code", "name", "name_en", "zone"),
    "points": ("code", "name", "name_en", "kind"),
}
PARCEL_COLUMNS = (
    ("code", "TEXT NOT NULL UNIQUE"), ("name", "TEXT"), ("kind", "TEXT"), ("zone", "TEXT"), ("village", "TEXT"),
    ("park", "TEXT"), ("unit", "TEXT"), ("owner", "TEXT"), ("land_use", "TEXT"), ("stage", "TEXT"),
    ("stage_date", "TEXT"), ("blocked", "INTEGER"), ("blocked_reason", "TEXT"), ("note", "TEXT"),
    ("area_m2", "DOUBLE PRECISION"), ("version", "INTEGER"), ("updated_at", "TEXT"), ("updated_by", "TEXT"),
)
EVENT_COLUMNS = (
    ("parcel", "TEXT"), ("action", "TEXT"), ("from_stage", "TEXT"), ("to_stage", "TEXT"), ("event_date", "TEXT"),
    ("recorded_at", "TEXT"), ("recorded_by", "TEXT"), ("unit", "TEXT"), ("note", "TEXT"), ("reason", "TEXT"),
    ("share", "DOUBLE PRECISION"),
)
ACCOUNT_TABLES = {
    "users": (("username", "TEXT NOT NULL UNIQUE"), ("display_name", "TEXT"), ("role", "TEXT NOT NULL"),
              ("password_hash", "TEXT"), ("failed_count", "INTEGER NOT NULL DEFAULT 0"), ("last_failed_at", "TEXT"),
              ("created_at", "TEXT"), ("disabled", "INTEGER NOT NULL DEFAULT 0")),
    "assignments": (("username", "TEXT NOT NULL"), ("scope", "TEXT NOT NULL"), ("code", "TEXT NOT NULL")),
    "audit": (("at", "TEXT NOT NULL"), ("actor", "TEXT"), ("action", "TEXT NOT NULL"), ("target", "TEXT"),
              ("outcome", "TEXT NOT NULL"), ("before", "TEXT"), ("after", "TEXT"), ("detail", "TEXT")),
}
APPEND_ONLY = ("stage_events", "audit")


def _attribute_table(table: str) -> str:
    """Register a GeoPackage table as an attribute table, so the file stays a valid GeoPackage."""
    return ("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, srs_id)"
            f" VALUES ('{table}', 'attributes', '{table}', '', strftime('%Y-%m-%dT%H:%M:%fZ','now'), 0)")


def _cols(cols) -> str:
    return ", ".join(f'"{n}" {t}' for n, t in cols)


def _pg_v1() -> list[str]:
    sql = []
    for layer, fields in LAYER_FIELDS.items():
        gtype = "Point" if layer == "points" else "MultiPolygon"
        sql.append(f'CREATE TABLE "{layer}" (fid BIGSERIAL PRIMARY KEY, geom geometry({gtype}, 4490), '
                   + ", ".join(f'"{f}" TEXT' for f in fields) + ")")
        sql.append(f'CREATE INDEX "{layer}_geom_idx" ON "{layer}" USING GIST (geom)')
    sql.append(f"CREATE TABLE parcels (fid BIGSERIAL PRIMARY KEY, geom geometry(MultiPolygon, 4490), {_cols(PARCEL_COLUMNS)})")
    sql.append("CREATE INDEX parcels_geom_idx ON parcels USING GIST (geom)")
    sql.append(f"CREATE TABLE stage_events (id BIGSERIAL PRIMARY KEY, {_cols(EVENT_COLUMNS)})")
    sql.append("CREATE INDEX stage_events_parcel_idx ON stage_events(parcel)")
    sql.append("CREATE TABLE meta (fid BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE, value TEXT)")
    sql.append("INSERT INTO meta (key, value) VALUES ('data_version', '0'), ('schema_version', '1')")
    return sql


def _accounts(backend: str) -> list[str]:
    pk = "id BIGSERIAL PRIMARY KEY" if backend == "pg" else "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"
    sql = [f'CREATE TABLE "{t}" ({pk}, {_cols(cols)})' for t, cols in ACCOUNT_TABLES.items()]
    sql.append("CREATE UNIQUE INDEX assignments_uniq ON assignments(username, scope, code)")
    sql.append("CREATE INDEX audit_at_idx ON audit(at)")
    if backend == "gpkg":
        # registered as attribute tables so the file stays a valid GeoPackage
        sql += [_attribute_table(t) for t in ACCOUNT_TABLES]
        for t in APPEND_ONLY:
            for op in ("UPDATE", "DELETE"):
                sql.append(f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                           f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END")
    else:
        sql.append("CREATE OR REPLACE FUNCTION renewal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$")
        for t in APPEND_ONLY:
            sql.append(f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                       "FOR EACH ROW EXECUTE FUNCTION renewal_append_only()")
            sql.append(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION renewal_append_only()")
    return sql


def _cli_tokens(backend: str) -> list[str]:
    """Personal tokens an admin issues for the command line (``renewal token issue``): only their sha256 is kept."""
    pk = "id BIGSERIAL PRIMARY KEY" if backend == "pg" else "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"
    sql = [f"CREATE TABLE cli_tokens ({pk}, username TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,"
           " created_at TEXT, created_by TEXT, revoked_at TEXT)"]
    if backend == "gpkg":
        sql.append(_attribute_table("cli_tokens"))
    return sql


def _claimed_columns() -> list[str]:
    """What an imported file claimed about a carried event's author and time, when the store did not believe it
    (the event itself is recorded as the importer's, at the import's time)."""
    return ["ALTER TABLE stage_events ADD COLUMN claimed_by TEXT", "ALTER TABLE stage_events ADD COLUMN claimed_at TEXT"]


# Sign-in state two app servers must share (gis/store/sessions.py, authenticate in gis/store/users.py):
# the signing keys by generation (the last two accepted), sessions signed out early, the moment all of an
# account's sessions were ended, and failed logins counted per (account, client). Times: seconds since the epoch.
SESSION_TABLES = {
    "session_keys": (("generation", "INTEGER NOT NULL UNIQUE"), ("secret", "TEXT NOT NULL"),
                     ("created_at", "TEXT NOT NULL")),
    "session_revocations": (("sid", "TEXT NOT NULL UNIQUE"), ("username", "TEXT"), ("revoked_at", "TEXT NOT NULL"),
                            ("expires_at", "DOUBLE PRECISION NOT NULL")),
    "session_cutoffs": (("username", "TEXT NOT NULL UNIQUE"), ("not_before", "DOUBLE PRECISION NOT NULL")),
    "login_attempts": (("account", "TEXT NOT NULL"), ("client", "TEXT NOT NULL"),
                       ("failures", "INTEGER NOT NULL DEFAULT 0"), ("next_at", "DOUBLE PRECISION"),
                       ("window_start", "DOUBLE PRECISION"), ("window_count", "INTEGER NOT NULL DEFAULT 0"),
                       ("window_last", "DOUBLE PRECISION"), ("seen_at", "DOUBLE PRECISION NOT NULL")),
}


def _sessions(backend: str) -> list[str]:
    pk = "id BIGSERIAL PRIMARY KEY" if backend == "pg" else "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"
    real = (lambda c: c) if backend == "pg" else (lambda c: c.replace("DOUBLE PRECISION", "REAL"))  # GeoPackage's name
    sql = [f'CREATE TABLE "{t}" ({pk}, {real(_cols(cols))})' for t, cols in SESSION_TABLES.items()]
    sql.append("CREATE UNIQUE INDEX login_attempts_uniq ON login_attempts(account, client)")
    sql.append("CREATE INDEX login_attempts_client_idx ON login_attempts(client)")
    if backend == "gpkg":  # attribute tables, so the file stays a valid GeoPackage
        sql += [_attribute_table(t) for t in SESSION_TABLES]
    return sql


PLAN_TABLES = {
    "plan_baselines": (("name", "TEXT NOT NULL UNIQUE"), ("label", "TEXT"), ("label_en", "TEXT"),
                       ("kind", "TEXT NOT NULL"), ("start_date", "TEXT"), ("end_date", "TEXT"),
                       ("adopted_at", "TEXT"), ("adopted_by", "TEXT"), ("created_at", "TEXT"),
                       ("created_by", "TEXT"), ("note", "TEXT")),
    "plan_targets": (("baseline", "TEXT NOT NULL"), ("object_type", "TEXT NOT NULL"), ("object", "TEXT NOT NULL"),
                     ("stage", "TEXT NOT NULL"), ("due_date", "TEXT NOT NULL"), ("unit", "TEXT"), ("note", "TEXT"),
                     ("revision", "INTEGER NOT NULL"), ("action", "TEXT NOT NULL"), ("reason", "TEXT"),
                     ("recorded_at", "TEXT NOT NULL"), ("recorded_by", "TEXT")),
    "followups": (("on_type", "TEXT NOT NULL"), ("on_code", "TEXT NOT NULL"), ("target", "TEXT"), ("unit", "TEXT"),
                  ("due_date", "TEXT NOT NULL"), ("text", "TEXT NOT NULL"), ("issued_at", "TEXT NOT NULL"),
                  ("issued_by", "TEXT")),
    "followup_events": (("followup", "INTEGER NOT NULL"), ("action", "TEXT NOT NULL"), ("state", "TEXT NOT NULL"),
                        ("text", "TEXT"), ("at", "TEXT NOT NULL"), ("actor", "TEXT")),
}
PLAN_APPEND_ONLY = ("plan_targets", "followups", "followup_events")


def _plans(backend: str) -> list[str]:
    """Plans and follow-up orders (gis/store/plans.py): targets and orders are append-only."""
    pk = "id BIGSERIAL PRIMARY KEY" if backend == "pg" else "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"
    sql = [f'CREATE TABLE "{t}" ({pk}, {_cols(cols)})' for t, cols in PLAN_TABLES.items()]
    sql.append("CREATE INDEX plan_targets_key_idx ON plan_targets(baseline, object, stage)")
    sql.append("CREATE INDEX followup_events_followup_idx ON followup_events(followup)")
    if backend == "gpkg":
        sql += [_attribute_table(t) for t in PLAN_TABLES]
        for t in PLAN_APPEND_ONLY:
            for op in ("UPDATE", "DELETE"):
                sql.append(f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                           f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END")
    else:
        # renewal_append_only() is created by migration 2
        for t in PLAN_APPEND_ONLY:
            sql.append(f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                       "FOR EACH ROW EXECUTE FUNCTION renewal_append_only()")
            sql.append(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION renewal_append_only()")
    return sql


def _preferences(backend: str) -> list[str]:
    """Users' preferences in the store, so that several app servers share them (gis/store/preferences.py)."""
    # an integer key: a GeoPackage attribute table must have one (validate_gpkg.py, requirement 119)
    key = "id INTEGER PRIMARY KEY AUTOINCREMENT" if backend == "gpkg" else "id BIGSERIAL PRIMARY KEY"
    sql = [f'CREATE TABLE preferences ({key}, username TEXT NOT NULL, section TEXT NOT NULL, value TEXT NOT NULL,'
           ' updated_at TEXT, UNIQUE (username, section))']
    if backend == "gpkg":
        sql.append(_attribute_table("preferences"))
    return sql


# Evidence (issue 17, gis/store/attachments.py): photos and documents on parcels, sites, villages and stage events.
# ``attachments`` is the GeoPackage Related Tables Extension's media table (id, data, content_type as OGC 18-000
# names them) and ``parcels_attachments`` its mapping table to the parcels, declared in gpkgext_relations, so QGIS
# shows a parcel's photos. The blobs come last in the row: SQLite then reads the metadata of a listing without
# walking a 5 MB photo's overflow pages. Rows are never deleted (withdrawn or superseded instead) and their bytes
# never change.
ATTACHMENT_COLUMNS = (
    ("content_type", "TEXT NOT NULL"), ("target_kind", "TEXT NOT NULL"), ("target_code", "TEXT NOT NULL"),
    ("event_id", "INTEGER"), ("kind", "TEXT NOT NULL"), ("filename", "TEXT"), ("size", "INTEGER NOT NULL"),
    ("sha256", "TEXT NOT NULL"), ("caption", "TEXT"), ("added_by", "TEXT"), ("added_at", "TEXT NOT NULL"),
    ("taken_at", "TEXT"), ("lon", "DOUBLE PRECISION"), ("lat", "DOUBLE PRECISION"), ("direction", "DOUBLE PRECISION"),
    ("width", "INTEGER"), ("height", "INTEGER"), ("has_script", "INTEGER NOT NULL DEFAULT 0"),
    ("restricted", "INTEGER NOT NULL DEFAULT 0"), ("idempotency_key", "TEXT UNIQUE"), ("supersedes", "INTEGER"),
    ("superseded_by", "INTEGER"), ("withdrawn_at", "TEXT"), ("withdrawn_by", "TEXT"), ("withdrawn_reason", "TEXT"),
)
ATTACHMENT_FROZEN = ("data", "content_type", "sha256", "size", "target_kind", "target_code", "event_id", "added_at")
RTE_DEFINITION = "http://www.geopackage.org/18-000.html"


def _attachments(backend: str) -> list[str]:
    if backend == "pg":
        sql = [f"CREATE TABLE attachments (id BIGSERIAL PRIMARY KEY, {_cols(ATTACHMENT_COLUMNS)},"
               " thumbnail BYTEA, data BYTEA NOT NULL)",
               # photos do not compress: stored out of line uncompressed, so a chunk is read without the rest
               "ALTER TABLE attachments ALTER COLUMN data SET STORAGE EXTERNAL",
               "CREATE TABLE parcels_attachments (id BIGSERIAL PRIMARY KEY, base_id BIGINT NOT NULL,"
               " related_id BIGINT NOT NULL)"]
    else:
        cols = _cols(ATTACHMENT_COLUMNS).replace("DOUBLE PRECISION", "REAL")
        sql = [f"CREATE TABLE attachments (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols}, thumbnail BLOB,"
               " data BLOB NOT NULL)",
               "CREATE TABLE parcels_attachments (id INTEGER PRIMARY KEY AUTOINCREMENT, base_id INTEGER NOT NULL,"
               " related_id INTEGER NOT NULL)"]
    sql += ["CREATE INDEX attachments_target_idx ON attachments(target_code, target_kind)",
            "CREATE INDEX attachments_event_idx ON attachments(event_id)",
            "CREATE INDEX parcels_attachments_base_idx ON parcels_attachments(base_id)",
            "CREATE INDEX parcels_attachments_related_idx ON parcels_attachments(related_id)"]
    frozen = ", ".join(ATTACHMENT_FROZEN)
    if backend == "gpkg":
        sql += [_attribute_table("attachments"), _attribute_table("parcels_attachments"),
                "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT,"
                " extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,"
                " CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))",
                "CREATE TABLE IF NOT EXISTS gpkgext_relations (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " base_table_name TEXT NOT NULL, base_primary_column TEXT NOT NULL DEFAULT 'id',"
                " related_table_name TEXT NOT NULL, related_primary_column TEXT NOT NULL DEFAULT 'id',"
                " relation_name TEXT NOT NULL, mapping_table_name TEXT NOT NULL UNIQUE)",
                "INSERT INTO gpkgext_relations (base_table_name, base_primary_column, related_table_name,"
                " related_primary_column, relation_name, mapping_table_name)"
                " VALUES ('parcels', 'fid', 'attachments', 'id', 'media', 'parcels_attachments')"]
        sql += [f"INSERT OR IGNORE INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope)"
                f" VALUES ('{t}', NULL, 'gpkg_related_tables', '{RTE_DEFINITION}', 'read-write')"
                for t in ("gpkgext_relations", "parcels_attachments")]
        for t in ("attachments", "parcels_attachments"):
            sql.append(f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} "
                       f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END")
        sql.append(f"CREATE TRIGGER attachments_frozen BEFORE UPDATE OF {frozen} ON attachments "
                   "BEGIN SELECT RAISE(ABORT, 'an attachment''s bytes and target never change'); END")
        sql.append("CREATE TRIGGER parcels_attachments_no_update BEFORE UPDATE ON parcels_attachments "
                   "BEGIN SELECT RAISE(ABORT, 'parcels_attachments is append-only'); END")
    else:
        # renewal_append_only() is created by migration 2
        for t in ("attachments", "parcels_attachments"):
            sql.append(f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} "
                       "FOR EACH ROW EXECUTE FUNCTION renewal_append_only()")
            sql.append(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION renewal_append_only()")
        sql.append(f"CREATE TRIGGER attachments_frozen BEFORE UPDATE OF {frozen} ON attachments "
                   "FOR EACH ROW EXECUTE FUNCTION renewal_append_only()")
        sql.append("CREATE TRIGGER parcels_attachments_no_update BEFORE UPDATE ON parcels_attachments "
                   "FOR EACH ROW EXECUTE FUNCTION renewal_append_only()")
    return sql


# Key projects (issue 18; gis/store/projects.py). A project's own polygon, when it has one, is a WKB
# column of the projects table (EPSG:4490), not a GeoPackage feature table: few projects have one
# (most stand on parcels and sites, whose geometry the store has), the table is the same on both
# back ends, and the map's projects layer is built by ``project_footprints`` anyway.
PROJECT_TABLES = {
    "projects": (("code", "TEXT NOT NULL UNIQUE"), ("name", "TEXT NOT NULL"), ("kind", "TEXT"), ("industry", "TEXT"),
                 ("investment_total_wan", "DOUBLE PRECISION NOT NULL"), ("unit", "TEXT"), ("investor", "TEXT"),
                 ("signed_on", "TEXT"), ("started_on", "TEXT"), ("production_on", "TEXT"), ("completed_on", "TEXT"),
                 ("stage", "TEXT"), ("stage_date", "TEXT"), ("note", "TEXT"), ("footprint", "BYTEA"),
                 ("version", "INTEGER NOT NULL DEFAULT 1"), ("created_at", "TEXT"), ("updated_at", "TEXT"),
                 ("updated_by", "TEXT")),
    "project_lists": (("project", "TEXT NOT NULL"), ("list_name", "TEXT NOT NULL")),
    "project_parcels": (("project", "TEXT NOT NULL"), ("object_type", "TEXT NOT NULL"), ("code", "TEXT NOT NULL")),
    "project_plan": (("project", "TEXT NOT NULL"), ("year", "INTEGER NOT NULL"), ("month", "INTEGER NOT NULL"),
                     ("planned_wan", "DOUBLE PRECISION NOT NULL")),
    # a report is the investment completed since the last one (万元), with the output for the period;
    # a correction names the report it replaces and why (the original stays)
    "project_reports": (("project", "TEXT NOT NULL"), ("report_date", "TEXT NOT NULL"),
                        ("invested_wan", "DOUBLE PRECISION NOT NULL"), ("output_wan", "DOUBLE PRECISION"),
                        ("note", "TEXT"), ("recorded_at", "TEXT NOT NULL"), ("recorded_by", "TEXT"),
                        ("correction_of", "INTEGER"), ("reason", "TEXT")),
    "project_events": (("project", "TEXT NOT NULL"), ("action", "TEXT NOT NULL"), ("from_stage", "TEXT"),
                       ("to_stage", "TEXT"), ("event_date", "TEXT NOT NULL"), ("recorded_at", "TEXT NOT NULL"),
                       ("recorded_by", "TEXT"), ("note", "TEXT"), ("reason", "TEXT")),
}
PROJECT_APPEND_ONLY = ("project_reports", "project_events")


def _projects(backend: str) -> list[str]:
    """Projects, their lists, parcels, monthly plan, reports and stage events; reports and events append-only."""
    pk = "id BIGSERIAL PRIMARY KEY" if backend == "pg" else "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"
    gpkg = (lambda c: c.replace("DOUBLE PRECISION", "REAL").replace("BYTEA", "BLOB"))
    typed = (lambda c: c) if backend == "pg" else gpkg
    sql = [f'CREATE TABLE "{t}" ({pk}, {typed(_cols(cols))})' for t, cols in PROJECT_TABLES.items()]
    sql += ["CREATE UNIQUE INDEX project_lists_uniq ON project_lists(project, list_name)",
            "CREATE UNIQUE INDEX project_parcels_uniq ON project_parcels(project, object_type, code)",
            "CREATE INDEX project_parcels_code_idx ON project_parcels(code)",
            "CREATE UNIQUE INDEX project_plan_uniq ON project_plan(project, year, month)",
            # covering: the rollup's sums per project read the index alone, not the table
            "CREATE INDEX project_reports_project_idx ON project_reports(project, report_date, invested_wan, output_wan)",
            "CREATE INDEX project_reports_date_idx ON project_reports(report_date)",
            "CREATE INDEX project_reports_correction_idx ON project_reports(correction_of)",
            "CREATE INDEX project_events_project_idx ON project_events(project)"]
    if backend == "gpkg":
        sql += [_attribute_table(t) for t in PROJECT_TABLES]
        for t in PROJECT_APPEND_ONLY:
            for op in ("UPDATE", "DELETE"):
                sql.append(f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                           f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END")
    else:
        for t in PROJECT_APPEND_ONLY:  # renewal_append_only() is created by migration 2
            sql.append(f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                       "FOR EACH ROW EXECUTE FUNCTION renewal_append_only()")
            sql.append(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION renewal_append_only()")
    return sql


TILE_TABLES = ("tile_pyramids", "tile_pyramid_tiles")


def _tile_pyramids(backend: str) -> list[str]:
    """Tile pyramids shared by the app servers of one PostGIS (gis/store/tiles.py)."""
    key = "id INTEGER PRIMARY KEY AUTOINCREMENT" if backend == "gpkg" else "id BIGSERIAL PRIMARY KEY"
    blob = "BLOB" if backend == "gpkg" else "BYTEA"
    sql = [f"CREATE TABLE tile_pyramids ({key}, name TEXT NOT NULL UNIQUE, manifest TEXT NOT NULL, created_at TEXT)",
           f"CREATE TABLE tile_pyramid_tiles ({key}, name TEXT NOT NULL, z INTEGER NOT NULL, x INTEGER NOT NULL,"
           f" y INTEGER NOT NULL, data {blob} NOT NULL, UNIQUE (name, z, x, y))"]
    if backend == "gpkg":
        sql += [_attribute_table(t) for t in TILE_TABLES]
    return sql


MIGRATIONS = {
    # version: (what, {backend: statements})
    1: ("base layout", {"gpkg": [], "pg": _pg_v1()}),
    2: ("accounts, assignments, audit; append-only event log", {"gpkg": _accounts("gpkg"), "pg": _accounts("pg")}),
    3: ("personal tokens of the command line (hashed)", {"gpkg": _cli_tokens("gpkg"), "pg": _cli_tokens("pg")}),
    4: ("claimed author and time of carried events", {"gpkg": _claimed_columns(), "pg": _claimed_columns()}),
    5: ("sign-in: signing keys, revoked sessions, failed logins", {"gpkg": _sessions("gpkg"), "pg": _sessions("pg")}),
    6: ("plans, targets, follow-up orders (issue 15)", {"gpkg": _plans("gpkg"), "pg": _plans("pg")}),
    7: ("users' preferences", {"gpkg": _preferences("gpkg"), "pg": _preferences("pg")}),
    8: ("evidence: attachments (GeoPackage related media table) and their parcels",
        {"gpkg": _attachments("gpkg"), "pg": _attachments("pg")}),
    9: ("key projects: lists, parcels, monthly plan, reports, stage events (issue 18)",
        {"gpkg": _projects("gpkg"), "pg": _projects("pg")}),
    10: ("tile pyramids shared by app servers (issue 19)", {"gpkg": _tile_pyramids("gpkg"),
                                                            "pg": _tile_pyramids("pg")}),
}
LATEST = max(MIGRATIONS)


def pending(current: int) -> list[int]:
    return [v for v in sorted(MIGRATIONS) if v > current]


def statements(version: int, backend: str) -> list[str]:
    return MIGRATIONS[version][1][backend]
