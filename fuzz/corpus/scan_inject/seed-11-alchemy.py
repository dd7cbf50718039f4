# SQLAlchemy: session.execute(text(...)) and Django raw()
from sqlalchemy import text
from sqlalchemy.orm import Session
from myapp.models import Person


def people(session: Session, name: str, pk: int):
    session.execute(text(f"SELECT * FROM people WHERE name = '{name}'"))  # expect: sql-injection
    stmt = text("SELECT * FROM people WHERE id = " + str(pk))
    session.execute(stmt)  # expect: sql-injection
    Person.objects.raw(f"SELECT * FROM myapp_person WHERE last_name = '{name}'")  # expect: sql-injection
    # safe
    session.execute(text("SELECT * FROM people WHERE name = :name"), {"name": name})
    Person.objects.raw("SELECT * FROM myapp_person WHERE last_name = %s", [name])
    session.execute(text("SELECT count(*) FROM people"))
