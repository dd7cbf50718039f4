/* sql: PostgreSQL statement analysis with libpg_query. The text is parsed by PostgreSQL's own
 * grammar into a JSON parse tree, and the tree is walked node by node; nothing is ever decided
 * by matching the SQL text. Every node type the walker meets must be known to it: an unknown
 * one makes the statement forbidden (fail closed), never a read. */
#include "sql/sql.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parse tree nesting the walker follows before refusing. jansson already refuses JSON deeper
 * than 2048 levels (about 700 tree nodes); this bounds the walk on its own terms as well.
 * (Belongs in core/limits.h; kept here because that header is owned elsewhere.) */
#define PG_MAX_DEPTH 1000
/* Text longer than this is refused without parsing: the caller bounds statements far lower
 * (GH_DEFAULT_MAX_STATEMENT); this bounds the parser's stack below (PG_STACK_PER_BYTE). */
#define PG_MAX_TEXT (1024 * 1024)
/* libpg_query recurses once per tree level while it writes the tree out, and a left-deep
 * chain ("1+1+1...") makes one level per two bytes: 100 KiB needs about 8 MiB of stack (measured,
 * release build; twice that under ASan). Texts up to PG_INLINE_MAX bytes (at most ~2000 levels,
 * well under 1 MiB) parse on the caller's stack; longer ones on a helper thread whose stack is
 * PG_STACK_PER_BYTE times the length (virtual memory, touched only as deep as the tree goes). */
#define PG_INLINE_MAX (4 * 1024)
#define PG_STACK_PER_BYTE 512
#define PG_STACK_MIN (8 * 1024 * 1024)

enum effect {
	FX_NONE,        /* expression or clause: contributes nothing by itself */
	FX_READ,
	FX_WRITE,
	FX_DDL,
	FX_OWN,         /* DDL that only an `own` grant may run */
	FX_DESTRUCTIVE,
	FX_FORBIDDEN,
	FX_SPECIAL,     /* decided by visit_special() from the node's fields */
};

struct rule {
	const char *type;
	enum effect fx;
	const char *what; /* names the statement in a refusal */
};

/* Every node type of PostgreSQL 15's raw parse tree, sorted by strcmp for bsearch. Nodes that
 * only exist after analysis (Var, Query, FuncExpr, ...) are absent on purpose: they never
 * appear in a raw tree, so meeting one means the walker misunderstands the tree. */
