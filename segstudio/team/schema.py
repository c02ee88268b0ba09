"""The team server's SQL: group roles, the project tables, their grants and row-level security.

The rules live in the database, not only in the app, so they hold for psql too:

* `segstudio_annotator` < `segstudio_reviewer` < `segstudio_lead` (each group includes the one before).
  Members are login roles granted one group; the tables belong to `segstudio_lead`.
* A mask save is an INSERT into `mask_versions` naming the version it started from (`parent`). A
  trigger locks the image row and refuses the save (SQLSTATE SSTAL) unless `parent` is still the head,
  so a stale save is never applied; versions are never updated, and only a lead may delete one.
* `leases`: a member may take an image whose lease is free or expired; nobody else may save its mask
  or change its row while the lease is live (policies on `images` and `mask_versions`).
* `reviews`: only reviewers insert, and only on the current head of an image someone else saved.
* Scheme, settings and model versions: readable by all, written by leads only (plain GRANTs).
* `consensus`: an image annotated twice, on two branches of `mask_versions` (see `_CONSENSUS`).

`MIGRATIONS[n]` upgrades schema n to n + 1 in one transaction; never edit a released one, append.
"""

from __future__ import annotations

from typing import Any

from segstudio.team.errors import TeamError

__all__ = [
    "GROUP_ROLES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "create_database_sql",
    "migrate",
    "read_version",
    "server_sql",
]

ANNOTATOR, REVIEWER, LEAD = "segstudio_annotator", "segstudio_reviewer", "segstudio_lead"
GROUP_ROLES = {"annotator": ANNOTATOR, "reviewer": REVIEWER, "lead": LEAD}

#: SQLSTATE of a save on a version that is no longer the head (see the trigger below).
STALE_SQLSTATE = "SSTAL"
#: SQLSTATE of a save the consensus rules refuse: a closed branch, or a main save on an open image.
CONSENSUS_SQLSTATE = "SCONS"
#: SQLSTATE of a removal (or restore) refused because another member holds the image's lease (schema 7).
LEASED_SQLSTATE = "SLEAS"
#: A session setting by which a SegStudio client tells the triggers it NOTIFYs its own saves and leases
#: after they commit (schema 6).
CLIENT_NOTIFIES = "segstudio.client_notifies"


def server_sql() -> str:
    """The group roles (idempotent); run once per server by a superuser or a CREATEROLE role."""
    return f"""DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ANNOTATOR}') THEN
    CREATE ROLE {ANNOTATOR} NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{REVIEWER}') THEN
    CREATE ROLE {REVIEWER} NOLOGIN IN ROLE {ANNOTATOR};
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LEAD}') THEN
    CREATE ROLE {LEAD} NOLOGIN IN ROLE {REVIEWER};
  END IF;
END
$$;"""


def create_database_sql(name: str) -> str:
    return f"CREATE DATABASE {quote_ident(name)} OWNER {LEAD};"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_TABLES = ("schema_version", "meta", "settings", "images", "mask_versions", "leases", "reviews",
           "predictions", "model_versions", "effort", "predict_queue")  # fmt: skip

