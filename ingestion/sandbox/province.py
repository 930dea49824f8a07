"""The sandbox province: a deterministic, synthetic Đắk Lắk for the S2-S4 sandbox servers.

Everything is a pure function of the seed. A dossier is identified by (receipt day, number in the day)
and every attribute of it comes from a counter-based hash of (seed, day, number, attribute), computed
with numpy for many dossiers at once. So any dossier, day or window is computed on demand, in any
order, without generating anything else and without state.

Scale knob: `dossiers_per_day` (average per calendar day; working days get ~1.3x, Saturdays ~0.3x,
Sundays ~0.05x, public holidays and Tết none, the last three working days of a month +40%) and
`history_days` (days of history before today; `start`, the first day, may be given instead; the
servers count it back from their clock). Total dossiers ~=
dossiers_per_day x history_days (`count_between` gives the exact number).

State "as of" a clock: a dossier's lifecycle is a fixed set of event times (submitted, received,
processing, up to two supplement requests and returns, fee request and payment, its end, result
returned); as of time A it shows the events up to A, its `NgayCapNhat` is the last of them. No
lifecycle is longer than MAX_LIFE days, so the dossiers whose `NgayCapNhat` falls in a window
[f, t) are found among those received from f - MAX_LIFE days to t (`window_index`).

Memory: `window_index` keeps 24 bytes per dossier *in the window* (a sorted numpy index of
(NgayCapNhat, day, number); 32 while it is sorted) plus the arrays of one receipt day at a time;
records are built page by page (`records`) and never kept. Nothing grows with the length of the history
or the total number of dossiers: the scan over the MAX_LIFE + window days costs time (vectorised,
about 1 us per dossier scanned), not memory. Measured: a 1,026,176-dossier history (11,112 a day over
90 days) paged out in 1,000-record pages as JSON over HTTP costs the server ~30 s of one core
(~34,000 dossiers/s, index build included) with a peak RSS of ~160 MB.

MaHoSo is `<unit prefix>-<yymmdd of receipt>-<number in the day>`, the number 4 digits wide (6 when
dossiers_per_day > 4,000, so text order stays numeric order).

Realistic mess (shares in MESS): some text in NFD, "" instead of null in optional fields, pre-merger
unit identities (before 2025-07-01, and a few "legacy desks" after): `MaDonVi` = the old commune's
5-digit statistics code (only codes merged *fully* into one new commune, so the mapping is unique),
or for a third of them the old unit's name (e.g. "Xã Hòa Kiến", only unambiguous names) with
`DonViXuLy` "UBND <old name>"; and impossible records: `NgayHenTra` before `NgayTiepNhan`,
`TrangThaiHoSo` 0 or 11, `MaDonVi` "H15.999".
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np

from ingestion import clock, reference
from ingestion.sandbox import dvcqg

HOME = "H15"
TZ = clock.LOCAL_TZ
DAY = 86400
MAX_LIFE = 100  # days from receipt to a dossier's last event (events later than that are dropped)
MERGER = date(2025, 7, 1)
# The sandbox province's defaults, shared by the S1-S4 sandboxes (their CLIs and `chiso up`)
DEFAULT_SEED, DEFAULT_DOSSIERS_PER_DAY, DEFAULT_HISTORY_DAYS = 766, 2500, 90
OPEN, CLOSE = 7 * 3600 + 1800, 17 * 3600  # working hours 07:30-17:00
MESS = {"nfd": 0.03, "empty": 0.08, "old_before_merger": 0.06, "old_after_merger": 0.003,
        "impossible": 0.003}

# Public holidays (Tết and the fixed ones, as the government announced them; 2027 approximate).
_HOLIDAY_RANGES = [
    ("2025-01-01", "2025-01-01"), ("2025-01-25", "2025-02-02"), ("2025-04-07", "2025-04-07"),
    ("2025-04-30", "2025-05-04"), ("2025-08-30", "2025-09-02"),
    ("2026-01-01", "2026-01-01"), ("2026-02-14", "2026-02-22"), ("2026-04-27", "2026-04-27"),
    ("2026-04-30", "2026-05-03"), ("2026-08-29", "2026-09-02"),
    ("2027-01-01", "2027-01-01"), ("2027-02-04", "2027-02-10"), ("2027-04-16", "2027-04-16"),
    ("2027-04-30", "2027-05-02"), ("2027-09-02", "2027-09-03"),
]


def _holidays() -> frozenset[date]:
    out = set()
    for a, b in _HOLIDAY_RANGES:
        d, end = date.fromisoformat(a), date.fromisoformat(b)
        while d <= end:
            out.add(d)
            d += timedelta(days=1)
    return frozenset(out)


HOLIDAYS = _holidays()


def province_options(parser: Any) -> None:
    """The sandbox province's command-line options, one set for the S1-S4 sandboxes (argparse parser)."""
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--dossiers-per-day", type=float, default=DEFAULT_DOSSIERS_PER_DAY)
    parser.add_argument("--history-days", type=int, default=DEFAULT_HISTORY_DAYS)
    parser.add_argument("--start", type=date.fromisoformat, default=None,
                        help="first day with dossiers (default: the clock's day - history days)")
    parser.add_argument("--as-of", default=None, help="fix the clock (ISO-8601); default: real time")


def is_working_day(d: date) -> bool:
    return d.weekday() < 5 and d not in HOLIDAYS


