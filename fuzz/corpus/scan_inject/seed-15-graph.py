import requests
from graphql import graphql_sync, build_schema

schema = build_schema("type Query { user(id: ID!): String }")


def user(uid, name):
    requests.post("https://api/graphql", json={"query": f'{{ user(id: "{uid}") {{ name }} }}'})  # expect: graphql-injection
    graphql_sync(schema, '{ user(id: "' + uid + '") }')  # expect: graphql-injection
    requests.post("https://api/graphql", json={"query": "query { user(name: \"%s\") }" % name})  # expect: graphql-injection
    schema.execute(f"{{ user(id: {uid}) {{ name }} }}")  # expect: graphql-injection
    # safe: variables
    requests.post("https://api/graphql", json={"query": "query($id: ID!) { user(id: $id) }", "variables": {"id": uid}})
    graphql_sync(schema, "query($id: ID!) { user(id: $id) }", variable_values={"id": uid})
