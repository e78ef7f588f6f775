-- kiln registry, schema version 1.
--
-- Dialect-neutral SQL: it runs unchanged on SQLite and PostgreSQL. Ids are UUIDs as TEXT, times
-- are BIGINT milliseconds since the Unix epoch, flags are BIGINT 0/1, JSON is TEXT. A model's
-- authoritative copy is `models.record_json` (+ `entity_json`); the other columns and the child
-- tables repeat parts of it for querying and are written in the same transaction.

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    project_id TEXT,
    task_id TEXT,
    parent_id TEXT,
    comment TEXT NOT NULL,
    framework TEXT,
    published BIGINT NOT NULL,
    archived BIGINT NOT NULL,
    uri TEXT,
    -- The entity's precisions, lower case, each between commas: ",int8,fp32," ("" without one).
    precisions TEXT NOT NULL,
    record_json TEXT NOT NULL,
    entity_json TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX models_newest ON models (created_ms, id);
CREATE INDEX models_project ON models (project_id, created_ms, id);
CREATE INDEX models_parent ON models (parent_id);
CREATE INDEX models_task ON models (task_id);

CREATE TABLE model_tags (
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    is_system BIGINT NOT NULL,
    PRIMARY KEY (model_id, is_system, tag)
);
CREATE INDEX model_tags_tag ON model_tags (tag, is_system, model_id);

CREATE TABLE model_metadata (
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    meta_key TEXT NOT NULL,
    meta_value TEXT NOT NULL,
    meta_type TEXT NOT NULL,
    PRIMARY KEY (model_id, meta_key)
);
CREATE INDEX model_metadata_key_value ON model_metadata (meta_key, meta_value);

-- Every blob a model refers to: is_current = 1 for its blobs now (one per role, in `position`
-- order), 0 for superseded ones (kept until drop_superseded, so that gc spares them until asked).
CREATE TABLE model_blobs (
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    uri TEXT NOT NULL,
    is_current BIGINT NOT NULL,
    position BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX model_blobs_model ON model_blobs (model_id, is_current, position);
CREATE INDEX model_blobs_digest ON model_blobs (digest);

-- Scalars, single values and plots, in report order (ts_ms, then seq).
CREATE TABLE events (
    model_id TEXT,
    task_id TEXT,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    series TEXT NOT NULL,
    iteration BIGINT NOT NULL,
    value DOUBLE PRECISION,
    payload TEXT,
    ts_ms BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX events_model ON events (model_id, ts_ms, seq) WHERE model_id IS NOT NULL;
CREATE INDEX events_task ON events (task_id, ts_ms, seq) WHERE task_id IS NOT NULL;

-- Named counters (event_seq: the last event sequence number handed out). Bumping a counter with
-- UPDATE serializes the writers that need it on both SQLite and PostgreSQL.
CREATE TABLE kiln_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO kiln_counters (name, value) VALUES ('event_seq', 0);
