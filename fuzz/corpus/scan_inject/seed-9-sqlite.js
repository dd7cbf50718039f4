// sqlite3 and better-sqlite3
const sqlite3 = require('sqlite3');
const Database = require('better-sqlite3');
const db = new sqlite3.Database(':memory:');
const bdb = new Database('app.db');

function handlers(id, tag, cb) {
  db.run("DELETE FROM notes WHERE id = " + id, cb); // expect: sql-injection
  db.all(`SELECT * FROM notes WHERE tag = '${tag}'`, cb); // expect: sql-injection
  db.get('SELECT * FROM notes WHERE id = ' + id, cb); // expect: sql-injection
  db.exec(`INSERT INTO notes(tag) VALUES ('${tag}')`); // expect: sql-injection
  bdb.prepare(`SELECT * FROM notes WHERE id = ${id}`).get(); // expect: sql-injection
  bdb.exec('DROP TABLE IF EXISTS ' + tag); // expect: sql-injection
  // safe
  db.run('DELETE FROM notes WHERE id = ?', [id], cb);
  db.all('SELECT * FROM notes WHERE tag = ?', tag, cb);
  bdb.prepare('SELECT * FROM notes WHERE id = ?').get(id);
  bdb.exec('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, tag TEXT)');
  // not SQL: ordinary maps and promises
  const m = new Map();
  m.get('user:' + id);
  Promise.all([id, tag]);
}

module.exports = { handlers };

// everyday methods named like sinks, on receivers that are not databases
async function notDb(axios, re, id) {
  await axios.get('/api/select/' + id);
  re.exec('SELECT ' + id);
  await Promise.all(['SELECT ' + id]);
}

module.exports.notDb = notDb;
