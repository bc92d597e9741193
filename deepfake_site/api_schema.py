"""The OpenAPI description of the errors every API operation can answer with.

drf-spectacular documents the success responses it can infer; the refusals below are made by DRF
itself (authentication, throttles, 404 from a scoped lookup, pagination) and are added to every
operation, so clients (and the schemathesis run in tests/security) see the whole contract.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse

from deepfake_site.api_errors import ErrorSerializer

_AUTH = {
    "401": OpenApiResponse(ErrorSerializer, description="No, or an invalid or revoked, token."),
    "403": OpenApiResponse(
        ErrorSerializer,
        description="Refused: for example a session-authenticated write without its CSRF token.",
    ),
    "429": OpenApiResponse(
        ErrorSerializer, description="Too many requests; retry after `Retry-After` seconds."
    ),
}
_NOT_FOUND = OpenApiResponse(
    ErrorSerializer, description="No such record among yours (others' ids are 404 too)."
)
_BAD_QUERY = OpenApiResponse(
    ErrorSerializer,
    description="Invalid query parameters: one item in `errors` per problem, with its `field`.",
)


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        extra = dict(_AUTH)
        if self.method in ("POST", "PUT", "PATCH"):
            extra["415"] = OpenApiResponse(
                ErrorSerializer, description="The body is not in a documented media type."
            )
        if "{" in self.path:
            extra["404"] = _NOT_FOUND
        if self._is_list_view() and self.method == "GET":
            extra["400"] = _BAD_QUERY
            extra["404"] = OpenApiResponse(ErrorSerializer, description="No such page.")
        for code, response in extra.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        if "429" in responses:
            responses["429"].setdefault("headers", {})["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before the next request.",
            }
        return responses
