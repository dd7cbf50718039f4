// Prisma, knex, Sequelize, postgres.js
const { PrismaClient, Prisma } = require('@prisma/client');
const knex = require('knex')({ client: 'pg' });
const { Sequelize } = require('sequelize');
const postgres = require('postgres');
const prisma = new PrismaClient();
const sequelize = new Sequelize('postgres://localhost/app');
const sql = postgres();

async function run(id, email, col) {
  await prisma.$queryRawUnsafe(`SELECT * FROM "User" WHERE id = ${id}`); // expect: sql-injection
  await prisma.$executeRawUnsafe('UPDATE "User" SET email = \'' + email + '\''); // expect: sql-injection
  await prisma.$queryRaw(Prisma.raw(`SELECT * FROM "User" WHERE email = '${email}'`)); // expect: sql-injection
  await knex.raw(`SELECT * FROM users WHERE id = ${id}`); // expect: sql-injection
  await sequelize.query("SELECT * FROM users WHERE email = '" + email + "'"); // expect: sql-injection
  await sql.unsafe(`SELECT * FROM users ORDER BY ${col}`); // expect: sql-injection
  // safe: tagged templates parameterise
  await prisma.$queryRaw`SELECT * FROM "User" WHERE id = ${id}`;
  await prisma.$executeRaw`UPDATE "User" SET email = ${email} WHERE id = ${id}`;
  await prisma.$queryRaw(Prisma.sql`SELECT * FROM "User" WHERE email = ${email}`);
  await sql`SELECT * FROM users WHERE id = ${id}`;
  // safe: placeholders
  await prisma.$queryRawUnsafe('SELECT * FROM "User" WHERE id = $1', id);
  await knex.raw('SELECT * FROM users WHERE id = ?', [id]);
  await sequelize.query('SELECT * FROM users WHERE email = :email', { replacements: { email } });
  await sql.unsafe('SELECT * FROM users WHERE id = $1', [id]);
}

module.exports = { run };
