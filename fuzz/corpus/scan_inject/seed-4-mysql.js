const mysql = require('mysql2/promise');

async function find(conn, email, limit) {
  const [rows] = await conn.execute("SELECT id FROM accounts WHERE email = '" + email + "'"); // expect: sql-injection
  await conn.query(`UPDATE accounts SET seen = NOW() WHERE email = '${email}'`); // expect: sql-injection
  await conn.query("SELECT * FROM accounts LIMIT " + limit); // expect: sql-injection
  // safe
  await conn.execute('SELECT id FROM accounts WHERE email = ?', [email]);
  await conn.query('SELECT * FROM accounts LIMIT ?', [limit]);
  return rows;
}

module.exports = { find };
