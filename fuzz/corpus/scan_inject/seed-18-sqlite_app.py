import sqlite3

db = sqlite3.connect("app.db")


def notes(tag, ids):
    db.execute(f"SELECT * FROM notes WHERE tag = '{tag}'")  # expect: sql-injection
    db.executescript("DELETE FROM notes WHERE tag = '%s'" % tag)  # expect: sql-injection
    db.execute("SELECT * FROM notes WHERE tag = ?", (tag,))
    db.executemany("INSERT INTO notes (tag) VALUES (?)", [(t,) for t in ids])
