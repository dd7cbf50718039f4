/* All limits in one place. Each says why it has the value it has. */
#ifndef GH_CORE_LIMITS_H
#define GH_CORE_LIMITS_H

/* HTTP: a request line longer than this is an attack or a mistake (nginx uses 8 KiB). */
#define GH_HTTP_MAX_REQUEST_LINE   8192
/* HTTP: all header bytes of one request; enough for a JWT and proxies' headers. */
#define GH_HTTP_MAX_HEADER_BYTES   16384
/* HTTP: header lines per request. */
#define GH_HTTP_MAX_HEADERS        64
/* Default request body limit (configurable with serve --max-body): 1 MiB per the issue. */
#define GH_DEFAULT_MAX_BODY        (1024 * 1024)
/* Default statement text limit (serve --max-statement): 100 KiB. */
#define GH_DEFAULT_MAX_STATEMENT   (100 * 1024)
/* Default rows per result (serve --max-rows); past it the result says truncated:true. */
#define GH_DEFAULT_MAX_ROWS        10000
/* Bytes of row data per result: bounds memory per request even with wide rows. */
#define GH_DEFAULT_MAX_RESULT_BYTES (32 * 1024 * 1024)
/* Default statement time (serve --statement-timeout), milliseconds. */
#define GH_DEFAULT_STATEMENT_MS    30000
/* Pending approvals expire after this many seconds by default (serve --approval-ttl). */
#define GH_DEFAULT_APPROVAL_TTL    (24 * 3600)
/* The longest --approval-ttl: a month is already longer than a write should wait. */
#define GH_MAX_APPROVAL_TTL        (30 * 86400)
/* Bound parameters per statement: SQLite's own default maximum is 32766. */
#define GH_MAX_PARAMS              32766
/* Connections the HTTP front holds at once; more are refused at accept. */
#define GH_HTTP_MAX_CONNECTIONS    4096
/* Response bytes queued for a client before its further (pipelined) requests wait. */
#define GH_HTTP_MAX_PENDING_OUTPUT (4 * 1024 * 1024)
/* Idle keep-alive connections are closed after this many seconds. */
#define GH_HTTP_IDLE_SECONDS       60

/* Policy file: larger than this is not a policy document. */
#define GH_POLICY_MAX_BYTES        (4 * 1024 * 1024)
/* Names of users, groups, resources, environments, apps. */
#define GH_NAME_MAX                128
/* Entries per list in the policy (users, grants, ...). */
#define GH_POLICY_MAX_ENTRIES      100000
/* YAML nesting depth accepted by the loader. */
#define GH_POLICY_MAX_DEPTH        16

/* Tokens: a JWT larger than this is not one of ours. */
#define GH_TOKEN_MAX_BYTES         4096
#define GH_TOKEN_DEFAULT_TTL       (15 * 60)
#define GH_TOKEN_MAX_TTL           (24 * 3600)
/* Clock skew tolerated on exp and iat, seconds. */
#define GH_TOKEN_SKEW              30
/* Verified tokens cached per loop; the cache is emptied when full. */
#define GH_TOKEN_CACHE_MAX         65536

/* Statement analyses cached per loop; emptied when full. */
#define GH_SQL_CACHE_MAX           16384
/* Tables/functions recorded per statement analysis. */
#define GH_SQL_MAX_NAMES           256
/* Prepared statements cached per backend connection. */
#define GH_STMT_CACHE_MAX          512

/* Audit: records per group commit; more wait for the next batch. */
#define GH_AUDIT_MAX_BATCH         4096
/* Audit: one record (a statement is bounded separately; params can be large). */
#define GH_AUDIT_MAX_RECORD        (4 * 1024 * 1024)
/* Audit verify: a line longer than this is corrupt. */
#define GH_AUDIT_MAX_LINE          (8 * 1024 * 1024)
/* Audit sinks per policy: each has its own thread and connection. */
#define GH_SINK_MAX                16
/* Records per sink delivery: Datadog's logs intake takes at most 1000 entries per request. */
#define GH_SINK_MAX_BATCH          1000
/* Bytes of records per sink delivery (one record may exceed it alone): under Datadog's 5 MB
 * per request, and the bound of a sink's batch memory. */
#define GH_SINK_MAX_BATCH_BYTES    (4 * 1024 * 1024)
/* A syslog message larger than this is sent as a stub naming the record's seq and hash: UDP
 * carries at most 65507 bytes, and syslog receivers truncate long before. */
#define GH_SINK_SYSLOG_MAX         (64 * 1000)
/* At shutdown each sink gets this long (ms) to deliver what is durable; the rest waits for
 * the next start (positions are kept), so a dead receiver delays a stop by no more. */
#define GH_SINK_STOP_MS            3000
/* First retry delay (ms) after a failed delivery; doubles up to the sink's retry_max. */
#define GH_SINK_RETRY_MIN_MS       250
/* An API key longer than this is not one (Datadog's are 32 characters). */
#define GH_SINK_API_KEY_MAX        4096
/* Records between signed checkpoints, at most (the default is 1000). */
#define GH_CHECKPOINT_MAX_EVERY    10000000
/* A line of audit/checkpoints longer than this is not a checkpoint. */
#define GH_CHECKPOINT_MAX_LINE     512

/* Backups: a manifest is under 2 KiB; anything much larger is not one of ours. */
#define GH_BACKUP_MANIFEST_MAX     (64 * 1024)
/* Backups: a file size in a manifest above this (16 TiB) is refused before any arithmetic. */
#define GH_BACKUP_MAX_FILE_BYTES   (INT64_C(1) << 44)

/* Schema listings (GET /v1/schema): tables and views in one answer (a model's context is
 * finite; past this the answer says truncated), columns per table (PostgreSQL's own maximum),
 * bytes of one comment, bytes of the whole answer, and catalog rows read from a PostgreSQL
 * resource whatever the caller may see (bounds the server's memory on huge catalogs). */
#define GH_SCHEMA_MAX_TABLES       1000
#define GH_SCHEMA_MAX_COLUMNS      1600
#define GH_SCHEMA_MAX_COMMENT      1024
#define GH_SCHEMA_MAX_BYTES        (1024 * 1024)
#define GH_SCHEMA_MAX_CATALOG_ROWS 200000

/* Client verbs: response bytes accepted from the server. */
#define GH_CLIENT_MAX_RESPONSE     (256 * 1024 * 1024)

/* Metrics (src/metrics): labels per family, series per counter or histogram family, families
 * per registry and buckets per histogram; generous for what the server declares, small enough
 * that a mistake cannot eat memory. A rendered page larger than GH_METRICS_MAX_PAGE is a bug,
 * not a busy server, and is refused. */
#define GH_METRICS_MAX_LABELS      4
#define GH_METRICS_MAX_SERIES      4096
#define GH_METRICS_MAX_FAMILIES    128
#define GH_METRICS_MAX_BUCKETS     32
#define GH_METRICS_MAX_PAGE        (4 * 1024 * 1024)

#endif