static const struct rule rules[] = {
	{"A_ArrayExpr", FX_NONE, NULL},
	{"A_Const", FX_NONE, NULL},
	{"A_Expr", FX_NONE, NULL},
	{"A_Indices", FX_NONE, NULL},
	{"A_Indirection", FX_NONE, NULL},
	{"A_Star", FX_NONE, NULL},
	{"AccessPriv", FX_NONE, NULL},
	{"Alias", FX_NONE, NULL},
	{"AlterCollationStmt", FX_FORBIDDEN, "ALTER COLLATION"},
	{"AlterDatabaseRefreshCollStmt", FX_DESTRUCTIVE, "ALTER DATABASE"},
	{"AlterDatabaseSetStmt", FX_DESTRUCTIVE, "ALTER DATABASE"},
	{"AlterDatabaseStmt", FX_DESTRUCTIVE, "ALTER DATABASE"},
	{"AlterDefaultPrivilegesStmt", FX_OWN, NULL},
	{"AlterDomainStmt", FX_SPECIAL, NULL},
	{"AlterEnumStmt", FX_DDL, NULL},
	{"AlterEventTrigStmt", FX_FORBIDDEN, "ALTER EVENT TRIGGER"},
	{"AlterExtensionContentsStmt", FX_FORBIDDEN, "ALTER EXTENSION"},
	{"AlterExtensionStmt", FX_FORBIDDEN, "ALTER EXTENSION"},
	{"AlterFdwStmt", FX_FORBIDDEN, "ALTER FOREIGN DATA WRAPPER"},
	{"AlterForeignServerStmt", FX_FORBIDDEN, "ALTER SERVER"},
	{"AlterFunctionStmt", FX_OWN, NULL},
	{"AlterObjectDependsStmt", FX_FORBIDDEN, "ALTER ... DEPENDS ON EXTENSION"},
	{"AlterObjectSchemaStmt", FX_SPECIAL, NULL},
	{"AlterOpFamilyStmt", FX_FORBIDDEN, "ALTER OPERATOR FAMILY"},
	{"AlterOperatorStmt", FX_OWN, NULL},
	{"AlterOwnerStmt", FX_SPECIAL, NULL},
	{"AlterPolicyStmt", FX_OWN, NULL},  /* row-level security decides who sees what */
	{"AlterPublicationStmt", FX_FORBIDDEN, "ALTER PUBLICATION"},
	{"AlterRoleSetStmt", FX_DESTRUCTIVE, "ALTER ROLE"},
	{"AlterRoleStmt", FX_DESTRUCTIVE, "ALTER ROLE/USER/GROUP"},
	{"AlterSeqStmt", FX_DDL, NULL},
	{"AlterStatsStmt", FX_DDL, NULL},
	{"AlterSubscriptionStmt", FX_FORBIDDEN, "ALTER SUBSCRIPTION"},
	{"AlterSystemStmt", FX_DESTRUCTIVE, "ALTER SYSTEM"},
	{"AlterTSConfigurationStmt", FX_FORBIDDEN, "ALTER TEXT SEARCH CONFIGURATION"},
	{"AlterTSDictionaryStmt", FX_FORBIDDEN, "ALTER TEXT SEARCH DICTIONARY"},
	{"AlterTableCmd", FX_SPECIAL, NULL},
	{"AlterTableMoveAllStmt", FX_FORBIDDEN, "ALTER ... ALL IN TABLESPACE"},
	{"AlterTableSpaceOptionsStmt", FX_FORBIDDEN, "ALTER TABLESPACE"},
	{"AlterTableStmt", FX_SPECIAL, NULL},
	{"AlterTypeStmt", FX_DDL, NULL},
	{"AlterUserMappingStmt", FX_FORBIDDEN, "ALTER USER MAPPING"},
	{"BitString", FX_NONE, NULL},
	{"BoolExpr", FX_NONE, NULL},
	{"Boolean", FX_NONE, NULL},
	{"BooleanTest", FX_NONE, NULL},
	{"CTECycleClause", FX_NONE, NULL},
	{"CTESearchClause", FX_NONE, NULL},
	{"CallStmt", FX_OWN, NULL},
	{"CaseExpr", FX_NONE, NULL},
	{"CaseWhen", FX_NONE, NULL},
	{"CheckPointStmt", FX_FORBIDDEN, "CHECKPOINT"},
	{"ClosePortalStmt", FX_FORBIDDEN, "CLOSE (cursors)"},
	{"ClusterStmt", FX_FORBIDDEN, "CLUSTER"},
	{"CoalesceExpr", FX_NONE, NULL},
	{"CollateClause", FX_NONE, NULL},
	{"ColumnDef", FX_NONE, NULL},
	{"ColumnRef", FX_NONE, NULL},
	{"CommentStmt", FX_DDL, NULL},
	{"CommonTableExpr", FX_NONE, NULL},
	{"CompositeTypeStmt", FX_DDL, NULL},
	{"Constraint", FX_NONE, NULL},
	{"ConstraintsSetStmt", FX_FORBIDDEN, "SET CONSTRAINTS"},
	{"CopyStmt", FX_SPECIAL, NULL},
	{"CreateAmStmt", FX_FORBIDDEN, "CREATE ACCESS METHOD"},
	{"CreateCastStmt", FX_FORBIDDEN, "CREATE CAST"},
	{"CreateConversionStmt", FX_FORBIDDEN, "CREATE CONVERSION"},
	{"CreateDomainStmt", FX_DDL, NULL},
	{"CreateEnumStmt", FX_DDL, NULL},
	{"CreateEventTrigStmt", FX_FORBIDDEN, "CREATE EVENT TRIGGER"},
	{"CreateExtensionStmt", FX_FORBIDDEN, "CREATE EXTENSION"},
	{"CreateFdwStmt", FX_FORBIDDEN, "CREATE FOREIGN DATA WRAPPER"},
	{"CreateForeignServerStmt", FX_FORBIDDEN, "CREATE SERVER"},
	{"CreateForeignTableStmt", FX_FORBIDDEN, "CREATE FOREIGN TABLE"},
	{"CreateFunctionStmt", FX_OWN, NULL},
	{"CreateOpClassItem", FX_NONE, NULL},
	{"CreateOpClassStmt", FX_FORBIDDEN, "CREATE OPERATOR CLASS"},
	{"CreateOpFamilyStmt", FX_FORBIDDEN, "CREATE OPERATOR FAMILY"},
	{"CreatePLangStmt", FX_FORBIDDEN, "CREATE LANGUAGE"},
	{"CreatePolicyStmt", FX_OWN, NULL}, /* a permissive policy widens what others see */
	{"CreatePublicationStmt", FX_FORBIDDEN, "CREATE PUBLICATION"},
	{"CreateRangeStmt", FX_DDL, NULL},
	{"CreateRoleStmt", FX_FORBIDDEN, "CREATE ROLE/USER/GROUP"},
	{"CreateSchemaStmt", FX_DDL, NULL},
	{"CreateSeqStmt", FX_DDL, NULL},
	{"CreateStatsStmt", FX_DDL, NULL},
	{"CreateStmt", FX_DDL, NULL},
	{"CreateSubscriptionStmt", FX_FORBIDDEN, "CREATE SUBSCRIPTION"},
	{"CreateTableAsStmt", FX_DDL, NULL},
	{"CreateTableSpaceStmt", FX_FORBIDDEN, "CREATE TABLESPACE"},
	{"CreateTransformStmt", FX_FORBIDDEN, "CREATE TRANSFORM"},
	{"CreateTrigStmt", FX_DDL, NULL},
	{"CreateUserMappingStmt", FX_FORBIDDEN, "CREATE USER MAPPING"},
	{"CreatedbStmt", FX_FORBIDDEN, "CREATE DATABASE"},
	{"CurrentOfExpr", FX_NONE, NULL},
	{"DeallocateStmt", FX_FORBIDDEN, "DEALLOCATE in SQL text (use the extended protocol)"},
	{"DeclareCursorStmt", FX_FORBIDDEN, "DECLARE CURSOR"},
	{"DefElem", FX_NONE, NULL},
	{"DefineStmt", FX_SPECIAL, NULL},
	{"DeleteStmt", FX_WRITE, NULL},
	{"DiscardStmt", FX_FORBIDDEN, "DISCARD"},
	{"DoStmt", FX_OWN, NULL},
	{"DropOwnedStmt", FX_DESTRUCTIVE, "DROP OWNED"},
	{"DropRoleStmt", FX_DESTRUCTIVE, "DROP ROLE/USER/GROUP"},
	{"DropStmt", FX_SPECIAL, NULL},
	{"DropSubscriptionStmt", FX_DESTRUCTIVE, "DROP SUBSCRIPTION"},
	{"DropTableSpaceStmt", FX_DESTRUCTIVE, "DROP TABLESPACE"},
	{"DropUserMappingStmt", FX_DESTRUCTIVE, "DROP USER MAPPING"},
	{"DropdbStmt", FX_DESTRUCTIVE, "DROP DATABASE"},
	{"ExecuteStmt", FX_FORBIDDEN, "EXECUTE in SQL text (use the extended protocol)"},
	{"ExplainStmt", FX_SPECIAL, NULL},
	{"FetchStmt", FX_FORBIDDEN, "FETCH/MOVE (cursors)"},
	{"Float", FX_NONE, NULL},
	{"FuncCall", FX_SPECIAL, NULL},
	{"FunctionParameter", FX_NONE, NULL},
	{"GrantRoleStmt", FX_OWN, NULL},
	{"GrantStmt", FX_OWN, NULL},
	{"GroupingFunc", FX_NONE, NULL},
	{"GroupingSet", FX_NONE, NULL},
	{"ImportForeignSchemaStmt", FX_FORBIDDEN, "IMPORT FOREIGN SCHEMA"},
	{"IndexElem", FX_NONE, NULL},
	{"IndexStmt", FX_DDL, NULL},
	{"InferClause", FX_NONE, NULL},
	{"InsertStmt", FX_WRITE, NULL},
	{"IntList", FX_NONE, NULL},
	{"Integer", FX_NONE, NULL},
	{"IntoClause", FX_DDL, NULL}, /* SELECT INTO, CREATE TABLE AS: they create a table */
	{"JoinExpr", FX_NONE, NULL},
	{"List", FX_NONE, NULL},
	{"ListenStmt", FX_FORBIDDEN, "LISTEN"},
	{"LoadStmt", FX_FORBIDDEN, "LOAD"},
	{"LockStmt", FX_WRITE, NULL},
	{"LockingClause", FX_WRITE, NULL}, /* SELECT ... FOR UPDATE/SHARE locks rows */
	{"MergeStmt", FX_WRITE, NULL},
	{"MergeWhenClause", FX_NONE, NULL},
	{"MinMaxExpr", FX_NONE, NULL},
	{"MultiAssignRef", FX_NONE, NULL},
	{"NamedArgExpr", FX_NONE, NULL},
	{"NotifyStmt", FX_FORBIDDEN, "NOTIFY"},
	{"NullTest", FX_NONE, NULL},
	{"ObjectWithArgs", FX_NONE, NULL},
	{"OidList", FX_NONE, NULL},
	{"OnConflictClause", FX_NONE, NULL},
	{"ParamRef", FX_SPECIAL, NULL},
	{"PartitionBoundSpec", FX_NONE, NULL},
	{"PartitionCmd", FX_NONE, NULL},
	{"PartitionElem", FX_NONE, NULL},
	{"PartitionRangeDatum", FX_NONE, NULL},
	{"PartitionSpec", FX_NONE, NULL},
	{"PrepareStmt", FX_FORBIDDEN, "PREPARE in SQL text (use the extended protocol)"},
	{"PublicationObjSpec", FX_NONE, NULL},
	{"PublicationTable", FX_NONE, NULL},
	{"RangeFunction", FX_NONE, NULL},
	{"RangeSubselect", FX_NONE, NULL},
	{"RangeTableFunc", FX_NONE, NULL},
	{"RangeTableFuncCol", FX_NONE, NULL},
	{"RangeTableSample", FX_NONE, NULL},
	{"RangeVar", FX_SPECIAL, NULL},
	{"ReassignOwnedStmt", FX_DESTRUCTIVE, "REASSIGN OWNED"},
	{"RefreshMatViewStmt", FX_DDL, NULL},
	{"ReindexStmt", FX_FORBIDDEN, "REINDEX"},
	{"RenameStmt", FX_SPECIAL, NULL},
	{"ReplicaIdentityStmt", FX_NONE, NULL},
	{"ResTarget", FX_NONE, NULL},
	{"ReturnStmt", FX_READ, NULL},
	{"RoleSpec", FX_NONE, NULL},
	{"RowExpr", FX_NONE, NULL},
	{"RuleStmt", FX_DDL, NULL},
	{"SQLValueFunction", FX_NONE, NULL},
	{"SecLabelStmt", FX_FORBIDDEN, "SECURITY LABEL"},
	{"SelectStmt", FX_READ, NULL},
	{"SetToDefault", FX_NONE, NULL},
	{"SortBy", FX_NONE, NULL},
	{"StatsElem", FX_NONE, NULL},
	{"String", FX_NONE, NULL},
	{"SubLink", FX_NONE, NULL},
	{"TableLikeClause", FX_NONE, NULL},
	{"TransactionStmt", FX_SPECIAL, NULL},
	{"TriggerTransition", FX_NONE, NULL},
	{"TruncateStmt", FX_DESTRUCTIVE, "TRUNCATE"},
	{"TypeCast", FX_NONE, NULL},
	{"TypeName", FX_NONE, NULL},
	{"UnlistenStmt", FX_FORBIDDEN, "UNLISTEN"},
	{"UpdateStmt", FX_WRITE, NULL},
	{"VacuumRelation", FX_NONE, NULL},
	{"VacuumStmt", FX_SPECIAL, NULL},
	{"VariableSetStmt", FX_SPECIAL, NULL},
	{"VariableShowStmt", FX_SPECIAL, NULL},
	{"ViewStmt", FX_DDL, NULL},
	{"WindowDef", FX_NONE, NULL},
	{"WithClause", FX_NONE, NULL},
	{"XmlExpr", FX_NONE, NULL},
	{"XmlSerialize", FX_NONE, NULL},
};

/* Struct-typed fields: the JSON writes them without the {"Type": ...} wrapper that Node fields
 * carry, so their type comes from the field. Unlisted unwrapped structs are RangeVar when they
 * have a relname, else plain data (Alias, TypeName, RoleSpec, ObjectWithArgs, ...) whose Node
 * fields are wrapped again and checked on their own. */
static const struct {
	const char *parent, *key, *type;
} typed_fields[] = {
	{"AlterDatabaseSetStmt", "setstmt", "VariableSetStmt"},
	{"AlterDefaultPrivilegesStmt", "action", "GrantStmt"},
	{"AlterRoleSetStmt", "setstmt", "VariableSetStmt"},
	{"AlterSystemStmt", "setstmt", "VariableSetStmt"},
	{"CallStmt", "funccall", "FuncCall"},
	{"CreateForeignTableStmt", "base", "CreateStmt"},
	{"CreateTableAsStmt", "into", "IntoClause"},
	{"DeleteStmt", "withClause", "WithClause"},
	{"InsertStmt", "onConflictClause", "OnConflictClause"},
	{"InsertStmt", "withClause", "WithClause"},
	{"MergeStmt", "withClause", "WithClause"},
	{"OnConflictClause", "infer", "InferClause"},
	{"SelectStmt", "intoClause", "IntoClause"},
	{"SelectStmt", "larg", "SelectStmt"},
	{"SelectStmt", "rarg", "SelectStmt"},
	{"SelectStmt", "withClause", "WithClause"},
	{"UpdateStmt", "withClause", "WithClause"},
};

/* RangeVar fields that name the relation a statement changes; any other RangeVar is read. */
static const struct {
	const char *parent, *key;
} written_fields[] = {
	{"AlterObjectSchemaStmt", "relation"}, {"AlterOwnerStmt", "relation"},
	{"AlterPolicyStmt", "table"}, {"AlterSeqStmt", "sequence"},
	{"AlterTableStmt", "relation"}, {"ClusterStmt", "relation"},
	{"CompositeTypeStmt", "typevar"}, {"CreatePolicyStmt", "table"},
	{"CreateSeqStmt", "sequence"}, {"CreateStmt", "relation"},
	{"CreateTrigStmt", "relation"}, {"DeleteStmt", "relation"},
	{"IndexStmt", "relation"}, {"InsertStmt", "relation"},
	{"IntoClause", "rel"}, {"LockStmt", "relations"},
	{"MergeStmt", "relation"}, {"PartitionCmd", "name"},
	{"RefreshMatViewStmt", "relation"}, {"ReindexStmt", "relation"},
	{"RenameStmt", "relation"}, {"RuleStmt", "relation"},
	{"TruncateStmt", "relations"}, {"UpdateStmt", "relation"},
	{"ViewStmt", "view"},
};

