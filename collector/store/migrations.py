"""Append-only numbered schema migrations, recorded in `_migrations`.

Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from collector.store import hourly, latency_hourly, readiness_rollup, rollups
from collector.store.schema import (
    LLM_CALLS_COLUMNS_M001,
    LLM_CALLS_COLUMNS_M005,
    LLM_CALLS_COLUMNS_M009,
    LLM_CALLS_COLUMNS_M010,
    LLM_CALLS_COLUMNS_M011,
    LLM_CALLS_COLUMNS_M015,
    LLM_CALLS_COLUMNS_M017,
)
from collector.store.transactions import end_failed_transaction


class Schema:
    """Where a migration's statements go. In a DuckDB file everything is one database; a lake
    (collector/store/lake/schema.py) puts the calls tables in DuckLake and the small mutable state in PostgreSQL."""

    unique_keys = True  # DuckLake has no PRIMARY KEY/UNIQUE constraints

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def calls(self, sql: str) -> None:
        """DDL of a table of calls (llm_calls, llm_calls_daily): large, append-mostly."""
        self.con.execute(sql)

    def state(self, sql: str) -> None:
        """DDL of small mutable state (alert rules and state, reconciliation pulls, attestations, ...)."""
        self.con.execute(sql)


def m001_llm_calls(db: Schema) -> None:
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in LLM_CALLS_COLUMNS_M001)
    key = ",\n    PRIMARY KEY (trace_id, span_id)" if db.unique_keys else ""
    # No index on start_time: DuckDB's zone maps serve time ranges, and ART indexes slow bulk inserts.
    db.calls(f"CREATE TABLE llm_calls (\n    {columns}{key}\n)")


def m002_alerts(db: Schema) -> None:
    db.state("CREATE SEQUENCE alert_rule_ids START 1")
    db.state("CREATE SEQUENCE alert_event_ids START 1")
    db.state(
        "CREATE TABLE alert_rules (id BIGINT PRIMARY KEY DEFAULT nextval('alert_rule_ids'), name VARCHAR NOT NULL, "
        'metric VARCHAR NOT NULL, "window" VARCHAR NOT NULL, op VARCHAR NOT NULL, threshold DOUBLE NOT NULL, '
        "for_seconds INTEGER NOT NULL, filters VARCHAR NOT NULL, channels VARCHAR NOT NULL, enabled BOOLEAN NOT NULL, "
        "min_requests INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
    )
    db.state(
        "CREATE TABLE alert_state (rule_id BIGINT PRIMARY KEY, state VARCHAR NOT NULL, since TIMESTAMPTZ NOT NULL, "
        "value DOUBLE, requests BIGINT, evaluated_at TIMESTAMPTZ NOT NULL)"
    )
    db.state(
        "CREATE TABLE alert_events (id BIGINT PRIMARY KEY DEFAULT nextval('alert_event_ids'), rule_id BIGINT NOT NULL, "
        "occurred_at TIMESTAMPTZ NOT NULL, from_state VARCHAR NOT NULL, to_state VARCHAR NOT NULL, value DOUBLE, "
        "threshold DOUBLE NOT NULL)"
    )


def m003_notification_attempts(db: Schema) -> None:
    db.state("CREATE SEQUENCE notification_attempt_ids START 1")
    db.state(
        "CREATE TABLE notification_attempts (id BIGINT PRIMARY KEY DEFAULT nextval('notification_attempt_ids'), "
        "event_id BIGINT NOT NULL, rule_id BIGINT NOT NULL, channel_type VARCHAR NOT NULL, channel_host VARCHAR, "
        "attempt INTEGER NOT NULL, attempted_at TIMESTAMPTZ NOT NULL, ok BOOLEAN NOT NULL, http_status INTEGER, "
        "error VARCHAR)"
    )


def m004_daily_rollup(db: Schema) -> None:
    db.calls(rollups.CREATE_M004)
    for statement in rollups.REBUILD_M004:
        db.calls(statement)


def m005_prices(db: Schema) -> None:
    for name, kind in LLM_CALLS_COLUMNS_M005:
        db.calls(f"ALTER TABLE llm_calls ADD COLUMN {name} {kind}")
    # The rates each price version applied, per model, tier and UTC day (USD per million tokens, as JSON).
    db.state(
        "CREATE TABLE price_rates (price_version VARCHAR NOT NULL, model VARCHAR NOT NULL, "
        "service_tier VARCHAR NOT NULL, batch BOOLEAN NOT NULL, day DATE NOT NULL, source VARCHAR NOT NULL, "
        "tier_fallback BOOLEAN NOT NULL, rates VARCHAR NOT NULL, "
        "PRIMARY KEY (price_version, model, service_tier, batch, day))"
    )
    db.state("CREATE SEQUENCE reprice_run_ids START 1")
    db.state(
        "CREATE TABLE reprice_runs (id BIGINT PRIMARY KEY DEFAULT nextval('reprice_run_ids'), "
        "ran_at TIMESTAMPTZ NOT NULL, from_time TIMESTAMPTZ, to_time TIMESTAMPTZ, dry_run BOOLEAN NOT NULL, "
        "price_version VARCHAR NOT NULL, rows_seen BIGINT NOT NULL, rows_changed BIGINT NOT NULL, "
        "costs_changed BIGINT NOT NULL, "
        "old_total_usd DECIMAL(38,9) NOT NULL, new_total_usd DECIMAL(38,9) NOT NULL)"
    )


def m006_reconciliation(db: Schema) -> None:
    # What OpenAI's Costs and Usage APIs reported, per UTC day; a re-pull replaces whole days.
    db.state(
        "CREATE TABLE openai_costs (day DATE NOT NULL, line_item VARCHAR, project_id VARCHAR, "
        "amount DECIMAL(38,9) NOT NULL, currency VARCHAR NOT NULL)"
    )
    db.state(
        "CREATE TABLE openai_usage (hour TIMESTAMPTZ NOT NULL, day DATE NOT NULL, model VARCHAR, project_id VARCHAR, "
        "batch BOOLEAN, service_tier VARCHAR, input_tokens BIGINT NOT NULL, input_cached_tokens BIGINT, "
        "input_audio_tokens BIGINT, output_tokens BIGINT NOT NULL, output_audio_tokens BIGINT, "
        "requests BIGINT NOT NULL)"
    )
    # Which days hold a pull (so "OpenAI reported nothing" differs from "never pulled"), and when.
    db.state("CREATE TABLE openai_pulled_days (day DATE PRIMARY KEY, pulled_at TIMESTAMPTZ NOT NULL)")
    db.state("CREATE SEQUENCE reconcile_run_ids START 1")
    db.state(
        "CREATE TABLE reconcile_runs (id BIGINT PRIMARY KEY DEFAULT nextval('reconcile_run_ids'), "
        "started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ NOT NULL, from_day DATE NOT NULL, "
        "to_day DATE NOT NULL, trigger VARCHAR NOT NULL, ok BOOLEAN NOT NULL, http_status INTEGER, error VARCHAR, "
        "cost_rows BIGINT NOT NULL, usage_rows BIGINT NOT NULL)"
    )


def m007_readiness(db: Schema) -> None:
    # What a team states about a service (collector/readiness/): who attested a test item, when, with a link.
    db.state("CREATE SEQUENCE readiness_attestation_ids START 1")
    db.state(
        "CREATE TABLE readiness_attestations (id BIGINT PRIMARY KEY DEFAULT nextval('readiness_attestation_ids'), "
        "service VARCHAR NOT NULL, item VARCHAR NOT NULL, attested_by VARCHAR NOT NULL, link VARCHAR NOT NULL, "
        "note VARCHAR, attested_at TIMESTAMPTZ NOT NULL)"
    )
    # Features the team marked as batch-eligible (non-interactive) for cost.batch.
    db.state(
        "CREATE TABLE readiness_batch_features (service VARCHAR NOT NULL, feature VARCHAR NOT NULL, "
        "marked_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (service, feature))"
    )
    # One row per (span, column) whose value looked like an API key and was scrubbed at ingest (ingest/scrub.py).
    db.state(
        "CREATE TABLE scrubbed_secrets (trace_id VARCHAR NOT NULL, span_id VARCHAR NOT NULL, "
        "column_name VARCHAR NOT NULL, service VARCHAR, environment VARCHAR, start_time TIMESTAMPTZ NOT NULL, "
        "scrubbed_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (trace_id, span_id, column_name))"
    )


def m008_notification_claims(db: Schema) -> None:
    # Which process delivers an alert event: the one that recorded it, or one that took over its claim after it
    # died without recording any attempt (collector/alerts/engine.py). One row per notified event.
    db.state(
        "CREATE TABLE notification_claims (event_id BIGINT PRIMARY KEY, claimed_by VARCHAR NOT NULL, "
        "claimed_at TIMESTAMPTZ NOT NULL)"
    )


def m009_billing_units(db: Schema) -> None:
    # What a call is billed on beyond tokens, and who billed it (docs/architecture.md, Money). Calls stored before
    # this migration keep NULL in every new column: `provider` is not backfilled (a call then was priced as
    # OpenAI's, and the query API reads a NULL provider as `openai`), nor `billing_unit` or `sanity_flags`.
    for name, kind in LLM_CALLS_COLUMNS_M009:
        db.calls(f"ALTER TABLE llm_calls ADD COLUMN {name} {kind}")
    # The rollup gets the provider and the billing unit as its last keys and the sums of the other units, so that
    # spend by provider and by billing unit, the finance CSV's units, and reconciliation with OpenAI's bill alone
    # (its tool line items included) outlive the raw calls. The rows already rolled up keep NULL keys (the provider
    # read as OpenAI's, as above) and 0 in the sums: that is what rebuilding them would give, since no stored call
    # has these columns yet, and unlike a rebuild it keeps the days whose raw calls retention deleted.
    for name, kind in rollups.COLUMNS_M009:
        db.calls(f"ALTER TABLE llm_calls_daily ADD COLUMN {name} {kind}")
    # Rates now depend on the provider too (one model, several prices: OpenAI, Azure, OpenRouter, ...), so the
    # provider joins price_rates' key; rows recorded before were OpenAI's list. A key can't be altered in place.
    db.state(
        "CREATE TABLE price_rates_m009 (price_version VARCHAR NOT NULL, model VARCHAR NOT NULL, "
        "service_tier VARCHAR NOT NULL, batch BOOLEAN NOT NULL, day DATE NOT NULL, source VARCHAR NOT NULL, "
        "tier_fallback BOOLEAN NOT NULL, rates VARCHAR NOT NULL, provider VARCHAR NOT NULL DEFAULT 'openai', "
        "PRIMARY KEY (price_version, provider, model, service_tier, batch, day))"
    )
    db.state(
        "INSERT INTO price_rates_m009 (price_version, model, service_tier, batch, day, source, tier_fallback, rates, "
        "provider) SELECT price_version, model, service_tier, batch, day, source, tier_fallback, rates, 'openai' "
        "FROM price_rates"
    )
    db.state("DROP TABLE price_rates")
    db.state("ALTER TABLE price_rates_m009 RENAME TO price_rates")


def m010_guard(db: Schema) -> None:
    # The guard (llmledger/guard/): what it decided for each call, and which budget rules it enforces in the app.
    # Calls stored before keep NULL in the new columns (they ran unguarded); rules keep NULL `enforce` (not enforced).
    for name, kind in LLM_CALLS_COLUMNS_M010:
        db.calls(f"ALTER TABLE llm_calls ADD COLUMN {name} {kind}")
    # A rule's `enforce`: JSON text {"action": "warn" | "block" | "downgrade", "downgrade_to": model or null}
    # (collector/alerts/rules.py). The table is rebuilt rather than altered: DuckDB 1.5.5 can't replay from its WAL an
    # ADD COLUMN to a table whose id defaults to nextval() ("GetDefaultDatabase with no default database set"), so a
    # collector killed before its next checkpoint would leave a file that no longer opens.
    columns = (
        'id, name, metric, "window", op, threshold, for_seconds, filters, channels, enabled, min_requests, '
        "created_at, updated_at"
    )
    db.state(
        "CREATE TABLE alert_rules_m010 (id BIGINT PRIMARY KEY DEFAULT nextval('alert_rule_ids'), "
        'name VARCHAR NOT NULL, metric VARCHAR NOT NULL, "window" VARCHAR NOT NULL, op VARCHAR NOT NULL, '
        "threshold DOUBLE NOT NULL, "
        "for_seconds INTEGER NOT NULL, filters VARCHAR NOT NULL, channels VARCHAR NOT NULL, enabled BOOLEAN NOT NULL, "
        "min_requests INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, "
        "enforce VARCHAR)"
    )
    db.state(f"INSERT INTO alert_rules_m010 ({columns}) SELECT {columns} FROM alert_rules")
    db.state("DROP TABLE alert_rules")
    db.state("ALTER TABLE alert_rules_m010 RENAME TO alert_rules")


def m011_guard_features(db: Schema) -> None:
    # Which of the guard's parts ran (budgets, breaker, pace): guard_enabled alone can't tell a breaker turned off.
    # Calls stored before keep NULL: the checklist reads them as "not known to have a breaker".
    for name, kind in LLM_CALLS_COLUMNS_M011:
        db.calls(f"ALTER TABLE llm_calls ADD COLUMN {name} {kind}")


def m012_alert_groups(db: Schema) -> None:
    # Alerting a team can run on (collector/alerts/): a rule may be per group (`group_by`, capped at `max_groups`),
    # have a warning level, be an anomaly or a no-data rule; a group has its own state and events; silences mute
    # transitions, acknowledgements mark firing ones. Tables whose id defaults to nextval() are rebuilt, not altered
    # (the DuckDB 1.5.5 WAL replay bug m010 describes); alert_state is rebuilt for its new key (rule, group).
    columns = (
        'id, name, metric, "window", op, threshold, for_seconds, filters, channels, enabled, min_requests, '
        "created_at, updated_at, enforce"
    )
    db.state(
        "CREATE TABLE alert_rules_m012 (id BIGINT PRIMARY KEY DEFAULT nextval('alert_rule_ids'), "
        'name VARCHAR NOT NULL, metric VARCHAR NOT NULL, "window" VARCHAR NOT NULL, op VARCHAR NOT NULL, '
        "threshold DOUBLE NOT NULL, "
        "for_seconds INTEGER NOT NULL, filters VARCHAR NOT NULL, channels VARCHAR NOT NULL, enabled BOOLEAN NOT NULL, "
        "min_requests INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, "
        "enforce VARCHAR, kind VARCHAR NOT NULL DEFAULT 'threshold', group_by VARCHAR, "
        "max_groups INTEGER NOT NULL DEFAULT 50, warning_threshold DOUBLE, baseline VARCHAR, sensitivity DOUBLE)"
    )
    db.state(f"INSERT INTO alert_rules_m012 ({columns}) SELECT {columns} FROM alert_rules")
    db.state("DROP TABLE alert_rules")
    db.state("ALTER TABLE alert_rules_m012 RENAME TO alert_rules")
    # One row per rule and group ('' for a rule without group_by) that is not ok, and always one for an ungrouped
    # rule; `event_id` is the event that began the current state and severity (what an acknowledgement marks).
    db.state(
        "CREATE TABLE alert_state_m012 (rule_id BIGINT NOT NULL, group_key VARCHAR NOT NULL, state VARCHAR NOT NULL, "
        "severity VARCHAR, since TIMESTAMPTZ NOT NULL, value DOUBLE, requests BIGINT, "
        "evaluated_at TIMESTAMPTZ NOT NULL, event_id BIGINT, acked_by VARCHAR, acked_at TIMESTAMPTZ, "
        "PRIMARY KEY (rule_id, group_key))"
    )
    db.state(
        "INSERT INTO alert_state_m012 (rule_id, group_key, state, severity, since, value, requests, evaluated_at) "
        "SELECT rule_id, '', state, CASE WHEN state <> 'ok' THEN 'critical' END, since, value, requests, evaluated_at "
        "FROM alert_state"
    )
    db.state("DROP TABLE alert_state")
    db.state("ALTER TABLE alert_state_m012 RENAME TO alert_state")
    event_columns = "id, rule_id, occurred_at, from_state, to_state, value, threshold"
    db.state(
        "CREATE TABLE alert_events_m012 (id BIGINT PRIMARY KEY DEFAULT nextval('alert_event_ids'), "
        "rule_id BIGINT NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, from_state VARCHAR NOT NULL, "
        "to_state VARCHAR NOT NULL, value DOUBLE, threshold DOUBLE NOT NULL, group_by VARCHAR, group_value VARCHAR, "
        "severity VARCHAR NOT NULL DEFAULT 'critical', from_severity VARCHAR, "
        "silenced BOOLEAN NOT NULL DEFAULT false, silence_id BIGINT, groups_left_out INTEGER NOT NULL DEFAULT 0, "
        "acked_by VARCHAR, acked_at TIMESTAMPTZ)"
    )
    db.state(f"INSERT INTO alert_events_m012 ({event_columns}) SELECT {event_columns} FROM alert_events")
    db.state("DROP TABLE alert_events")
    db.state("ALTER TABLE alert_events_m012 RENAME TO alert_events")
    # A silence mutes a rule, one group of a rule, or every rule and group its filters match, until `ends_at`.
    db.state("CREATE SEQUENCE alert_silence_ids START 1")
    db.state(
        "CREATE TABLE alert_silences (id BIGINT PRIMARY KEY DEFAULT nextval('alert_silence_ids'), rule_id BIGINT, "
        "group_value VARCHAR, filters VARCHAR NOT NULL, ends_at TIMESTAMPTZ NOT NULL, created_by VARCHAR NOT NULL, "
        "reason VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL)"
    )
    # A grouped rule's last evaluation: how many groups it measured and how many its cap left out.
    db.state(
        "CREATE TABLE alert_group_counts (rule_id BIGINT PRIMARY KEY, evaluated_at TIMESTAMPTZ NOT NULL, "
        "groups BIGINT NOT NULL, groups_left_out BIGINT NOT NULL)"
    )


def m013_digests(db: Schema) -> None:
    # Scheduled reports (collector/digests/): a digest is rule-like (filters, channels with their secrets);
    # `last_period` is the first day of the last period whose scheduled report was claimed. One `digest_sends` row
    # per report sent (scheduled or "send now"), claimed by the collector that sends it (taken over when it died
    # before any attempt); `digest_attempts` are its delivery attempts, shaped like notification_attempts (whose
    # event and rule ids are alerts'). New tables only: nothing here alters a table whose id defaults to nextval()
    # (the WAL bug of m010).
    db.state("CREATE SEQUENCE digest_ids START 1")
    db.state(
        "CREATE TABLE digests (id BIGINT PRIMARY KEY DEFAULT nextval('digest_ids'), name VARCHAR NOT NULL, "
        "schedule VARCHAR NOT NULL, send_hour INTEGER NOT NULL, filters VARCHAR NOT NULL, channels VARCHAR NOT NULL, "
        "enabled BOOLEAN NOT NULL, last_period DATE, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
    )
    db.state("CREATE SEQUENCE digest_send_ids START 1")
    db.state(
        "CREATE TABLE digest_sends (id BIGINT PRIMARY KEY DEFAULT nextval('digest_send_ids'), "
        "digest_id BIGINT NOT NULL, period_start DATE NOT NULL, period_end DATE NOT NULL, reason VARCHAR NOT NULL, "
        "claimed_by VARCHAR NOT NULL, claimed_at TIMESTAMPTZ NOT NULL, created_at TIMESTAMPTZ NOT NULL)"
    )
    db.state("CREATE SEQUENCE digest_attempt_ids START 1")
    db.state(
        "CREATE TABLE digest_attempts (id BIGINT PRIMARY KEY DEFAULT nextval('digest_attempt_ids'), "
        "send_id BIGINT NOT NULL, digest_id BIGINT NOT NULL, channel_type VARCHAR NOT NULL, channel_host VARCHAR, "
        "attempt INTEGER NOT NULL, attempted_at TIMESTAMPTZ NOT NULL, ok BOOLEAN NOT NULL, http_status INTEGER, "
        "error VARCHAR)"
    )


def m014_price_lists(db: Schema) -> None:
    # Price lists fetched at run time (`--prices-update`, collector/money/price_lists.py): one row per list adopted,
    # the data (genai-prices' JSON) kept for the newest only, so a restart and every collector of a lake price with
    # the last good list. No key: a list that comes back is deleted and inserted again, in one transaction.
    db.state(
        "CREATE TABLE price_lists (data_sha256 VARCHAR NOT NULL, price_version VARCHAR NOT NULL, "
        "source VARCHAR NOT NULL, fetched_at TIMESTAMPTZ NOT NULL, checked_at TIMESTAMPTZ NOT NULL, "
        "models INTEGER NOT NULL, data VARCHAR)"
    )


def m015_same_call(db: Schema) -> None:
    # A call reported by several instrumentations (ours, OpenTelemetry's openai-v2, OpenLLMetry, ...) is one row
    # (collector/store/same_call.py): the response id to find the other reports by, and who else reported it.
    # Calls stored before keep NULL: they are never merged (no response id), as before.
    for name, kind in LLM_CALLS_COLUMNS_M015:
        db.calls(f"ALTER TABLE llm_calls ADD COLUMN {name} {kind}")


def m016_saved_queries(db: Schema) -> None:
    # Analysts' named SELECT statements for the dashboard's SQL page (collector/sql/saved.py), each checked by the
    # sandbox's parser before it is saved. A new table: nothing is ALTERed (the WAL replay bug m010 describes).
    db.state("CREATE SEQUENCE saved_query_ids START 1")
    db.state(
        "CREATE TABLE saved_queries (id BIGINT PRIMARY KEY DEFAULT nextval('saved_query_ids'), "
        "name VARCHAR NOT NULL UNIQUE, sql VARCHAR NOT NULL, created_by VARCHAR, created_at TIMESTAMPTZ NOT NULL)"
    )


def m017_signals(db: Schema) -> None:
    # Safety and quality signals the wrapper counts about content (llmledger/wrapper/signals.py). Calls stored before
    # keep NULL: not measured, which the readiness advice items read as unknown, never as a pass.
    for name, kind in LLM_CALLS_COLUMNS_M017:
        db.calls(f"ALTER TABLE llm_calls ADD COLUMN {name} {kind}")


def m018_readiness_rollup(db: Schema) -> None:
    # The readiness checklist's facts per service, environment and UTC day (collector/store/readiness_rollup.py),
    # built from the calls already stored: a new table, nothing ALTERed.
    db.calls(readiness_rollup.CREATE_M018)
    db.calls(f"INSERT INTO readiness_daily BY NAME {readiness_rollup.aggregate('llm_calls')} ORDER BY day, service")


def m019_hourly_rollup(db: Schema) -> None:
    # Sums per UTC hour and label (collector/store/hourly.py), so a 30-day summary or series reads whole hours
    # instead of every call; built here from the calls already stored.
    db.calls(hourly.CREATE_M019)
    db.calls(hourly.BACKFILL_M019)


def m020_latency_hourly(db: Schema) -> None:
    # Calls per UTC hour, service, model and log-spaced bucket of latency, time to first token and rate-limit
    # headroom (collector/store/latency_hourly.py), so a 30-day percentile, minimum or histogram reads whole hours
    # instead of every call; built here from the calls already stored.
    db.calls(latency_hourly.CREATE_M020)
    db.calls(latency_hourly.BACKFILL_M020)


MIGRATIONS: tuple[tuple[int, str, Callable[[Schema], None]], ...] = (
    (1, "m001_llm_calls", m001_llm_calls),
    (2, "m002_alerts", m002_alerts),
    (3, "m003_notification_attempts", m003_notification_attempts),
    (4, "m004_daily_rollup", m004_daily_rollup),
    (5, "m005_prices", m005_prices),
    (6, "m006_reconciliation", m006_reconciliation),
    (7, "m007_readiness", m007_readiness),
    (8, "m008_notification_claims", m008_notification_claims),
    (9, "m009_billing_units", m009_billing_units),
    (10, "m010_guard", m010_guard),
    (11, "m011_guard_features", m011_guard_features),
    (12, "m012_alert_groups", m012_alert_groups),
    (13, "m013_digests", m013_digests),  # landed after 14 and 15: a database that has them adds it on open
    (14, "m014_price_lists", m014_price_lists),
    (15, "m015_same_call", m015_same_call),
    (16, "m016_saved_queries", m016_saved_queries),  # landed after 17: a database that has it adds it on open
    (17, "m017_signals", m017_signals),
    (18, "m018_readiness_rollup", m018_readiness_rollup),
    (19, "m019_hourly_rollup", m019_hourly_rollup),
    (20, "m020_latency_hourly", m020_latency_hourly),
)


MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
    "applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; return the names applied."""
    con.execute(MIGRATIONS_TABLE)
    done = {row[0] for row in con.execute("SELECT id FROM _migrations").fetchall()}
    applied = []
    for number, name, apply in MIGRATIONS:
        if number in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            apply(Schema(con))
            con.execute("INSERT INTO _migrations (id, name) VALUES (?, ?)", [number, name])
            con.execute("COMMIT")
        except BaseException:
            end_failed_transaction(con)
            raise
        applied.append(name)
    return applied
