"""The one definition of how detections are filtered and ordered, shared by the history page, the
API list and the CSV export (django-filter). The selectors apply it to the user's own rows."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.db.models import F, QuerySet
from django.db.models.expressions import OrderBy
from django.db.models.lookups import IsNull
from django.utils import timezone
from django_filters.constants import EMPTY_VALUES

from detection.models import Detection

# What people and API clients may order by, with the tie-breakers that make pages stable, and
# how the history page names each one. An index of Detection (Meta.indexes) serves each, read
# forwards or backwards, so a page never sorts the user's whole history.
# Rows without a probability (not done yet, or no face found) come last both ways: PostgreSQL
# would put them first in descending order, above the most likely fakes. Written as "IS NULL
# first", not NULLS LAST, so that one index serves the order on SQLite and PostgreSQL alike
# (SQLite cannot index NULLS LAST).
_NO_PROBABILITY_LAST = IsNull(F("fake_probability"), True).asc()
ORDERINGS: dict[str, tuple[tuple[str | OrderBy, ...], str]] = {
    "-created_at": (("-created_at", "-id"), "Newest first"),
    "created_at": (("created_at", "id"), "Oldest first"),
    "-fake_probability": (
        (_NO_PROBABILITY_LAST, F("fake_probability").desc(), "-created_at", "-id"),
        "Most likely fake first",
    ),
    "fake_probability": (
        (_NO_PROBABILITY_LAST, F("fake_probability").asc(), "-created_at", "-id"),
        "Most likely real first",
    ),
    "original_name": (("original_name", "-created_at", "-id"), "File name A–Z"),
    "-original_name": (("-original_name", "-created_at", "-id"), "File name Z–A"),
}
DEFAULT_ORDERING = "-created_at"
SEARCH_MAX_LENGTH = 100


def detection_order(queryset: QuerySet[Detection], ordering: str = DEFAULT_ORDERING):
    fields, _label = ORDERINGS.get(ordering) or ORDERINGS[DEFAULT_ORDERING]
    return queryset.order_by(*fields)


class StrictDateField(forms.DateField):
    """A YYYY-MM-DD day: absent means no bound, but present and blank is refused.

    The API documents these parameters as dates, so `?created_after=` is an error there; the
    history page drops the blank fields its form sends before binding (``page_data``).
    """

    def to_python(self, value):
        if value == "":
            raise forms.ValidationError("Enter a date as YYYY-MM-DD.", code="invalid")
        return super().to_python(value)


class StrictDateFilter(django_filters.DateFilter):
    field_class = StrictDateField


class DayBoundFilter(StrictDateFilter):
    """Rows created on or after (`lookup_expr="gte"`) or on or before (`"lte"`) a day of the
    current time zone, as a range of the datetime itself: `created_at__date__gte` would cast
    every row's datetime to a date, which no index can serve."""

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        if self.lookup_expr == "gte":
            return qs.filter(**{f"{self.field_name}__gte": _day_start(value)})
        if value == dt.date.max:
            return qs
        return qs.filter(**{f"{self.field_name}__lt": _day_start(value + dt.timedelta(days=1))})


def _day_start(day: dt.date) -> dt.datetime:
    # Midnight in the current time zone (where a zone skips midnight, the day's first instant).
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class SearchField(forms.CharField):
    """Free text matched against file names, without surrounding spaces (CharField strips). NUL
    characters are dropped rather than refused: no stored name has one
    (detection.uploads.filename_sanitize)."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\x00", "") if isinstance(value, str) else value


class SearchFilter(django_filters.CharFilter):
    field_class = SearchField


class DetectionFilterSet(django_filters.FilterSet):
    search = SearchFilter(
        field_name="original_name",
        lookup_expr="icontains",
        max_length=SEARCH_MAX_LENGTH,
        label="File name",
        help_text="Part of the original file name.",
    )
    label = django_filters.ChoiceFilter(
        choices=Detection.Label.choices, empty_label="Any verdict", label="Verdict"
    )
    status = django_filters.ChoiceFilter(
        choices=Detection.Status.choices, empty_label="Any status", label="Status"
    )
    # images, videos, private checks, or all (blank).
    kind = django_filters.ChoiceFilter(
        choices=Detection.Kind.choices, empty_label="Any type", label="Type"
    )
    created_after = DayBoundFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="From",
        help_text="Created on or after this day (YYYY-MM-DD).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    created_before = DayBoundFilter(
        field_name="created_at",
        lookup_expr="lte",
        label="To",
        help_text="Created on or before this day (YYYY-MM-DD).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    ordering = django_filters.ChoiceFilter(
        choices=[(key, label) for key, (_fields, label) in ORDERINGS.items()],
        method="filter_ordering",
        empty_label=None,
        label="Order",
    )

    class Meta:
        model = Detection
        fields: list[str] = []  # every filter is declared above

    def filter_queryset(self, queryset: QuerySet[Detection]) -> QuerySet[Detection]:
        return super().filter_queryset(detection_order(queryset))

    def filter_ordering(self, queryset: QuerySet[Detection], name: str, value: str):
        return detection_order(queryset, value or DEFAULT_ORDERING)

    @property
    def is_filtered(self) -> bool:
        """Whether anything but the order narrows the list (for "no matches" wording)."""
        data = getattr(self.form, "cleaned_data", {})
        return any(v for k, v in data.items() if k != "ordering")


def page_data(query: object) -> dict[str, str]:
    """A page's GET parameters for the filters: blank fields (an HTML form sends every field)
    mean "any", and values that do not parse are dropped rather than shown as errors."""
    data = {k: v for k, v in query.items() if v != "" and k in DetectionFilterSet.base_filters}
    filterset = DetectionFilterSet(data=data)
    if not filterset.is_valid():
        for field in filterset.errors:
            data.pop(field, None)
    return data
