# Python DB-API (psycopg2, mysqlclient): cursor.execute / executemany
import psycopg2

conn = psycopg2.connect("")


def find(user_id, name, rows):
    cur = conn.cursor()
    cur.execute(f"SELECT * FROM users WHERE id = {user_id}")  # expect: sql-injection
    cur.execute("SELECT * FROM users WHERE name = '%s'" % name)  # expect: sql-injection
    cur.execute("SELECT * FROM users WHERE name = '{}'".format(name))  # expect: sql-injection
    cur.execute("SELECT * FROM users WHERE name = '" + name + "'")  # expect: sql-injection
    cur.executemany(f"INSERT INTO users (name) VALUES ('{name}')", rows)  # expect: sql-injection
    cur.execute("SELECT * FROM users WHERE id IN (" + ", ".join(rows) + ")")  # expect: sql-injection
    cur.execute("SELECT * FROM users WHERE name = %(name)s" % {"name": name})  # expect: sql-injection
    # safe: placeholders and a separate parameter tuple
    cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
    cur.execute("SELECT * FROM users WHERE name = %(name)s", {"name": name})
    cur.executemany("INSERT INTO users (name) VALUES (%s)", rows)
    # safe: constants
    cur.execute("SELECT * FROM users " "ORDER BY id")
    cur.execute("SELECT * FROM users " + "LIMIT 10")
    cur.execute(f"SELECT count(*) FROM users")
    cur.execute("SELECT * FROM %s" % "users")
    cur.execute("SELECT {} FROM users".format("id"))
    cur.execute(", ".join(["SELECT id", "name FROM users"]))
    import pandas as pd
    pd.read_sql(f"SELECT * FROM users WHERE name = '{name}'", conn)  # expect: sql-injection
    pd.read_sql("SELECT * FROM users WHERE name = %s", conn, params=(name,))
    return cur.fetchall()
