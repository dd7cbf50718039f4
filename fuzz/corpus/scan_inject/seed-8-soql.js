// Salesforce SOQL through jsforce
const jsforce = require('jsforce');
const conn = new jsforce.Connection({});

async function accounts(name, id) {
  await conn.query(`SELECT Id, Name FROM Account WHERE Name = '${name}'`); // expect: soql-injection
  await conn.queryAll("SELECT Id FROM Contact WHERE AccountId = '" + id + "'"); // expect: soql-injection
  // safe
  await conn.query('SELECT Id, Name FROM Account LIMIT 10');
  await conn.sobject('Account').find({ Name: name }, ['Id']);
}

module.exports = { accounts };
