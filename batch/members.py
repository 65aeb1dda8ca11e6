"""The `members` kind (批量入会): 姓名 + 身份证号 → new members of the clerk's unit."""

from __future__ import annotations

import sqlalchemy as sa

from models import (
    ApplicationStatus,
    BatchKind,
    BatchStage,
    Member,
    MemberStatus,
    Org,
    OrgLevel,
    OverAgeApplication,
    db,
    member_numbers,
    utcnow,
    write_audit,
)
from models.audit import insert_with_audit
from models.scope import scope_filter
from rules import Code

from .admission import AdmissionContext, check_admissions
from .pipeline import Context, Kind, RowResult, register
from .reader import BatchFileError, Column
from .sql import CopyRows, bulk_insert

NAME = Column("name", "姓名", ("姓名", "会员姓名", "职工姓名", "投保人姓名", "名字"))
ID_NUMBER = Column(
    "id_number",
    "身份证号",
    ("身份证号", "身份证号码", "证件号码", "证件号", "公民身份号码", "身份证", "身份证件号码", "投保人身份证号"),
)

MEMBER_NOTES = [
    "1. 每行填写一名新入会会员的“姓名”和“身份证号”，不要改动第一行表头；列的顺序可以调整，多余的列会被忽略。",
    "2. 身份证号必须为18位，末尾X必须为大写；身份证号列已设为文本格式，请勿改为数字格式"
    "（数字格式会丢失末尾几位，系统会提示“身份证号单元格为数字格式”）。",
    "3. 姓名中间不得有空格；少数民族姓名中的间隔号请用“·”。姓名前后的空格、身份证号中的空格和小写x会被自动修正，并在结果中提示。",
    "4. 年龄按入会当天的周岁计算：女性须大于16周岁、小于55周岁；男性须大于16周岁、小于60周岁。",
    "5. 超龄但未办理正式退休手续（如局级干部、高级职称）的人员，须先通过【超龄例外申请】提供相关文件，"
    "经代办处同意后再办理入会（逐一或批量均可，业务校验会提示“此会员超出投保年龄”）；65周岁及以上不能参保。",
    "6. 已入会的人员不能重复入会；在其他单位的会员请办理【会员调动】。同一文件中身份证号不能重复。",
    "7. 上传后先点【业务校验】查看结果，再点【业务办理】；失败的行可点【失败行下载】，改正后直接上传该文件。",
]


