from rest_framework.views import APIView

from merchants.actors import Actor
from merchants.models import ApiKey
from tokenhub.logs import bind


class MerchantApiView(APIView):
    # Base of every /api/v1/ view: after auth, `request.merchant`, `request.actor` and `request.api_key`.
    # Every read and write goes through a selector or service scoped to `request.merchant`, so a key can
    # only ever see its own merchant's rows. (A comment, not a docstring: the schema would publish it.)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, ApiKey):
            api_key = request.auth
            request.api_key = api_key
            request.merchant = api_key.merchant
            request.actor = Actor.api_key(prefix=api_key.prefix, user_id=api_key.created_by_id)
        else:
            request.api_key = None
            request.merchant = request._request.membership.merchant
            request.actor = Actor.user(request.user)
        bind(merchant_id=str(request.merchant.pk))
