"""Sponsorships: one store pays for another store's runs, up to a monthly limit ("A consumes, B pays").

The sponsor offers (from its wallet page, or an operator with `manage.py create_sponsorship`); the
beneficiary accepts; from then on its runs draw on the sponsor's wallet first (wallets.funding). The
sponsor can pause, resume or end it at once: runs already held finish and are charged as held.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.models import Merchant
from wallets.exceptions import SponsorshipError
from wallets.funding import sponsorship_month
from wallets.models import Sponsorship, SponsorshipMonth

Status = Sponsorship.Status


def _clean_tools(tools: Iterable[str] | None, known: Iterable[str] | None) -> list[str]:
    chosen = sorted({tool.strip() for tool in tools or () if tool and tool.strip()})
    if known is not None and (unknown := [tool for tool in chosen if tool not in set(known)]):
        raise SponsorshipError(
            _("There is no tool called %(tools)s.") % {"tools": ", ".join(unknown)},
            details={"tools": unknown},
        )
    return chosen


def sponsorship_create(
    *,
    sponsor: Merchant,
    beneficiary: Merchant,
    monthly_limit: int,
    tools: Iterable[str] | None = None,
    known_tools: Iterable[str] | None = None,
    created_by=None,
    note: str = "",
    accepted: bool = False,
) -> Sponsorship:
    """Offer to pay for `beneficiary`'s runs (or, with `accepted`, start at once: operators only).

    Raises SponsorshipError for a store sponsoring itself, a limit that is not a positive whole number,
    an unknown tool, or a pair that already has a live sponsorship.
    """
    if sponsor.pk == beneficiary.pk:
        raise SponsorshipError(_("A store cannot sponsor itself."))
    if not isinstance(monthly_limit, int) or isinstance(monthly_limit, bool) or monthly_limit <= 0:
        raise SponsorshipError(
            _("The monthly limit must be a whole number of tokens above zero."),
            details={"monthly_limit": monthly_limit},
        )
    now = timezone.now()
    try:
        with transaction.atomic():
            return Sponsorship.objects.create(
                sponsor=sponsor,
                beneficiary=beneficiary,
                monthly_limit=monthly_limit,
                tools=_clean_tools(tools, known_tools),
                status=Status.ACTIVE if accepted else Status.INVITED,
                accepted_at=now if accepted else None,
                created_by=created_by,
                note=note[:200],
            )
    except IntegrityError as exc:
        raise SponsorshipError(
            _("%(sponsor)s already sponsors %(beneficiary)s. Change or end that sponsorship instead.")
            % {"sponsor": sponsor.name, "beneficiary": beneficiary.name}
        ) from exc


def _move(sponsorship: Sponsorship, *, frm: Iterable[str], to: str, **fields) -> Sponsorship:
    """Change the status if it is still one of `frm` (a conditional UPDATE: two clicks change it once)."""
    moved = Sponsorship.objects.filter(pk=sponsorship.pk, status__in=list(frm)).update(status=to, **fields)
    sponsorship.refresh_from_db()
    if not moved:
        raise SponsorshipError(
            _("This sponsorship is %(status)s, so that is not possible.")
            % {"status": sponsorship.get_status_display().lower()},
            details={"status": sponsorship.status},
        )
    return sponsorship


def sponsorship_accept(*, sponsorship: Sponsorship) -> Sponsorship:
    return _move(sponsorship, frm=[Status.INVITED], to=Status.ACTIVE, accepted_at=timezone.now())


def sponsorship_decline(*, sponsorship: Sponsorship) -> Sponsorship:
    return _move(sponsorship, frm=[Status.INVITED], to=Status.DECLINED, ended_at=timezone.now())


def sponsorship_pause(*, sponsorship: Sponsorship) -> Sponsorship:
    return _move(sponsorship, frm=[Status.ACTIVE], to=Status.PAUSED)


def sponsorship_resume(*, sponsorship: Sponsorship) -> Sponsorship:
    return _move(sponsorship, frm=[Status.PAUSED], to=Status.ACTIVE)


def sponsorship_end(*, sponsorship: Sponsorship) -> Sponsorship:
    """End it at once, from either side: no new run draws on it; runs already held finish as held."""
    return _move(sponsorship, frm=Sponsorship.LIVE, to=Status.ENDED, ended_at=timezone.now())


def sponsorship_limit_change(*, sponsorship: Sponsorship, monthly_limit: int) -> Sponsorship:
    """A new monthly limit, from now: this month's limit becomes it, but never below what is already used."""
    if not isinstance(monthly_limit, int) or isinstance(monthly_limit, bool) or monthly_limit <= 0:
        raise SponsorshipError(_("The monthly limit must be a whole number of tokens above zero."))
    with transaction.atomic():
        Sponsorship.objects.filter(pk=sponsorship.pk).update(monthly_limit=monthly_limit)
        month = sponsorship_month(sponsorship)
        SponsorshipMonth.objects.filter(pk=month.pk).update(
            limit_tokens=Greatest(monthly_limit, F("held") + F("spent"))
        )
    sponsorship.refresh_from_db()
    return sponsorship
