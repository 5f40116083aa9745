"""The schema, written once for both engines: a list of migrations applied in order when a store opens.

Each migration is a list of DDL statements whose column types are the dialect's words ({id},
{text}, {int}, {real}, {json}, {stamp}; backend.Dialect), so SQLite gets TEXT where PostgreSQL
gets timestamptz or jsonb. Applied migrations are rows of `schema_migrations`; the whole run
holds the writers' lock, so two processes opening an old store migrate it once. A migration is
never edited once released; a change to the schema is a new entry at the end.

Stores made before this list was portable recorded their migrations in sqlite-utils'
`_sqlite_migrations` table; those count as applied.
"""

from __future__ import annotations

from csbot.store.backend import Database, now, write

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("m001_initial", [
        "CREATE TABLE shop_facts (key {text} PRIMARY KEY, value {text})",
        "CREATE TABLE intents (name {text} PRIMARY KEY, description {text})",
        "CREATE TABLE templates (id {id}, intent {text} REFERENCES intents(name), position {int}, text {text}, "
        "updated_at {stamp})",
        "CREATE UNIQUE INDEX idx_templates_intent_position ON templates (intent, position)",
        "CREATE TABLE examples (id {text} PRIMARY KEY, text {text}, intent {text}, source {text}, "
        "agent_reply {text}, created_at {text}, added_at {stamp})",  # created_at: as the imported log says
        "CREATE INDEX idx_examples_intent ON examples (intent)",
        "CREATE TABLE answers (id {id}, key {text}, answer {text}, created_at {stamp}, updated_at {stamp})",
        "CREATE UNIQUE INDEX idx_answers_key ON answers (key)",
        "CREATE TABLE answer_questions (id {id}, answer_id {int} REFERENCES answers(id), question {text})",
        "CREATE UNIQUE INDEX idx_answer_questions_answer_id_question ON answer_questions (answer_id, question)",
        "CREATE TABLE conversations (id {text} PRIMARY KEY, channel {text}, created_at {stamp}, updated_at {stamp}, "
        "customer_name {text}, owner {text}, slots {json}, pending_intent {text}, pending_slot {text})",
        "CREATE TABLE messages (id {id}, conversation_id {text} REFERENCES conversations(id), created_at {stamp}, "
        "role {text}, text {text}, route {text}, intent {text}, confidence {real}, answer_id {int}, "
        "model_version {text}, latency_ms {real}, trace {json}, rating {int}, inbox {text}, inbox_status {text})",
        "CREATE INDEX idx_messages_conversation_id_id ON messages (conversation_id, id)",
        "CREATE INDEX idx_messages_inbox_status ON messages (inbox_status)",
        "CREATE TABLE model_versions (id {text} PRIMARY KEY, path {text}, created_at {stamp}, base_model {text}, "
        "data_hash {text}, metrics {json}, threshold {real}, device {text}, train_seconds {real}, "
        "is_current {int}, note {text})",
        "CREATE TABLE jobs (id {text} PRIMARY KEY, kind {text}, status {text}, phase {text}, step {int}, "
        "total {int}, loss {real}, device {text}, started_at {stamp}, updated_at {stamp}, finished_at {stamp}, "
        "error {text}, model_version {text})",
    ]),
    ("m002_web", [  # accounts, staff replies and hand-offs, cancellable background jobs, version reports
        "CREATE TABLE users (name {text} PRIMARY KEY, role {text}, password_hash {text}, created_at {stamp}, "
        "updated_at {stamp})",
        "ALTER TABLE messages ADD COLUMN author {text}",  # the staff member who wrote a role='staff' message
        "CREATE INDEX idx_messages_created_at ON messages (created_at)",
        "ALTER TABLE conversations ADD COLUMN handoff_at {stamp}",  # when a person was asked for
        "CREATE INDEX idx_conversations_owner_updated_at ON conversations (owner, updated_at)",
        "ALTER TABLE jobs ADD COLUMN cancel_requested {int}",
        "ALTER TABLE jobs ADD COLUMN eta_seconds {real}",
        "ALTER TABLE jobs ADD COLUMN elapsed_seconds {real}",
        "ALTER TABLE jobs ADD COLUMN options {json}",
        "ALTER TABLE jobs ADD COLUMN pid {int}",
        "ALTER TABLE model_versions ADD COLUMN comparison {json}",  # the new model against the serving one
    ]),
    ("m003_shared", [
        # What every process must see alike. One change counter per kind of shared state (answers,
        # templates, shop, model): a process compares them with what it serves and catches up.
        "CREATE TABLE generations (name {text} PRIMARY KEY, value {int}, updated_at {stamp})",
        "CREATE TABLE service_keys (name {text} PRIMARY KEY, value {text}, created_at {stamp})",
        "ALTER TABLE users ADD COLUMN disabled {int} NOT NULL DEFAULT 0",
        # A login session: the sha-256 of the cookie's token (a stolen database holds no usable token).
        # Times are epoch seconds from auth.py's clock.
        'CREATE TABLE sessions (id {text} PRIMARY KEY, "user" {text}, created_at {real}, seen_at {real}, '
        "expires_at {real}, address {text}, agent {text})",
        'CREATE INDEX idx_sessions_user ON sessions ("user")',
        "CREATE TABLE login_failures (name {text}, address {text}, failures {int}, last_at {real}, "
        "locked_until {real}, PRIMARY KEY (name, address))",
        'CREATE TABLE rate_hits (key {text}, "window" {int}, hits {int}, PRIMARY KEY (key, "window"))',
        "CREATE TABLE audit (id {id}, at {stamp}, actor {text}, action {text}, target {text}, detail {json}, "
        "address {text})",
        "CREATE INDEX idx_audit_at ON audit (at)",
        "CREATE INDEX idx_audit_actor_at ON audit (actor, at)",
        "CREATE INDEX idx_audit_action_at ON audit (action, at)",
        "ALTER TABLE jobs ADD COLUMN heartbeat_at {real}",  # epoch seconds; a stale one means the run is gone
        "ALTER TABLE jobs ADD COLUMN worker {text}",  # host:pid of the process that runs it
    ]),
    ("m004_operating_point", [
        # The threshold column is what serves; this says how it was chosen when an admin moved it
        # along the version's curve (None: the trained default, as meta.json has it).
        "ALTER TABLE model_versions ADD COLUMN operating_point {json}",
    ]),
    ("m005_history", [
        # Raw support history, imported without labels: customer turns (scrubbed of personal data
        # before they are stored) with the agent reply that answered each. `key` makes a second
        # import of the same turns add nothing.
        "CREATE TABLE history_imports (id {text} PRIMARY KEY, name {text}, turns {int}, conversations {int}, "
        "scrubbed {json}, created_at {stamp}, actor {text})",
        "CREATE TABLE history_turns (id {id}, key {text}, import_id {text} REFERENCES history_imports(id), "
        "conversation {text}, position {int}, text {text}, agent_reply {text}, created_at {text}, added_at {stamp})",
        "CREATE UNIQUE INDEX idx_history_turns_key ON history_turns (key)",
        "CREATE INDEX idx_history_turns_import_id ON history_turns (import_id)",
    ]),
    ("m006_proposals", [
        # Intents proposed by discovery and the staff's review of them (store/proposals.py). A
        # proposal's key is a hash of its turns; a turn is in one proposal at a time.
        "CREATE TABLE proposals (id {id}, key {text}, import_id {text} REFERENCES history_imports(id), name {text}, "
        "status {text}, phrases {json}, drafts {json}, tightness {real}, closest {text}, closest_score {real}, "
        "intent {text}, merged_into {int}, created_at {stamp}, updated_at {stamp})",
        "CREATE UNIQUE INDEX idx_proposals_key ON proposals (key)",
        "CREATE INDEX idx_proposals_status ON proposals (status)",
        "CREATE TABLE proposal_turns (id {id}, proposal_id {int} REFERENCES proposals(id), turn_key {text}, "
        "position {int})",
        "CREATE UNIQUE INDEX idx_proposal_turns_turn_key ON proposal_turns (turn_key)",
        "CREATE INDEX idx_proposal_turns_proposal_id ON proposal_turns (proposal_id, position)",
    ]),
    ("m007_senders", [
        # Who started a conversation, as a key made from the client's address (never the address
        # itself: store/conversations.py client_key), so the inbox can keep one sender's flood from
        # burying everyone else's requests.
        "ALTER TABLE conversations ADD COLUMN client {text}",
        "CREATE INDEX idx_conversations_client ON conversations (client)",
        "CREATE INDEX idx_messages_inbox_status_id ON messages (inbox_status, id)",
    ]),
    ("m008_two_factor", [
        # TOTP two-factor sign-in (service/twofactor.py): the shared secret once enrolled, the one
        # being enrolled, and the last time step used (a code works once); recovery codes as hashes.
        "ALTER TABLE users ADD COLUMN totp_secret {text}",
        "ALTER TABLE users ADD COLUMN totp_pending {text}",
        "ALTER TABLE users ADD COLUMN totp_step {int}",
        "CREATE TABLE recovery_codes (id {id}, \"user\" {text}, code_hash {text}, used_at {real})",
        "CREATE UNIQUE INDEX idx_recovery_codes_user_code ON recovery_codes (\"user\", code_hash)",
        # Browsers an account logged in from before (the hash of a cookie's token): a login from
        # one of them skips the account-wide slow-down that failures from unknown devices build up.
        "CREATE TABLE devices (id {text} PRIMARY KEY, \"user\" {text}, created_at {real}, seen_at {real})",
        "CREATE INDEX idx_devices_user ON devices (\"user\")",
    ]),
    ("m009_answer_revisions", [
        # Counts every change to a curated answer, so a save made from an old copy is refused
        # instead of silently dropping what another person added meanwhile (store/answers.py).
        "ALTER TABLE answers ADD COLUMN revision {int} NOT NULL DEFAULT 0",
    ]),
    ("m010_answer_feedback", [
        # Wordings staff confirmed a curated answer is wrong for (a customer's thumbs-down): the
        # index never returns that answer for them again (dialogue/answers.py).
        "CREATE TABLE answer_negatives (id {id}, answer_id {int} REFERENCES answers(id), question {text}, "
        "actor {text}, created_at {stamp})",
        "CREATE INDEX idx_answer_negatives_answer ON answer_negatives (answer_id)",
        # An admin's choice of the curated answers' operating point: a threshold on the judge's
        # confidence, or a target precision (store/answers.py answer_tuning).
        "CREATE TABLE answer_tuning (name {text} PRIMARY KEY, value {real}, actor {text}, updated_at {stamp})",
    ]),
    ("m011_customer_identity", [
        # Who a conversation's customer is, as the shop's own server vouched with a signed token
        # (service/identity.py); customer_name was there from the start.
        "ALTER TABLE conversations ADD COLUMN customer_id {text}",
        "ALTER TABLE conversations ADD COLUMN customer_email {text}",
        "ALTER TABLE conversations ADD COLUMN identity_verified_at {stamp}",
    ]),
    ("m012_webhooks", [
        # The shop's endpoints that hear of events, and every delivery to them (service/webhooks.py):
        # one row per endpoint and event, unique, so two processes recording one event send it once.
        "CREATE TABLE webhooks (id {id}, url {text}, secret {text}, events {text}, actor {text}, created_at {stamp})",
        "CREATE TABLE webhook_deliveries (id {id}, webhook_id {int} REFERENCES webhooks(id), event {text}, "
        "msg_id {text}, payload {text}, status {text}, attempts {int}, next_at {real}, claimed_until {real}, "
        "last_status {int}, last_error {text}, created_at {stamp}, delivered_at {stamp})",
        "CREATE UNIQUE INDEX idx_webhook_deliveries_hook_msg ON webhook_deliveries (webhook_id, msg_id)",
        "CREATE INDEX idx_webhook_deliveries_status_next ON webhook_deliveries (status, next_at)",
    ]),
]


def applied(db: Database) -> set[str]:
    """Names of the migrations this database has (none for a new one)."""
    tables = db.tables()
    done = set()
    if "schema_migrations" in tables:
        done |= {r[0] for r in db.execute("SELECT name FROM schema_migrations").fetchall()}
    if "_sqlite_migrations" in tables:  # recorded by sqlite-utils before the schema was portable
        done |= {r[0] for r in db.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'csbot'"
                                          ).fetchall()}
    return done


def pending(db: Database) -> list[str]:
    done = applied(db)
    return [name for name, _ in MIGRATIONS if name not in done]


def apply(db: Database) -> list[str]:
    """Bring the schema up to date, in one serial transaction. Returns the names applied."""
    with write(db):
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = applied(db)
        todo = [(name, statements) for name, statements in MIGRATIONS if name not in done]
        for name, statements in todo:
            for statement in statements:
                db.execute(statement.format(**db.dialect.types))
            db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", [name, now()])
        # an old store's record, copied so the new table alone says what is applied
        for name in sorted(done - {r[0] for r in db.execute("SELECT name FROM schema_migrations").fetchall()}):
            db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", [name, now()])
    return [name for name, _ in todo]
