import knex from 'knex';
import Database from 'better-sqlite3';
import axios from 'axios';
import { Collection } from 'mongodb';

const k = knex({ client: 'mysql2' });
const db = new Database('app.db');

export class Reports {
  constructor(private readonly users: Collection) {}

  async byName(name: string, cols: string[]): Promise<void> {
    await k.raw(`SELECT * FROM reports WHERE owner = '${name}'`); // expect: sql-injection
    db.prepare('SELECT ' + cols.join(',') + ' FROM reports').all(); // expect: sql-injection
    db.exec(`DELETE FROM reports WHERE owner = '${name}'`); // expect: sql-injection
    await this.users.find({ $where: `this.name === '${name}'` }); // expect: nosql-injection
    await axios.post('/v1/query', { resource: 'crm', environment: 'production', sql: 'SELECT * FROM customers WHERE name = \'' + name + '\'' }); // expect: gatehouse-sql-injection
    await axios.post('/graphql', { query: `mutation { rename(name: "${name}") }` }); // expect: graphql-injection
    // safe
    await k.raw('SELECT * FROM reports WHERE owner = ?', [name]);
    db.prepare('SELECT * FROM reports WHERE owner = ?').all(name);
    await this.users.find({ name: { $eq: name } });
    await axios.post('/v1/query', { resource: 'crm', environment: 'production', sql: 'SELECT * FROM customers WHERE name = $1', params: [name] });
    await axios.post('/graphql', { query: 'mutation($n: String!) { rename(name: $n) }', variables: { n: name } });
  }
}
