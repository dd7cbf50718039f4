/* front: a pure codec for the PostgreSQL frontend/backend protocol 3.0, server side.
 *
 * No I/O, no globals, no allocation: parsers read a caller's byte buffer and fill caller
 * structs (and caller arrays where a message carries a list); builders append to a struct
 * gh_buf. Facts follow the PostgreSQL documentation, "Frontend/Backend Protocol", "Message
 * Formats".
 *
 * How a server uses it (one connection):
 *   1. gh_pgw_parse_startup() on the bytes received so far until it returns something other
 *      than GH_EAGAIN. SSLRequest / GSSENCRequest: answer with gh_pgw_build_ssl_answer(b, false)
 *      (one byte 'N'), drop the *used bytes and call gh_pgw_parse_startup() again for the real
 *      startup packet. CancelRequest: act on it and close. StartupMessage: authenticate.
 *   2. Then gh_pgw_parse_message() frames each typed message; switch on msg.type and call the
 *      gh_pgw_decode_*() function for that type on the frame.
 *
 * Return codes, for every parser and decoder:
 *   0           complete; *used (parsers) = bytes the packet spans, to drain from the input.
 *   GH_EAGAIN   the packet is incomplete; *used = the total number of bytes (counted from buf[0])
 *               needed before calling again can make progress (always > len). Nothing in *out
 *               is meaningful.
 *   GH_EINVAL   malformed: the connection must be refused/closed (the stream cannot be re-synced).
 *   GH_ETOOBIG  a limit was exceeded (packet size, pairs, caller capacity).
 * On GH_EINVAL / GH_ETOOBIG a short reason (never a secret, never a client-sent value other
 * than a parameter name or a number) is written to why[0..whylen) (NUL-terminated, truncated
 * to fit; why may be NULL when whylen is 0), suitable for the M field of an ErrorResponse.
 *
 * Pointers in parsed structs point into the caller's buf: they stay valid as long as those
 * bytes do (drain the input only after you are done with the message). A struct gh_str
 * decoded from a protocol String always has p[len] == '\0' (the protocol's own terminator),
 * so p is also a C string. Parameter values (struct gh_pgw_value) are NOT NUL-terminated.
 *
 * Integers on the wire are big-endian; the codec converts them.
 */
#ifndef GH_FRONT_PGWIRE_PROTO_H
#define GH_FRONT_PGWIRE_PROTO_H

#include "core/core.h"

/* Default largest packet (bytes it spans, type byte and length included) accepted from a
 * client: 1 MiB, like the HTTP body limit. A caller passing max == 0 gets this. */
#define GH_PGW_MAX_PACKET (1024 * 1024)
/* Largest startup packet whatever max says: PostgreSQL's MAX_STARTUP_PACKET_LENGTH. */
#define GH_PGW_MAX_STARTUP 10000
/* Largest control message (Describe, Close, Execute, Sync, Flush, Terminate, CopyDone) whatever
 * max says: PostgreSQL's PQ_SMALL_MESSAGE_LIMIT; lets us refuse a huge length at once. */
#define GH_PGW_MAX_SMALL 10000
/* Largest PasswordMessage whatever max says: PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH. */
#define GH_PGW_MAX_PASSWORD 65535
/* Name/value pairs in a StartupMessage; psql sends about 6. */
#define GH_PGW_MAX_STARTUP_PAIRS 64
/* Parameters per statement: counts are Int16 on the wire, read unsigned as PostgreSQL does. */
#define GH_PGW_MAX_PARAMS 65535
/* Protocol version 3.0 as sent in a StartupMessage. */
#define GH_PGW_PROTOCOL_3_0 196608u

/* ---------------------------------------------------------------------------------------
 * Startup packet (no type byte): Int32 length (counting itself), Int32 code, body.
 * ------------------------------------------------------------------------------------- */

enum gh_pgw_startup_kind {
	GH_PGW_STARTUP_MESSAGE = 1, /* protocol 3.0 StartupMessage */
	GH_PGW_SSL_REQUEST,         /* 80877103: answer 'N' (or 'S' and start TLS) */
	GH_PGW_GSSENC_REQUEST,      /* 80877104: answer 'N' */
	GH_PGW_CANCEL_REQUEST,      /* 80877102: cancel_pid and cancel_key are set */
};

/* One StartupMessage parameter. Both point into buf, NUL-terminated there. */
struct gh_pgw_pair {
	struct gh_str name, value;
};

