from simple_salesforce import Salesforce, format_soql

sf = Salesforce(username="u", password="p", security_token="t")


def accounts(name, account_id):
    sf.query(f"SELECT Id, Name FROM Account WHERE Name = '{name}'")  # expect: soql-injection
    sf.query_all("SELECT Id FROM Contact WHERE AccountId = '%s'" % account_id)  # expect: soql-injection
    sf.query(format_soql("SELECT Id, Name FROM Account WHERE Name = {}", name))
    sf.query("SELECT Id FROM Account LIMIT 10")
