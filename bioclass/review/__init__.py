"""`bioclass review`: listen to a sample of a scan's detections and say which were right.

Per class, the top N detections by score, a seeded random N, or N stratified over score bins
(`select`) are cut into clips with context (`clips`), listed in `review.csv` for the verdicts and
in a Raven table that plays them one after another (`table`); verdicts can also come from
annotation tables (`verdicts`). A filled review.csv is read back, checked, by
`bioclass.annotations.read_review` (below the commands, so training can read it).
The first half of the hard-negative loop; the training step that learns from the verdicts is
not built yet.
"""

from bioclass.annotations.review import NO, REVIEW_COLUMNS, YES, read_review
from bioclass.review.build import ReviewOptions, ReviewSummary, make_review
from bioclass.review.clips import CLIP_FORMATS, cut_clip
from bioclass.review.detections import read_detections
from bioclass.review.select import STRATEGIES, select_detections
from bioclass.review.table import RAVEN_COLUMNS
from bioclass.review.verdicts import fill_verdicts

__all__ = [
    "CLIP_FORMATS",
    "NO",
    "RAVEN_COLUMNS",
    "REVIEW_COLUMNS",
    "STRATEGIES",
    "YES",
    "ReviewOptions",
    "ReviewSummary",
    "cut_clip",
    "fill_verdicts",
    "make_review",
    "read_detections",
    "read_review",
    "select_detections",
]
