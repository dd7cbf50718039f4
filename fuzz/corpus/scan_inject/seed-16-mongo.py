from pymongo import MongoClient

users = MongoClient().app.users


def find(name, age):
    users.find({"$where": f"this.name == '{name}'"})  # expect: nosql-injection
    users.find({"$where": "this.age > %d" % age})  # expect: nosql-injection
    users.find({"$expr": "this.name == '" + name + "'"})  # expect: nosql-injection
    users.find({"name": {"$eq": name}})
    users.find({"$expr": {"$gt": ["$age", age]}})