_V1 = f"""
CREATE SCHEMA segstudio;
REVOKE ALL ON SCHEMA segstudio FROM PUBLIC;
CREATE TABLE segstudio.schema_version (version integer NOT NULL);
CREATE TABLE segstudio.meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE segstudio.settings (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE segstudio.images (
    id bigint PRIMARY KEY,
    rel_path text NOT NULL,
    sort_key text NOT NULL,
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    width integer,
    height integer,
    content_hash text NOT NULL,
    status text NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'predicted', 'in_progress', 'done', 'skipped')),
    split text NOT NULL CHECK (split IN ('train', 'val')),
    model_version text,
    mean_confidence double precision,
    error text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    removed_at double precision,
    mask_head bigint
);
CREATE UNIQUE INDEX images_live_path ON segstudio.images(rel_path) WHERE removed_at IS NULL;
CREATE INDEX images_order ON segstudio.images(sort_key, rel_path);
CREATE TABLE segstudio.mask_versions (
    id bigserial PRIMARY KEY,
    image_id bigint NOT NULL REFERENCES segstudio.images(id),
    parent bigint REFERENCES segstudio.mask_versions(id),
    png bytea,  -- NULL: the mask was removed (reset to the prediction)
    status text NOT NULL,
    author text NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX mask_versions_image ON segstudio.mask_versions(image_id, id);
ALTER TABLE segstudio.images ADD FOREIGN KEY (mask_head) REFERENCES segstudio.mask_versions(id);
CREATE TABLE segstudio.leases (
    image_id bigint PRIMARY KEY REFERENCES segstudio.images(id),
    holder text NOT NULL DEFAULT current_user,
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL
);
CREATE TABLE segstudio.reviews (
    id bigserial PRIMARY KEY,
    image_id bigint NOT NULL REFERENCES segstudio.images(id),
    mask_version bigint NOT NULL REFERENCES segstudio.mask_versions(id),
    verdict text NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
    comment text NOT NULL DEFAULT '',
    reviewer text NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reviews_image ON segstudio.reviews(image_id, id);
CREATE TABLE segstudio.predictions (
    image_id bigint PRIMARY KEY REFERENCES segstudio.images(id),
    labels bytea NOT NULL,
    confidence bytea,
    raw_labels bytea,
    model_version text NOT NULL,
    times integer NOT NULL DEFAULT 1,  -- how often it was stored: the work queue's exactly-once proof
    author text NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE segstudio.model_versions (
    version text PRIMARY KEY,
    checkpoint_name text NOT NULL,  -- relative to the state folder's models/ when it was there
    checkpoint bytea,
    arch text NOT NULL,
    metrics jsonb NOT NULL,
    parent text,
    created_at double precision NOT NULL
);
CREATE TABLE segstudio.effort (
    image_id bigint NOT NULL REFERENCES segstudio.images(id),
    member text NOT NULL DEFAULT current_user,
    active_seconds double precision NOT NULL DEFAULT 0,
    actions jsonb NOT NULL DEFAULT '{{}}',
    changed_fraction double precision,
    updated_at double precision NOT NULL,
    PRIMARY KEY (image_id, member)
);
CREATE TABLE segstudio.predict_queue (
    image_id bigint PRIMARY KEY REFERENCES segstudio.images(id),
    claim text,
    claimed_by text,
    expires_at timestamptz,
    done_at timestamptz
);

CREATE FUNCTION segstudio.leased_by_other(image bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM segstudio.leases l
                   WHERE l.image_id = image AND l.holder <> current_user AND l.expires_at > now())
$$;

CREATE FUNCTION segstudio.before_mask_save() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head bigint;
    last_author text;
    last_at timestamptz;
BEGIN
    SELECT mask_head INTO head FROM segstudio.images
        WHERE id = NEW.image_id AND removed_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'image % is not part of the project', NEW.image_id USING ERRCODE = 'P0002';
    END IF;
    IF head IS DISTINCT FROM NEW.parent THEN
        SELECT author, created_at INTO last_author, last_at FROM segstudio.mask_versions WHERE id = head;
        RAISE EXCEPTION 'stale save refused: the mask is at version % (saved by %), not %',
            coalesce(head::text, 'none'), coalesce(last_author, 'nobody'), coalesce(NEW.parent::text, 'none')
            USING ERRCODE = '{STALE_SQLSTATE}',
                  DETAIL = json_build_object('head', head, 'author', last_author, 'at', last_at)::text;
    END IF;
    NEW.created_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE FUNCTION segstudio.after_mask_save() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE segstudio.images
        SET mask_head = NEW.id, status = NEW.status, updated_at = extract(epoch FROM clock_timestamp())
        WHERE id = NEW.image_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER mask_save_check BEFORE INSERT ON segstudio.mask_versions
    FOR EACH ROW EXECUTE FUNCTION segstudio.before_mask_save();
CREATE TRIGGER mask_save_head AFTER INSERT ON segstudio.mask_versions
    FOR EACH ROW EXECUTE FUNCTION segstudio.after_mask_save();

GRANT USAGE ON SCHEMA segstudio TO {ANNOTATOR};
GRANT SELECT ON ALL TABLES IN SCHEMA segstudio TO {ANNOTATOR};
GRANT UPDATE (status, model_version, mean_confidence, error, updated_at) ON segstudio.images TO {ANNOTATOR};
GRANT INSERT ON segstudio.mask_versions TO {ANNOTATOR};
GRANT USAGE ON SEQUENCE segstudio.mask_versions_id_seq TO {ANNOTATOR};
GRANT INSERT, UPDATE, DELETE ON segstudio.leases TO {ANNOTATOR};
GRANT INSERT, UPDATE ON segstudio.predictions, segstudio.effort, segstudio.predict_queue TO {ANNOTATOR};
GRANT INSERT ON segstudio.reviews TO {REVIEWER};
GRANT USAGE ON SEQUENCE segstudio.reviews_id_seq TO {REVIEWER};

ALTER TABLE segstudio.images ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON segstudio.images FOR SELECT USING (true);
CREATE POLICY not_leased_by_other ON segstudio.images FOR UPDATE
    USING (NOT segstudio.leased_by_other(id)) WITH CHECK (NOT segstudio.leased_by_other(id));

ALTER TABLE segstudio.mask_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON segstudio.mask_versions FOR SELECT USING (true);
CREATE POLICY own_save_unleased ON segstudio.mask_versions FOR INSERT
    WITH CHECK (author = current_user AND NOT segstudio.leased_by_other(image_id));

ALTER TABLE segstudio.leases ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON segstudio.leases FOR SELECT USING (true);
CREATE POLICY take_own ON segstudio.leases FOR INSERT WITH CHECK (holder = current_user);
CREATE POLICY renew_own_or_expired ON segstudio.leases FOR UPDATE
    USING (holder = current_user OR expires_at < now()) WITH CHECK (holder = current_user);
CREATE POLICY drop_own_or_expired ON segstudio.leases FOR DELETE
    USING (holder = current_user OR expires_at < now());

ALTER TABLE segstudio.reviews ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON segstudio.reviews FOR SELECT USING (true);
CREATE POLICY review_others_head ON segstudio.reviews FOR INSERT WITH CHECK (
    reviewer = current_user
    AND mask_version = (SELECT i.mask_head FROM segstudio.images i WHERE i.id = image_id)
    AND (SELECT v.author FROM segstudio.mask_versions v WHERE v.id = mask_version) <> current_user
);

ALTER TABLE segstudio.predictions ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON segstudio.predictions FOR SELECT USING (true);
CREATE POLICY own_insert ON segstudio.predictions FOR INSERT WITH CHECK (author = current_user);
CREATE POLICY own_update ON segstudio.predictions FOR UPDATE USING (true) WITH CHECK (author = current_user);

ALTER TABLE segstudio.effort ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON segstudio.effort FOR SELECT USING (true);
CREATE POLICY own_insert ON segstudio.effort FOR INSERT WITH CHECK (member = current_user);
CREATE POLICY own_update ON segstudio.effort FOR UPDATE USING (member = current_user)
    WITH CHECK (member = current_user);

INSERT INTO segstudio.schema_version(version) VALUES (0);
"""

