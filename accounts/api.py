"""REST endpoints of the accounts app: who am I (handy for checking a token)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView


class MeSerializer(serializers.Serializer):
    username = serializers.CharField(read_only=True)
    # Not EmailField: an account made by an administrator may have no address (blank).
    email = serializers.CharField(read_only=True, help_text="E-mail address; blank if none.")


class MeView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "reads"

    @extend_schema(
        operation_id="me_retrieve",
        summary="The account the request is authenticated as",
        responses=MeSerializer,
        tags=["account"],
    )
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)
