"""Annotation tables in: Raven selection tables (one recording or several), Audacity labels and
CSV tables read into one `Annotations`; every bad input named by table and row; label mapping;
annotated extents; and bioclass scan's own Raven, Audacity and CSV outputs read back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bioclass.annotations import (
    COLUMNS,
    AnnotationAudioError,
    AnnotationError,
    AnnotationFormatError,
    AnnotationValueError,
    LabelMappingError,
    annotated_extent,
    apply_label_mapping,
    read_annotations,
    read_extent,
)
from bioclass.annotations.read import detect_format
from bioclass.core.errors import BioclassError

SR = 8000
RAVEN_HEADER = (
    "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)"
)


def wav(path: Path, seconds: float, channels: int = 1) -> Path:
    """A silent 16-bit WAV of `seconds` (content does not matter to the readers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (int(round(seconds * SR)), channels) if channels > 1 else int(round(seconds * SR))
    sf.write(str(path), np.zeros(shape, dtype=np.float32), SR, subtype="PCM_16")
    return path


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def raven(*rows: str, extra: str = "\tAnnotation") -> str:
    return RAVEN_HEADER + extra + "\n" + "".join(r + "\n" for r in rows)


def error(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, "messages are one line"
    assert isinstance(exc.value, BioclassError)
    return message


# --- Raven ----------------------------------------------------------------------------------------


def test_raven_table_of_one_recording_found_by_ravens_name(tmp_path: Path) -> None:
    rec = wav(tmp_path / "rec.wav", 3.0)
    table = write(
        tmp_path / "rec.Table.1.selections.txt",
        raven(
            "1\tWaveform 1\t1\t0.5\t1.0\t0\t4000\tbird",
            "1\tSpectrogram 1\t1\t0.5\t1.0\t500\t2000\tbird",
            "2\tSpectrogram 1\t1\t1.5\t2.5\t\t\tfrog",
            "2\tWaveform 1\t1\t1.5\t2.5\t\t\tfrog",
        ),
    )
    ann = read_annotations(table)
    assert list(ann.boxes.columns) == COLUMNS
    # One row per selection, the spectrogram view's (it carries the band drawn).
    assert ann.boxes[["start_time", "end_time", "label", "row"]].values.tolist() == [
        [0.5, 1.0, "bird", 3],
        [1.5, 2.5, "frog", 4],
    ]
    assert ann.boxes["file"].tolist() == [str(rec)] * 2
    assert ann.boxes["low_freq"].iloc[0] == 500 and ann.boxes["high_freq"].iloc[0] == 2000
    assert math.isnan(ann.boxes["low_freq"].iloc[1])
    assert ann.boxes["channel"].tolist() == [0, 0]  # Raven's Channel 1
    assert ann.boxes["source"].tolist() == [str(table)] * 2
    assert ann.durations == {str(rec): 3.0} and ann.labels == ["bird", "frog"]


def test_raven_label_column_default_order_and_choice(tmp_path: Path) -> None:
    wav(tmp_path / "a.wav", 2.0)
    text = raven("1\tSpectrogram 1\t1\t0.1\t0.4\t0\t100\tcall\tTurdus", extra="\tType\tSpecies")
    table = write(tmp_path / "a.selections.txt", text)
    assert read_annotations(table).labels == ["Turdus"]  # Species: the first default present
    assert read_annotations(table, label_column="Type").labels == ["call"]
    with pytest.raises(AnnotationFormatError) as exc:
        read_annotations(table, label_column="Call type")
    assert error(exc) == (
        f"{table}, row 1: no label column 'Call type' (columns: 'Selection', 'View', "
        "'Channel', 'Begin Time (s)', 'End Time (s)', 'Low Freq (Hz)', 'High Freq (Hz)', "
        "'Type', 'Species')"
    )
    unlabelled = write(
        tmp_path / "b.txt", raven("1\tSpectrogram 1\t1\t0.1\t0.4\t0\t1\tx", extra="\tNotes")
    )
    with pytest.raises(AnnotationFormatError) as exc:
        read_annotations(unlabelled, audio=tmp_path / "a.wav")
    assert error(exc).startswith(
        f"{unlabelled}, row 1: no label column (looked for Annotation, Label, Species, Common Name;"
    )


def test_raven_table_of_one_recording_with_the_audio_given(tmp_path: Path) -> None:
    rec = wav(tmp_path / "audio" / "night.flac", 4.0)
    table = write(
        tmp_path / "tables" / "my selections.txt", raven("7\tSpectrogram 1\t1\t3\t3.5\t0\t1\tx")
    )
    ann = read_annotations(table, audio=rec)
    assert ann.boxes["file"].tolist() == [str(rec)]
    with pytest.raises(AnnotationAudioError) as exc:
        read_annotations(table)  # nothing named `my selections.*` beside it
    assert error(exc) == (
        f"{table}: no recording found for this table (tried {table.parent}/my selections.*); "
        "give the audio file, or audio_root"
    )


def test_raven_table_of_several_recordings_uses_file_offsets(tmp_path: Path) -> None:
    a = wav(tmp_path / "audio" / "site1" / "rec.wav", 10.0)
    b = wav(tmp_path / "audio" / "site2" / "rec.wav", 5.0)
    # Written on another computer: the paths are not valid here, their last folders are.
    table = write(
        tmp_path / "sequence.txt",
        raven(
            "1\tSpectrogram 1\t1\t1.0\t2.0\t0\t1\tbird\tD:\\survey\\site1\\rec.wav\trec.wav\t1.0",
            "2\tSpectrogram 1\t1\t11.0\t11.5\t0\t1\tfrog\tD:\\survey\\site2\\rec.wav\trec.wav\t1.0",
            "2\tWaveform 1\t1\t11.0\t11.5\t0\t1\tfrog\tD:\\survey\\site2\\rec.wav\trec.wav\t1.0",
            extra="\tAnnotation\tBegin Path\tBegin File\tFile Offset (s)",
        ),
    )
    ann = read_annotations(table, audio_root=tmp_path / "audio")
    assert ann.boxes[["file", "start_time", "end_time", "label"]].values.tolist() == [
        [str(a), 1.0, 2.0, "bird"],
        [str(b), 1.0, 1.5, "frog"],  # from the offset, not the running Begin Time
    ]
    assert ann.durations == {str(a): 10.0, str(b): 5.0}
    # Raven's Begin Path column left empty: the table is of the one recording beside it.
    wav(tmp_path / "beside.wav", 2.0)
    empty_path = write(
        tmp_path / "beside.Table.1.selections.txt",
        raven("1\tSpectrogram 1\t1\t1.0\t2.0\t0\t1\tbird\t", extra="\tAnnotation\tBegin Path"),
    )
    assert read_annotations(empty_path).recordings == [str(tmp_path / "beside.wav")]


def test_raven_multi_file_table_with_begin_file_only(tmp_path: Path) -> None:
    wav(tmp_path / "x.wav", 2.0)
    wav(tmp_path / "y.wav", 2.0)
    table = write(
        tmp_path / "t.txt",
        raven(
            "1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird\tx.wav\t0.5",
            "2\tSpectrogram 1\t1\t2.5\t3.0\t0\t1\tbird\ty.wav\t0.5",
            extra="\tAnnotation\tBegin File\tFile Offset (s)",
        ),
    )
    ann = read_annotations(table)
    assert [Path(f).name for f in ann.boxes["file"]] == ["x.wav", "y.wav"]
    assert ann.boxes["start_time"].tolist() == [0.5, 0.5]


def test_raven_multi_file_errors(tmp_path: Path) -> None:
    wav(tmp_path / "x.wav", 2.0)
    wav(tmp_path / "y.wav", 2.0)
    no_offset = write(
        tmp_path / "a.txt",
        raven(
            "1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird\tx.wav",
            "2\tSpectrogram 1\t1\t2.5\t3.0\t0\t1\tbird\ty.wav",
            extra="\tAnnotation\tBegin File",
        ),
    )
    with pytest.raises(AnnotationFormatError) as exc:
        read_annotations(no_offset)
    assert error(exc).startswith(
        f"{no_offset}, row 1: selections in 2 recordings but no 'File Offset (s)'"
    )
    spanning = write(
        tmp_path / "b.txt",
        raven(
            "1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird\tx.wav\tx.wav\t0.5",
            "2\tSpectrogram 1\t1\t1.8\t2.4\t0\t1\tbird\tx.wav\ty.wav\t1.8",
            extra="\tAnnotation\tBegin File\tEnd File\tFile Offset (s)",
        ),
    )
    with pytest.raises(AnnotationValueError) as exc:
        read_annotations(spanning)
    assert error(exc) == (
        f"{spanning}, row 3: the selection runs from x.wav into y.wav; "
        "split it at the boundary of the two files"
    )
    with pytest.raises(AnnotationFormatError, match="names 2 recordings"):
        read_annotations(spanning.with_name("a.txt"), audio=tmp_path / "x.wav")


def test_raven_missing_recording_lists_the_places_tried(tmp_path: Path) -> None:
    table = write(
        tmp_path / "t.txt",
        raven(
            "1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird\t/old/disk/site1/gone.wav\t0.5",
            extra="\tAnnotation\tBegin Path\tFile Offset (s)",
        ),
    )
    root = tmp_path / "audio"
    root.mkdir()
    with pytest.raises(AnnotationAudioError) as exc:
        read_annotations(table, audio_root=root)
    tried = [
        "/old/disk/site1/gone.wav",
        f"{root}/disk/site1/gone.wav",
        f"{root}/site1/gone.wav",
        f"{root}/gone.wav",
        f"{tmp_path}/disk/site1/gone.wav",
        f"{tmp_path}/site1/gone.wav",
        f"{tmp_path}/gone.wav",
    ]
    assert error(exc) == (
        f"{table}, row 2: audio file not found: '/old/disk/site1/gone.wav' "
        f"(tried {', '.join(tried)}); give audio_root, the folder the recordings are in"
    )


def test_recordings_of_one_name_in_different_folders_are_not_merged(tmp_path: Path) -> None:
    wav(tmp_path / "audio" / "20240501_050000.WAV", 2.0)  # only one of the two is here
    table = write(
        tmp_path / "t.txt",
        raven(
            "1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird\t/sd/site1/20240501_050000.WAV\t0.5",
            "2\tSpectrogram 1\t1\t2.5\t3.0\t0\t1\tbird\t/sd/site2/20240501_050000.WAV\t0.5",
            extra="\tAnnotation\tBegin Path\tFile Offset (s)",
        ),
    )
    with pytest.raises(AnnotationAudioError) as exc:
        read_annotations(table, audio_root=tmp_path / "audio")
    assert error(exc).startswith(
        f"{table}, row 3: '/sd/site2/20240501_050000.WAV' and '/sd/site1/20240501_050000.WAV' "
        f"({table}, row 2) are in different folders"
    )


def test_raven_selection_numbers_repeated_with_other_times(tmp_path: Path) -> None:
    wav(tmp_path / "r.wav", 5.0)
    table = write(
        tmp_path / "r.txt",
        raven(
            "1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird", "1\tSpectrogram 1\t1\t2.0\t3.0\t0\t1\tbird"
        ),
    )
    with pytest.raises(AnnotationValueError) as exc:
        read_annotations(table)
    assert error(exc).startswith(f"{table}, row 3: selection 1 is listed again with other times")


def test_raven_channels(tmp_path: Path) -> None:
    wav(tmp_path / "st.wav", 2.0, channels=2)
    ok = write(tmp_path / "st.txt", raven("1\tSpectrogram 2\t2\t0.5\t1.0\t0\t1\tbird"))
    assert read_annotations(ok).boxes["channel"].tolist() == [1]
    bad = write(
        tmp_path / "st.Table.2.selections.txt", raven("1\tSpectrogram 3\t3\t0.5\t1.0\t0\t1\tb")
    )
    with pytest.raises(AnnotationValueError) as exc:
        read_annotations(bad)
    assert error(exc) == f"{bad}, row 2: Channel 3, but {tmp_path / 'st.wav'} has 2 channel(s)"


# --- Audacity -------------------------------------------------------------------------------------


def test_audacity_labels_with_and_without_frequency_lines(tmp_path: Path) -> None:
    rec = wav(tmp_path / "dawn.wav", 6.0)
    labels = write(
        tmp_path / "dawn.txt",
        "1.000000\t1.500000\tbird\n"
        "\\\t2000.000000\t4000.000000\n"
        "2.000000\t2.500000\tfrog\n"
        "3.000000\t3.500000\tLow frequency undefined\n"
        "\\\t-1.000000\t3000.000000\n",
    )
    ann = read_annotations(labels)
    boxes = ann.boxes
    assert boxes["label"].tolist() == ["bird", "frog", "Low frequency undefined"]
    assert boxes["row"].tolist() == [1, 3, 4]
    assert boxes["low_freq"].iloc[0] == 2000 and boxes["high_freq"].iloc[0] == 4000
    assert boxes[["low_freq", "high_freq"]].iloc[1].isna().all()
    assert math.isnan(boxes["low_freq"].iloc[2]) and boxes["high_freq"].iloc[2] == 3000
    assert boxes["channel"].isna().all() and ann.durations == {str(rec): 6.0}


def test_audacity_errors(tmp_path: Path) -> None:
    wav(tmp_path / "r.wav", 6.0)
    point = write(tmp_path / "r.txt", "1\t2\tbird\n\n2.15\t2.15\tpoint label\n")
    with pytest.raises(AnnotationValueError) as exc:
        read_annotations(point)
    assert error(exc).startswith(f"{point}, row 3: end time equals start time (2.15)")
    orphan = write(tmp_path / "r.txt", "\\\t100\t200\n1\t2\tbird\n")
    with pytest.raises(AnnotationFormatError, match=r", row 1: a frequency line"):
        read_annotations(orphan)
    for text in ("1.0 2.0 bird\n", "1.0,2.0,bird\n"):
        spaces = write(tmp_path / "r.txt", text)
        with pytest.raises(AnnotationFormatError) as exc:
            read_annotations(spaces)
        assert error(exc).startswith(f"{spaces}, row 1: not tab-separated")
    comma = write(tmp_path / "r.txt", "1,5\t2\tbird\n")
    with pytest.raises(
        AnnotationValueError,
        match=r"row 1: start time must be a number, got '1,5' \(a decimal comma",
    ):
        read_annotations(comma)
    no_text = write(tmp_path / "r.txt", "1\t2\tbird\n3\t4\n")
    with pytest.raises(AnnotationValueError, match=r"r.txt, row 2: the label has no text"):
        read_annotations(no_text)
    alone = write(tmp_path / "elsewhere" / "r.txt", "1\t2\tbird\n")
    with pytest.raises(AnnotationAudioError) as exc:
        read_annotations(alone)
    assert error(exc).startswith(
        f"{alone}: no recording found for this table (tried {alone.parent}/r.*)"
    )


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_table_paths_band_channel_and_extra_columns(tmp_path: Path) -> None:
    a = wav(tmp_path / "audio" / "a.wav", 3.0)
    b = wav(tmp_path / "audio" / "sub" / "b.wav", 3.0, channels=2)
    table = write(
        tmp_path / "audio" / "boxes.csv",
        "file,start_time,end_time,label,low_freq,high_freq,channel,observer\n"
        "a.wav,0.5,1.0,bird,,,,me\n"
        f'{b},1.0,2.0,"frog, green",300,900,1,you\n',
    )
    boxes = read_annotations(table).boxes
    assert boxes[["file", "label", "row"]].values.tolist() == [
        [str(a), "bird", 2],
        [str(b), "frog, green", 3],
    ]
    assert boxes["channel"].tolist()[1] == 1 and pd.isna(boxes["channel"].iloc[0])
    assert boxes["high_freq"].iloc[1] == 900
    moved = write(
        tmp_path / "tables" / "boxes.csv", "file,start_time,end_time,label\nsub/b.wav,0,1,x\n"
    )
    assert read_annotations(moved, audio_root=tmp_path / "audio").boxes["file"].tolist() == [str(b)]


def test_csv_errors(tmp_path: Path) -> None:
    wav(tmp_path / "a.wav", 3.0)
    semicolons = write(tmp_path / "s.csv", "file;start_time;end_time;label\na.wav;0;1;x\n")
    with pytest.raises(AnnotationFormatError) as exc:
        read_annotations(semicolons)
    assert error(exc).startswith(
        f"{semicolons}, row 1: not comma-separated (the header is separated by ';')"
    )
    no_label = write(tmp_path / "n.csv", "file,start_time,end_time,species\na.wav,0,1,x\n")
    with pytest.raises(AnnotationFormatError) as exc:
        read_annotations(no_label)
    assert error(exc) == (
        f"{no_label}, row 1: missing column 'label' "
        "(columns: 'file', 'start_time', 'end_time', 'species')"
    )
    bad_channel = write(
        tmp_path / "c.csv", "file,start_time,end_time,label,channel\na.wav,0,1,x,1\n"
    )
    with pytest.raises(AnnotationValueError, match=r"c.csv, row 2: channel must be 0 to 0"):
        read_annotations(bad_channel)


# --- every reader: tolerated layouts and refused values ------------------------------------------


def _tables(folder: Path) -> dict[str, tuple[str, str]]:
    """Per format: (a table with two boxes, its suffix), row 3 the second box."""
    return {
        "raven": (
            raven(
                "1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird",
                "2\tSpectrogram 1\t1\t{s}\t{e}\t0\t1\tfrog",
            ),
            ".txt",
        ),
        "audacity": ("\n0.5\t1.0\tbird\n{s}\t{e}\tfrog\n", ".txt"),  # row 1 blank
        "csv": ("file,start_time,end_time,label\nr.wav,0.5,1.0,bird\nr.wav,{s},{e},frog\n", ".csv"),
    }


@pytest.mark.parametrize("kind", ["raven", "audacity", "csv"])
def test_bom_crlf_trailing_lines_and_extra_cells_are_read(tmp_path: Path, kind: str) -> None:
    wav(tmp_path / "r.wav", 3.0)
    text, suffix = _tables(tmp_path)[kind]
    text = "\ufeff" + text.format(s=1.5, e=2.5) + "\n\n  \n"
    if kind == "raven":
        text = text.replace("\tbird\n", "\tbird\t\n")  # a trailing tab some editors leave
    table = write(tmp_path / f"r{suffix}", text, newline="\r\n")
    boxes = read_annotations(table).boxes
    assert boxes[["start_time", "end_time", "label"]].values.tolist() == [
        [0.5, 1.0, "bird"],
        [1.5, 2.5, "frog"],
    ]


@pytest.mark.parametrize("kind", ["raven", "audacity", "csv"])
@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        ("1.5", "two", "must be a number, got 'two'"),
        ("1,5", "2", "must be a number, got '1,5' (a decimal comma? use a point: 1.5, not 1,5)"),
        ("2.0", "1.5", "is before"),
        ("-0.5", "1.0", "is negative; times count in seconds from the start of the recording"),
        ("2.5", "3.5", "the box ends at 3.5 s, past the end of"),
    ],
)
def test_bad_times_name_the_table_and_row(
    tmp_path: Path, kind: str, start: str, end: str, fragment: str
) -> None:
    wav(tmp_path / "r.wav", 3.0)
    text, suffix = _tables(tmp_path)[kind]
    if kind == "csv" and "," in start:
        start = f'"{start}"'
    table = write(tmp_path / f"r{suffix}", text.format(s=start, e=end))
    with pytest.raises(AnnotationValueError) as exc:
        read_annotations(table)
    message = error(exc)
    assert message.startswith(f"{table}, row 3: ") and fragment in message