# The schema first: a table's new owner needs CREATE on its schema.
_OWNED = (
    f"ALTER SCHEMA segstudio OWNER TO {LEAD};\n"
    + "\n".join(f"ALTER TABLE segstudio.{t} OWNER TO {LEAD};" for t in _TABLES)
    + f"""
ALTER FUNCTION segstudio.before_mask_save() OWNER TO {LEAD};
ALTER FUNCTION segstudio.after_mask_save() OWNER TO {LEAD};
ALTER FUNCTION segstudio.leased_by_other(bigint) OWNER TO {LEAD};
"""
)

#: Schema 2: the work queue (assignments: only the assignee or a lead may save an assigned image's
#: mask) and change notices for the live view (NOTIFY segstudio_changes, payload "kind:image_id").
_V2 = f"""
CREATE TABLE segstudio.assignments (
    image_id bigint PRIMARY KEY REFERENCES segstudio.images(id) ON DELETE CASCADE,
    assignee text NOT NULL,
    position integer NOT NULL DEFAULT 0,
    assigned_by text NOT NULL DEFAULT current_user,
    assigned_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_assignee ON segstudio.assignments(assignee, position);
ALTER TABLE segstudio.assignments OWNER TO {LEAD};
GRANT SELECT ON segstudio.assignments TO {ANNOTATOR};

CREATE FUNCTION segstudio.assigned_to_other(image bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM segstudio.assignments a WHERE a.image_id = image AND a.assignee <> current_user)
        AND NOT pg_has_role(current_user, '{LEAD}', 'MEMBER')
$$;
ALTER FUNCTION segstudio.assigned_to_other(bigint) OWNER TO {LEAD};
DROP POLICY own_save_unleased ON segstudio.mask_versions;
CREATE POLICY own_save_unleased ON segstudio.mask_versions FOR INSERT
    WITH CHECK (author = current_user AND NOT segstudio.leased_by_other(image_id)
                AND NOT segstudio.assigned_to_other(image_id));

CREATE FUNCTION segstudio.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_image bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN row_image := OLD.image_id; ELSE row_image := NEW.image_id; END IF;
    PERFORM pg_notify('segstudio_changes', TG_TABLE_NAME || ':' || row_image);
    RETURN NULL;
END
$$;
ALTER FUNCTION segstudio.notify_change() OWNER TO {LEAD};
CREATE TRIGGER notify_lease AFTER INSERT OR UPDATE OR DELETE ON segstudio.leases
    FOR EACH ROW EXECUTE FUNCTION segstudio.notify_change();
CREATE TRIGGER notify_save AFTER INSERT ON segstudio.mask_versions
    FOR EACH ROW EXECUTE FUNCTION segstudio.notify_change();
CREATE TRIGGER notify_review AFTER INSERT ON segstudio.reviews
    FOR EACH ROW EXECUTE FUNCTION segstudio.notify_change();
CREATE TRIGGER notify_assignment AFTER INSERT OR UPDATE OR DELETE ON segstudio.assignments
    FOR EACH ROW EXECUTE FUNCTION segstudio.notify_change();
"""

#: Schema 3: fine-tuning by any member. Every member may store a model version they trained (their own
#: name in `author`); only leads change or delete one, and the active version stays a lead's team
#: setting. A settings change is announced ("settings:0") so windows switch to a newly activated model.
_V3 = f"""
ALTER TABLE segstudio.model_versions ADD COLUMN author text NOT NULL DEFAULT current_user;
GRANT INSERT ON segstudio.model_versions TO {ANNOTATOR};
ALTER TABLE segstudio.model_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON segstudio.model_versions FOR SELECT USING (true);
CREATE POLICY own_insert ON segstudio.model_versions FOR INSERT WITH CHECK (author = current_user);

CREATE FUNCTION segstudio.notify_setting() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('segstudio_changes', 'settings:0');
    RETURN NULL;
END
$$;
ALTER FUNCTION segstudio.notify_setting() OWNER TO {LEAD};
CREATE TRIGGER notify_setting AFTER INSERT OR UPDATE OR DELETE ON segstudio.settings
    FOR EACH STATEMENT EXECUTE FUNCTION segstudio.notify_setting();
"""

