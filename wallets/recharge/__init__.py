"""Auto-recharge: a saved card charged off-session when a wallet's available tokens fall below the owner's
threshold. One payment in flight per wallet (RechargeAttempt's partial unique constraint), tokens credited
only by Stripe's signed payment_intent.succeeded webhook, three failures in a row switch it off.
See docs/payments.md.
"""
