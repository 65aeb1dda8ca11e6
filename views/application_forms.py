"""The forms of 会员变更管理 (【创建】 → 【查询】 → new name / ID + 变更理由 → 【保存】) and of the
over-age exception request (person, reason, an attached document)."""

from __future__ import annotations

from flask import current_app
from flask_wtf.file import FileField
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from actions.new_applications import id_number_taken, over_age_existing, over_age_refusal, own_member
from models import Member, db
from rules import check_name, parse_id
from rules.documents import check_document

from .access import current_user
from .base import AdminForm

STRIP = [lambda v: v.strip() if isinstance(v, str) else v]


class ChangeForm(AdminForm):
    member_ref = HiddenField()  # 证件号 or 会员编号 of the member found by 【查询】, re-checked on 【保存】
    new_name = StringField("变更后的姓名", [Optional()], filters=STRIP, description="不改姓名请留空")
    new_id_number = StringField(
        "变更后的身份证号",
        [Optional()],
        filters=STRIP,
        description="不改身份证号请留空。性别和出生日期将按新身份证号重新得出",
    )
    reason = TextAreaField(
        "变更理由",
        [DataRequired("请填写变更理由"), Length(max=200, message="变更理由不超过200字")],
        filters=STRIP,
    )

    member: Member | None = None
    id_info = None  # IdInfo of the new number

    def __init__(self, *args, app_id: int | None = None, member: Member | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.app_id = app_id
        self.member = member

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        member = self.member
        if member is None:
            member, error = own_member(self.member_ref.data or "", current_user())
            if error:
                self.member_ref.errors = [error]
                return False
            self.member = member
        from actions.new_applications import pending_change

        other = pending_change(member.id, self.app_id)
        if other is not None:
            self.member_ref.errors = [f"该会员已有一份未审批的变更申请（申请编号 {other}），请在列表中修改或上报"]
            return False
        name, idn = self.new_name.data or "", self.new_id_number.data or ""
        if name:
            check = check_name(name)
            if not check.ok:
                self.new_name.errors = list(self.new_name.errors) + [check.message]
                ok = False
            else:
                self.new_name.data = name = check.value
        if idn:
            idc = parse_id(idn)
            if not idc.ok:
                self.new_id_number.errors = list(self.new_id_number.errors) + [idc.message]
                ok = False
            else:
                self.id_info = idc.value
                self.new_id_number.data = idn = idc.value.number
                taken = id_number_taken(idn, member.id, self.app_id) if idn != member.id_number else None
                if taken:
                    self.new_id_number.errors = list(self.new_id_number.errors) + [taken]
                    ok = False
        if ok and (not name or name == member.name) and (not idn or idn == member.id_number):
            self.new_name.errors = list(self.new_name.errors) + ["请填写变更后的姓名或身份证号（与现有信息不同）"]
            ok = False
        return ok


class OverAgeForm(AdminForm):
    id_number = StringField("身份证号", [DataRequired("请填写身份证号")], filters=STRIP)
    name = StringField("姓名", [DataRequired("请填写姓名")], filters=STRIP, description="已入会的会员按系统中的姓名")
    reason = TextAreaField(
        "申请理由",
        [
            DataRequired("请填写申请理由（如：局级干部，未办理正式退休手续）"),
            Length(max=200, message="申请理由不超过200字"),
        ],
        filters=STRIP,
    )
    document = FileField("证明文件（PDF、JPG 或 PNG，不超过 5 MB）")

    member: Member | None = None
    id_info = None
    document_data: bytes | None = None
    document_kind: str | None = None

    def __init__(self, *args, app_id: int | None = None, has_document: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.app_id = app_id
        self.has_document = has_document

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        user = current_user()
        if self.id_number.data:
            idc = parse_id(self.id_number.data)
            if not idc.ok:
                self.id_number.errors = list(self.id_number.errors) + [idc.message]
                return False
            info = self.id_info = idc.value
            self.id_number.data = info.number
            member = db.session.query(Member).filter(Member.id_number == info.number).one_or_none()
            if member is not None:
                from models import scope_filter

                mine = db.session.query(scope_filter(Member, user)).filter(Member.id == member.id).scalar()
                if not mine:
                    self.id_number.errors = ["查无此会员信息（会员不在本单位，请通过【会员调动管理】办理调入）"]
                    return False
                self.member = member
                if self.name.data and self.name.data != member.name:
                    self.name.errors = [f"姓名与会员信息不一致（系统中为“{member.name}”）"]
                    ok = False
            refusal = over_age_refusal(info.gender, info.birth_date) or over_age_existing(
                info.number, user, self.app_id
            )
            if refusal:
                self.id_number.errors = list(self.id_number.errors) + [refusal]
                ok = False
        if self.name.data:
            check = check_name(self.name.data)
            if not check.ok:
                self.name.errors = list(self.name.errors) + [check.message]
                ok = False
            else:
                self.name.data = check.value
        upload = self.document.data
        data = upload.read() if upload is not None and getattr(upload, "filename", "") else b""
        if data or not self.has_document:
            limit = current_app.config.get("ATTACHMENT_MAX_BYTES") or None
            kind, why = check_document(data, limit) if limit else check_document(data)
            if kind is None:
                self.document.errors = [why]
                ok = False
            else:
                self.document_data, self.document_kind = data, kind
        return ok