#: Consensus (one migration, independent of any other appended after schema 3): a lead sends an image to
#: two annotators. Each saves on their own *branch* of `mask_versions` (`branch` 'A' or 'B'; a branch's
#: head lives in `consensus.head_a/head_b`, both start at the main head when the consensus is set up), so
#: neither overwrites the other and every branch version is kept. The stale-save rule holds per branch
#: (SQLSTATE SSTAL); only a branch's annotator writes it (RLS); a branch is hidden from the other
#: annotator until the consensus is resolved (blind). The main line of an open consensus image takes one
#: save only: the resolution (`resolves` A/B/merge, `sources` = the two branch heads it was made from,
#: refused as stale if either branch moved since), made by a reviewer who annotated neither branch; then
#: branches are closed (SQLSTATE SCONS) and the resolver may accept the image. Open consensus images
#: take no review.
_CONSENSUS = f"""
CREATE TABLE segstudio.consensus (
    image_id bigint PRIMARY KEY REFERENCES segstudio.images(id),
    annotator_a text NOT NULL,
    annotator_b text NOT NULL CHECK (annotator_b <> annotator_a),
    fork bigint REFERENCES segstudio.mask_versions(id),
    head_a bigint REFERENCES segstudio.mask_versions(id),
    head_b bigint REFERENCES segstudio.mask_versions(id),
    resolved_version bigint REFERENCES segstudio.mask_versions(id),
    resolved_how text CHECK (resolved_how IN ('A', 'B', 'merge')),
    resolved_by text,
    resolved_at timestamptz,
    created_by text NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE segstudio.consensus OWNER TO {LEAD};
GRANT SELECT ON segstudio.consensus TO {ANNOTATOR};
ALTER TABLE segstudio.mask_versions
    ADD COLUMN branch text CHECK (branch IN ('A', 'B')),
    ADD COLUMN resolves text CHECK (resolves IN ('A', 'B', 'merge')),
    ADD COLUMN sources bigint[];

CREATE FUNCTION segstudio.branch_owner(image bigint, which text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE which WHEN 'A' THEN c.annotator_a WHEN 'B' THEN c.annotator_b END
    FROM segstudio.consensus c WHERE c.image_id = image
$$;
ALTER FUNCTION segstudio.branch_owner(bigint, text) OWNER TO {LEAD};
CREATE FUNCTION segstudio.may_see_branch(image bigint, which text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM segstudio.consensus c WHERE c.image_id = image AND (
        c.resolved_version IS NOT NULL
        OR CASE which WHEN 'A' THEN c.annotator_a ELSE c.annotator_b END = current_user
        OR (pg_has_role(current_user, '{REVIEWER}', 'MEMBER')
            AND current_user NOT IN (c.annotator_a, c.annotator_b))))
$$;
ALTER FUNCTION segstudio.may_see_branch(bigint, text) OWNER TO {LEAD};
CREATE FUNCTION segstudio.consensus_state(image bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN c.resolved_version IS NULL THEN 'open' ELSE 'resolved' END
    FROM segstudio.consensus c WHERE c.image_id = image
$$;
ALTER FUNCTION segstudio.consensus_state(bigint) OWNER TO {LEAD};

CREATE FUNCTION segstudio.before_consensus() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT mask_head INTO NEW.fork FROM segstudio.images
        WHERE id = NEW.image_id AND removed_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'image % is not part of the project', NEW.image_id USING ERRCODE = 'P0002';
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.head_a IS DISTINCT FROM OLD.fork OR OLD.head_b IS DISTINCT FROM OLD.fork
                             OR OLD.resolved_version IS NOT NULL) THEN
        RAISE EXCEPTION 'the consensus annotators of image % have started; they cannot change', NEW.image_id
            USING ERRCODE = '{CONSENSUS_SQLSTATE}';
    END IF;
    NEW.head_a := NEW.fork;
    NEW.head_b := NEW.fork;
    NEW.resolved_version := NULL;
    RETURN NEW;
END
$$;
ALTER FUNCTION segstudio.before_consensus() OWNER TO {LEAD};
CREATE TRIGGER consensus_fork BEFORE INSERT OR UPDATE OF annotator_a, annotator_b ON segstudio.consensus
    FOR EACH ROW EXECUTE FUNCTION segstudio.before_consensus();

CREATE FUNCTION segstudio.before_consensus_save() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c segstudio.consensus%ROWTYPE;
    head bigint;
    last_author text;
    last_at timestamptz;
BEGIN
    SELECT * INTO c FROM segstudio.consensus WHERE image_id = NEW.image_id FOR UPDATE;
    IF NEW.branch IS NOT NULL THEN
        IF NOT FOUND THEN
            RAISE EXCEPTION 'image % is not a consensus image: it has no branch %', NEW.image_id, NEW.branch
                USING ERRCODE = '{CONSENSUS_SQLSTATE}';
        END IF;
        IF c.resolved_version IS NOT NULL THEN
            RAISE EXCEPTION 'the consensus was resolved by % (version %): the branches are closed',
                c.resolved_by, c.resolved_version USING ERRCODE = '{CONSENSUS_SQLSTATE}';
        END IF;
        IF NEW.author IS DISTINCT FROM (CASE NEW.branch WHEN 'A' THEN c.annotator_a ELSE c.annotator_b END) THEN
            RAISE EXCEPTION 'branch % belongs to %', NEW.branch,
                CASE NEW.branch WHEN 'A' THEN c.annotator_a ELSE c.annotator_b END
                USING ERRCODE = '42501';
        END IF;
        head := CASE NEW.branch WHEN 'A' THEN c.head_a ELSE c.head_b END;
        IF head IS DISTINCT FROM NEW.parent THEN
            SELECT author, created_at INTO last_author, last_at FROM segstudio.mask_versions WHERE id = head;
            RAISE EXCEPTION 'stale save refused: branch % is at version % (saved by %), not %', NEW.branch,
                coalesce(head::text, 'none'), coalesce(last_author, 'nobody'), coalesce(NEW.parent::text, 'none')
                USING ERRCODE = '{STALE_SQLSTATE}',
                      DETAIL = json_build_object('head', head, 'author', last_author, 'at', last_at)::text;
        END IF;
        NEW.resolves := NULL;
        NEW.sources := NULL;
        NEW.created_at := clock_timestamp();
    ELSIF FOUND AND c.resolved_version IS NULL THEN
        IF NEW.resolves IS NULL THEN
            RAISE EXCEPTION 'image % waits for consensus (% and %): only its resolution may be saved on it',
                NEW.image_id, c.annotator_a, c.annotator_b USING ERRCODE = '{CONSENSUS_SQLSTATE}';
        END IF;
        IF NEW.author IN (c.annotator_a, c.annotator_b) THEN
            RAISE EXCEPTION '% annotated a branch of image %, so someone else resolves it', NEW.author, NEW.image_id
                USING ERRCODE = '42501';
        END IF;
        IF NEW.sources IS DISTINCT FROM ARRAY[c.head_a, c.head_b] THEN
            RAISE EXCEPTION 'stale resolution refused: the branches are at % and %, not %',
                coalesce(c.head_a::text, 'none'), coalesce(c.head_b::text, 'none'), NEW.sources
                USING ERRCODE = '{STALE_SQLSTATE}',
                      DETAIL = json_build_object('head', NEW.parent, 'author', 'an annotator of its branches')::text;
        END IF;
    ELSE
        NEW.resolves := NULL;
        NEW.sources := NULL;
    END IF;
    RETURN NEW;
END
$$;
ALTER FUNCTION segstudio.before_consensus_save() OWNER TO {LEAD};

CREATE FUNCTION segstudio.after_consensus_save() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.branch = 'A' THEN
        UPDATE segstudio.consensus SET head_a = NEW.id WHERE image_id = NEW.image_id;
    ELSIF NEW.branch = 'B' THEN
        UPDATE segstudio.consensus SET head_b = NEW.id WHERE image_id = NEW.image_id;
    ELSIF NEW.resolves IS NOT NULL THEN
        UPDATE segstudio.consensus SET resolved_version = NEW.id, resolved_how = NEW.resolves,
            resolved_by = NEW.author, resolved_at = clock_timestamp() WHERE image_id = NEW.image_id;
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION segstudio.after_consensus_save() OWNER TO {LEAD};

-- branch saves bypass the main line's head check and head update; the consensus triggers run first
-- (triggers of one kind fire in name order: consensus_* < mask_*)
DROP TRIGGER mask_save_check ON segstudio.mask_versions;
CREATE TRIGGER mask_save_check BEFORE INSERT ON segstudio.mask_versions
    FOR EACH ROW WHEN (NEW.branch IS NULL) EXECUTE FUNCTION segstudio.before_mask_save();
DROP TRIGGER mask_save_head ON segstudio.mask_versions;
CREATE TRIGGER mask_save_head AFTER INSERT ON segstudio.mask_versions
    FOR EACH ROW WHEN (NEW.branch IS NULL) EXECUTE FUNCTION segstudio.after_mask_save();
CREATE TRIGGER consensus_save_check BEFORE INSERT ON segstudio.mask_versions
    FOR EACH ROW EXECUTE FUNCTION segstudio.before_consensus_save();
CREATE TRIGGER consensus_save_head AFTER INSERT ON segstudio.mask_versions
    FOR EACH ROW EXECUTE FUNCTION segstudio.after_consensus_save();
CREATE TRIGGER notify_consensus AFTER INSERT OR UPDATE OR DELETE ON segstudio.consensus
    FOR EACH ROW EXECUTE FUNCTION segstudio.notify_change();

-- blind: a branch is readable by its annotator, by reviewers who annotated neither, by all once resolved
DROP POLICY read_all ON segstudio.mask_versions;
CREATE POLICY read_all ON segstudio.mask_versions FOR SELECT
    USING (branch IS NULL OR segstudio.may_see_branch(image_id, branch));
-- a branch is written by its annotator only (whoever the image is assigned to)
CREATE POLICY own_branch ON segstudio.mask_versions FOR INSERT
    WITH CHECK (branch IS NOT NULL AND author = current_user
                AND segstudio.branch_owner(image_id, branch) = current_user);
CREATE POLICY only_own_branch ON segstudio.mask_versions AS RESTRICTIVE FOR INSERT
    WITH CHECK (branch IS NULL OR segstudio.branch_owner(image_id, branch) = current_user);
-- reviewers save the main line of a consensus image: the resolution, then fixes of disputed pixels
CREATE POLICY resolve_consensus ON segstudio.mask_versions FOR INSERT
    WITH CHECK (branch IS NULL AND author = current_user AND pg_has_role(current_user, '{REVIEWER}', 'MEMBER')
                AND segstudio.consensus_state(image_id) IS NOT NULL
                AND NOT segstudio.leased_by_other(image_id));

-- no verdict on an open consensus image; the resolver (who annotated neither branch) may accept it
DROP POLICY review_others_head ON segstudio.reviews;
CREATE POLICY review_others_head ON segstudio.reviews FOR INSERT WITH CHECK (
    reviewer = current_user
    AND mask_version = (SELECT i.mask_head FROM segstudio.images i WHERE i.id = image_id)
    AND segstudio.consensus_state(image_id) IS DISTINCT FROM 'open'
    AND ((SELECT v.author FROM segstudio.mask_versions v WHERE v.id = mask_version) <> current_user
         OR EXISTS (SELECT 1 FROM segstudio.consensus c WHERE c.image_id = reviews.image_id
                    AND c.resolved_version IS NOT NULL
                    AND current_user NOT IN (c.annotator_a, c.annotator_b)))
);
"""

