"""DVCQG's official unit scores derived from the S2 sandbox's dossiers (the S1 sandbox's home units).

The S1 sandbox (`dvcqg.py`) scores the home province's agencies and communes, for the months the S2
sandbox province has dossiers in (its start month to its clock's month), from those very dossiers: the
groups computable from dossiers and the procedure catalogue (TDGQ, CLGQ, TTTT and MDSH less the
e-certified-copy metric) follow the rules of DOMAIN.md as the warehouse applies them (seed
index766_scoring_rules, fct_dossier's on-time verdict); CKMB, MDHL and that metric stay synthetic (chiso takes
CKMB and the metric from DVCQG; satisfaction comes from channels it does not read).

A month is judged as of its last day, from the dossiers as they stand at the clock (the S2 clock: a fixed
`as_of`, or now): received in the month and not withdrawn (TrangThaiHoSo 7) for the received-based counts,
finished in the month for the finished-based ones; impossible records (which the warehouse quarantines) are
left out. Metric scores are rounded to two decimals and a group is their sum, as the portal publishes.

Not all units synced: `unsynced_units(seed)` names a few units whose desk (non-online) dossiers reached
DVCQG wrongly, so their official figures differ from chiso's: "missing" (DVCQG never got them: it counts the
online dossiers only) or "duplicated" (each reached it twice). They are chosen among units that take few
dossiers online, so the online-submission share and everything fee- or digitisation-related moves clearly.
`GET /_sandbox/unsynced` on the S1 sandbox lists them.

Memory and time: a month scans its receipt days and the MAX_LIFE days before it one day at a time (the first
month of a clock hour scans the whole history once more, for the agencies' procedures), keeping per-unit
counters and procedure sets only; results are cached per month and clock hour (a few months). Measured at
the default scale (2,500 dossiers a day, 90 days): about 60 MB peak RSS; a month 4-12 s of one busy core.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from threading import Lock
from typing import Any

import numpy as np

from ingestion.sandbox import province as pv

DERIVED_GROUPS = ("TDGQ", "CLGQ", "TTTT", "MDSH")
UNSYNCED_KINDS = ("missing", "duplicated")
N_UNSYNCED_COMMUNES, N_UNSYNCED_AGENCIES = 3, 1
UNSYNCED_MAX_ONLINE = 0.4  # candidates take at most this share online (expected), so the shift is large

_PAPER_KEYS = ("received", "received_online", "received_postal", "received_with_fee",
               "received_fee_paid_online", "received_digitised", "received_data_store",
               "received_population_data", "overdue",
               "finished", "finished_digitised", "finished_paper_required", "finished_paper_e_result")
_PROCEDURE_SETS = ("online_used", "fee_paid_online", "fee_data", "citizen", "population_data")


def unsynced_units(seed: int = 766) -> dict[str, str]:
    """unit code -> "missing" | "duplicated": the units whose desk dossiers did not sync to DVCQG as they
    should (deterministic in the seed)."""
    out: dict[str, str] = {}
    for level, n in (("XA", N_UNSYNCED_COMMUNES), ("SO_NGANH", N_UNSYNCED_AGENCIES)):
        candidates = [u for u in pv.units(seed) if u.level == level and u.online <= UNSYNCED_MAX_ONLINE]
        for u in sorted(candidates, key=lambda u: pv.h(seed, "unsynced", u.code))[:n]:
            out[u.code] = UNSYNCED_KINDS[len(out) % len(UNSYNCED_KINDS)]
    return dict(sorted(out.items(), key=lambda kv: int(kv[0].split(".")[1])))


@dataclass
class UnitMonth:
    """One unit's counts for one month (weighted by how its dossiers reached DVCQG)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_PAPER_KEYS, 0))
    procedures: dict[str, set[int]] = field(default_factory=lambda: {k: set() for k in _PROCEDURE_SETS})
    completed: int = 0  # finished in the month (TDGQ's totalCompleted)
    processing_days: float = 0.0  # sum over those, days from receipt to finish


