from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from detection import selectors
from detection.filters import DetectionFilterSet
from detection.tests.factories import DetectionBatchFactory, DetectionFactory

pytestmark = pytest.mark.django_db


def test_list_is_scoped_to_the_user(user, other_user):
    mine = DetectionFactory(owner=user)
    DetectionFactory(owner=other_user)
    assert list(selectors.detection_list(user=user)) == [mine]
    assert list(selectors.detection_list(user=AnonymousUser())) == []


def test_list_applies_a_valid_filter_set_to_the_users_rows_only(user, other_user):
    older, newer = DetectionFactory(owner=user), DetectionFactory(owner=user)
    DetectionFactory(owner=other_user)
    filters = DetectionFilterSet(data={"ordering": "created_at"})
    assert list(selectors.detection_list(user=user, filters=filters)) == [older, newer]
    assert list(selectors.detection_list(user=user)) == [newer, older]


def test_list_refuses_an_invalid_filter_set(user):
    with pytest.raises(ValueError):
        selectors.detection_list(user=user, filters=DetectionFilterSet(data={"label": "nope"}))


def test_get_is_404_for_other_users_and_missing_ids(user, other_user):
    theirs = DetectionFactory(owner=other_user)
    with pytest.raises(Http404):
        selectors.detection_get(user=user, detection_id=theirs.id)
    with pytest.raises(Http404):
        selectors.detection_get(user=user, detection_id=123456)
    with pytest.raises(Http404):
        selectors.detection_get(user=AnonymousUser(), detection_id=theirs.id)
    assert selectors.detection_get(user=other_user, detection_id=theirs.id) == theirs


def test_batch_items_are_scoped(user, other_user):
    batch = DetectionBatchFactory(owner=user)
    items = DetectionFactory.create_batch(2, owner=user, batch=batch)
    assert list(selectors.detection_batch_items(user=user, batch_id=batch.id)) == items
    with pytest.raises(Http404):
        selectors.detection_batch_items(user=other_user, batch_id=batch.id)


def test_csv_rows(user, other_user):
    DetectionFactory(owner=user, done=True, original_name="@cmd.jpg")
    DetectionFactory(owner=other_user, done=True)
    DetectionFactory(owner=user)  # pending: no label, filtered out
    filters = DetectionFilterSet(data={"label": "fake"})
    rows = list(selectors.detection_csv_rows(user=user, filters=filters))
    assert rows[0] == selectors.CSV_HEADER
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["original_name"] == "'@cmd.jpg"
    assert row["fake_probability"] == "0.8700"
    # The band the verdict was made with travels with it.
    assert (row["uncertain_low"], row["uncertain_high"]) == ("0.4000", "0.6000")
