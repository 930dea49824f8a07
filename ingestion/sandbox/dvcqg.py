"""Sandbox of the S1 DVCQG reporting API (contracts/SOURCES.md, S1), on 127.0.0.1.

POST only, JSON envelope {"code": "OK", "message", "data"} with HTTP 201, paging by currentPage/pageSize
(1-based; `data.pagination` gives total/totalPages), `code` != "OK" for bad requests.

Data are synthetic and deterministic: every number is computed from a hash of (unit, period, metric), so
any period can be served without state, except the home province's agencies and communes for the months the
S2 sandbox province has dossiers in: a server given that province's scale (`serve(..., seed=,
dossiers_per_day=, history_days=/start=, as_of=)`, the same keywords and defaults as the S2 sandbox) scores
their dossier-based groups from those dossiers, a few units left "not synced" (`official.py`;
`GET /_sandbox/unsynced` lists them and the derivation's settings). The 34 provinces carry their real
codes, names and ids; the home province (H15, Đắk Lắk) has 16 provincial agencies (H15.1..H15.16) and its
102 real communes (H15.17..H15.118); other provinces get generic unit names. Metric scores follow the rules
in reference/index766_components.csv; group scores are the exact sum of their metric scores and the total
the exact sum of the groups (all in hundredths; a derived group none of whose metrics applies is null).
The national table for timeType=year, year=2026 is the real capture of 2026-09-17.
Run: `python -m ingestion.sandbox.dvcqg --port 8701` (options of the province as the S2 sandbox's).
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson

from ingestion import clock, reference
from ingestion.sandbox import Faults, SandboxHandler, SandboxServer, running

if TYPE_CHECKING:
    from ingestion.sandbox.official import OfficialScores, UnitMonth

GROUP_MAX = {"CKMB": 18, "TDGQ": 20, "CLGQ": 12, "TTTT": 10, "MDHL": 18, "MDSH": 22}
GROUP_NAMES = {"CKMB": "Công khai, minh bạch", "TDGQ": "Tiến độ giải quyết",
               "CLGQ": "Dịch vụ công trực tuyến", "TTTT": "Thanh toán trực tuyến", "MDHL": "Mức độ hài lòng",
               "MDSH": "Số hóa hồ sơ"}
ENDPOINT_GROUP = {"transparency": "CKMB", "dvc-progress-tree": "TDGQ", "provide-online-tree": "CLGQ",
                  "formality-online-payment-tree": "TTTT", "dossier-digitized": "MDSH",
                  "handling-satisfaction": "MDHL"}
TREE_ENDPOINTS = {"dvc-progress-tree", "provide-online-tree", "formality-online-payment-tree"}
HOME_CODE = "H15"
AGENCIES = ("Văn phòng UBND tỉnh", "Sở Nội vụ", "Sở Tư pháp", "Sở Tài chính", "Sở Công Thương",
            "Sở Nông nghiệp và Môi trường", "Sở Xây dựng", "Sở Khoa học và Công nghệ",
            "Sở Giáo dục và Đào tạo",
            "Sở Y tế", "Sở Văn hóa, Thể thao và Du lịch", "Sở Dân tộc và Tôn giáo", "Sở Ngoại vụ",
            "Thanh tra tỉnh", "Ban Quản lý Khu kinh tế tỉnh", "Công an tỉnh")
EPOCH = (2025, 7)  # the two-level government starts; trends are measured from here


def _h(*parts: Any) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _uuid(*parts: Any) -> str:
    """UUID-like id in the portal's style (version-7-looking prefix)."""
    x = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return f"019d2be3-{x[:4]}-7{x[4:7]}-{'89ab'[int(x[7], 16) % 4]}{x[8:11]}-{x[11:23]}"


# --- units ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    id: str
    code: str
    name: str
    type: str  # PROVINCE, PROVINCIAL_DEPARTMENT, COMMUNE_PEOPLE_COMMITTEE
    volume: int  # dossiers per month, roughly
    quality: float  # 0..1, how well the unit does overall


def _province_unit(row: dict[str, str]) -> Unit:
    code = row["dvcqg_departmentCode"]
    return Unit(row["dvcqg_rootDepartmentId"], code, row["dvcqg_departmentName"], "PROVINCE",
                int(40_000 + 160_000 * _h(code, "volume")), 0.25 + 0.5 * _h(code, "quality"))


