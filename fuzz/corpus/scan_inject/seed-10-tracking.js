// values followed through local assignments
const db = require('./db');
const BASE = 'SELECT * FROM orders WHERE ';

async function orders(id, status, cols) {
  const q = "SELECT * FROM orders WHERE id = " + id;
  await db.query(q); // expect: sql-injection
  let q2 = 'SELECT * FROM orders WHERE 1 = 1';
  q2 += ' AND status = \'' + status + '\'';
  await db.query(q2); // expect: sql-injection
  const where = `status = '${status}'`;
  const q3 = BASE + where;
  await db.query(q3); // expect: sql-injection
  const fields = cols.join(', ');
  await db.query('SELECT ' + fields + ' FROM orders'); // expect: sql-injection
  const q4 = status ? `SELECT * FROM orders WHERE status = '${status}'` : 'SELECT * FROM orders';
  await db.query(q4); // expect: sql-injection
  // safe: constants through assignments
  const c1 = 'SELECT * FROM orders';
  const c2 = c1 + ' ORDER BY id';
  await db.query(c2);
  await db.query(BASE + 'id = $1', [id]);
  let c3 = 'SELECT id FROM orders';
  c3 += ' LIMIT 10';
  await db.query(c3);
  // reassigned to a constant before use
  let r = 'SELECT * FROM orders WHERE id = ' + id;
  r = 'SELECT * FROM orders';
  await db.query(r);
  // a parameter we know nothing about is not reported
  await db.query(status);
}

function other(id) {
  // q in another function is not this q
  return db.query(q);
}

module.exports = { orders, other };