#: Image bytes in the server (`team create --store-images`, `team add`): content-addressed by the hash
#: every image record already carries (`images.content_hash`, BLAKE2b-128 of the file), so an image
#: copied under two names is stored once. Every member reads them; only leads write them (the table is
#: the lead group's, annotators get SELECT only). Photos are compressed already: no TOAST compression.
#: Adding an image is announced ("images:ID") so members' browsers list it at once. Stands alone: it
#: names only tables of schema 1-3 (written beside, not on top of, the consensus step).
_IMAGE_BYTES = f"""
CREATE TABLE segstudio.image_blobs (
    content_hash text PRIMARY KEY,
    size bigint NOT NULL,
    data bytea NOT NULL,
    added_by text NOT NULL DEFAULT current_user,
    added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (octet_length(data) = size)
);
ALTER TABLE segstudio.image_blobs ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE segstudio.image_blobs OWNER TO {LEAD};
GRANT SELECT ON segstudio.image_blobs TO {ANNOTATOR};

CREATE FUNCTION segstudio.notify_image_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('segstudio_changes', 'images:' || NEW.id);
    RETURN NULL;
END
$$;
ALTER FUNCTION segstudio.notify_image_added() OWNER TO {LEAD};
CREATE TRIGGER notify_image_added AFTER INSERT ON segstudio.images
    FOR EACH ROW EXECUTE FUNCTION segstudio.notify_image_added();
"""

