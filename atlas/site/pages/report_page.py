"""The build report page (Atlas → Build report): what ``OUT/report.json`` says the build used and skipped.

``report_page`` is the builder of its page kind (``atlas.site.pages.kinds``); every string from the report
(file names, labels, error messages) is escaped by the template's autoescaping.
"""

from __future__ import annotations

from collections.abc import Iterator

from atlas.core import layout
from atlas.core.report import read_report
from atlas.site.pages.writer import AtlasPages, Page

REPORT_PAGE = f"{layout.PAGES_DIR}/report.md"


def report_page(site: AtlasPages) -> Iterator[Page]:
    """The report page: the build's models and skipped input, and the images a model has no maps of."""
    catalog = site.catalog
    missing = [
        (m.name, [i.id for i in catalog.images if i.id not in m.maps]) for m in catalog.models
    ]
    yield Page(
        REPORT_PAGE,
        "Build report",
        {
            "report": read_report(catalog.build_dir),
            "catalog_images": len(catalog.images),
            "missing": [(name, ids) for name, ids in missing if ids],
        },
    )
