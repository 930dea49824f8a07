"""The service index from hand-made dossiers, through the real pipeline: a tiny S2 server in this test (the
contract's OAuth2 client credentials, keyset-ordered paging, /units, /procedures, /dossiers as of a clock)
serves a dozen dossiers written below -> `ingestion.sources.dossiers.extract` -> dbt build ->
`marts.mart_unit_index_766_metrics`, whose numerators, denominators and points are checked against values
worked out by hand in this file. Two extracts and two builds, like two nights: the second night's changes
go through fct_dossier incrementally and the newest version of a dossier wins; the service index's tables,
incremental by month, then hold what a full rebuild gives.

Runs in a warehouse database of its own (dropped afterwards), dbt's target and logs in temporary folders.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from provincial_fixtures import using_database
from psycopg import sql

from ingestion import pg, transform
from ingestion.config import credentials, settings
from ingestion.sources import dossiers
from ingestion.sources.provincial import LOCAL_TZ

pytestmark = pytest.mark.slow

TOKEN_PATH = "/auth/realms/digo/protocol/openid-connect/token"
AGENCY, C1, C2 = "H15.1", "H15.17", "H15.18"
FIRST_NIGHT = datetime(2026, 10, 25, 0, 0, tzinfo=LOCAL_TZ)
SECOND_NIGHT = datetime(2026, 11, 21, 0, 0, tzinfo=LOCAL_TZ)
AS_OF = "2026-11-20"

UNITS = [
    {"MaDonVi": "H15", "TenDonVi": "UBND tỉnh Đắk Lắk", "CapDonVi": "TINH", "MaDonViCha": None,
     "MaHanhChinh": None},
    {"MaDonVi": AGENCY, "TenDonVi": "Sở Tư pháp", "CapDonVi": "SO_NGANH", "MaDonViCha": "H15",
     "MaHanhChinh": None},
    {"MaDonVi": C1, "TenDonVi": "UBND Phường Tuy Hòa", "CapDonVi": "XA", "MaDonViCha": "H15",
     "MaHanhChinh": "22015"},
    {"MaDonVi": C2, "TenDonVi": "UBND Phường Bình Kiến", "CapDonVi": "XA", "MaDonViCha": "H15",
     "MaHanhChinh": "22045"},
]


def _procedure(code: str, level: str, mode: str, fee: bool, paper: bool, active: bool = True) -> dict:
    return {"MaTTHC": code, "TenTTHC": f"Thủ tục {code}", "MaLinhVuc": "G01", "TenLinhVuc": "Hộ tịch",
            "CapThucHien": level, "MucDoDVC": mode, "TichHopDVCQG": mode != "KHONG", "CoPhiLePhi": fee,
            "YeuCauKetQuaGiay": paper, "ThoiHanGiaiQuyetNgay": 5, "NgayCongBo": "20240101080000",
            "TrangThai": "HIEU_LUC" if active else "BAI_BO"}


P1, P2, P3, P4, P5 = "1.000001", "1.000002", "1.000003", "2.000004", "1.000005"
PROCEDURES = [
    _procedure(P1, "XA", "TOAN_TRINH", fee=True, paper=True),   # commune, fully online, fee, paper result
    _procedure(P2, "XA", "KHONG", fee=False, paper=False),      # commune, not online
    _procedure(P3, "XA", "MOT_PHAN", fee=True, paper=False),    # commune, partly online, fee
    _procedure(P4, "TINH", "TOAN_TRINH", fee=False, paper=True),  # provincial
    _procedure(P5, "XA", "MOT_PHAN", fee=False, paper=False, active=False),  # abolished: no authority
]
FEES = {P1: 50000, P3: 30000}


def _ts(text: str | None) -> str | None:
    """'10-05 08:00' (2026) or '2026-10-05 08:00' -> yyyyMMddHHmmss."""
    if text is None:
        return None
    full = text if text.startswith("20") else f"2026-{text}"
    return datetime.strptime(full, "%Y-%m-%d %H:%M").strftime("%Y%m%d%H%M%S")


def dossier(code: str, unit: str, proc: str, *, channel: int, received: str, due: str, status: int,
            updated: str, finished: str | None = None, supplements: tuple = (), paid: int = 0,
            digitised: int = 0, data_store: int = 0, e_result: bool = False, vneid: int = 0) -> dict:
    """One dossier version as S2 sends it.

    supplements: (requested, supplied or None, due before, due after)."""
    fee = FEES.get(proc, 0)
    return {
        "MaHoSo": f"000.31.10.H15-{code}", "MaTTHC": proc, "TenTTHC": f"Thủ tục {proc}", "MaLinhVuc": "G01",
        "TenLinhVuc": "Hộ tịch", "MaDonVi": unit, "DonViXuLy": unit,
        "ChuHoSo": f"Nguyễn Văn Thử {code}", "LoaiDoiTuong": 1, "MaDoiTuong": f"0660000{code[-2:]}",
        "SoDienThoai": "0905000111", "Email": None, "KenhThucHien": channel,
        "NgayNopHoSo": _ts(received), "NgayTiepNhan": _ts(received), "NgayHenTra": _ts(due),
        "NgayKetThucXuLy": _ts(finished), "NgayTra": None, "NgayCapNhat": _ts(updated),
        "TrangThaiHoSo": status,
        "DanhSachHoSoBoSung": [{"NgayYeuCauBoSung": _ts(r), "NgayTiepNhanBoSung": _ts(s),
                                "NgayHenTraTruoc": _ts(b), "NgayHenTraMoi": _ts(a)}
                               for r, s, b, a in supplements],
        "DanhSachLePhi": [{"MaPhiLePhi": f"LP-{proc}", "TenPhiLePhi": "Lệ phí", "Gia": fee}] if fee else [],
        "DuocThanhToanTrucTuyen": paid,
        "TaiLieuNop": [{"TepDinhKemId": f"f-{code}", "TenTepDinhKem": "don.pdf", "DuocSoHoa": digitised,
                        "DuocLayTuKhoDMQG": data_store}],
        "DanhSachGiayToKetQua": [{"TenGiayTo": "Kết quả", "DuongDanTepTinKetQua":
                                  f"https://igate.test.invalid/{code}.pdf" if e_result else None}]
        if finished else [],
        "TaiKhoanDuocXacThucVoiVNeID": vneid,
    }


# Every version of every dossier; the server shows, as of its clock, the newest version of each.
VERSIONS = [
    # October, commune C1
    dossier("c1-01", C1, P1, channel=2, received="10-05 08:00", due="10-09 17:00", status=2,
            updated="10-05 08:00"),
    dossier("c1-01", C1, P1, channel=2, received="10-05 08:00", due="10-09 17:00", status=10,
            updated="10-08 10:00", finished="10-08 10:00", paid=1, digitised=1, e_result=True, vneid=1),
    # one supplement, 48 h of waiting; the due date moved from 10 to 12 Oct: 12 Oct 10:00 - 48 h is on time
    dossier("c1-02", C1, P1, channel=1, received="10-06 08:00", due="10-12 17:00", status=10,
            updated="10-12 10:00", finished="10-12 10:00",
            supplements=(("10-07 08:00", "10-09 08:00", "10-10 17:00", "10-12 17:00"),)),
    # two supplement requests: overdue (from the second request's day, 10 Oct) though finished in time
    dossier("c1-03", C1, P2, channel=1, received="10-07 08:00", due="10-14 17:00", status=10,
            updated="10-13 10:00", finished="10-13 10:00", digitised=1, data_store=1,
            supplements=(("10-08 08:00", "10-09 08:00", "10-10 17:00", "10-11 17:00"),
                         ("10-10 08:00", "10-11 08:00", "10-11 17:00", "10-12 17:00"))),
    # still open at the end of October, due on its last day: on time in October's final figure
    dossier("c1-04", C1, P3, channel=2, received="10-20 08:00", due="10-31 17:00", status=4,
            updated="10-20 08:00", paid=2, digitised=1),
    # still open, due 27 Oct: overdue from 28 Oct
    dossier("c1-05", C1, P3, channel=1, received="10-21 08:00", due="10-27 17:00", status=4,
            updated="10-21 08:00"),
    # open on the first night, finished late (29 Oct, due 24 Oct) by the second
    dossier("c1-06", C1, P1, channel=2, received="10-22 08:00", due="10-24 17:00", status=4,
            updated="10-22 08:00", paid=1, vneid=1),
    dossier("c1-06", C1, P1, channel=2, received="10-22 08:00", due="10-24 17:00", status=10,
            updated="10-29 10:00", finished="10-29 10:00", paid=1, e_result=True, vneid=1),
    # withdrawn: not scored
    dossier("c1-07", C1, P2, channel=1, received="10-23 08:00", due="10-30 17:00", status=7,
            updated="10-23 09:00"),
    # October, the agency
    dossier("a1-01", AGENCY, P4, channel=2, received="10-10 08:00", due="10-20 17:00", status=10,
            updated="10-15 10:00", finished="10-15 10:00", e_result=True),
    # November, commune C1 (as of 20 Nov)
    dossier("c1-11", C1, P1, channel=2, received="11-02 08:00", due="11-06 17:00", status=10,
            updated="11-05 10:00", finished="11-05 10:00", paid=1, digitised=1, e_result=True),
    # due on the as-of day itself and open: on time as of 20 Nov
    dossier("c1-12", C1, P3, channel=1, received="11-16 08:00", due="11-20 17:00", status=4,
            updated="11-16 08:00"),
    # waiting for the applicant's supplement since before its due date: the clock is stopped
    dossier("c1-13", C1, P1, channel=1, received="11-10 08:00", due="11-13 17:00", status=5,
            updated="11-12 08:00", supplements=(("11-12 08:00", None, "11-13 17:00", None),)),
]


def _local(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=LOCAL_TZ)


class S2:
    """A contract-following S2 server over VERSIONS, as of `clock`."""

    def __init__(self) -> None:
        self.clock = FIRST_NIGHT
        self.client_id = settings().dossiers_client_id
        self.secret = credentials()["dossiers_client_secret"]
        self.tokens: set[str] = set()

    def dossiers(self, start: datetime, end: datetime) -> list[dict]:
        newest: dict[str, dict] = {}
        for v in VERSIONS:
            at = _local(v["NgayCapNhat"])
            known = newest.get(v["MaHoSo"])
            if at <= self.clock and (known is None or v["NgayCapNhat"] > known["NgayCapNhat"]):
                newest[v["MaHoSo"]] = v
        rows = [v for v in newest.values() if start <= _local(v["NgayCapNhat"]) < end]
        return sorted(rows, key=lambda v: (v["NgayCapNhat"], v["MaHoSo"]))


def _handler(s2: S2) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            ok = (self.path == TOKEN_PATH and form.get("grant_type") == ["client_credentials"]
                  and form.get("client_id") == [s2.client_id] and form.get("client_secret") == [s2.secret])
            if not ok:
                self.send(401, {"error": "invalid_client"})
                return
            token = f"t{len(s2.tokens)}"
            s2.tokens.add(token)
            self.send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            if self.headers.get("Authorization", "").removeprefix("Bearer ") not in s2.tokens:
                self.send(401, {"error": "unauthorized"})
                return
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            page, size = int(q.get("page", 0)), int(q.get("size", 1000))
            if url.path == "/api/v1/units":
                rows = UNITS
            elif url.path == "/api/v1/procedures":
                rows = PROCEDURES
            elif url.path == "/api/v1/dossiers":
                rows = s2.dossiers(datetime.fromisoformat(q["updatedFrom"]),
                                   datetime.fromisoformat(q["updatedTo"]))
            else:
                self.send(404, {"status": 404, "error": "Not Found"})
                return
            self.send(200, {"content": rows[page * size:(page + 1) * size], "number": page, "size": size,
                            "totalElements": len(rows), "totalPages": -(-len(rows) // size)})

    return Handler


@pytest.fixture(scope="module")
def s2_server() -> Iterator[tuple[S2, str]]:
    s2 = S2()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s2))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s2, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def index_db(warehouse, landing_dir) -> Iterator[str]:
    name = f"{settings().warehouse_db}_index_test"
    try:
        with using_database(name):
            pg.bootstrap()
            yield name
    finally:
        srv = pg.server()
        with psycopg.connect(host=srv.host, port=srv.port, user=srv.admin_user, password=srv.admin_password,
                             dbname=srv.admin_db, autocommit=True) as conn:
            for db in (name, f"{name}_airflow", f"{name}_superset"):
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(db)))


def _fetch(query: str, params: tuple = ()) -> list[dict]:
    with pg.connect("transform") as conn, conn.cursor() as cur:
        cur.execute(query, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _metrics(unit: str, as_of: str) -> dict[str, dict]:
    return {r["metric_code"]: r for r in _fetch(
        "select * from marts.mart_unit_index_766_metrics where unit_code = %s and as_of_date = %s",
        (unit, as_of))}


def _build(paths: list[str], label: str):
    # look-back 0: the second build reads only what the second night loaded
    vars_ = json.dumps({"index766_as_of_date": AS_OF, "fct_dossier_lookback": "0 seconds"})
    return transform.run_dbt(["build", "--vars", vars_, *paths], pipeline_run=label)


@pytest.fixture(scope="module")
def nights(index_db, s2_server, tmp_path_factory) -> dict[str, Any]:
    """Night 1: extract up to 25 Oct, seed and build. Night 2: extract 25 Oct - 21 Nov, build again."""
    s2, base_url = s2_server
    paths = ["--target-path", str(tmp_path_factory.mktemp("dbt-target")),
             "--log-path", str(tmp_path_factory.mktemp("dbt-logs"))]
    s2.clock = FIRST_NIGHT
    first = dossiers.extract(datetime(2026, 10, 1, tzinfo=LOCAL_TZ), FIRST_NIGHT, base_url=base_url,
                             run_label="pytest-index")
    transform.run_dbt(["seed", *paths], pipeline_run="test-index-metrics")
    build1 = _build(paths, "test-index-metrics")
    after_first = {r["dossier_code"]: r for r in _fetch("select * from marts.fct_dossier")}
    s2.clock = SECOND_NIGHT
    second = dossiers.extract(FIRST_NIGHT, SECOND_NIGHT, base_url=base_url, run_label="pytest-index")
    build2 = _build(paths, "test-index-metrics")
    return {"extracts": (first, second), "builds": (build1, build2), "after_first": after_first,
            "paths": paths}


def _rows_affected(build, model: str) -> int:
    node = next(r for r in build.result.results if r.node.name == model)
    return node.adapter_response["rows_affected"]


def test_extract_and_builds_succeed(nights):
    first, second = nights["extracts"]
    assert first["runs"]["dossiers"]["loaded"] == 8  # the 8 dossiers updated before 25 Oct
    assert second["runs"]["dossiers"]["loaded"] == 4  # c1-06 changed; c1-11, c1-12, c1-13 new
    assert all(b.success for b in nights["builds"])


def test_second_night_is_incremental_and_newest_version_wins(nights):
    before = nights["after_first"]
    assert before["000.31.10.H15-c1-06"]["status"] == 4
    assert before["000.31.10.H15-c1-06"]["overdue_from_date"].isoformat() == "2026-10-25"
    # the second build read only the dossiers the second night loaded
    assert _rows_affected(nights["builds"][1], "fct_dossier") == 4
    after = {r["dossier_code"]: r for r in _fetch("select * from marts.fct_dossier")}
    assert len(after) == 11  # 8 + 3 new
    c106 = after["000.31.10.H15-c1-06"]
    assert (c106["status"], c106["is_on_time"]) == (10, False)
    assert after["000.31.10.H15-c1-01"]["is_paid_online"] and after["000.31.10.H15-c1-01"]["status"] == 10
    assert after["000.31.10.H15-c1-02"]["supplement_waiting_hours"] == Decimal("48.00")
    assert after["000.31.10.H15-c1-02"]["is_on_time"] is True  # 12 Oct 10:00 - 48 h <= 10 Oct 17:00
    assert after["000.31.10.H15-c1-03"]["is_on_time"] is False  # two supplement requests


# (metric, numerator, denominator, points) worked out by hand for commune C1, October, final (31 Oct)
C1_OCTOBER_FINAL = [
    # received and not withdrawn: c1-01..06 = 6; overdue: c1-03 (two requests), c1-05 (open, due 27 Oct),
    # c1-06 (finished 29 Oct, due 24 Oct); c1-02 on time (waiting excluded), c1-04 open and due 31 Oct
    ("ON_TIME_RATE", 3, 6, "10.00"),                    # 20 x 3/6
    ("ONLINE_PROVISION", 2, 3, "1.67"),                 # P1, P3 of P1-P3 (not P5, abolished): 2 x 0.667/0.8
    ("ONLINE_SERVICE_USED", 2, 2, "4.00"),              # P1 and P3 both had an online dossier
    ("ONLINE_SUBMISSION", 3, 6, "6.00"),                # c1-01, 04, 06 online: min(6, 6 x 0.5/0.5)
    ("ONLINE_PAYMENT_DOSSIER", 3, 5, "3.60"),           # fees: c1-01, 02, 04, 05, 06; paid online 01, 04, 06
    ("ONLINE_PAYMENT_FORMALITY", 2, 2, "2.00"),         # P1, P3: min(2, 2.5 x 1)
    ("FEE_FORMALITY_INTEGRATED", 2, 2, "2.00"),
    ("ORIGINAL_RESULT_AVAILABLE", 2, 3, "4.00"),        # finished P1 dossiers c1-01, 02, 06; e-result 01, 06
    ("SO_HOA_GIAY_TO_GIAI_QUYET", 3, 4, "3.00"),        # finished 01, 02, 03, 06; 02 lacks its e-result
    ("REUSED_DIGITIZED_DATA", 3, 6, "1.25"),            # c1-01, 03, 04: min(2, 2 x 0.5/0.8)
    ("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", 1, 6, "0.67"),  # c1-03
    ("CITIZEN_DATA_CONNECTED_DOSSIER", 3, 6, "1.00"),   # VNeID c1-01, 06; data store c1-03
    ("CITIZEN_DATA_CONNECTED_FORMALITY", 2, 3, "1.33"),  # P1 (01, 06), P2 (03) of P1, P2, P3
    ("PETITION_PROCESSING_ON_TIME", 0, 0, "6.00"),      # no petitions: full points
    ("PETITION_HANDLING_SATISFACTION", 0, 0, "6.00"),
    ("DOSSIER_RECEIVING_SATISFACTION", 3, 6, "3.33"),   # 1 - 3/6 overdue - 0 complaints: 6 x 0.5/0.9
]


def test_commune_october_final_by_hand(nights):
    rows = _metrics(C1, "2026-10-31")
    for code, num, den, points in C1_OCTOBER_FINAL:
        row = rows[code]
        assert (row["numerator"], row["denominator"], row["points"]) == (num, den, Decimal(points)), code
        assert row["source"] == "computed" and row["period_start"].isoformat() == "2026-10-01"
    assert rows["PETITION_PROCESSING_ON_TIME"]["ratio"] is None
    assert rows["ONLINE_PROVISION"]["ratio"] == Decimal("0.666667")
    # no DVCQG figures were loaded: the official indicators are there, not applicable
    official = [r for r in rows.values() if r["source"] == "official"]
    assert {r["metric_code"] for r in official} == {"PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME",
                                                    "PUBLIC_CONTENT_FULL", "DOSSIER_SYNC",
                                                    "ELECTRONIC_CERTIFIED_COPY"}
    assert all(r["points"] is None for r in official)
    assert len(rows) == 21


def test_month_to_date_and_open_dossiers(nights):
    # 24 Oct: c1-05 (due 27) and c1-06 (due 24 Oct 17:00) not yet overdue; c1-03 is since 10 Oct
    mid = _metrics(C1, "2026-10-24")["ON_TIME_RATE"]
    assert (mid["numerator"], mid["denominator"], mid["points"]) == (5, 6, Decimal("16.67"))
    assert _metrics(C1, "2026-10-09")["ON_TIME_RATE"]["denominator"] == 3  # received by 9 Oct: 01, 02, 03
    # 20 Nov: c1-12 due that day and open, c1-13 waiting for a supplement: both on time
    nov = _metrics(C1, AS_OF)["ON_TIME_RATE"]
    assert (nov["numerator"], nov["denominator"], nov["points"]) == (3, 3, Decimal("20.00"))
    last = _fetch("select max(as_of_date) as d from marts.mart_unit_index_766_metrics")[0]["d"]
    assert last.isoformat() == AS_OF


def test_empty_commune_agency_and_province(nights):
    empty = _metrics(C2, "2026-10-31")
    assert empty["ON_TIME_RATE"]["denominator"] == 0
    assert empty["ON_TIME_RATE"]["ratio"] is None and empty["ON_TIME_RATE"]["points"] is None
    assert empty["DOSSIER_RECEIVING_SATISFACTION"]["points"] is None
    assert empty["PETITION_HANDLING_SATISFACTION"]["points"] == Decimal("6.00")
    agency = _metrics(AGENCY, "2026-10-31")
    assert (agency["ON_TIME_RATE"]["numerator"], agency["ON_TIME_RATE"]["denominator"]) == (1, 1)
    # an agency's authority: the provincial procedures it received dossiers for (P4, online)
    assert (agency["ONLINE_PROVISION"]["numerator"], agency["ONLINE_PROVISION"]["denominator"]) == (1, 1)
    province = _metrics("H15", "2026-10-31")["ON_TIME_RATE"]
    assert (province["numerator"], province["denominator"], province["points"]) == (4, 7, Decimal("11.43"))


def test_wide_form_by_hand(nights):
    rows = {r["unit_code"]: r for r in _fetch(
        "select * from marts.mart_unit_index_766 where as_of_date = '2026-10-31'")}
    c1 = rows[C1]
    assert c1["is_final"]
    assert (c1["tdgq"], c1["clgq"], c1["tttt"], c1["mdsh"], c1["mdhl"]) == (
        Decimal("10.00"), Decimal("11.67"), Decimal("7.60"), Decimal("11.25"), Decimal("15.33"))
    assert c1["ckmb"] is None and c1["total_score"] == Decimal("55.85")
    assert (c1["rank_in_type"], rows[C2]["rank_in_type"], c1["units_in_type"]) == (1, 2, 2)
    assert rows[AGENCY]["rank_in_type"] == 1 and rows["H15"]["rank_in_type"] is None
    november = _fetch("select * from marts.mart_unit_index_766 where unit_code = %s and as_of_date = %s",
                      (C1, AS_OF))[0]
    assert november["previous_final_total_score"] == Decimal("55.85")
    assert november["score_change"] == november["total_score"] - Decimal("55.85")


INDEX_TABLES = ["int_index766__dossier_daily", "int_index766__procedure_daily",
                "int_index766__petition_daily", "int_index766__unit_day_counts", "int_index766__unit_metrics",
                "mart_unit_index_766_metrics", "mart_unit_index_766"]


def _index_tables() -> dict[str, list[tuple]]:
    """Every row of the service index's incremental tables, built_at (when) left out, sorted."""
    tables = {}
    for name in INDEX_TABLES:
        schema = "marts" if name.startswith("mart_") else "intermediate"
        rows = _fetch(f"select * from {schema}.{name}")
        tables[name] = sorted(tuple(str(v) for k, v in row.items() if k != "built_at") for row in rows)
    return tables


def test_incremental_months_match_a_full_rebuild(nights):
    """Night 2 rebuilt the months its changes touched (c1-06, received in October, changed); a night with
    nothing new loaded rebuilds only the running month (November) and keeps October; a full rebuild of the
    same data then gives the same rows. Runs last: it rebuilds the tables."""
    quiet_night = _build(nights["paths"], "test-index-metrics")
    for name in ["int_index766__unit_day_counts", "mart_unit_index_766"]:
        schema = "marts" if name.startswith("mart_") else "intermediate"
        months = _fetch(f"select period_start, count(*) as n from {schema}.{name} group by 1 order by 1")
        assert [m["period_start"].isoformat() for m in months] == ["2026-10-01", "2026-11-01"]
        assert _rows_affected(quiet_night, name) == months[1]["n"], name
    incremental = _index_tables()
    assert incremental["int_index766__dossier_daily"] and incremental["mart_unit_index_766_metrics"]
    vars_ = json.dumps({"index766_as_of_date": AS_OF, "fct_dossier_lookback": "0 seconds"})
    transform.run_dbt(["build", "--vars", vars_, "--full-refresh", "--select", *INDEX_TABLES,
                       *nights["paths"]], pipeline_run="test-index-metrics")
    assert _index_tables() == incremental
