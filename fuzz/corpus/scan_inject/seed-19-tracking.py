# values followed through local assignments
BASE = "SELECT * FROM orders WHERE "


def orders(cur, oid, status, cols):
    q = f"SELECT * FROM orders WHERE id = {oid}"
    cur.execute(q)  # expect: sql-injection
    q2 = "SELECT * FROM orders WHERE 1 = 1"
    q2 += " AND status = '%s'" % status
    cur.execute(q2)  # expect: sql-injection
    where = "status = '{}'".format(status)
    cur.execute(BASE + where)  # expect: sql-injection
    fields = ", ".join(cols)
    cur.execute("SELECT " + fields + " FROM orders")  # expect: sql-injection
    q3 = f"SELECT * FROM orders WHERE status = '{status}'" if status else "SELECT * FROM orders"
    cur.execute(q3)  # expect: sql-injection
    # safe
    c1 = "SELECT * FROM orders"
    c2 = c1 + " ORDER BY id"
    cur.execute(c2)
    cur.execute(BASE + "id = %s", (oid,))
    r = f"SELECT * FROM orders WHERE id = {oid}"
    r = "SELECT * FROM orders"
    cur.execute(r)
    cur.execute(status)


def other(cur):
    return cur.execute(q)
