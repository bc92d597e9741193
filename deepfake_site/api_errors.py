"""One error shape for the whole REST API:

    {"detail": "what went wrong, for people", "code": "machine_code",
     "errors": [{"code": ..., "message": ..., "field": ..., "file": ...}, ...]}

``errors`` lists each problem with the query parameter or form field it is about (``field``) and,
for uploads, the file (``file``); it is empty when there is nothing more to say than ``detail``.
Every refusal goes through ``api_exception_handler`` (settings.REST_FRAMEWORK), DRF's own ones
(authentication, throttling, 404, invalid query parameters) and ours (``ApiError``) alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler as drf_exception_handler


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(
        allow_blank=True, help_text="The parameter or form field concerned; blank if none."
    )
    file = serializers.CharField(
        allow_blank=True, help_text="The uploaded file concerned; blank if none."
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = ErrorItemSerializer(many=True)


def error_item(*, code: str, message: str, field: str = "", file: str = "") -> dict[str, str]:
    return {"code": code or "invalid", "message": message, "field": field, "file": file}


class ApiError(exceptions.APIException):
    """A refusal with its status, code and items, rendered in the one error shape."""

    def __init__(
        self,
        *,
        status_code: int,
        detail: str,
        code: str,
        errors: Iterable[dict[str, str]] = (),
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.code = code
        self.errors = list(errors)


def error_items(detail: object, field: str = "") -> list[dict[str, str]]:
    """DRF's nested validation detail ({"field": ["msg"]}, lists, strings) as flat items."""
    if isinstance(detail, dict):
        return [
            item
            for key, value in detail.items()
            # A list field's errors are keyed by position: they stay the list field's.
            for item in error_items(value, _field_name(key, field))
        ]
    if isinstance(detail, list | tuple):
        return [item for value in detail for item in error_items(value, field)]
    code = str(getattr(detail, "code", "") or "invalid")
    return [error_item(code=code, message=str(detail), field=field)]


def _field_name(key: object, parent: str) -> str:
    if isinstance(key, str) and key not in ("non_field_errors", "__all__"):
        return key
    return parent


def error_body(*, detail: str, code: str, errors: Iterable[dict[str, str]] = ()) -> dict:
    return {"detail": detail, "code": code, "errors": list(errors)}


def api_exception_handler(exc: Exception, context: dict) -> object:
    # The same conversions DRF makes, done first so the code is known.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*(exc.args or ()))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args or ()))
    response = drf_exception_handler(exc, context)
    if response is None:  # not an API refusal: Django's 500 handling
        return None
    if isinstance(exc, ApiError):
        response.data = error_body(detail=str(exc.detail), code=exc.code, errors=exc.errors)
    elif isinstance(exc, exceptions.ValidationError):
        items = error_items(exc.detail)
        detail = "; ".join(
            f"{item['field']}: {item['message']}" if item["field"] else item["message"]
            for item in items
        )
        response.data = error_body(detail=detail or "Invalid input.", code="invalid", errors=items)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        if isinstance(detail, dict | list):
            items = error_items(detail)
            response.data = error_body(
                detail="; ".join(i["message"] for i in items), code=str(code), errors=items
            )
        else:
            response.data = error_body(detail=str(detail), code=str(code))
    return response