def test_a_box_past_the_end_by_rounding_only_is_clipped(tmp_path: Path) -> None:
    wav(tmp_path / "r.wav", 3.0)
    table = write(tmp_path / "r.txt", "2.0\t3.0004\tbird\n")
    assert read_annotations(table).boxes["end_time"].tolist() == [3.0]


def test_comma_separated_raven_table_is_refused(tmp_path: Path) -> None:
    wav(tmp_path / "r.wav", 3.0)
    text = raven("1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird").replace("\t", ",")
    table = write(tmp_path / "r.Table.1.selections.txt", text)
    for table_format in (None, "raven"):
        with pytest.raises(AnnotationFormatError) as exc:
            read_annotations(table, table_format=table_format)
        assert error(exc).startswith(
            f"{table}, row 1: not tab-separated (the header is separated by ','); "
            "Raven selection tables are tab-separated text"
        )
    missing = write(
        tmp_path / "m.txt", "Selection\tView\tBegin Time (s)\tAnnotation\n1\tS\t0.5\tb\n"
    )
    with pytest.raises(AnnotationFormatError) as exc:
        read_annotations(missing, audio=tmp_path / "r.wav")
    assert error(exc).startswith(f"{missing}, row 1: missing column 'End Time (s)' (columns: ")


def test_empty_labels_are_refused(tmp_path: Path) -> None:
    wav(tmp_path / "r.wav", 3.0)
    table = write(tmp_path / "r.txt", raven("1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\t"))
    with pytest.raises(AnnotationValueError) as exc:
        read_annotations(table)
    assert error(exc) == (
        f"{table}, row 2: empty label in column 'Annotation'; label every selection or delete it"
    )