@cache
def provinces() -> tuple[Unit, ...]:
    return tuple(_province_unit(r) for r in reference.provinces())


@cache
def province(root_id: str) -> Unit | None:
    return next((p for p in provinces() if p.id == root_id or p.code == root_id), None)


@cache
def units(province_code: str) -> tuple[Unit, ...]:
    """A province's agencies then communes, in code order."""
    row = reference.province_by_dvcqg_code(province_code)
    assert row is not None
    short = row["province_name_2025"].replace("Thành phố", "TP.").strip()
    out = []
    agencies = AGENCIES if province_code == HOME_CODE else [f"Sở ngành {k}" for k in range(1, 17)]
    for i, name in enumerate(agencies, start=1):
        code = f"{province_code}.{i}"
        out.append(Unit(_uuid(code), code, f"{name} - {short}", "PROVINCIAL_DEPARTMENT",
                        int(150 + 2500 * _h(code, "volume") ** 2), 0.2 + 0.7 * _h(code, "quality")))
    if province_code == HOME_CODE:
        names = []
        for c in reference.daklak_communes():
            bare = c["commune_name_2025"].split(" ", 1)[1]
            names.append(f"UBND {c['unit_type']} {bare}")
    else:
        names = [f"UBND xã số {k}" for k in range(1, int(row["n_communes_2025"]) + 1)]
    for i, name in enumerate(names, start=len(out) + 1):
        code = f"{province_code}.{i}"
        out.append(Unit(_uuid(code), code, name, "COMMUNE_PEOPLE_COMMITTEE",
                        int(300 + 3500 * _h(code, "volume") ** 2), 0.15 + 0.7 * _h(code, "quality")))
    return tuple(out)


# --- periods --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str  # month, quarter, year
    year: int
    n: int  # month 1-12, quarter 1-4, or 1 for a year

    @property
    def months(self) -> tuple[int, int]:
        """First and last month of the period."""
        if self.kind == "month":
            return self.n, self.n
        if self.kind == "quarter":
            return 3 * self.n - 2, 3 * self.n
        return 1, 12

    @property
    def start(self) -> date:
        return date(self.year, self.months[0], 1)

    @property
    def end(self) -> date:
        last = self.months[1]
        return date(self.year, last, calendar.monthrange(self.year, last)[1])

    @property
    def index(self) -> float:
        """Months since the epoch at the period's middle (drives trends)."""
        first, last = self.months
        return (self.year - EPOCH[0]) * 12 + (first + last) / 2 - EPOCH[1]

    @property
    def length(self) -> int:
        return self.months[1] - self.months[0] + 1

    def previous(self) -> Period:
        if self.kind == "year":
            return Period("year", self.year - 1, 1)
        count = 12 if self.kind == "month" else 4
        return Period(self.kind, self.year - (self.n == 1), count if self.n == 1 else self.n - 1)


# --- scores ---------------------------------------------------------------------------------------


def _ratio(unit: Unit, period: Period, key: str, level: float) -> float:
    trend = 0.004 * max(-12.0, min(24.0, period.index))  # slow improvement since the reform
    noise = (_h(unit.code, period, key) - 0.5) * 0.12
    bias = (_h(unit.code, key, "bias") - 0.5) * 0.2
    return max(0.0, min(1.0, level + (unit.quality - 0.5) * 0.3 + trend + noise + bias))


def _count(unit: Unit, period: Period, key: str, scale: float = 1.0) -> int:
    return max(0, round(unit.volume * period.length * scale * (0.7 + 0.6 * _h(unit.code, period, key, "n"))))


def _cents(points: float, max_points: float) -> int:
    return int(min(max_points * 100, max(0.0, round(points * 100 + 1e-9))))


def _metric(code: str, name: str, num: int, den: int, max_points: float, points: float | None,
            **extra: Any) -> dict[str, Any]:
    ratio = round(100 * num / den, 2) if den else None
    cents = None if points is None else _cents(points, max_points)
    return {"code": code, "name": name, "numerator": num, "denominator": den, "ratio": ratio,
            "score": None if cents is None else cents / 100, "maxScore": max_points, **extra}


