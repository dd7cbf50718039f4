// TypeScript: types around the same sinks
import { Pool, PoolClient } from 'pg';
import { PrismaClient, Prisma } from '@prisma/client';

const pool = new Pool();
const prisma = new PrismaClient();

interface Filter { status: string; limit: number }

export async function list(client: PoolClient, f: Filter, id: string): Promise<unknown> {
  await client.query(`SELECT * FROM jobs WHERE status = '${f.status}'`); // expect: sql-injection
  await pool.query(('SELECT * FROM jobs LIMIT ' + f.limit) as string); // expect: sql-injection
  const q: string = `DELETE FROM jobs WHERE id = ${id!}`;
  await client.query(q); // expect: sql-injection
  const q2 = ('SELECT * FROM jobs WHERE id = ' + id) satisfies string;
  await client.query(q2!); // expect: sql-injection
  await prisma.$queryRawUnsafe<unknown[]>(`SELECT * FROM "Job" WHERE id = ${id}`); // expect: sql-injection
  await prisma.$executeRawUnsafe(`DELETE FROM "Job" WHERE status = '${f.status}'`); // expect: sql-injection
  // safe
  await client.query<{ id: string }>('SELECT * FROM jobs WHERE id = $1', [id]);
  await prisma.$queryRaw<unknown[]>`SELECT * FROM "Job" WHERE id = ${id}`;
  await prisma.$queryRaw(Prisma.sql`SELECT * FROM "Job" WHERE status = ${f.status}`);
  const c: string = 'SELECT * FROM jobs' as const;
  return client.query(c);
}
