// MongoDB: $where and $expr with strings are server-side JavaScript
async function find(users, name, age) {
  await users.find({ $where: "this.name == '" + name + "'" }); // expect: nosql-injection
  await users.find({ $where: `this.age > ${age}` }); // expect: nosql-injection
  await users.find({ $expr: { $function: { body: 'function(n) { return n == "' + name + '" }', args: ['$name'], lang: 'js' } } }); // expect: nosql-injection
  await users.find({ $expr: 'this.name == "' + name + '"' }); // expect: nosql-injection
  // safe: operators with values
  await users.find({ name: { $eq: name } });
  await users.find({ $expr: { $gt: ['$age', age] } });
  await users.find({ $where: 'this.active == true' });
}

module.exports = { find };
