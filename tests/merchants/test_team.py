import pytest
from django.urls import reverse

from merchants import services
from merchants.exceptions import NotAllowed
from merchants.models import Invitation, Membership, User
from tests.concurrency import run_in_threads
from tests.factories import PASSWORD, MembershipFactory


def _as(client, membership):
    client.force_login(membership.user)
    return client


def _add(client, email, role="staff"):
    return client.post(reverse("team-member-add"), {"email": email, "role": role})


@pytest.mark.django_db
def test_adding_someone_already_on_the_team_is_refused_on_the_page(client):
    owner = MembershipFactory(role="owner")
    staff = MembershipFactory(merchant=owner.merchant, role="staff")

    response = _add(_as(client, owner), staff.user.email, role="manager")

    assert response.status_code == 200
    assert "already on the team" in response.content.decode()
    staff.refresh_from_db()
    assert staff.role == "staff"


@pytest.mark.django_db
def test_an_invalid_email_is_shown_as_a_form_error(client):
    owner = MembershipFactory(role="owner")

    response = _add(_as(client, owner), "not-an-email")

    assert response.status_code == 200
    assert response.context["add_form"].errors["email"]
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_staff_cannot_add_members(client):
    staff = MembershipFactory(role="staff")

    page = _as(client, staff).get(reverse("team")).content.decode()
    response = _add(client, "sneaky@example.com")

    assert reverse("team-member-add") not in page
    assert reverse("team-member-remove", args=[staff.pk]) not in page
    assert response.status_code == 403
    assert not User.objects.filter(email="sneaky@example.com").exists()


@pytest.mark.django_db
def test_staff_cannot_change_roles_or_remove_members(client):
    staff = MembershipFactory(role="staff")
    other = MembershipFactory(merchant=staff.merchant, role="staff")
    _as(client, staff)

    role = client.post(reverse("team-member-role", args=[staff.pk]), {"role": "owner"})
    remove = client.post(reverse("team-member-remove", args=[other.pk]))

    assert (role.status_code, remove.status_code) == (403, 403)
    assert Membership.objects.get(pk=staff.pk).role == "staff"
    assert Membership.objects.filter(pk=other.pk).exists()


@pytest.mark.django_db
def test_a_manager_cannot_make_an_owner(client):
    manager = MembershipFactory(role="manager")
    staff = MembershipFactory(merchant=manager.merchant, role="staff")
    _as(client, manager)

    added = _add(client, "would-be-owner@example.com", role="owner")
    promoted = client.post(reverse("team-member-role", args=[staff.pk]), {"role": "owner"}, follow=True)

    assert added.context["add_form"].errors["role"]
    assert not User.objects.filter(email="would-be-owner@example.com").exists()
    assert Membership.objects.get(pk=staff.pk).role == "staff"
    assert "error" in [m.tags for m in promoted.context["messages"]]
    with pytest.raises(NotAllowed):
        services.member_add(merchant=manager.merchant, email="x@example.com", role="owner", by=manager)


@pytest.mark.django_db
def test_a_manager_cannot_demote_or_remove_an_owner(client):
    owner = MembershipFactory(role="owner")
    manager = MembershipFactory(merchant=owner.merchant, role="manager")
    _as(client, manager)

    client.post(reverse("team-member-role", args=[owner.pk]), {"role": "staff"})
    client.post(reverse("team-member-remove", args=[owner.pk]))

    assert Membership.objects.get(pk=owner.pk).role == "owner"
    with pytest.raises(NotAllowed):
        services.membership_set(merchant=owner.merchant, user=owner.user, role="staff", by=manager)


@pytest.mark.django_db
def test_a_manager_changes_a_members_role(client):
    manager = MembershipFactory(role="manager")
    staff = MembershipFactory(merchant=manager.merchant, role="staff")

    response = _as(client, manager).post(reverse("team-member-role", args=[staff.pk]), {"role": "manager"})

    assert response.status_code == 302
    assert Membership.objects.get(pk=staff.pk).role == "manager"


@pytest.mark.django_db
def test_an_owner_hands_over_ownership_and_steps_down(client):
    owner = MembershipFactory(role="owner")
    manager = MembershipFactory(merchant=owner.merchant, role="manager")
    _as(client, owner)

    client.post(reverse("team-member-role", args=[manager.pk]), {"role": "owner"})
    client.post(reverse("team-member-role", args=[owner.pk]), {"role": "staff"})

    assert Membership.objects.get(pk=manager.pk).role == "owner"
    assert Membership.objects.get(pk=owner.pk).role == "staff"