/* Functions refused wherever they are called, by unqualified case-folded name: they reach
 * server files, other servers or sessions, server state, or run SQL given as a string that
 * this analyser never sees. */
static const char *const function_deny[] = {
	"dblink", "loread", "lowrite", "pg_backup_start", "pg_backup_stop", "pg_cancel_backend",
	"pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot",
	"pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
	"pg_create_restore_point", "pg_drop_replication_slot", "pg_file_rename", "pg_file_sync",
	"pg_file_unlink", "pg_file_write", "pg_import_system_collations",
	"pg_log_backend_memory_contexts", "pg_notify", "pg_promote", "pg_read_binary_file",
	"pg_read_file", "pg_reload_conf", "pg_replication_slot_advance", "pg_rotate_logfile",
	"pg_stat_file", "pg_switch_wal", "pg_terminate_backend", "pg_wal_replay_pause",
	"pg_wal_replay_resume", "ts_stat",
	/* session-level advisory locks outlive the request on a pooled connection (the
	 * transaction-level pg_advisory_xact_lock family is fine) */
	"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
};
static const char *const function_deny_prefix[] = {
	"lo_", "pg_ls_", "dblink_", "query_to_xml", "cursor_to_xml", "table_to_xml",
	"schema_to_xml", "database_to_xml", "pg_logical_", "pg_replication_origin_",
	"pg_stat_reset", "binary_upgrade_",
};

/* CTE names visible at a point of the tree; a RangeVar naming one is not a table. */
struct scope {
	const char *name;
	const struct scope *up;
	struct scope *next_alloc;
};

struct frame {
	json_t *v;
	const char *type;  /* v's node type when v is an unwrapped struct, else NULL */
	const char *ptype; /* type of the node holding v */
	const char *key;   /* v's field in that node */
	const struct scope *scope;
	unsigned depth;
	bool target;       /* a RangeVar here names a relation the statement changes */
	bool plan_only;    /* under EXPLAIN without ANALYZE: nothing below runs */
};

/* What the column check needs from the tree, resolved once the whole text is walked (the
 * pointers are into the parse tree, alive until then). */
struct colref {
	json_t *fields;      /* a ColumnRef's fields, or NULL for a USING column (name) */
	const char *name;
};
struct relrec {
	size_t table;        /* index into a->tables */
	const char *alias, *relname, *schema;
};

struct walk {
	struct gh_sql_analysis *a;
	struct colref *refs;
	size_t nrefs;
	struct relrec *rels;
	size_t nrels;
	const char **safe;   /* aliases of subqueries, functions and CTEs: their columns were
			      * checked where they were read */
	size_t nsafe;
	const char **joins;  /* aliases of joins: they stand for every table in the join */
	size_t njoins;
	bool wide;           /* NATURAL JOIN, column aliases on a table or join, COPY of a whole
			      * table: columns read without being named */
	struct gh_sql_stmt *st;
	struct frame *stack;
	size_t n, cap;
	struct scope *scopes;
	const struct frame *f;
	enum gh_sql_class cls;
	bool own_only, oom, too_many;
	char destructive[256], forbidden[256];
	const char *text;  /* the analysed text (w->st's span is in it) */
};

static int rule_cmp(const void *k, const void *r)
{
	return strcmp(k, ((const struct rule *)r)->type);
}

/* Severity order of classes: destructive > forbidden > ddl > write > session > read. */
static int rank(enum gh_sql_class c)
{
	switch (c) {
	case GH_SQL_READ: return 0;
	case GH_SQL_SESSION: return 1;
	case GH_SQL_WRITE: return 2;
	case GH_SQL_DDL: return 3;
	case GH_SQL_FORBIDDEN: return 4;
	default: return 5;
	}
}

/* Raises the statement's class to c (only ever up) and keeps the first reason of each refusing
 * class. Under EXPLAIN without ANALYZE nothing executes, so only refusals count there. */
__attribute__((format(printf, 3, 4)))
static void raise_class(struct walk *w, enum gh_sql_class c, const char *fmt, ...)
{
	if (w->f && w->f->plan_only && c != GH_SQL_DESTRUCTIVE && c != GH_SQL_FORBIDDEN)
		c = GH_SQL_READ;
	if (rank(c) > rank(w->cls))
		w->cls = c;
	char *reason = c == GH_SQL_DESTRUCTIVE ? w->destructive : c == GH_SQL_FORBIDDEN ? w->forbidden : NULL;
	if (reason && !reason[0] && fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(reason, sizeof w->destructive, fmt, ap);
		va_end(ap);
	}
}

static void own(struct walk *w)
{
	raise_class(w, GH_SQL_DDL, NULL);
	if (!w->f->plan_only)
		w->own_only = true;
}

static const char *str_field(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static bool str_is(json_t *obj, const char *key, const char *want)
{
	const char *s = str_field(obj, key);
	return s && strcmp(s, want) == 0;
}

/* Writes "OBJECT_FOREIGN_SERVER" as "FOREIGN SERVER" (and "AT_DropNotNull" as "DROP NOT NULL")
 * into out, for reasons. */
static void words(const char *ident, const char *prefix, char *out, size_t size)
{
	size_t o = 0, plen = strlen(prefix);
	if (!ident)
		ident = "?";
	if (strncmp(ident, prefix, plen) == 0)
		ident += plen;
	for (size_t i = 0; ident[i] && o + 2 < size; i++) {
		char c = ident[i];
		if (c == '_') {
			out[o++] = ' ';
			continue;
		}
		if (i > 0 && c >= 'A' && c <= 'Z' && ident[i - 1] >= 'a' && ident[i - 1] <= 'z')
			out[o++] = ' ';
		out[o++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
	}
	out[o] = '\0';
}

/* The class of ALTER ... RENAME / SET SCHEMA on an object type: role and database are never
 * touched, functions belong to `own`, the schema's ordinary objects are DDL, everything else
 * (server-wide or extension machinery) is forbidden. */
static enum gh_sql_class object_class(const char *objtype, bool *own_only)
{
	static const char *const ddl[] = {
		"OBJECT_ATTRIBUTE", "OBJECT_COLUMN", "OBJECT_DOMAIN", "OBJECT_DOMCONSTRAINT",
		"OBJECT_INDEX", "OBJECT_MATVIEW", "OBJECT_POLICY", "OBJECT_RULE", "OBJECT_SCHEMA",
		"OBJECT_SEQUENCE", "OBJECT_STATISTIC_EXT", "OBJECT_TABCONSTRAINT", "OBJECT_TABLE",
		"OBJECT_TRIGGER", "OBJECT_TYPE", "OBJECT_VIEW",
	};
	static const char *const owned[] = {
		"OBJECT_AGGREGATE", "OBJECT_FUNCTION", "OBJECT_OPERATOR", "OBJECT_PROCEDURE", "OBJECT_ROUTINE",
	};
	*own_only = false;
	if (!objtype)
		return GH_SQL_FORBIDDEN;
	if (strcmp(objtype, "OBJECT_ROLE") == 0 || strcmp(objtype, "OBJECT_DATABASE") == 0)
		return GH_SQL_DESTRUCTIVE;
	for (size_t i = 0; i < sizeof ddl / sizeof *ddl; i++)
		if (strcmp(objtype, ddl[i]) == 0)
			return GH_SQL_DDL;
	for (size_t i = 0; i < sizeof owned / sizeof *owned; i++)
		if (strcmp(objtype, owned[i]) == 0) {
			*own_only = true;
			return GH_SQL_DDL;
		}
	return GH_SQL_FORBIDDEN;
}

static void alter_object(struct walk *w, const char *objtype, const char *verb)
{
	bool owned;
	char what[64];
	enum gh_sql_class c = object_class(objtype, &owned);
	words(objtype, "OBJECT_", what, sizeof what);
	if (owned)
		own(w);
	else if (c == GH_SQL_DESTRUCTIVE)
		raise_class(w, c, "ALTER %s ... %s is destructive", what, verb);
	else if (c == GH_SQL_FORBIDDEN)
		raise_class(w, c, "ALTER %s ... %s is not allowed", what, verb);
	else
		raise_class(w, c, NULL);
}

/* Settings that decide who the session is or what Gatehouse told the server about the caller. */
/* Settings a caller may not change: who they are (role, session authorization, the
 * gatehouse.* claims), and the limits and modes Gatehouse sets for a request (a statement
 * timeout of 0 inside a client transaction would lift the limit; read-only modes and
 * replication role guard what a transaction may do). */
static bool protected_setting(const char *name)
{
	static const char *const fixed[] = {
		"role", "session_authorization", "statement_timeout", "lock_timeout",
		"idle_in_transaction_session_timeout", "idle_session_timeout", "transaction_read_only",
		"default_transaction_read_only", "session_replication_role", "row_security",
	};
	if (!name || strncasecmp(name, "gatehouse.", 10) == 0)
		return true;
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
		if (strcasecmp(name, fixed[i]) == 0)
			return true;
	return false;
}

static bool grow_names(void **p, size_t n, size_t elem, bool *oom)
{
	if (n % 8)
		return true;
	void *q = realloc(*p, (n + 8) * elem);
	if (!q) {
		*oom = true;
		return false;
	}
	*p = q;
	return true;
}

/* Records a relation; returns its index in a->tables, or -1 (too many, out of memory). */
static long add_table(struct walk *w, const char *name, bool written)
{
	struct gh_sql_analysis *a = w->a;
	for (size_t i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].name, name) == 0) {
			if (written) a->tables[i].written = true; else a->tables[i].read = true;
			return (long)i;
		}
	if (a->ntables >= GH_SQL_MAX_NAMES) {
		w->too_many = true;
		return -1;
	}
	if (!grow_names((void **)&a->tables, a->ntables, sizeof *a->tables, &w->oom))
		return -1;
	char *n = gh_strdup(name);
	if (!n) {
		w->oom = true;
		return -1;
	}
	a->tables[a->ntables] = (struct gh_sql_table){.name = n, .read = !written, .written = written, .direct = true};
	return (long)a->ntables++;
}

