"""Files other programs read: detections CSV, Raven selection tables, Audacity labels, score and
embedding matrices, manifests; absolute times from recorder file names."""
