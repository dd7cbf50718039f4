// TSX: a component that talks to the API
import React, { useState } from 'react';

type Props = { resource: string };

export function Search({ resource }: Props): JSX.Element {
  const [term, setTerm] = useState<string>('');
  async function run(): Promise<void> {
    const body = { resource: 'crm', environment: 'staging', sql: `SELECT * FROM customers WHERE name LIKE '%${term}%'` }; // expect: gatehouse-sql-injection
    await fetch('/v1/query', { method: 'POST', body: JSON.stringify(body) });
    await fetch('/graphql', { method: 'POST', body: JSON.stringify({ query: `{ search(term: "${term}") { id } }` }) }); // expect: graphql-injection
    await fetch('/v1/query', { method: 'POST', body: JSON.stringify({ resource: 'crm', environment: 'staging', sql: 'SELECT * FROM customers WHERE name LIKE $1', params: ['%' + term + '%'] }) });
  }
  return (
    <div>
      <input value={term} onChange={(e) => setTerm(e.target.value)} />
      <button onClick={() => run()}>Search {resource}</button>
    </div>
  );
}
