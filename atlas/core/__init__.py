"""What every stage of a build shares: the build folder's names, the manifest, atomic writes, the report,
the process pool, the site's file layout and colormaps, and where the tool's own files are."""