def test_windows_1252_table_is_read(tmp_path: Path) -> None:
    wav(tmp_path / "r.wav", 3.0)
    table = write(tmp_path / "r.txt", "0.5\t1.0\tRougegorge familier é\n", encoding="cp1252")
    assert read_annotations(table).labels == ["Rougegorge familier é"]


# --- dispatcher -----------------------------------------------------------------------------------


def test_folder_of_mixed_tables_and_format_detection(tmp_path: Path) -> None:
    wav(tmp_path / "a.wav", 3.0)
    wav(tmp_path / "b.wav", 3.0)
    wav(tmp_path / "c.wav", 3.0)
    tables = tmp_path / "tables"
    r = write(
        tables / "a.Table.1.selections.txt", raven("1\tSpectrogram 1\t1\t0.5\t1.0\t0\t1\tbird")
    )
    au = write(tables / "b.txt", "0.5\t1.0\tfrog\n")
    empty = write(tables / "deeper" / "c.txt", "")  # listened to, nothing found
    c = write(tables / "more.csv", "file,start_time,end_time,label\n../a.wav,2,2.5,bird\n")
    assert [detect_format(p) for p in (r, au, empty, c)] == ["raven", "audacity", "audacity", "csv"]
    ann = read_annotations([tables, r], audio_root=tmp_path)  # r twice: read once
    assert ann.boxes[["label", "source"]].values.tolist() == [
        ["bird", str(r)],
        ["frog", str(au)],
        ["bird", str(c)],
    ]
    assert sorted(Path(f).name for f in ann.recordings) == ["a.wav", "b.wav", "c.wav"]
    unknown = write(tables / "notes.txt", "\n\nsome notes\n")
    with pytest.raises(AnnotationFormatError) as exc:
        read_annotations(tables, audio_root=tmp_path)
    assert error(exc).startswith(f"{unknown}, row 3: cannot tell the table's format")
    with pytest.raises(AnnotationError, match="annotation table not found"):
        read_annotations(tmp_path / "nope.txt")
    with pytest.raises(AnnotationError, match="an audio file belongs to one table"):
        read_annotations([r, au], audio=tmp_path / "a.wav")


