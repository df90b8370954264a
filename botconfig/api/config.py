"""GET config/: the calling bot's configuration in force."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from botconfig.cache import config_in_force
from trading.api.common import bot_of_request
from trading.api.permissions import IsBot

ConfigInForceOutputSerializer = inline_serializer(
    "ConfigInForceOutput",
    fields={
        "version": serializers.IntegerField(),
        "config": serializers.DictField(),
        "effective_from": serializers.DateTimeField(),
    },
)


class ConfigView(APIView):
    permission_classes = [IsBot]

    @extend_schema(
        operation_id="config_in_force",
        summary="The calling bot's configuration in force",
        description=(
            "Served from Redis; a new version is served as soon as it is written. 404 when the "
            "bot has no configuration."
        ),
        responses={200: ConfigInForceOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        found = config_in_force(bot=bot_of_request(request))
        if found is None:
            raise NotFound("This bot has no configuration.")
        return Response(found)
