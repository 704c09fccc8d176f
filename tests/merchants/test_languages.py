"""Two languages: the browser's Accept-Language by default, a switch that sticks, Chinese everywhere."""

import pytest
from django.conf import settings
from django.urls import reverse

from merchants.models import User
from tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}
COOKIE = settings.LANGUAGE_COOKIE_NAME

# Every dashboard page a member reaches from the navigation, with words only its Chinese version has.
DASHBOARD_PAGES = [
    ("home", (), ["可用 Token", "本月已用", "每日用量"]),
    ("tool", ("listing-writer",), ["商品文案", "商品名称", "销售平台"]),
    ("tool", ("marketing-copy",), ["营销文案", "行动号召"]),
    ("bulk-listings", (), ["批量生成商品文案", "开始生成"]),
    ("support", (), ["智能客服", "测试台", "开始对话"]),
    ("runs", (), ["任务", "筛选", "全部工具"]),
    ("wallet", (), ["钱包", "账单明细", "下载 CSV"]),
    ("team", (), ["团队", "邀请成员"]),
    ("api-keys", (), ["API 密钥", "创建密钥"]),
    ("store-profile", (), ["店铺资料", "品牌调性", "时区"]),
    ("account", (), ["我的账号", "修改密码"]),
]


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_accept_language_zh_cn_gets_the_log_in_page_in_chinese(client):
    page = _text(client.get(reverse("login"), **ZH))

    assert '<html lang="zh-hans">' in page
    assert "登录 Tokenhub" in page
    assert "忘记密码" in page
    assert "Log in to Tokenhub" not in page


def test_without_accept_language_the_log_in_page_is_in_english(client):
    page = _text(client.get(reverse("login")))

    assert '<html lang="en">' in page
    assert "Log in to Tokenhub" in page


@pytest.mark.parametrize(("name", "args", "words"), DASHBOARD_PAGES, ids=lambda v: str(v))
def test_accept_language_zh_cn_gets_every_dashboard_page_in_chinese(client, name, args, words):
    client.force_login(MembershipFactory().user)

    page = _text(client.get(reverse(name, args=args), **ZH))

    for word in words:
        assert word in page, f"{word!r} missing on {name}"
    for english in ("Log out", ">Home<", ">Wallet<", "Available tokens"):
        assert english not in page, f"{english!r} still in English on {name}"
    assert "退出登录" in page


def test_a_chosen_language_sticks_on_the_user_across_log_out_and_other_browsers(client):
    user = MembershipFactory().user
    client.force_login(user)

    response = client.post(reverse("language-set"), {"language": "en", "next": "/wallet/"}, **ZH)

    assert response.status_code == 302 and response["Location"] == "/wallet/"
    user.refresh_from_db()
    assert user.language == "en"
    assert response.cookies[COOKIE].value == "en"
    assert "Ledger statement" in _text(client.get(reverse("wallet"), **ZH))
    client.post(reverse("logout"))
    assert "Log in to Tokenhub" in _text(
        client.get(reverse("login"), **ZH)
    )  # the cookie outlives the session


def test_a_users_saved_language_beats_another_browsers_accept_language(client):
    user = MembershipFactory(user__language="zh-hans").user

    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == "zh-hans"  # set at log-in: the next log-in page follows it

    page = _text(client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US"))
    assert "可用 Token" in page


def test_switching_before_log_in_sets_only_the_cookie_and_sign_up_keeps_it(client):
    response = client.post(reverse("language-set"), {"language": "zh-hans", "next": "/signup/"})

    assert response.cookies[COOKIE].value == "zh-hans"
    assert "开通你的店铺" in _text(client.get(reverse("signup")))
    client.post(
        reverse("signup"),
        {
            "store_name": "Lotus",
            "email": "lotus@example.com",
            "password": PASSWORD,
            "time_zone": "Asia/Shanghai",
        },
    )
    assert User.objects.get(email="lotus@example.com").language == "zh-hans"


def test_signing_up_without_choosing_leaves_the_language_to_the_browser(client):
    client.post(
        reverse("signup"),
        {"store_name": "Lotus", "email": "lotus@example.com", "password": PASSWORD},
        **ZH,
    )

    assert User.objects.get(email="lotus@example.com").language == ""


def test_the_switch_ignores_an_unknown_language_and_a_foreign_next(client):
    user = MembershipFactory().user
    client.force_login(user)

    response = client.post(reverse("language-set"), {"language": "xx", "next": "https://evil.example/"}, **ZH)

    assert response["Location"] == "/"
    assert COOKIE not in response.cookies
    user.refresh_from_db()
    assert user.language == ""


def test_the_switch_is_in_the_navigation_and_on_the_log_in_page(client):
    assert 'data-testid="language-switch"' in _text(client.get(reverse("login"), **ZH))
    client.force_login(MembershipFactory().user)
    page = _text(client.get(reverse("home"), **ZH))
    assert 'data-testid="language-switch"' in page
    assert 'value="en"' in page  # from Chinese the switch offers English


def test_form_errors_are_in_chinese(client):
    page = _text(client.post(reverse("login"), {"username": "nobody@example.com", "password": "x"}, **ZH))

    assert "邮箱和密码不匹配" in page


def test_an_email_goes_out_in_the_recipients_chosen_language(client, settings):
    from merchants.emails import email_send
    from merchants.models import OutboundEmail

    user = MembershipFactory(user__language="zh-hans").user

    email_send(to=user.email, template="password_reset", context={"url": "https://x/", "email": user.email})

    message = OutboundEmail.objects.get(to=user.email)
    assert message.subject == "重置你的 Tokenhub 密码"
    assert "设置新密码" in message.body_html


def test_numbers_on_chinese_pages_are_grouped_like_chinese_shop_backends_write_them(client):
    from merchants.actors import Actor
    from wallets import services

    membership = MembershipFactory()
    services.promotion_credit(
        wallet=services.wallet_of(merchant=membership.merchant),
        amount=1_248_166,
        key="zh:fund",
        actor=Actor.system("test"),
    )
    client.force_login(membership.user)

    page = _text(client.get(reverse("home"), **ZH))

    assert 'data-testid="available">1,248,166<' in page


def test_a_waiting_runs_reason_is_in_the_readers_language():
    from django.utils import translation

    from agents.models import Run

    run = Run(status=Run.Status.QUEUED, waiting=Run.Waiting.RETRYING)

    with translation.override("zh-hans"):
        assert run.waiting_message.startswith("AI 服务商繁忙")
    with translation.override("en"):
        assert run.waiting_message.startswith("The AI provider was busy")


@pytest.mark.parametrize("header", ["zh-CN", "zh", "zh-Hans-CN", "zh-SG,zh;q=0.9", "zh-TW"])
def test_every_chinese_accept_language_gets_simplified_chinese(client, header):
    page = _text(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=header))

    assert "登录 Tokenhub" in page


@pytest.mark.parametrize("header", ["en-US", "fr-FR,fr;q=0.9", "ja-JP"])
def test_other_accept_languages_get_english(client, header):
    assert "Log in to Tokenhub" in _text(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=header))