@pytest.mark.django_db
def test_a_manager_removes_a_member(client):
    manager = MembershipFactory(role="manager")
    staff = MembershipFactory(merchant=manager.merchant, role="staff")

    response = _as(client, manager).post(reverse("team-member-remove", args=[staff.pk]), follow=True)

    assert not Membership.objects.filter(pk=staff.pk).exists()
    assert User.objects.filter(pk=staff.user.pk).exists()
    assert f"Removed {staff.user.email}" in response.content.decode()


@pytest.mark.django_db
def test_removing_the_last_owner_is_refused(client):
    owner = MembershipFactory(role="owner")

    response = _as(client, owner).post(reverse("team-member-remove", args=[owner.pk]), follow=True)
    demoted = client.post(reverse("team-member-role", args=[owner.pk]), {"role": "manager"}, follow=True)

    assert Membership.objects.get(pk=owner.pk).role == "owner"
    assert "at least one owner" in response.content.decode()
    assert "at least one owner" in demoted.content.decode()


@pytest.mark.django_db
def test_writes_answer_only_to_post(client):
    owner = MembershipFactory(role="owner")
    staff = MembershipFactory(merchant=owner.merchant, role="staff")
    _as(client, owner)

    assert client.get(reverse("team-member-add")).status_code == 405
    assert client.get(reverse("team-member-remove", args=[staff.pk])).status_code == 405
    assert client.get(reverse("team-member-role", args=[staff.pk])).status_code == 405
    assert Membership.objects.filter(pk=staff.pk).exists()


@pytest.mark.django_db
def test_another_stores_member_answers_404(client):
    owner = MembershipFactory(role="owner")
    theirs = MembershipFactory(role="staff")
    _as(client, owner)

    role = client.post(reverse("team-member-role", args=[theirs.pk]), {"role": "manager"})
    remove = client.post(reverse("team-member-remove", args=[theirs.pk]))

    assert (role.status_code, remove.status_code) == (404, 404)
    assert Membership.objects.get(pk=theirs.pk).role == "staff"


@pytest.mark.django_db
def test_an_owner_of_one_store_cannot_manage_another_through_the_services():
    owner = MembershipFactory(role="owner")
    theirs = MembershipFactory(role="staff")

    with pytest.raises(NotAllowed):
        services.membership_remove(membership=theirs, by=owner)
    with pytest.raises(NotAllowed):
        services.member_add(merchant=theirs.merchant, email="x@example.com", role="owner", by=owner)


@pytest.mark.django_db
def test_changing_password_works(client):
    membership = MembershipFactory(role="staff")
    _as(client, membership)
    new = "another-long-passphrase-77"

    assert reverse("account") in client.get(reverse("team")).content.decode()
    response = client.post(
        reverse("password-change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )

    assert response.status_code == 302
    membership.user.refresh_from_db()
    assert membership.user.check_password(new)
    assert client.get(reverse("team")).status_code == 200  # still signed in


@pytest.mark.django_db
def test_changing_password_needs_the_current_one(client):
    membership = MembershipFactory(role="staff")
    new = "another-long-passphrase-77"

    response = _as(client, membership).post(
        reverse("password-change"), {"old_password": "wrong", "new_password1": new, "new_password2": new}
    )

    assert response.status_code == 200
    membership.user.refresh_from_db()
    assert membership.user.check_password(PASSWORD)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_owners_stepping_down_at_once_leave_the_store_an_owner():
    first = MembershipFactory(role="owner")
    second = MembershipFactory(merchant=first.merchant, role="owner")
    owners = [first, second]

    run_in_threads(
        2,
        lambda i: services.membership_set(
            merchant=first.merchant, user=owners[i].user, role="manager", by=owners[i]
        ),
    )

    assert Membership.objects.filter(merchant=first.merchant, role="owner").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_invitations_for_one_new_person_accepted_at_once_make_one_account():
    owners = [MembershipFactory(role="owner") for _ in range(2)]
    tokens = []
    for owner in owners:
        invitation = services.member_add(
            merchant=owner.merchant, email="both@example.com", role="staff", by=owner
        )
        token = f"race-{invitation.pk}"
        Invitation.objects.filter(pk=invitation.pk).update(token_hash=services.invitation_token_hash(token))
        tokens.append(token)

    results = run_in_threads(
        2, lambda i: services.invitation_accept(token=tokens[i], password="a-chosen-passphrase-12")
    )

    assert sorted(type(r).__name__ for r in results) == ["Membership", "NotAllowed"]
    assert User.objects.filter(email="both@example.com").count() == 1
