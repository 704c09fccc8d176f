"""The merchants app's errors, under the project's one error base."""

from tokenhub.errors import ApplicationError


class MerchantError(ApplicationError):
    """Base of every error the merchants app raises on purpose."""

    code = "merchant_error"
    status = 409


class SlugTaken(MerchantError):
    code = "slug_taken"


class EmailTaken(MerchantError):
    code = "email_taken"


class NotAllowed(MerchantError):
    code = "forbidden"
    status = 403


class AlreadyMember(MerchantError):
    code = "already_member"


class InvalidLink(MerchantError):
    """A link from an email that has expired, was used already, or was never ours."""


class ApiKeyLimitReached(MerchantError):
    pass