def _pair(unit: Unit, period: Period, key: str, level: float, scale: float,
          empty_chance: float = 0.0) -> tuple[int, int]:
    """(numerator, denominator) with a denominator that is sometimes 0 (metric not applicable)."""
    if empty_chance and _h(unit.code, period, key, "empty") < empty_chance:
        return 0, 0
    den = max(1, _count(unit, period, key, scale))
    return round(_ratio(unit, period, key, level) * den), den


def _points(num: int, den: int, mx: float, full_at: float = 1.0) -> float | None:
    """min(max, max x ratio / full_at); a zero denominator is not applicable."""
    return min(mx, mx * num / den / full_at) if den else None


# The wire form of the groups whose figures are counts (TDGQ, CLGQ, TTTT): the same for synthetic units and
# for the units derived from the sandbox province's dossiers.
Group = tuple[list[dict[str, Any]], dict[str, Any]]


def _tdgq(received: int, on_time: int, completed: int, avg_days: float) -> Group:
    fields = {"totalReceived": received, "totalOnTime": on_time, "totalOverdue": received - on_time,
              "totalCompleted": completed, "avgProcessingDays": avg_days}
    return [_metric("totalOnTime/totalReceived", "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn", on_time, received,
                    20, _points(on_time, received, 20))], fields


def _clgq(authority: int, online: int, full: int, used: int, total: int, channel_online: int,
          postal: int) -> Group:
    fields = {"authorityCount": authority, "partialCount": online - full, "fullCount": full,
              "onlineDossierCount": used, "onlineServiceTotal": online,
              "channelOnlineSum": channel_online, "channelDirectSum": total - channel_online - postal,
              "channelPostalSum": postal, "channelTotalSum": total}
    return [
        _metric("A", "Tỷ lệ TTHC cung cấp DVCTT (một phần + toàn trình)", online, authority, 2,
                _points(online, authority, 2, 0.8)),
        _metric("B", "Tỷ lệ DVCTT có phát sinh hồ sơ trực tuyến", used, online, 4, _points(used, online, 4)),
        _metric("C", "Tỷ lệ hồ sơ nộp trực tuyến", channel_online, total, 6,
                _points(channel_online, total, 6, 0.5)),
    ], fields


def _tttt(paid: int, obliged: int, fees: int, with_payment: int, integrated: int) -> Group:
    fields = {"totalDossierOnlinePaymentSuccess": paid, "totalDossierFinancialObligation": obliged,
              "totalDossierOnlineFormalityPaymentSuccess": with_payment,
              "totalFeeDossierFormality": integrated, "totalFeeFormality": fees}
    return [
        _metric("A", "Tỷ lệ hồ sơ thanh toán trực tuyến", paid, obliged, 6, _points(paid, obliged, 6)),
        _metric("B", "Tỷ lệ TTHC có giao dịch thanh toán trực tuyến", with_payment, fees, 2,
                _points(with_payment, fees, 2, 0.8)),
        _metric("C", "Tỷ lệ TTHC có nghĩa vụ tài chính được tích hợp thanh toán trên Cổng DVCQG", integrated,
                fees, 2, _points(integrated, fees, 2, 0.8)),
    ], fields


def _group_ckmb(u: Unit, p: Period) -> Group:
    commune = u.type == "COMMUNE_PEOPLE_COMMITTEE"
    out = []
    for code, name, mx, level, scale, empty in (
        ("PUBLISH_ON_TIME", "Tỷ lệ TTHC công bố đúng hạn", 6, 0.6, 0.002, 0.95 if commune else 0.4),
        ("PUBLIC_UPDATE_ON_TIME", "Tỷ lệ TTHC cập nhật, công khai đúng hạn", 4, 0.6, 0.002,
         0.95 if commune else 0.4),
        ("PUBLIC_CONTENT_FULL", "Tỷ lệ TTHC công khai đầy đủ nội dung", 2, 0.95, 0.03, 0.0),
        ("DOSSIER_SYNC", "Tỷ lệ hồ sơ đồng bộ lên Cổng DVCQG", 6, 0.92, 1.0, 0.0),
    ):
        num, den = _pair(u, p, code, level, scale, empty)
        out.append(_metric(code, name, num, den, mx, mx * num / den if den else None))
    return out, {}