class _Calendar:
    """Working-day lookups as arrays over day ordinals (vectorised due dates)."""

    def __init__(self, first: date = date(2015, 1, 1), last: date = date(2040, 12, 31)) -> None:
        self.base = first.toordinal()
        n = last.toordinal() - self.base + 1
        days = [first + timedelta(days=k) for k in range(n)]
        self.working = np.array([is_working_day(d) for d in days])
        self.upto = np.cumsum(self.working)  # working days <= the day (since `first`)
        self.list = np.flatnonzero(self.working) + self.base  # ordinals of working days
        nxt = np.empty(n, dtype=np.int64)  # the first working day >= the day
        following = n + self.base
        for k in range(n - 1, -1, -1):
            if self.working[k]:
                following = k + self.base
            nxt[k] = following
        self.next = nxt

    def add(self, day: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The n-th working day after `day` (ordinals)."""
        return self.list[self.upto[day - self.base] + n - 1]

    def snap(self, ts: np.ndarray) -> np.ndarray:
        """Move times outside working hours to the next working morning (absent -1 stays)."""
        d, tod = ts // DAY, ts % DAY
        late = tod >= CLOSE
        d = np.where(late, d + 1, d)
        tod = np.where(late | (tod < OPEN), OPEN + tod % 2700, tod)
        d = self.next[np.clip(d - self.base, 0, len(self.next) - 1)]
        return np.where(ts < 0, -1, d * DAY + tod)


@cache
def calendar() -> _Calendar:
    return _Calendar()


# --- time formats ------------------------------------------------------------------------------------


@cache
def _hms() -> tuple[str, ...]:
    return tuple(f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}" for s in range(DAY))


@cache
def _ymd(ordinal: int) -> str:
    return date.fromordinal(ordinal).strftime("%Y%m%d")


def fmt(ts: int) -> str | None:
    """Local seconds (day ordinal x 86400 + second of day) -> yyyyMMddHHmmss; negative -> None."""
    if ts < 0:
        return None
    return _ymd(ts // DAY) + _hms()[ts % DAY]


def fmt_iso(ts: int) -> str:
    """Local seconds -> ISO-8601 with +07:00 (S4)."""
    hms = f"{ts % DAY // 3600:02d}:{ts % 3600 // 60:02d}:{ts % 60:02d}"
    return f"{date.fromordinal(ts // DAY).isoformat()}T{hms}+07:00"


def to_ts(value: datetime | date) -> int:
    """A local (naive or +07:00) datetime or date -> local seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(TZ).replace(tzinfo=None)
        # whole seconds; a fraction rounds up (records at second t are before t.5 and not after it)
        return value.toordinal() * DAY + value.hour * 3600 + value.minute * 60 + value.second + (
            value.microsecond > 0)
    return value.toordinal() * DAY


def parse_time(text: str) -> int:
    """ISO-8601 (date, naive local, Z or any offset) or yyyyMMddHHmmss -> local seconds."""
    text = text.strip()
    if len(text) == 14 and text.isdigit():
        return to_ts(datetime.strptime(text, "%Y%m%d%H%M%S"))
    if len(text) == 10:
        return to_ts(date.fromisoformat(text))
    return to_ts(datetime.fromisoformat(text.replace("Z", "+00:00")))


def now_ts() -> int:
    return to_ts(clock.now())


# --- hashing -----------------------------------------------------------------------------------------

_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x + _GOLD
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniforms(seed: int, day: np.ndarray, num: np.ndarray, k: int) -> np.ndarray:
    """(n, k) uniforms in [0, 1) for dossiers (day, num): column j is attribute j."""
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * np.uint64(1_000_003) + day.astype(np.uint64) * np.uint64(2_654_435_761)
                    ^ (num.astype(np.uint64) << np.uint64(20)))
        cols = _mix(base[:, None] + np.arange(k, dtype=np.uint64)[None, :] * _GOLD)
    return (cols >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def h(*parts: Any) -> float:
    """A deterministic number in [0, 1) (scalar use)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# --- units -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    idx: int
    code: str  # DVCQG code H15.<n>, as the S1 sandbox assigns them
    name: str
    level: str  # SO_NGANH or XA
    stats_code: str | None
    prefix: str  # MaHoSo prefix, e.g. 000.31.10.H15
    weight: float  # share of the province's dossiers
    online: float  # share submitted online
    late: float  # share of dossiers finished late
    old: tuple[tuple[str, str], ...]  # (old code, old name) merged fully into this commune


@cache
def units(seed: int = 766) -> tuple[Unit, ...]:
    """16 agencies then 102 communes, codes and names as the S1 sandbox's."""
    s1 = dvcqg.units(HOME)
    communes = reference.daklak_communes()
    names = [n for c in communes for n in c["merged_from_old_names"].split(";")]
    chronic = sorted(range(len(communes)), key=lambda j: h(seed, "chronic", j))[:6]
    out = []
    for k, u in enumerate(s1):
        if u.type == "PROVINCIAL_DEPARTMENT":
            out.append(Unit(k, u.code, u.name, "SO_NGANH", None, f"000.00.{k + 1:02d}.{HOME}",
                            0.35 / 16 * (0.3 + 1.4 * h(seed, u.code, "w")), 0.3 + 0.5 * h(seed, u.code, "on"),
                            0.025 * h(seed, u.code, "late"), ()))
            continue
        j = k - 16
        c = communes[j]
        old = tuple((code, name) for code, name, kind in zip(c["merged_from_old_codes"].split(";"),
                                                             c["merged_from_old_names"].split(";"),
                                                             c["merge_types"].split(";"), strict=True)
                    if kind == "full" and names.count(name) == 1)
        late = 0.08 + 0.08 * h(seed, u.code, "late") if j in chronic else 0.025 * h(seed, u.code, "late") ** 2
        out.append(Unit(k, u.code, u.name, "XA", c["commune_code_2025"],
                        f"000.{31 + j // 20:02d}.{10 + j % 20:02d}.{HOME}",
                        0.65 / 102 * (0.2 + 1.6 * h(seed, u.code, "w") ** 1.5),
                        0.08 + 0.5 * h(seed, u.code, "on"), late, old))
    return tuple(out)


def chronic_late(seed: int = 766) -> list[Unit]:
    return [u for u in units(seed) if u.level == "XA" and u.late >= 0.08]


# --- procedures ----------------------------------------------------------------------------------

# (agency index or -1 for communes, field code, field name, fee VND or 0, working days, base names)
_FIELDS: list[tuple[int, str, str, int, int, tuple[str, ...]]] = [
    (-1, "HT", "Hộ tịch", 0, 3, (
        "Đăng ký khai sinh", "Đăng ký kết hôn", "Đăng ký khai tử", "Đăng ký nhận cha, mẹ, con",
        "Cấp bản sao trích lục hộ tịch", "Cấp Giấy xác nhận tình trạng hôn nhân", "Đăng ký giám hộ",
        "Đăng ký thay đổi, cải chính, bổ sung thông tin hộ tịch",)),
    (-1, "CT", "Chứng thực", 2000, 1, (
        "Chứng thực bản sao từ bản chính", "Chứng thực chữ ký", "Chứng thực hợp đồng, giao dịch",
        "Chứng thực việc sửa đổi, bổ sung hợp đồng",)),
    (-1, "DD", "Đất đai", 100000, 15, (
        "Đăng ký biến động quyền sử dụng đất", "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu",
        "Hòa giải tranh chấp đất đai", "Chuyển mục đích sử dụng đất", "Đăng ký thế chấp quyền sử dụng đất",)),
    (-1, "XD", "Xây dựng", 75000, 15, (
        "Cấp giấy phép xây dựng nhà ở riêng lẻ", "Điều chỉnh giấy phép xây dựng",
        "Cấp giấy phép sửa chữa, cải tạo công trình",)),
    (-1, "HKD", "Thành lập và hoạt động của hộ kinh doanh", 100000, 3, (
        "Đăng ký thành lập hộ kinh doanh", "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh",
        "Tạm ngừng kinh doanh hộ kinh doanh",)),
    (-1, "NCC", "Người có công", 0, 12, (
        "Giải quyết chế độ trợ cấp ưu đãi", "Cấp giấy giới thiệu thăm viếng mộ liệt sĩ",
        "Giải quyết chế độ mai táng phí",)),
    (-1, "BTXH", "Bảo trợ xã hội", 0, 10, (
        "Trợ cấp xã hội hàng tháng", "Hỗ trợ chi phí mai táng", "Xác định mức độ khuyết tật",)),
    (-1, "GD", "Giáo dục và Đào tạo", 0, 10, (
        "Cho phép nhóm trẻ, lớp mẫu giáo độc lập hoạt động", "Chuyển trường đối với học sinh tiểu học",)),
    (-1, "NN", "Nông nghiệp", 0, 7, (
        "Hỗ trợ khôi phục sản xuất nông nghiệp", "Xác nhận nguồn gốc lâm sản",)),
    (0, "TH", "Tổng hợp", 0, 15, (
        "Tiếp nhận văn bản đề nghị", "Cho ý kiến đề án",)),
    (1, "LD", "Lao động, việc làm", 600000, 10, (
        "Cấp giấy phép lao động cho người nước ngoài", "Đăng ký nội quy lao động",
        "Cấp giấy phép hoạt động dịch vụ việc làm",)),
    (1, "TDKT", "Thi đua, khen thưởng", 0, 20, (
        "Tặng Bằng khen của Chủ tịch UBND tỉnh", "Tặng danh hiệu Tập thể lao động xuất sắc",)),
    (2, "LLTP", "Lý lịch tư pháp", 200000, 10, (
        "Cấp Phiếu lý lịch tư pháp số 1", "Cấp Phiếu lý lịch tư pháp số 2",)),
    (2, "CC", "Công chứng, luật sư", 500000, 10, (
        "Đăng ký hoạt động văn phòng công chứng", "Cấp thẻ công chứng viên",
        "Đăng ký hoạt động tổ chức hành nghề luật sư",)),
    (2, "HTNN", "Hộ tịch có yếu tố nước ngoài", 1500000, 10, (
        "Đăng ký kết hôn có yếu tố nước ngoài", "Đăng ký khai sinh có yếu tố nước ngoài",)),
    (3, "DKKD", "Thành lập và hoạt động doanh nghiệp", 50000, 3, (
        "Đăng ký thành lập doanh nghiệp tư nhân", "Đăng ký thành lập công ty TNHH một thành viên",
        "Đăng ký thay đổi người đại diện theo pháp luật", "Thông báo tạm ngừng kinh doanh",)),
    (3, "DT", "Đầu tư tại Việt Nam", 0, 15, (
        "Chấp thuận chủ trương đầu tư", "Điều chỉnh Giấy chứng nhận đăng ký đầu tư",)),
    (4, "TM", "Thương mại", 1200000, 15, (
        "Cấp Giấy phép bán lẻ sản phẩm rượu", "Đăng ký tổ chức hội chợ, triển lãm thương mại",
        "Cấp Giấy chứng nhận đủ điều kiện kinh doanh xăng dầu",)),
    (4, "DL", "Điện lực", 700000, 15, (
        "Cấp giấy phép hoạt động phân phối điện", "Cấp thẻ kiểm tra viên điện lực",)),
    (5, "DDT", "Đất đai", 500000, 20, (
        "Giao đất, cho thuê đất", "Gia hạn sử dụng đất", "Đăng ký biến động đất đai cho tổ chức",)),
    (5, "MT", "Môi trường", 6000000, 30, (
        "Cấp giấy phép môi trường", "Thẩm định báo cáo đánh giá tác động môi trường",)),
    (5, "TNN", "Tài nguyên nước", 1000000, 25, (
        "Cấp giấy phép khai thác nước dưới đất",)),
    (5, "TV", "Trồng trọt và bảo vệ thực vật", 500000, 12, (
        "Cấp Giấy chứng nhận cơ sở đủ điều kiện buôn bán phân bón",)),
    (6, "XDT", "Xây dựng", 300000, 20, (
        "Cấp giấy phép xây dựng công trình cấp đặc biệt", "Thẩm định báo cáo nghiên cứu khả thi",
        "Cấp chứng chỉ hành nghề hoạt động xây dựng",)),
    (6, "GT", "Đường bộ", 135000, 5, (
        "Đổi giấy phép lái xe", "Cấp giấy phép lái xe quốc tế", "Cấp phù hiệu xe kinh doanh vận tải",)),
    (7, "KHCN", "Hoạt động khoa học và công nghệ", 0, 15, (
        "Đăng ký kết quả thực hiện nhiệm vụ khoa học và công nghệ", "Cấp giấy phép hoạt động báo chí in",)),
    (8, "GDT", "Giáo dục và Đào tạo", 0, 10, (
        "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", "Chỉnh sửa nội dung văn bằng",
        "Cho phép trường trung học phổ thông hoạt động giáo dục",)),
    (9, "YT", "Khám bệnh, chữa bệnh", 360000, 30, (
        "Cấp giấy phép hành nghề khám bệnh, chữa bệnh", "Cấp giấy phép hoạt động đối với phòng khám",)),
    (9, "DUOC", "Dược phẩm", 500000, 20, (
        "Cấp Chứng chỉ hành nghề dược", "Cấp Giấy chứng nhận đủ điều kiện kinh doanh dược",)),
    (10, "VH", "Văn hóa, du lịch", 3000000, 10, (
        "Cấp giấy phép kinh doanh dịch vụ lữ hành nội địa", "Công nhận hạng cơ sở lưu trú du lịch",
        "Cấp giấy phép tổ chức lễ hội",)),
    (11, "TG", "Tôn giáo", 0, 20, (
        "Đăng ký sinh hoạt tôn giáo tập trung", "Chấp thuận tổ chức cuộc lễ ngoài cơ sở tôn giáo",)),
    (12, "NV", "Ngoại vụ", 0, 15, (
        "Cho phép tổ chức hội nghị, hội thảo quốc tế",)),
    (13, "KNTC", "Giải quyết khiếu nại, tố cáo", 0, 30, (
        "Giải quyết khiếu nại lần đầu", "Giải quyết tố cáo",)),
    (14, "KKT", "Quản lý khu kinh tế", 0, 15, (
        "Cấp Giấy chứng nhận đăng ký đầu tư trong khu kinh tế",)),
    (15, "CTR", "Phòng cháy, chữa cháy", 0, 15, (
        "Thẩm duyệt thiết kế về phòng cháy và chữa cháy", "Nghiệm thu về phòng cháy và chữa cháy",)),
]
_VARIANTS = ("", " (cấp lại)", " (cấp đổi)", " (điều chỉnh)", " (gia hạn)", " trực tuyến", " cho tổ chức",
             " cho cá nhân", " lưu động", " (thủ tục rút gọn)", " liên thông", " có yếu tố nước ngoài",
             " (bổ sung)", " trong khu công nghiệp", " (trường hợp đặc biệt)", " kết hợp", " lần đầu",
             " (chuyển tiếp)", " đối với người dân tộc thiểu số", " (thí điểm)")
N_PROCEDURES, N_INTEGRATED, N_XA = 2168, 1946, 420


@dataclass(frozen=True)
class Procedure:
    idx: int
    code: str
    name: str
    field_code: str
    field_name: str
    level: str  # TINH or XA
    agency: int  # owning agency index, -1 for commune procedures
    mode: str  # TOAN_TRINH, MOT_PHAN, KHONG
    fee: int  # VND, 0 = no fee
    paper: bool
    days: int
    published: date
    active: bool
    weight: float

    def catalogue_row(self) -> dict[str, Any]:
        return {"MaTTHC": self.code, "TenTTHC": self.name, "MaLinhVuc": self.field_code,
                "TenLinhVuc": self.field_name, "CapThucHien": self.level, "MucDoDVC": self.mode,
                "TichHopDVCQG": self.mode != "KHONG", "CoPhiLePhi": self.fee > 0,
                "YeuCauKetQuaGiay": self.paper, "ThoiHanGiaiQuyetNgay": self.days,
                "NgayCongBo": self.published.strftime("%Y%m%d") + "080000",
                "TrangThai": "HIEU_LUC" if self.active else "BAI_BO"}


@cache
def procedures(seed: int = 766) -> tuple[Procedure, ...]:
    """2,168 procedures: 420 commune-level, the rest provincial; 1,946 online (integrated with DVCQG)."""
    xa = [f for f in _FIELDS if f[0] < 0]
    tinh = [f for f in _FIELDS if f[0] >= 0]
    plan: list[tuple[tuple[int, str, str, int, int, tuple[str, ...]], str, int]] = []
    for group, total in ((xa, N_XA), (tinh, N_PROCEDURES - N_XA)):
        bases = [(f, b) for f in group for b in f[5]]
        for k in range(total):
            f, b = bases[k % len(bases)]
            plan.append((f, b + _VARIANTS[(k // len(bases)) % len(_VARIANTS)], k))
    order = sorted(range(N_PROCEDURES), key=lambda i: h(seed, "mode", i))
    offline = set(order[: N_PROCEDURES - N_INTEGRATED])
    numbers = sorted(range(1000, 14000), key=lambda n: h(seed, "code", n))[:N_PROCEDURES]
    out = []
    for i, (f, name, rank) in enumerate(plan):
        agency, fcode, fname, fee, days, _ = f
        x = h(seed, "proc", i)
        mode = "KHONG" if i in offline else ("TOAN_TRINH" if x < 0.45 else "MOT_PHAN")
        prefix = "1" if x < 0.7 else ("2" if x < 0.95 else "3")
        # Popular procedures first: the base names (variant "") carry the volume.
        weight = (1.0 / (1 + rank) ** 0.6) * (8.0 if fcode in ("CT", "HT") else 1.0)
        out.append(Procedure(
            i, f"{prefix}.{numbers[i]:06d}", name, f"G{agency + 2:02d}-{fcode}", fname,
            "XA" if agency < 0 else "TINH", agency, mode,
            fee if fee and h(seed, "fee", i) < 0.85 else 0, h(seed, "paper", i) < 0.6,
            max(1, round(days * (0.6 + 0.8 * h(seed, "days", i)))),
            date(2021, 1, 1) + timedelta(days=int(1700 * h(seed, "pub", i))),
            h(seed, "abolished", i) >= 0.03, weight))
    return tuple(out)


class _ProcedurePicker:
    """Vectorised choice of a procedure for a unit: agency a picks among its own (group a), communes
    among the commune-level ones (group 16); the groups' CDFs are concatenated with offset = group."""

    def __init__(self, seed: int) -> None:
        procs = [p for p in procedures(seed) if p.active]
        cdf, ids = [], []
        for g in range(17):
            mine = [p for p in procs if (p.agency if p.agency >= 0 else 16) == g]
            w = np.array([p.weight for p in mine])
            cdf.append(g + np.cumsum(w) / w.sum())
            ids.extend(p.idx for p in mine)
        self.cdf = np.concatenate(cdf)
        self.cdf[-1] = 17.0
        self.ids = np.array(ids)

    def pick(self, group: np.ndarray, u: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.cdf, group + u, side="right")
        return self.ids[np.minimum(pos, len(self.ids) - 1)]


# --- applicants --------------------------------------------------------------------------------------

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
           "Ngô", "Dương", "Lý")
_MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Thị Kim", "Xuân")
_GIVEN = ("An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng", "Hương", "Khánh",
          "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Thắng",
          "Trang", "Trung", "Tuấn", "Uyên", "Vân", "Yến")
_EDE_GIVEN = ("Y Moan", "H'Hen", "Y Jut", "H'Linh", "Y Bhin", "H'Năm", "Y Khoa", "H'Ngọc")
_EDE_CLAN = ("Niê", "Êban", "Mlô", "Ayun", "Byă", "Kbuôr", "Knul", "Adrơng")
_COMPANY = ("Công ty TNHH", "Công ty Cổ phần", "Hợp tác xã", "Doanh nghiệp tư nhân")
_COMPANY_NAME = ("Cà phê Tây Nguyên", "Nông sản Ea Kar", "Xây dựng Phú Yên", "Thương mại Buôn Ma Thuột",
                 "Du lịch Vũng Rô", "Vận tải Krông Pắc", "Thủy sản Sông Cầu", "Gỗ Đắk Lắk")
_FILES = ("Tờ khai", "Bản sao giấy tờ tùy thân", "Giấy tờ chứng minh", "Sơ đồ vị trí", "Văn bản ủy quyền",
          "Bản vẽ thiết kế")
_RESULT = ("Giấy chứng nhận", "Quyết định", "Bản sao điện tử", "Trích lục", "Giấy phép", "Văn bản trả lời")


@cache
def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in plain if c.isascii() and c.isalnum()).lower()


# --- dossiers ----------------------------------------------------------------------------------------

# Lifecycle event columns and the status each sets (the end column's status varies per dossier).
EVENTS = ("submitted", "received", "processing", "sup1_req", "sup1_back", "sup2_req", "sup2_back",
          "fee_req", "fee_paid", "end", "returned")
STATUS = np.array([1, 2, 4, 5, 4, 5, 4, 6, 4, 0, 10])
END = EVENTS.index("end")
K = 40  # uniforms per dossier: columns named in U
U = {name: j for j, name in enumerate((
    "unit", "proc", "channel", "tod", "lead", "proc_delay", "outcome", "late", "frac", "sups", "s1_at",
    "s1_wait",
    "s1_gone", "s2_at", "s2_wait", "fee", "fee_wait", "ret", "ret_wait", "nfd", "empty", "old", "impossible",
    "name", "id", "phone", "email", "vneid", "pay", "files", "digitised", "kho", "result", "e_result",
    "org", "rate", "rate_at", "rate_level", "kind", "spare"))}


@dataclass
class Lives:
    """The lifecycle arrays of a set of dossiers (one receipt day, or one page)."""

    day: np.ndarray  # receipt day ordinal
    num: np.ndarray  # number within the day (0-based)
    u: np.ndarray  # (n, K) uniforms
    unit: np.ndarray
    proc: np.ndarray
    channel: np.ndarray
    events: np.ndarray  # (n, len(EVENTS)) local seconds, -1 = no such event
    end_status: np.ndarray
    due0: np.ndarray  # first due date (local seconds)
    due1: np.ndarray  # due after the first supplement's return
    due2: np.ndarray  # after the second's

    def as_of(self, at: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(NgayCapNhat, status) as of `at` (one time, or one per dossier); NgayCapNhat -1 when the
        dossier does not exist yet."""
        at = np.asarray(at)
        seen = (self.events >= 0) & (self.events <= (at[:, None] if at.ndim else at))
        last = np.where(seen, np.arange(len(EVENTS)), -1).max(axis=1)
        rows = np.arange(len(last))
        upd = np.where(last >= 0, self.events[rows, np.maximum(last, 0)], -1)
        status = np.where(last == END, self.end_status, STATUS[np.maximum(last, 0)])
        return upd, status


class Province:
    """The sandbox province. `start` (first day with dossiers) defaults to today - history_days."""

    def __init__(self, seed: int = 766, dossiers_per_day: float = 2500, history_days: int = 90,
                 start: date | None = None) -> None:
        self.seed, self.dossiers_per_day = seed, float(dossiers_per_day)
        self.start = start or (clock.today() - timedelta(days=history_days))
        self.units = units(seed)
        self.procedures = procedures(seed)
        self._picker = _ProcedurePicker(seed)
        self._unit_cdf = np.cumsum([u.weight for u in self.units])
        self._unit_cdf /= self._unit_cdf[-1]
        self.width = 4 if self.dossiers_per_day * 2.5 < 10_000 else 6  # MaHoSo number digits

    # -- volumes --

    def day_factor(self, d: date) -> float:
        if d in HOLIDAYS:
            return 0.0
        wd = d.weekday()
        if wd == 6:
            return 0.05
        if wd == 5:
            return 0.3
        # month-end spike: the last three working days of the month
        nxt, left = d, 0
        while (nxt := nxt + timedelta(days=1)).month == d.month:
            left += is_working_day(nxt)
        return 1.3 * (1.4 if left < 3 else 1.0)

    def count(self, d: date) -> int:
        """Dossiers received on day d."""
        if d < self.start:
            return 0
        noise = 0.9 + 0.2 * h(self.seed, "n", d)
        return int(self.dossiers_per_day * self.day_factor(d) * noise)

    def count_between(self, first: date, last: date) -> int:
        d, n = first, 0
        while d <= last:
            n += self.count(d)
            d += timedelta(days=1)
        return n

    # -- lifecycles --

    def lives(self, day: np.ndarray, num: np.ndarray) -> Lives:
        """The lifecycles of dossiers (day, num), vectorised."""
        cal, n = calendar(), len(day)
        day = day.astype(np.int64)
        u = uniforms(self.seed, day, num, K)
        unit = np.minimum(np.searchsorted(self._unit_cdf, u[:, U["unit"]], side="right"), len(self.units) - 1)
        group = np.minimum(unit, 16)  # agencies 0..15 own their procedures; communes share group 16
        proc = self._picker.pick(group, u[:, U["proc"]])
        p_days, p_fee, p_mode = _proc_arrays(self.seed)
        online_share = _unit_arrays(self.seed)[0][unit]
        late_share = _unit_arrays(self.seed)[1][unit]
        c = u[:, U["channel"]]
        can_online = p_mode[proc] > 0
        channel = np.where(can_online & (c < online_share), 2, np.where(c > 0.975, 3, 1))
        working = cal.working[day - cal.base]
        # received in working hours (weekend/holiday receipts: online auto-receipt at any hour)
        tod = np.where(working, OPEN + (u[:, U["tod"]] ** 1.3) * (CLOSE - OPEN - 600),
                       8 * 3600 + u[:, U["tod"]] * 12 * 3600).astype(np.int64)
        recv = day * DAY + tod
        lead = np.where(channel == 2, u[:, U["lead"]] * 40 * 3600,
                        np.where(channel == 3, DAY + u[:, U["lead"]] * 2 * DAY, u[:, U["lead"]] * 1200))
        sub = recv - lead.astype(np.int64)
        start_proc = recv + (300 + u[:, U["proc_delay"]] * 4 * 3600).astype(np.int64)
        days = p_days[proc]
        due0_day = cal.add(day, days)
        due0 = due0_day * DAY + np.minimum(tod, CLOSE - 1)
        span = (due0 - recv).astype(np.float64)
        # outcome: refused 1.5%, withdrawn 1%, stopped 0.5%, processed otherwise
        o = u[:, U["outcome"]]
        end_status = np.select([o < 0.015, o < 0.025, o < 0.03], [3, 7, 8], 9)
        late = u[:, U["late"]] < late_share
        frac = 0.1 + 0.88 * u[:, U["frac"]] ** 0.8
        base_end = np.where(late, due0 + (3600 + u[:, U["frac"]] ** 2 * 12 * DAY), recv + frac * span)
        # supplements: 7% one request, 0.8% two (land and building more often)
        sups = np.select([u[:, U["sups"]] < 0.008, u[:, U["sups"]] < 0.07], [2, 1], 0)
        sups = np.where(end_status == 3, 0, sups)
        s1_at = (0.1 + 0.4 * u[:, U["s1_at"]]) * (base_end - start_proc)
        s1_req = cal.snap((start_proc + s1_at).astype(np.int64))
        s1_wait = (0.5 + u[:, U["s1_wait"]] ** 1.5 * 13) * DAY
        s1_back = cal.snap((s1_req + s1_wait).astype(np.int64))
        gone = u[:, U["s1_gone"]] < 0.1  # the applicant never returns: withdrawn later
        s2_req = cal.snap((s1_back + (0.2 + 0.3 * u[:, U["s2_at"]]) * DAY * 3).astype(np.int64))
        s2_back = cal.snap((s2_req + (0.5 + u[:, U["s2_wait"]] * 8) * DAY).astype(np.int64))
        d_s1 = np.where(sups >= 1, s1_back - s1_req, 0)
        d_s2 = np.where(sups >= 2, s2_back - s2_req, 0)
        # the applicant's waiting time is not counted: the due date moves on by it (to working hours)
        due1 = cal.snap(due0 + (s1_back - s1_req))
        due2 = cal.snap(due1 + (s2_back - s2_req))
        end = cal.snap((base_end + d_s1 + d_s2).astype(np.int64))
        due_final = np.where(sups >= 2, due2, np.where(sups == 1, due1, due0))
        end = np.where(~late & (end > due_final), due_final - 60, end)
        # early terminal outcomes
        end = np.where(end_status == 3, cal.snap(recv + (u[:, U["frac"]] * 2 * DAY).astype(np.int64)), end)
        early_stop = (end_status == 7) | (end_status == 8)
        end = np.where(early_stop, cal.snap((start_proc + u[:, U["frac"]] * span).astype(np.int64)), end)
        gone &= sups >= 1
        end = np.where(gone, cal.snap(s1_req + ((20 + 20 * u[:, U["s1_wait"]]) * DAY).astype(np.int64)), end)
        end_status = np.where(gone, 7, end_status)
        # fee requested then paid shortly before the end (some procedures)
        fee = (p_fee[proc] > 0) & (u[:, U["fee"]] < 0.3) & (end_status == 9)
        # paid online at any hour, between the last supplement back (or processing start) and the end
        lo = np.maximum(start_proc, np.where(sups >= 2, s2_back, np.where(sups == 1, s1_back, 0)))
        gap = np.maximum(end - lo, 120)
        fee_req = lo + (0.2 + 0.5 * u[:, U["fee_wait"]]) * gap
        fee_paid = (fee_req + (end - fee_req) * 0.6 * u[:, U["fee"]] / 0.3).astype(np.int64)
        fee_req = fee_req.astype(np.int64)
        returned = (end_status == 9) & (u[:, U["ret"]] < 0.88)
        ret = cal.snap(end + (60 + u[:, U["ret_wait"]] ** 2 * 10 * DAY).astype(np.int64))

        ev = np.full((n, len(EVENTS)), -1, dtype=np.int64)
        ev[:, 0], ev[:, 1] = sub, recv
        not_refused = end_status != 3
        ev[:, 2] = np.where(not_refused, start_proc, -1)
        ev[:, 3] = np.where(sups >= 1, s1_req, -1)
        ev[:, 4] = np.where((sups >= 1) & ~gone, s1_back, -1)
        ev[:, 5] = np.where((sups >= 2) & ~gone, s2_req, -1)
        ev[:, 6] = np.where((sups >= 2) & ~gone, s2_back, -1)
        ev[:, 7] = np.where(fee, fee_req, -1)
        ev[:, 8] = np.where(fee, fee_paid, -1)
        ev[:, END] = end
        ev[:, 10] = np.where(returned, ret, -1)
        # events in order: each at least a minute after the previous one present
        prev = ev[:, 0].copy()
        for j in range(1, len(EVENTS)):
            col = ev[:, j]
            present = col >= 0
            col = np.where(present, np.maximum(col, prev + 60), -1)
            ev[:, j] = col
            prev = np.where(present, col, prev)
        ev[ev > (recv + MAX_LIFE * DAY)[:, None]] = -1
        return Lives(day, num.astype(np.int64), u, unit, proc, channel, ev, end_status, due0, due1, due2)

    def day_lives(self, d: int) -> Lives | None:
        n = self.count(date.fromordinal(d))
        if not n:
            return None
        return self.lives(np.full(n, d, dtype=np.int64), np.arange(n, dtype=np.int64))

    def sort_key(self, unit: np.ndarray, day: np.ndarray, num: np.ndarray) -> np.ndarray:
        """A number ordered like MaHoSo (prefix, yymmdd, number): prefixes ranked by their text."""
        return (_prefix_rank(self.seed)[unit] << 44) + (day << 22) + num

    def window_index(self, first: int, end: int, at: int,
                     moved: dict[tuple[int, int], int] | None = None, versions: bool = False) -> np.ndarray:
        """Dossiers whose NgayCapNhat as of `at` is in [first, end), sorted by (NgayCapNhat, MaHoSo):
        an (n, 3) int64 array of (NgayCapNhat, day, num). `moved` ((day, num) -> time; the shift fault)
        gives some dossiers a newer NgayCapNhat, or adds dossiers that arrived (num >= the day's count).
        `versions`: every version instead, one row per change (event) in [first, end) up to `at`."""
        if versions:
            return self._version_index(first, end, at)
        parts = []
        if moved:  # arrivals: dossiers beyond their day's count, as of their arrival time
            new = [(t, d, n) for (d, n), t in moved.items()
                   if n >= self.count(date.fromordinal(d)) and first <= t < end and t <= at]
            if new:
                arr = np.array(new, dtype=np.int64)
                lv = self.lives(arr[:, 1], arr[:, 2])
                parts.append(np.stack([arr[:, 0], arr[:, 1], arr[:, 2],
                                       self.sort_key(lv.unit, arr[:, 1], arr[:, 2])], axis=1))
        last_day = min(end, at + 1) // DAY + 1
        for d in range(max(first // DAY - MAX_LIFE - 1, self.start.toordinal()), last_day + 1):
            lives = self.day_lives(d)
            if lives is None:
                continue
            upd, _ = lives.as_of(at)
            if moved:
                for (md, mn), t in moved.items():
                    if md == d and t <= at and mn < len(upd):
                        upd[mn] = max(upd[mn], t)
            keep = (upd >= first) & (upd < end) & (upd >= 0)
            if keep.any():
                idx = np.flatnonzero(keep)
                parts.append(np.stack([upd[idx], lives.day[idx], idx,
                                       self.sort_key(lives.unit[idx], lives.day[idx], idx)], axis=1))
        return _sorted(parts)

    def _version_index(self, first: int, end: int, at: int) -> np.ndarray:
        parts = []
        for d in range(max(first // DAY - MAX_LIFE - 1, self.start.toordinal()), min(end, at + 1) // DAY + 2):
            lives = self.day_lives(d)
            if lives is None:
                continue
            ev = lives.events
            hit = (ev >= first) & (ev < end) & (ev <= at)
            rows, cols = np.nonzero(hit)
            if len(rows):
                parts.append(np.stack([ev[rows, cols], lives.day[rows], rows,
                                       self.sort_key(lives.unit[rows], lives.day[rows], rows)], axis=1))
        return _sorted(parts)

    def iter_days(self, first: date, last: date) -> Iterator[Lives]:
        """Every receipt day's lifecycles, one day at a time (streams: memory = one day)."""
        d = first.toordinal()
        while d <= last.toordinal():
            lives = self.day_lives(d)
            if lives is not None:
                yield lives
            d += 1

    # -- records --

    def ma_ho_so(self, unit: int, day: int, num: int) -> str:
        return f"{self.units[unit].prefix}-{_ymd(day)[2:]}-{num + 1:0{self.width}d}"

    def records(self, keys: np.ndarray, at: int, versions: bool = False) -> list[dict[str, Any]]:
        """Full dossier records as of `at` for index rows (NgayCapNhat, day, num), in that order;
        `versions`: each as it was at its row's NgayCapNhat (a version index)."""
        if not len(keys):
            return []
        lives = self.lives(keys[:, 1], keys[:, 2])
        if versions:
            row_at = keys[:, 0]
        else:
            counts = {d: self.count(date.fromordinal(d)) for d in set(keys[:, 1].tolist())}
            # an arrival (shift fault) shows its state as of its arrival time
            arrived = np.array([n >= counts[d] for d, n in keys[:, 1:3].tolist()])
            row_at = np.where(arrived, np.minimum(keys[:, 0], at), at)
        upd, status = lives.as_of(row_at)
        upd = np.maximum(keys[:, 0], upd)  # a moved dossier's newer time
        return [self._record(lives, r, int(upd[r]), int(status[r]), int(row_at[r])) for r in range(len(keys))]

    def _record(self, lv: Lives, r: int, upd: int, status: int, at: int) -> dict[str, Any]:
        u = lv.u[r].tolist()
        ev = [t if t <= at else -1 for t in lv.events[r].tolist()]
        unit, proc = self.units[int(lv.unit[r])], self.procedures[int(lv.proc[r])]
        day, num = int(lv.day[r]), int(lv.num[r])
        received = ev[1] >= 0
        due_known = int(lv.due0[r])
        sup_list = []
        for req_i, back_i, before, after in ((3, 4, int(lv.due0[r]), int(lv.due1[r])),
                                             (5, 6, int(lv.due1[r]), int(lv.due2[r]))):
            if ev[req_i] < 0:
                break
            back = ev[back_i]
            sup_list.append({"NgayYeuCauBoSung": fmt(ev[req_i]), "NgayTiepNhanBoSung": fmt(back),
                             "NgayHenTraTruoc": fmt(before),
                             "NgayHenTraMoi": fmt(after) if back >= 0 else None})
            if back >= 0:
                due_known = after
        end_status = int(lv.end_status[r])
        finished = ev[END] >= 0 and end_status in (3, 8, 9)
        channel = int(lv.channel[r])
        ma_don_vi, don_vi = unit.code, unit.name
        # applicant
        org = u[U["org"]] < 0.12
        if org:
            chu = f"{_COMPANY[int(u[U['name']] * 4)]} {_COMPANY_NAME[int(u[U['kind']] * 8)]}"
            ma_dt = f"60{int(u[U['id']] * 1e8):08d}"
            email = f"lienhe{int(u[U['id']] * 1e4)}@{_ascii(chu)[-12:]}.vn"
        else:
            x = u[U["name"]]
            if x < 0.1:
                chu = f"{_EDE_GIVEN[int(x * 80)]} {_EDE_CLAN[int(u[U['kind']] * 8)]}"
            else:
                given = _GIVEN[int(u[U["email"]] * 32)]
                chu = f"{_FAMILY[int(x * 16)]} {_MIDDLE[int(u[U['kind']] * 10)]} {given}"
            ma_dt = f"066{int(u[U['id']] * 1e9):09d}"
            email = f"{_ascii(chu)}{int(u[U['phone']] * 1000)}@gmail.com" if u[U["email"]] < 0.45 else None
        x = u[U["phone"]]
        phone = f"0{(3, 5, 7, 8, 9)[int(x * 5)]}{int(x * 1e12) % 10**8:08d}"
        files = 1 + int(u[U["files"]] * 4)
        online = channel == 2
        digitised = 1 if online or u[U["digitised"]] < 0.72 else 0
        fee = proc.fee
        pay = 0
        if fee and online and u[U["pay"]] < 0.75:
            pay = 1 if u[U["pay"]] < 0.35 else 2
        results = None
        mhs = self.ma_ho_so(int(lv.unit[r]), day, num)
        if status in (9, 10) or (status == 0 and ev[END] >= 0):
            electronic = u[U["e_result"]] < (0.85 if online else 0.45)
            link = f"https://igate.sandbox.invalid/files/{mhs}/ket-qua.pdf"  # synthetic, not a real host
            results = [{"TenGiayTo": f"{_RESULT[int(u[U['result']] * 6)]} - {proc.name}",
                        "DuongDanTepTinKetQua": link if electronic else None}]
        rec = {
            "MaHoSo": mhs,
            "MaTTHC": proc.code if u[U["kind"]] < 0.7 else f"{proc.code}.000.00.00.{HOME}",
            "TenTTHC": proc.name, "MaLinhVuc": proc.field_code, "TenLinhVuc": proc.field_name,
            "MaDonVi": ma_don_vi, "DonViXuLy": don_vi,
            "ChuHoSo": chu, "LoaiDoiTuong": 2 if org else 1, "MaDoiTuong": ma_dt,
            "SoDienThoai": phone,
            "Email": email, "KenhThucHien": channel,
            "NgayNopHoSo": fmt(ev[0]), "NgayTiepNhan": fmt(ev[1]),
            "NgayHenTra": fmt(due_known) if received else None,
            "NgayKetThucXuLy": fmt(ev[END]) if finished else None, "NgayTra": fmt(ev[10]),
            "NgayCapNhat": fmt(upd), "TrangThaiHoSo": status,
            "DanhSachHoSoBoSung": sup_list,
            "DanhSachLePhi": [{"MaPhiLePhi": f"LP-{proc.code}", "TenPhiLePhi": f"Lệ phí {proc.name.lower()}",
                               "Gia": fee}] if fee else [],
            "DuocThanhToanTrucTuyen": pay,
            "TaiLieuNop": [{"TepDinhKemId": f"{day:x}{num:06x}{k}", "TenTepDinhKem": f"{_FILES[k]}.pdf",
                            "DuocSoHoa": digitised, "DuocLayTuKhoDMQG": int(u[U["kho"]] < 0.2 and k == 1)}
                           for k in range(files)] if received else [],
            "DanhSachGiayToKetQua": results or [],
            "TaiKhoanDuocXacThucVoiVNeID": int(online and u[U["vneid"]] < 0.7),
        }
        # mess: old unit identities, impossible records, NFD text, "" for null
        recv_date = day
        old_share = MESS["old_before_merger"] if recv_date < _MERGER_ORD else MESS["old_after_merger"]
        if unit.old and u[U["old"]] < old_share:
            code, name = unit.old[int(u[U["old"]] / old_share * len(unit.old)) % len(unit.old)]
            rec["MaDonVi"] = name if u[U["spare"]] < 1 / 3 else code
            rec["DonViXuLy"] = f"UBND {name}"
        x = u[U["impossible"]]
        if x < MESS["impossible"]:
            kind = int(x / MESS["impossible"] * 3)
            if kind == 0 and received:
                rec["NgayHenTra"] = fmt(ev[1] - DAY * 3)
            elif kind == 1:
                rec["TrangThaiHoSo"] = 0 if u[U["spare"]] < 0.5 else 11
            else:
                rec["MaDonVi"] = f"{HOME}.999"
        if u[U["nfd"]] < MESS["nfd"]:
            for key in ("ChuHoSo", "TenTTHC", "DonViXuLy", "TenLinhVuc"):
                rec[key] = nfd(rec[key])
        if u[U["empty"]] < MESS["empty"]:
            for key in ("Email", "NgayTra", "NgayKetThucXuLy", "NgayHenTra", "NgayTiepNhan"):
                if rec[key] is None:
                    rec[key] = ""
        return rec

    # -- catalogue --

    def unit_rows(self) -> list[dict[str, Any]]:
        rows = [{"MaDonVi": HOME, "TenDonVi": "UBND tỉnh Đắk Lắk", "CapDonVi": "TINH", "MaDonViCha": None,
                 "MaHanhChinh": None}]
        for u in self.units:
            rows.append({"MaDonVi": u.code, "TenDonVi": u.name, "CapDonVi": u.level, "MaDonViCha": HOME,
                         "MaHanhChinh": u.stats_code})
        return rows


_MERGER_ORD = MERGER.toordinal()


@cache
def _proc_arrays(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ps = procedures(seed)
    return (np.array([p.days for p in ps]), np.array([p.fee for p in ps]),
            np.array([{"KHONG": 0, "MOT_PHAN": 1, "TOAN_TRINH": 2}[p.mode] for p in ps]))


@cache
def _unit_arrays(seed: int) -> tuple[np.ndarray, np.ndarray]:
    us = units(seed)
    return np.array([u.online for u in us]), np.array([u.late for u in us])


@cache
def _prefix_rank(seed: int) -> np.ndarray:
    us = units(seed)
    order = sorted(range(len(us)), key=lambda k: us[k].prefix)
    rank = np.empty(len(us), dtype=np.int64)
    rank[order] = np.arange(len(us))
    return rank


# --- S3: petitions (PAKN) and satisfaction ratings ------------------------------------------------

PAKN_LIFE = 60  # days from a petition's receipt to its last event
PAKN_K = 12


def _final_due(lv: Lives) -> np.ndarray:
    return np.where(lv.events[:, 6] >= 0, lv.due2, np.where(lv.events[:, 4] >= 0, lv.due1, lv.due0))


class Feedback:
    """S3 on top of a Province: ratings of finished dossiers (~15%), petitions a few per unit and month."""

    def __init__(self, province: Province) -> None:
        self.p = province
        self.seed = province.seed + 7

    # ratings: one per rated dossier, at its end (or result) plus up to two days
    def _ratings_of(self, lv: Lives) -> tuple[np.ndarray, np.ndarray]:
        u = lv.u
        done = lv.events[:, 10].copy()
        done = np.where(done < 0, lv.events[:, END], done)
        rated = (lv.end_status == 9) & (lv.events[:, END] >= 0) & (u[:, U["rate"]] < 0.15)
        at = calendar().snap(done + (300 + u[:, U["rate_at"]] * 2 * DAY).astype(np.int64))
        return np.where(rated, at, -1), _final_due(lv)

    def ratings_index(self, first: int, end: int, at: int) -> np.ndarray:
        parts = []
        lo = max(first // DAY - MAX_LIFE - 3, self.p.start.toordinal())
        for d in range(lo, min(end, at + 1) // DAY + 1):
            lv = self.p.day_lives(d)
            if lv is None:
                continue
            when, _ = self._ratings_of(lv)
            idx = np.flatnonzero((when >= first) & (when < end) & (when >= 0) & (when <= at))
            if len(idx):
                parts.append(np.stack([when[idx], lv.day[idx], idx,
                                       self.p.sort_key(lv.unit[idx], lv.day[idx], idx)], axis=1))
        return _sorted(parts)

    def ratings(self, keys: np.ndarray) -> list[dict[str, Any]]:
        if not len(keys):
            return []
        lv = self.p.lives(keys[:, 1], keys[:, 2])
        when, due = self._ratings_of(lv)
        late = lv.events[:, END] > due
        out = []
        for r in range(len(keys)):
            x = float(lv.u[r, U["rate_level"]])
            bad = 0.25 if late[r] else 0.04
            level = 3 if x < bad else (2 if x < bad + 0.38 else 1)
            mhs = self.p.ma_ho_so(int(lv.unit[r]), int(lv.day[r]), int(lv.num[r]))
            t = fmt(int(when[r]))
            out.append({"MaDanhGia": f"DG-{mhs}", "MaHoSo": mhs,
                        "MaDonVi": self.p.units[int(lv.unit[r])].code,
                        "MucDo": level, "NgayDanhGia": t, "NgayCapNhat": t})
        return out

    # petitions
    def pakn_count(self, d: date) -> int:
        if d < self.p.start:
            return 0
        scale = self.p.dossiers_per_day / 2500
        return int(118 * 4 / 30 * 1.3 * scale * self.p.day_factor(d) * (0.6 + 0.8 * h(self.seed, "pakn", d)))

    def _pakn(self, day: np.ndarray, num: np.ndarray) -> dict[str, np.ndarray]:
        cal = calendar()
        u = uniforms(self.seed, day, num, PAKN_K)
        linked = u[:, 0] < 0.45
        back = (1 + u[:, 1] * 20).astype(np.int64)
        dday = day - back
        counts = np.array([self.p.count(date.fromordinal(int(x))) for x in dday])
        linked &= counts > 0
        dnum = (u[:, 2] * np.maximum(counts, 1)).astype(np.int64)
        lv = self.p.lives(dday, dnum)
        other = np.minimum(np.searchsorted(self.p._unit_cdf, u[:, 3], side="right"), len(self.p.units) - 1)
        unit = np.where(linked, lv.unit, other)
        recv = cal.snap(day * DAY + OPEN + (u[:, 4] * (CLOSE - OPEN)).astype(np.int64))
        deadline = cal.add(recv // DAY, np.full(len(day), 10)) * DAY + CLOSE
        start = cal.snap(recv + ((0.2 + u[:, 5] * 2) * DAY).astype(np.int64))
        overdue = u[:, 6] < 0.18
        done = np.where(overdue, deadline + ((1 + u[:, 7] * 15) * DAY).astype(np.int64),
                        start + (u[:, 7] * np.maximum(deadline - start, 3600)).astype(np.int64))
        done = np.maximum(cal.snap(done), start + 60)
        never = u[:, 8] < 0.06  # still in progress for good (overdue once the deadline passes)
        return {"u": u, "linked": linked, "dday": dday, "dnum": dnum, "dunit": lv.unit, "unit": unit,
                "recv": recv, "deadline": deadline, "start": start, "done": np.where(never, -1, done)}

    def _pakn_state(self, pk: dict[str, np.ndarray], at: int) -> tuple[np.ndarray, np.ndarray]:
        ev = np.stack([pk["recv"], pk["start"], pk["done"]], axis=1)
        seen = (ev >= 0) & (ev <= at)
        last = np.where(seen, np.arange(3), -1).max(axis=1)
        upd = np.where(last >= 0, ev[np.arange(len(last)), np.maximum(last, 0)], -1)
        return upd, last

    def feedback_index(self, first: int, end: int, at: int) -> np.ndarray:
        parts = []
        for d in range(max(first // DAY - PAKN_LIFE, self.p.start.toordinal()), min(end, at + 1) // DAY + 1):
            n = self.pakn_count(date.fromordinal(d))
            if not n:
                continue
            day, num = np.full(n, d, dtype=np.int64), np.arange(n, dtype=np.int64)
            upd, _ = self._pakn_state(self._pakn(day, num), at)
            idx = np.flatnonzero((upd >= first) & (upd < end) & (upd >= 0))
            if len(idx):
                parts.append(np.stack([upd[idx], day[idx], idx, (day[idx] << 20) + idx], axis=1))
        return _sorted(parts)

    def feedback(self, keys: np.ndarray, at: int) -> list[dict[str, Any]]:
        if not len(keys):
            return []
        pk = self._pakn(keys[:, 1], keys[:, 2])
        upd, last = self._pakn_state(pk, at)
        u = pk["u"]
        out = []
        for r in range(len(keys)):
            day, num = int(keys[r, 1]), int(keys[r, 2])
            state = ("MOI", "DANG_XU_LY", "TU_CHOI" if u[r, 9] < 0.07 else "DA_XU_LY")[int(last[r])]
            linked = bool(pk["linked"][r])
            kind = "TTHC" if linked or u[r, 10] < 0.3 else ("CBCC" if u[r, 10] < 0.7 else "KHAC")
            done = int(pk["done"][r]) if last[r] == 2 else -1
            out.append({
                "MaPAKN": f"PAKN-{_ymd(day)[2:]}-{num + 1:04d}",
                "MaDonVi": self.p.units[int(pk["unit"][r])].code,
                "MaHoSo": self.p.ma_ho_so(int(pk["dunit"][r]), int(pk["dday"][r]), int(pk["dnum"][r]))
                if linked else (None if u[r, 11] < 0.5 else ""),
                "PhanLoai": kind, "NgayTiepNhan": fmt(int(pk["recv"][r])),
                "HanXuLy": fmt(int(pk["deadline"][r])),
                "NgayXuLy": fmt(done), "TrangThai": state,
                "SoLuotThich": int(u[r, 11] * 40) if last[r] == 2 else 0,
                "SoLuotKhongThich": int(u[r, 9] * 12) if last[r] == 2 else 0,
                "TiepTucPhanAnh": bool(last[r] == 2 and u[r, 5] < 0.1),
                "NgayCapNhat": fmt(int(upd[r])),
            })
        return out


def _sorted(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate (time, day, num, id key) parts; sort by time then id; drop the id key."""
    if not parts:
        return np.empty((0, 3), dtype=np.int64)
    allp = np.concatenate(parts)
    return allp[np.lexsort((allp[:, 3], allp[:, 0])), :3]


# --- S4: service centres -----------------------------------------------------------------------------

FIRST_HOUR, LAST_HOUR = 7, 16  # snapshots at 07:00 .. 16:00 (the hour that starts then), every day


@dataclass(frozen=True)
class Centre:
    code: str
    unit: str
    name: str
    cameras: int
    counters: int
    load: float  # tickets per working hour
    flaky: bool  # has outages


@cache
def centres(seed: int = 766, dossiers_per_day: float = 2500) -> tuple[Centre, ...]:
    """One centre per commune plus the provincial centre, ordered by MaTrungTam."""
    us = units(seed)
    walk_in = sum(u.weight * (1 - u.online) for u in us if u.level == "SO_NGANH")
    out = [Centre("TTPVHCC-66", HOME, "Trung tâm Phục vụ hành chính công tỉnh Đắk Lắk", 48, 36,
                  dossiers_per_day * 1.3 * walk_in / 9, False)]
    communes = [u for u in us if u.level == "XA"]
    flaky = set(sorted(range(len(communes)), key=lambda j: h(seed, "flaky", j))[:5])
    for j, u in enumerate(communes):
        out.append(Centre(f"TTPVHCC-{u.stats_code}", u.code,
                          f"Trung tâm Phục vụ hành chính công {u.name.removeprefix('UBND ')}",
                          4 + int(h(seed, u.code, "cam") * 8), 3 + int(h(seed, u.code, "quay") * 6),
                          dossiers_per_day * 1.3 * u.weight * (1 - u.online) / 9, j in flaky))
    return tuple(sorted(out, key=lambda c: c.code))


class Centres:
    def __init__(self, province: Province) -> None:
        self.p = province
        self.seed = province.seed + 11
        self.list = centres(province.seed, province.dossiers_per_day)

    def online(self, c: int, ts: int) -> bool:
        centre, d, hour = self.list[c], ts // DAY, ts % DAY // 3600
        if centre.flaky and h(self.seed, c, d, "out") < 0.3:  # an outage of 1-6 hours that day
            a = FIRST_HOUR + int(h(self.seed, c, d, "from") * 10)
            if a <= hour < a + 1 + int(h(self.seed, c, d, "len") * 6):
                return False
        return h(self.seed, c, ts, "drop") >= 0.003

    def index(self, first: int, end: int, at: int) -> list[tuple[int, int]]:
        """(ThoiDiem, centre) of the snapshots in [first, end) published by `at` (an hour after)."""
        out = []
        stop = min(end, at - 3600 + 1)
        for d in range(max(first // DAY, self.p.start.toordinal()), stop // DAY + 1):
            for hour in range(FIRST_HOUR, LAST_HOUR + 1):
                ts = d * DAY + hour * 3600
                if first <= ts < stop:
                    out.extend((ts, c) for c in range(len(self.list)) if self.online(c, ts))
        return out

    def snapshot(self, ts: int, c: int) -> dict[str, Any]:
        centre, d = self.list[c], date.fromordinal(ts // DAY)
        hour = ts % DAY // 3600
        open_now = is_working_day(d) or (centre.unit == HOME and d.weekday() == 5 and hour < 11)
        x = [h(self.seed, c, ts, k) for k in range(4)]
        cams = centre.cameras - (int(x[0] * 3) if x[0] < 0.1 else 0)
        if not open_now:
            return {"MaTrungTam": centre.code, "ThoiDiem": fmt_iso(ts), "CameraTrucTuyen": cams,
                    "QuayHoatDong": 0, "SoPhieuCap": 0, "ThoiGianChoTB": 0, "ThoiGianChoMax": 0}
        peak = 1.5 if hour in (8, 9, 14) else (0.5 if hour in (11, 12, 16) else 1.0)
        tickets = int(centre.load * peak * (0.6 + 0.8 * x[1]) * (1.4 if self.p.day_factor(d) > 1.5 else 1))
        counters = max(1, centre.counters - int(x[2] * 3))
        wait = round(2 + 30 * min(1.0, tickets / counters / 6) * (0.5 + x[3]), 1)
        return {"MaTrungTam": centre.code, "ThoiDiem": fmt_iso(ts), "CameraTrucTuyen": cams,
                "QuayHoatDong": counters, "SoPhieuCap": tickets, "ThoiGianChoTB": wait,
                "ThoiGianChoMax": round(wait * (1.8 + 2 * x[0]), 1)}

    def rows(self) -> list[dict[str, Any]]:
        return [{"MaTrungTam": c.code, "MaDonVi": c.unit, "TenTrungTam": c.name, "SoCamera": c.cameras,
                 "SoQuay": c.counters} for c in self.list]
