"""Generated national-slice marts (columns as in docs/interfaces.md) for dashboard tests before dbt runs.

Deterministic (seeded) and plausible: 34 provinces x 14 months plus the year 2026, Đắk Lắk near the
published 9th-14th place; 16 agencies and 20 communes of Đắk Lắk. Written as the transform role, which
owns schema marts, so the reader role gets SELECT through its default privileges.
"""

from __future__ import annotations

import random
import uuid
from datetime import date

from ingestion import pg

GROUP_MAX = {"ckmb": 18, "tdgq": 20, "clgq": 12, "tttt": 10, "mdhl": 18, "mdsh": 22}
HOME = "H15"
# statistics code, name, DVCQG department code
PROVINCES = [
    ("01", "Thành phố Hà Nội", "H26"), ("04", "Tỉnh Cao Bằng", "H14"), ("08", "Tỉnh Tuyên Quang", "H60"),
    ("11", "Tỉnh Điện Biên", "H18"), ("12", "Tỉnh Lai Châu", "H35"), ("14", "Tỉnh Sơn La", "H52"),
    ("15", "Tỉnh Lào Cai", "H38"), ("19", "Tỉnh Thái Nguyên", "H55"), ("20", "Tỉnh Lạng Sơn", "H37"),
    ("22", "Tỉnh Quảng Ninh", "H49"), ("24", "Tỉnh Bắc Ninh", "H05"), ("25", "Tỉnh Phú Thọ", "H44"),
    ("31", "Thành phố Hải Phòng", "H24"), ("33", "Tỉnh Hưng Yên", "H31"), ("37", "Tỉnh Ninh Bình", "H42"),
    ("38", "Tỉnh Thanh Hóa", "H56"), ("40", "Tỉnh Nghệ An", "H41"), ("42", "Tỉnh Hà Tĩnh", "H27"),
    ("44", "Tỉnh Quảng Trị", "H50"), ("46", "Thành phố Huế", "H57"), ("48", "Thành phố Đà Nẵng", "H17"),
    ("51", "Tỉnh Quảng Ngãi", "H48"), ("52", "Tỉnh Gia Lai", "H21"), ("56", "Tỉnh Khánh Hòa", "H32"),
    ("66", "Tỉnh Đắk Lắk", "H15"), ("68", "Tỉnh Lâm Đồng", "H36"), ("75", "Tỉnh Đồng Nai", "H19"),
    ("79", "Thành phố Hồ Chí Minh", "H29"), ("80", "Tỉnh Tây Ninh", "H53"), ("82", "Tỉnh Đồng Tháp", "H20"),
    ("86", "Tỉnh Vĩnh Long", "H61"), ("91", "Tỉnh An Giang", "H01"), ("92", "Thành phố Cần Thơ", "H13"),
    ("96", "Tỉnh Cà Mau", "H12"),
]
AGENCIES = [
    "Sở Tư pháp", "Sở Tài chính", "Sở Xây dựng", "Sở Nông nghiệp và Môi trường", "Sở Công Thương",
    "Sở Giáo dục và Đào tạo", "Sở Y tế", "Sở Khoa học và Công nghệ", "Sở Nội vụ",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Dân tộc và Tôn giáo", "Sở Ngoại vụ", "Thanh tra tỉnh", "Ban Quản lý các khu công nghiệp",
    "Công an tỉnh", "Văn phòng UBND tỉnh",
]
COMMUNES = [
    ("22015", "Phường Tuy Hòa"), ("22045", "Phường Bình Kiến"), ("22051", "Phường Sông Cầu"),
    ("22057", "Xã Xuân Lộc"), ("24121", "Phường Buôn Ma Thuột"), ("24133", "Phường Tân An"),
    ("24154", "Phường Ea Kao"), ("24181", "Xã Hòa Phú"), ("24208", "Phường Buôn Hồ"),
    ("24217", "Xã Ea Súp"), ("24259", "Xã Krông Năng"), ("24280", "Xã Ea H'Leo"),
    ("24313", "Xã Cư M'gar"), ("24340", "Xã Krông Pắc"), ("24373", "Xã Ea Kar"),
    ("24400", "Xã Lắk"), ("24424", "Xã Krông Bông"), ("24448", "Xã Krông Ana"),
    ("22240", "Xã Tây Hòa"), ("22312", "Xã Phú Hòa 1"),
]
MONTHS = [date(2025 + (6 + i) // 12, (6 + i) % 12 + 1, 1) for i in range(14)]  # 2025-07 .. 2026-08
PERIODS = [("month", m, m.strftime("%Y-%m")) for m in MONTHS] + [("year", date(2026, 1, 1), "2026")]

TABLES = {
    "mart_province_ranking": """
        period_type text, period_start date, period_label text, department_id text, department_code text,
        province_code text, province_name text, is_home_province boolean, total_score numeric(7,2),
        ckmb numeric(7,2), tdgq numeric(7,2), clgq numeric(7,2), tttt numeric(7,2), mdhl numeric(7,2),
        mdsh numeric(7,2), national_rank integer, national_average numeric(7,2),
        previous_total_score numeric(7,2), score_change numeric(7,2), previous_rank integer,
        rank_change integer""",
    "mart_unit_official_scores": """
        period_type text, period_start date, period_label text, department_id text, unit_code text,
        unit_name text, unit_type text, commune_code text, total_score numeric(7,2), ckmb numeric(7,2),
        tdgq numeric(7,2), clgq numeric(7,2), tttt numeric(7,2), mdhl numeric(7,2), mdsh numeric(7,2),
        rank_in_type integer, units_in_type integer, previous_total_score numeric(7,2),
        score_change numeric(7,2)""",
}


def _scores(rng: random.Random, quality: float) -> dict[str, float]:
    return {g: round(m * min(1.0, max(0.2, quality + rng.gauss(0, 0.06))), 2) for g, m in GROUP_MAX.items()}


def _ranked(rows: list[dict], key: str, group: tuple[str, ...]) -> None:
    """Rank by total within each group, descending, ties sharing a rank (SQL rank())."""
    buckets: dict[tuple, list[dict]] = {}
    for row in rows:
        buckets.setdefault(tuple(row[g] for g in group), []).append(row)
    for bucket in buckets.values():
        bucket.sort(key=lambda r: -r["total_score"])
        for i, row in enumerate(bucket):
            same = i and row["total_score"] == bucket[i - 1]["total_score"]
            row[key] = bucket[i - 1][key] if same else i + 1
        for row in bucket:
            row["units_in_type"] = len(bucket)


def _with_totals(row: dict) -> dict:
    row["total_score"] = round(sum(row[g] for g in GROUP_MAX), 2)
    return row


def _previous(rows: list[dict], key: str, rank: str | None) -> None:
    by_key = {(r["period_type"], r["period_start"], r[key]): r for r in rows}
    for r in rows:
        start = r["period_start"]
        prev_start = (date(start.year - 1, 1, 1) if r["period_type"] == "year" else
                      date(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1))
        prev = by_key.get((r["period_type"], prev_start, r[key]))
        r["previous_total_score"] = prev and prev["total_score"]
        r["score_change"] = prev and round(r["total_score"] - prev["total_score"], 2)
        if rank:
            r["previous_rank"] = prev and prev[rank]
            r["rank_change"] = prev and prev[rank] - r[rank]  # positive: moved up


def province_rows() -> list[dict]:
    rng = random.Random(766)
    quality = {code: rng.uniform(0.55, 0.85) for _, _, code in PROVINCES}
    quality[HOME] = 0.72
    rows = []
    for period_type, start, label in PERIODS:
        for stats_code, name, code in PROVINCES:
            rows.append(_with_totals({
                "period_type": period_type, "period_start": start, "period_label": label,
                "department_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dvcqg:{code}")),
                "department_code": code,
                "province_code": stats_code, "province_name": name, "is_home_province": code == HOME,
                **_scores(rng, quality[code] + 0.01 * MONTHS.index(start) if period_type == "month"
                          else quality[code]),
            }))
    _ranked(rows, "national_rank", ("period_type", "period_start"))
    for period_type, start, _ in PERIODS:
        same = [r for r in rows if (r["period_type"], r["period_start"]) == (period_type, start)]
        average = round(sum(r["total_score"] for r in same) / len(same), 2)
        for r in same:
            r["national_average"] = average
    _previous(rows, "department_code", "national_rank")
    for r in rows:
        r.pop("units_in_type")
    return rows


