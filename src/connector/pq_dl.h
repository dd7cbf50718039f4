/* connector: libpq, loaded when the first PostgreSQL resource is opened rather than at start-up.
 * libpq drags in Kerberos, LDAP and their relatives: linking it made every gatehouse command,
 * `gatehouse run` included, pay ~5 ms of dynamic loading before main. Include this after
 * <libpq-fe.h> (connector.h does): the PQ* names below then call through gh_pq, which
 * gh_pq_load fills. Calling a PQ* function before gh_pq_load succeeded is a bug. */
#ifndef GH_CONNECTOR_PQ_DL_H
#define GH_CONNECTOR_PQ_DL_H

#include <libpq-fe.h>

#include "core/core.h"

#define GH_PQ_FUNCS(X)                                                                                        \
	X(PQcancel) X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectdbParams) X(PQdescribePrepared)       \
	X(PQenterPipelineMode) X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQexitPipelineMode) X(PQfformat) \
	X(PQfinish) X(PQfmod) X(PQfname) X(PQfreeCancel) X(PQfreemem) X(PQfsize) X(PQftable) X(PQftablecol)   \
	X(PQftype) X(PQgetCancel) X(PQgetCopyData) X(PQgetResult) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) \
	X(PQnfields) X(PQnparams) X(PQntuples) X(PQparamtype) X(PQpipelineStatus) X(PQpipelineSync) X(PQprepare)           \
	X(PQputCopyEnd) X(PQresultErrorField) X(PQresultStatus) X(PQsendQueryParams) X(PQsetSingleRowMode)     \
	X(PQsetNoticeProcessor) X(PQstatus) X(PQtransactionStatus)

struct gh_pq_api {
#define GH_PQ_MEMBER(f) __typeof__(&f) f;
	GH_PQ_FUNCS(GH_PQ_MEMBER)
#undef GH_PQ_MEMBER
};
extern struct gh_pq_api gh_pq;

/* Loads libpq once (thread-safe). 0, or GH_EUNAVAILABLE-style error with the reason. */
int gh_pq_load(struct gh_error *err);

/* the loader defines GH_PQ_DL_LOADER: it names the real functions */
#ifndef GH_PQ_DL_LOADER
#define PQcancel gh_pq.PQcancel
#define PQclear gh_pq.PQclear
#define PQcmdStatus gh_pq.PQcmdStatus
#define PQcmdTuples gh_pq.PQcmdTuples
#define PQconnectdbParams gh_pq.PQconnectdbParams
#define PQdescribePrepared gh_pq.PQdescribePrepared
#define PQenterPipelineMode gh_pq.PQenterPipelineMode
#define PQerrorMessage gh_pq.PQerrorMessage
#define PQexec gh_pq.PQexec
#define PQexecParams gh_pq.PQexecParams
#define PQexitPipelineMode gh_pq.PQexitPipelineMode
#define PQfformat gh_pq.PQfformat
#define PQfinish gh_pq.PQfinish
#define PQfmod gh_pq.PQfmod
#define PQfname gh_pq.PQfname
#define PQfreeCancel gh_pq.PQfreeCancel
#define PQfreemem gh_pq.PQfreemem
#define PQfsize gh_pq.PQfsize
#define PQftable gh_pq.PQftable
#define PQftablecol gh_pq.PQftablecol
#define PQftype gh_pq.PQftype
#define PQgetCancel gh_pq.PQgetCancel
#define PQgetCopyData gh_pq.PQgetCopyData
#define PQgetResult gh_pq.PQgetResult
#define PQgetisnull gh_pq.PQgetisnull
#define PQgetlength gh_pq.PQgetlength
#define PQgetvalue gh_pq.PQgetvalue
#define PQnfields gh_pq.PQnfields
#define PQnparams gh_pq.PQnparams
#define PQntuples gh_pq.PQntuples
#define PQparamtype gh_pq.PQparamtype
#define PQpipelineStatus gh_pq.PQpipelineStatus
#define PQpipelineSync gh_pq.PQpipelineSync
#define PQprepare gh_pq.PQprepare
#define PQputCopyEnd gh_pq.PQputCopyEnd
#define PQresultErrorField gh_pq.PQresultErrorField
#define PQresultStatus gh_pq.PQresultStatus
#define PQsendQueryParams gh_pq.PQsendQueryParams
#define PQsetSingleRowMode gh_pq.PQsetSingleRowMode
#define PQsetNoticeProcessor gh_pq.PQsetNoticeProcessor
#define PQstatus gh_pq.PQstatus
#define PQtransactionStatus gh_pq.PQtransactionStatus

#endif

#endif