#: Schema 6: saves and leases of a SegStudio client are announced by the client right after they commit,
#: not by the trigger inside the saving transaction. PostgreSQL (through 15) holds one database-wide lock
#: from a NOTIFYing transaction's pre-commit until its commit record is flushed, so with the trigger every
#: save's and lease's fsync ran one at a time (measured: 20 writers, p50 71 ms -> 17 ms without it). A
#: client announcing after its commit sends a NOTIFY from a transaction that writes nothing (no fsync),
#: so the lock is held for microseconds. The client says so per session (`segstudio.client_notifies`);
#: any other writer (psql, an older client) still gets the trigger's notice.
_CLIENT_NOTICES = f"""
CREATE OR REPLACE FUNCTION segstudio.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_image bigint;
BEGIN
    IF TG_TABLE_NAME IN ('mask_versions', 'leases')
       AND current_setting('{CLIENT_NOTIFIES}', true) = 'on' THEN
        RETURN NULL;  -- the client NOTIFYs right after its commit (see schema 6)
    END IF;
    IF TG_OP = 'DELETE' THEN row_image := OLD.image_id; ELSE row_image := NEW.image_id; END IF;
    PERFORM pg_notify('segstudio_changes', TG_TABLE_NAME || ':' || row_image);
    RETURN NULL;
END
$$;
"""

