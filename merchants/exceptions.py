class MerchantError(Exception):
    """Base of every error the merchants app raises on purpose."""


class SlugTaken(MerchantError):
    pass


class EmailTaken(MerchantError):
    pass


class NotAllowed(MerchantError):
    pass


class AlreadyMember(MerchantError):
    pass
