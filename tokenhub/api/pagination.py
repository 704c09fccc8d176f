from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination

# PostgreSQL's bigint: a larger id in a cursor would fail in the database, not here.
BIGINT_MAX = 2**63 - 1
INVALID_CURSOR = {"cursor": ["This cursor is not valid."]}


class NewestFirstPagination(CursorPagination):
    """Opaque `cursor` links, newest first: stable while new rows arrive, unlike page numbers."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-created_at"

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF answers a bad cursor with 404; it is a bad parameter
            raise ValidationError(INVALID_CURSOR) from None
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor)
        return cursor

    def _check_position(self, cursor: Cursor) -> None:
        """DRF decodes the cursor's base64 but puts its position into the query as it is: a crafted one
        (`p=abc` for a date or an id) would fail in the database. It must parse as the ordering field."""
        model = getattr(self, "_model", None)
        if model is None:
            return
        field = model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            value = field.to_python(cursor.position)
            field.get_prep_value(value)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise ValidationError(INVALID_CURSOR) from None
        if isinstance(value, int) and not -BIGINT_MAX <= value <= BIGINT_MAX:
            raise ValidationError(INVALID_CURSOR)

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