def test_each_recording_header_is_read_once(tmp_path: Path, monkeypatch) -> None:
    import bioclass.annotations.locate as locate

    calls: list[str] = []
    real = locate.audio_info
    monkeypatch.setattr(locate, "audio_info", lambda f: calls.append(f) or real(f))
    wav(tmp_path / "r.wav", 3.0)
    rows = "".join(f"r.wav,{i * 0.1},{i * 0.1 + 0.05},x\n" for i in range(20))
    write(tmp_path / "t.csv", "file,start_time,end_time,label\n" + rows)
    write(tmp_path / "r.txt", "0.5\t1\tbird\n")
    assert len(read_annotations(tmp_path)) == 21
    assert calls == [str(tmp_path / "r.wav")]


# --- label mapping --------------------------------------------------------------------------------


def test_label_mapping_renames_merges_and_drops(tmp_path: Path) -> None:
    wav(tmp_path / "r.wav", 5.0)
    table = write(tmp_path / "r.txt", "0\t1\tTUMI\n1\t2\tTUME\n2\t3\tnoise\n3\t4\tbird\n")
    ann = read_annotations(table)
    mapped = apply_label_mapping(ann, {"TUMI": "Turdus", "TUME": "Turdus", "noise": None})
    assert mapped.boxes["label"].tolist() == ["Turdus", "Turdus", "bird"]
    assert mapped.boxes["row"].tolist() == [1, 2, 4]
    assert mapped.durations == ann.durations  # the recording stays annotated
    with pytest.raises(LabelMappingError) as exc:
        apply_label_mapping(ann, {"Bird": "b"})
    assert error(exc) == (
        "label mapping: 'Bird' is not a label of the annotations "
        "(TUME, TUMI, bird, noise); did you mean 'bird'?"
    )
    with pytest.raises(LabelMappingError, match="maps to ' '; give a class name"):
        apply_label_mapping(ann, {"bird": " "})


