# syntax errors do not stop the analysis of what parses
def ok(cur, x):
    cur.execute("SELECT * FROM t WHERE x = " + x)  # expect: sql-injection


def broken(:
    return ((( [


def after(cur, y):
    cur.execute(f"SELECT * FROM t WHERE y = {y}")  # expect: sql-injection
