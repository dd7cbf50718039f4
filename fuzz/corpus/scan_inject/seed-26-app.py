import requests
import gatehouse


def calls(cid, res):
    requests.post("https://gh/v1/query", json={"resource": "crm", "environment": "staging", "sql": "SELECT 1"})
    requests.post("https://gh/v1/query", json={"resource": "crm", "environment": "production", "sql": "SELECT 1"})  # expect: resource-no-edit
    requests.post("https://gh/v1/query", json={"resource": "crm", "environment": "dev", "sql": "SELECT 1"})  # expect: resource-unknown
    gatehouse.query(resource="billing", environment="staging", sql="SELECT 1")  # expect: resource-no-edit
    gatehouse.query(resource="ghost", environment="staging", sql="SELECT 1")  # expect: resource-unknown
    gatehouse.query(resource="crm", environment="staging", sql="SELECT 1")
    gatehouse.query(resource=res, environment="staging", sql="SELECT 1")
    dsn = "dbname=crm.production host=gatehouse port=6432"  # expect: resource-no-edit
    return dsn
