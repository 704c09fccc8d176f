def current_merchant(request):
    membership = getattr(request, "membership", None)
    if membership is None or not membership:
        return {"membership": None, "merchant": None}
    return {"membership": membership, "merchant": membership.merchant}
