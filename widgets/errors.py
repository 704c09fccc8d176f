"""What the visitor API and the widget settings refuse, in the API's one error body."""

from tokenhub.errors import ApplicationError, InvalidInput


class WidgetKeyInvalid(ApplicationError):
    code = "widget_key_invalid"
    status = 401
    default_message = "This chat widget is not available (its key is unknown or was revoked)."


class OriginNotAllowed(ApplicationError):
    code = "origin_not_allowed"
    status = 403
    default_message = "This website may not use this chat widget."


class VisitorUnauthenticated(ApplicationError):
    code = "unauthenticated"
    status = 401
    default_message = "Send the conversation's visitor token as `Authorization: Bearer <token>`."


class WidgetOffline(ApplicationError):
    """The widget's daily token budget is spent: the bot rests until tomorrow (UTC); a person can help."""

    code = "widget_offline"
    status = 503
    default_message = "The assistant is offline for today. You can ask for a person instead."


class ConversationLimitReached(ApplicationError):
    code = "conversation_limit_reached"
    status = 403
    default_message = "This conversation has reached its limit for the assistant. You can ask for a person."


class InvalidWidgetSettings(InvalidInput):
    """A widget setting that does not fit: `details` names the field."""
