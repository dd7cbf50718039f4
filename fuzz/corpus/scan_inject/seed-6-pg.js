// pg (node-postgres): client.query / pool.query
const { Pool } = require('pg');
const pool = new Pool();

async function byId(client, id, name) {
  await client.query(`SELECT * FROM users WHERE id = ${id}`); // expect: sql-injection
  await client.query("SELECT * FROM users WHERE name = '" + name + "'"); // expect: sql-injection
  await pool.query('SELECT * FROM users WHERE id = '.concat(id)); // expect: sql-injection
  await pool.query(['SELECT * FROM users WHERE id =', id].join(' ')); // expect: sql-injection
  await client.query(`DELETE FROM users WHERE id = ${id} AND name = '${name}'`); // expect: sql-injection
  // safe: placeholders with a separate parameter array
  await client.query('SELECT * FROM users WHERE id = $1', [id]);
  await client.query({ text: 'SELECT * FROM users WHERE id = $1', values: [id] });
  // safe: constants, including concatenations and template literals of constants
  await client.query('SELECT * FROM users ' + 'ORDER BY id');
  await client.query(`SELECT count(*) FROM users`);
  const TABLE = 'users';
  await client.query(`SELECT * FROM ${TABLE}`);
  await client.query(['SELECT', '*', 'FROM users'].join(' '));
  // not a query: no SQL in the text
  await client.query(name + '.json');
}

module.exports = { byId };
