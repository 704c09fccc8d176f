import pytest
from django.urls import reverse

from merchants import services
from merchants.exceptions import NotAllowed
from merchants.models import Membership
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("role", "can_manage"), [("owner", True), ("manager", True), ("staff", False)])
def test_owners_and_managers_manage_the_store_and_staff_do_not(role, can_manage):
    assert MembershipFactory(role=role).can_manage is can_manage


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("manager", 200), ("staff", 403)])
def test_only_managers_and_owners_open_the_store_profile(client, role, status):
    client.force_login(MembershipFactory(role=role).user)

    assert client.get(reverse("store-profile")).status_code == status


def test_a_manager_saves_the_brand_voice(client):
    membership = MembershipFactory(role="manager")
    client.force_login(membership.user)

    client.post(
        reverse("store-profile"),
        {
            "name": membership.merchant.name,
            "brand_voice": "Playful and short.",
            "default_language": "de",
            "knowledge_base": "Free returns.",
            "time_zone": "Europe/Berlin",
        },
    )

    membership.merchant.refresh_from_db()
    assert membership.merchant.brand_voice == "Playful and short."
    assert membership.merchant.default_language == "de"
    assert membership.merchant.time_zone == "Europe/Berlin"


def test_staff_cannot_save_the_store_profile_even_by_posting(client):
    membership = MembershipFactory(role="staff")
    client.force_login(membership.user)

    response = client.post(reverse("store-profile"), {"brand_voice": "Hacked", "default_language": "en"})

    assert response.status_code == 403
    membership.merchant.refresh_from_db()
    assert membership.merchant.brand_voice != "Hacked"


def test_a_manager_cannot_make_someone_an_owner():
    manager = MembershipFactory(role="manager")

    with pytest.raises(NotAllowed):
        services.membership_set(merchant=manager.merchant, user=UserFactory(), role="owner", by=manager)


def test_a_store_always_keeps_one_owner():
    owner = MembershipFactory(role="owner")

    with pytest.raises(NotAllowed):
        services.membership_set(merchant=owner.merchant, user=owner.user, role="staff", by=owner)
    with pytest.raises(NotAllowed):
        services.membership_remove(membership=owner, by=owner)


def test_an_owner_adds_a_staff_member_who_then_sees_the_store(client):
    owner = MembershipFactory(role="owner")
    newcomer = UserFactory()

    services.membership_set(merchant=owner.merchant, user=newcomer, role="staff", by=owner)

    client.force_login(newcomer)
    assert owner.merchant.name in client.get(reverse("home")).content.decode()
    assert Membership.objects.get(user=newcomer).role == "staff"


def test_a_member_sees_only_their_own_store_on_the_team_page(client):
    mine = MembershipFactory(role="owner")
    theirs = MembershipFactory(role="owner")
    client.force_login(mine.user)

    page = client.get(reverse("team")).content.decode()

    assert mine.user.email in page
    assert theirs.user.email not in page
