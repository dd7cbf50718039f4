// GraphQL request bodies, graphql() and gql()
const { graphql, buildSchema } = require('graphql');
const gql = require('graphql-tag');
const schema = buildSchema('type Query { user(id: ID!): String }');

async function user(id, name) {
  await fetch('/graphql', { method: 'POST', body: JSON.stringify({ query: `{ user(id: "${id}") { name } }` }) }); // expect: graphql-injection
  await fetch('/graphql', { method: 'POST', body: JSON.stringify({ query: 'query { user(id: "' + id + '") }' }) }); // expect: graphql-injection
  await graphql({ schema, source: `{ user(id: "${id}") }` }); // expect: graphql-injection
  await graphql(schema, '{ user(id: "' + id + '") }'); // expect: graphql-injection
  const doc = gql(`query { user(name: "${name}") { id } }`); // expect: graphql-injection
  // safe: variables
  await fetch('/graphql', { method: 'POST', body: JSON.stringify({ query: 'query($id: ID!) { user(id: $id) }', variables: { id } }) });
  await graphql({ schema, source: 'query($id: ID!) { user(id: $id) }', variableValues: { id } });
  const safe = gql`query($id: ID!) { user(id: $id) { name } }`;
  return [doc, safe];
}

module.exports = { user };
