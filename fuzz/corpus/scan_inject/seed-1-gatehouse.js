// requests to the Gatehouse API
const axios = require('axios');

async function customers(country, id) {
  await fetch('https://gatehouse.internal/v1/query', {
    method: 'POST',
    body: JSON.stringify({ resource: 'crm', environment: 'staging', sql: "SELECT name FROM customers WHERE country = '" + country + "'" }), // expect: gatehouse-sql-injection
  });
  await axios.post('/v1/query', { resource: 'crm', environment: 'staging', sql: `SELECT * FROM customers WHERE id = ${id}` }); // expect: gatehouse-sql-injection
  // safe: params
  await axios.post('/v1/query', { resource: 'crm', environment: 'staging', sql: 'SELECT * FROM customers WHERE id = $1', params: [id] });
}

module.exports = { customers };
