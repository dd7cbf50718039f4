import { sql } from '@vercel/postgres';
import { db } from './db';

export default async function Admin({ id }: { id: string }) {
  const rows = await db.query(`SELECT * FROM admins WHERE id = ${id}`); // expect: sql-injection
  const safe = await sql`SELECT * FROM admins WHERE id = ${id}`;
  const alsoSafe = await db.query('SELECT * FROM admins WHERE id = $1', [id]);
  return <ul>{[rows, safe, alsoSafe].map((r, i) => <li key={i}>{String(r)}</li>)}</ul>;
}