#: Schema 7: a lead removes images from the project and brings them back, and takes an image out of
#: consensus keeping one annotator's work. Nothing saved is ever deleted:
#:
#: * Removing sets `images.removed_at` (the column grants of schema 1 let only leads write it: annotators
#:   and reviewers get "permission denied", psql included); every reader already lists live rows only, so
#:   the image leaves browsers, queues, export and training while its versions, reviews, effort,
#:   assignment and consensus stay. The trigger refuses it (SQLSTATE SLEAS) while another member holds
#:   the image's lease, records who removed it, refuses a restore whose path a newer image has taken,
#:   and announces both ("images:ID", as an added image). No save of any line, new lease or review
#:   verdict lands on a removed image.
#: * `consensus.kept` ('A'/'B', set by a lead: annotators may not UPDATE the table) closes an open
#:   consensus at once (trigger `after_consensus_kept`): with no branch save yet the consensus row simply
#:   goes; else the kept branch's last save (the fork when that branch saved nothing) becomes a new main
#:   version, authored by its annotator and recording both branch heads (`resolves` = the branch,
#:   `sources`), which closes the branches like a resolution - the other branch stays in the history.
#:   Either way the image is assigned to the kept annotator and goes on as an ordinary image.
#:
#: Written to run again over itself (IF NOT EXISTS, OR REPLACE), as the steps before it may be re-run.
_REMOVE_AND_KEEP = f"""
ALTER TABLE segstudio.images ADD COLUMN IF NOT EXISTS removed_by text;
ALTER TABLE segstudio.consensus
    ADD COLUMN IF NOT EXISTS kept text CHECK (kept IN ('A', 'B')),
    ADD COLUMN IF NOT EXISTS kept_by text,
    ADD COLUMN IF NOT EXISTS kept_at timestamptz;

CREATE OR REPLACE FUNCTION segstudio.before_removal() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    editor text;
BEGIN
    IF NEW.removed_at IS NOT DISTINCT FROM OLD.removed_at THEN
        RETURN NEW;
    END IF;
    IF NOT pg_has_role(current_user, '{LEAD}', 'MEMBER') THEN
        RAISE EXCEPTION 'only leads remove or restore images' USING ERRCODE = '42501';
    END IF;
    SELECT l.holder INTO editor FROM segstudio.leases l
        WHERE l.image_id = NEW.id AND l.holder <> current_user AND l.expires_at > now();
    IF FOUND THEN
        RAISE EXCEPTION '% is being edited by %', NEW.rel_path, editor
            USING ERRCODE = '{LEASED_SQLSTATE}', DETAIL = editor;
    END IF;
    IF NEW.removed_at IS NULL THEN
        IF EXISTS (SELECT 1 FROM segstudio.images o
                   WHERE o.rel_path = NEW.rel_path AND o.removed_at IS NULL AND o.id <> NEW.id) THEN
            RAISE EXCEPTION 'cannot restore %: an image added since has that path', NEW.rel_path
                USING ERRCODE = '23505';
        END IF;
        NEW.removed_by := NULL;
    ELSE
        NEW.removed_by := current_user;
    END IF;
    RETURN NEW;
END
$$;
ALTER FUNCTION segstudio.before_removal() OWNER TO {LEAD};
CREATE OR REPLACE FUNCTION segstudio.notify_image_listed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('segstudio_changes', 'images:' || NEW.id);
    RETURN NULL;
END
$$;
ALTER FUNCTION segstudio.notify_image_listed() OWNER TO {LEAD};
DROP TRIGGER IF EXISTS removal_check ON segstudio.images;
CREATE TRIGGER removal_check BEFORE UPDATE OF removed_at ON segstudio.images
    FOR EACH ROW EXECUTE FUNCTION segstudio.before_removal();
DROP TRIGGER IF EXISTS notify_image_listed ON segstudio.images;
CREATE TRIGGER notify_image_listed AFTER UPDATE OF removed_at ON segstudio.images
    FOR EACH ROW WHEN (OLD.removed_at IS DISTINCT FROM NEW.removed_at)
    EXECUTE FUNCTION segstudio.notify_image_listed();

-- nothing new starts on a removed image: a lease (a member opening it from a list not yet refreshed) or
-- a review verdict (psql included) is refused like a save; renewing a lease already held is left alone
CREATE OR REPLACE FUNCTION segstudio.refuse_removed_image() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.holder IS NOT DISTINCT FROM OLD.holder THEN
            RETURN NEW;
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM segstudio.images WHERE id = NEW.image_id AND removed_at IS NULL) THEN
        RAISE EXCEPTION 'image % is not part of the project: a lead removed it', NEW.image_id
            USING ERRCODE = 'P0002';
    END IF;
    RETURN NEW;
END
$$;
ALTER FUNCTION segstudio.refuse_removed_image() OWNER TO {LEAD};
DROP TRIGGER IF EXISTS lease_on_live_image ON segstudio.leases;
CREATE TRIGGER lease_on_live_image BEFORE INSERT OR UPDATE ON segstudio.leases
    FOR EACH ROW EXECUTE FUNCTION segstudio.refuse_removed_image();
DROP TRIGGER IF EXISTS review_on_live_image ON segstudio.reviews;
CREATE TRIGGER review_on_live_image BEFORE INSERT ON segstudio.reviews
    FOR EACH ROW EXECUTE FUNCTION segstudio.refuse_removed_image();

-- as in the consensus step, plus: no save on a removed image (branch saves skip before_mask_save), and
-- the main version a lead's `kept` makes is authored by the kept annotator
CREATE OR REPLACE FUNCTION segstudio.before_consensus_save() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c segstudio.consensus%ROWTYPE;
    head bigint;
    last_author text;
    last_at timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM segstudio.images WHERE id = NEW.image_id AND removed_at IS NULL) THEN
        RAISE EXCEPTION 'image % is not part of the project', NEW.image_id USING ERRCODE = 'P0002';
    END IF;
    SELECT * INTO c FROM segstudio.consensus WHERE image_id = NEW.image_id FOR UPDATE;
    IF NEW.branch IS NOT NULL THEN
        IF NOT FOUND THEN
            RAISE EXCEPTION 'image % is not a consensus image: it has no branch %', NEW.image_id, NEW.branch
                USING ERRCODE = '{CONSENSUS_SQLSTATE}';
        END IF;
        IF c.resolved_version IS NOT NULL OR c.kept IS NOT NULL THEN
            RAISE EXCEPTION 'the consensus was resolved by % (version %): the branches are closed',
                c.resolved_by, c.resolved_version USING ERRCODE = '{CONSENSUS_SQLSTATE}';
        END IF;
        IF NEW.author IS DISTINCT FROM (CASE NEW.branch WHEN 'A' THEN c.annotator_a ELSE c.annotator_b END) THEN
            RAISE EXCEPTION 'branch % belongs to %', NEW.branch,
                CASE NEW.branch WHEN 'A' THEN c.annotator_a ELSE c.annotator_b END
                USING ERRCODE = '42501';
        END IF;
        head := CASE NEW.branch WHEN 'A' THEN c.head_a ELSE c.head_b END;
        IF head IS DISTINCT FROM NEW.parent THEN
            SELECT author, created_at INTO last_author, last_at FROM segstudio.mask_versions WHERE id = head;
            RAISE EXCEPTION 'stale save refused: branch % is at version % (saved by %), not %', NEW.branch,
                coalesce(head::text, 'none'), coalesce(last_author, 'nobody'), coalesce(NEW.parent::text, 'none')
                USING ERRCODE = '{STALE_SQLSTATE}',
                      DETAIL = json_build_object('head', head, 'author', last_author, 'at', last_at)::text;
        END IF;
        NEW.resolves := NULL;
        NEW.sources := NULL;
        NEW.created_at := clock_timestamp();
    ELSIF FOUND AND c.resolved_version IS NULL THEN
        IF NEW.resolves IS NULL THEN
            RAISE EXCEPTION 'image % waits for consensus (% and %): only its resolution may be saved on it',
                NEW.image_id, c.annotator_a, c.annotator_b USING ERRCODE = '{CONSENSUS_SQLSTATE}';
        END IF;
        IF c.kept IS NOT NULL AND NEW.resolves IS DISTINCT FROM c.kept THEN
            RAISE EXCEPTION 'image % leaves consensus keeping branch %', NEW.image_id, c.kept
                USING ERRCODE = '{CONSENSUS_SQLSTATE}';
        END IF;
        IF c.kept IS NULL AND NEW.author IN (c.annotator_a, c.annotator_b) THEN
            RAISE EXCEPTION '% annotated a branch of image %, so someone else resolves it', NEW.author, NEW.image_id
                USING ERRCODE = '42501';
        END IF;
        IF NEW.sources IS DISTINCT FROM ARRAY[c.head_a, c.head_b] THEN
            RAISE EXCEPTION 'stale resolution refused: the branches are at % and %, not %',
                coalesce(c.head_a::text, 'none'), coalesce(c.head_b::text, 'none'), NEW.sources
                USING ERRCODE = '{STALE_SQLSTATE}',
                      DETAIL = json_build_object('head', NEW.parent, 'author', 'an annotator of its branches')::text;
        END IF;
    ELSE
        NEW.resolves := NULL;
        NEW.sources := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION segstudio.after_consensus_kept() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kept_head bigint := CASE NEW.kept WHEN 'A' THEN NEW.head_a ELSE NEW.head_b END;
    owner text := CASE NEW.kept WHEN 'A' THEN NEW.annotator_a ELSE NEW.annotator_b END;
    main bigint;
    pixels bytea;
    main_status text;
BEGIN
    IF OLD.resolved_version IS NOT NULL OR OLD.kept IS NOT NULL THEN
        RAISE EXCEPTION 'the consensus of image % is closed already (resolved by %)', NEW.image_id,
            OLD.resolved_by USING ERRCODE = '{CONSENSUS_SQLSTATE}';
    END IF;
    IF NEW.head_a IS NOT DISTINCT FROM NEW.fork AND NEW.head_b IS NOT DISTINCT FROM NEW.fork THEN
        DELETE FROM segstudio.consensus WHERE image_id = NEW.image_id;  -- nothing saved on a branch yet
    ELSE
        SELECT mask_head, status INTO main, main_status FROM segstudio.images
            WHERE id = NEW.image_id AND removed_at IS NULL FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'image % is not part of the project', NEW.image_id USING ERRCODE = 'P0002';
        END IF;
        SELECT v.png, CASE WHEN kept_head IS DISTINCT FROM NEW.fork THEN v.status ELSE main_status END
            INTO pixels, main_status FROM (SELECT 1) AS one
            LEFT JOIN segstudio.mask_versions v ON v.id = kept_head;
        INSERT INTO segstudio.mask_versions(image_id, parent, png, status, author, resolves, sources)
            VALUES (NEW.image_id, main, pixels, main_status, owner, NEW.kept, ARRAY[NEW.head_a, NEW.head_b]);
        UPDATE segstudio.consensus SET resolved_by = current_user, kept_by = current_user,
            kept_at = clock_timestamp() WHERE image_id = NEW.image_id;
    END IF;
    INSERT INTO segstudio.assignments(image_id, assignee) VALUES (NEW.image_id, owner)
        ON CONFLICT (image_id) DO UPDATE SET assignee = excluded.assignee, assigned_by = current_user,
            assigned_at = now();
    RETURN NULL;
END
$$;
ALTER FUNCTION segstudio.after_consensus_kept() OWNER TO {LEAD};
DROP TRIGGER IF EXISTS consensus_kept ON segstudio.consensus;
CREATE TRIGGER consensus_kept AFTER UPDATE OF kept ON segstudio.consensus
    FOR EACH ROW WHEN (NEW.kept IS NOT NULL) EXECUTE FUNCTION segstudio.after_consensus_kept();
"""