def _group_tdgq(u: Unit, p: Period) -> Group:
    on_time, received = _pair(u, p, "TDGQ", 0.86, 1.0)
    completed = min(received, round(received * (0.8 + 0.15 * _h(u.code, p, "completed"))))
    return _tdgq(received, on_time, completed, round(2 + 12 * _h(u.code, p, "days"), 2))


def _group_clgq(u: Unit, p: Period) -> Group:
    authority = 40 + round(160 * _h(u.code, "authority"))
    online = round(authority * _ratio(u, p, "CLGQ_A", 0.85))
    full = round(online * (0.3 + 0.3 * _h(u.code, "full")))
    with_dossiers = round(online * _ratio(u, p, "CLGQ_B", 0.55))
    total = max(1, _count(u, p, "CLGQ_C"))
    channel_online = round(total * _ratio(u, p, "CLGQ_C", 0.25))
    postal = round((total - channel_online) * 0.03)
    return _clgq(authority, online, full, with_dossiers, total, channel_online, postal)


def _group_tttt(u: Unit, p: Period) -> Group:
    paid, obliged = _pair(u, p, "TTTT_A", 0.55, 0.4)
    fee_formality = 10 + round(60 * _h(u.code, "fees"))
    with_payment = round(fee_formality * _ratio(u, p, "TTTT_B", 0.6))
    integrated = round(fee_formality * _ratio(u, p, "TTTT_C", 0.7))
    return _tttt(paid, obliged, fee_formality, with_payment, integrated)


_MDSH = (  # code, name, max, typical ratio, points at full ratio (1.0 = 100%, 0.8 = full at 80%)
    ("ORIGINAL_RESULT_AVAILABLE", "Tỷ lệ hồ sơ có cấp kết quả giải quyết TTHC điện tử", 6, 0.5, 1.0),
    ("SO_HOA_GIAY_TO_GIAI_QUYET", "Tỷ lệ hồ sơ thực hiện số hóa", 4, 0.45, 1.0),
    ("ELECTRONIC_CERTIFIED_COPY", "Tỷ lệ cung cấp dịch vụ chứng thực bản sao điện tử", 2, 0.3, 1.0),
    ("REUSED_DIGITIZED_DATA", "Tỷ lệ hồ sơ khai thác, sử dụng lại dữ liệu số hóa", 2, 0.35, 0.8),
    ("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", "Tỷ lệ hồ sơ số hóa kết nối kho dữ liệu cá nhân", 4, 0.05, 1.0),
    ("CITIZEN_DATA_CONNECTED_DOSSIER", "Tỷ lệ hồ sơ có sử dụng dữ liệu CSDL quốc gia về dân cư", 2, 0.55,
     1.0),
    ("CITIZEN_DATA_CONNECTED_FORMALITY", "Tỷ lệ TTHC triển khai kết nối, chia sẻ dữ liệu dân cư", 2, 0.5,
     1.0),
)


def _group_mdsh(u: Unit, p: Period) -> Group:
    out = []
    for code, name, mx, level, full_at in _MDSH:
        num, den = _pair(u, p, code, level, 0.02 if code.endswith("FORMALITY") else 0.8)
        out.append(_metric(code, name, num, den, mx, min(mx, mx * num / den / full_at)))
    return out, {}


def _group_mdhl(u: Unit, p: Period) -> Group:
    ok, petitions = _pair(u, p, "PAKN", 0.6, 0.004, empty_chance=0.3)
    satisfied, answered = (round(petitions * _ratio(u, p, "PAKN_SAT", 0.5)), petitions)
    good, rated = _pair(u, p, "DOSSIER_SAT", 0.82, 0.5)
    tthc = round(petitions * 0.7)
    return [
        _metric("PETITION_PROCESSING_ON_TIME", "Tỷ lệ PAKN xử lý đúng hạn", ok, petitions, 6,
                6 * ok / petitions if petitions else 6),  # no petitions gives full points
        _metric("PETITION_HANDLING_SATISFACTION", "Tỷ lệ hài lòng trong xử lý PAKN", satisfied, answered, 6,
                6 * satisfied / answered if answered else 6),
        _metric("DOSSIER_RECEIVING_SATISFACTION", "Tỷ lệ hài lòng trong tiếp nhận, giải quyết TTHC", good,
                rated, 6, min(6, 6 * good / rated / 0.9) if rated else 0),
        _metric("PETITION_CLASSIFICATION_TTHC", "Tỷ lệ PAKN về quy định, TTHC", tthc, petitions, 0, 0),
        _metric("PETITION_CLASSIFICATION_STAFF", "Tỷ lệ PAKN về hành vi cán bộ, công chức", petitions - tthc,
                petitions, 0, 0),
    ], {}


