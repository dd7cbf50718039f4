/* fuzz: SQLite statement analysis (sql). One in-memory database, opened once and configured as
 * the connector configures resources (DEFENSIVE on, extension loading off, untrusted schema),
 * with tables, an index, a view and a trigger so that statements can name real objects. Each
 * input is analysed as one statement; nothing is executed, so the database never changes. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"

static sqlite3 *db;

static const char schema[] =
	"CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL);"
	"CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),"
	"  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0), status TEXT NOT NULL);"
	"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
	"CREATE TABLE audit_log (id INTEGER PRIMARY KEY, what TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP);"
	"CREATE INDEX invoices_by_customer ON invoices(customer_id);"
	"CREATE VIEW open_invoices AS SELECT i.id, c.name, i.amount_cents FROM invoices i"
	"  JOIN customers c ON c.id = i.customer_id WHERE i.status <> 'paid';"
	"CREATE TRIGGER invoices_audit AFTER UPDATE ON invoices BEGIN"
	"  INSERT INTO audit_log(what) VALUES ('invoice ' || new.id || ' ' || new.status); END;"
	"INSERT INTO customers VALUES (1, 'Nordlicht GmbH', 'gold'), (2, 'Cafe Ole', 'silver');"
	"INSERT INTO invoices VALUES (1, 1, 125000, 'paid'), (2, 2, 1900, 'sent');";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *msg = NULL;
	(void)argc;
	(void)argv;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		abort();
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, NULL);
	if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "fuzz_sql: schema: %s\n", msg ? msg : "?");
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_sql_analysis *a = NULL;
	if (gh_sql_analyze_sqlite(db, (const char *)data, size, &a) != 0)
		return 0; /* out of memory: nothing to check */
	if (!a || a->refs != 1)
		abort();
	switch (a->cls) {
	case GH_SQL_READ:
	case GH_SQL_WRITE:
	case GH_SQL_DDL:
		break;
	case GH_SQL_DESTRUCTIVE:
	case GH_SQL_FORBIDDEN:
		if (!a->reason[0]) {
			fprintf(stderr, "fuzz_sql: class %s without a reason\n", gh_sql_class_name(a->cls));
			abort();
		}
		break;
	default:
		fprintf(stderr, "fuzz_sql: class %d is not a gh_sql_class\n", (int)a->cls);
		abort();
	}
	if (!memchr(a->reason, 0, sizeof a->reason) || a->ntables > GH_SQL_MAX_NAMES ||
	    a->nfunctions > GH_SQL_MAX_NAMES || a->nparams < 0)
		abort();
	for (size_t i = 0; i < a->ntables; i++) {
		const struct gh_sql_table *t = &a->tables[i];
		if (!t->name || (!t->read && !t->written) || t->ncolumns > GH_SQL_MAX_NAMES || (t->ncolumns && !t->columns))
			abort();
		for (size_t j = 0; j < t->ncolumns; j++)
			if (!t->columns[j])
				abort();
	}
	for (size_t i = 0; i < a->nfunctions; i++)
		if (!a->functions[i])
			abort();
	gh_sql_analysis_unref(a);
	return 0;
}