# --- annotated extent -----------------------------------------------------------------------------


def test_extent_is_whole_recordings_by_default_or_given(tmp_path: Path) -> None:
    a = wav(tmp_path / "a.wav", 10.0)
    b = wav(tmp_path / "b.wav", 4.0)
    quiet = wav(tmp_path / "quiet.wav", 6.0)
    labels = write(tmp_path / "a.txt", "1\t2\tbird\n")
    write(tmp_path / "b.txt", "")
    ann = read_annotations([labels, tmp_path / "b.txt"])
    assert annotated_extent(ann).values.tolist() == [[str(a), 0.0, 10.0], [str(b), 0.0, 4.0]]
    extent = write(
        tmp_path / "extent.csv",
        "file,start_time,end_time\na.wav,4,6\na.wav,0,3\na.wav,2.5,3.5\nquiet.wav,0,6\n",
    )
    assert annotated_extent(ann, extent).values.tolist() == [
        [str(a), 0.0, 3.5],  # overlapping stretches merged
        [str(a), 4.0, 6.0],
        [str(quiet), 0.0, 6.0],  # listened to, nothing boxed: all negative
    ]
    outside = write(tmp_path / "a.txt", "1\t2\tbird\n7\t8\tfrog\n")
    with pytest.raises(AnnotationValueError) as exc:
        annotated_extent(read_annotations(outside), extent)
    assert error(exc).startswith(f"{outside}, row 2: the box 7-8 s lies outside the annotated")
    no_rows = write(tmp_path / "e2.csv", "file,start_time,end_time\nquiet.wav,0,6\n")
    with pytest.raises(AnnotationValueError) as exc:
        annotated_extent(read_annotations(labels), read_extent(no_rows))
    assert error(exc).startswith(f"{labels}, row 1: {a} has boxes but no rows in {no_rows}")
    past = write(tmp_path / "e3.csv", "file,start_time,end_time\n\nquiet.wav,0,60\n")
    with pytest.raises(AnnotationValueError, match=r"e3.csv, row 3: the box ends at 60 s, past"):
        read_extent(past)