class MembersKind(Kind):
    kind = BatchKind.MEMBERS
    columns = [NAME, ID_NUMBER]
    template_title = "批量入会"
    template_notes = MEMBER_NOTES
    result_extra = (("会员编号", "member_no"),)  # the clerk needs the new numbers (e.g. for 投保)

    def prepare(self, ctx: Context) -> None:
        """The rows go to the uploader's unit; above unit level, to the unit named by `org_code`."""
        user = ctx.user
        if user.org.level == OrgLevel.UNIT:
            ctx.org = user.org
            return
        code = (ctx.params.get("org_code") or "").strip()
        if not code:
            raise BatchFileError("请选择会员入会的基层单位（单位编号）")
        org = db.session.scalar(sa.select(Org).where(Org.code == code, scope_filter(Org, user)))
        if org is None or org.level != OrgLevel.UNIT:
            raise BatchFileError(f"单位编号“{code}”不是您管辖范围内的基层单位")
        ctx.org = org

    def check(self, table, ctx: Context) -> list[RowResult]:
        """The one admission check (batch/admission.py) over the file's rows.  An over-age person
        (under 65) whom the agency agreed to (an approved 超龄例外申请 in scope) passes with the
        warning OVER_AGE_AGREED: 业务校验 asks the manual's question, 【业务办理】 is its 确定."""
        name_i, id_i = table.columns["name"], table.columns["id_number"]
        widest = max(name_i, id_i)

        def requests():
            for row_no, cells in table.rows:
                if len(cells) > widest:
                    yield row_no, cells[name_i], cells[id_i], False
                else:
                    yield (
                        row_no,
                        cells[name_i] if name_i < len(cells) else None,
                        cells[id_i] if id_i < len(cells) else None,
                        False,
                    )

        return check_admissions(
            requests(), AdmissionContext(ctx.user, ctx.today, confirmed_over_age=True, agreed_exceptions=True)
        )

    def assign(self, rows: list[RowResult], ctx: Context) -> None:
        """The new 会员编号, reserved in one statement, so the result file can show them."""
        for r, no in zip(rows, member_numbers(len(rows))):
            r.values["member_no"] = no

    def write(self, rows: list[RowResult], ctx: Context) -> int:
        """All valid rows in one COPY/executemany, then one INSERT … SELECT of audit rows."""
        now, uid, org_id = utcnow(), ctx.user.id, ctx.org.id
        status, today, batch_id = MemberStatus.NEW.value, ctx.today, ctx.batch.id
        data = CopyRows(
            (
                v["member_no"],
                v["id_number"],
                v["name"],
                v["gender"],
                v["birth_date"],
                org_id,
                status,
                today,
                False,
                uid,
                batch_id,
                now,
                now,
                1,
            )
            for v in (r.values for r in rows)
        )
        bulk_insert(db.session, Member.__table__, MEMBER_COLUMNS, data)
        _audit(ctx)
        _grant_exceptions(rows, ctx)
        return len(data)

    # --- one pass per file (batch/stage.py) ----------------------------------------------------
    stage_columns = ("id_number", "name", "gender", "birth_date", "member_id", "member_version")

    def stage_row(self, r: RowResult) -> tuple:
        """A passing row's member; for ALREADY_MEMBER also the member it found (and its version)."""
        if r.code is None:
            v = r.values
            return (v["id_number"], v["name"], v["gender"], v["birth_date"], None, None)
        if r.code == Code.ALREADY_MEMBER and r.facts:
            v = r.values
            return (v["id_number"], v["name"], v["gender"], v["birth_date"], *r.facts)
        return (None, None, None, None, None, None)

    def stage_fingerprint(self, ctx: Context) -> list:
        return [ctx.org.id, ctx.org.path]

    def stage_changed(self, ctx: Context) -> bool:
        """The members the ALREADY_MEMBER rows found are still those members (same version: a moved
        or changed member says so anew).  A passing row that became a member meanwhile is refused
        by the unique index on id_number when it is written."""
        s = BatchStage.__table__
        changed = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(s.outerjoin(Member.__table__, Member.id_number == s.c.id_number))
            .where(
                s.c.batch_id == ctx.batch.id,
                s.c.code == Code.ALREADY_MEMBER.value,
                sa.or_(
                    Member.id.is_(None),
                    s.c.member_id.is_(None),
                    Member.id != s.c.member_id,
                    Member.version != s.c.member_version,
                ),
            )
        )
        return bool(changed)

    def write_staged(self, rows: list[RowResult], ctx: Context) -> int:
        """INSERT … SELECT of the passing rows from the stage, numbered as `assign` reserved them
        (consecutive, in row order), then the audit rows."""
        s = BatchStage.__table__
        now, uid, org_id, batch_id = utcnow(), ctx.user.id, ctx.org.id, ctx.batch.id
        first = int(rows[0].values["member_no"])
        n = sa.func.row_number().over(order_by=s.c.row_no) + (first - 1)
        if db.session.get_bind().dialect.name == "postgresql":
            text = sa.cast(n, sa.Text)
            member_no = sa.func.lpad(text, sa.func.greatest(10, sa.func.length(text)), "0")
        else:
            member_no = sa.func.printf("%010d", n)
        select = sa.select(
            member_no,
            s.c.id_number,
            s.c.name,
            s.c.gender,
            s.c.birth_date,
            sa.literal(org_id, sa.Integer),
            sa.literal(MemberStatus.NEW.value, sa.String),
            sa.literal(ctx.today, sa.Date),
            sa.false(),
            sa.literal(uid, sa.Integer),
            sa.literal(batch_id, sa.Integer),
            sa.literal(now, sa.DateTime),
            sa.literal(now, sa.DateTime),
            sa.literal(1, sa.Integer),
        ).where(s.c.batch_id == batch_id, s.c.code.is_(None))
        n = insert_with_audit(
            Member.__table__,
            MEMBER_COLUMNS,
            select,
            "create",
            "member",
            uid,
            after={"batch_id": batch_id, "status": MemberStatus.NEW.value},
        )
        _grant_exceptions(rows, ctx)
        return n


MEMBER_COLUMNS = [
    "member_no",
    "id_number",
    "name",
    "gender",
    "birth_date",
    "org_id",
    "status",
    "admitted_on",
    "over_age_exception",
    "created_by_id",
    "import_batch_id",
    "created_at",
    "updated_at",
    "version",
]


def _grant_exceptions(rows: list[RowResult], ctx: Context) -> None:
    """The members this batch admitted over the age limit carry the agency's exception, as the 入会
    form's do (views/members.py): flag, its reason, who approved; the request names its member.
    Three statements whatever the count; none when no row of the file needed one."""
    if not any(Code.OVER_AGE_AGREED in r.warnings for r in rows):
        return
    O = OverAgeApplication  # noqa: E741
    A = sa.orm.aliased(OverAgeApplication)  # the exception found (O itself is what the UPDATE below names)
    agreed = (
        sa.select(A.id)
        .where(A.id_number == Member.id_number, A.status == ApplicationStatus.APPROVED, scope_filter(A, ctx.user))
        .order_by(A.decided_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    mine = sa.and_(Member.import_batch_id == ctx.batch.id, agreed.is_not(None))
    db.session.execute(
        sa.update(Member)
        .where(mine)
        .values(
            over_age_exception=True,
            over_age_note=sa.select(O.reason).where(O.id == agreed).scalar_subquery(),
            over_age_approved_by_id=sa.select(O.decided_by_id).where(O.id == agreed).scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(O)
        .where(O.id.in_(sa.select(agreed).where(mine)), O.member_id.is_(None))
        .values(member_id=sa.select(Member.id).where(mine, Member.id_number == O.id_number).scalar_subquery())
        .execution_options(synchronize_session=False)
    )
    write_audit(
        "over_age",
        "member",
        sa.select(Member.id).where(mine),
        ctx.user.id,
        before={"over_age_exception": False},
        after={"over_age_exception": True},
    )


def _audit(ctx: Context) -> None:
    write_audit(
        "create",
        "member",
        sa.select(Member.id).where(Member.import_batch_id == ctx.batch.id),
        ctx.user.id,
        after={"batch_id": ctx.batch.id, "status": MemberStatus.NEW.value},
    )


MEMBERS = register(MembersKind())
