from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class NewestFirstPagination(CursorPagination):
    """Opaque `cursor` links, newest first: stable while new rows arrive, unlike page numbers."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-created_at"

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF answers a bad cursor with 404; it is a bad parameter
            raise ValidationError({"cursor": ["This cursor is not valid."]}) from None

    def get_page_size(self, request):
        # DRF silently falls back to the default for a bad `limit`; a client should hear about its mistake.
        values = request.query_params.getlist(self.page_size_query_param)
        if not values:
            return self.page_size
        if len(values) == 1 and values[0].isdigit() and 1 <= int(values[0]) <= self.max_page_size:
            return int(values[0])
        raise ValidationError({"limit": [f"A whole number from 1 to {self.max_page_size}."]})

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Page size (default {self.page_size})."
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class TransferPagination(NewestFirstPagination):
    ordering = "-id"  # the ledger's insertion order, and its index (wallet, -id)
