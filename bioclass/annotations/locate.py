"""Finding the recording a table refers to, and reading each recording's header once.

Tables name recordings in three ways: a path in a cell (Raven's `Begin Path` / `Begin File`, the
CSV's `file`), often written on another computer; nothing at all, the recording being the one the
table was saved beside (Raven's `<recording>.Table.1.selections.txt`, Audacity's
`<recording>.txt`); or a path the caller gives. Every way reports the places it tried.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from bioclass.annotations.errors import AnnotationAudioError, where
from bioclass.audio import AUDIO_EXTENSIONS, AudioError, audio_info
from bioclass.audio.io import AudioInfo

# A named path is also looked for by its name with up to this many of its folders below
# `audio_root` and the table's folder: recordings move between computers, and recorders give
# files at different sites the same names, so the folders nearest the name are kept if they can.
SUFFIX_PARTS = 3

# Raven proposes `<recording>.Table.1.selections.txt` when a selection table is saved.
RAVEN_TABLE_NAME = re.compile(r"^(?P<stem>.+?)(?:\.Table\.\d+)?\.selections\.txt$", re.IGNORECASE)


class AudioLookup:
    """Resolves recordings for the tables of one read, caching headers and directory listings.

    Args:
        audio_root: folder the recordings are under, when the tables' paths are not valid here.
    """

    def __init__(self, audio_root: str | Path | None = None) -> None:
        self.audio_root = Path(audio_root).expanduser().resolve() if audio_root else None
        self.durations: dict[str, float] = {}
        self._info: dict[str, AudioInfo] = {}
        self._listing: dict[Path, dict[str, list[Path]]] = {}
        self._named: dict[str, tuple[str, Path, int]] = {}

    def info(self, file: str, table: Path, row: int | None) -> AudioInfo:
        """The recording's header (read once per file); registers its duration."""
        if file not in self._info:
            try:
                self._info[file] = audio_info(file)
            except AudioError as exc:
                raise AnnotationAudioError(f"{where(table, row)}: {exc}") from None
            self.durations[file] = self._info[file].duration_seconds
        return self._info[file]

    def given(self, audio: str | Path, table: Path) -> str:
        """The recording the caller named for `table`."""
        path = Path(audio).expanduser()
        if not path.is_file():
            raise AnnotationAudioError(f"{table}: audio file not found: {path}")
        return str(path.resolve())

    def named(self, name: str, table: Path, row: int) -> str:
        """The recording a cell names, tried as written, then by its last folders and name below
        `audio_root` and the table's folder."""
        parts = _parts(name)
        if not parts:
            raise AnnotationAudioError(f"{where(table, row)}: empty audio path")
        tried = _named_candidates(name, parts, table.parent, self.audio_root)
        found = next((p for p in tried if p.is_file()), None)
        if found is None:
            raise AnnotationAudioError(
                f"{where(table, row)}: audio file not found: {name!r} "
                f"(tried {', '.join(str(p) for p in tried)}); give audio_root, the folder the "
                "recordings are in"
            )
        file = str(found.resolve())
        self._check_same_recording(file, name, parts, table, row)
        return file

    def beside(self, table: Path, rel_dir: Path | None = None) -> str:
        """The recording a table was saved beside: the same name without the table's suffix
        (`rec.Table.1.selections.txt`, `rec.selections.txt`, `rec.txt` -> `rec.<audio>`)."""
        match = RAVEN_TABLE_NAME.match(table.name)
        stem = match.group("stem") if match else table.stem
        folders = [table.parent]
        if self.audio_root is not None:
            if rel_dir is not None and rel_dir != Path("."):
                folders.append(self.audio_root / rel_dir)
            folders.append(self.audio_root)
        for folder in folders:
            matches = self._by_stem(folder).get(stem, [])
            if Path(stem).suffix.lower() in AUDIO_EXTENSIONS and (folder / stem).is_file():
                # `rec.wav.txt`: the table names the recording in full (bioclass does this when
                # two recordings in one folder share a stem).
                matches = [folder / stem]
            if len(matches) > 1:
                raise AnnotationAudioError(
                    f"{table}: several recordings are named {stem!r} in {folder} "
                    f"({', '.join(p.name for p in matches)}); give the audio file"
                )
            if matches:
                return str(matches[0].resolve())
        places = ", ".join(str(f / f"{stem}.*") for f in folders)
        raise AnnotationAudioError(
            f"{table}: no recording found for this table (tried {places}); give the audio file, "
            "or audio_root"
        )

    def _by_stem(self, folder: Path) -> dict[str, list[Path]]:
        # One listing per folder: a folder of thousands of tables beside their recordings
        # would otherwise be listed once per table.
        if folder not in self._listing:
            listing: dict[str, list[Path]] = {}
            if folder.is_dir():
                for p in sorted(folder.iterdir()):
                    if (
                        p.suffix.lower() in AUDIO_EXTENSIONS
                        and not p.name.startswith(".")
                        and p.is_file()
                    ):
                        listing.setdefault(p.stem, []).append(p)
            self._listing[folder] = listing
        return self._listing[folder]

    def _check_same_recording(
        self, file: str, name: str, parts: tuple[str, ...], table: Path, row: int
    ) -> None:
        # Two cells naming files in different folders (site1/rec.wav, site2/rec.wav) must not
        # both land on one recording found by its name alone: that would merge two recordings.
        earlier = self._named.get(file)
        if earlier is None:
            self._named[file] = (name, table, row)
            return
        other_name, other_table, other_row = earlier
        other_parts = _parts(other_name)
        if len(parts) > 1 and len(other_parts) > 1 and parts[-2] != other_parts[-2]:
            raise AnnotationAudioError(
                f"{where(table, row)}: {name!r} and {other_name!r} "
                f"({where(other_table, other_row)}) are in different folders but were both "
                f"found as {file}; give audio_root so that their folders tell them apart"
            )


def _parts(name: str) -> tuple[str, ...]:
    """A path's folders and name, without drive or root, in Windows or POSIX spelling."""
    windows = "\\" in name or re.match(r"^[A-Za-z]:", name) is not None
    pure = PureWindowsPath(name) if windows else PurePosixPath(name)
    return tuple(p for p in pure.parts if p != pure.anchor)


def _named_candidates(
    name: str, parts: tuple[str, ...], table_dir: Path, audio_root: Path | None
) -> list[Path]:
    """The places a named recording is looked for, in order, without repeats."""
    out: list[Path] = []
    as_written = Path(name).expanduser()
    if as_written.is_absolute():
        out.append(as_written)
    elif re.match(r"^([A-Za-z]:|[\\/])", name) is None:  # relative, not another OS's absolute
        if audio_root is not None:
            out.append(audio_root.joinpath(*parts))
        out.append(table_dir.joinpath(*parts))
    for base in (audio_root, table_dir):
        if base is None:
            continue
        for k in range(min(len(parts), SUFFIX_PARTS), 0, -1):
            out.append(base.joinpath(*parts[-k:]))
    return list(dict.fromkeys(out))
