import axios from 'axios';

type Req = { resource: string; environment: string; sql: string; params?: unknown[] };

export async function run(id: number): Promise<void> {
  const ok: Req = { resource: 'crm', environment: 'staging', sql: 'SELECT * FROM t WHERE id = $1', params: [id] };
  const bad: Req = { resource: 'crm', environment: 'production', sql: 'DELETE FROM t WHERE id = $1', params: [id] }; // expect: resource-no-edit
  await axios.post('/v1/query', ok);
  await axios.post('/v1/query', bad);
}
