/* cli: the gatehouse command's verbs. Each returns the process exit status:
 * 0 ok, 1 denied / failed check / failure, 2 usage or input error. */
#ifndef GH_CLI_H
#define GH_CLI_H

int gh_cli_init(int argc, char **argv);
int gh_cli_apply(int argc, char **argv);
int gh_cli_export(int argc, char **argv);
int gh_cli_token(int argc, char **argv);
int gh_cli_serve(int argc, char **argv);
int gh_cli_audit(int argc, char **argv);
int gh_cli_secret(int argc, char **argv);
int gh_cli_scan(int argc, char **argv);
int gh_cli_run(int argc, char **argv);
int gh_cli_query(int argc, char **argv);
int gh_cli_approvals(int argc, char **argv);
int gh_cli_backup(int argc, char **argv);
int gh_cli_readiness(int argc, char **argv);
int gh_cli_restore(int argc, char **argv);
int gh_cli_admin(int argc, char **argv);
int gh_cli_schema(int argc, char **argv);
int gh_cli_usage(int argc, char **argv);
int gh_cli_help(int argc, char **argv);

#endif
