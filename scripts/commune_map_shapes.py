"""Project the communes' boundary polygons (GeoJSON, WGS84) to SVG paths for the daily-operations map.

Writes the dbt seed `commune_map_shapes.csv`: one row per commune (statistics code, SVG path, the viewBox
all paths share; names come from the communes seed). The dashboard draws these paths itself (Superset's
Handlebars chart), so the map needs no map tiles and no request leaves the server.

    python scripts/commune_map_shapes.py path/to/daklak_communes_2025_simplified.geojson

Projection: equirectangular around the province's mean latitude (x = lon * cos(lat0), y = -lat), scaled
to a box WIDTH units wide, coordinates rounded to whole units (one unit is about 200 m here, finer than
the source's simplification). Rings that collapse below three points after rounding (islets) are
dropped, but a commune always keeps its largest ring.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

WIDTH = 1000
MARGIN = 5
SEED = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "commune_map_shapes.csv"


def rings_of(geometry: dict) -> list[list[list[float]]]:
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return [ring for polygon in polygons for ring in polygon]


def ring_area(points: list[tuple[int, int]]) -> float:
    edges = zip(points, points[1:] + points[:1], strict=True)
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in edges)) / 2


def main(geojson_path: str) -> None:
    features = json.loads(Path(geojson_path).read_text(encoding="utf-8"))["features"]
    points = [p for f in features for ring in rings_of(f["geometry"]) for p in ring]
    lon_min, lon_max = min(p[0] for p in points), max(p[0] for p in points)
    lat_min, lat_max = min(p[1] for p in points), max(p[1] for p in points)
    x_factor = math.cos(math.radians((lat_min + lat_max) / 2))
    scale = (WIDTH - 2 * MARGIN) / ((lon_max - lon_min) * x_factor)
    height = round((lat_max - lat_min) * scale) + 2 * MARGIN

    def project(lon: float, lat: float) -> tuple[int, int]:
        return round(MARGIN + (lon - lon_min) * x_factor * scale), round(MARGIN + (lat_max - lat) * scale)

    rows = []
    for feature in sorted(features, key=lambda f: str(f["id"])):
        rings = []
        for ring in rings_of(feature["geometry"]):
            projected: list[tuple[int, int]] = []
            for lon, lat in ring:
                point = project(lon, lat)
                if not projected or projected[-1] != point:
                    projected.append(point)
            if len(projected) > 1 and projected[0] == projected[-1]:
                projected.pop()  # closed by "Z"
            rings.append(projected)
        rings.sort(key=ring_area, reverse=True)
        kept = [rings[0]] + [r for r in rings[1:] if len(r) >= 3]
        path = "".join("M" + " ".join(f"{x} {y}" for x, y in ring) + "Z" for ring in kept)
        rows.append({"commune_code": str(feature["id"]), "svg_path": path,
                     "view_box": f"0 0 {WIDTH} {height}"})

    with SEED.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} communes, viewBox 0 0 {WIDTH} {height}, {SEED.stat().st_size:,} bytes -> {SEED}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
