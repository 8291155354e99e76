"""Assertions and database reads shared by the reliability tests."""
from background.models import Job
from models import Product, db


def assert_error(response, code: int) -> None:
    """Assert the one JSON error shape, with this status."""
    assert response.status_code == code, response.get_data()[:300]
    assert response.mimetype == "application/json"
    assert response.json["code"] == code
    assert isinstance(response.json["message"], str) and response.json["message"]
    assert "Traceback" not in response.get_data(as_text=True)


def stored(app) -> tuple[list[tuple], int]:
    """Return the stored products, and the number of jobs."""
    with app.app_context():
        products = db.session.execute(db.select(Product).order_by(Product.id)).scalars()
        jobs = db.session.execute(db.select(db.func.count(Job.id))).scalar_one()
        return [(p.id, p.name, p.description) for p in products], jobs