def unit_rows() -> list[dict]:
    rng = random.Random(66)
    units = [(f"H15.{i + 1}", name, "agency", None) for i, name in enumerate(AGENCIES)]
    units += [(f"H15.{100 + i}", name, "commune", code) for i, (code, name) in enumerate(COMMUNES)]
    quality = {u[0]: rng.uniform(0.5, 0.9) for u in units}
    rows = []
    for period_type, start, label in PERIODS:
        for unit_code, name, unit_type, commune_code in units:
            rows.append(_with_totals({
                "period_type": period_type, "period_start": start, "period_label": label,
                "department_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dvcqg:{unit_code}")),
                "unit_code": unit_code, "unit_name": name, "unit_type": unit_type,
                "commune_code": commune_code, **_scores(rng, quality[unit_code]),
            }))
    _ranked(rows, "rank_in_type", ("period_type", "period_start", "unit_type"))
    _previous(rows, "unit_code", None)
    return rows


def _rows(table: str) -> list[dict]:
    return province_rows() if table == "mart_province_ranking" else unit_rows()


def fill() -> dict[str, str]:
    """Give every mart that is missing or empty the sample rows; returns what `undo()` must revert."""
    done = {}
    with pg.connect("transform") as conn:
        for table in TABLES:
            if not conn.execute("select to_regclass(%s)", (f"marts.{table}",)).fetchone()[0]:
                conn.execute(f"create table marts.{table} ({TABLES[table]})")
                done[table] = "created"
            elif not conn.execute(f"select exists (select from marts.{table})").fetchone()[0]:
                done[table] = "filled"
            else:
                continue
            rows = _rows(table)
            columns = list(rows[0])
            with conn.cursor().copy(f"copy marts.{table} ({', '.join(columns)}) from stdin") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
    return done


def undo(done: dict[str, str]) -> None:
    """Leave the marts as `fill()` found them: drop what it created, empty what it filled."""
    with pg.connect("transform") as conn:
        for table, action in done.items():
            conn.execute(f"{'drop table if exists' if action == 'created' else 'truncate'} marts.{table}")