# --- groups derived from the sandbox province's dossiers (official.py counts them) -------------------


def _derived_tdgq(m: UnitMonth, _: tuple[dict[str, Any], ...]) -> Group:
    c = m.counts
    return _tdgq(c["received"], c["received"] - c["overdue"], m.completed,
                 round(m.processing_days / m.completed, 2) if m.completed else 0.0)


def _derived_clgq(m: UnitMonth, _: tuple[dict[str, Any], ...]) -> Group:
    c = m.counts
    return _clgq(c["authority"], c["online_procedures"], c["full_online_procedures"],
                 c["online_services_used"], c["received"], c["received_online"], c["received_postal"])


def _derived_tttt(m: UnitMonth, _: tuple[dict[str, Any], ...]) -> Group:
    c = m.counts
    return _tttt(c["received_fee_paid_online"], c["received_with_fee"], c["fee_procedures"],
                 c["fee_procedures_paid_online"], c["fee_procedures_with_fee_data"])


def _derived_mdsh(m: UnitMonth, synthetic: tuple[dict[str, Any], ...]) -> Group:
    """Six metrics from the dossiers; the e-certified-copy one (no dossier shows it) stays synthetic."""
    c = m.counts
    pairs = {  # code -> (numerator, denominator, points at full ratio)
        "ORIGINAL_RESULT_AVAILABLE": (c["finished_paper_e_result"], c["finished_paper_required"], 1.0),
        "SO_HOA_GIAY_TO_GIAI_QUYET": (c["finished_digitised"], c["finished"], 1.0),
        "REUSED_DIGITIZED_DATA": (c["received_digitised"], c["received"], 0.8),
        "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": (c["received_data_store"], c["received"], 1.0),
        "CITIZEN_DATA_CONNECTED_DOSSIER": (c["received_population_data"], c["received"], 1.0),
        "CITIZEN_DATA_CONNECTED_FORMALITY": (c["population_data_procedures"], c["citizen_procedures"], 1.0),
    }
    out = []
    for code, name, mx, _, _ in _MDSH:
        if code in pairs:
            num, den, full_at = pairs[code]
            out.append(_metric(code, name, num, den, mx, _points(num, den, mx, full_at)))
        else:
            out.append(next(x for x in synthetic if x["code"] == code))
    return out, {}


DERIVED = {"TDGQ": _derived_tdgq, "CLGQ": _derived_clgq, "TTTT": _derived_tttt, "MDSH": _derived_mdsh}


GROUPS = {"CKMB": _group_ckmb, "TDGQ": _group_tdgq, "CLGQ": _group_clgq, "TTTT": _group_tttt,
          "MDSH": _group_mdsh, "MDHL": _group_mdhl}


@cache
def group(unit: Unit, period: Period, code: str) -> tuple[int, tuple[dict[str, Any], ...], dict[str, Any]]:
    """(score in hundredths, metrics, extra fields) of one group; the score is the sum of the metrics'."""
    metrics, fields = GROUPS[code](unit, period)
    cents = sum(round(m["score"] * 100) for m in metrics if m["score"] is not None)
    assert cents <= GROUP_MAX[code] * 100, (unit.code, code, cents)
    return cents, tuple(metrics), fields


def _derived(unit: Unit, period: Period, code: str, official: OfficialScores | None) -> UnitMonth | None:
    """The unit's month from the sandbox province's dossiers, when this group of it is derived."""
    if (official is None or code not in official.DERIVED_GROUPS or period.kind != "month"
            or not unit.code.startswith(f"{HOME_CODE}.") or not official.covers(period.year, period.n)):
        return None
    return official.month(period.year, period.n)[unit.code]


