import requests


def customers(country, cid):
    requests.post("https://gatehouse/v1/query", json={"resource": "crm", "environment": "staging", "sql": f"SELECT * FROM customers WHERE country = '{country}'"})  # expect: gatehouse-sql-injection
    body = {"resource": "crm", "environment": "staging", "sql": "SELECT * FROM customers WHERE id = " + str(cid)}  # expect: gatehouse-sql-injection
    requests.post("https://gatehouse/v1/query", json=body)
    requests.post("https://gatehouse/v1/query", json={"resource": "crm", "environment": "staging", "sql": "SELECT * FROM customers WHERE id = $1", "params": [cid]})


def client_calls(gh, country, cid, pd, conn):
    gh.query(resource="crm", environment="staging", sql=f"SELECT * FROM customers WHERE country = '{country}'")  # expect: gatehouse-sql-injection
    gh.query(resource="crm", environment="staging", sql="SELECT * FROM customers WHERE id = $1", params=[cid])
    pd.read_sql(sql="SELECT * FROM customers WHERE id = %s", con=conn, params=(cid,))
