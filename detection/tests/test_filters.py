"""The one filter definition (detection.filters), as the page, the API and the export use it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.http import QueryDict
from django.utils import timezone

from detection import selectors
from detection.filters import ORDERINGS, DetectionFilterSet, page_data
from detection.tests.factories import DetectionFactory

pytestmark = pytest.mark.django_db


def _ids(user, data) -> list[int]:
    filters = DetectionFilterSet(data=data)
    assert filters.is_valid(), filters.errors
    return [d.id for d in selectors.detection_list(user=user, filters=filters)]


def test_every_filter_narrows_the_list(user):
    fake = DetectionFactory(owner=user, done=True, original_name="Holiday.JPG")
    real = DetectionFactory(owner=user, done=True, label="real", fake_probability=0.1)
    pending = DetectionFactory(owner=user, created_at=timezone.now() - dt.timedelta(days=3))
    today = timezone.localdate().isoformat()
    assert _ids(user, {"label": "fake"}) == [fake.id]
    assert _ids(user, {"status": "pending"}) == [pending.id]
    assert _ids(user, {"search": "  holiday "}) == [fake.id]
    assert _ids(user, {"search": "holi\x00day"}) == [fake.id]
    assert set(_ids(user, {"created_after": today})) == {fake.id, real.id}
    assert _ids(user, {"created_before": (timezone.localdate() - dt.timedelta(days=1))}) == [
        pending.id
    ]
    # Blank choices mean "any".
    assert len(_ids(user, {"label": "", "status": ""})) == 3


def test_every_ordering_is_accepted_and_stable(user):
    a = DetectionFactory(owner=user, done=True, fake_probability=0.2, original_name="b.jpg")
    b = DetectionFactory(owner=user, done=True, fake_probability=0.9, original_name="a.jpg")
    assert _ids(user, {"ordering": "-fake_probability"}) == [b.id, a.id]
    assert _ids(user, {"ordering": "fake_probability"}) == [a.id, b.id]
    assert _ids(user, {"ordering": "original_name"}) == [b.id, a.id]
    assert _ids(user, {}) == [b.id, a.id]  # newest first
    for key in ORDERINGS:
        assert len(_ids(user, {"ordering": key})) == 2


@pytest.mark.parametrize(
    "data",
    [
        {"label": "maybe"},
        {"status": "lost"},
        {"ordering": "owner__password"},
        {"created_after": "yesterday"},
        {"created_after": ""},  # a documented date parameter given but blank
        {"search": "x" * 101},
    ],
)
def test_invalid_values_are_errors_naming_the_field(data):
    filters = DetectionFilterSet(data=data)
    assert not filters.is_valid()
    assert set(filters.errors) == set(data)


def test_page_data_drops_blank_and_invalid_values_keeps_the_rest():
    query = QueryDict(
        "label=fake&status=&created_after=&created_before=nonsense&ordering=owner__password"
        "&search=cat&page=2"
    )
    assert page_data(query) == {"label": "fake", "search": "cat"}


def test_no_face_is_a_verdict_to_filter_by(user):
    no_face = DetectionFactory(owner=user, no_face=True)
    DetectionFactory(owner=user, done=True)
    DetectionFactory(owner=user)
    assert _ids(user, {"label": "no_face"}) == [no_face.id]
    # The choices are the model's: a page, the API and the export offer every verdict.
    assert dict(DetectionFilterSet().form.fields["label"].choices)["no_face"] == "No face"


def test_rows_without_a_probability_come_last_in_both_probability_orders(user):
    # PostgreSQL puts NULL first in descending order: the no-face (and pending) rows must not
    # come above the most likely fakes.
    no_face = DetectionFactory(owner=user, no_face=True)
    fake = DetectionFactory(owner=user, done=True, fake_probability=0.9)
    real = DetectionFactory(owner=user, done=True, label="real", fake_probability=0.1)
    pending = DetectionFactory(owner=user)
    assert _ids(user, {"ordering": "-fake_probability"})[:2] == [fake.id, real.id]
    assert _ids(user, {"ordering": "fake_probability"})[:2] == [real.id, fake.id]
    for ordering in ("-fake_probability", "fake_probability"):
        assert set(_ids(user, {"ordering": ordering})[2:]) == {no_face.id, pending.id}


def test_date_bounds_are_whole_days_of_the_current_time_zone(user):
    # The bounds are ranges of created_at (which its index serves), equal to comparing the
    # local day: 23:30 and 00:30 in New York are on either side of midnight there, both on the
    # same UTC day.
    zone = zoneinfo.ZoneInfo("America/New_York")
    late = DetectionFactory(owner=user, created_at=dt.datetime(2026, 3, 7, 23, 30, tzinfo=zone))
    early = DetectionFactory(owner=user, created_at=dt.datetime(2026, 3, 8, 0, 30, tzinfo=zone))
    with timezone.override(zone):
        assert _ids(user, {"created_before": "2026-03-07"}) == [late.id]
        assert _ids(user, {"created_after": "2026-03-08"}) == [early.id]
        assert _ids(user, {"created_after": "2026-03-07", "created_before": "2026-03-08"}) == [
            early.id,
            late.id,
        ]
        assert _ids(user, {"created_before": "9999-12-31"}) == [early.id, late.id]
    with timezone.override(dt.UTC):
        assert _ids(user, {"created_after": "2026-03-08", "created_before": "2026-03-08"}) == [
            early.id,
            late.id,
        ]


def test_date_bounds_are_ranges_of_the_datetime_not_casts_to_a_date(user):
    filters = DetectionFilterSet(
        data={"created_after": "2026-03-07", "created_before": "2026-03-08"}
    )
    assert filters.is_valid()
    sql = str(selectors.detection_list(user=user, filters=filters).query)
    assert '"created_at" >= ' in sql and '"created_at" < ' in sql
    assert "CAST" not in sql.upper() and "::date" not in sql and "django_datetime" not in sql
