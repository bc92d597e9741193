"""Page-number pagination whose `page` parameter is what the schema says: an integer."""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.exceptions import NotFound


class PageNumberPagination(pagination.PageNumberPagination):
    def get_page_number(self, request, paginator):
        # DRF reads a blank `?page=` as page 1; like any other non-integer it is no such page.
        if request.query_params.get(self.page_query_param) == "":
            raise NotFound(self.invalid_page_message.format(page_number="", message="blank"))
        return super().get_page_number(request, paginator)