def unit_group(unit: Unit, period: Period, code: str, official: OfficialScores | None = None
               ) -> tuple[int, tuple[dict[str, Any], ...], dict[str, Any]]:
    """As `group`, but derived from the dossiers where `official` covers the unit and month."""
    month = _derived(unit, period, code, official)
    if month is None:
        return group(unit, period, code)
    metrics, fields = DERIVED[code](month, group(unit, period, code)[1])
    scored = [round(m["score"] * 100) for m in metrics if m["score"] is not None]
    cents = sum(scored) if scored else None  # no sub-indicator applies: the group is not applicable
    assert cents is None or cents <= GROUP_MAX[code] * 100, (unit.code, code, cents)
    return cents, tuple(metrics), fields  # type: ignore[return-value]


def scores(unit: Unit, period: Period, official: OfficialScores | None = None) -> dict[str, int | None]:
    """Group scores and total, in hundredths (a derived group may be None: not applicable)."""
    out: dict[str, int | None] = {code: unit_group(unit, period, code, official)[0] for code in GROUP_MAX}
    out["total"] = sum(v or 0 for v in out.values())
    return out


def _hundredths(cents: int | None) -> float | None:
    return None if cents is None else cents / 100


def _score_row(unit: Unit, period: Period, official: OfficialScores | None = None) -> dict[str, Any]:
    s, prev = scores(unit, period, official), scores(unit, period.previous(), official)
    return {"departmentId": unit.id, "departmentName": unit.name, "departmentCode": unit.code,
            "departmentType": unit.type, "departmentLevel": _level(unit),
            "totalScore": s["total"] / 100, "ratio": s["total"] / 100,
            "scoreDelta": (s["total"] - prev["total"]) / 100,
            "groupScores": {code: _hundredths(s[code]) for code in GROUP_MAX}}


def _level(unit: Unit) -> str:
    return "COMMUNE" if unit.type == "COMMUNE_PEOPLE_COMMITTEE" else "PROVINCE"


# --- answers --------------------------------------------------------------------------------------


class BadRequest(Exception):
    pass


def _int(body: dict[str, Any], key: str, default: int | None = None, lo: int = 1, hi: int = 10**6) -> int:
    value = body.get(key, default)
    if value is None:
        raise BadRequest(f"{key} is required")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{key} must be an integer") from None
    if not lo <= number <= hi:
        raise BadRequest(f"{key} must be between {lo} and {hi}")
    return number