struct gh_pgw_startup {
	enum gh_pgw_startup_kind kind;
	/* GH_PGW_STARTUP_MESSAGE only. Well-known parameters: p == NULL (len 0) when absent.
	 * user is always present and non-empty (its absence is refused). database is NULL when
	 * absent: PostgreSQL then uses the user name; that decision is the server's. */
	struct gh_str user, database, application_name, client_encoding, options;
	/* Every pair in the order sent, the well-known ones included. Names are non-empty and
	 * distinct (a repeated name is refused: two values for "user" are an ambiguity a gateway
	 * must not resolve silently). Names starting "_pq_." (protocol options) and "replication"
	 * are passed through for the server to judge. */
	struct gh_pgw_pair pairs[GH_PGW_MAX_STARTUP_PAIRS];
	size_t npairs;
	/* GH_PGW_CANCEL_REQUEST only: the process id and secret key from the client (the values
	 * we sent in BackendKeyData). Compare the key in constant time. */
	uint32_t cancel_pid, cancel_key;
};

/* Parses the first packet of a connection from buf[0..len): SSLRequest, GSSENCRequest,
 * CancelRequest or a protocol 3.0 StartupMessage. The packet may span at most
 * min(max, GH_PGW_MAX_STARTUP) bytes (max 0 = GH_PGW_MAX_PACKET).
 * Refused (GH_EINVAL): length < 8, SSL/GSS request of length != 8, cancel of length != 16,
 * a protocol version other than 3.0 (why names the version asked for), an unknown request code,
 * a string without NUL, a name without a value, bytes after the terminating empty name, a
 * repeated name, a missing or empty user. GH_ETOOBIG: length over the limit (known from the
 * first 4 bytes), more than GH_PGW_MAX_STARTUP_PAIRS pairs.
 * On success out->pairs etc. point into buf. */
int gh_pgw_parse_startup(const uint8_t *buf, size_t len, size_t max, size_t *used, struct gh_pgw_startup *out,
			 char *why, size_t whylen);

/* ---------------------------------------------------------------------------------------
 * Typed messages (client -> server): Byte1 type, Int32 length (counting itself, >= 4), body.
 * ------------------------------------------------------------------------------------- */

/* Message types a client may send. Any other type byte is refused by gh_pgw_parse_message. */
enum gh_pgw_type {
	GH_PGW_BIND = 'B',
	GH_PGW_CLOSE = 'C',
	GH_PGW_COPY_DATA = 'd',     /* recognised so the server can refuse COPY */
	GH_PGW_COPY_DONE = 'c',     /* recognised; body empty */
	GH_PGW_COPY_FAIL = 'f',     /* recognised */
	GH_PGW_DESCRIBE = 'D',
	GH_PGW_EXECUTE = 'E',
	GH_PGW_FLUSH = 'H',         /* body empty */
	GH_PGW_FUNCTION_CALL = 'F', /* recognised so the server can refuse it */
	GH_PGW_PARSE = 'P',
	GH_PGW_PASSWORD = 'p',      /* PasswordMessage (also SASL/GSS responses, by state) */
	GH_PGW_QUERY = 'Q',
	GH_PGW_SYNC = 'S',          /* body empty */
	GH_PGW_TERMINATE = 'X',     /* body empty */
};

/* One framed message. body points into buf, just after the length field. */
struct gh_pgw_msg {
	enum gh_pgw_type type;
	const uint8_t *body;
	size_t len; /* body bytes: the length field minus 4 */
};

/* Frames one typed message from buf[0..len). Refused (GH_EINVAL) as soon as the type byte is
 * not one of enum gh_pgw_type, when the length field is < 4, and when Sync, Flush, Terminate
 * or CopyDone has a non-empty body. GH_ETOOBIG when the message would span more than max bytes
 * (max 0 = GH_PGW_MAX_PACKET; GH_PGW_MAX_SMALL for control messages, GH_PGW_MAX_PASSWORD for
 * 'p', whichever is smaller) - decided from the 5-byte header, before the body arrives.
 * The body is not decoded here: call the decoder for out->type. */
int gh_pgw_parse_message(const uint8_t *buf, size_t len, size_t max, size_t *used, struct gh_pgw_msg *out,
			 char *why, size_t whylen);

/* A parameter value (Bind) or column value (DataRow). len -1 means SQL NULL (p is then NULL
 * in decoded values and ignored when building). Decoded values point into the message and
 * are NOT NUL-terminated: copy them before handing text values to libpq. */
