"""`Authorization: Token <key>` for the REST API, backed by accounts.ApiToken."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.models import ApiToken
from accounts.selectors import api_token_authenticate
from accounts.services import api_token_touch


class ApiTokenAuthentication(BaseAuthentication):
    """DRF's header form (`Token <key>`), with keys stored only as hashes and revocable.

    A request without a Token header is left to the next authentication class (the session); a
    Token header that is malformed, unknown or revoked is refused with 401 and
    `WWW-Authenticate: Token`.
    """

    keyword = "Token"

    def authenticate(self, request: Request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        if len(auth) == 1:
            raise exceptions.AuthenticationFailed("Invalid token header. No credentials provided.")
        if len(auth) > 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header. Token string should not contain spaces."
            )
        try:
            key = auth[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(
                "Invalid token header. Token string should only contain ASCII characters."
            ) from exc
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str) -> tuple[object, ApiToken]:
        token = api_token_authenticate(key=key)
        if token is None:
            # One message for unknown, revoked and inactive: no hint about which keys exist.
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        api_token_touch(token=token)
        return token.owner, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
