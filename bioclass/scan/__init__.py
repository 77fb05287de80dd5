"""`bioclass scan`: tag long recordings with species labels.

Modules, in the order a scan runs them (model loading, decoding and scoring live in
`bioclass.inference`, the file formats in `bioclass.outputs`):
    options     what the user chose, and the parameters that change stored scores
    thresholds  the per-class detection thresholds a scan applies
    channels    refusing --channels N up front when no input has channel N
    lock        one scan at a time per output (a lock file beside the outputs)
    journal     per-file results kept atomically, so an interrupted scan resumes exactly
    work        scoring files in parallel (a bounded queue of files in flight), in input order
    summary     what the scan did, counted file by file
    progress    a plain progress line now and then, where stderr is not a terminal
    events      thresholds, background rule, merging windows into events
    assemble    every output built from the stored per-file results
    manifest    what was run, with which models, and what it produced
    runner      the scan procedure tying these together
    report      the terminal summary (and event precision/recall against a truth table)

and, for `bioclass evaluate SOURCE --annotations TABLE` (the evaluation floor computes the
metrics but cannot run the scanner):
    evaluate_annotations  the source's kind, a model's scan of the annotated recordings, events
                          re-made from a score matrix
"""
