"""Import chiso's dashboards into the deployment's Superset: the compose service `superset-import`.

It runs the code `chiso superset up` runs after starting Superset (ingestion.superset.import_bundle: render
the bundle from superset/assets with the warehouse's reader URL and the dbt docs, POST it to
/api/v1/assets/import/, then bring the row-level security roles in line with the units). That code talks to
base_url(), the local server `chiso superset up` starts on 127.0.0.1; here Superset is the `superset`
container, so base_url is pointed there. Re-running it overwrites the same objects (stable uuids).
"""

import os

from ingestion import superset

url = os.environ.get("CHISO_SUPERSET_INTERNAL_URL", "http://superset:8088").rstrip("/")
superset.base_url = lambda: url
result = superset.import_bundle()
print(f"dashboards imported into {url}; {result}")