def period_of(body: dict[str, Any]) -> Period:
    if "fromDate" in body:  # handling-satisfaction: a date range; the sandbox serves whole periods only
        try:
            start, end = date.fromisoformat(body["fromDate"]), date.fromisoformat(body.get("toDate") or "")
        except (TypeError, ValueError):
            raise BadRequest("fromDate and toDate must be YYYY-MM-DD") from None
        for kind, n in (("month", start.month), ("quarter", (start.month - 1) // 3 + 1), ("year", 1)):
            p = Period(kind, start.year, n)
            if p.start == start and p.end == end:
                return p
        raise BadRequest("the sandbox serves whole months, quarters or years only")
    kind = body.get("timeType")
    if kind not in ("month", "quarter", "year"):
        raise BadRequest("timeType must be month, quarter or year")
    year = _int(body, "year", lo=2015, hi=2100)
    if kind == "month":
        return Period(kind, year, _int(body, "month", hi=12))
    if kind == "quarter":
        return Period(kind, year, _int(body, "quarter", hi=4))
    return Period(kind, year, 1)


def _page(rows: list[Any], body: dict[str, Any]) -> tuple[list[Any], dict[str, int]]:
    current, size = _int(body, "currentPage", 1), _int(body, "pageSize", 20, hi=1000)
    total = len(rows)
    return rows[(current - 1) * size: current * size], {
        "total": total, "currentPage": current, "pageSize": size, "totalPages": -(-total // size)}


def _visible(units_: tuple[Unit, ...] | list[Unit], period: Period, today: date) -> list[Unit]:
    """Nothing is published for periods that have not started yet."""
    return [] if period.start > today else list(units_)


def national_table(period: Period, today: date) -> dict[str, Any]:
    if period == Period("year", 2026, 1):
        rows = _captured_2026()
    else:
        rows = sorted((_score_row(p, period) for p in _visible(provinces(), period, today)),
                      key=lambda r: (-r["totalScore"], r["departmentCode"]))
    n = len(rows) or 1
    avg = {code: round(sum(r["groupScores"][code] for r in rows) / n, 2) for code in GROUP_MAX}
    overall = round(sum(r["totalScore"] for r in rows) / n, 2)
    monthly = []
    for m in range(1, 13):
        p = Period("month", period.year, m)
        shown = _visible(provinces(), p, today)
        monthly.append({"month": f"{m:02d}", "averageScore": round(
            sum(scores(u, p)["total"] for u in shown) / 100 / len(shown), 2) if shown else None})
    return {
        "overview": {"departmentName": "Cả nước", "departmentCode": None, "totalScore": overall,
                     "totalMaxScore": 100, "ratio": overall},
        "radar": [{"code": c, "name": GROUP_NAMES[c], "score": avg[c], "maxScore": GROUP_MAX[c],
                   "ratio": round(100 * avg[c] / GROUP_MAX[c], 2)} for c in GROUP_MAX],
        "evaluation": rows, "monthlyChart": monthly, "dossierChart": [],
    }


def _captured_2026() -> list[dict[str, Any]]:
    ids = {p["dvcqg_departmentCode"]: p["dvcqg_rootDepartmentId"] for p in reference.provinces()}
    out = []
    for r in reference.captured_national_2026():
        out.append({"departmentId": ids[r["departmentCode"]], "departmentName": r["departmentName"],
                    "departmentCode": r["departmentCode"], "totalScore": float(r["totalScore"]),
                    "ratio": float(r["totalScore"]), "scoreDelta": float(r["scoreDelta"]),
                    "groupScores": {c: float(r[f"{c}_max{GROUP_MAX[c]}"]) for c in GROUP_MAX}})
    return out


def province_table(root: Unit, period: Period, body: dict[str, Any], today: date,
                   official: OfficialScores | None = None) -> dict[str, Any]:
    rows = [_score_row(u, period, official) for u in _visible(units(root.code), period, today)]
    page, pagination = _page(rows, body)
    for i, row in enumerate(page, start=(pagination["currentPage"] - 1) * pagination["pageSize"] + 1):
        row["stt"] = i
    return {"overview": _score_row(root, period) if rows else None, "evaluation": page,
            "pagination": pagination}


def _detail_row(unit: Unit, period: Period, code: str, tree: bool,
                official: OfficialScores | None = None) -> dict[str, Any]:
    cents, metrics, fields = unit_group(unit, period, code, official)
    prev = unit_group(unit, period.previous(), code, official)[0]
    mx = GROUP_MAX[code]
    ratio = None if cents is None else round(cents / mx, 2)
    row: dict[str, Any] = {"departmentId": unit.id, "departmentName": unit.name, "departmentCode": unit.code,
                           "departmentType": unit.type, "departmentLevel": _level(unit)}
    if tree:
        row |= {"level": _level(unit), **fields, "ratio": ratio, "score": _hundredths(cents), "maxScore": mx}
    else:
        row |= {"totalScore": _hundredths(cents), "totalMaxScore": mx, "ratio": ratio}
    row["scoreDelta"] = None if cents is None or prev is None else (cents - prev) / 100
    row["metrics"] = list(metrics)
    return row


def group_detail(endpoint: str, root: Unit, period: Period, body: dict[str, Any],
                 today: date, official: OfficialScores | None = None) -> dict[str, Any]:
    code, tree = ENDPOINT_GROUP[endpoint], endpoint in TREE_ENDPOINTS
    shown = _visible(units(root.code), period, today)
    page, pagination = _page(shown, body)
    rows = [_detail_row(u, period, code, tree, official) for u in page]
    for i, row in enumerate(rows, start=(pagination["currentPage"] - 1) * pagination["pageSize"] + 1):
        row["stt"] = i
    head = _detail_row(root, period, code, tree) if shown else None
    if tree:
        if head:  # the parent carries totals under the names the real tree uses
            head["totalScore"], head["totalMaxScore"] = head.pop("score"), head.pop("maxScore")
        return {"parent": head, "children": rows, "pagination": pagination}
    return {"overview": head, "monthlyChart": [], "evaluation": rows, "pagination": pagination}


def answer(path: str, body: Any, today: date | None = None,
           official: OfficialScores | None = None) -> dict[str, Any]:
    """The envelope for one API call (pure: the server and tests share it). `official` derives the home
    province's units' scores from the sandbox province's dossiers (see official.py). Nothing is published
    after `today`: by default the day of `official`'s clock, else the project's (ingestion.clock)."""
    if today is None:
        today = official.today() if official else clock.today()
    try:
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        name = path.removeprefix("/api/v1/reporting/")
        if name == "evaluation/service-results":
            period = period_of(body)
            if body.get("rootDepartmentId"):
                root = province(str(body["rootDepartmentId"]))
                if root is None:
                    return {"code": "NOT_FOUND", "message": "rootDepartmentId not found", "data": None}
                data = province_table(root, period, body, today, official if root.code == HOME_CODE else None)
            else:
                data = national_table(period, today)
        elif name.removeprefix("evaluation/") in ENDPOINT_GROUP:
            root = province(str(body.get("rootDepartmentId") or ""))
            if root is None:
                raise BadRequest("rootDepartmentId is required and must be a province")
            data = group_detail(name.removeprefix("evaluation/"), root, period_of(body), body, today,
                                official if root.code == HOME_CODE else None)
        else:
            return {"code": "NOT_FOUND", "message": f"no such report: {path}", "data": None}
    except BadRequest as exc:
        return {"code": "BAD_REQUEST", "message": str(exc), "data": None}
    return {"code": "OK", "message": "OK", "data": data}


# --- server ---------------------------------------------------------------------------------------


class Handler(SandboxHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self.handle_admin("POST"):
            return
        raw = self.read_body()
        fault = self.faults.take(self.path)
        if self.fault_before(fault):
            return
        if fault and fault.get("envelope_error"):
            self.send_json(201, {"code": "INTERNAL_SERVER_ERROR", "message": "Hệ thống đang bận (injected)",
                                 "data": None})
            return
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if not self.path.startswith("/api/v1/reporting/"):
            self.send_json(404, {"code": "NOT_FOUND", "message": f"no such path: {self.path}", "data": None})
            return
        official = getattr(self.server, "official", None)
        envelope = answer(self.path.split("?")[0], body, official=official)
        self.send_with_fault(201, orjson.dumps(envelope), fault)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?")[0] == "/_sandbox/unsynced":
            official = getattr(self.server, "official", None)
            self.send_json(200, official.describe() if official else {"unsynced": {}, "derived_groups": []})
            return
        if self.handle_admin("GET"):
            return
        self.send_json(405, {"code": "METHOD_NOT_ALLOWED", "message": "use POST", "data": None},
                       {"Allow": "POST"})

    do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815


def make_server(host: str = "127.0.0.1", port: int = 0, fault_rate: float = 0.0,
                verbose: bool = False, derive: bool = True, **province: Any) -> SandboxServer:
    """`province`: the S2 sandbox province's keywords (seed, dossiers_per_day, history_days, start, as_of;
    defaults as the S2 sandbox's); `derive=False` serves synthetic scores only."""
    server = SandboxServer((host, port), Handler, Faults(rate=fault_rate), verbose=verbose)
    if derive:
        from ingestion.sandbox.official import OfficialScores

        server.official = OfficialScores(**province)  # type: ignore[attr-defined]
    return server


@contextmanager
def serve(host: str = "127.0.0.1", port: int = 0, fault_rate: float = 0.0, **province: Any) -> Iterator[str]:
    """Run the sandbox in a thread (port 0 = a free port); yields its base URL. Keywords as make_server."""
    with running(make_server(host, port, fault_rate, **province)) as base_url:
        yield base_url


def main(argv: list[str] | None = None) -> None:
    from ingestion.config import settings

    parser = argparse.ArgumentParser(description="Sandbox of the DVCQG reporting API (S1)")
    parser.add_argument("--host", default=settings().sandbox_host)
    parser.add_argument("--port", type=int, default=settings().sandbox_dvcqg_port)
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="share of requests given a random fault (demo; off by default)")
    parser.add_argument("--verbose", action="store_true")
    from ingestion.sandbox.province import province_options

    province_options(parser)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, args.fault_rate, args.verbose, seed=args.seed,
                         dossiers_per_day=args.dossiers_per_day, history_days=args.history_days,
                         start=args.start, as_of=args.as_of)
    print(f"DVCQG sandbox on {server.base_url} (fault rate {args.fault_rate}; home units scored from the "
          f"dossiers from {server.official.province.start})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
