"""The Chinese admin: one module per screen, menus as in DESIGN.md §5."""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from jinja2 import pass_context
from markupsafe import Markup

from models import (
    AuditLog,
    ChangeApplication,
    ImportBatch,
    Member,
    Org,
    OverAgeApplication,
    Policy,
    Product,
    Receipt,
    TerminationApplication,
    TransferApplication,
    User,
    db,
)

from . import list_page
from .access import current_user
from .applications import ChangeView, OverAgeView, TransferView
from .batches import BatchView
from .downloads import DownloadView
from .home import HomeView
from .members import MemberAdmissionView, MemberQueryView
from .policies import ExpiringPolicyView, PolicyView, ReceiptView
from .security import csp_nonce
from .system import AuditLogView, OrgView, ProductView, UserView
from .terminations import TerminablePolicyView, TerminationView

MEMBERS, POLICIES, BATCHES, SYSTEM = "会员管理", "保单管理", "批量业务管理", "系统管理"


TRANSLATIONS = Path(__file__).parent / "translations"


def _use_project_catalog_last() -> None:
    """Flask-Babel merges catalogs in order, later ones winning; Flask-Admin puts a custom
    catalog first, so its own zh_Hans_CN strings would override ours (the manual's button
    names such as 保存并创建下一个).  Put ours last."""
    from flask_admin import babel as fa_babel

    cls = type(fa_babel.domain)
    if getattr(cls, "_project_last", False):
        return
    base = fa_babel.translations.__path__[0]
    cls.translation_directories = property(lambda self: [base, str(TRANSLATIONS)])
    cls._project_last = True


def init_admin(app) -> Admin:
    _use_project_catalog_last()
    admin = Admin(
        app,
        name="互助保障业务系统",
        index_view=HomeView(name="首页", url="/admin", endpoint="admin"),
        theme=Bootstrap4Theme(base_template="admin/app_base.html", fluid=True),
        csp_nonce_generator=csp_nonce,  # Flask-Admin's inline scripts carry the request's nonce
    )
    s = db.session
    admin.add_view(MemberAdmissionView(Member, s, name="入会管理", category=MEMBERS, endpoint="members"))
    admin.add_view(MemberQueryView(Member, s, name="会员信息查询", category=MEMBERS, endpoint="member_query"))
    admin.add_view(TransferView(TransferApplication, s, name="会员调动管理", category=MEMBERS, endpoint="transfers"))
    admin.add_view(ChangeView(ChangeApplication, s, name="会员变更管理", category=MEMBERS, endpoint="changes"))
    admin.add_view(OverAgeView(OverAgeApplication, s, name="超龄例外申请", category=MEMBERS, endpoint="over_age"))
    admin.add_view(PolicyView(Policy, s, name="投保管理", category=POLICIES, endpoint="policies"))
    admin.add_view(
        TerminationView(TerminationApplication, s, name="保单提前终止", category=POLICIES, endpoint="terminations")
    )
    admin.add_view(  # 【创建保单终止申请】: opened from 保单提前终止, not in the menu
        TerminablePolicyView(Policy, s, name="创建保单终止申请", category=POLICIES, endpoint="termination_policies")
    )
    admin.add_view(ExpiringPolicyView(Policy, s, name="即将到期订单", category=POLICIES, endpoint="expiring"))
    admin.add_view(ReceiptView(Receipt, s, name="收据管理", category=POLICIES, endpoint="receipts"))
    admin.add_view(BatchView(ImportBatch, s, name="批量业务", category=BATCHES, endpoint="batches"))
    admin.add_view(OrgView(Org, s, name="单位", category=SYSTEM, endpoint="orgs"))
    admin.add_view(UserView(User, s, name="用户", category=SYSTEM, endpoint="users"))
    admin.add_view(ProductView(Product, s, name="产品", category=SYSTEM, endpoint="products"))
    admin.add_view(AuditLogView(AuditLog, s, name="审计日志", category=SYSTEM, endpoint="audit"))
    admin.add_view(DownloadView(name="后台生成的文件", endpoint="downloads"))  # not in the menu
    app.jinja_env.globals["menu_html"] = menu_html
    app.jinja_env.globals["admin_static_url"] = list_page.admin_static_url
    return admin


@pass_context
def menu_html(context, render) -> Markup:
    """The navigation menu, rendered by Flask-Admin's macro once per (role, screen) and kept: which
    screens a user sees depends on the role alone (RoleGuard.is_visible), which item is highlighted
    on the screen. ~15 url_for and a dozen is_accessible checks saved on every page."""
    user = current_user()
    view = context.get("admin_view")
    key = (getattr(user, "role", None), getattr(view, "endpoint", None))
    cache = current_app.extensions.setdefault("menu_html", {})
    html = cache.get(key)
    if html is None:
        html = cache[key] = str(render())
    return Markup(html)
