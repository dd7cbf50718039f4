// a Salesforce client named sf (no jsforce import in this file)
async function lookup(sf, name) {
  return sf.query("SELECT Id FROM Lead WHERE Email = '" + name + "'"); // expect: soql-injection
}

module.exports = { lookup };
