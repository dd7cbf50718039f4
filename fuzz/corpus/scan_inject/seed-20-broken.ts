// a file with syntax errors: what parses is still analysed
import { Pool } from 'pg';
const pool = new Pool();

export async function ok(id: string) {
  await pool.query('SELECT * FROM t WHERE id = ' + id); // expect: sql-injection
}

export function broken(x: = {
  let y = ((( ;
  }}}

export async function after(name: string) {
  await pool.query(`SELECT * FROM t WHERE name = '${name}'`); // expect: sql-injection
  await pool.query('SELECT * FROM t WHERE name = $1', [name]);
}
