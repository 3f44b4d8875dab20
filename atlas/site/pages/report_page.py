"""The build report page (Atlas → Build report): what ``OUT/report.json`` says the build used and skipped.

Written by the site stage next to the other atlas pages; every string from the report (file
names, labels, error messages) is escaped by the template's autoescaping.
"""

from __future__ import annotations

from pathlib import Path

from atlas.core import layout
from atlas.core.report import read_report
from atlas.site.catalog import Catalog
from atlas.site.pages.writer import PageWriter, json_for_html

REPORT_PAGE = f"{layout.PAGES_DIR}/report.md"


def write_report_page(catalog: Catalog, docs_dir: Path, *, colormap: str, use_directory_urls: bool) -> str:
    """Write the report page into ``docs_dir``; returns its path relative to ``docs_dir``."""
    writer = PageWriter(catalog, docs_dir, colormap=colormap, use_directory_urls=use_directory_urls)
    missing = [
        (m.name, [i.id for i in catalog.images if i.id not in m.maps]) for m in catalog.models
    ]
    writer.write(
        REPORT_PAGE,
        "pages/report.html",
        "Build report",
        {
            "report": read_report(catalog.build_dir),
            "catalog_images": len(catalog.images),
            "missing": [(name, ids) for name, ids in missing if ids],
            "data_json": json_for_html(writer.base_data(REPORT_PAGE, "report")),
        },
    )
    return REPORT_PAGE
