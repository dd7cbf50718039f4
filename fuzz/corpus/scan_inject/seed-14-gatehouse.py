import requests


def customers(country, cid):
    requests.post("https://gatehouse/v1/query", json={"resource": "crm", "environment": "staging", "sql": f"SELECT * FROM customers WHERE country = '{country}'"})  # expect: gatehouse-sql-injection
    body = {"resource": "crm", "environment": "staging", "sql": "SELECT * FROM customers WHERE id = " + str(cid)}  # expect: gatehouse-sql-injection
    requests.post("https://gatehouse/v1/query", json=body)
    requests.post("https://gatehouse/v1/query", json={"resource": "crm", "environment": "staging", "sql": "SELECT * FROM customers WHERE id = $1", "params": [cid]})