/* Appends one element to an array that grows by 8. */
static bool grow(void **p, size_t n, size_t elem, struct walk *w)
{
	return grow_names(p, n, elem, &w->oom);
}

static void note_alias(struct walk *w, const char ***list, size_t *n, const char *name)
{
	if (name && grow((void **)list, *n, sizeof **list, w))
		(*list)[(*n)++] = name;
}

/* ---- columns ----
 * The parser knows no catalog, so a column name is attributed conservatively: a qualified
 * name (c.col) to every relation the qualifier may denote (its alias or its name anywhere in
 * the text), an unqualified one to every relation of the text. Whatever cannot be named
 * (*, t.*, a whole-row reference, NATURAL JOIN, column aliases) makes the relations it may
 * denote read whole (all_columns). The policy then refuses what a column-limited grant does
 * not list: over-attribution can refuse a statement, never let one read more. */

static void add_column(struct walk *w, size_t table, const char *name)
{
	if (gh_sql_table_add_column(&w->a->tables[table], name, false))
		w->oom = true;
}

/* Attributes name (NULL: every column) to every relation of the text. */
static void column_everywhere(struct walk *w, const char *name)
{
	for (size_t i = 0; i < w->a->ntables && !w->oom; i++) {
		if (name)
			add_column(w, i, name);
		else
			w->a->tables[i].all_columns = true;
	}
}