def _quarantined(u: np.ndarray, received: np.ndarray) -> np.ndarray:
    """The impossible records (province.Province._record's mess: a due date before receipt, a status out of
    range, the unknown unit code "H15.999"): DVCQG's sync rejects them, as the warehouse's loader does (the
    loader recovers some unknown codes by the unit's name; see the e2e reconciliation test)."""
    return u[:, pv.U["impossible"]] < pv.MESS["impossible"]


def _facts(lv: pv.Lives, at: int, p_fee: np.ndarray, p_paper: np.ndarray) -> dict[str, np.ndarray]:
    """Per dossier, what its record shows as of `at` (see province.Province._record) and the warehouse's
    verdicts on it (fct_dossier: is_on_time, overdue_from_date)."""
    ev = np.where(lv.events <= at, lv.events, -1)
    _, status = lv.as_of(at)
    u, end = lv.u, pv.END
    received = ev[:, 1] >= 0
    keep = received & (status != 7) & ~_quarantined(u, received)
    finished = (ev[:, end] >= 0) & np.isin(lv.end_status, (3, 8, 9))
    fin = np.where(finished, ev[:, end], -1)
    req1, back1, req2, back2 = ev[:, 3], ev[:, 4], ev[:, 5], ev[:, 6]
    n_sup = (req1 >= 0).astype(int) + ((req1 >= 0) & (req2 >= 0))
    end1 = np.where(back1 >= 0, back1, fin)
    end2 = np.where(back2 >= 0, back2, fin)
    wait = (np.where((req1 >= 0) & (end1 >= 0) & (end1 > req1), end1 - req1, 0)
            + np.where((req2 >= 0) & (req1 >= 0) & (end2 >= 0) & (end2 > req2), end2 - req2, 0))
    due = lv.due0  # NgayHenTraTruoc of the first supplement, or NgayHenTra before any was returned
    on_time = finished & (n_sup <= 1) & (fin - wait <= due)
    # the instant an unfinished dossier turns overdue: the due date plus the first supplement's waiting
    no_req = (req1 < 0) | (req1 >= due)
    overdue_at = np.where(no_req, due, np.where(end1 >= 0, due + (end1 - req1), -1))
    big = np.iinfo(np.int64).max
    candidates = np.stack([np.where(overdue_at >= 0, overdue_at // pv.DAY + 1, big),
                           np.where(finished, fin // pv.DAY, big),
                           np.where(req2 >= 0, req2 // pv.DAY, big)], axis=1).min(axis=1)
    recv_day = ev[:, 1] // pv.DAY
    overdue_from = np.where(on_time | (candidates == big), big, np.maximum(candidates, recv_day))
    online = lv.channel == 2
    fee = p_fee[lv.proc] > 0
    files = 1 + (u[:, pv.U["files"]] * 4).astype(int)
    kho = (u[:, pv.U["kho"]] < 0.2) & (files >= 2)
    vneid = online & (u[:, pv.U["vneid"]] < 0.7)
    with_results = np.isin(status, (9, 10))
    e_result = with_results & (u[:, pv.U["e_result"]] < np.where(online, 0.85, 0.45))
    paper = p_paper[lv.proc]
    return {
        "keep": keep, "recv_day": recv_day, "fin_day": np.where(finished, fin // pv.DAY, -1),
        "processing_days": np.where(finished, (fin - ev[:, 1]) / pv.DAY, 0.0),
        "overdue_from": overdue_from, "online": online, "fee": fee,
        "paid": fee & online & (u[:, pv.U["pay"]] < 0.75),
        "digitised": online | (u[:, pv.U["digitised"]] < 0.72), "kho": kho, "vneid": vneid,
        "citizen": u[:, pv.U["org"]] >= 0.12, "paper": paper, "e_result": e_result,
    }


class OfficialScores:
    """The derived official figures of one sandbox province (seed, scale, start as the S2 sandbox's)."""

    DERIVED_GROUPS = DERIVED_GROUPS

    def __init__(self, seed: int = pv.DEFAULT_SEED, dossiers_per_day: float = pv.DEFAULT_DOSSIERS_PER_DAY,
                 history_days: int = pv.DEFAULT_HISTORY_DAYS, start: date | None = None,
                 as_of: str | datetime | None = None, cache_months: int = 6) -> None:
        self.clock = None
        if as_of:
            self.clock = pv.to_ts(as_of) if isinstance(as_of, datetime) else pv.parse_time(as_of)
        if start is None:  # as the S2 sandbox counts it: the history ends at the clock's day
            start = self.today() - timedelta(days=history_days)
        self.province = pv.Province(seed, dossiers_per_day, history_days, start)
        self.unsynced = unsynced_units(seed)
        self._weights = self._unsynced_weights()
        procs = self.province.procedures
        self._fee = np.array([p.fee for p in procs])
        self._paper = np.array([p.paper for p in procs])
        self._cache: OrderedDict[tuple[int, int, int], dict[str, UnitMonth]] = OrderedDict()
        self._cache_size = cache_months
        self._agency = np.array([u.level == "SO_NGANH" for u in self.province.units])
        self._authority_at: tuple[int, dict[int, set[int]]] | None = None  # (clock hour, authority)
        self._lock = Lock()

    def now(self) -> int:
        return self.clock if self.clock is not None else pv.now_ts() // 60 * 60

    def today(self) -> date:
        return date.fromordinal(self.now() // pv.DAY)

    def describe(self) -> dict[str, Any]:
        return {"seed": self.province.seed, "dossiers_per_day": self.province.dossiers_per_day,
                "start": self.province.start.isoformat(), "as_of": pv.fmt_iso(self.now()),
                "fixed_clock": self.clock is not None, "derived_groups": list(DERIVED_GROUPS),
                "unsynced": self.unsynced}

    def covers(self, year: int, month: int) -> bool:
        """Months from the province's first month to the clock's month are derived from dossiers."""
        first = self.province.start.replace(day=1)
        last = self.today().replace(day=1)
        return first <= date(year, month, 1) <= last

    def _unsynced_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per unit index: how many times DVCQG counts a desk dossier and an online one."""
        desk = np.ones(len(self.province.units), dtype=np.int64)
        for k, u in enumerate(self.province.units):
            if u.code in self.unsynced:
                desk[k] = 0 if self.unsynced[u.code] == "missing" else 2
        return desk, np.ones_like(desk)

    def _authority_pairs(self, lv: pv.Lives, at: int) -> np.ndarray:
        """unit x procedure (unit * procedures + procedure) of the agencies' dossiers that exist at `at`."""
        upd, _ = lv.as_of(at)
        ok = (upd >= 0) & ~_quarantined(lv.u, (lv.events[:, 1] >= 0) & (lv.events[:, 1] <= at))
        ok &= self._agency[lv.unit]
        return np.unique(lv.unit[ok] * len(self.province.procedures) + lv.proc[ok])

    def _authority(self, pairs: list[np.ndarray]) -> dict[int, set[int]]:
        """Procedures (indexes) under each unit's authority: a commune, every commune-level one in force; an
        agency, the province-level ones in force it has received a dossier for (the warehouse's rule)."""
        procs = self.province.procedures
        commune = {p.idx for p in procs if p.active and p.level == "XA"}
        seen: dict[int, set[int]] = {}
        for pair in np.unique(np.concatenate(pairs)).tolist() if pairs else []:
            seen.setdefault(pair // len(procs), set()).add(pair % len(procs))
        out = {}
        for k, u in enumerate(self.province.units):
            if u.level == "XA":
                out[k] = commune
            else:
                out[k] = {p for p in seen.get(k, set()) if procs[p].active and procs[p].level == "TINH"}
        return out

    def month(self, year: int, month: int) -> dict[str, UnitMonth]:
        """unit code -> its counts for the month, judged as of its last day (or the clock, when earlier)."""
        at = self.now()
        key = (year, month, at // 3600)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            result = self._compute(year, month, at)
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return result

    def _compute(self, year: int, month: int, at: int) -> dict[str, UnitMonth]:
        first = date(year, month, 1).toordinal()
        last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).toordinal()
        last = min(last, at // pv.DAY)
        units, n_procs = self.province.units, len(self.province.procedures)
        totals = {name: np.zeros(len(units)) for name in (*_PAPER_KEYS, "completed", "processing_days")}
        pairs: dict[str, list[np.ndarray]] = {name: [] for name in _PROCEDURE_SETS}
        desk_w, online_w = self._weights
        lo = max(first - pv.MAX_LIFE - 1, self.province.start.toordinal())
        # the agencies' authority needs every day up to the clock: scanned once per clock hour, with a month
        cached = self._authority_at
        authority = cached[1] if cached and cached[0] == at // 3600 else None
        authority_pairs: list[np.ndarray] = []
        scan = (lo, last) if authority is not None else (self.province.start.toordinal(), at // pv.DAY)
        for d in range(scan[0], scan[1] + 1):
            lv = self.province.day_lives(d)
            if lv is None:
                continue
            if authority is None:
                authority_pairs.append(self._authority_pairs(lv, at))
            if not lo <= d <= last:
                continue
            f = _facts(lv, at, self._fee, self._paper)
            w = np.where(f["online"], online_w[lv.unit], desk_w[lv.unit]) * f["keep"]
            got = (w > 0) & (f["recv_day"] >= first) & (f["recv_day"] <= last)
            done = (w > 0) & (f["fin_day"] >= first) & (f["fin_day"] <= last)
            population = f["vneid"] | f["kho"]
            for name, mask, value in (
                ("received", got, 1), ("overdue", got, f["overdue_from"] <= last),
                ("received_online", got, f["online"]), ("received_postal", got, lv.channel == 3),
                ("received_with_fee", got, f["fee"]), ("received_fee_paid_online", got, f["fee"] & f["paid"]),
                ("received_digitised", got, f["digitised"]), ("received_data_store", got, f["kho"]),
                ("received_population_data", got, population),
                ("finished", done, 1), ("finished_digitised", done, ~f["paper"] | f["e_result"]),
                ("finished_paper_required", done, f["paper"]),
                ("finished_paper_e_result", done, f["paper"] & f["e_result"]),
                ("completed", done, 1), ("processing_days", done, f["processing_days"]),
            ):
                totals[name] += np.bincount(lv.unit[mask], weights=(w * value)[mask], minlength=len(units))
            pair = lv.unit * n_procs + lv.proc
            for name, mask in (("online_used", got & f["online"]), ("fee_data", got & f["fee"]),
                               ("fee_paid_online", got & f["fee"] & f["paid"]),
                               ("citizen", got & f["citizen"]),
                               ("population_data", got & f["citizen"] & population)):
                pairs[name].append(np.unique(pair[mask]))
        out = {u.code: UnitMonth(counts={name: int(totals[name][k]) for name in _PAPER_KEYS},
                                 completed=int(totals["completed"][k]),
                                 processing_days=float(totals["processing_days"][k]))
               for k, u in enumerate(units)}
        for name, parts in pairs.items():
            for value in np.unique(np.concatenate(parts)).tolist() if parts else []:
                out[units[value // n_procs].code].procedures[name].add(value % n_procs)
        if authority is None:
            authority = self._authority(authority_pairs)
            self._authority_at = (at // 3600, authority)
        procs = self.province.procedures
        online = {p.idx for p in procs if p.mode != "KHONG"}
        full = {p.idx for p in procs if p.mode == "TOAN_TRINH"}
        with_fees = {p.idx for p in procs if p.fee > 0}
        for k, u in enumerate(units):
            m, mine = out[u.code], authority[k]
            c, ps = m.counts, m.procedures
            c["authority"] = len(mine)
            c["online_procedures"] = len(mine & online)
            c["full_online_procedures"] = len(mine & full)
            c["fee_procedures"] = len(mine & with_fees)
            c["online_services_used"] = len(ps["online_used"] & mine & online)
            c["fee_procedures_paid_online"] = len(ps["fee_paid_online"] & mine & with_fees)
            c["fee_procedures_with_fee_data"] = len(ps["fee_data"] & mine & with_fees)
            c["citizen_procedures"] = len(ps["citizen"])
            c["population_data_procedures"] = len(ps["population_data"])
        return out