# --- round trip: what bioclass scan writes reads back as its detections ---------------------------


def test_scan_outputs_read_back_as_the_detections(tmp_path: Path) -> None:
    from bioclass.inference.score import FileScores, StreamScores
    from bioclass.outputs import writers
    from bioclass.scan.assemble import write_outputs
    from bioclass.scan.events import Detector
    from bioclass.scan.journal import save_result
    from bioclass.scan.options import ScanOptions
    from bioclass.scan.summary import ScanSummary
    from bioclass.scan.work import FileOutcome

    audio = tmp_path / "audio"
    recordings = {  # path, duration, per channel: window scores (background, bird, frog)
        "a": (
            wav(audio / "rec_20240501_053000.wav", 2.2),
            2.2,
            [[[0.1, 0.8, 0.1]] * 2 + [[0.9, 0, 0], [0.1, 0.2, 0.7]]],
        ),
        "b": (
            wav(audio / "site" / "plain.wav", 1.4, channels=2),
            1.4,
            [[[0.3, 0.3, 0.4], [0.2, 0.1, 0.7]], [[0.2, 0.75, 0.05], [0.9, 0.05, 0.05]]],
        ),
    }
    options = ScanOptions(
        out=tmp_path / "out" / "det.csv", formats=("csv", "raven", "audacity"), channels="each"
    )
    parts = writers.output_paths(options.out)["parts"]
    outcomes = []
    for key, (path, duration, channels) in recordings.items():
        streams = []
        for channel, scores in enumerate(channels):
            starts = np.arange(len(scores)) * 0.5
            ends = np.minimum(starts + 1.0, duration)
            streams.append(
                StreamScores(channel, starts, ends, np.asarray(scores, np.float32), duration)
            )
        result = FileScores(streams)
        save_result(parts, key, result)
        outcomes.append(FileOutcome(path, key, result=result).light())
    summary = ScanSummary(n_files=len(outcomes))
    for outcome in outcomes:
        summary.count(outcome)
    detector = Detector(["background", "bird", "frog"], np.array([0.5, 0.5, 0.6]), "background")
    write_outputs(outcomes, detector, options, summary, SR)

    out = tmp_path / "out"
    detections = pd.read_csv(out / "det.csv")
    assert len(detections) == 4  # a: bird, frog; b: frog on channel 0, bird on channel 1
    key = ["file", "channel", "start_time"]
    expected = detections.sort_values(key).reset_index(drop=True)
    expected["channel"] = expected["channel"].astype("Int64")
    for tables, kwargs in [
        ([out / "det.raven"], {}),
        ([out / "det.audacity"], {"audio_root": audio}),
        ([out / "det.csv"], {}),
    ]:
        got = read_annotations(tables, **kwargs).boxes
        if tables == [out / "det.audacity"]:
            # The label track holds the class alone; the channel is in the score track.
            assert got["channel"].isna().all()
            got = got.drop(columns="channel").merge(
                expected[["file", "start_time", "label", "channel"]],
                on=["file", "start_time", "label"],
            )
        got = got.sort_values(key).reset_index(drop=True)
        assert got["file"].tolist() == expected["file"].tolist(), tables
        assert got["label"].tolist() == expected["label"].tolist(), tables
        assert got["channel"].tolist() == expected["channel"].tolist(), tables
        for column in ("start_time", "end_time"):  # written with 4 decimals
            np.testing.assert_allclose(
                got[column], expected[column], atol=2e-4, err_msg=str(tables)
            )
    raven_boxes = read_annotations(out / "det.raven").boxes
    assert raven_boxes["high_freq"].unique().tolist() == [SR / 2]
