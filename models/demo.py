"""Demo data of DESIGN.md §10: the org tree, the seven demo users, three products, and a few
hundred members and policies in every state (some expiring next month), with a few claims."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from rules.idnumber import id_check_digit
from rules.products import add_months, policy_expiry

from .base import db
from .member import Gender, Member, MemberStatus, member_numbers
from .org import Org, OrgLevel, Role, User
from .policy import Claim, ClaimStatus, GenderRestriction, Policy, PolicyStatus, Product

DEMO_PASSWORD = "Demo-2026"

ORGS = [
    ("000", "市总工会", OrgLevel.FEDERATION, None),
    ("01", "第一办事处", OrgLevel.OFFICE, "000"),
    ("0101", "东城代办处", OrgLevel.AGENCY, "01"),
    ("010101", "东城区第一机床厂工会", OrgLevel.UNIT, "0101"),
    ("010102", "东城区百货公司工会", OrgLevel.UNIT, "0101"),
    ("0102", "西城代办处", OrgLevel.AGENCY, "01"),
    ("010201", "西城区供电局工会", OrgLevel.UNIT, "0102"),
]

USERS = [
    ("admin", "系统管理员", Role.ADMIN, "000"),
    ("info1", "信息部 王敏", Role.INFO_DEPT, "000"),
    ("office1", "办事处 李强", Role.OFFICE_STAFF, "01"),
    ("agency1", "代办处 赵丽", Role.AGENCY_STAFF, "0101"),
    ("clerk1", "张晓燕", Role.UNIT_CLERK, "010101"),
    ("clerk2", "刘建国", Role.UNIT_CLERK, "010102"),
    ("clerk3", "陈静", Role.UNIT_CLERK, "010201"),
]

PRODUCTS = [
    ("P01", "在职职工住院医疗互助保障", Decimal("50.00"), 2, None),
    ("P02", "女职工特殊疾病互助保障", Decimal("30.00"), 1, GenderRestriction.FEMALE),
    ("P03", "职工意外伤害互助保障", Decimal("20.00"), 5, None),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰海燕春梅晓东婷"
REGIONS = ["110101", "110102", "110105", "110106", "110108"]


def make_id_number(rng: random.Random, birth: date, male: bool) -> str:
    seq = rng.randrange(0, 100)
    gender_digit = rng.choice("13579" if male else "02468")
    first17 = f"{rng.choice(REGIONS)}{birth:%Y%m%d}{seq:02d}{gender_digit}"
    return first17 + id_check_digit(first17)


def load_demo_data(members_per_unit: int = 100, seed: int = 2026, issue_receipt=None) -> dict[str, int]:
    rng = random.Random(seed)
    today = date.today()
    orgs: dict[str, Org] = {}
    for code, name, level, parent in ORGS:
        p = orgs.get(parent)
        org = Org(code=code, name=name, level=level, parent=p, path=Org.path_for(p, code))
        db.session.add(org)
        orgs[code] = org
    db.session.flush()

    for i, (username, display, role, org_code) in enumerate(USERS, start=1):
        user = User(
            username=username, display_name=display, role=role, org=orgs[org_code], phone=f"+86138000000{i:02d}"
        )
        user.set_password(DEMO_PASSWORD)
        db.session.add(user)
    products = []
    for code, name, price, max_shares, gender in PRODUCTS:
        product = Product(
            code=code, name=name, price=price, max_shares=max_shares, term_months=12, gender_restriction=gender
        )
        db.session.add(product)
        products.append(product)
    db.session.flush()
    clerk_of = {u.org.code: u for u in db.session.query(User).filter(User.role == Role.UNIT_CLERK)}

    units = [orgs["010101"], orgs["010102"], orgs["010201"]]
    seen: set[str] = set()
    member_rows = []
    numbers = iter(member_numbers(members_per_unit * len(units)))
    for unit in units:
        for k in range(members_per_unit):
            male = rng.random() < 0.5
            age = rng.randint(20, 52 if not male else 57)
            birth = date(today.year - age, rng.randint(1, 12), rng.randint(1, 28))
            idn = make_id_number(rng, birth, male)
            while idn in seen:
                idn = make_id_number(rng, birth, male)
            seen.add(idn)
            status = (
                MemberStatus.NEW if k % 10 == 0 else MemberStatus.RETURNED if k % 25 == 1 else MemberStatus.CONFIRMED
            )
            member_rows.append(
                Member(
                    member_no=next(numbers),
                    id_number=idn,
                    name=rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
                    gender=Gender.MALE if male else Gender.FEMALE,
                    birth_date=birth,
                    phone=f"139{rng.randrange(10**8):08d}",
                    org=unit,
                    status=status,
                    admitted_on=today - timedelta(days=rng.randint(500, 1500)),  # before any of their policies
                    return_reason="身份证号与本人不符，请核实" if status == MemberStatus.RETURNED else None,
                    created_by_id=clerk_of[unit.code].id,
                )
            )
    db.session.add_all(member_rows)
    db.session.flush()

    agency = db.session.query(User).filter_by(username="agency1").one()
    policies = []
    next_month = add_months(today.replace(day=1), 1)
    cycle = [PolicyStatus.EFFECTIVE] * 5 + [
        PolicyStatus.NEW,
        PolicyStatus.REPORTED,
        PolicyStatus.AGENCY_REPORTED,
        PolicyStatus.RETURNED,
        PolicyStatus.TERMINATED,
    ]
    for idx, m in enumerate(x for x in member_rows if x.status == MemberStatus.CONFIRMED):
        status = cycle[idx % len(cycle)]
        product = products[2] if m.gender == Gender.MALE or idx % 3 else products[1]
        if idx % 4 == 0:
            product = products[0]
        shares = 1 if product.max_shares == 1 else rng.randint(1, product.max_shares)
        if status in (PolicyStatus.EFFECTIVE, PolicyStatus.TERMINATED):
            # a tenth of the effective ones run out next month
            if idx % 10 < 2:
                effective = add_months(next_month, -12) + timedelta(days=rng.randint(0, 20))
            else:
                effective = add_months(today.replace(day=1), -rng.randint(1, 10))
        else:
            effective = add_months(today.replace(day=1), 1)
        is_live = status in (PolicyStatus.EFFECTIVE, PolicyStatus.TERMINATED)
        policies.append(
            Policy(
                member=m,
                product=product,
                org=m.org,
                shares=shares,
                amount=product.price * shares,
                expected_effective_date=effective,
                effective_date=effective if is_live else None,
                expiry_date=policy_expiry(effective, product.term_months),
                policy_no=None,  # numbered below from the per-year counter, as 确认生效 does
                status=status,
                return_reason="份数与缴费金额不符，请核对后重新上报" if status == PolicyStatus.RETURNED else None,
                created_by_id=clerk_of[m.org.code].id,
            )
        )
    db.session.add_all(policies)
    db.session.flush()

    # 保单号 from the same per-year counters 确认生效 uses (actions/effective.py), so the office's
    # next confirmation continues the sequence without a gap or a clash
    from .member import reserve_numbers

    live = [p for p in policies if p.status in (PolicyStatus.EFFECTIVE, PolicyStatus.TERMINATED)]
    for year in sorted({p.effective_date.year for p in live}):
        of_year = [p for p in live if p.effective_date.year == year]
        for p, n in zip(of_year, reserve_numbers(f"policy_no:{year}", len(of_year))):
            p.policy_no = f"BD{year}{n:08d}"
    db.session.flush()

    # one receipt per unit for its effective policies, issued as agency1 issues them (the issuer
    # lives above models: app.py passes actions.receipts.create_receipt)
    if issue_receipt is not None:
        for unit in units:
            issue_receipt(
                sa.select(Policy.id).where(Policy.org_id == unit.id, Policy.status == PolicyStatus.EFFECTIVE),
                agency,
                states=(PolicyStatus.EFFECTIVE,),
            )
    claims = []
    for n, p in enumerate([p for p in policies if p.status == PolicyStatus.EFFECTIVE][:8], start=1):
        claims.append(
            Claim(
                claim_no=f"LP{today:%Y}{n:05d}",
                member=p.member,
                policy=p,
                org=p.org,
                event_date=p.effective_date + timedelta(days=20),
                amount_paid=Decimal("800.00") * n if n % 3 else Decimal("0"),
                status=ClaimStatus.PAID if n % 3 else ClaimStatus.PENDING,
            )
        )
    db.session.add_all(claims)
    db.session.commit()
    return {
        "单位": len(ORGS),
        "用户": len(USERS),
        "产品": len(PRODUCTS),
        "会员": len(member_rows),
        "投保记录": len(policies),
        "理赔": len(claims),
    }
