// Gatehouse API requests from JavaScript
const axios = require('axios');

async function calls(id) {
  await axios.post('/v1/query', { resource: 'crm', environment: 'staging', sql: 'SELECT 1' });
  await axios.post('/v1/query', { resource: 'crm', environment: 'production', sql: 'SELECT 1' }); // expect: resource-no-edit
  await axios.post('/v1/query', { resource: 'crm', environment: 'qa', sql: 'SELECT 1' }); // expect: resource-unknown
  await axios.post('/v1/query', { resource: 'nope', environment: 'staging', sql: 'SELECT 1' }); // expect: resource-unknown
  await fetch('/v1/query', { method: 'POST', body: JSON.stringify({ environment: "staging", resource: "billing", sql: 'SELECT 1' }) }); // expect: resource-no-edit
  // not checkable: names from variables
  await axios.post('/v1/query', { resource: id, environment: 'staging', sql: 'SELECT 1' });
  const url = 'postgres://bob@gatehouse.internal:6432/crm.qa?sslmode=require'; // expect: resource-unknown
  return url;
}

module.exports = { calls };