MIGRATIONS: list[str] = [
    _V1 + _OWNED, _V2, _V3, _CONSENSUS, _IMAGE_BYTES, _CLIENT_NOTICES, _REMOVE_AND_KEEP
]  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)


def read_version(conn: Any) -> int | None:
    """The database's team schema version, or None when it holds no SegStudio project."""
    row = conn.execute("SELECT to_regclass('segstudio.schema_version')").fetchone()
    if row is None or row[0] is None:
        return None
    got = conn.execute("SELECT max(version) FROM segstudio.schema_version").fetchone()
    return int(got[0]) if got and got[0] is not None else 0


def check_version(version: int | None, where: str) -> None:
    """Refuse a database that is no SegStudio project, or one saved by a newer SegStudio."""
    if version is None:
        raise TeamError(
            f"the database {where} is not a SegStudio team project (it has no segstudio schema). Check the "
            "database name in the URL; a lead turns a local project into a team project with "
            "`segstudio team create FOLDER --db URL`."
        )
    if version > SCHEMA_VERSION:
        raise TeamError(
            f"the team project {where} uses schema {version}, newer than this SegStudio reads "
            f"(up to {SCHEMA_VERSION}); update SegStudio on this machine to join it. Nothing was changed."
        )


def migrate(conn: Any) -> int:
    """Create or upgrade the project schema step by step (one transaction each); the new version."""
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('segstudio-migrate'))")
            version = read_version(conn) or 0
            if version > SCHEMA_VERSION:
                check_version(version, "on this server")
            if version >= SCHEMA_VERSION:
                return version
            conn.execute(MIGRATIONS[version])
            conn.execute("UPDATE segstudio.schema_version SET version = %s", (version + 1,))
