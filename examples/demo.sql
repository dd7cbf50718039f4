-- Demo CRM data: customers, contacts, invoices.
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  segment TEXT NOT NULL CHECK (segment IN ('enterprise', 'mid-market', 'smb')),
  country TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE contacts (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  full_name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE,
  role TEXT
);
CREATE TABLE invoices (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  number TEXT NOT NULL UNIQUE,
  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
  currency TEXT NOT NULL DEFAULT 'EUR',
  status TEXT NOT NULL CHECK (status IN ('draft', 'sent', 'paid', 'overdue')),
  issued_on TEXT NOT NULL,
  due_on TEXT NOT NULL
);
INSERT INTO customers VALUES
  (1, 'Nordlicht Logistik GmbH', 'enterprise', 'DE', '2023-02-14'),
  (2, 'Café Olé SARL', 'smb', 'FR', '2023-05-02'),
  (3, 'Brightwater Analytics Ltd', 'mid-market', 'GB', '2023-07-19'),
  (4, 'Tamarind Foods BV', 'mid-market', 'NL', '2024-01-08'),
  (5, 'Sierra Verde Energía SL', 'enterprise', 'ES', '2024-03-27'),
  (6, 'Kettle & Crumb Bakery', 'smb', 'IE', '2024-06-11');
INSERT INTO contacts VALUES
  (1, 1, 'Jonas Weber', 'j.weber@nordlicht.example', 'Head of Finance'),
  (2, 2, 'Amélie Durand', 'amelie@cafeole.example', 'Owner'),
  (3, 3, 'Priya Natarajan', 'priya.n@brightwater.example', 'CFO'),
  (4, 4, 'Sven de Vries', 'sven@tamarind.example', 'Controller'),
  (5, 5, 'Lucía Romero', 'lromero@sierraverde.example', 'Procurement'),
  (6, 6, 'Aoife Byrne', 'aoife@kettlecrumb.example', 'Owner');
INSERT INTO invoices VALUES
  (1, 1, 'INV-2024-0001', 1249000, 'EUR', 'paid', '2024-01-31', '2024-03-01'),
  (2, 2, 'INV-2024-0002', 18950, 'EUR', 'paid', '2024-02-15', '2024-03-16'),
  (3, 3, 'INV-2024-0003', 472500, 'GBP', 'sent', '2024-09-30', '2024-10-30'),
  (4, 4, 'INV-2024-0004', 86400, 'EUR', 'overdue', '2024-08-31', '2024-09-30'),
  (5, 5, 'INV-2024-0005', 2310000, 'EUR', 'sent', '2024-10-15', '2024-11-14'),
  (6, 6, 'INV-2024-0006', 7425, 'EUR', 'draft', '2024-11-01', '2024-12-01'),
  (7, 1, 'INV-2024-0007', 1249000, 'EUR', 'sent', '2024-10-31', '2024-11-30');
