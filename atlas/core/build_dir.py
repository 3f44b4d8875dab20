"""``BuildDir``: the one place that names every folder and file of a build folder (``--out``).

Every stage asks this value for its paths (``BuildDir(out).maps``); no other module spells a folder name
of OUT. The layout, for a reader of the export (see the export-format page):

    OUT/.atlas-build          marker: this folder is a build folder (``atlas.core.out_dir``)
    OUT/.atlas-lock           held for the whole build
    OUT/images/               display copies of the photos (dataset stage)
    OUT/maps/manifest.json    the contract between the models stage and everything after it
    OUT/maps/<model>/<image>.npz
    OUT/emd-memo/<model>/<image>.npz   the earth mover's distances solved for that pair (a cache)
    OUT/metrics/              per-image rows, head values, panels, summary.json (metrics stage)
    OUT/render/               sprite sheets and photos of the site, cached between builds
    OUT/render-stamps/        what each rendered pair was rendered from
    OUT/docs/  OUT/outside-pages/  OUT/theme/   the site stage's working folders
    OUT/site/                 the published site (unless ``--site-dir``)
    OUT/report.json           what the build used and skipped
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MARKER = ".atlas-build"
LOCK = ".atlas-lock"
REPORT_FILE = "report.json"
MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class BuildDir:
    """The paths of one build folder."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def images(self) -> Path:
        """Display copies of the photos, written by the dataset stage."""
        return self.root / "images"

    @property
    def maps(self) -> Path:
        """The map cache and its manifest."""
        return self.root / "maps"

    @property
    def manifest(self) -> Path:
        return self.maps / MANIFEST_FILE

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def summary(self) -> Path:
        return self.metrics / SUMMARY_FILE

    @property
    def render(self) -> Path:
        """Rendered site rasters (sprites, photos, thumbnails), cached between builds."""
        return self.root / "render"

    @property
    def docs(self) -> Path:
        """The docs folder the site stage composes for MkDocs."""
        return self.root / "docs"

    @property
    def outside_pages(self) -> Path:
        """Sources of the pages rendered outside MkDocs."""
        return self.root / "outside-pages"

    @property
    def theme(self) -> Path:
        """The theme's overrides, as the site stage merges them."""
        return self.root / "theme"

    @property
    def site(self) -> Path:
        """The default published site (``--site-dir`` chooses another)."""
        return self.root / "site"

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @staticmethod
    def emd_memo_of(npz: Path) -> Path:
        """The EMD memo of the pair whose maps are ``npz`` (``OUT/maps/<model>/<image>.npz`` ->
        ``OUT/emd-memo/<model>/<image>.npz``; ``atlas.metrics.emd_memo``)."""
        return npz.parents[2] / "emd-memo" / npz.parent.name / npz.name

    @staticmethod
    def stamps_of(render: Path) -> Path:
        """The render stamps folder beside a render folder (``OUT/render`` -> ``OUT/render-stamps``)."""
        return render.parent / (render.name + "-stamps")