struct gh_pgw_value {
	const char *p;
	int32_t len;
};

/* Format codes as sent (n big-endian Int16 at raw, inside the message). Each was checked to
 * be 0 (text) or 1 (binary). Read them with gh_pgw_format(). */
struct gh_pgw_formats {
	size_t n;
	const uint8_t *raw;
};

/* The format of item i under the protocol's rule: n == 0: all text (0); n == 1: that code for
 * every item; otherwise code i, or -1 when i >= n (the count does not match the items: for
 * result columns that check is the server's, who knows the column count). */
int gh_pgw_format(const struct gh_pgw_formats *f, size_t i);

/* Query 'Q': String query. sql may be empty (answer EmptyQueryResponse). */
int gh_pgw_decode_query(const struct gh_pgw_msg *m, struct gh_str *sql, char *why, size_t whylen);

/* PasswordMessage 'p': String password. The password points into the message: wipe the
 * input buffer when done if it matters. why never contains it. */
int gh_pgw_decode_password(const struct gh_pgw_msg *m, struct gh_str *password, char *why, size_t whylen);

/* Parse 'P': String statement name ("" = unnamed), String query, Int16 n, n x Int32 type OID
 * (0 = unspecified). The OIDs are copied into the caller's types[0..cap); n > cap is
 * GH_ETOOBIG. */
struct gh_pgw_parse {
	struct gh_str name, query;
	size_t ntypes;
	uint32_t *types; /* == the caller's array */
};
int gh_pgw_decode_parse(const struct gh_pgw_msg *m, struct gh_pgw_parse *out, uint32_t *types, size_t cap,
			char *why, size_t whylen);

/* Bind 'B': String portal, String statement, Int16 n param format codes, Int16 n params each
 * Int32 length (-1 = NULL) + bytes, Int16 n result format codes. The param values are stored
 * in the caller's values[0..cap) (n > cap is GH_ETOOBIG) and point into the message. Refused:
 * a param format count other than 0, 1 or the param count; a format code other than 0/1; a
 * negative length other than -1; any length past the end of the message. */
struct gh_pgw_bind {
	struct gh_str portal, statement;
	struct gh_pgw_formats param_formats;
	size_t nparams;
	struct gh_pgw_value *params; /* == the caller's array */
	struct gh_pgw_formats result_formats;
};
int gh_pgw_decode_bind(const struct gh_pgw_msg *m, struct gh_pgw_bind *out, struct gh_pgw_value *values,
		       size_t cap, char *why, size_t whylen);

/* Describe 'D' and Close 'C': Byte1 'S' (prepared statement) or 'P' (portal), String name. */
enum gh_pgw_object {
	GH_PGW_OBJ_STATEMENT = 'S',
	GH_PGW_OBJ_PORTAL = 'P',
};
struct gh_pgw_target {
	enum gh_pgw_object kind;
	struct gh_str name; /* "" = the unnamed one */
};
int gh_pgw_decode_describe(const struct gh_pgw_msg *m, struct gh_pgw_target *out, char *why, size_t whylen);
int gh_pgw_decode_close(const struct gh_pgw_msg *m, struct gh_pgw_target *out, char *why, size_t whylen);

/* Execute 'E': String portal, Int32 max rows. max_rows <= 0 means "no limit" (PostgreSQL
 * treats negative values as 0, so they are not refused). */
struct gh_pgw_execute {
	struct gh_str portal;
	int32_t max_rows;
};
int gh_pgw_decode_execute(const struct gh_pgw_msg *m, struct gh_pgw_execute *out, char *why, size_t whylen);

/* Every decoder checks m->type (GH_EINVAL if it is the wrong decoder), that each String ends
 * in a NUL inside the message, that each count fits the bytes that remain, and that no byte
 * follows the last field (trailing bytes are GH_EINVAL). */

/* ---------------------------------------------------------------------------------------
 * Builders (server -> client). Each appends one whole message to b and returns 0, or returns
 * GH_ENOMEM / GH_ETOOBIG (b's ceiling) / GH_EINVAL (bad arguments) and leaves b exactly as it
 * was (no half message). String arguments are C strings (they cannot contain NUL, which the
 * protocol forbids anyway) and must not be NULL unless said otherwise.
 * ------------------------------------------------------------------------------------- */