static bool in_names(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

static const char *sval(json_t *node)
{
	return json_string_value(json_object_get(json_object_get(node, "String"), "sval"));
}

/* One ColumnRef: fields are Strings, the last may be A_Star. */
static void resolve_ref(struct walk *w, json_t *fields)
{
	size_t n = json_array_size(fields);
	json_t *last = json_array_get(fields, n ? n - 1 : 0);
	bool star = json_object_get(last, "A_Star") != NULL;
	const char *name = star ? NULL : sval(last);
	if (n == 0 || (!star && !name)) {
		column_everywhere(w, NULL); /* a shape the analyser does not know: as if it read all */
		return;
	}
	if (n == 1) {
		column_everywhere(w, name); /* also a whole-row reference when it names a relation: the
					     * name is then no column of it, and refused for a limited one */
		return;
	}
	const char *q = sval(json_array_get(fields, n - 2));
	const char *qschema = n >= 3 ? sval(json_array_get(fields, n - 3)) : NULL;
	if (!q || (n >= 3 && !qschema)) {
		column_everywhere(w, NULL);
		return;
	}
	if (in_names(w->joins, w->njoins, q)) {
		column_everywhere(w, name); /* a join's alias stands for all its tables */
		return;
	}
	bool matched = false;
	for (size_t i = 0; i < w->nrels && !w->oom; i++) {
		const struct relrec *r = &w->rels[i];
		bool by_alias = n == 2 && r->alias && strcmp(r->alias, q) == 0;
		bool by_name = strcmp(r->relname, q) == 0 && (!qschema || (r->schema && strcmp(r->schema, qschema) == 0));
		if (!by_alias && !by_name)
			continue;
		matched = true;
		if (star)
			w->a->tables[r->table].all_columns = true;
		else
			add_column(w, r->table, name);
	}
	if (matched || in_names(w->safe, w->nsafe, q))
		return;
	/* Not a relation of the text: a composite column's field (col.field, t.col.field), so
	 * every name but the last may be the column read. */
	if (star) {
		column_everywhere(w, NULL);
		return;
	}
	for (size_t i = 0; i + 1 < n && !w->oom; i++)
		column_everywhere(w, sval(json_array_get(fields, i)));
}

/* Attributes every column reference of the text, once it is all walked. */
static void resolve_columns(struct walk *w)
{
	if (w->wide)
		column_everywhere(w, NULL);
	for (size_t i = 0; i < w->nrefs && !w->oom; i++) {
		if (w->refs[i].fields)
			resolve_ref(w, w->refs[i].fields);
		else
			column_everywhere(w, w->refs[i].name);
	}
}

static void note_ref(struct walk *w, json_t *fields, const char *name)
{
	if (grow((void **)&w->refs, w->nrefs, sizeof *w->refs, w))
		w->refs[w->nrefs++] = (struct colref){fields, name};
}

/* An Alias struct: its name goes to list (if any); column aliases on a table or a join rename
 * columns by position, so the relations below read columns they do not name. */
static void note_alias_node(struct walk *w, json_t *alias, bool renames, const char ***list, size_t *n)
{
	if (!json_is_object(alias))
		return;
	if (list)
		note_alias(w, list, n, str_field(alias, "aliasname"));
	if (renames && json_array_size(json_object_get(alias, "colnames")))
		w->wide = true;
}

/* Collects what the column check needs from nodes that carry column names or aliases. */
static void collect_columns(struct walk *w, const char *type, json_t *n)
{
	if (strcmp(type, "ColumnRef") == 0) {
		json_t *fields = json_object_get(n, "fields");
		if (json_is_array(fields))
			note_ref(w, fields, NULL);
		else
			w->wide = true;
	} else if (strcmp(type, "JoinExpr") == 0) {
		if (json_is_true(json_object_get(n, "isNatural")))
			w->wide = true;
		size_t i;
		json_t *u;
		json_array_foreach(json_object_get(n, "usingClause"), i, u) {
			const char *name = sval(u);
			if (name)
				note_ref(w, NULL, name);
			else
				w->wide = true;
		}
		note_alias_node(w, json_object_get(n, "alias"), true, &w->joins, &w->njoins);
	} else if (strcmp(type, "RangeSubselect") == 0 || strcmp(type, "RangeFunction") == 0 ||
		   strcmp(type, "RangeTableFunc") == 0) {
		note_alias_node(w, json_object_get(n, "alias"), false, &w->safe, &w->nsafe);
	} else if (strcmp(type, "CommonTableExpr") == 0) {
		note_alias(w, &w->safe, &w->nsafe, str_field(n, "ctename"));
	} else if (strcmp(type, "CopyStmt") == 0) {
		if (json_object_get(n, "relation") && !json_array_size(json_object_get(n, "attlist")))
			w->wide = true;
	}
}

/* Takes ownership of name. */
static void add_function(struct walk *w, char *name)
{
	struct gh_sql_analysis *a = w->a;
	for (size_t i = 0; i < a->nfunctions; i++)
		if (strcmp(a->functions[i], name) == 0) {
			free(name);
			return;
		}
	if (a->nfunctions >= GH_SQL_MAX_NAMES) {
		w->too_many = true;
		free(name);
		return;
	}
	if (!grow_names((void **)&a->functions, a->nfunctions, sizeof *a->functions, &w->oom)) {
		free(name);
		return;
	}
	a->functions[a->nfunctions++] = name;
}

/* Joins the String nodes of a name list with ".", or NULL when an element is not a String
 * (or on out of memory, with w->oom set). *last points at the last element's text. */
static char *join_names(struct walk *w, json_t *list, const char **last)
{
	size_t total = 0, i;
	json_t *el;
	*last = NULL;
	json_array_foreach(list, i, el) {
		const char *s = json_string_value(json_object_get(json_object_get(el, "String"), "sval"));
		if (!s)
			return NULL;
		total += strlen(s) + 1;
		*last = s;
	}
	if (!*last)
		return NULL;
	char *out = malloc(total);
	if (!out) {
		w->oom = true;
		return NULL;
	}
	size_t o = 0;
	json_array_foreach(list, i, el) {
		const char *s = json_string_value(json_object_get(json_object_get(el, "String"), "sval"));
		size_t n = strlen(s);
		if (o)
			out[o++] = '.';
		memcpy(out + o, s, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

static bool function_denied(const char *lower)
{
	for (size_t i = 0; i < sizeof function_deny / sizeof *function_deny; i++)
		if (strcmp(lower, function_deny[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof function_deny_prefix / sizeof *function_deny_prefix; i++)
		if (strncmp(lower, function_deny_prefix[i], strlen(function_deny_prefix[i])) == 0)
			return true;
	return false;
}

/* A function call: recorded, and refused or classed by its unqualified, case-folded name
 * whatever schema is written. */
static void visit_funccall(struct walk *w, json_t *fc)
{
	const char *last;
	char *name = join_names(w, json_object_get(fc, "funcname"), &last);
	if (!name) {
		if (!w->oom)
			raise_class(w, GH_SQL_FORBIDDEN, "function call with a name the analyser does not understand");
		return;
	}
	char lower[128];
	size_t n = strlen(last);
	if (n >= sizeof lower)
		n = sizeof lower - 1;
	for (size_t i = 0; i < n; i++)
		lower[i] = (last[i] >= 'A' && last[i] <= 'Z') ? (char)(last[i] - 'A' + 'a') : last[i];
	lower[n] = '\0';
	json_t *args = json_object_get(fc, "args");
	if (function_denied(lower)) {
		raise_class(w, GH_SQL_FORBIDDEN, "function %s is not allowed", lower);
	} else if (strcmp(lower, "ts_rewrite") == 0 && json_array_size(args) == 2) {
		raise_class(w, GH_SQL_FORBIDDEN, "function ts_rewrite with a query string is not allowed");
	} else if (strcmp(lower, "nextval") == 0 || strcmp(lower, "setval") == 0) {
		raise_class(w, GH_SQL_WRITE, NULL);
	} else if (strcmp(lower, "set_config") == 0) {
		json_t *k = json_object_get(json_array_get(args, 0), "A_Const");
		const char *setting = json_string_value(json_object_get(json_object_get(k, "sval"), "sval"));
		if (!setting)
			raise_class(w, GH_SQL_FORBIDDEN, "set_config with a setting name that is not a string constant");
		else if (protected_setting(setting))
			raise_class(w, GH_SQL_FORBIDDEN, "set_config of %.64s is not allowed", setting);
		else if (strcasecmp(setting, "search_path") == 0)
			w->a->sets_search_path = true;
	}
	add_function(w, name);
}

static void visit_rangevar(struct walk *w, json_t *rv)
{
	const char *cat = str_field(rv, "catalogname"), *schema = str_field(rv, "schemaname");
	const char *rel = str_field(rv, "relname");
	if (!rel) {
		raise_class(w, GH_SQL_FORBIDDEN, "relation without a name");
		return;
	}
	/* Backend connections are pooled: a temporary object would outlive the request and be
	 * seen by the next caller on that connection. */
	const char *persist = str_field(rv, "relpersistence");
	if ((persist && strcmp(persist, "t") == 0) || (schema && strncmp(schema, "pg_temp", 7) == 0)) {
		raise_class(w, GH_SQL_FORBIDDEN, "temporary objects outlive the request on a pooled connection");
		return;
	}
	json_t *alias = json_object_get(rv, "alias");
	if (!cat && !schema && !w->f->target)
		for (const struct scope *s = w->f->scope; s; s = s->up)
			if (strcmp(s->name, rel) == 0) {
				note_alias_node(w, alias, false, &w->safe, &w->nsafe);
				return; /* a CTE, not a table */
			}
	char name[3 * 256];
	int r = snprintf(name, sizeof name, "%s%s%s%s%s", cat ? cat : "", cat ? "." : "", schema ? schema : "",
			 schema ? "." : "", rel);
	if (r < 0 || (size_t)r >= sizeof name) {
		raise_class(w, GH_SQL_FORBIDDEN, "relation name too long");
		return;
	}
	long t = add_table(w, name, w->f->target && !w->f->plan_only);
	if (t < 0)
		return;
	note_alias_node(w, alias, true, NULL, NULL);
	if (grow((void **)&w->rels, w->nrels, sizeof *w->rels, w))
		w->rels[w->nrels++] = (struct relrec){(size_t)t, str_field(alias, "aliasname"), rel, schema};
}

static void visit_set(struct walk *w, json_t *n, bool top)
{
	const char *kind = str_field(n, "kind"), *name = str_field(n, "name");
	bool reset = kind && strcmp(kind, "VAR_RESET") == 0;
	if (kind && strcmp(kind, "VAR_RESET_ALL") == 0) {
		/* ALTER FUNCTION ... RESET ALL only clears the function's own settings */
		if (top)
			raise_class(w, GH_SQL_FORBIDDEN, "RESET ALL is not allowed");
		return;
	}
	if (!kind || (strcmp(kind, "VAR_SET_MULTI") != 0 && protected_setting(name))) {
		if (name && strcasecmp(name, "role") == 0)
			raise_class(w, GH_SQL_FORBIDDEN, "%s ROLE is not allowed", reset ? "RESET" : "SET");
		else if (name && strcasecmp(name, "session_authorization") == 0)
			raise_class(w, GH_SQL_FORBIDDEN, "%s SESSION AUTHORIZATION is not allowed", reset ? "RESET" : "SET");
		else
			raise_class(w, GH_SQL_FORBIDDEN, "%s of %.64s is not allowed", reset ? "RESET" : "SET",
				    name ? name : "an unnamed setting");
		return;
	}
	raise_class(w, GH_SQL_SESSION, NULL);
	if (name && strcasecmp(name, "search_path") == 0)
		w->a->sets_search_path = true;
	if (top) {
		w->st->session = reset ? GH_SESSION_RESET : GH_SESSION_SET;
		/* SET TRANSACTION ... lasts for the transaction, like SET LOCAL */
		w->st->set_local = !reset && (json_is_true(json_object_get(n, "is_local")) ||
					      (name && strncmp(name, "TRANSACTION", 11) == 0));
	}
}

static void visit_transaction(struct walk *w, json_t *n, bool top)
{
	const char *kind = str_field(n, "kind");
	enum gh_sql_session s = GH_SESSION_NONE;
	if (!kind) {
		raise_class(w, GH_SQL_FORBIDDEN, "transaction statement of no kind");
		return;
	}
	if (strcmp(kind, "TRANS_STMT_BEGIN") == 0 || strcmp(kind, "TRANS_STMT_START") == 0)
		s = GH_SESSION_BEGIN;
	else if (strcmp(kind, "TRANS_STMT_COMMIT") == 0)
		s = GH_SESSION_COMMIT;
	else if (strcmp(kind, "TRANS_STMT_ROLLBACK") == 0)
		s = GH_SESSION_ROLLBACK;
	else if (strcmp(kind, "TRANS_STMT_SAVEPOINT") == 0 || strcmp(kind, "TRANS_STMT_RELEASE") == 0 ||
		 strcmp(kind, "TRANS_STMT_ROLLBACK_TO") == 0)
		s = GH_SESSION_SAVEPOINT;
	if (s == GH_SESSION_NONE) {
		raise_class(w, GH_SQL_FORBIDDEN, "PREPARE TRANSACTION / COMMIT PREPARED / ROLLBACK PREPARED is not allowed");
		return;
	}
	raise_class(w, GH_SQL_SESSION, NULL);
	if (!top)
		return;
	w->st->session = s;
	if (s == GH_SESSION_BEGIN) {
		size_t i;
		json_t *opt;
		json_array_foreach(json_object_get(n, "options"), i, opt) {
			json_t *d = json_object_get(opt, "DefElem");
			if (!str_is(d, "defname", "transaction_read_only"))
				continue;
			json_t *v = json_object_get(json_object_get(json_object_get(d, "arg"), "A_Const"), "ival");
			w->st->begin_read_only = json_integer_value(json_object_get(v, "ival")) != 0;
		}
	}
}

/* Nodes whose effect depends on their fields. */
static void visit_special(struct walk *w, const char *type, json_t *n, bool top)
{
	char what[64];
	if (strcmp(type, "FuncCall") == 0) {
		visit_funccall(w, n);
	} else if (strcmp(type, "RangeVar") == 0) {
		visit_rangevar(w, n);
	} else if (strcmp(type, "ParamRef") == 0) {
		json_int_t k = json_integer_value(json_object_get(n, "number"));
		if (k > w->a->nparams)
			w->a->nparams = k > INT_MAX ? INT_MAX : (int)k;
	} else if (strcmp(type, "CopyStmt") == 0) {
		w->a->copy = true;
		if (json_is_true(json_object_get(n, "is_program")))
			raise_class(w, GH_SQL_FORBIDDEN, "COPY ... PROGRAM is not allowed");
		else if (json_object_get(n, "filename"))
			raise_class(w, GH_SQL_FORBIDDEN, "COPY with a server file name is not allowed");
		else
			raise_class(w, json_is_true(json_object_get(n, "is_from")) ? GH_SQL_WRITE : GH_SQL_READ, NULL);
	} else if (strcmp(type, "ExplainStmt") == 0) {
		raise_class(w, GH_SQL_READ, NULL); /* the inner statement is walked below */
	} else if (strcmp(type, "VariableSetStmt") == 0) {
		visit_set(w, n, top);
	} else if (strcmp(type, "VariableShowStmt") == 0) {
		raise_class(w, GH_SQL_SESSION, NULL);
		if (top)
			w->st->session = GH_SESSION_SHOW;
	} else if (strcmp(type, "TransactionStmt") == 0) {
		visit_transaction(w, n, top);
	} else if (strcmp(type, "DropStmt") == 0) {
		words(str_field(n, "removeType"), "OBJECT_", what, sizeof what);
		raise_class(w, GH_SQL_DESTRUCTIVE, "DROP %s is destructive", what);
	} else if (strcmp(type, "AlterTableStmt") == 0) {
		if (str_is(n, "objtype", "OBJECT_FOREIGN_TABLE"))
			raise_class(w, GH_SQL_FORBIDDEN, "ALTER FOREIGN TABLE is not allowed");
		else
			raise_class(w, GH_SQL_DDL, NULL);
	} else if (strcmp(type, "AlterTableCmd") == 0) {
		const char *sub = str_field(n, "subtype");
		if (!sub) {
			raise_class(w, GH_SQL_FORBIDDEN, "ALTER TABLE command of no kind");
		} else if (strncmp(sub, "AT_Drop", 7) == 0) {
			words(sub, "AT_", what, sizeof what);
			raise_class(w, GH_SQL_DESTRUCTIVE, "ALTER ... %s is destructive", what);
		} else if (strcmp(sub, "AT_ChangeOwner") == 0) {
			raise_class(w, GH_SQL_FORBIDDEN, "ALTER ... OWNER TO is not allowed");
		} else if (strcmp(sub, "AT_DisableRowSecurity") == 0 || strcmp(sub, "AT_NoForceRowSecurity") == 0 ||
			   strcmp(sub, "AT_EnableRowSecurity") == 0 || strcmp(sub, "AT_ForceRowSecurity") == 0) {
			own(w); /* row-level security is the owner's decision */
		}
	} else if (strcmp(type, "AlterDomainStmt") == 0) {
		const char *sub = str_field(n, "subtype");
		if (sub && (strcmp(sub, "X") == 0 || strcmp(sub, "N") == 0))
			raise_class(w, GH_SQL_DESTRUCTIVE, "ALTER DOMAIN ... DROP %s is destructive",
				    sub[0] == 'X' ? "CONSTRAINT" : "NOT NULL");
		else
			raise_class(w, GH_SQL_DDL, NULL);
	} else if (strcmp(type, "RenameStmt") == 0) {
		alter_object(w, str_field(n, "renameType"), "RENAME");
	} else if (strcmp(type, "AlterObjectSchemaStmt") == 0) {
		alter_object(w, str_field(n, "objectType"), "SET SCHEMA");
	} else if (strcmp(type, "AlterOwnerStmt") == 0) {
		if (str_is(n, "objectType", "OBJECT_DATABASE"))
			raise_class(w, GH_SQL_DESTRUCTIVE, "ALTER DATABASE is destructive");
		else
			raise_class(w, GH_SQL_FORBIDDEN, "ALTER ... OWNER TO is not allowed");
	} else if (strcmp(type, "DefineStmt") == 0) {
		const char *kind = str_field(n, "kind");
		if (kind && (strcmp(kind, "OBJECT_AGGREGATE") == 0 || strcmp(kind, "OBJECT_OPERATOR") == 0)) {
			own(w);
		} else if (kind && strcmp(kind, "OBJECT_TYPE") == 0) {
			raise_class(w, GH_SQL_DDL, NULL);
		} else {
			words(kind, "OBJECT_", what, sizeof what);
			raise_class(w, GH_SQL_FORBIDDEN, "CREATE %s is not allowed", what);
		}
	} else if (strcmp(type, "VacuumStmt") == 0) {
		if (json_is_true(json_object_get(n, "is_vacuumcmd")))
			raise_class(w, GH_SQL_FORBIDDEN, "VACUUM is not allowed");
		else
			raise_class(w, GH_SQL_DDL, NULL); /* ANALYZE */
	} else {
		raise_class(w, GH_SQL_FORBIDDEN, "statement type %s is not supported", type);
	}
}

static bool push(struct walk *w, struct frame f)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct frame *s = realloc(w->stack, cap * sizeof *s);
		if (!s) {
			w->oom = true;
			return false;
		}
		w->stack = s;
		w->cap = cap;
	}
	w->stack[w->n++] = f;
	return true;
}

static const struct scope *add_scope(struct walk *w, const char *name, const struct scope *up)
{
	struct scope *s = malloc(sizeof *s);
	if (!s) {
		w->oom = true;
		return up;
	}
	*s = (struct scope){.name = name, .up = up, .next_alloc = w->scopes};
	w->scopes = s;
	return s;
}

/* Pushes the CTEs of a WITH clause, each with the CTE names it can see (all of them when
 * RECURSIVE, else the earlier ones), and returns the scope the statement's body sees. */
static const struct scope *push_ctes(struct walk *w, json_t *with, const struct frame *child)
{
	json_t *ctes = json_object_get(with, "ctes"), *cte;
	bool recursive = json_is_true(json_object_get(with, "recursive"));
	const struct scope *s = child->scope;
	size_t i;
	if (recursive)
		json_array_foreach(ctes, i, cte) {
			const char *name = str_field(json_object_get(cte, "CommonTableExpr"), "ctename");
			if (name)
				s = add_scope(w, name, s);
		}
	json_array_foreach(ctes, i, cte) {
		struct frame f = *child;
		f.v = cte;
		f.key = "ctes";
		f.scope = s;
		push(w, f);
		const char *name = str_field(json_object_get(cte, "CommonTableExpr"), "ctename");
		if (!recursive && name)
			s = add_scope(w, name, s);
	}
	return s;
}

static const char *typed_field(const char *parent, const char *key, json_t *v)
{
	for (size_t i = 0; i < sizeof typed_fields / sizeof *typed_fields; i++)
		if (strcmp(parent, typed_fields[i].parent) == 0 && strcmp(key, typed_fields[i].key) == 0)
			return typed_fields[i].type;
	return json_object_get(v, "relname") ? "RangeVar" : NULL;
}

static bool written_field(const char *parent, const char *key, json_t *node)
{
	if (strcmp(parent, "CopyStmt") == 0)
		return strcmp(key, "relation") == 0 && json_is_true(json_object_get(node, "is_from"));
	for (size_t i = 0; i < sizeof written_fields / sizeof *written_fields; i++)
		if (strcmp(parent, written_fields[i].parent) == 0 && strcmp(key, written_fields[i].key) == 0)
			return true;
	return false;
}

/* True when v is a Node wrapper {"Type": {fields}}: one key, a type name (field names never
 * start with a capital). */
static bool wrapper(json_t *v, const char **type, json_t **inner)
{
	void *it = json_object_iter(v);
	if (!it || json_object_size(v) != 1)
		return false;
	const char *k = json_object_iter_key(it);
	json_t *in = json_object_iter_value(it);
	if (k[0] < 'A' || k[0] > 'Z' || !json_is_object(in))
		return false;
	if (type)
		*type = k;
	if (inner)
		*inner = in;
	return true;
}

/* ---- code an owner may run: DO blocks and function bodies ----
 * An `own` grant may run code, but destructive and forbidden statements stay refused inside
 * it too. The SQL a body holds is analysed like any statement: LANGUAGE sql bodies directly,
 * PL/pgSQL through libpg_query's PL/pgSQL parser (every embedded statement and expression).
 * Dynamic SQL (EXECUTE, OPEN ... FOR EXECUTE, RETURN QUERY EXECUTE) cannot be seen before it
 * runs and is refused, as are bodies in other languages. */

#define PG_CODE_DEPTH 3
static __thread int code_depth;

/* Folds the analysis of SQL found in code into w. Returns true when sql parsed. */
static bool code_sql(struct walk *w, const char *sql, size_t len)
{
	if (code_depth >= PG_CODE_DEPTH) {
		raise_class(w, GH_SQL_FORBIDDEN, "code nests code too deeply to analyse");
		return true;
	}
	struct gh_sql_analysis *sub = NULL;
	code_depth++;
	int rc = gh_sql_analyze_pg(sql, len, &sub);
	code_depth--;
	if (rc) {
		w->oom = true;
		return true;
	}
	bool parsed = !(sub->cls == GH_SQL_FORBIDDEN && strncmp(sub->reason, "syntax error", 12) == 0);
	/* what the code touches counts as touched by the statement that holds it */
	for (size_t i = 0; parsed && i < sub->ntables && !w->oom; i++) {
		const struct gh_sql_table *st = &sub->tables[i];
		long t = add_table(w, st->name, st->written);
		if (t < 0)
			break;
		struct gh_sql_table *dt = &w->a->tables[t];
		dt->all_columns |= st->all_columns;
		if (st->read)
			dt->read = true;
		for (size_t j = 0; j < st->ncolumns && !w->oom; j++)
			add_column(w, (size_t)t, st->columns[j]);
	}
	if (parsed && sub->sets_search_path)
		w->a->sets_search_path = true;
	if (parsed && sub->cls == GH_SQL_DESTRUCTIVE)
		raise_class(w, GH_SQL_DESTRUCTIVE, "code runs a destructive statement: %s", sub->reason);
	else if (parsed && sub->cls == GH_SQL_FORBIDDEN)
		raise_class(w, GH_SQL_FORBIDDEN, "code runs a forbidden statement: %s", sub->reason);
	gh_sql_analysis_unref(sub);
	return parsed;
}

/* A PL/pgSQL expression or statement text: as it is, else as a SELECT of it (conditions such
 * as "n > 2"), else the right side of an assignment. Fails closed. */
static void code_expr(struct walk *w, const char *q)
{
	size_t n = strlen(q);
	if (code_sql(w, q, n))
		return;
	const char *asg = strstr(q, ":=");
	const char *e = asg ? asg + 2 : q;
	size_t m = strlen(e);
	char *sel = malloc(m + 8);
	if (!sel) {
		w->oom = true;
		return;
	}
	memcpy(sel, "SELECT ", 7);
	memcpy(sel + 7, e, m + 1);
	if (!code_sql(w, sel, m + 7))
		raise_class(w, GH_SQL_FORBIDDEN, "code holds an expression that cannot be analysed");
	free(sel);
}

/* Walks a PL/pgSQL parse tree (JSON) for statements, expressions and dynamic SQL. */
static void code_walk_plpgsql(struct walk *w, json_t *v, int depth)
{
	if (depth > PG_MAX_DEPTH) {
		raise_class(w, GH_SQL_FORBIDDEN, "code nests too deeply");
		return;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
			code_walk_plpgsql(w, x, depth + 1);
		return;
	}
	if (!json_is_object(v))
		return;
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x) {
		if (strcmp(k, "PLpgSQL_stmt_dynexecute") == 0 || strcmp(k, "PLpgSQL_stmt_dynfors") == 0 ||
		    strcmp(k, "dynquery") == 0) {
			raise_class(w, GH_SQL_FORBIDDEN, "code runs dynamic SQL (EXECUTE), which cannot be analysed");
			continue;
		}
		if (strcmp(k, "PLpgSQL_expr") == 0 && json_is_string(json_object_get(x, "query"))) {
			code_expr(w, json_string_value(json_object_get(x, "query")));
			continue;
		}
		code_walk_plpgsql(w, x, depth + 1);
	}
}

static void code_plpgsql_parse(struct walk *w, const char *fn);

static void code_plpgsql(struct walk *w, const char *body, bool is_do, bool top)
{
	/* The PL/pgSQL parser takes a CREATE FUNCTION: a function's own statement when it stands
	 * at the top (its return type and parameters matter), else a wrapper around the body with
	 * a dollar tag the body does not contain. */
	if (!is_do && top) {
		char *stmt = gh_strndup(w->text + w->st->offset, w->st->len);
		if (!stmt) {
			w->oom = true;
			return;
		}
		code_plpgsql_parse(w, stmt);
		free(stmt);
		return;
	}
	char tag[32];
	unsigned k = 0;
	do
		snprintf(tag, sizeof tag, "$gh%u$", k++);
	while (strstr(body, tag) && k < 1000);
	size_t n = strlen(body) + 2 * strlen(tag) + 96;
	char *fn = malloc(n);
	if (!fn) {
		w->oom = true;
		return;
	}
	snprintf(fn, n, "CREATE FUNCTION gh_code() RETURNS %s LANGUAGE plpgsql AS %s%s%s", is_do ? "void" : "record",
		 tag, body, tag);
	code_plpgsql_parse(w, fn);
	free(fn);
}

static void code_plpgsql_parse(struct walk *w, const char *fn)
{
	PgQueryPlpgsqlParseResult r = pg_query_parse_plpgsql(fn);
	if (r.error) {
		raise_class(w, GH_SQL_FORBIDDEN, "PL/pgSQL body does not parse: %.120s",
			    r.error->message ? r.error->message : "?");
	} else {
		json_error_t je;
		json_t *tree = json_loads(r.plpgsql_funcs ? r.plpgsql_funcs : "", 0, &je);
		if (!tree)
			raise_class(w, GH_SQL_FORBIDDEN, "PL/pgSQL body could not be read");
		else
			code_walk_plpgsql(w, tree, 0);
		json_decref(tree);
	}
	pg_query_free_plpgsql_parse_result(r);
}

/* DoStmt (args) and CreateFunctionStmt (options): the language and the body. */
static void visit_code(struct walk *w, const char *type, json_t *n, bool top)
{
	bool is_do = strcmp(type, "DoStmt") == 0;
	json_t *opts = json_object_get(n, is_do ? "args" : "options");
	const char *lang = NULL, *body = NULL;
	bool symbol = false;
	size_t i;
	json_t *o;
	json_array_foreach(opts, i, o) {
		json_t *d = json_object_get(o, "DefElem");
		const char *name = str_field(d, "defname");
		json_t *arg = json_object_get(d, "arg");
		if (!name)
			continue;
		if (strcmp(name, "language") == 0) {
			lang = json_string_value(json_object_get(json_object_get(arg, "String"), "sval"));
		} else if (strcmp(name, "as") == 0) {
			json_t *s1 = json_object_get(arg, "String");
			json_t *items = json_object_get(json_object_get(arg, "List"), "items");
			if (!s1 && json_array_size(items) >= 1)
				s1 = json_object_get(json_array_get(items, 0), "String");
			symbol = json_array_size(items) > 1; /* AS 'obj_file', 'link_symbol': C code */
			body = json_string_value(json_object_get(s1, "sval"));
		}
	}
	if (!lang)
		lang = is_do ? "plpgsql" : "sql";
	if (!body) {
		/* BEGIN ATOMIC ... END: the statements are in the tree and walked like any other */
		if (!json_object_get(n, "sql_body"))
			raise_class(w, GH_SQL_FORBIDDEN, "a function without a body cannot be analysed");
		return;
	}
	if (symbol || (strcasecmp(lang, "sql") != 0 && strcasecmp(lang, "plpgsql") != 0)) {
		raise_class(w, GH_SQL_FORBIDDEN, "code in language %.32s cannot be analysed", lang);
		return;
	}
	if (strcasecmp(lang, "sql") == 0) {
		if (!code_sql(w, body, strlen(body)))
			raise_class(w, GH_SQL_FORBIDDEN, "the SQL function body does not parse");
		return;
	}
	code_plpgsql(w, body, is_do, top);
}

/* Visits one node (type NULL: plain data) and pushes its fields. */
static void visit_node(struct walk *w, const struct frame *f, const char *type, json_t *n)
{
	bool top = f->depth == 0;
	if (type)
		collect_columns(w, type, n);
	if (type) {
		const struct rule *r = bsearch(type, rules, sizeof rules / sizeof *rules, sizeof *rules, rule_cmp);
		enum effect fx = r ? r->fx : FX_FORBIDDEN;
		if (!r)
			raise_class(w, GH_SQL_FORBIDDEN, "%s %s is not supported",
				    strstr(type, "Stmt") ? "statement type" : "syntax", type);
		else if (top && (fx == FX_NONE || strcmp(type, "ReturnStmt") == 0))
			raise_class(w, GH_SQL_FORBIDDEN, "statement type %s is not supported", type);
		switch (fx) {
		case FX_READ: raise_class(w, GH_SQL_READ, NULL); break;
		case FX_WRITE: raise_class(w, GH_SQL_WRITE, NULL); break;
		case FX_DDL: raise_class(w, GH_SQL_DDL, NULL); break;
		case FX_OWN:
			own(w);
			if (strcmp(type, "DoStmt") == 0 || strcmp(type, "CreateFunctionStmt") == 0)
				visit_code(w, type, n, top);
			break;
		case FX_DESTRUCTIVE: raise_class(w, GH_SQL_DESTRUCTIVE, "%s is destructive", r->what); break;
		case FX_FORBIDDEN:
			if (r)
				raise_class(w, GH_SQL_FORBIDDEN, "%s is not allowed", r->what);
			break;
		case FX_SPECIAL: visit_special(w, type, n, top); break;
		case FX_NONE: break;
		}
	}
	if (w->oom)
		return;

	struct frame child = *f;
	child.ptype = type ? type : "";
	child.depth = f->depth + 1;
	child.type = NULL;
	if (type && strcmp(type, "ExplainStmt") == 0) {
		bool analyze = false;
		size_t i;
		json_t *opt;
		/* any ANALYZE option counts, even ANALYZE false: over-classing is the safe side */
		json_array_foreach(json_object_get(n, "options"), i, opt)
			if (!str_field(json_object_get(opt, "DefElem"), "defname") ||
			    strcasecmp(str_field(json_object_get(opt, "DefElem"), "defname"), "analyze") == 0)
				analyze = true;
		child.plan_only = f->plan_only || !analyze;
	}
	size_t base = w->n;
	json_t *with = NULL;
	if (type && (strcmp(type, "SelectStmt") == 0 || strcmp(type, "InsertStmt") == 0 ||
		     strcmp(type, "UpdateStmt") == 0 || strcmp(type, "DeleteStmt") == 0 ||
		     strcmp(type, "MergeStmt") == 0) &&
	    json_is_object(with = json_object_get(n, "withClause")))
		child.scope = push_ctes(w, with, &child);
	const char *key;
	json_t *v;
	json_object_foreach(n, key, v) {
		if (!json_is_object(v) && !json_is_array(v))
			continue;
		if (v == with)
			continue; /* its CTEs are pushed already */
		struct frame c = child;
		c.v = v;
		c.key = key;
		c.target = type && written_field(type, key, n);
		if (json_is_object(v) && !wrapper(v, NULL, NULL))
			c.type = typed_field(type ? type : "", key, v);
		if (!push(w, c))
			return;
	}
	/* reverse what was pushed so that fields are visited in their order */
	for (size_t i = base, j = w->n; i + 1 < j; i++, j--) {
		struct frame t = w->stack[i];
		w->stack[i] = w->stack[j - 1];
		w->stack[j - 1] = t;
	}
}

/* Walks one statement's tree depth-first with an explicit stack (hostile nesting cannot reach
 * the C stack), leaving its class in w->cls and reasons in w->destructive / w->forbidden. */
static void walk_stmt(struct walk *w, json_t *stmt)
{
	w->n = 0;
	push(w, (struct frame){.v = stmt, .ptype = "RawStmt", .key = "stmt"});
	while (w->n && !w->oom) {
		struct frame f = w->stack[--w->n];
		w->f = &f;
		if (f.depth > PG_MAX_DEPTH) {
			raise_class(w, GH_SQL_FORBIDDEN, "statement nests too deeply");
			continue;
		}
		if (json_is_array(f.v)) {
			size_t base = w->n, i;
			json_t *el;
			json_array_foreach(f.v, i, el) {
				if (!json_is_object(el) && !json_is_array(el))
					continue;
				struct frame c = f;
				c.v = el;
				c.type = NULL;
				if (!push(w, c))
					break;
			}
			for (size_t a = base, b = w->n; a + 1 < b; a++, b--) {
				struct frame t = w->stack[a];
				w->stack[a] = w->stack[b - 1];
				w->stack[b - 1] = t;
			}
		} else if (json_is_object(f.v)) {
			const char *type;
			json_t *inner;
			if (!f.type && wrapper(f.v, &type, &inner))
				visit_node(w, &f, type, inner);
			else
				visit_node(w, &f, f.type, f.v);
		}
	}
	w->f = NULL;
}

static void forbid(struct gh_sql_analysis *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Marks the whole text forbidden with a reason. */
static void forbid(struct gh_sql_analysis *a, const char *fmt, ...)
{
	va_list ap;
	a->cls = GH_SQL_FORBIDDEN;
	va_start(ap, fmt);
	vsnprintf(a->reason, sizeof a->reason, fmt, ap);
	va_end(ap);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Sets s's span from libpg_query's location and length (0: to the end of the text), without
 * the whitespace around it. */
static void set_span(struct gh_sql_stmt *s, const char *text, size_t len, json_t *raw)
{
	json_int_t loc = json_integer_value(json_object_get(raw, "stmt_location"));
	json_int_t n = json_integer_value(json_object_get(raw, "stmt_len"));
	size_t off = loc > 0 && (size_t)loc <= len ? (size_t)loc : 0;
	size_t end = n > 0 && (size_t)n <= len - off ? off + (size_t)n : len;
	while (off < end && is_space(text[off]))
		off++;
	while (end > off && is_space(text[end - 1]))
		end--;
	s->offset = off;
	s->len = end - off;
}

/* Walks every statement of the parse tree into a. Returns GH_ENOMEM or 0. */
static int analyze_tree(struct gh_sql_analysis *a, const char *text, size_t len, json_t *stmts)
{
	struct walk w = {.a = a, .text = text};
	size_t nst = json_array_size(stmts), i;
	json_t *raw;
	bool destructive = false, forbidden = false;
	int rc = 0;

	a->stmts = calloc(nst, sizeof *a->stmts);
	if (!a->stmts)
		return GH_ENOMEM;
	a->nstmts = nst;
	a->cls = GH_SQL_READ;
	json_array_foreach(stmts, i, raw) {
		struct gh_sql_stmt *st = &a->stmts[i];
		w.st = st;
		w.cls = GH_SQL_READ;
		w.destructive[0] = w.forbidden[0] = '\0';
		set_span(st, text, len, raw);
		json_t *stmt = json_object_get(raw, "stmt");
		if (!json_is_object(stmt))
			raise_class(&w, GH_SQL_FORBIDDEN, "statement the analyser cannot read");
		else
			walk_stmt(&w, stmt);
		if (w.oom) {
			rc = GH_ENOMEM;
			break;
		}
		if (w.too_many)
			raise_class(&w, GH_SQL_FORBIDDEN, "statement names more than %d tables or functions",
				    GH_SQL_MAX_NAMES);
		st->cls = w.cls;
		if (st->cls != GH_SQL_SESSION) {
			st->session = GH_SESSION_NONE;
			st->set_local = st->begin_read_only = false;
		}
		if (rank(st->cls) > rank(a->cls))
			a->cls = st->cls;
		if (st->cls == GH_SQL_DESTRUCTIVE && !destructive) {
			destructive = true;
			snprintf(a->reason, sizeof a->reason, "%s", w.destructive);
		} else if (st->cls == GH_SQL_FORBIDDEN && !destructive && !forbidden) {
			forbidden = true;
			snprintf(a->reason, sizeof a->reason, "%s", w.forbidden);
		}
	}
	a->own_only = w.own_only;
	if (!rc) {
		resolve_columns(&w);
		if (w.oom)
			rc = GH_ENOMEM;
	}
	free(w.refs);
	free(w.rels);
	free(w.safe);
	free(w.joins);
	free(w.stack);
	while (w.scopes) {
		struct scope *next = w.scopes->next_alloc;
		free(w.scopes);
		w.scopes = next;
	}
	return rc;
}

/* libpg_query's two calls on one text: the parse tree, and the fingerprint when it parses. */
struct pg_call {
	const char *text;
	PgQueryParseResult pr;
	PgQueryFingerprintResult fp;
	bool fingerprinted;
	bool fp_only; /* gh_sql_fingerprint_pg: no parse tree wanted */
};

static void *pg_call_run(void *arg)
{
	struct pg_call *c = arg;
	if (c->fp_only) {
		c->fp = pg_query_fingerprint(c->text);
		c->fingerprinted = true;
		return NULL;
	}
	c->pr = pg_query_parse(c->text);
	if (!c->pr.error) {
		c->fp = pg_query_fingerprint(c->text);
		c->fingerprinted = true;
	}
	return NULL;
}

/* Runs pg_call_run with enough stack for a text of len bytes (see PG_INLINE_MAX). Returns 0, or
 * GH_ENOMEM when the helper thread cannot be made. libpg_query keeps its memory per thread and
 * frees a thread's at exit; its results are plain heap memory, freed by the caller. */
static int pg_call(struct pg_call *c, size_t len)
{
	if (len <= PG_INLINE_MAX) {
		pg_call_run(c);
		return 0;
	}
	pthread_attr_t attr;
	pthread_t t;
	size_t stack = len * PG_STACK_PER_BYTE;
	if (stack < PG_STACK_MIN)
		stack = PG_STACK_MIN;
	if (pthread_attr_init(&attr) != 0)
		return GH_ENOMEM;
	int rc = pthread_attr_setstacksize(&attr, stack);
	if (rc == 0)
		rc = pthread_create(&t, &attr, pg_call_run, c);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return GH_ENOMEM;
	pthread_join(t, NULL);
	return 0;
}

int gh_sql_analyze_pg(const char *sql, size_t len, struct gh_sql_analysis **out)
{
	struct gh_sql_analysis *a = calloc(1, sizeof *a);
	char *text = NULL;
	json_t *root = NULL;
	struct pg_call call = {0};
	bool parsed = false;
	int rc = 0;

	*out = NULL;
	if (!a)
		return GH_ENOMEM;
	a->refs = 1;
	if (len > PG_MAX_TEXT) {
		forbid(a, "statement too long");
		goto done;
	}
	if (len && memchr(sql, '\0', len)) {
		forbid(a, "statement contains a NUL byte");
		goto done;
	}
	if (!(text = malloc(len + 1))) {
		rc = GH_ENOMEM;
		goto done;
	}
	if (len)
		memcpy(text, sql, len);
	text[len] = '\0';

	call.text = text;
	if ((rc = pg_call(&call, len)) != 0)
		goto done;
	parsed = true;
	PgQueryParseResult pr = call.pr;
	if (pr.error) {
		/* the parser's own words ("syntax error at or near ..."), prefixed only when they do not
		 * already say so; the pgwire front relies on the prefix */
		const char *m = pr.error->message ? pr.error->message : "?";
		forbid(a, "%s%s at position %d", strncmp(m, "syntax error", 12) == 0 ? "" : "syntax error: ", m,
		       pr.error->cursorpos);
		goto done;
	}
	json_error_t jerr;
	root = json_loads(pr.parse_tree ? pr.parse_tree : "", 0, &jerr);
	if (!root) {
		enum json_error_code code = json_error_code(&jerr);
		if (code == json_error_out_of_memory)
			rc = GH_ENOMEM;
		else if (code == json_error_stack_overflow)
			forbid(a, "statement nests too deeply");
		else if (code == json_error_invalid_utf8)
			forbid(a, "statement is not valid UTF-8");
		else
			forbid(a, "parse tree could not be read: %s", jerr.text);
		goto done;
	}
	json_t *stmts = json_object_get(root, "stmts");
	if (!json_is_array(stmts)) {
		forbid(a, "parse tree could not be read");
		goto done;
	}
	if (json_array_size(stmts) == 0) {
		forbid(a, "empty statement");
		goto done;
	}
	if ((rc = analyze_tree(a, text, len, stmts)) != 0)
		goto done;

	if (call.fingerprinted && !call.fp.error)
		snprintf(a->fingerprint, sizeof a->fingerprint, "%016" PRIx64, call.fp.fingerprint);
done:
	json_decref(root);
	if (parsed)
		pg_query_free_parse_result(call.pr);
	if (call.fingerprinted)
		pg_query_free_fingerprint_result(call.fp);
	free(text);
	if (rc) {
		gh_sql_analysis_unref(a);
		return rc;
	}
	*out = a;
	return 0;
}

int gh_sql_fingerprint_pg(const char *sql, size_t len, char out[17])
{
	out[0] = '\0';
	if (len > PG_MAX_TEXT || (len && memchr(sql, '\0', len)))
		return GH_EINVAL;
	char *text = gh_strndup(sql, len);
	if (!text)
		return GH_ENOMEM;
	struct pg_call call = {.text = text, .fp_only = true};
	int rc = pg_call(&call, len);
	if (rc == 0) {
		if (call.fp.error)
			rc = GH_EINVAL;
		else
			snprintf(out, 17, "%016" PRIx64, call.fp.fingerprint);
		pg_query_free_fingerprint_result(call.fp);
	}
	free(text);
	return rc;
}