/* Low-level: appends type and a length placeholder; *start records where. Then append the body
 * with gh_pgw_put_*() and call gh_pgw_end(), which patches the length. On any failure the
 * caller should truncate b to its length before gh_pgw_begin (the built-in builders do). */
int gh_pgw_begin(struct gh_buf *b, char type, size_t *start);
int gh_pgw_end(struct gh_buf *b, size_t start); /* GH_ETOOBIG if the message exceeds INT32_MAX */
int gh_pgw_put_i16(struct gh_buf *b, int16_t v);
int gh_pgw_put_i32(struct gh_buf *b, int32_t v);
int gh_pgw_put_str(struct gh_buf *b, const char *z); /* appends z and its NUL */

/* The single unframed byte answering SSLRequest/GSSENCRequest: 'S' if accept, else 'N'. */
int gh_pgw_build_ssl_answer(struct gh_buf *b, bool accept);
/* 'R' AuthenticationOk (code 0) and AuthenticationCleartextPassword (code 3). */
int gh_pgw_build_auth_ok(struct gh_buf *b);
int gh_pgw_build_auth_cleartext(struct gh_buf *b);
/* 'S' ParameterStatus: name, value (server_version, client_encoding, ...). */
int gh_pgw_build_parameter_status(struct gh_buf *b, const char *name, const char *value);
/* 'K' BackendKeyData: process id and secret key (what CancelRequest will echo). */
int gh_pgw_build_backend_key_data(struct gh_buf *b, uint32_t pid, uint32_t key);
/* 'Z' ReadyForQuery: status 'I' idle, 'T' in a transaction, 'E' failed transaction; other
 * values are GH_EINVAL. */
int gh_pgw_build_ready_for_query(struct gh_buf *b, char status);

/* One column of a RowDescription. Use table_oid 0 / column 0 when not a table column. */
struct gh_pgw_field {
	const char *name;
	uint32_t table_oid;
	int16_t column;    /* attribute number */
	uint32_t type_oid;
	int16_t type_size; /* pg_type.typlen; negative = variable width */
	int32_t type_mod;  /* pg_attribute.atttypmod; -1 when none */
	int16_t format;    /* 0 text, 1 binary (else GH_EINVAL) */
};
/* 'T' RowDescription; n at most INT16_MAX (else GH_ETOOBIG). */
int gh_pgw_build_row_description(struct gh_buf *b, const struct gh_pgw_field *fields, size_t n);
/* 'D' DataRow: n values (len -1 = NULL, any other negative is GH_EINVAL); n <= INT16_MAX. */
int gh_pgw_build_data_row(struct gh_buf *b, const struct gh_pgw_value *values, size_t n);
/* 'C' CommandComplete with its tag ("SELECT 3", "INSERT 0 1"). */
int gh_pgw_build_command_complete(struct gh_buf *b, const char *tag);
/* 't' ParameterDescription: n type OIDs, n <= GH_PGW_MAX_PARAMS. */
int gh_pgw_build_parameter_description(struct gh_buf *b, const uint32_t *oids, size_t n);
/* Body-less messages: 'I' EmptyQueryResponse, '1' ParseComplete, '2' BindComplete,
 * '3' CloseComplete, 'n' NoData, 's' PortalSuspended. */
int gh_pgw_build_empty_query(struct gh_buf *b);
int gh_pgw_build_parse_complete(struct gh_buf *b);
int gh_pgw_build_bind_complete(struct gh_buf *b);
int gh_pgw_build_close_complete(struct gh_buf *b);
int gh_pgw_build_no_data(struct gh_buf *b);
int gh_pgw_build_portal_suspended(struct gh_buf *b);

/* Fields of an ErrorResponse / NoticeResponse. severity goes out as both S and V (so use the
 * English word): ERROR, FATAL or PANIC for errors; WARNING, NOTICE, DEBUG, INFO or LOG for
 * notices (another value is GH_EINVAL). sqlstate is 5 characters of [0-9A-Z] ("42501").
 * message is required; detail and hint are sent when non-NULL; position (1-based character
 * index into the query) when > 0. */
struct gh_pgw_notice {
	const char *severity;
	const char *sqlstate;
	const char *message;
	const char *detail;
	const char *hint;
	int position;
};
/* 'E' ErrorResponse and 'N' NoticeResponse: the fields above, then the terminating 0 byte. */
int gh_pgw_build_error(struct gh_buf *b, const struct gh_pgw_notice *n);
int gh_pgw_build_notice(struct gh_buf *b, const struct gh_pgw_notice *n);

#endif
